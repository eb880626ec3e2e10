//! Admission of a proposal before anything trains: its assignment checked
//! against the space, its network built, the `[constraints]` that its shape
//! alone breaks, a promotion's source found, and an identical earlier trial
//! reused. What passes becomes a trial spec to run.

use super::{trial_seed, Search};
use crate::assignment;
use crate::ir::{Network, Proposal, TrialStatus};
use crate::network::{analyse, grouped};
use crate::prune::Pruning;
use crate::store::{status_text, TrialRecord};
use crate::train::{searched, MAX_EPOCHS};
use crate::trial::{ResumeFrom, TrialSpec};
use anyhow::Result;

/// A proposal checked and built.
pub(super) enum Admission {
    /// Its record is final without running it (invalid, unbuildable, infeasible, reused).
    Done(TrialRecord),
    /// The trial to run, and its record so far.
    Launch(Box<TrialSpec>, TrialRecord),
}

impl Search<'_> {
    /// Checks and builds one proposal: a record that is already final
    /// (invalid, unbuildable, infeasible, reused), or the trial to run.
    pub(super) fn admit(&mut self, proposal: &Proposal, id: u64) -> Result<Admission> {
        let default = match self.config.evaluator.budget {
            // Table mode: the epochs of the table's full-budget columns.
            Some(b) if self.evaluator.simulated_time() => b,
            _ => self.config.train.epochs,
        };
        let budget = proposal.budget.unwrap_or(default);
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
            return Ok(Admission::Done(record));
        }
        if budget == 0 || budget > MAX_EPOCHS {
            record.reason = Some(format!(
                "strategy `{}` proposed a budget of {budget} epochs; a budget must be between 1 and {MAX_EPOCHS}",
                self.strategy.name()
            ));
            return Ok(Admission::Done(record));
        }
        let train = match searched::apply(
            &self.config.train,
            &self.config.searched,
            &proposal.assignment,
        ) {
            Ok(train) => train,
            Err(e) => {
                record.reason = Some(format!(
                    "strategy `{}` proposed training values that do not work: {e:#}",
                    self.strategy.name()
                ));
                return Ok(Admission::Done(record));
            }
        };
        // The space builds from its own dimensions; the searched [train]
        // values join the key, so only equal ones are reused.
        let (hyper, architecture): (Vec<_>, Vec<_>) = proposal
            .assignment
            .iter()
            .cloned()
            .partition(searched::is_searched);
        let mut network = match self.space.build(&architecture) {
            Ok(n) => n,
            Err(e) if self.space.is_usable() => {
                record.reason = Some(format!("{e:#}"));
                return Ok(Admission::Done(record));
            }
            Err(e) => return Err(e.context("building a proposal's network")),
        };
        if !hyper.is_empty() {
            network.key = format!("{}|{}", network.key, assignment::text(&hyper));
        }
        record.key = Some(network.key.clone());
        if !self.evaluator.simulated_time() {
            // A table trial's network follows from its assignment and would
            // be most of the run's database; `finish` keeps the best one's.
            record.network = Some(network.clone());
        }
        if let Some(reason) = self.violated_constraint(&network, train.batch_size, &mut record)? {
            record.status = TrialStatus::Infeasible;
            record.reason = Some(reason);
            return Ok(Admission::Done(record));
        }
        let resume_from = match proposal.resume_from {
            None => None,
            Some(source) => match self.promotion_source(source, &network.key, budget) {
                Ok((from, seed)) => {
                    // The same training, continued: the source's seed and stream.
                    record.seed = seed;
                    Some(from)
                }
                Err(why) => {
                    record.reason = Some(format!(
                        "strategy `{}` asked to continue trial {source}, but {why}",
                        self.strategy.name()
                    ));
                    return Ok(Admission::Done(record));
                }
            },
        };
        if let Some(&i) = self.trained.get(&(network.key.clone(), budget)) {
            let earlier = &self.trials[i];
            record.status = TrialStatus::Completed;
            record.metrics = earlier.metrics.clone();
            record.curve = earlier.curve.clone();
            record.weights = earlier.weights.clone();
            record.reused_from = Some(earlier.id);
            return Ok(Admission::Done(record));
        }
        let spec = TrialSpec {
            trial_id: id,
            network,
            task: self.evaluator.task(),
            data: self.config.data.clone(),
            data_seed: self.config.data.seed.unwrap_or(self.config.run.seed),
            train,
            epochs: budget,
            seed,
            device: self.config.run.device.clone(),
            dir: self.dir.join("trials").join(id.to_string()),
            max_latency_ms: self.config.constraints.max_latency_ms,
            quantize: self.config.quantize.clone(),
            max_int8_latency_ms: self.config.constraints.max_int8_latency_ms,
            max_int8_size_kb: self.config.constraints.max_int8_size_kb,
            teacher: self.teacher.clone(),
            resume_from,
            pruning: self.pruning_now(),
            proxies: self.config.evaluator.proxy_plan(),
        };
        let seed = record.seed;
        Ok(Admission::Launch(
            Box::new(TrialSpec { seed, ..spec }),
            record,
        ))
    }

    /// `[pruner]`'s rule with the curves of the trials completed so far
    /// (each trained curve once: reused records are left out).
    fn pruning_now(&self) -> Option<Pruning> {
        let template = self.pruning.as_ref()?;
        let reference = self
            .trials
            .iter()
            .filter(|t| t.status == TrialStatus::Completed && t.reused_from.is_none())
            .map(|t| Pruning::values(&t.curve, &template.metric))
            .collect();
        Some(Pruning {
            reference,
            ..template.clone()
        })
    }

    /// The trial a promotion continues (following reuse to the trial that
    /// trained), with its seed; or why it cannot be continued.
    fn promotion_source(
        &self,
        source: u64,
        key: &str,
        budget: u32,
    ) -> std::result::Result<(ResumeFrom, u64), String> {
        let mut t = self
            .trials
            .iter()
            .find(|t| t.id == source)
            .ok_or("that trial has not finished")?;
        if let Some(origin) = t.reused_from {
            t = self
                .trials
                .iter()
                .find(|o| o.id == origin)
                .ok_or("the trial it reuses is not recorded")?;
        }
        if t.status != TrialStatus::Completed {
            return Err(format!("it {}", status_text(t.status)));
        }
        if t.key.as_deref() != Some(key) {
            return Err("it trained another network".into());
        }
        if t.budget >= budget {
            return Err(format!(
                "it already trained {} epochs, not fewer than {budget}",
                t.budget
            ));
        }
        Ok((
            ResumeFrom {
                trial: t.id,
                dir: self.dir.join("trials").join(t.id.to_string()),
                epochs: t.budget,
            },
            t.seed,
        ))
    }

    /// The `[constraints]` a network breaks by its shape alone (parameters,
    /// FLOPs), recording both counts in `record`; an invalid network is left
    /// to the evaluator, which reports its shape error.
    fn violated_constraint(
        &self,
        network: &Network,
        batch_size: usize,
        record: &mut TrialRecord,
    ) -> Result<Option<String>> {
        let c = &self.config.constraints;
        if c.max_params.is_none() && c.max_flops.is_none() && c.max_memory_mb.is_none() {
            return Ok(None);
        }
        let Ok(analysis) = analyse(network, &self.evaluator.task()) else {
            return Ok(None);
        };
        let (params, flops) = (analysis.params(), analysis.flops());
        let memory = analysis.train_memory_mb(batch_size);
        record.metrics.insert("params".into(), params as f64);
        record.metrics.insert("flops".into(), flops as f64);
        record.metrics.insert("memory_mb".into(), memory);
        Ok(if let Some(max) = c.max_params.filter(|m| params > *m) {
            Some(format!(
                "params {} > max_params {}",
                grouped(params),
                grouped(max)
            ))
        } else if let Some(max) = c.max_flops.filter(|m| flops > *m) {
            Some(format!(
                "flops {} > max_flops {}",
                grouped(flops),
                grouped(max)
            ))
        } else {
            c.max_memory_mb
                .filter(|m| memory > *m)
                .map(|max| format!("memory_mb {memory:.1} > max_memory_mb {max}"))
        })
    }
}
