//! Executors: worker processes give the same results as the search process;
//! Slurm jobs on a real cluster (scripts/slurm-dev-cluster.sh) run trials
//! concurrently, are retried when cancelled or failing, and are re-attached
//! by `resume` after the controller was killed.

mod common;

use common::{nas_host, nas_host_command};
use nas_host::ir::TrialStatus;
use nas_host::store::{EventKind, RunStore, TrialRecord, DB_FILE};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[run]
name = "exec"
seed = 3
max_trials = 6

[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 400
test_samples = 100

[train]
batch_size = 32
epochs = 2
latency_repeats = 2

[strategy]
plugin = "builtin:random"
"#;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `config` into a new folder under `dir` and runs it to the end.
fn run(dir: &Path, name: &str, config: &str) -> (Output, PathBuf) {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let runs = folder.join("runs");
    let out = nas_host(&[
        "run",
        path.to_str().unwrap(),
        "--quiet",
        "--output-dir",
        runs.to_str().unwrap(),
    ]);
    (out, runs.join("exec"))
}

fn store(run_dir: &Path) -> RunStore {
    RunStore::open_read_only(&run_dir.join(DB_FILE)).unwrap()
}

fn contents(run_dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = store(run_dir)
        .trials()
        .unwrap()
        .into_iter()
        // Whether a duplicate network reuses a result depends on finishing order.
        .map(|t| {
            common::deterministic(&TrialRecord {
                reused_from: None,
                ..t
            })
        })
        .collect();
    all.sort();
    all
}

#[test]
fn two_worker_processes_give_the_same_results_as_the_search_process() {
    let dir = tempfile::tempdir().unwrap();
    let (out, local) = run(dir.path(), "local", CONFIG);
    assert!(out.status.success(), "{}", stderr(&out));
    let process = CONFIG.to_string() + "\n[executor]\nkind = \"process\"\nworkers = 2\n";
    let (out, workers) = run(dir.path(), "process", &process);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(contents(&local), contents(&workers));
    // The controller of workers only checks the data (same description) and
    // loads it at the end for the best trial's held-out report (same figures).
    for key in ["data", "best_trial", "test_accuracy", "test_loss"] {
        let meta = |run: &Path| store(run).meta(key).unwrap();
        assert!(meta(&local).is_some(), "{key}");
        assert_eq!(meta(&local), meta(&workers), "{key}");
    }
    let submitted = store(&workers).events(&[EventKind::Submitted]).unwrap();
    assert_eq!(submitted.len(), 6, "every trial ran in a worker");
    assert!(workers.join("trials/1/trial.log").exists());

    // A worker that dies without a result is retried; after its retries the
    // run stops, naming the trial and the log, with nothing recorded as a
    // result or told to the strategy. Once the cause is gone (here a broken
    // worker installation, then repaired), resume runs the search to the
    // same trials as before.
    let worker = dir.path().join("worker.sh");
    std::fs::write(&worker, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&worker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let broken = process.replace(
        "workers = 2",
        &format!(
            "workers = 2\nmax_retries = 1\ncommand = \"{}\"",
            worker.display()
        ),
    );
    let (out, failing) = run(dir.path(), "broken", &broken);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ended with exit status: 1 and no result")
            && stderr(&out).contains("after 1 retries")
            && stderr(&out).contains("is the host's problem"),
        "{}",
        stderr(&out)
    );
    assert!(store(&failing).trials().unwrap().is_empty());
    assert!(store(&failing)
        .events(&[EventKind::Told])
        .unwrap()
        .is_empty());
    assert!(!store(&failing)
        .events(&[EventKind::Retried])
        .unwrap()
        .is_empty());
    std::fs::write(
        &worker,
        format!(
            "#!/bin/sh\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_nas-host")
        ),
    )
    .unwrap();
    let out = nas_host(&["resume", failing.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(contents(&failing), contents(&workers));

    let e = run(
        dir.path(),
        "bad",
        &(CONFIG.to_string() + "\n[executor]\nkind = \"process\"\npartition = \"gpu\"\n"),
    )
    .0;
    assert!(
        stderr(&e).contains("[executor] partition applies only to kind = \"slurm\""),
        "{}",
        stderr(&e)
    );
}

/// Whether a Slurm cluster answers; in CI (`NAS_REQUIRE_SLURM=1`, set by
/// `.ci/run` after it starts one) it must, elsewhere the tests say loudly
/// that they were skipped.
fn slurm_up(test: &str) -> bool {
    let up = Command::new("scontrol")
        .arg("ping")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("UP"));
    if !up {
        assert!(
            std::env::var_os("NAS_REQUIRE_SLURM").is_none(),
            "NAS_REQUIRE_SLURM is set but no Slurm controller answers `scontrol ping`; run `bash scripts/slurm-dev-cluster.sh start`"
        );
        eprintln!("\n*** SKIPPED {test}: no Slurm cluster answers (bash scripts/slurm-dev-cluster.sh start) ***\n");
    }
    up
}

fn slurm_config(extra: &str) -> String {
    CONFIG.to_string()
        + "\n[executor]\nkind = \"slurm\"\nworkers = 3\npoll_s = 0.2\njob_name_prefix = \"nastest\"\n"
        + extra
}

/// The job-state events of a run, as (trial, state).
fn job_states(run_dir: &Path) -> Vec<(u64, String)> {
    store(run_dir)
        .events(&[EventKind::JobState])
        .unwrap()
        .iter()
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            (
                e.trial.unwrap(),
                data["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `check` holds for the run's database (or fails after a minute).
fn wait_for(run_dir: &Path, what: &str, check: impl Fn(&RunStore) -> bool) {
    let start = Instant::now();
    loop {
        let db = run_dir.join(DB_FILE);
        if db.exists() && RunStore::open_read_only(&db).is_ok_and(|s| check(&s)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "waited too long for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running_jobs(store: &RunStore) -> Vec<(u64, String)> {
    let mut last = std::collections::BTreeMap::new();
    for e in store.events(&[EventKind::JobState]).unwrap_or_default() {
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        last.insert(
            e.trial.unwrap(),
            data["state"].as_str().unwrap_or("").to_string(),
        );
    }
    let jobs: std::collections::BTreeMap<u64, String> = store
        .events(&[EventKind::Submitted, EventKind::Retried])
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).ok()?;
            Some((e.trial?, data["job"].as_str()?.to_string()))
        })
        .collect();
    last.into_iter()
        .filter(|(_, s)| s.starts_with("RUNNING"))
        .filter_map(|(t, _)| Some((t, jobs.get(&t)?.clone())))
        .collect()
}

#[test]
fn a_search_on_slurm_runs_trials_concurrently_and_a_failing_job_stops_it_until_resumed() {
    if !slurm_up("the Slurm search test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Trial 2's job fails before the trial starts, twice (max_retries = 1),
    // until the file `fixed` exists: a broken node setup, then repaired.
    // Every job first sleeps a second, so that the controller's polls see
    // jobs running side by side.
    let fixed = dir.path().join("fixed");
    let config = slurm_config(&format!(
        "max_retries = 1\nsetup = \"sleep 1; if [ \\\"$NAS_TRIAL_ID\\\" = 2 ] && [ ! -e {} ]; then echo refusing trial 2; exit 3; fi\"\n",
        fixed.display()
    ));
    let (out, run_dir) = run(dir.path(), "slurm", &config);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("trial 2: slurm job")
            && message.contains("FAILED (exit code 3:0)")
            && message.contains("refusing trial 2")
            && message.contains("after 1 retries")
            && message.contains("is the host's problem"),
        "{message}"
    );
    let retried = store(&run_dir).events(&[EventKind::Retried]).unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].trial, Some(2));
    assert!(store(&run_dir).trials().unwrap().iter().all(|t| t.id != 2));
    std::fs::write(&fixed, "").unwrap();
    let out = nas_host(&["resume", run_dir.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trials = store(&run_dir).trials().unwrap();
    assert_eq!(trials.len(), 6);
    for t in &trials {
        assert_eq!(t.status, TrialStatus::Completed, "{:?}", t.reason);
    }
    // Concurrency: at some moment two or more jobs were RUNNING.
    let mut running = std::collections::BTreeSet::new();
    let mut most = 0;
    for (trial, state) in job_states(&run_dir) {
        if state.starts_with("RUNNING") {
            running.insert(trial);
        } else {
            running.remove(&trial);
        }
        most = most.max(running.len());
    }
    assert!(
        most >= 2,
        "at most {most} jobs ran at once: {:?}",
        job_states(&run_dir)
    );
    let script = std::fs::read_to_string(run_dir.join("trials/1/job.sh")).unwrap();
    assert!(
        script.contains("#SBATCH --job-name=nastest-exec-1")
            && script.contains("#SBATCH --cpus-per-task=1"),
        "{script}"
    );
}

#[test]
fn a_cancelled_job_is_retried_and_a_killed_controller_re_attaches_on_resume() {
    if !slurm_up("the Slurm cancel and resume test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("resume");
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("config.toml");
    let config = slurm_config("max_retries = 2\n")
        .replace("max_trials = 6", "max_trials = 4")
        .replace("epochs = 2", "epochs = 6")
        .replace("train_samples = 400", "train_samples = 1600")
        .replace("workers = 3", "workers = 2");
    std::fs::write(&path, config).unwrap();
    let runs = folder.join("runs");
    let run_dir = runs.join("exec");
    let mut controller = nas_host_command(&[
        "run",
        path.to_str().unwrap(),
        "--quiet",
        "--output-dir",
        runs.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();

    // Cancel the first job that runs: the trial is retried.
    wait_for(&run_dir, "a running job", |s| !running_jobs(s).is_empty());
    let (cancelled_trial, job) = running_jobs(&store(&run_dir))[0].clone();
    assert!(Command::new("scancel")
        .arg(&job)
        .status()
        .unwrap()
        .success());
    wait_for(&run_dir, "the retry", |s| {
        s.events(&[EventKind::Retried]).is_ok_and(|r| !r.is_empty())
    });

    // Kill the controller while jobs run; resume must not submit them again.
    wait_for(&run_dir, "a running job after the retry", |s| {
        !running_jobs(s).is_empty()
    });
    controller.kill().unwrap();
    controller.wait().unwrap();
    let in_flight = running_jobs(&store(&run_dir));
    assert!(!in_flight.is_empty());
    let out = nas_host(&["resume", run_dir.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let s = store(&run_dir);
    let trials = s.trials().unwrap();
    assert_eq!(
        trials.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert!(
        trials.iter().all(|t| t.status == TrialStatus::Completed),
        "{:?}",
        trials.iter().map(|t| &t.reason).collect::<Vec<_>>()
    );
    let retried = s.events(&[EventKind::Retried]).unwrap();
    let why: serde_json::Value = serde_json::from_str(&retried[0].data).unwrap();
    assert_eq!(retried[0].trial, Some(cancelled_trial));
    assert!(
        why["why"]
            .as_str()
            .unwrap()
            .contains(&format!("slurm job {job} CANCELLED")),
        "{why}"
    );
    // Jobs running when the controller died were followed, not submitted again.
    let submitted: Vec<u64> = s
        .events(&[EventKind::Submitted])
        .unwrap()
        .iter()
        .filter_map(|e| e.trial)
        .collect();
    for (trial, _) in &in_flight {
        assert_eq!(
            submitted.iter().filter(|t| *t == trial).count(),
            1,
            "trial {trial} was submitted again"
        );
    }
}
