//! The search loop: ask the strategy while the executor has free slots,
//! admit each proposal, launch what must run, record each update the
//! executor reports, tell the strategy every result, and stop at a limit,
//! on cancellation, or when the strategy finishes.

use super::admission::Admission;
use super::{RunResult, Running, Search};
use crate::assignment;
use crate::executor::Update;
use crate::interrupt::{self, STOP_REASON};
use crate::ir::{Metric, Proposal, TrialResult, TrialStatus};
use crate::progress::{Event, Reporter};
use crate::results::pareto_front;
use crate::store::{Asked, EventKind, Told, TrialRecord};
use crate::train::Progress;
use crate::trial::{TrialOutcome, TrialSpec};
use anyhow::{Context, Result};
use std::time::Instant;

impl Search<'_> {
    /// Searches until a limit or the strategy ends the run, then writes the
    /// summary and `best/`.
    pub(super) fn conclude(mut self, reporter: &mut Reporter) -> Result<RunResult> {
        reporter.event(Event::RunStarted {
            name: self.config.name(),
            data: &self.evaluator.description(),
            max_trials: self.config.run.max_trials,
            recorded: self.trials.len() as u64,
        });
        let stop_reason = self.search(reporter)?;
        reporter.event(Event::RunFinished {
            reason: &stop_reason,
        });
        self.store.set_meta("stop_reason", &stop_reason)?;
        let best = self.finish()?;
        let pareto = if self.objectives.len() > 1 {
            pareto_front(&self.trials, &self.objectives)
        } else {
            Vec::new()
        };
        self.store
            .set_meta("pareto_front", &serde_json::to_string(&pareto)?)?;
        Ok(RunResult {
            dir: self.dir,
            trials: self.trials,
            stop_reason,
            interrupted: self.interrupted,
            best,
            pareto,
            objectives: self.config.objectives.clone(),
        })
    }

    /// Why the run must not ask for more, if it must not.
    fn limit_reached(&self) -> Option<String> {
        let asked = self.next_id - 1;
        if asked >= self.config.run.max_trials {
            return Some(format!(
                "reached max_trials = {}",
                self.config.run.max_trials
            ));
        }
        let simulated = self.evaluator.simulated_time();
        let used = if simulated {
            self.simulated_seconds
        } else {
            self.elapsed()
        };
        let limit = self.config.run.max_time_s.filter(|l| used >= *l)?;
        let kind = if simulated { "simulated " } else { "" };
        Some(format!("reached max_time_s = {limit} ({kind}seconds)"))
    }

    fn slots(&self) -> usize {
        self.config.executor.slots()
    }

    fn search(&mut self, reporter: &mut Reporter) -> Result<String> {
        let mut stop: Option<String> = None;
        let mut strategy_done = false;
        if let Some(limit) = self
            .config
            .run
            .max_time_s
            .filter(|_| !self.evaluator.simulated_time())
        {
            // Training in flight stops there too, whatever its budget.
            let left = (limit - self.clock_before).max(0.0);
            self.cancel
                .stop_at(self.started + std::time::Duration::from_secs_f64(left));
        }
        loop {
            // Past the deadline with nothing in training, the run's limits
            // below say so.
            let stopping = self.cancel.interrupted()
                || (self.cancel.is_cancelled() && !self.running.is_empty());
            if stop.is_none() && stopping {
                let why = self.stop_reason();
                self.interrupt_running(&why)?;
                stop = Some(why);
            }
            if stop.is_none() && !strategy_done && !self.waiting {
                stop = self.fill_slots(reporter, &mut strategy_done)?;
            }
            if self.running.is_empty() {
                // With nothing in flight, a stop or the strategy's end ends the run.
                if let Some(why) = stop {
                    return Ok(why);
                }
                if strategy_done {
                    return Ok("the strategy finished".into());
                }
                continue;
            }
            for update in self.poll(reporter)? {
                if let Some(why) = self.take_update(update, reporter)? {
                    stop.get_or_insert(why);
                }
            }
        }
    }

    /// Asks for proposals while slots are free and starts them; returns why
    /// the run must stop asking, if it must.
    fn fill_slots(
        &mut self,
        reporter: &mut Reporter,
        strategy_done: &mut bool,
    ) -> Result<Option<String>> {
        while self.running.len() < self.slots() {
            if self.pending.is_empty() {
                if let Some(why) = self.limit_reached() {
                    return Ok(Some(why));
                }
                let room = self.config.run.max_trials - (self.next_id - 1);
                let free = (self.slots() - self.running.len()).min(room as usize) as u32;
                let proposals = self
                    .strategy
                    .ask(free)
                    .context("asking the strategy for proposals")?;
                let asked = Asked::new(free, &proposals, self.next_id)?;
                self.store
                    .event(EventKind::Asked, None, &asked, self.elapsed())?;
                if proposals.is_empty() {
                    // Nothing now: finished, or (with trials in flight) waiting for a result.
                    if self.running.is_empty() {
                        *strategy_done = true;
                    } else {
                        self.waiting = true;
                    }
                    return Ok(None);
                }
                self.next_id += asked.trials.len() as u64;
                self.pending.extend(asked.trials.into_iter().zip(proposals));
            }
            let Some((id, proposal)) = self.pending.pop_front() else {
                continue;
            };
            if let Some(stored) = self.trials.iter().find(|t| t.id == id).cloned() {
                // On resume: stored before the crash, but not yet told.
                if let Some(why) = self.tell(&proposal, &stored)? {
                    return Ok(Some(why));
                }
                continue;
            }
            let record = match self.admit(&proposal, id)? {
                Admission::Done(record) => record,
                Admission::Launch(spec, record) => {
                    reporter.event(Event::TrialStarted {
                        id,
                        assignment: &assignment::text(&proposal.assignment),
                        epochs: record.budget,
                    });
                    if !self.evaluator.simulated_time() {
                        // A table look-up has no training for `status` to follow.
                        self.store.event(
                            EventKind::TrialStarted,
                            Some(id),
                            &record.budget,
                            self.elapsed(),
                        )?;
                    }
                    self.launch(*spec, record, proposal)?;
                    continue;
                }
            };
            if let Some(why) = self.conclude_trial(&proposal, record, reporter)? {
                return Ok(Some(why));
            }
        }
        Ok(None)
    }

    /// Starts a trial on the executor, re-attaching to the Slurm job an
    /// earlier session submitted for it, if there is one.
    fn launch(&mut self, spec: TrialSpec, record: TrialRecord, proposal: Proposal) -> Result<()> {
        let id = record.id;
        let earlier = self.submitted.get(&id).cloned();
        let job = match earlier.as_deref() {
            Some(job) => self.executor.attach(spec, Some(job))?,
            None => self.executor.submit(spec)?,
        };
        // In process, `trial_started` says it all.
        if !self.executor.in_process() && (earlier.is_none() || job != earlier) {
            let data = serde_json::json!({ "job": job });
            self.store
                .event(EventKind::Submitted, Some(id), &data, self.elapsed())?;
            if let Some(job) = &job {
                self.submitted.insert(id, job.clone());
            }
        }
        self.running.insert(
            id,
            Running {
                proposal,
                record,
                started: Instant::now(),
            },
        );
        Ok(())
    }

    /// Records what an executor reported; returns why the run must stop, if it must.
    fn take_update(&mut self, update: Update, reporter: &mut Reporter) -> Result<Option<String>> {
        match update {
            Update::JobState { trial, job, state } => {
                let data = serde_json::json!({ "job": job, "state": state });
                self.store
                    .event(EventKind::JobState, Some(trial), &data, self.elapsed())?;
                Ok(None)
            }
            Update::Retried { trial, why, job } => {
                let data = serde_json::json!({ "job": job, "why": why });
                self.store
                    .event(EventKind::Retried, Some(trial), &data, self.elapsed())?;
                if let Some(job) = job {
                    self.submitted.insert(trial, job);
                }
                Ok(None)
            }
            Update::Lost { trial, why } => {
                // Not a result: the trial stays in flight for `resume`.
                self.store.event(
                    EventKind::TrialInterrupted,
                    Some(trial),
                    &why,
                    self.elapsed(),
                )?;
                anyhow::bail!(
                    "trial {trial}: {why}. A worker that ends without a result is the host's problem, \
                     not the architecture's: nothing was recorded for the trial or told to the strategy. \
                     Fix the cause, then `nas-host resume {}` runs it again",
                    self.dir.display()
                )
            }
            Update::Finished(outcome) => {
                let Some(running) = self.running.remove(&outcome.trial_id) else {
                    return Ok(None);
                };
                self.waiting = false;
                let id = running.record.id;
                if self.cancel.is_cancelled() && outcome.status != TrialStatus::Completed {
                    // Not a result: `nas-host resume` runs it again from its checkpoint.
                    let why = self.stop_reason();
                    self.interrupted = true;
                    self.store.event(
                        EventKind::TrialInterrupted,
                        Some(id),
                        &why,
                        self.elapsed(),
                    )?;
                    return Ok(Some(why));
                }
                if !self.executor.reports_epochs() {
                    for epoch in &outcome.curve {
                        self.store
                            .event(EventKind::Epoch, Some(id), epoch, self.elapsed())?;
                    }
                }
                let mut record = running.record;
                record.seconds = running.started.elapsed().as_secs_f64();
                self.fill(&mut record, outcome)?;
                if self.evaluator.simulated_time() {
                    // Table mode: the simulated seconds, as the charts count them.
                    record.seconds = record.metrics.get("train_seconds").copied().unwrap_or(0.0);
                }
                self.conclude_trial(&running.proposal, record, reporter)
            }
        }
    }

    /// Why a cancelled run stops: Ctrl-C, or its `max_time_s` passed.
    fn stop_reason(&self) -> String {
        match self.config.run.max_time_s {
            Some(limit) if !self.cancel.interrupted() => format!(
                "reached max_time_s = {limit} (seconds) with trials in training; `nas-host resume --max-time-s` continues them"
            ),
            _ => STOP_REASON.into(),
        }
    }

    /// After Ctrl-C or at `max_time_s`: trials in flight are recorded as
    /// interrupted (not as results) and worker processes stop. On Ctrl-C,
    /// Slurm jobs are left running unless the user asks to cancel them
    /// (resume re-attaches to them); at `max_time_s` they are cancelled.
    fn interrupt_running(&mut self, why: &str) -> Result<()> {
        let executor = &mut self.executor;
        let cancel = executor.outlives_controller()
            && !self.running.is_empty()
            && (!self.cancel.interrupted()
                || interrupt::confirm(&format!(
                    "cancel the {} submitted Slurm jobs (scancel)? Otherwise they go on, and `nas-host resume` collects them",
                    self.running.len()
                )));
        executor.stop(cancel)?;
        let ids: Vec<u64> = self.running.keys().copied().collect();
        let why = if cancel || !executor.outlives_controller() {
            why
        } else {
            "interrupted by Ctrl-C; its Slurm job goes on"
        };
        for id in ids {
            self.interrupted = true;
            self.store
                .event(EventKind::TrialInterrupted, Some(id), &why, self.elapsed())?;
        }
        self.running.clear();
        Ok(())
    }

    /// Stores a finished trial, reports it and tells the strategy.
    fn conclude_trial(
        &mut self,
        proposal: &Proposal,
        record: TrialRecord,
        reporter: &mut Reporter,
    ) -> Result<Option<String>> {
        self.store.insert(&record)?;
        self.count(record.clone());
        reporter.event(Event::TrialFinished {
            trial: &record,
            best: self.best.map(|b| b.0),
            metric: &self.objective().metric,
        });
        self.tell(proposal, &record)
    }

    /// Tells the strategy a stored trial's result; returns why the run must
    /// stop (`max_failures`), if it must.
    fn tell(&mut self, proposal: &Proposal, record: &TrialRecord) -> Result<Option<String>> {
        self.strategy
            .tell(&[result_of(proposal, record)])
            .context("telling the strategy a result")?;
        let told = Told {
            trials: vec![record.id],
        };
        self.store
            .event(EventKind::Told, None, &told, self.elapsed())?;
        Ok(self
            .config
            .run
            .max_failures
            .and_then(|m| m.exceeded(self.failures, self.trials.len() as u64)))
    }

    /// Waits for the executor (in process: runs the next trial), recording
    /// each epoch the moment the executor reports it, so `status` sees it
    /// and a kill loses none.
    fn poll(&mut self, reporter: &mut Reporter) -> Result<Vec<Update>> {
        let mut unrecorded = None;
        let clock = self.clock_before;
        let session = self.started;
        let store = &self.store;
        let updates = self.executor.poll(&mut |id, p| {
            if let Progress::Epoch(epoch) = p {
                let now = clock + session.elapsed().as_secs_f64();
                if let Err(e) = store.event(EventKind::Epoch, Some(id), epoch, now) {
                    unrecorded.get_or_insert(e.context(format!("recording trial {id}'s epochs")));
                }
            }
            reporter.event(Event::Training(p));
        })?;
        match unrecorded {
            Some(e) => Err(e),
            None => Ok(updates),
        }
    }

    /// Copies an outcome into its record (and notes a resumed trial).
    fn fill(&mut self, record: &mut TrialRecord, outcome: TrialOutcome) -> Result<()> {
        if let Some(epochs) = outcome.resumed_from_epoch {
            self.store.event(
                EventKind::TrialResumed,
                Some(record.id),
                &epochs,
                self.elapsed(),
            )?;
        }
        if let Some(why) = &outcome.restarted {
            eprintln!(
                "warning: trial {}: its checkpoint could not be continued, so it trained from scratch (the checkpoint is kept as {} in its folder): {why}",
                record.id,
                crate::train::DAMAGED_CHECKPOINT
            );
            self.store.event(
                EventKind::TrialRestarted,
                Some(record.id),
                why,
                self.elapsed(),
            )?;
        }
        record.status = outcome.status;
        record.reason = outcome.reason;
        record.metrics = outcome.metrics;
        record.curve = outcome.curve;
        // Relative to the run, so the run directory can move.
        record.weights = outcome.weights.map(|w| {
            w.strip_prefix(&self.dir)
                .unwrap_or(&w)
                .display()
                .to_string()
        });
        Ok(())
    }
}

/// The result the strategy is told for a record.
pub(super) fn result_of(proposal: &Proposal, record: &TrialRecord) -> TrialResult {
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
