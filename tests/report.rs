//! `nas-host report`: a self-contained HTML file that renders in headless
//! Chromium without script errors, with its charts, sortable trials table
//! and the best architecture drawn as a graph.

mod common;

use common::nas_host;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CONFIG: &str = r#"
[run]
name = "reported"
seed = 5
max_trials = 5

[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 300
test_samples = 100

[train]
batch_size = 32
epochs = 2
latency_repeats = 2

[space]
plugin = "builtin:cnn"
[space.config]
max_stages = 2
max_blocks = 1
filters = [8]
kernels = [3]

[quantize]
enabled = true

[[objectives]]
metric = "val_accuracy"
direction = "maximize"

[[objectives]]
metric = "params"
direction = "minimize"
"#;

/// Debian's Chromium, headless; `None` (with a loud note) where it is not
/// installed and `NAS_REQUIRE_CHROMIUM` is unset (scripts/test.sh installs
/// it and sets that variable, so CI never skips).
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("NAS_REQUIRE_CHROMIUM").is_none(),
        "NAS_REQUIRE_CHROMIUM is set but /usr/bin/chromium is missing (apt-get install chromium)"
    );
    eprintln!("\n*** SKIPPED the Chromium part of this test: /usr/bin/chromium is not installed (bash scripts/test.sh installs it) ***\n");
    None
}

fn headless(chromium: &Path, profile: &Path, args: &[&str]) -> Output {
    // The flags keep Chromium off the network (this machine has none) and out of the user's profile.
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_report_is_self_contained_and_renders_in_headless_chromium_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let runs = dir.path().join("runs");
    let out = nas_host(&[
        "run",
        config.to_str().unwrap(),
        "--quiet",
        "--output-dir",
        runs.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = runs.join("reported");
    let out = nas_host(&["report", run_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = run_dir.join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();

    for section in [
        "Search progress",
        "Trade-offs",
        "Learning curves of the top trials",
        "Effect of each dimension on val_accuracy",
        "All trials",
        "Best architecture",
        "val_accuracy against parameters",
        "val_accuracy against FLOPs per sample",
        "val_accuracy against latency at batch 1 (ms)",
        "best-so-far val_accuracy against training time",
        "Quantization",
        "int8 against float validation accuracy",
        "int8 Pareto front: int8_val_accuracy against int8_size_kb",
    ] {
        assert!(html.contains(section), "missing {section}");
    }
    assert_eq!(html.matches("<tr class=\"best\">").count(), 1);
    assert_eq!(html.matches("<td class=\"text\">completed</td>").count(), 5);
    assert!(html.contains("class=\"graph\"") && html.contains("0: input"));
    // Self-contained: nothing is loaded from anywhere (the SVG namespace is a name, not a fetch).
    let without_namespace = html.replace("http://www.w3.org/2000/svg", "");
    for outside in ["http://", "https://", " src=", "<link", "@import"] {
        assert!(
            !without_namespace.contains(outside),
            "the report refers to {outside}"
        );
    }

    let Some(chromium) = chromium() else { return };
    let profile = dir.path().join("chromium-profile");
    // Click the trial column twice (descending) and record the first row, after the page's own script.
    let probe = html.replace(
        "</body>",
        "<script>var th = document.querySelector('table.sortable th'); th.click(); th.click(); document.documentElement.setAttribute('data-first-trial', document.querySelector('table.sortable tbody tr td').textContent);</script></body>",
    );
    let probe_path = dir.path().join("probe.html");
    std::fs::write(&probe_path, probe).unwrap();
    let dom = headless(
        &chromium,
        &profile,
        &["--dump-dom", &format!("file://{}", probe_path.display())],
    );
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(
        dom_text.contains("data-rendered=\"yes\""),
        "the page's script did not finish: {}",
        &dom_text[..dom_text.len().min(400)]
    );
    assert!(
        !dom_text.contains("data-errors=\""),
        "script errors: {dom_text}"
    );
    assert!(
        dom_text.contains("data-first-trial=\"5\""),
        "sorting by trial, descending, puts trial 5 first"
    );

    // The error check itself: a page with a broken script is caught.
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        html.replace("</body>", "<script>no_such_function();</script></body>"),
    )
    .unwrap();
    let dom = headless(
        &chromium,
        &profile,
        &["--dump-dom", &format!("file://{}", broken.display())],
    );
    assert!(String::from_utf8_lossy(&dom.stdout).contains("data-errors=\"Uncaught ReferenceError"));

    let shot = dir.path().join("report.png");
    let out = headless(
        &chromium,
        &profile,
        &[
            "--window-size=1280,3000",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", report.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 50_000,
        "a blank page compresses to far less: {} bytes",
        png.len()
    );
}
