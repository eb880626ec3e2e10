//! Strategies written in Python (componentize-py) and JavaScript
//! (componentize-js), built from `plugins/python-random-walk` and
//! `plugins/js-random-search`, run real searches through `nas-host run`.
//! In CI (`NAS_REQUIRE_LANG_PLUGINS=1`, set by `.ci/run` after installing
//! the toolchains from PyPI and npm) they must run; elsewhere, without the
//! toolchains, they say loudly that they were skipped.

mod common;

use common::nas_host;
use nas_host::ir::TrialStatus;
use nas_host::store::{RunStore, DB_FILE};
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
[run]
name = "lang"
seed = 9
max_trials = 4

[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 300
test_samples = 100

[train]
batch_size = 32
epochs = 1
latency_repeats = 2

[space]
plugin = "builtin:cnn"
[space.config]
max_stages = 2
max_blocks = 1
filters = [8, 16]
kernels = [3]
"#;

fn available(tool: &str, what: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("NAS_REQUIRE_LANG_PLUGINS").is_none(),
            "NAS_REQUIRE_LANG_PLUGINS is set but `{tool}` is missing"
        );
        eprintln!("\n*** SKIPPED {what}: `{tool}` is not installed (.ci/run installs it) ***\n");
    }
    found
}

fn built(dir: &Path) -> PathBuf {
    let out = common::root().join("target/lang");
    std::fs::create_dir_all(&out).unwrap();
    out.join(format!(
        "{}.wasm",
        dir.file_name().unwrap().to_str().unwrap().replace('-', "_")
    ))
}

fn check(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two runs of the same seed with `plugin`: both complete, with the same proposals.
fn search_with(plugin: &Path, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let text = format!(
        "{CONFIG}\n[strategy]\nplugin = {:?}\n",
        plugin.to_str().unwrap()
    );
    std::fs::write(&config, text).unwrap();
    let runs = dir.path().join("runs");
    let mut proposals = Vec::new();
    for run in ["first", "second"] {
        let out = nas_host(&[
            "run",
            config.to_str().unwrap(),
            "--quiet",
            "--output-dir",
            runs.to_str().unwrap(),
            "--name",
            run,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let trials = RunStore::open_read_only(&runs.join(run).join(DB_FILE))
            .unwrap()
            .trials()
            .unwrap();
        assert_eq!(trials.len(), 4);
        assert!(trials.iter().all(|t| t.status == TrialStatus::Completed));
        proposals.push(
            trials
                .iter()
                .map(|t| nas_host::assignment::text(&t.assignment))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(proposals[0], proposals[1], "same seed, same proposals");
    let inspect = nas_host(&["plugins", "inspect", plugin.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&inspect.stdout);
    assert!(shown.contains(&format!("name:        {name}")), "{shown}");
}

#[test]
fn a_strategy_written_in_python_runs_a_search() {
    if !available("componentize-py", "the Python plugin test") {
        return;
    }
    let dir = common::root().join("plugins/python-random-walk");
    let wasm = built(&dir);
    check(
        Command::new("componentize-py")
            .current_dir(&dir)
            .args([
                "-d",
                "../../wit/v0.1.0",
                "-w",
                "nas:plugin/strategy-plugin@0.1.0",
            ])
            .args(["componentize", "app", "-o"])
            .arg(&wasm),
    );
    search_with(&wasm, "python-random-walk");
}

#[test]
fn a_strategy_written_in_javascript_runs_a_search() {
    if !available("npm", "the JavaScript plugin test") {
        return;
    }
    let dir = common::root().join("plugins/js-random-search");
    if !dir.join("node_modules/.bin/componentize-js").exists() {
        check(Command::new("npm").current_dir(&dir).arg("ci"));
    }
    let wasm = built(&dir);
    check(
        Command::new("npm")
            .current_dir(&dir)
            .args(["run", "build"])
            .env("OUT", &wasm),
    );
    search_with(&wasm, "js-random-search");
}
