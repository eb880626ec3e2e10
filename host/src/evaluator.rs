//! How a trial is evaluated: trained with candle on the run's data, or looked
//! up in a table (research mode). Both give the same kind of outcome, so the
//! search loop, the store, strategies and reports work the same on both.

use crate::data::{self, DataConfig, DataFacts, Dataset};
use crate::interrupt::Cancel;
use crate::ir::{Task, TrialStatus};
use crate::network::{analyse, Model};
use crate::store::TrialRecord;
use crate::table::Table;
use crate::train::{evaluate, Progress};
use crate::trial::{self, TrialOutcome, TrialSpec};
use anyhow::{Context, Result};
use candle_core::Device;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::Path;

/// Evaluates trials.
pub trait Evaluator {
    /// The task networks are built for.
    fn task(&self) -> Task;
    /// One line saying what is evaluated.
    fn description(&self) -> String;
    /// The class names, in class-index order (none in research mode).
    fn classes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether `train_seconds` is simulated (then `max_time_s` counts it, not the wall clock).
    fn simulated_time(&self) -> bool;
    /// Evaluates one trial; training stops early once `cancel` is cancelled.
    fn evaluate(
        &self,
        spec: &TrialSpec,
        cancel: &Cancel,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<TrialOutcome>;
    /// The table trials are looked up in, in research mode.
    fn table(&self) -> Option<&Table> {
        None
    }
    /// The best trial (of the run in `run_dir`)'s final report: its metrics
    /// on the held-out split, and its weights copied into `dir` where there
    /// are any.
    fn report_best(
        &self,
        trial: &TrialRecord,
        run_dir: &Path,
        dir: &Path,
    ) -> Result<BTreeMap<String, f64>>;
}

/// Trains each trial on the run's data. When trials train in this process
/// the data is loaded once, at setup; when workers train them, the data is
/// only probed (checked, without keeping its images) and loaded here at the
/// end, for the best trial's held-out report.
pub struct Trainer {
    facts: DataFacts,
    source: (DataConfig, u64, Device),
    data: OnceCell<Dataset>,
    /// Batch size of the test pass.
    eval_batch_size: usize,
    /// Trials are scored by zero-cost proxies, not trained (`[evaluator] kind = "proxy"`).
    scoring_only: bool,
}

impl Trainer {
    /// Loads `config`'s data (split by `seed`) on `device` now.
    pub fn loaded(
        config: &DataConfig,
        seed: u64,
        device: &Device,
        eval_batch_size: usize,
    ) -> Result<Self> {
        let data = data::load(config, seed, device)?;
        Ok(Trainer {
            facts: DataFacts {
                task: data.task,
                description: data.description.clone(),
                classes: data.classes.clone(),
            },
            source: (config.clone(), seed, device.clone()),
            data: OnceCell::from(data),
            eval_batch_size,
            scoring_only: false,
        })
    }

    /// Checks `config`'s data now and loads it when first needed.
    pub fn deferred(
        config: &DataConfig,
        seed: u64,
        device: &Device,
        eval_batch_size: usize,
    ) -> Result<Self> {
        Ok(Trainer {
            facts: data::probe(config, seed)?,
            source: (config.clone(), seed, device.clone()),
            data: OnceCell::new(),
            eval_batch_size,
            scoring_only: false,
        })
    }

    /// The same trainer for trials that are scored by zero-cost proxies
    /// instead of trained: the best has no weights and no held-out report.
    pub fn scoring_only(self) -> Self {
        Trainer {
            scoring_only: true,
            ..self
        }
    }

    fn data(&self) -> Result<&Dataset> {
        if let Some(data) = self.data.get() {
            return Ok(data);
        }
        let (config, seed, device) = &self.source;
        let loaded = data::load(config, *seed, device).context("load the data")?;
        Ok(self.data.get_or_init(|| loaded))
    }
}

impl Evaluator for Trainer {
    fn task(&self) -> Task {
        self.facts.task
    }

    fn description(&self) -> String {
        if self.scoring_only {
            format!(
                "{}, scored by zero-cost proxies (not trained)",
                self.facts.description
            )
        } else {
            self.facts.description.clone()
        }
    }

    fn classes(&self) -> Vec<String> {
        self.facts.classes.clone()
    }

    fn simulated_time(&self) -> bool {
        false
    }

    fn evaluate(
        &self,
        spec: &TrialSpec,
        cancel: &Cancel,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<TrialOutcome> {
        trial::run(spec, self.data()?, cancel, on_progress)
    }

    fn report_best(
        &self,
        trial: &TrialRecord,
        run_dir: &Path,
        dir: &Path,
    ) -> Result<BTreeMap<String, f64>> {
        if self.scoring_only {
            return Ok(BTreeMap::new());
        }
        let network = trial
            .network
            .as_ref()
            .context("the best trial has no network")?;
        let weights = trial
            .weights_in(run_dir)?
            .context("the best trial has no weights")?;
        let data = self.data()?;
        let model = Model::new(network, &data.task, trial.seed, data.device())?;
        model.load(&weights)?;
        let (test_loss, test_accuracy) = evaluate(&model, &data.test, self.eval_batch_size)?;
        std::fs::copy(&weights, dir.join(trial::WEIGHTS_FILE))
            .with_context(|| format!("copy {}", weights.display()))?;
        Ok(BTreeMap::from([
            ("test_accuracy".to_string(), test_accuracy),
            ("test_loss".to_string(), test_loss),
        ]))
    }
}

/// Looks each trial up in a table.
pub struct TableLookup {
    /// The table.
    pub table: Table,
    /// The task the space builds for.
    pub task: Task,
}

impl Evaluator for TableLookup {
    fn task(&self) -> Task {
        self.task
    }

    fn description(&self) -> String {
        format!(
            "a table of {} architectures (research mode)",
            self.table.len()
        )
    }

    fn simulated_time(&self) -> bool {
        true
    }

    fn table(&self) -> Option<&Table> {
        Some(&self.table)
    }

    fn evaluate(
        &self,
        spec: &TrialSpec,
        _: &Cancel,
        _: &mut dyn FnMut(Progress),
    ) -> Result<TrialOutcome> {
        if self.table.allow_partial() && !self.table.contains(&spec.network.key) {
            let reason = format!(
                "architecture `{}` is not in the evaluator table (allowed by [evaluator] allow_partial)",
                spec.network.key
            );
            return Ok(TrialOutcome::failed(
                spec,
                reason,
                BTreeMap::new(),
                Vec::new(),
            ));
        }
        if !self.table.has_budget(spec.epochs) {
            let reason = format!(
                "the evaluator table has no columns for a budget of {} epochs (it has {})",
                spec.epochs,
                self.table.budgets()
            );
            return Ok(TrialOutcome::failed(
                spec,
                reason,
                BTreeMap::new(),
                Vec::new(),
            ));
        }
        let found = self.table.lookup(&spec.network.key, spec.epochs)?;
        // A promotion pays only for the epochs it adds.
        let paid = match &spec.resume_from {
            Some(r) => self.table.lookup(&spec.network.key, r.epochs)?.cost,
            None => 0.0,
        };
        let mut metrics = found.metrics;
        let analysis = analyse(&spec.network, &self.task)?;
        metrics.insert("params".into(), analysis.params() as f64);
        metrics.insert("flops".into(), analysis.flops() as f64);
        metrics.insert(
            "memory_mb".into(),
            analysis.train_memory_mb(spec.train.batch_size),
        );
        metrics.insert("train_seconds".into(), (found.cost - paid).max(0.0));
        Ok(TrialOutcome {
            trial_id: spec.trial_id,
            status: TrialStatus::Completed,
            reason: None,
            metrics,
            curve: Vec::new(),
            weights: None,
            resumed_from_epoch: spec.resume_from.as_ref().map(|r| r.epochs),
            restarted: None,
        })
    }

    fn report_best(
        &self,
        trial: &TrialRecord,
        _run_dir: &Path,
        _dir: &Path,
    ) -> Result<BTreeMap<String, f64>> {
        // The table's own report columns (such as test accuracy) are already in the trial's metrics.
        Ok(trial
            .metrics
            .iter()
            .filter(|(k, _)| k.starts_with("test"))
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
}
