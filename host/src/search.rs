//! The search loop of `nas-host run`: ask the strategy, check and build each
//! proposal with the space, evaluate it (train it, or look it up in a table;
//! or reuse an identical earlier trial), record it, tell the strategy; stop at
//! `max_trials`, `max_time_s`, or when the strategy finishes. Then the best
//! trial's architecture goes to `best/` with its summary and its metrics on
//! the held-out split.

use crate::assignment;
use crate::config::{EvaluatorKind, ObjectiveConfig, RunConfig};
use crate::contract::{Direction, Metric, Objective, Proposal, TrialResult, TrialStatus};
use crate::data;
use crate::evaluator::{Evaluator, TableLookup, Trainer};
use crate::executor::{Executor, Update};
use crate::lock::RunLock;
use crate::network::{analyse, grouped, summary};
use crate::plugin::{ComponentCache, PluginRuntime, PluginSource, SpacePlugin, StrategyPlugin};
use crate::progress::{Event, Reporter};
use crate::store::{status_text, Asked, EventKind, RunStore, TrialRecord, DB_FILE};
use crate::table::Table;
use crate::train::Progress;
use crate::trial::{ResumeFrom, TrialOutcome, TrialSpec};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
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

/// The best completed trial under `objective` (the earliest of equals, as
/// the run picks it), reused trials included.
pub fn best_trial<'a>(trials: &'a [TrialRecord], objective: &Objective) -> Option<&'a TrialRecord> {
    trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed)
        .filter(|t| t.metrics.contains_key(&objective.metric))
        .reduce(|a, b| {
            if better(
                b.metrics[&objective.metric],
                a.metrics[&objective.metric],
                objective,
            ) {
                b
            } else {
                a
            }
        })
}

/// One point of a best-so-far curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestSoFar {
    /// The trial after which it holds.
    pub trial: u64,
    /// Training seconds spent by then (simulated in table mode; reused trials cost nothing).
    pub spent: f64,
    /// The best objective by then (NaN before the first completed trial).
    pub best: f64,
}

/// The best objective after each trial, in trial order, with the training spent by then.
pub fn best_so_far(trials: &[TrialRecord], objective: &Objective) -> Vec<BestSoFar> {
    let (mut best, mut spent) = (f64::NAN, 0.0);
    trials
        .iter()
        .map(|t| {
            if t.reused_from.is_none() {
                spent += t.metrics.get("train_seconds").copied().unwrap_or(0.0);
            }
            if t.status == TrialStatus::Completed {
                if let Some(&v) = t.metrics.get(&objective.metric) {
                    if best.is_nan() || better(v, best, objective) {
                        best = v;
                    }
                }
            }
            BestSoFar {
                trial: t.id,
                spent,
                best,
            }
        })
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
    /// The run's objectives, first the one `best` is chosen by.
    pub objectives: Vec<crate::config::ObjectiveConfig>,
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
        .map(ObjectiveConfig::objective)
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
                eval_batch_size: config.train.eval_batch_size,
            })
        }
        EvaluatorKind::Table => Box::new(TableLookup {
            table: Table::load(&config.evaluator.table()?)?,
            task: config.evaluator.task()?,
        }),
    })
}

/// The plugins and the evaluator of a run, set up from its config.
struct Parts {
    evaluator: Box<dyn Evaluator>,
    space: SpacePlugin,
    strategy: StrategyPlugin,
    dims: Vec<crate::contract::Dimension>,
    objectives: Vec<Objective>,
}

/// Loads the data (or table) and the plugins, and initialises them; every
/// error of bad input surfaces here, before anything is written.
fn prepare(config: &RunConfig) -> Result<Parts> {
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
            config.run.seed,
        )
        .context("[strategy] config")?;
    Ok(Parts {
        evaluator,
        space,
        strategy,
        dims,
        objectives,
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
    objectives: Vec<Objective>,
    best: Option<(f64, u64)>,
    trials: Vec<TrialRecord>,
    /// Proposals asked for but not yet told, with their trial ids.
    pending: VecDeque<(u64, Proposal)>,
    /// The id of the next proposal.
    next_id: u64,
    /// Seconds of evaluation so far: simulated in table mode.
    simulated_seconds: f64,
    /// Trials that failed so far (for `max_failures`).
    failures: u64,
    /// The run's clock: seconds of earlier sessions, plus this one's.
    clock_before: f64,
    started: Instant,
    /// Where trials run (`None`: in this process).
    executor: Option<Executor>,
    /// Trials started on the executor and not finished: proposal, record so far, start.
    running: BTreeMap<u64, (Proposal, TrialRecord, Instant)>,
    /// The Slurm job of each trial submitted (by any session).
    submitted: BTreeMap<u64, String>,
    /// The strategy proposed nothing while trials were in flight: ask again after the next result.
    waiting: bool,
    /// Held until the run ends.
    _lock: RunLock,
}

/// A proposal checked and built.
enum Prepared {
    /// Its record is final without running it (invalid, unbuildable, infeasible, reused).
    Done(TrialRecord),
    /// The trial to run, and its record so far.
    Launch(Box<TrialSpec>, TrialRecord),
}

/// Limits that `nas-host resume` may change.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// A new `[run] max_trials`.
    pub max_trials: Option<u64>,
    /// A new `[run] max_time_s` (counted over the whole run, earlier sessions included).
    pub max_time_s: Option<f64>,
}

/// Runs the search `config` describes, reporting to `reporter`.
pub fn run(config: &RunConfig, reporter: &mut Reporter) -> Result<RunResult> {
    let dir = config.run.output_dir.join(config.name());
    if dir.join(DB_FILE).exists() && RunLock::holder(&dir).is_some() {
        // Say who holds it, before the slow part.
        RunLock::acquire(&dir)?;
    }
    // Everything that can fail on bad input happens before the run directory
    // is written, so a failed start leaves nothing that blocks the next try.
    let parts = prepare(config)?;
    let lock = RunLock::acquire(&dir)?;
    let store = RunStore::open(&dir.join(DB_FILE))?;
    if store.meta("config")?.is_some() {
        bail!(
            "run directory {} already holds a run; continue it with `nas-host resume {}`, choose another [run] name (or --name), or delete the folder",
            dir.display(),
            dir.display()
        );
    }
    // A database without a config belongs to a start that was killed before
    // it recorded anything (the facts below are one transaction): reuse it.
    std::fs::write(dir.join("config.toml"), toml::to_string(config)?)
        .context("write the resolved config")?;
    let seed = config.run.seed.to_string();
    let data_seed = config.data.seed.unwrap_or(config.run.seed).to_string();
    let config_text = toml::to_string(config)?;
    let description = parts.evaluator.description();
    let task = serde_json::to_string(&parts.evaluator.task())?;
    store.set_metas(&[
        ("nas_host_version", env!("CARGO_PKG_VERSION")),
        ("config", &config_text),
        ("seed", &seed),
        ("data_seed", &data_seed),
        ("strategy_seed", &seed),
        ("data", &description),
        ("task", &task),
    ])?;
    let search = Search::new(config, dir, store, parts, lock)?;
    search
        .store
        .event(EventKind::SessionStarted, None, &"run", 0.0)?;
    search.conclude(reporter)
}

/// `nas-host resume DIR`: continues the run in `dir` after a crash, a kill
/// or Ctrl-C (or with new limits after it finished). Finished trials are kept,
/// the strategy's state is rebuilt by replaying what it was asked and told,
/// and trials that were in flight continue from their last checkpoint.
pub fn resume(dir: &Path, overrides: &Overrides, reporter: &mut Reporter) -> Result<RunResult> {
    let db = dir.join(DB_FILE);
    if !db.exists() {
        bail!(
            "{} does not exist: {} is not a run directory of nas-host (give the folder that `nas-host run` printed, such as runs/NAME)",
            db.display(),
            dir.display()
        );
    }
    let lock = RunLock::acquire(dir)?;
    let store = RunStore::open(&db)?;
    let text = store.meta("config")?.with_context(|| {
        format!(
            "{} records no config: the run was stopped while it started; start it again with `nas-host run`",
            db.display()
        )
    })?;
    let mut config = RunConfig::parse(&text, &format!("the config recorded in {}", db.display()))?;
    if let Some(n) = overrides.max_trials {
        config.run.max_trials = n;
    }
    if let Some(t) = overrides.max_time_s {
        config.run.max_time_s = Some(t);
    }
    config.validate()?;
    let parts = prepare(&config)?;
    let mut search = Search::new(&config, dir.to_path_buf(), store, parts, lock)?;
    search.replay()?;
    let config_text = toml::to_string(&config)?;
    std::fs::write(dir.join("config.toml"), &config_text).context("write the resolved config")?;
    search.store.set_meta("config", &config_text)?;
    search.store.remove_meta("stop_reason")?;
    let facts = serde_json::json!({"command": "resume", "trials": search.trials.len(), "pending": search.pending.len()});
    search
        .store
        .event(EventKind::SessionStarted, None, &facts, search.elapsed())?;
    search.conclude(reporter)
}

impl<'a> Search<'a> {
    fn new(
        config: &'a RunConfig,
        dir: PathBuf,
        store: RunStore,
        parts: Parts,
        lock: RunLock,
    ) -> Result<Self> {
        let executor = Executor::new(&config.executor, config.name(), &config.run.device)?;
        Ok(Search {
            config,
            dir,
            store,
            evaluator: parts.evaluator,
            space: parts.space,
            strategy: parts.strategy,
            dims: parts.dims,
            objectives: parts.objectives,
            best: None,
            trials: Vec::new(),
            pending: VecDeque::new(),
            next_id: 1,
            simulated_seconds: 0.0,
            failures: 0,
            clock_before: 0.0,
            started: Instant::now(),
            executor,
            running: BTreeMap::new(),
            submitted: BTreeMap::new(),
            waiting: false,
            _lock: lock,
        })
    }

    /// Seconds on the run's clock (all sessions).
    fn elapsed(&self) -> f64 {
        self.clock_before + self.started.elapsed().as_secs_f64()
    }

    fn objective(&self) -> &Objective {
        &self.objectives[0]
    }

    /// Rebuilds the state of a recorded run: its finished trials, and the
    /// strategy's state by replaying every recorded ask and tell against the
    /// fresh instance, which must propose exactly what it proposed before.
    fn replay(&mut self) -> Result<()> {
        for record in self.store.trials()? {
            self.count(record);
        }
        let mut told = HashSet::new();
        let mut asked = Vec::new();
        let events = self.store.events(&[EventKind::Asked, EventKind::Told])?;
        let mut asks = 0;
        for event in events {
            if event.kind == EventKind::Told {
                let results: Vec<TrialResult> =
                    serde_json::from_str(&event.data).with_context(|| {
                        format!("the run database's event {} is damaged", event.seq)
                    })?;
                self.strategy
                    .tell(&results)
                    .context("replaying the run: telling the strategy a recorded result")?;
                told.extend(results.iter().map(|r| r.trial_id));
                continue;
            }
            asks += 1;
            let recorded: Asked = serde_json::from_str(&event.data)
                .with_context(|| format!("the run database's event {} is damaged", event.seq))?;
            let again = self
                .strategy
                .ask(recorded.max)
                .context("replaying the run: asking the strategy")?;
            if again != recorded.proposals {
                let show = |p: &[Proposal]| {
                    p.iter()
                        .map(|p| format!("[{}]", assignment::text(&p.assignment)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                bail!(
                    "strategy plugin `{}` is not deterministic, so the run cannot be resumed: replaying its recorded calls, ask #{asks} now proposes {} but the run recorded {}. A strategy's proposals must depend only on its seed, its config and the results it was told; fix the plugin and resume again (the store is unchanged), or start a new run",
                    self.strategy.name(),
                    show(&again),
                    show(&recorded.proposals)
                );
            }
            asked.extend(recorded.trials.into_iter().zip(recorded.proposals));
        }
        self.next_id = asked
            .iter()
            .map(|(id, _)| id + 1)
            .chain(self.trials.iter().map(|t| t.id + 1))
            .max()
            .unwrap_or(1);
        self.pending = asked
            .into_iter()
            .filter(|(id, _)| !told.contains(id))
            .collect();
        for event in self
            .store
            .events(&[EventKind::Submitted, EventKind::Retried])?
        {
            let job = serde_json::from_str::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|d| d["job"].as_str().map(str::to_string));
            if let (Some(trial), Some(job)) = (event.trial, job) {
                self.submitted.insert(trial, job);
            }
        }
        self.clock_before = self.store.last_elapsed()?;
        self.started = Instant::now();
        Ok(())
    }

    /// Takes a finished trial into the run's tallies.
    fn count(&mut self, record: TrialRecord) {
        if record.reused_from.is_none() {
            self.simulated_seconds += record.metrics.get("train_seconds").copied().unwrap_or(0.0);
        }
        if record.status == TrialStatus::Completed {
            if let Some(&v) = record.metrics.get(&self.objective().metric) {
                if self
                    .best
                    .is_none_or(|(b, _)| better(v, b, self.objective()))
                {
                    self.best = Some((v, record.id));
                }
            }
        }
        self.failures += u64::from(record.status == TrialStatus::Failed);
        self.trials.push(record);
    }

    /// Searches until a limit or the strategy ends the run, then writes the
    /// summary and `best/`.
    fn conclude(mut self, reporter: &mut Reporter) -> Result<RunResult> {
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
        loop {
            if stop.is_none() && crate::interrupt::requested() {
                stop = Some(crate::interrupt::STOP_REASON.into());
                self.interrupt_running()?;
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
            let updates = match &mut self.executor {
                Some(executor) => executor.poll()?,
                None => Vec::new(),
            };
            for update in updates {
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
                let ids: Vec<u64> = (self.next_id..).take(proposals.len()).collect();
                let asked = Asked {
                    max: free,
                    proposals,
                    trials: ids,
                };
                self.store
                    .event(EventKind::Asked, None, &asked, self.elapsed())?;
                if asked.proposals.is_empty() {
                    // Nothing now: finished, or (with trials in flight) waiting for a result.
                    if self.running.is_empty() {
                        *strategy_done = true;
                    } else {
                        self.waiting = true;
                    }
                    return Ok(None);
                }
                self.next_id += asked.trials.len() as u64;
                self.pending
                    .extend(asked.trials.into_iter().zip(asked.proposals));
            }
            let (id, proposal) = self.pending.pop_front().expect("filled above");
            if let Some(stored) = self.trials.iter().find(|t| t.id == id).cloned() {
                // On resume: stored before the crash, but not yet told.
                if let Some(why) = self.tell(&proposal, &stored)? {
                    return Ok(Some(why));
                }
                continue;
            }
            let record = match self.prepare(&proposal, id)? {
                Prepared::Done(record) => record,
                Prepared::Launch(spec, record) => {
                    reporter.event(Event::TrialStarted {
                        id,
                        assignment: &assignment::text(&proposal.assignment),
                        epochs: record.budget,
                    });
                    self.store.event(
                        EventKind::TrialStarted,
                        Some(id),
                        &record.budget,
                        self.elapsed(),
                    )?;
                    if self.executor.is_none() {
                        let record = self.run_local(&spec, record, reporter)?;
                        if crate::interrupt::requested() && record.status != TrialStatus::Completed
                        {
                            // Not a result: `nas-host resume` runs it again from its checkpoint.
                            self.store.event(
                                EventKind::TrialInterrupted,
                                Some(id),
                                &record.reason,
                                self.elapsed(),
                            )?;
                            return Ok(Some(crate::interrupt::STOP_REASON.into()));
                        }
                        record
                    } else {
                        self.launch(*spec, record, proposal)?;
                        continue;
                    }
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
        let executor = self.executor.as_mut().expect("launch needs an executor");
        let job = match earlier.as_deref() {
            Some(job) => executor.attach(spec, Some(job))?,
            None => executor.submit(spec)?,
        };
        if earlier.is_none() || job != earlier {
            let data = serde_json::json!({ "job": job });
            self.store
                .event(EventKind::Submitted, Some(id), &data, self.elapsed())?;
            if let Some(job) = &job {
                self.submitted.insert(id, job.clone());
            }
        }
        self.running.insert(id, (proposal, record, Instant::now()));
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
            Update::Finished(outcome) => {
                let Some((proposal, mut record, started)) = self.running.remove(&outcome.trial_id)
                else {
                    return Ok(None);
                };
                self.waiting = false;
                for epoch in &outcome.curve {
                    self.store
                        .event(EventKind::Epoch, Some(record.id), epoch, self.elapsed())?;
                }
                record.seconds = started.elapsed().as_secs_f64();
                self.fill(&mut record, outcome)?;
                self.conclude_trial(&proposal, record, reporter)
            }
        }
    }

    /// After Ctrl-C: trials in flight are recorded as interrupted (not as
    /// results); worker processes stop, Slurm jobs are left running unless
    /// the user asks to cancel them (resume re-attaches to them).
    fn interrupt_running(&mut self) -> Result<()> {
        let Some(executor) = &mut self.executor else {
            return Ok(());
        };
        let cancel = executor.outlives_controller()
            && !self.running.is_empty()
            && crate::interrupt::confirm(&format!(
                "cancel the {} submitted Slurm jobs (scancel)? Otherwise they go on, and `nas-host resume` collects them",
                self.running.len()
            ));
        executor.stop(cancel)?;
        let ids: Vec<u64> = self.running.keys().copied().collect();
        let why = if cancel || !executor.outlives_controller() {
            crate::interrupt::STOP_REASON
        } else {
            "interrupted by Ctrl-C; its Slurm job goes on"
        };
        for id in ids {
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
        self.store.insert(&record, self.elapsed())?;
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
        let told = [result_of(proposal, record)];
        self.strategy
            .tell(&told)
            .context("telling the strategy a result")?;
        self.store
            .event(EventKind::Told, None, &told, self.elapsed())?;
        Ok(self
            .config
            .run
            .max_failures
            .and_then(|m| m.exceeded(self.failures, self.trials.len() as u64)))
    }

    /// Checks and builds one proposal: a record that is already final
    /// (invalid, unbuildable, infeasible, reused), or the trial to run.
    fn prepare(&mut self, proposal: &Proposal, id: u64) -> Result<Prepared> {
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
            return Ok(Prepared::Done(record));
        }
        if budget == 0 {
            record.reason = Some("the proposal's budget is 0 epochs".into());
            return Ok(Prepared::Done(record));
        }
        let network = match self.space.build(&proposal.assignment) {
            Ok(n) => n,
            Err(e) if self.space.is_usable() => {
                record.reason = Some(format!("{e:#}"));
                return Ok(Prepared::Done(record));
            }
            Err(e) => return Err(e.context("building a proposal's network")),
        };
        record.key = Some(network.key.clone());
        record.network = Some(network.clone());
        if let Some(reason) = self.violated_constraint(&network, &mut record)? {
            record.status = TrialStatus::Infeasible;
            record.reason = Some(reason);
            return Ok(Prepared::Done(record));
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
                    return Ok(Prepared::Done(record));
                }
            },
        };
        if let Some(earlier) = self.store.completed_with(&network.key, budget)? {
            record.status = TrialStatus::Completed;
            record.metrics = earlier.metrics;
            record.curve = earlier.curve;
            record.weights = earlier.weights;
            record.reused_from = Some(earlier.id);
            return Ok(Prepared::Done(record));
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
            resume_from,
        };
        let seed = record.seed;
        Ok(Prepared::Launch(
            Box::new(TrialSpec { seed, ..spec }),
            record,
        ))
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

    /// Evaluates `spec` in this process, recording each epoch as it finishes.
    fn run_local(
        &mut self,
        spec: &TrialSpec,
        mut record: TrialRecord,
        reporter: &mut Reporter,
    ) -> Result<TrialRecord> {
        let id = record.id;
        let started = Instant::now();
        let mut unrecorded = None;
        let clock = self.clock_before;
        let session = self.started;
        let store = &self.store;
        let outcome = self.evaluator.evaluate(spec, &mut |p| {
            if let Progress::Epoch(epoch) = p {
                let now = clock + session.elapsed().as_secs_f64();
                if let Err(e) = store.event(EventKind::Epoch, Some(id), epoch, now) {
                    unrecorded.get_or_insert(e);
                }
            }
            reporter.event(Event::Training(p));
        })?;
        if let Some(e) = unrecorded {
            return Err(e.context(format!("recording trial {id}'s epochs")));
        }
        record.seconds = started.elapsed().as_secs_f64();
        self.fill(&mut record, outcome)?;
        Ok(record)
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
        record.status = outcome.status;
        record.reason = outcome.reason;
        record.metrics = outcome.metrics;
        record.curve = outcome.curve;
        record.weights = outcome.weights.map(|w| w.display().to_string());
        Ok(())
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
        if c.max_params.is_none() && c.max_flops.is_none() && c.max_memory_mb.is_none() {
            return Ok(None);
        }
        let Ok(analysis) = analyse(network, &self.evaluator.task()) else {
            return Ok(None);
        };
        let (params, flops) = (analysis.params(), analysis.flops());
        let memory = analysis.train_memory_mb(self.config.train.batch_size);
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
