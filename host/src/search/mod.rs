//! A search: `nas-host run` and `nas-host resume`. This module sets the
//! run's state up and hands it to the loop; each of its parts has one job:
//! `setup` (config to evaluator and plugins), `run_loop` (ask, launch,
//! record, tell), `admission` (validation, constraints, reuse, promotion),
//! `replay` (resume's rebuilding of the strategy's state) and `finish`
//! (`best/` and the held-out report). Results read from the store (best
//! trial, Pareto front) live in `results`.

mod admission;
mod finish;
mod replay;
mod run_loop;
mod setup;

use crate::config::RunConfig;
use crate::evaluator::Evaluator;
use crate::executor::{Executor, LocalRunner};
use crate::interrupt::Cancel;
use crate::ir::{self, Dimension, Objective, Proposal, TrialStatus};
use crate::lock::RunLock;
use crate::plugin::{SpacePlugin, StrategyPlugin};
use crate::progress::Reporter;
use crate::results::{better, objective_value, FACTS_KEY};
use crate::store::{EventKind, RunStore, TrialRecord, DB_FILE, FORMAT_KEY};
use anyhow::{bail, Context, Result};
pub(crate) use setup::check_table;
use setup::Parts;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
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

/// What a run did.
pub struct RunResult {
    /// The run directory.
    pub dir: PathBuf,
    /// Every trial, by id.
    pub trials: Vec<TrialRecord>,
    /// Why the run stopped.
    pub stop_reason: String,
    /// Whether trials in training were stopped (by Ctrl-C or at
    /// `max_time_s`): `nas-host resume` continues them.
    pub interrupted: bool,
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

/// The run's state while it searches.
struct Search<'a> {
    config: &'a RunConfig,
    dir: PathBuf,
    store: RunStore,
    evaluator: Rc<dyn Evaluator>,
    space: SpacePlugin,
    strategy: StrategyPlugin,
    dims: Vec<Dimension>,
    objectives: Vec<Objective>,
    /// `[distill]`: the teacher every trial also learns from.
    teacher: Option<crate::train::distill::TeacherSpec>,
    /// `[pruner]`: the rule each trial is admitted with (reference curves added then).
    pruning: Option<crate::prune::Pruning>,
    best: Option<(f64, u64)>,
    trials: Vec<TrialRecord>,
    /// For each architecture key and budget, the first completed trial that
    /// trained it (what a later proposal of both reuses), by its index in `trials`.
    trained: HashMap<(String, u32), usize>,
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
    /// Where trials run.
    executor: Executor,
    /// Trials started on the executor and not finished.
    running: BTreeMap<u64, Running>,
    /// The Slurm job of each trial submitted (by any session).
    submitted: BTreeMap<u64, String>,
    /// The strategy proposed nothing while trials were in flight: ask again after the next result.
    waiting: bool,
    /// Stops the run and the trial it trains (Ctrl-C, or the caller).
    /// Whether trials in training were stopped before they finished.
    interrupted: bool,
    cancel: Cancel,
    /// Held until the run ends.
    _lock: RunLock,
}

/// A trial on the executor, not finished.
struct Running {
    proposal: Proposal,
    /// Its record so far.
    record: TrialRecord,
    started: Instant,
}

/// Limits that `nas-host resume` may change.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// A new `[run] max_trials`.
    pub max_trials: Option<u64>,
    /// A new `[run] max_time_s` (counted over the whole run, earlier sessions included).
    pub max_time_s: Option<f64>,
}

/// Runs the search `config` describes, reporting to `reporter`, until a
/// limit, the strategy's end, or `cancel`.
pub fn run(config: &RunConfig, reporter: &mut Reporter, cancel: &Cancel) -> Result<RunResult> {
    let dir = config.run.output_dir.join(config.name());
    if dir.join(DB_FILE).exists() && RunLock::holder(&dir).is_some() {
        // Say who holds it, before the slow part.
        RunLock::acquire(&dir)?;
    }
    // Everything that can fail on bad input happens before the run directory
    // is written, so a failed start leaves nothing that blocks the next try.
    let parts = setup::prepare(config)?;
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
    std::fs::write(dir.join("config.toml"), config.recorded_text()?)
        .context("write the resolved config")?;
    let seed = config.run.seed.to_string();
    let data_seed = config.data.seed.unwrap_or(config.run.seed).to_string();
    let config_text = config.recorded_text()?;
    let description = parts.evaluator.description();
    let task = serde_json::to_string(&parts.evaluator.task())?;
    let classes = serde_json::to_string(&parts.evaluator.classes())?;
    store.set_metas(&[
        ("nas_host_version", env!("CARGO_PKG_VERSION")),
        ("config", &config_text),
        ("seed", &seed),
        ("data_seed", &data_seed),
        ("strategy_seed", &seed),
        ("data", &description),
        ("task", &task),
        ("classes", &classes),
        (FACTS_KEY, &serde_json::to_string(&setup::facts(config))?),
        (FORMAT_KEY, &ir::FORMAT_VERSION.to_string()),
    ])?;
    let search = Search::new(config, dir, store, parts, lock, cancel)?;
    search
        .store
        .event(EventKind::SessionStarted, None, &"run", 0.0)?;
    search.conclude(reporter)
}

/// `nas-host resume DIR`: continues the run in `dir` after a crash, a kill
/// or Ctrl-C (or with new limits after it finished). Finished trials are kept,
/// the strategy's state is rebuilt by replaying what it was asked and told,
/// and trials that were in flight continue from their last checkpoint.
pub fn resume(
    dir: &Path,
    overrides: &Overrides,
    reporter: &mut Reporter,
    cancel: &Cancel,
) -> Result<RunResult> {
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
    check_unedited(&dir.join("config.toml"), &text)?;
    let mut config = RunConfig::parse(&text, &format!("the config recorded in {}", db.display()))?;
    if let Some(n) = overrides.max_trials {
        config.run.max_trials = n;
    }
    if let Some(t) = overrides.max_time_s {
        config.run.max_time_s = Some(t);
    }
    config.validate()?;
    let parts = setup::prepare(&config)?;
    let mut search = Search::new(&config, dir.to_path_buf(), store, parts, lock, cancel)?;
    search.replay()?;
    let config_text = config.recorded_text()?;
    std::fs::write(dir.join("config.toml"), &config_text).context("write the resolved config")?;
    search.store.set_meta("config", &config_text)?;
    // What this session records is in this version's format.
    search
        .store
        .set_meta(FORMAT_KEY, &ir::FORMAT_VERSION.to_string())?;
    search
        .store
        .set_meta(FACTS_KEY, &serde_json::to_string(&setup::facts(&config))?)?;
    search.store.remove_meta("stop_reason")?;
    let facts = serde_json::json!({"command": "resume", "trials": search.trials.len(), "pending": search.pending.len()});
    search
        .store
        .event(EventKind::SessionStarted, None, &facts, search.elapsed())?;
    search.conclude(reporter)
}

/// Refuses to resume when the run's `config.toml` no longer holds the
/// config the run recorded: `resume` continues the recorded run and would
/// otherwise overwrite the edit silently.
fn check_unedited(path: &Path, recorded: &str) -> Result<()> {
    let Ok(on_disk) = std::fs::read_to_string(path) else {
        return Ok(()); // Missing or unreadable: written anew below.
    };
    if on_disk == recorded {
        return Ok(());
    }
    let (mut a, mut b) = (on_disk.lines(), recorded.lines());
    let mut line = 1;
    let (edited, was) = loop {
        match (a.next(), b.next()) {
            (x, y) if x == y && x.is_some() => line += 1,
            (x, y) => break (x.unwrap_or("(end of file)"), y.unwrap_or("(end of file)")),
        }
    };
    bail!(
        "{} was edited since the run recorded it (line {line} reads `{edited}`, the run recorded `{was}`). \
         `nas-host resume` continues the recorded run, whose limits can change with --max-trials and --max-time-s; \
         to search with the edited config, start a new run with it (`nas-host run` and another [run] name), \
         or restore the file (deleting it also works: resume writes it again)",
        path.display()
    )
}

impl<'a> Search<'a> {
    fn new(
        config: &'a RunConfig,
        dir: PathBuf,
        store: RunStore,
        parts: Parts,
        lock: RunLock,
        cancel: &Cancel,
    ) -> Result<Self> {
        let local = LocalRunner::new(parts.evaluator.clone(), cancel.clone());
        let executor = Executor::new(&config.executor, config.name(), &config.run.device, local)?;
        Ok(Search {
            config,
            dir,
            store,
            teacher: parts.teacher,
            pruning: match &config.pruner {
                Some(p) => Some(p.pruning(&parts.objectives[0].metric)?),
                None => None,
            },
            evaluator: parts.evaluator,
            space: parts.space,
            strategy: parts.strategy,
            dims: parts.dims,
            objectives: parts.objectives,
            best: None,
            trials: Vec::new(),
            trained: HashMap::new(),
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
            interrupted: false,
            cancel: cancel.clone(),
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

    /// Takes a finished trial into the run's tallies.
    fn count(&mut self, record: TrialRecord) {
        self.simulated_seconds +=
            crate::results::charged_seconds(&record, self.config.evaluator.charge_reused);
        if record.status == TrialStatus::Completed {
            if let Some(v) = objective_value(&record, self.objective()) {
                if self
                    .best
                    .is_none_or(|(b, _)| better(v, b, self.objective()))
                {
                    self.best = Some((v, record.id));
                }
            }
        }
        self.failures += u64::from(record.status == TrialStatus::Failed);
        if let (TrialStatus::Completed, None, Some(key)) =
            (record.status, record.reused_from, &record.key)
        {
            let at = self.trials.len();
            let trials = &self.trials;
            self.trained
                .entry((key.clone(), record.budget))
                .and_modify(|i| {
                    if trials[*i].id > record.id {
                        *i = at;
                    }
                })
                .or_insert(at);
        }
        self.trials.push(record);
    }
}
