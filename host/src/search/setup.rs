//! Setting a run up from its config: the evaluator (which loads the data or
//! the table) and the plugins, initialised; and the facts the store keeps
//! for the run's readers. Every error of bad input surfaces here, before
//! anything is written.

use crate::config::{EvaluatorKind, ObjectiveConfig, RunConfig};
use crate::evaluator::{Evaluator, TableLookup, Trainer};
use crate::executor::ExecutorKind;
use crate::ir::{Dimension, Objective};
use crate::plugin::{ComponentCache, PluginRuntime, PluginSource, SpacePlugin, StrategyPlugin};
use crate::results::RunFacts;
use crate::table::Table;
use anyhow::{bail, Context, Result};
use std::rc::Rc;

/// The plugins and the evaluator of a run, set up from its config.
pub(super) struct Parts {
    pub(super) evaluator: Rc<dyn Evaluator>,
    pub(super) space: SpacePlugin,
    pub(super) strategy: StrategyPlugin,
    pub(super) dims: Vec<Dimension>,
    pub(super) objectives: Vec<Objective>,
    /// `[distill]`: the teacher every trial also learns from.
    pub(super) teacher: Option<crate::train::distill::TeacherSpec>,
}

/// Loads the data (or table) and the plugins, and initialises them.
pub(super) fn prepare(config: &RunConfig) -> Result<Parts> {
    let evaluator = evaluator(config)?;
    let runtime = PluginRuntime::new(config.plugins.clone(), ComponentCache::default_location())?;
    let mut space = runtime
        .search_space(&PluginSource::parse(&config.space.plugin).context("[space] plugin")?)?;
    let mut dims = space
        .init(&plugin_json(&config.space.config)?, evaluator.task())
        .context("[space] config")?;
    if let Some(clash) = dims
        .iter()
        .find(|d| d.name.starts_with(crate::train::searched::PREFIX))
    {
        bail!(
            "search space `{}` has a dimension `{}`, a name kept for searched [train] keys; rename it in the space",
            config.space.plugin,
            clash.name
        );
    }
    // Searched training hyperparameters come after the space's dimensions.
    dims.extend(config.searched.iter().map(|s| s.dimension()));
    if let Some(table) = evaluator.table() {
        if !config.evaluator.coverage_checked {
            check_coverage(table, &mut space, &dims)?;
        }
    }
    let mut strategy = runtime
        .strategy(&PluginSource::parse(&config.strategy.plugin).context("[strategy] plugin")?)?;
    let objectives = objectives(config);
    strategy
        .init(
            &dims,
            &objectives,
            &plugin_json(&config.strategy.config)?,
            config.run.seed,
        )
        .context("[strategy] config")?;
    let teacher = match &config.distill {
        Some(d) => Some(d.resolve(&evaluator.task())?),
        None => None,
    };
    Ok(Parts {
        evaluator,
        space,
        strategy,
        dims,
        objectives,
        teacher,
    })
}

/// Checks a table run's coverage of its space (what each run's setup
/// does), for `compare` to do once for all its runs.
pub(crate) fn check_table(config: &RunConfig) -> Result<()> {
    let table = Table::load(&config.evaluator.table()?)?;
    let runtime = PluginRuntime::new(config.plugins.clone(), ComponentCache::default_location())?;
    let mut space = runtime
        .search_space(&PluginSource::parse(&config.space.plugin).context("[space] plugin")?)?;
    let dims = space
        .init(
            &plugin_json(&config.space.config)?,
            config.evaluator.task()?,
        )
        .context("[space] config")?;
    check_coverage(&table, &mut space, &dims)
}

/// The most architectures a table's coverage is checked over.
const COVERAGE_CAP: usize = 1_000_000;

/// Checks, before any trial, that `table` holds every architecture of the
/// space (`dims`, built by `space`), unless the table allows partial
/// coverage. A proposal the space cannot build is not counted: its trial
/// fails whatever the table holds.
fn check_coverage(table: &Table, space: &mut SpacePlugin, dims: &[Dimension]) -> Result<()> {
    let partial = "set [evaluator] allow_partial = true to search anyway (a trial of an architecture the table lacks then fails)";
    let Some(points) = crate::assignment::enumerate(dims, COVERAGE_CAP) else {
        if table.allow_partial() {
            return Ok(());
        }
        bail!("the space has real dimensions or more than {COVERAGE_CAP} architectures, so no table covers it; {partial}");
    };
    let mut missing = std::collections::BTreeSet::new();
    let mut keys = std::collections::HashSet::new();
    for point in &points {
        let Ok(network) = space.build(point) else {
            continue;
        };
        if !table.contains(&network.key) {
            missing.insert(network.key.clone());
        }
        keys.insert(network.key);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let sample: Vec<&str> = missing.iter().take(3).map(String::as_str).collect();
    let what = format!(
        "the evaluator table lacks {} of the space's {} architectures, for example `{}`",
        missing.len(),
        keys.len(),
        sample.join("`, `")
    );
    if table.allow_partial() {
        eprintln!("note: {what}; their trials fail ([evaluator] allow_partial)");
        return Ok(());
    }
    bail!("{what}; complete the table, or {partial}")
}

/// What the store keeps of `config` for `status` and `report`.
pub(super) fn facts(config: &RunConfig) -> RunFacts {
    RunFacts {
        name: config.name().to_string(),
        space: config.space.plugin.clone(),
        strategy: config.strategy.plugin.clone(),
        objectives: objectives(config),
        max_trials: config.run.max_trials,
        max_time_s: config.run.max_time_s,
    }
}

fn objectives(config: &RunConfig) -> Vec<Objective> {
    config
        .objectives
        .iter()
        .map(ObjectiveConfig::objective)
        .collect()
}

fn plugin_json(table: &toml::Table) -> Result<String> {
    Ok(serde_json::to_string(table)?)
}

/// The evaluator the config asks for (this loads, or checks, the data; or loads the table).
fn evaluator(config: &RunConfig) -> Result<Rc<dyn Evaluator>> {
    Ok(match config.evaluator.kind {
        EvaluatorKind::Train | EvaluatorKind::Proxy => {
            let device = crate::device::parse(&config.run.device)?;
            let seed = config.data.seed.unwrap_or(config.run.seed);
            let batch = config.train.eval_batch_size;
            // Workers load the data where they train; this process only
            // checks it, and loads it for the best trial's report at the end.
            let trainer = if config.executor.kind == ExecutorKind::Local {
                Trainer::loaded(&config.data, seed, &device, batch)
            } else {
                Trainer::deferred(&config.data, seed, &device, batch)
            };
            let trainer = trainer.context("load the data")?;
            Rc::new(if config.evaluator.kind == EvaluatorKind::Proxy {
                trainer.scoring_only()
            } else {
                trainer
            })
        }
        EvaluatorKind::Table => Rc::new(TableLookup {
            table: Table::load(&config.evaluator.table()?)?,
            task: config.evaluator.task()?,
        }),
    })
}
