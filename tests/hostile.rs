//! Hostile input through the real binary and real plugins: what a plugin
//! returns must end in a clear error or a recorded failed trial, never an
//! aborted process, and the run directory stays readable.

mod common;

use common::nas_host;
use nas_host::ir::TrialStatus;
use nas_host::store::{EventKind, RunStore, DB_FILE};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Writes `config` (whose `[run] name` is `name`) into `dir` and runs it
/// quietly into `dir/runs`; returns the output and the run directory.
fn run_config(dir: &Path, name: &str, config: &str) -> (Output, PathBuf) {
    run_config_under(dir, name, config, "true")
}

/// [`run_config`] after the bash commands `limits` (such as `ulimit -d N`),
/// which hold for the run's process.
fn run_config_under(dir: &Path, name: &str, config: &str, limits: &str) -> (Output, PathBuf) {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let runs = dir.join("runs");
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("{limits} && exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_nas-host"))
        .args(["run", path.to_str().unwrap(), "--quiet", "--output-dir"])
        .arg(&runs)
        .env(
            "NAS_HOST_CACHE_DIR",
            common::root().join("target/test-component-cache"),
        )
        .output()
        .unwrap();
    (out, runs.join(name))
}

/// The run's trials as JSON, without what differs between equal runs.
fn recorded(run: &Path) -> Vec<String> {
    let store = RunStore::open_read_only(&run.join(DB_FILE)).unwrap();
    store
        .trials()
        .unwrap()
        .iter()
        .map(common::deterministic)
        .collect()
}

/// Fails with the command's stderr unless it succeeded.
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The declarative template space asked for a convolution of a billion
/// filters (over the host's structural limits), of a million followed by a
/// dense layer (within them, but with 14 billion weights, 58 GB, that were
/// allocated before the memory check and aborted the process), or of two
/// thousand followed by a dense layer (9 GB to train: within the machine,
/// over the process's data-size limit): each is refused before any weight
/// is allocated, so the trial fails with the reason and the process ends
/// normally; `status` and `report` still read the run. The runs are held
/// to 3 GB of data (`ulimit -d`), so a regression aborts the test's process,
/// not the machine.
#[test]
fn a_network_bigger_than_memory_is_a_failed_trial_not_an_abort() {
    for (filters, head, units, why) in [
        (
            "1000000000",
            "global-avg-pool",
            100,
            "over the host's limit",
        ),
        ("1000000", "flatten", 100, "out of memory"),
        (
            "2000",
            "flatten",
            2000,
            "left under the data-size limit (ulimit -d)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"
[run]
name = "huge"
seed = 1
max_trials = 1

[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 200
test_samples = 50

[train]
epochs = 1

[space]
plugin = "builtin:template"

[[space.config.layers]]
op = "conv2d"
filters = {filters}
kernel = 3
[[space.config.layers]]
op = "{head}"
[[space.config.layers]]
op = "dense"
units = {units}
[[space.config.layers]]
op = "dense"
units = "classes"
"#
        );
        let (out, run) = run_config_under(dir.path(), "huge", &config, "ulimit -d 3000000");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "ends normally, with no trial completed: {stderr}"
        );
        let trials = RunStore::open_read_only(&run.join(DB_FILE))
            .unwrap()
            .trials()
            .unwrap();
        assert_eq!(trials.len(), 1);
        assert_eq!(trials[0].status, TrialStatus::Failed);
        let reason = trials[0].reason.as_deref().unwrap_or_default();
        assert!(reason.contains(why), "{filters} filters: {reason}");
        for command in ["status", "report"] {
            let out = nas_host(&[command, run.to_str().unwrap()]);
            assert_success(&out, command);
        }
    }
}

/// A device or a FIFO given as a plugin is refused at once, naming it,
/// instead of being read until memory runs out (or forever).
#[test]
fn a_plugin_path_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plugin.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for plugin in ["/dev/zero", fifo.to_str().unwrap()] {
        let config = format!(
            "[run]\nname = \"dev\"\nmax_trials = 1\n[data]\ndataset = \"synthetic\"\n[strategy]\nplugin = \"{plugin}\"\n"
        );
        let (out, run) = run_config(dir.path(), "dev", &config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains(plugin) && stderr.contains("not a regular file"),
            "{stderr}"
        );
        assert!(!run.exists(), "nothing was written");
    }
}

/// `resume` continues the run it recorded; an edit of the run's
/// `config.toml` is refused with the line that differs, never silently
/// overwritten, and once the file is restored the run resumes.
#[test]
fn resume_refuses_an_edited_config_naming_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[run]\nname = \"edited\"\nmax_trials = 1\n[data]\ndataset = \"synthetic\"\ntrain_samples = 200\ntest_samples = 50\n[train]\nepochs = 1\n";
    let (out, run) = run_config(dir.path(), "edited", config);
    assert_success(&out, "nas-host");
    let recorded = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let edited = recorded.replace("epochs = 1", "epochs = 5");
    assert_ne!(edited, recorded);
    std::fs::write(run.join("config.toml"), &edited).unwrap();
    let out = nas_host(&["resume", run.to_str().unwrap(), "--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("config.toml was edited")
            && stderr.contains("`epochs = 5`")
            && stderr.contains("`epochs = 1`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("config.toml")).unwrap(),
        edited,
        "the edit is not overwritten"
    );
    std::fs::write(run.join("config.toml"), &recorded).unwrap();
    let out = nas_host(&["resume", run.to_str().unwrap(), "--quiet"]);
    assert_success(&out, "nas-host");
}

/// A checkpoint the host cannot write (its folder's path taken by a file,
/// or a write cut off by the file-size limit as a full disk cuts it) is the
/// host's problem, not the architecture's: the run stops with an error
/// naming the trial, nothing is recorded as a result or told to the
/// strategy, and once the cause is gone `resume` ends with the same trials
/// as a run that never failed.
#[test]
fn an_unwritable_checkpoint_stops_the_run_and_is_never_a_failed_trial() {
    // About 1.2 million weights: a checkpoint (weights and two optimiser
    // moments) of about 14 MB, while the database stays far below 6 MB.
    let config = "[run]\nname = \"hf\"\nseed = 4\nmax_trials = 2\n[data]\ndataset = \"synthetic\"\nclasses = 4\nimage_size = 12\ntrain_samples = 200\ntest_samples = 50\n[train]\nepochs = 2\n[space]\nplugin = \"builtin:template\"\n[[space.config.layers]]\nop = \"conv2d\"\nfilters = 8\nkernel = 3\n[[space.config.layers]]\nop = \"flatten\"\n[[space.config.layers]]\nop = \"dense\"\nunits = 1000\n[[space.config.layers]]\nop = \"dense\"\nunits = \"classes\"\n";
    let reference = tempfile::tempdir().unwrap();
    let (out, reference_run) = run_config(reference.path(), "hf", config);
    assert_success(&out, "reference run");

    for (cause, limits, names) in [
        ("a file in the way", "true", "trials/1"),
        (
            "a full disk",
            "trap '' XFSZ && ulimit -f 6000",
            "File too large",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("runs/hf");
        std::fs::create_dir_all(&blocked).unwrap();
        if cause == "a file in the way" {
            std::fs::write(blocked.join("trials"), "not a folder").unwrap();
        }
        let (out, hf) = run_config_under(dir.path(), "hf", config, limits);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cause}");
        assert!(
            stderr.contains("the host could not keep the trial's checkpoint")
                && stderr.contains("trial 1")
                && stderr.contains(names),
            "{cause}: {stderr}"
        );
        let store = RunStore::open_read_only(&hf.join(DB_FILE)).unwrap();
        assert!(
            store.trials().unwrap().is_empty(),
            "{cause}: no result was recorded"
        );
        assert!(store.events(&[EventKind::Told]).unwrap().is_empty());
        drop(store);

        let _ = std::fs::remove_file(blocked.join("trials"));
        let out = nas_host(&["resume", hf.to_str().unwrap(), "--quiet"]);
        assert_success(&out, "resume");
        assert_eq!(recorded(&hf), recorded(&reference_run), "{cause}");
    }
}

/// Stored weights paths are relative to the run: a run moved elsewhere
/// and read from another working directory exports its own weights, and a
/// tampered path is refused instead of copying whatever file it names.
#[test]
fn a_moved_run_exports_its_own_weights_and_a_tampered_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[run]\nname = \"mv\"\nmax_trials = 1\n[data]\ndataset = \"synthetic\"\ntrain_samples = 200\ntest_samples = 50\n[train]\nepochs = 1\n";
    std::fs::write(dir.path().join("c.toml"), config).unwrap();
    // A relative output folder, resolved against the working directory.
    let out = common::nas_host_command(&["run", "c.toml", "--quiet", "--output-dir", "runs"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_success(&out, "nas-host");
    let original = dir.path().join("runs/mv");
    let weights = std::fs::read(original.join("trials/1/weights.safetensors")).unwrap();
    let moved = dir.path().join("elsewhere/mv");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&original, &moved).unwrap();

    let other_cwd = tempfile::tempdir().unwrap();
    let exported = dir.path().join("exported");
    let out = common::nas_host_command(&[
        "export",
        moved.to_str().unwrap(),
        "--trial",
        "1",
        "--out",
        exported.to_str().unwrap(),
    ])
    .current_dir(other_cwd.path())
    .output()
    .unwrap();
    assert_success(&out, "nas-host");
    assert_eq!(
        std::fs::read(exported.join("weights.safetensors")).unwrap(),
        weights
    );
    // Evaluated from there on the data its recorded config names, the
    // exported model scores what the run recorded for its best trial.
    let out = common::nas_host_command(&[
        "eval",
        exported.to_str().unwrap(),
        "--config",
        moved.join("config.toml").to_str().unwrap(),
    ])
    .current_dir(other_cwd.path())
    .output()
    .unwrap();
    assert_success(&out, "nas-host eval");
    let scored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let store = RunStore::open_read_only(&moved.join(DB_FILE)).unwrap();
    let recorded: f64 = store
        .meta("test_accuracy")
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(scored["accuracy"].as_f64().unwrap(), recorded);
    drop(store);

    let secret = dir.path().join("secret.safetensors");
    std::fs::write(&secret, "not for export").unwrap();
    let conn_path = moved.join(DB_FILE);
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE trials SET weights=?', (sys.argv[2],)); c.commit()",
            conn_path.to_str().unwrap(),
            secret.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let tampered = dir.path().join("tampered");
    let out = nas_host(&[
        "export",
        moved.to_str().unwrap(),
        "--trial",
        "1",
        "--out",
        tampered.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not a file of the run's trials folder"),
        "{stderr}"
    );
    assert!(!tampered.join("weights.safetensors").exists());
}

/// A damaged checkpoint (its tensors cut short by a failing disk, or its
/// facts unreadable) is set aside and its trial trains from scratch,
/// recorded as an event and never as a failure: after `resume` the run has
/// the same trials as one whose checkpoints were never damaged.
#[test]
fn a_damaged_checkpoint_restarts_its_trial_from_scratch() {
    let config = |trials: u32| {
        format!("[run]\nname = \"dc\"\nseed = 5\nmax_trials = {trials}\n[data]\ndataset = \"synthetic\"\nclasses = 4\nimage_size = 12\ntrain_samples = 200\ntest_samples = 50\n[train]\nepochs = 2\n")
    };
    let reference = tempfile::tempdir().unwrap();
    let (out, reference_run) = run_config(reference.path(), "dc", &config(3));
    assert_success(&out, "reference run");

    let dir = tempfile::tempdir().unwrap();
    let (out, run) = run_config(dir.path(), "dc", &config(1));
    assert_success(&out, "first trial");
    // Trial 2 finds trial 1's checkpoint with its tensors cut in half;
    // trial 3 a checkpoint whose facts are not JSON.
    let first = run.join("trials/1");
    let facts = std::fs::read_to_string(first.join("checkpoint.json")).unwrap();
    let tensors: serde_json::Value = serde_json::from_str(&facts).unwrap();
    let tensors = tensors["tensors"].as_str().unwrap();
    let bytes = std::fs::read(first.join(tensors)).unwrap();
    let second = run.join("trials/2");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("checkpoint.json"), &facts).unwrap();
    std::fs::write(second.join(tensors), &bytes[..bytes.len() / 2]).unwrap();
    let third = run.join("trials/3");
    std::fs::create_dir_all(&third).unwrap();
    std::fs::write(third.join("checkpoint.json"), "{\"epoch\": 1, \"se").unwrap();

    let out = nas_host(&[
        "resume",
        run.to_str().unwrap(),
        "--quiet",
        "--max-trials",
        "3",
    ]);
    assert_success(&out, "resume");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("trial 2: its checkpoint could not be continued, so it trained from scratch"),
        "{stderr}"
    );
    assert_eq!(recorded(&run), recorded(&reference_run));
    let store = RunStore::open_read_only(&run.join(DB_FILE)).unwrap();
    let restarted: Vec<Option<u64>> = store
        .events(&[EventKind::TrialRestarted])
        .unwrap()
        .iter()
        .map(|e| e.trial)
        .collect();
    assert_eq!(restarted, [Some(2), Some(3)]);
    for trial in [&second, &third] {
        assert!(trial.join("damaged-checkpoint.json").exists());
    }
}

/// A trial whose budget would outlast the run stops at `[run] max_time_s`
/// as interrupted, not as a result, and `resume --max-time-s` continues it
/// from its checkpoint.
#[test]
fn a_trial_in_training_stops_at_max_time_and_resume_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[run]\nname = \"mt\"\nmax_trials = 1\nmax_time_s = 3\n[data]\ndataset = \"synthetic\"\nclasses = 4\nimage_size = 12\ntrain_samples = 200\ntest_samples = 50\n[train]\nepochs = 100000\n";
    std::fs::write(dir.path().join("mt.toml"), config).unwrap();
    let runs = dir.path().join("runs");
    let out = within_a_minute(&[
        "run",
        dir.path().join("mt.toml").to_str().unwrap(),
        "--quiet",
        "--output-dir",
        runs.to_str().unwrap(),
    ]);
    let run = runs.join("mt");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("continue with `nas-host resume"),
        "{stderr}"
    );
    let epochs_by_session = |run: &Path| {
        let store = RunStore::open_read_only(&run.join(DB_FILE)).unwrap();
        assert!(store.trials().unwrap().is_empty(), "no result was recorded");
        let reason = store.meta("stop_reason").unwrap().unwrap_or_default();
        assert!(reason.contains("reached max_time_s"), "{reason}");
        let mut sessions: Vec<Vec<u32>> = Vec::new();
        for e in store
            .events(&[
                EventKind::SessionStarted,
                EventKind::Epoch,
                EventKind::TrialInterrupted,
            ])
            .unwrap()
        {
            match e.kind {
                EventKind::SessionStarted => sessions.push(Vec::new()),
                EventKind::Epoch => {
                    let epoch: nas_host::ir::EpochRecord = serde_json::from_str(&e.data).unwrap();
                    sessions.last_mut().unwrap().push(epoch.epoch);
                }
                _ => assert_eq!(e.trial, Some(1)),
            }
        }
        sessions
    };
    let sessions = epochs_by_session(&run);
    assert_eq!(sessions.len(), 1);
    let trained = *sessions[0].last().expect("some epochs finished");

    let out = within_a_minute(&[
        "resume",
        run.to_str().unwrap(),
        "--quiet",
        "--max-time-s",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("continue with `nas-host resume"),
        "{stderr}"
    );
    let sessions = epochs_by_session(&run);
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions[1].first(),
        Some(&(trained + 1)),
        "continued from its checkpoint"
    );
}

/// Runs `nas-host ARGS`; fails the test (and kills the process) if it has
/// not ended within a minute, instead of waiting for a runaway forever.
fn within_a_minute(args: &[&str]) -> Output {
    let mut child = common::nas_host_command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("nas-host {args:?} still ran after a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// How a run given a hostile plugin must end.
enum Ends {
    /// With an error naming the plugin (this text in stderr), nothing run.
    Error(&'static str),
    /// With its trials failed for this reason, and the run going on.
    Failed(&'static str),
}

/// Hostile search spaces and strategies (`tests/fixtures/hostile-*`, built
/// without the SDK's own checks) return, one kind per case, what the host
/// must not trust: non-finite reals, texts and lists past their limits,
/// networks past the structural limits (wrapping shapes, a million nodes,
/// a forward edge), out-of-domain values, budgets and resumes, too many
/// proposals, 32 MB error messages. Each run ends with a clear error or its
/// trials failed with the reason; the process is never killed or panics,
/// and `status`, `report`, `resume` and `export` read what it left.
#[test]
fn hostile_plugin_output_ends_in_a_clear_error_or_a_failed_trial() {
    use Ends::*;
    let space = common::wasm("nas_fixture_hostile_space");
    let strategy = common::wasm("nas_fixture_hostile_strategy");
    let cases = [
        (
            "space",
            "nan-range",
            Error("with the real range [0, NaN] from `init`"),
        ),
        (
            "space",
            "many-dimensions",
            Error("returned 20003 dimensions from `init`, over the limit of 10000"),
        ),
        (
            "space",
            "many-labels",
            Error("with 200000 labels from `init`, over the limit of 100000"),
        ),
        (
            "space",
            "long-name",
            Error("returned a dimension name of 1048576 bytes"),
        ),
        (
            "space",
            "long-init-error",
            Error("(33550336 more bytes cut)"),
        ),
        (
            "space",
            "long-key",
            Failed("returned a network key of 104857600 bytes from `build`"),
        ),
        ("space", "nan-dropout", Failed("(dropout) has the rate NaN")),
        (
            "space",
            "huge-kernel",
            Failed("kernel 2147483648 is over the host's limit of 4096"),
        ),
        (
            "space",
            "concat-chain",
            Failed("(concat): output elements 2415919104 is over the host's limit"),
        ),
        (
            "space",
            "million-nodes",
            Failed("has 1000003 nodes, over the host's limit of 100000"),
        ),
        (
            "space",
            "wide-dense",
            Failed("(dense): parameters 622770257775 is over the host's limit"),
        ),
        (
            "space",
            "forward-input",
            Failed("input 6 is not an earlier node"),
        ),
        (
            "space",
            "long-build-error",
            Failed("returned an error from `build`"),
        ),
        (
            "strategy",
            "nan-value",
            Error("proposal 0 sets dimension `rate` to NaN"),
        ),
        (
            "strategy",
            "infinite-value",
            Error("proposal 0 sets dimension `rate` to inf"),
        ),
        (
            "strategy",
            "long-tag",
            Error("returned a tag of 67108864 bytes from `ask`"),
        ),
        (
            "strategy",
            "too-many",
            Error("returned 1001 proposals from `ask(1)`"),
        ),
        (
            "strategy",
            "long-ask-error",
            Error("(33550336 more bytes cut)"),
        ),
        (
            "strategy",
            "long-init-error",
            Error("(33550336 more bytes cut)"),
        ),
        (
            "strategy",
            "out-of-domain",
            Failed("gives `width` the value 9223372036854775807, outside its domain"),
        ),
        (
            "strategy",
            "unknown-label",
            Failed("gives `act` the value xxx"),
        ),
        (
            "strategy",
            "unknown-dimension",
            Failed("binds `ghost`, which is not a dimension"),
        ),
        (
            "strategy",
            "huge-budget",
            Failed("a budget of 4294967295 epochs; a budget must be between 1 and 100000"),
        ),
        ("strategy", "zero-budget", Failed("a budget of 0 epochs")),
        (
            "strategy",
            "unknown-resume",
            Failed("asked to continue trial 18446744073709551615"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let clean = |out: &Output, what: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0..=2)) && !stderr.contains("panicked"),
            "{what}: ended with {:?}: {stderr}",
            out.status
        );
    };
    for (kind, attack, ends) in cases {
        let (space_attack, strategy_attack) = match kind {
            "space" => (attack, "none"),
            _ => ("none", attack),
        };
        let name = format!("{kind}-{attack}");
        let config = format!(
            "[run]\nname = \"{name}\"\nmax_trials = 2\n[data]\ndataset = \"synthetic\"\nclasses = 4\nimage_size = 12\ntrain_samples = 100\ntest_samples = 20\n[train]\nepochs = 1\n\
             [space]\nplugin = \"{}\"\nconfig = {{ attack = \"{space_attack}\" }}\n\
             [strategy]\nplugin = \"{}\"\nconfig = {{ attack = \"{strategy_attack}\" }}\n",
            space.display(),
            strategy.display()
        );
        let (out, run) = run_config(dir.path(), &name, &config);
        clean(&out, &name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match ends {
            Error(text) => {
                assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
                assert!(stderr.contains(text), "{name}: {stderr}");
                assert!(stderr.len() < 16 << 10, "{name}: the message is cut");
            }
            Failed(text) => {
                let trials = RunStore::open_read_only(&run.join(DB_FILE))
                    .unwrap()
                    .trials()
                    .unwrap();
                assert_eq!(trials.len(), 2, "{name}: the run went on");
                for t in trials {
                    assert_eq!(t.status, TrialStatus::Failed, "{name}");
                    let reason = t.reason.unwrap_or_default();
                    assert!(
                        reason.contains(text) && reason.len() < 8 << 10,
                        "{name}: {reason}"
                    );
                }
            }
        }
        if !run.join(DB_FILE).exists() {
            continue;
        }
        let exported = dir.path().join(format!("{name}-export"));
        for args in [
            vec!["status", run.to_str().unwrap()],
            vec!["report", run.to_str().unwrap()],
            vec!["resume", run.to_str().unwrap(), "--quiet"],
            vec![
                "export",
                run.to_str().unwrap(),
                "--out",
                exported.to_str().unwrap(),
            ],
        ] {
            clean(&nas_host(&args), &format!("{name}: nas-host {}", args[0]));
        }
    }
}

/// An IDX file as the MNIST readers expect it.
fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
    out.extend(data);
    out
}

/// Hostile data files (a dimension of 0, a file shorter than its header
/// promises, a FIFO, a stray label) and configs asking for absurd numbers
/// each end the run at once with an error naming the file or the key; the
/// process exits normally and nothing is trained.
#[test]
fn hostile_data_files_and_configs_end_in_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[run]\nname = \"h\"\nmax_trials = 1\n[train]\nepochs = 1\n";
    let synthetic =
        format!("{base}[data]\ndataset = \"synthetic\"\ntrain_samples = 100\ntest_samples = 20\n");
    let good_labels: Vec<u8> = (0..50).map(|i| (i % 10) as u8).collect();
    let mut stray = good_labels.clone();
    stray[7] = 255;
    let data_cases: [(&str, &str, Option<Vec<u8>>, &str); 4] = [
        (
            "zero-dims",
            "train-images-idx3-ubyte",
            Some(idx(0x803, &[300, 0, 0], &[])),
            "every dimension must be at least 1",
        ),
        (
            "short",
            "train-images-idx3-ubyte",
            Some(idx(0x803, &[50, 6, 6], &[0; 100])),
            "values but the file holds 100",
        ),
        (
            "fifo",
            "train-labels-idx1-ubyte",
            None,
            "is not a regular file",
        ),
        (
            "stray-label",
            "train-labels-idx1-ubyte",
            Some(idx(0x801, &[50], &stray)),
            "labels go up to 255 but class 10 never occurs",
        ),
    ];
    let mut cases: Vec<(String, String)> = Vec::new();
    for (name, file, bytes, text) in data_cases {
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        for (f, content) in [
            (
                "train-images-idx3-ubyte",
                idx(0x803, &[50, 6, 6], &[7; 50 * 36]),
            ),
            ("train-labels-idx1-ubyte", idx(0x801, &[50], &good_labels)),
            (
                "t10k-images-idx3-ubyte",
                idx(0x803, &[5, 6, 6], &[9; 5 * 36]),
            ),
            ("t10k-labels-idx1-ubyte", idx(0x801, &[5], &[1; 5])),
        ] {
            std::fs::write(data.join(f), content).unwrap();
        }
        match bytes {
            Some(b) => std::fs::write(data.join(file), b).unwrap(),
            None => {
                std::fs::remove_file(data.join(file)).unwrap();
                let made = std::process::Command::new("mkfifo")
                    .arg(data.join(file))
                    .status()
                    .unwrap();
                assert!(made.success());
            }
        }
        let config = format!(
            "{base}[data]\ndataset = \"mnist\"\npath = \"{}\"\n",
            data.display()
        );
        cases.push((config, format!("{file}: {text}")));
    }
    for (edit, key) in [
        (
            "[plugins]\ncall_timeout_s = 1e300\n",
            "plugins.call_timeout_s",
        ),
        ("[plugins]\ntext_bytes = 0\n", "plugins.text_bytes"),
        ("[run]\nmax_time_s = nan\n", "max_time_s"),
    ] {
        let config = if edit.starts_with("[run]") {
            synthetic.replace("[run]\n", &format!("[run]\n{}", &edit[6..]))
        } else {
            format!("{synthetic}{edit}")
        };
        cases.push((config, key.to_string()));
    }
    for (edit, key) in [
        ("latency_repeats = 100000000000", "latency_repeats"),
        ("epochs = 4294967295", "epochs"),
    ] {
        let config = synthetic.replace("epochs = 1\n", &format!("{edit}\n"));
        cases.push((config, key.to_string()));
    }
    for (i, (config, text)) in cases.iter().enumerate() {
        let folder = dir.path().join(i.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        let (out, run) = run_config(&folder, "h", config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{config}: {stderr}");
        let file_and_text = text.split_once(": ");
        let named = match file_and_text {
            Some((file, text)) => stderr.contains(file) && stderr.contains(text),
            None => stderr.contains(text.as_str()),
        };
        assert!(named && !stderr.contains("panicked"), "{config}: {stderr}");
        if let Ok(store) = RunStore::open_read_only(&run.join(DB_FILE)) {
            assert!(store.trials().unwrap().is_empty(), "{config}");
        }
    }
}
