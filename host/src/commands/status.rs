//! `nas-host status RUN`: progress, best so far, failures and time used,
//! read from the run database without disturbing a run that is writing it.

use crate::config::RunConfig;
use crate::contract::TrialStatus;
use crate::store::{status_text, RunStore, DB_FILE};
use anyhow::{Context, Result};
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
    let config_text = store
        .meta("config")?
        .context("the run database records no config")?;
    let config = RunConfig::parse(&config_text, "the run's recorded config")?;
    let trials = store.trials()?;
    let objective = &config.objectives[0];
    let maximize = objective.direction == crate::config::DirectionConfig::Maximize;
    let best = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed)
        .filter_map(|t| t.metrics.get(&objective.metric).map(|v| (t.id, *v)))
        .reduce(|a, b| {
            if (b.1 > a.1) == maximize && b.1 != a.1 {
                b
            } else {
                a
            }
        });
    println!("run:       {} ({})", config.name(), args.run.display());
    println!(
        "trials:    {} of max_trials {}",
        trials.len(),
        config.run.max_trials
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
    let used: f64 = trials.iter().map(|t| t.seconds).sum();
    let limit = config
        .run
        .max_time_s
        .map_or("no limit".to_string(), |l| format!("max_time_s {l}"));
    println!("time:      {used:.1} s in trials ({limit})");
    match store.meta("stop_reason")? {
        Some(reason) => println!("state:     finished: {reason}"),
        None => println!("state:     running, or stopped before it finished"),
    }
    Ok(ExitCode::SUCCESS)
}
