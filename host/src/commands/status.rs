//! `nas-host status RUN`: progress, best so far, failures, time used, the
//! trials in flight and whether a process is running the run, read from the
//! run database without disturbing a run that is writing it.

use crate::ir::TrialStatus;
use crate::lock::RunLock;
use crate::results::{best_trial, RunFacts};
use crate::store::{status_text, EventKind, RunStore, TrialRecord, DB_FILE};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The run directory (runs/<name>).
    run: PathBuf,
}

pub(crate) fn run(args: StatusArgs) -> Result<ExitCode> {
    let store = RunStore::open_read_only(&args.run.join(DB_FILE))?;
    let facts = RunFacts::load(&store)?;
    let trials = store.trials()?;
    let objective = facts.objective();
    let best = best_trial(&trials, objective).map(|t| (t.id, t.metrics[&objective.metric]));
    println!("run:       {} ({})", facts.name, args.run.display());
    println!(
        "trials:    {} of max_trials {}",
        trials.len(),
        facts.max_trials
    );
    for st in [
        TrialStatus::Completed,
        TrialStatus::Failed,
        TrialStatus::Pruned,
        TrialStatus::Infeasible,
    ] {
        let n = trials.iter().filter(|t| t.status == st).count();
        if n > 0 {
            println!("  {:<11}{n}", status_text(st));
        }
    }
    let reused = trials.iter().filter(|t| t.reused_from.is_some()).count();
    if reused > 0 {
        println!("  {:<11}{reused} (of the completed)", "reused");
    }
    match best {
        Some((id, v)) => println!("best:      {} = {v:.4} (trial {id})", objective.metric),
        None => println!("best:      none yet"),
    }
    // A float sum of nothing is -0.0; shown as such it puzzles.
    let used: f64 = trials.iter().map(|t| t.seconds).sum::<f64>() + 0.0;
    let limit = facts
        .max_time_s
        .map_or("no limit".to_string(), |l| format!("max_time_s {l}"));
    println!(
        "time:      {:.1} s on the run's clock, {used:.1} s in trials ({limit})",
        store.last_elapsed()?
    );
    let holder = RunLock::holder(&args.run);
    let jobs = job_states(&store)?;
    for (id, epochs) in in_flight(&store, &trials)? {
        let state = if holder.is_some() {
            "running"
        } else {
            "interrupted"
        };
        let job = jobs.get(&id).map_or(String::new(), |j| format!(" ({j})"));
        println!("  trial {id:<5}{state}, {epochs} epochs finished{job}");
    }
    match (holder, store.meta("stop_reason")?) {
        (Some(who), _) => println!("state:     running ({who})"),
        (None, Some(reason)) => println!("state:     finished: {reason}"),
        (None, None) => println!(
            "state:     stopped before it finished; continue with `nas-host resume {}`",
            args.run.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The last executor state of each trial's Slurm job: `slurm job 12 RUNNING on node3`.
fn job_states(store: &RunStore) -> Result<std::collections::BTreeMap<u64, String>> {
    let mut jobs = std::collections::BTreeMap::new();
    for e in store.events(&[
        EventKind::Submitted,
        EventKind::JobState,
        EventKind::Retried,
    ])? {
        let (Some(id), Ok(data)) = (e.trial, serde_json::from_str::<serde_json::Value>(&e.data))
        else {
            continue;
        };
        let Some(job) = data["job"].as_str() else {
            continue;
        };
        let state = data["state"].as_str().unwrap_or("submitted");
        jobs.insert(id, format!("slurm job {job} {state}"));
    }
    Ok(jobs)
}

/// Trials started but not stored, with the epochs each has finished.
fn in_flight(store: &RunStore, trials: &[TrialRecord]) -> Result<Vec<(u64, usize)>> {
    let mut open: std::collections::BTreeMap<u64, usize> = Default::default();
    for e in store.events(&[EventKind::TrialStarted, EventKind::Epoch])? {
        let Some(id) = e.trial else { continue };
        if e.kind == EventKind::TrialStarted {
            // A restart counts again from its checkpoint's epochs.
            open.entry(id).or_insert(0);
        } else if let Ok(epoch) = serde_json::from_str::<crate::ir::EpochRecord>(&e.data) {
            open.insert(id, epoch.epoch as usize);
        }
    }
    for t in trials {
        open.remove(&t.id);
    }
    Ok(open.into_iter().collect())
}
