//! `nas-host compare CONFIG --strategies a,b --seeds N --budget K`.

use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
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
    /// Trials per run, or training seconds per run with `--by cost`.
    #[arg(long, default_value_t = 100)]
    budget: u64,
    /// What the budget counts: `trials`, or `cost` (training seconds,
    /// simulated in table mode; fair for multi-fidelity strategies).
    #[arg(long, value_enum, default_value = "trials")]
    by: crate::compare::Axis,
    /// A strategy's config key, as `STRATEGY.KEY=VALUE` (TOML value), for
    /// example `asha.budgets=[12,200]`; repeat for more.
    #[arg(long = "set")]
    settings: Vec<String>,
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
    let mut strategies: Vec<(String, toml::Table)> = args
        .strategies
        .iter()
        .map(|s| (s.clone(), toml::Table::new()))
        .collect();
    for setting in &args.settings {
        let (strategy, key, value) = parse_setting(setting)?;
        let Some((_, table)) = strategies.iter_mut().find(|(s, _)| *s == strategy) else {
            bail!("--set {setting}: `{strategy}` is not one of --strategies");
        };
        table.insert(key, value);
    }
    let comparison = crate::compare::compare(
        &config,
        &strategies,
        args.seeds,
        (args.budget, args.by),
        &args.report,
    )?;
    print!("{}", comparison.table());
    println!(
        "saved: {}/best_so_far.csv, final.csv, best_so_far.svg",
        comparison.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `STRATEGY.KEY=VALUE` with a TOML value.
fn parse_setting(text: &str) -> Result<(String, String, toml::Value)> {
    let parsed = text.split_once('=').and_then(|(path, value)| {
        let (strategy, key) = path.trim().split_once('.')?;
        Some((strategy.to_string(), key.to_string(), value.trim()))
    });
    let Some((strategy, key, value)) = parsed else {
        bail!("--set {text}: write STRATEGY.KEY=VALUE, for example asha.budgets=[12,200]");
    };
    let value = format!("v = {value}")
        .parse::<toml::Table>()
        .map_err(|e| anyhow::anyhow!("--set {text}: `{value}` is not a TOML value ({e})"))?
        .remove("v")
        .with_context(|| format!("--set {text}: no value"))?;
    Ok((strategy, key, value))
}
