//! `nas-host compare CONFIG --strategies a,b --seeds N --budget K`.

use crate::config::RunConfig;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The run config whose space, evaluator and objective every run shares.
    config: PathBuf,
    /// Comma-separated strategies: built-in names (`random`) or component paths.
    #[arg(long, value_delimiter = ',', required = true)]
    strategies: Vec<String>,
    /// Seeds per strategy (0, 1, ... N-1).
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Trials per run.
    #[arg(long, default_value_t = 100)]
    budget: u64,
    /// The metric reported for each run's best trial.
    #[arg(long, default_value = "test_accuracy")]
    report: String,
    /// Override [run] output_dir.
    #[arg(long)]
    output_dir: Option<PathBuf>,
}

pub(crate) fn run(args: CompareArgs) -> Result<ExitCode> {
    let mut config = RunConfig::load(&args.config)?;
    if let Some(dir) = args.output_dir {
        config.run.output_dir = dir;
    }
    if args.seeds == 0 || args.budget == 0 {
        bail!("--seeds and --budget must be at least 1");
    }
    let comparison = crate::compare::compare(
        &config,
        &args.strategies,
        args.seeds,
        args.budget,
        &args.report,
    )?;
    print!("{}", comparison.table());
    println!(
        "saved: {}/best_so_far.csv, final.csv, best_so_far.svg",
        comparison.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
