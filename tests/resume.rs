//! Crash-safe runs: `nas-host resume` after kill -9 at many moments gives the
//! same trials as a run that was never stopped; the run directory's lock;
//! a strategy that no longer proposes what the run recorded is refused.

mod common;

use common::{deterministic, nas_host, nas_host_command};
use nas_host::store::{EventKind, RunStore, TrialRecord, DB_FILE};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// Multi-epoch trials of the `cnn` space (batch-norm, residual blocks, AdamW
/// with a cosine schedule, augmented batches), chosen by regularized
/// evolution, which depends on every result it is told: any difference
/// after a resume shows.
const CONFIG: &str = r#"
[run]
name = "crashy"
seed = 11
max_trials = 20

[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 400
test_samples = 100

[data.augment]
crop_padding = 2
flip = true
cutout = 4

[train]
optimizer = "adamw"
learning_rate = 0.003
weight_decay = 0.0001
batch_size = 32
epochs = 4
schedule = "cosine"
latency_repeats = 2

[space]
plugin = "builtin:cnn"
[space.config]
max_stages = 2
max_blocks = 2
filters = [8, 16]
kernels = [3, 5]

[strategy]
plugin = "builtin:evolution"
[strategy.config]
population = 6
sample_size = 3
"#;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn spawn(args: &[&str]) -> Child {
    nas_host_command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Writes the config into `dir`; returns its path and the runs folder.
fn setup(dir: &Path, config: &str) -> (String, String) {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    (
        path.to_str().unwrap().to_string(),
        dir.join("runs").to_str().unwrap().to_string(),
    )
}

/// Whether the run in `run_dir` recorded its start (so `resume` applies).
fn started(run_dir: &Path) -> bool {
    let db = run_dir.join(DB_FILE);
    db.exists()
        && RunStore::open_read_only(&db)
            .and_then(|s| s.meta("config"))
            .is_ok_and(|c| c.is_some())
}

/// How many events the run in `run_dir` has recorded (0 before it started).
fn recorded_events(run_dir: &Path) -> usize {
    let db = run_dir.join(DB_FILE);
    if !db.exists() {
        return 0;
    }
    RunStore::open_read_only(&db)
        .and_then(|s| s.events(&EventKind::ALL))
        .map_or(0, |events| events.len())
}

/// Waits until the run in `run_dir` has recorded `more` events beyond
/// `before`, then `delay` longer, and kills `child` (SIGKILL); true if it
/// exited by itself first. The moments follow the run's progress, not the
/// clock, so a faster machine gets as many kills as a slower one.
fn kill_after_events(
    child: &mut Child,
    run_dir: &Path,
    before: usize,
    more: usize,
    delay: Duration,
) -> bool {
    let mut due: Option<Instant> = None;
    loop {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        match due {
            Some(at) if Instant::now() >= at => break,
            Some(_) => {}
            None if recorded_events(run_dir) >= before + more => due = Some(Instant::now() + delay),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

/// Runs `config` to the end, never stopped, as `runs/reference`.
fn run_reference(config: &str, runs: &str) {
    let out = nas_host(&[
        "run",
        config,
        "--quiet",
        "--output-dir",
        runs,
        "--name",
        "reference",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Starts the run (or resumes it once started) and kills it `kills` times
/// at fixed moments drawn from `seed`: after 1 to 6 more recorded events,
/// then 0 to 40 ms, so kills land in every phase of a trial. Returns the
/// kills made and whether the run finished by itself first.
fn kill_and_resume(
    config: &str,
    runs: &str,
    run_dir: &Path,
    kills: usize,
    seed: u64,
) -> (usize, bool) {
    let run_dir_text = run_dir.to_str().unwrap();
    let mut state = seed;
    for made in 0..kills {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let (more, delay) = (1 + state % 6, Duration::from_millis((state >> 8) % 41));
        let before = recorded_events(run_dir);
        let mut child = if started(run_dir) {
            spawn(&["resume", run_dir_text, "--quiet"])
        } else {
            spawn(&["run", config, "--quiet", "--output-dir", runs])
        };
        if kill_after_events(&mut child, run_dir, before, more as usize, delay) {
            return (made, true);
        }
    }
    (kills, false)
}

#[test]
fn killed_at_random_moments_and_resumed_a_run_records_each_trial_once_as_if_never_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (config, runs) = setup(dir.path(), CONFIG);
    run_reference(&config, &runs);

    let run_dir = PathBuf::from(&runs).join("crashy");
    let run_dir_text = run_dir.to_str().unwrap().to_string();
    let (kills, finished) = kill_and_resume(&config, &runs, &run_dir, 24, 0x2545_F491_4F6C_DD1D);
    assert!(
        kills >= 20,
        "the run finished after {kills} kills: too few for this test"
    );
    if !finished || !started(&run_dir) {
        let status = nas_host(&["status", &run_dir_text]);
        let shown = String::from_utf8_lossy(&status.stdout);
        assert!(
            shown.contains("stopped before it finished; continue with `nas-host resume"),
            "{shown}"
        );
        let last = nas_host(&["resume", &run_dir_text, "--quiet"]);
        assert!(last.status.success(), "{}", stderr(&last));
    }

    let ours = RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap();
    let theirs =
        RunStore::open_read_only(&PathBuf::from(&runs).join("reference").join(DB_FILE)).unwrap();
    let (ours_trials, their_trials) = (ours.trials().unwrap(), theirs.trials().unwrap());
    let ids: Vec<u64> = ours_trials.iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        (1..=20).collect::<Vec<u64>>(),
        "every trial exactly once"
    );
    for (a, b) in ours_trials.iter().zip(&their_trials) {
        let weights =
            |t: &TrialRecord| t.weights.as_ref().map(|w| w.replace("reference", "crashy"));
        assert_eq!(
            weights(a),
            b.weights.clone().map(|w| w.replace("reference", "crashy"))
        );
        assert_eq!(deterministic(a), deterministic(b), "trial {}", a.id);
    }
    let sessions = ours.events(&[EventKind::SessionStarted]).unwrap();
    assert!(sessions.len() > 20, "{} sessions", sessions.len());
    let resumed = ours.events(&[EventKind::TrialResumed]).unwrap();
    eprintln!(
        "{kills} kills, {} sessions, {} trials continued from a checkpoint",
        sessions.len(),
        resumed.len()
    );
    assert!(
        !resumed.is_empty(),
        "no in-flight trial continued from its checkpoint in {kills} kills"
    );
    assert_eq!(
        ours.meta("stop_reason").unwrap().as_deref(),
        Some("reached max_trials = 20")
    );
    assert!(run_dir.join("best/weights.safetensors").exists());
}

#[test]
fn a_locked_run_names_its_holder_and_more_trials_can_be_given_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let slow = CONFIG
        .replace("max_trials = 20", "max_trials = 3")
        .replace("epochs = 4", "epochs = 2");
    let (config, runs) = setup(dir.path(), &slow);
    let run_dir = PathBuf::from(&runs).join("crashy");
    let run_dir_text = run_dir.to_str().unwrap().to_string();

    let mut first = spawn(&["run", &config, "--quiet", "--output-dir", &runs]);
    let start = Instant::now();
    while !started(&run_dir) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = nas_host(&["resume", &run_dir_text]);
    let third = nas_host(&["run", &config, "--output-dir", &runs]);
    let held = format!("is in use by process {}", first.id());
    let status = nas_host(&["status", &run_dir_text]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains(&format!("state:     running (process {}", first.id())),
        "{shown}"
    );
    for out in [&second, &third] {
        assert!(!out.status.success());
        assert!(stderr(out).contains(&held), "{}", stderr(out));
    }
    assert!(first.wait().unwrap().success());

    let again = nas_host(&["run", &config, "--output-dir", &runs]);
    assert!(
        stderr(&again).contains("already holds a run; continue it with `nas-host resume"),
        "{}",
        stderr(&again)
    );
    let more = nas_host(&["resume", &run_dir_text, "--quiet", "--max-trials", "5"]);
    assert!(more.status.success(), "{}", stderr(&more));
    let store = RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap();
    assert_eq!(store.trials().unwrap().len(), 5);
    assert_eq!(
        store.meta("stop_reason").unwrap().as_deref(),
        Some("reached max_trials = 5")
    );
    assert!(store
        .meta("config")
        .unwrap()
        .unwrap()
        .contains("max_trials = 5"));
}

#[test]
fn a_strategy_that_no_longer_proposes_what_was_recorded_is_refused_and_the_store_kept() {
    let dir = tempfile::tempdir().unwrap();
    let short = CONFIG
        .replace("max_trials = 20", "max_trials = 2")
        .replace("epochs = 4", "epochs = 1");
    let (config, runs) = setup(dir.path(), &short);
    let done = nas_host(&["run", &config, "--quiet", "--output-dir", &runs]);
    assert!(done.status.success(), "{}", stderr(&done));
    let run_dir = PathBuf::from(&runs).join("crashy");
    let db = run_dir.join(DB_FILE);
    // Stand-in for a plugin whose proposals changed: alter what the run
    // recorded it proposed first (the trial's row, and the digest of the ask).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let changed = conn
        .execute(
            "UPDATE trials SET assignment = replace(assignment, '\"stages\":\"', '\"stages\":\"9') WHERE id = 1",
            [],
        )
        .unwrap()
        + conn
            .execute(
                "UPDATE events SET data = replace(data, '\"digest\":\"', '\"digest\":\"0') WHERE seq = (SELECT MIN(seq) FROM events WHERE kind = 'asked')",
                [],
            )
            .unwrap();
    assert_eq!(changed, 2);
    drop(conn);
    let before = RunStore::open_read_only(&db).unwrap().trials().unwrap();

    let out = nas_host(&["resume", run_dir.to_str().unwrap(), "--max-trials", "4"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("strategy plugin `evolution` is not deterministic")
            && e.contains("ask #1 now proposes")
            && e.contains("stages=9"),
        "{e}"
    );
    assert_eq!(
        RunStore::open_read_only(&db).unwrap().trials().unwrap(),
        before
    );
}

#[test]
fn a_trapping_strategy_ends_the_run_with_the_store_intact_and_resume_works_once_it_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("my_strategy.wasm");
    let trapping = common::wasm("nas_fixture_trap_tell");
    std::fs::copy(&trapping, &plugin).unwrap();
    let config = CONFIG
        .replace("max_trials = 20", "max_trials = 3")
        .replace("epochs = 4", "epochs = 1")
        .replace(
            "plugin = \"builtin:evolution\"",
            &format!("plugin = {:?}", plugin.to_str().unwrap()),
        )
        .replace("population = 6\nsample_size = 3\n", "");
    let (config, runs) = setup(dir.path(), &config);
    let out = nas_host(&["run", &config, "--quiet", "--output-dir", &runs]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("plugin `my_strategy` trapped in `tell`"), "{e}");
    let run_dir = PathBuf::from(&runs).join("crashy");
    let store = RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap();
    let first = store.trials().unwrap();
    assert_eq!(first.len(), 1, "the trial trained before the trap is kept");

    // The fix: the same proposals (both draw uniformly from the same seed), and a working tell.
    std::fs::copy(trapping.with_file_name("nas_strategy_random.wasm"), &plugin).unwrap();
    let out = nas_host(&["resume", run_dir.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = store.trials().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], first[0], "trial 1 was not trained again");
}

#[test]
fn a_strategy_over_its_time_or_memory_limit_ends_the_run_with_a_clear_message_and_a_resumable_store(
) {
    for (fixture, limits, message) in [
        (
            "nas_fixture_loop_ask",
            "call_timeout_s = 0.5",
            "plugin `my_strategy` ran past its deadline of 0.5 s in `ask`",
        ),
        (
            "nas_fixture_alloc_ask",
            "memory_mib = 32",
            "plugin `my_strategy` exceeded its memory limit in `ask`",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("my_strategy.wasm");
        std::fs::copy(common::wasm(fixture), &plugin).unwrap();
        let config = CONFIG
            .replace("max_trials = 20", "max_trials = 2")
            .replace("epochs = 4", "epochs = 1")
            .replace(
                "plugin = \"builtin:evolution\"",
                &format!("plugin = {:?}", plugin.to_str().unwrap()),
            )
            .replace("population = 6\nsample_size = 3\n", "")
            + &format!("\n[plugins]\n{limits}\n");
        let (config, runs) = setup(dir.path(), &config);
        let out = nas_host(&["run", &config, "--quiet", "--output-dir", &runs]);
        assert!(!out.status.success());
        let e = stderr(&out);
        assert!(e.contains(message), "{fixture}: {e}");
        let run_dir = PathBuf::from(&runs).join("crashy");
        let store = RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap();
        assert!(
            store.meta("config").unwrap().is_some(),
            "the run's record is kept"
        );

        let fixed =
            common::wasm("nas_fixture_trap_tell").with_file_name("nas_strategy_random.wasm");
        std::fs::copy(fixed, &plugin).unwrap();
        let out = nas_host(&["resume", run_dir.to_str().unwrap(), "--quiet"]);
        assert!(out.status.success(), "{fixture}: {}", stderr(&out));
        assert_eq!(store.trials().unwrap().len(), 2);
    }
}

/// A run recorded in format 2 (before `asked` and `told` events referred to
/// trial rows; recorded by that nas-host: an ASHA search with TPE sampling
/// over a table, 40 trials with promotions) resumes to the same trials as a
/// run that was never stopped, and what it adds is in the current format.
#[test]
fn a_run_recorded_in_format_2_resumes_to_the_trials_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = common::root().join("tests/fixtures/runs/format-2");
    let run_dir = dir.path().join("runs/format2");
    std::fs::create_dir_all(&run_dir).unwrap();
    for file in ["nas.sqlite", "config.toml"] {
        std::fs::copy(fixture.join(file), run_dir.join(file)).unwrap();
    }
    // The recorded table path is relative to the working directory.
    std::fs::create_dir_all(dir.path().join("tables")).unwrap();
    std::fs::copy(
        common::root().join("examples/tables/nb201-synthetic.csv"),
        dir.path().join("tables/nb201-synthetic.csv"),
    )
    .unwrap();
    let recorded = RunStore::open_read_only(&run_dir.join(DB_FILE))
        .unwrap()
        .trials()
        .unwrap();
    assert_eq!(recorded.len(), 40);

    let resumed = nas_host_command(&["resume", "runs/format2", "--max-trials", "80"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let config = std::fs::read_to_string(run_dir.join("config.toml"))
        .unwrap()
        .replace("max_trials = 40", "max_trials = 80")
        .replace("name = \"format2\"", "name = \"fresh\"");
    std::fs::write(dir.path().join("fresh.toml"), config).unwrap();
    let fresh = nas_host_command(&["run", "fresh.toml", "--quiet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(fresh.status.success(), "{}", stderr(&fresh));

    let store = RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap();
    assert_eq!(
        store.meta(nas_host::store::FORMAT_KEY).unwrap().as_deref(),
        Some(nas_host::ir::FORMAT_VERSION.to_string().as_str())
    );
    // Networks aside: format 2 kept every table trial's, format 3 only the best's.
    let comparable = |trials: Vec<TrialRecord>| -> Vec<String> {
        trials
            .into_iter()
            .map(|mut t| {
                t.network = None;
                deterministic(&t)
            })
            .collect()
    };
    let after = store.trials().unwrap();
    assert_eq!(comparable(after[..40].to_vec()), comparable(recorded));
    let fresh = RunStore::open_read_only(&dir.path().join("runs/fresh").join(DB_FILE))
        .unwrap()
        .trials()
        .unwrap();
    assert_eq!(fresh.len(), 80);
    assert!(after.iter().any(|t| t.id > 40 && t.budget == 200));
    assert_eq!(comparable(after), comparable(fresh));
}

/// A run with `[pruner]` and a strategy that learns from every result
/// (pruned ones included), killed at fixed moments and resumed, records the
/// same trials, pruned ones with the same curves, as a run never stopped.
#[test]
fn a_run_with_a_pruner_killed_and_resumed_prunes_as_if_never_stopped() {
    let config_text = format!(
        r#"
[run]
name = "pruned"
seed = 5
max_trials = 14
{}
[strategy]
plugin = "builtin:evolution"
[strategy.config]
population = 4
sample_size = 2

[pruner]
plugin = "builtin:median"
min_trials = 3
"#,
        common::PRUNABLE
    );
    let dir = tempfile::tempdir().unwrap();
    let (config, runs) = setup(dir.path(), &config_text);
    run_reference(&config, &runs);
    let run_dir = PathBuf::from(&runs).join("pruned");
    let run_dir_text = run_dir.to_str().unwrap().to_string();
    let (kills, _) = kill_and_resume(&config, &runs, &run_dir, 6, 0x9E37_79B9_7F4A_7C15);
    assert!(kills >= 3, "the run finished after {kills} kills");
    let last = nas_host(&["resume", &run_dir_text, "--quiet"]);
    assert!(last.status.success(), "{}", stderr(&last));
    let ours = RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap();
    let theirs =
        RunStore::open_read_only(&PathBuf::from(&runs).join("reference").join(DB_FILE)).unwrap();
    let (a, b) = (ours.trials().unwrap(), theirs.trials().unwrap());
    assert_eq!(a.len(), 14);
    let pruned = b
        .iter()
        .filter(|t| t.status == nas_host::ir::TrialStatus::Pruned)
        .count();
    assert!(
        pruned >= 2,
        "only {pruned} trials pruned: the test needs some"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(deterministic(x), deterministic(y), "trial {}", x.id);
    }
}
