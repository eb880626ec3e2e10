//! The search loop of `nas-host run`: ask the strategy, check and build each
//! proposal with the space, evaluate it (train it, or look it up in a table;
//! or reuse an identical earlier trial), record it, tell the strategy; stop at
//! `max_trials`, `max_time_s`, or when the strategy finishes. Then the best
//! trial's architecture goes to `best/` with its summary and its metrics on
//! the held-out split.

use crate::assignment;
use crate::config::{DirectionConfig, EvaluatorKind, RunConfig};
use crate::contract::{Direction, Metric, Objective, Proposal, TrialResult, TrialStatus};
use crate::data;
use crate::evaluator::{Evaluator, TableLookup, Trainer};
use crate::network::{analyse, grouped, summary};
use crate::plugin::{ComponentCache, PluginRuntime, PluginSource, SpacePlugin, StrategyPlugin};
use crate::progress::{Event, Reporter};
use crate::store::{RunStore, TrialRecord, DB_FILE};
use crate::table::Table;
use crate::trial::TrialSpec;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// The best architecture of a run, with its summary.
#[derive(Debug, Clone)]
pub struct BestModel {
    /// The trial that found it.
    pub trial: TrialRecord,
    /// Its objective value.
    pub objective: f64,
    /// Its metrics on the held-out split (`test_accuracy`, ...), never used for search decisions.
    pub held_out: BTreeMap<String, f64>,
    /// The Keras-style summary table.
    pub summary: String,
    /// Folder with architecture, summary, metrics (and weights when trained).
    pub dir: PathBuf,
}

/// The completed, not reused trials that no other such trial dominates
/// under `objectives` (at least as good in all, better in one), by id.
pub fn pareto_front(trials: &[TrialRecord], objectives: &[Objective]) -> Vec<u64> {
    let scored: Vec<(u64, Vec<f64>)> = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed && t.reused_from.is_none())
        .filter_map(|t| {
            let signed = objectives.iter().map(|o| {
                let v = *t.metrics.get(&o.metric)?;
                Some(if o.direction == Direction::Maximize {
                    v
                } else {
                    -v
                })
            });
            Some((t.id, signed.collect::<Option<Vec<f64>>>()?))
        })
        .collect();
    let dominates = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y)
    };
    scored
        .iter()
        .filter(|(_, s)| !scored.iter().any(|(_, o)| dominates(o, s)))
        .map(|(id, _)| *id)
        .collect()
}

/// What a run did.
pub struct RunResult {
    /// The run directory.
    pub dir: PathBuf,
    /// Every trial, by id.
    pub trials: Vec<TrialRecord>,
    /// Why the run stopped.
    pub stop_reason: String,
    /// The best completed trial, if any completed.
    pub best: Option<BestModel>,
    /// With two or more objectives: the Pareto front's trial ids.
    pub pareto: Vec<u64>,
}

/// The seed of trial `id` in a run seeded `seed` (SplitMix64 of both), recorded with the trial.
pub fn trial_seed(seed: u64, id: u64) -> u64 {
    let mut z = seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn objectives(config: &RunConfig) -> Vec<Objective> {
    config
        .objectives
        .iter()
        .map(|o| Objective {
            metric: o.metric.clone(),
            direction: if o.direction == DirectionConfig::Maximize {
                Direction::Maximize
            } else {
                Direction::Minimize
            },
        })
        .collect()
}

fn plugin_json(table: &toml::Table) -> Result<String> {
    Ok(serde_json::to_string(table)?)
}

/// Whether `a` is better than `b` under `objective`.
pub fn better(a: f64, b: f64, objective: &Objective) -> bool {
    match objective.direction {
        Direction::Maximize => a > b,
        Direction::Minimize => a < b,
    }
}

/// The evaluator the config asks for (this loads the data or the table).
fn evaluator(config: &RunConfig) -> Result<Box<dyn Evaluator>> {
    Ok(match config.evaluator.kind {
        EvaluatorKind::Train => {
            let device = crate::device::parse(&config.run.device)?;
            let data_seed = config.data.seed.unwrap_or(config.run.seed);
            let data = data::load(&config.data, data_seed, &device).context("load the data")?;
            Box::new(Trainer {
                data,
                device: config.run.device.clone(),
                eval_batch_size: config.train.eval_batch_size,
            })
        }
        EvaluatorKind::Table => Box::new(TableLookup {
            table: Table::load(&config.evaluator.table()?)?,
            task: config.evaluator.task()?,
        }),
    })
}

/// The run's state while it searches.
struct Search<'a> {
    config: &'a RunConfig,
    dir: PathBuf,
    store: RunStore,
    evaluator: Box<dyn Evaluator>,
    space: SpacePlugin,
    strategy: StrategyPlugin,
    dims: Vec<crate::contract::Dimension>,
    objective: Objective,
    best: Option<(f64, u64)>,
    trials: Vec<TrialRecord>,
    /// Seconds of evaluation so far: simulated in table mode.
    simulated_seconds: f64,
    /// Trials that failed so far (for `max_failures`).
    failures: u64,
}

/// Runs the search `config` describes, reporting to `reporter`.
pub fn run(config: &RunConfig, reporter: &mut Reporter) -> Result<RunResult> {
    let dir = config.run.output_dir.join(config.name());
    if dir.join(DB_FILE).exists() {
        bail!("run directory {} already holds a run; choose another [run] name (or --name), or delete the folder", dir.display());
    }
    // Everything that can fail on bad input happens before the run directory
    // exists, so a failed start leaves nothing that blocks the next try.
    let seed = config.run.seed;
    let evaluator = evaluator(config)?;
    let runtime = PluginRuntime::new(config.plugins.clone(), ComponentCache::default_location())?;
    let mut space = runtime
        .search_space(&PluginSource::parse(&config.space.plugin).context("[space] plugin")?)?;
    let dims = space
        .init(&plugin_json(&config.space.config)?, evaluator.task())
        .context("[space] config")?;
    let mut strategy = runtime
        .strategy(&PluginSource::parse(&config.strategy.plugin).context("[strategy] plugin")?)?;
    let objectives = objectives(config);
    strategy
        .init(
            &dims,
            &objectives,
            &plugin_json(&config.strategy.config)?,
            seed,
        )
        .context("[strategy] config")?;

    std::fs::create_dir_all(&dir)
        .with_context(|| format!("create run directory {}", dir.display()))?;
    std::fs::write(dir.join("config.toml"), toml::to_string(config)?)
        .context("write the resolved config")?;
    let store = RunStore::open(&dir.join(DB_FILE))?;
    store.set_meta("nas_host_version", env!("CARGO_PKG_VERSION"))?;
    store.set_meta("config", &toml::to_string(config)?)?;
    store.set_meta("seed", &seed.to_string())?;
    store.set_meta("data_seed", &config.data.seed.unwrap_or(seed).to_string())?;
    store.set_meta("strategy_seed", &seed.to_string())?;
    store.set_meta("data", &evaluator.description())?;
    store.set_meta("task", &serde_json::to_string(&evaluator.task())?)?;

    reporter.event(Event::RunStarted {
        name: config.name(),
        data: &evaluator.description(),
        max_trials: config.run.max_trials,
    });
    let mut search = Search {
        config,
        dir: dir.clone(),
        store,
        evaluator,
        space,
        strategy,
        dims,
        objective: objectives[0].clone(),
        best: None,
        trials: Vec::new(),
        simulated_seconds: 0.0,
        failures: 0,
    };
    let stop_reason = search.search(reporter)?;
    reporter.event(Event::RunFinished {
        reason: &stop_reason,
    });
    search.store.set_meta("stop_reason", &stop_reason)?;
    let best = search.finish()?;
    let pareto = if objectives.len() > 1 {
        pareto_front(&search.trials, &objectives)
    } else {
        Vec::new()
    };
    search
        .store
        .set_meta("pareto_front", &serde_json::to_string(&pareto)?)?;
    Ok(RunResult {
        dir,
        trials: search.trials,
        stop_reason,
        best,
        pareto,
    })
}

impl Search<'_> {
    fn search(&mut self, reporter: &mut Reporter) -> Result<String> {
        let started = Instant::now();
        loop {
            if crate::interrupt::requested() {
                return Ok(crate::interrupt::STOP_REASON.into());
            }
            let done = self.trials.len() as u64;
            if done >= self.config.run.max_trials {
                return Ok(format!(
                    "reached max_trials = {}",
                    self.config.run.max_trials
                ));
            }
            let used = if self.evaluator.simulated_time() {
                self.simulated_seconds
            } else {
                started.elapsed().as_secs_f64()
            };
            if let Some(limit) = self.config.run.max_time_s.filter(|l| used >= *l) {
                let kind = if self.evaluator.simulated_time() {
                    "simulated "
                } else {
                    ""
                };
                return Ok(format!("reached max_time_s = {limit} ({kind}seconds)"));
            }
            let proposals = self
                .strategy
                .ask(1)
                .context("asking the strategy for proposals")?;
            if proposals.is_empty() {
                return Ok("the strategy finished".into());
            }
            for proposal in proposals {
                let record = self.evaluate(&proposal, done + 1, reporter)?;
                self.store.insert(&record)?;
                if record.reused_from.is_none() {
                    self.simulated_seconds +=
                        record.metrics.get("train_seconds").copied().unwrap_or(0.0);
                }
                if record.status == TrialStatus::Completed {
                    if let Some(&v) = record.metrics.get(&self.objective.metric) {
                        if self.best.is_none_or(|(b, _)| better(v, b, &self.objective)) {
                            self.best = Some((v, record.id));
                        }
                    }
                }
                reporter.event(Event::TrialFinished {
                    trial: &record,
                    best: self.best.map(|b| b.0),
                    metric: &self.objective.metric,
                });
                self.strategy
                    .tell(&[result_of(&proposal, &record)])
                    .context("telling the strategy a result")?;
                self.failures += u64::from(record.status == TrialStatus::Failed);
                self.trials.push(record);
                if let Some(why) = self
                    .config
                    .run
                    .max_failures
                    .and_then(|m| m.exceeded(self.failures, self.trials.len() as u64))
                {
                    return Ok(why);
                }
            }
        }
    }

    /// Checks, builds and evaluates one proposal; returns its record.
    fn evaluate(
        &mut self,
        proposal: &Proposal,
        id: u64,
        reporter: &mut Reporter,
    ) -> Result<TrialRecord> {
        let budget = proposal.budget.unwrap_or(self.config.train.epochs);
        let seed = trial_seed(self.config.run.seed, id);
        let mut record = TrialRecord {
            id,
            assignment: proposal.assignment.clone(),
            key: None,
            network: None,
            budget,
            status: TrialStatus::Failed,
            reason: None,
            metrics: Default::default(),
            curve: Vec::new(),
            seed,
            seconds: 0.0,
            reused_from: None,
            tag: proposal.tag.clone(),
            weights: None,
        };
        if let Err(e) = assignment::validate(&self.dims, &proposal.assignment) {
            record.reason = Some(format!(
                "strategy `{}` proposed an invalid assignment: it {e}",
                self.strategy.name()
            ));
            return Ok(record);
        }
        if budget == 0 {
            record.reason = Some("the proposal's budget is 0 epochs".into());
            return Ok(record);
        }
        let network = match self.space.build(&proposal.assignment) {
            Ok(n) => n,
            Err(e) if self.space.is_usable() => {
                record.reason = Some(format!("{e:#}"));
                return Ok(record);
            }
            Err(e) => return Err(e.context("building a proposal's network")),
        };
        record.key = Some(network.key.clone());
        record.network = Some(network.clone());
        if let Some(reason) = self.violated_constraint(&network, &mut record)? {
            record.status = TrialStatus::Infeasible;
            record.reason = Some(reason);
            return Ok(record);
        }
        if let Some(earlier) = self.store.completed_with(&network.key, budget)? {
            record.status = TrialStatus::Completed;
            record.metrics = earlier.metrics;
            record.curve = earlier.curve;
            record.weights = earlier.weights;
            record.reused_from = Some(earlier.id);
            return Ok(record);
        }
        let spec = TrialSpec {
            trial_id: id,
            network,
            task: self.evaluator.task(),
            data: self.config.data.clone(),
            data_seed: self.config.data.seed.unwrap_or(self.config.run.seed),
            train: self.config.train.clone(),
            epochs: budget,
            seed,
            device: self.config.run.device.clone(),
            dir: self.dir.join("trials").join(id.to_string()),
            max_latency_ms: self.config.constraints.max_latency_ms,
        };
        reporter.event(Event::TrialStarted {
            id,
            assignment: &assignment::text(&proposal.assignment),
            epochs: budget,
        });
        let started = Instant::now();
        let outcome = self
            .evaluator
            .evaluate(&spec, &mut |p| reporter.event(Event::Training(p)))?;
        record.seconds = started.elapsed().as_secs_f64();
        record.status = outcome.status;
        record.reason = outcome.reason;
        record.metrics = outcome.metrics;
        record.curve = outcome.curve;
        record.weights = outcome.weights.map(|w| w.display().to_string());
        Ok(record)
    }

    /// The `[constraints]` a network breaks by its shape alone (parameters,
    /// FLOPs), recording both counts in `record`; an invalid network is left
    /// to the evaluator, which reports its shape error.
    fn violated_constraint(
        &self,
        network: &crate::contract::Network,
        record: &mut TrialRecord,
    ) -> Result<Option<String>> {
        let c = &self.config.constraints;
        if c.max_params.is_none() && c.max_flops.is_none() {
            return Ok(None);
        }
        let Ok(analysis) = analyse(network, &self.evaluator.task()) else {
            return Ok(None);
        };
        let (params, flops) = (analysis.params(), analysis.flops());
        record.metrics.insert("params".into(), params as f64);
        record.metrics.insert("flops".into(), flops as f64);
        Ok(match (c.max_params, c.max_flops) {
            (Some(max), _) if params > max => Some(format!(
                "params {} > max_params {}",
                grouped(params),
                grouped(max)
            )),
            (_, Some(max)) if flops > max => Some(format!(
                "flops {} > max_flops {}",
                grouped(flops),
                grouped(max)
            )),
            _ => None,
        })
    }

    /// Writes `best/` for the best completed trial and reports it on the held-out split.
    fn finish(&self) -> Result<Option<BestModel>> {
        let Some((objective, id)) = self.best else {
            return Ok(None);
        };
        let trial = self
            .trials
            .iter()
            .find(|t| t.id == id)
            .expect("best trial is recorded")
            .clone();
        let network = trial
            .network
            .clone()
            .expect("completed trials have networks");
        let dir = self.dir.join("best");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let held_out = self.evaluator.report_best(&trial, &dir)?;
        let summary = summary(&network, &self.evaluator.task())?;
        std::fs::write(
            dir.join("architecture.json"),
            serde_json::to_string_pretty(&network)?,
        )?;
        std::fs::write(dir.join("summary.txt"), &summary)?;
        let mut metrics = trial.metrics.clone();
        metrics.extend(held_out.clone());
        let facts = serde_json::json!({"trial": trial.id, "key": trial.key, "task": self.evaluator.task(), "seed": trial.seed, "epochs": trial.budget, "metrics": metrics});
        std::fs::write(
            dir.join("metrics.json"),
            serde_json::to_string_pretty(&facts)?,
        )?;
        self.store.set_meta("best_trial", &trial.id.to_string())?;
        for (k, v) in &held_out {
            self.store.set_meta(k, &v.to_string())?;
        }
        Ok(Some(BestModel {
            trial,
            objective,
            held_out,
            summary,
            dir,
        }))
    }
}

/// The result the strategy is told for a record.
fn result_of(proposal: &Proposal, record: &TrialRecord) -> TrialResult {
    let metric = |(name, value): (&String, &f64)| Metric {
        name: name.clone(),
        value: *value,
    };
    TrialResult {
        proposal: proposal.clone(),
        trial_id: record.id,
        status: record.status,
        metrics: record.metrics.iter().map(metric).collect(),
        curve: record
            .curve
            .iter()
            .map(|e| {
                [
                    ("epoch", e.epoch as f64),
                    ("train_loss", e.train_loss),
                    ("val_loss", e.val_loss),
                    ("val_accuracy", e.val_accuracy),
                    ("seconds", e.seconds),
                ]
                .into_iter()
                .map(|(n, v)| Metric {
                    name: n.into(),
                    value: v,
                })
                .collect()
            })
            .collect(),
        reason: record.reason.clone(),
    }
}
