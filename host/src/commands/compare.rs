//! `nas-host compare CONFIG --strategies a,rea=evolution --seeds N --budget K`.

use crate::compare::{Contender, Plan};
use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The run config whose space, evaluator and objective every run shares.
    config: PathBuf,
    /// Comma-separated contenders: a strategy (a built-in name such as
    /// `random`, or a component path), or NAME=STRATEGY to give a setting
    /// its own name (`rea=evolution`), so one strategy can run with several
    /// settings.
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
    /// A contender's config key, as `NAME.KEY=VALUE` (TOML value), for
    /// example `asha.budgets=[12,200]` or `rea.population=10`; repeat for more.
    #[arg(long = "set")]
    settings: Vec<String>,
    /// The metric reported for the best-so-far trial.
    #[arg(long, default_value = "test_accuracy")]
    report: String,
    /// Where the printed tables read the curves: trials, or training
    /// seconds with `--by cost` (default: 10, 25, 50, 100, ... and the budget).
    #[arg(long, value_delimiter = ',')]
    checkpoints: Vec<f64>,
    /// The comparison's folder under the output folder (default: the run's
    /// name and `-compare`); an existing one is never written into.
    #[arg(long)]
    name: Option<String>,
    /// Table mode, by cost: a reused trial (a repeated architecture) costs
    /// its first evaluation's simulated seconds again; without it the
    /// look-up is free but counts as a trial.
    #[arg(long)]
    charge_reused: bool,
    /// Override [run] output_dir.
    #[arg(long)]
    output_dir: Option<PathBuf>,
}

pub(crate) fn run(args: CompareArgs) -> Result<ExitCode> {
    let mut config = RunConfig::load(&args.config)?;
    if let Some(dir) = args.output_dir {
        config.run.output_dir = dir;
    }
    let mut contenders: Vec<Contender> = args
        .strategies
        .iter()
        .map(|entry| {
            let (name, strategy) = match entry.split_once('=') {
                Some((name, strategy)) => (name.trim(), strategy.trim()),
                None => (entry.as_str(), entry.as_str()),
            };
            Contender {
                name: name.to_string(),
                strategy: strategy.to_string(),
                settings: toml::Table::new(),
            }
        })
        .collect();
    for setting in &args.settings {
        let (name, key, value) = parse_setting(setting)?;
        let Some(contender) = contenders.iter_mut().find(|c| c.name == name) else {
            bail!("--set {setting}: `{name}` is not one of --strategies");
        };
        contender.settings.insert(key, value);
    }
    let plan = Plan {
        contenders,
        seeds: args.seeds,
        budget: args.budget,
        axis: args.by,
        report: args.report,
        checkpoints: args.checkpoints,
        name: args.name,
        charge_reused: args.charge_reused,
    };
    let comparison = crate::compare::compare(&config, &plan)?;
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
