//! Where trials run: in the search process one at a time (`local`), in
//! worker processes (`process`), or as Slurm jobs (`slurm`). Every executor
//! takes trial specs through the same interface (submit, then poll for
//! updates) and runs the same trial function: in process through the run's
//! evaluator, in workers and jobs as `nas-host trial --spec` on a spec in
//! the run directory, which leaves `result.json` beside it.

mod local;
mod process;
mod slurm;

use crate::train::Progress;
use crate::trial::{TrialOutcome, TrialSpec, RESULT_FILE};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use local::LocalRunner;
pub use process::ProcessPool;
pub use slurm::SlurmQueue;

/// Which executor runs the trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// In the search process, one trial at a time.
    #[default]
    Local,
    /// `workers` child processes on this machine.
    Process,
    /// One Slurm job per trial.
    Slurm,
}

/// The `[executor]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// `local` (default), `process` or `slurm`.
    pub kind: ExecutorKind,
    /// Trials at once: worker processes, or Slurm jobs in flight (default 2).
    pub workers: usize,
    /// Process: compute threads per worker (default: the machine's cores / workers).
    pub threads_per_worker: Option<usize>,
    /// Times a trial whose worker or job died (cancelled, timed out, failed, node lost) is run again (default 1).
    pub max_retries: u32,
    /// The nas-host binary workers run (default: this one; on Slurm it must be reachable on the nodes).
    pub command: Option<PathBuf>,
    /// Slurm: shell lines run in the job before the trial (`module load ...`, environment).
    pub setup: Option<String>,
    /// Slurm: `--partition`.
    pub partition: Option<String>,
    /// Slurm: `--account`.
    pub account: Option<String>,
    /// Slurm: `--qos`.
    pub qos: Option<String>,
    /// Slurm: `--time` per trial, in minutes.
    pub time_limit_min: Option<u32>,
    /// Slurm: `--cpus-per-task` (default 1).
    pub cpus_per_trial: u32,
    /// Slurm: `--mem` per trial, in MiB.
    pub mem_per_trial_mb: Option<u64>,
    /// Slurm: `--gres=gpu:N` (default 1 when the run's device is CUDA, else none).
    pub gpus_per_trial: Option<u32>,
    /// Slurm: more `sbatch` arguments, as given.
    pub extra_args: Vec<String>,
    /// Slurm: job names are `PREFIX-RUN-TRIAL` (default `nas`).
    pub job_name_prefix: String,
    /// Slurm: seconds between `squeue` polls (default 1).
    pub poll_s: f64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            kind: ExecutorKind::Local,
            workers: 2,
            threads_per_worker: None,
            max_retries: 1,
            command: None,
            setup: None,
            partition: None,
            account: None,
            qos: None,
            time_limit_min: None,
            cpus_per_trial: 1,
            mem_per_trial_mb: None,
            gpus_per_trial: None,
            extra_args: Vec::new(),
            job_name_prefix: "nas".into(),
            poll_s: 1.0,
        }
    }
}

impl ExecutorConfig {
    /// Checks values; errors name the `[executor]` key.
    pub fn validate(&self, device: &str) -> Result<()> {
        if self.kind != ExecutorKind::Local && self.workers == 0 {
            bail!("[executor] workers must be at least 1");
        }
        if self.threads_per_worker == Some(0) {
            bail!("[executor] threads_per_worker must be at least 1");
        }
        if !(self.poll_s > 0.0 && self.poll_s <= 3600.0) {
            bail!(
                "[executor] poll_s = {} must be a positive number of seconds, at most 3600",
                self.poll_s
            );
        }
        if self.cpus_per_trial == 0 {
            bail!("[executor] cpus_per_trial must be at least 1");
        }
        let slurm_only = [
            ("partition", self.partition.is_some()),
            ("account", self.account.is_some()),
            ("qos", self.qos.is_some()),
            ("time_limit_min", self.time_limit_min.is_some()),
            ("mem_per_trial_mb", self.mem_per_trial_mb.is_some()),
            ("gpus_per_trial", self.gpus_per_trial.is_some()),
            ("extra_args", !self.extra_args.is_empty()),
            ("setup", self.setup.is_some()),
        ];
        if self.kind != ExecutorKind::Slurm {
            if let Some((key, _)) = slurm_only.iter().find(|(_, set)| *set) {
                bail!("[executor] {key} applies only to kind = \"slurm\"; remove it or set kind = \"slurm\"");
            }
        }
        if self.gpus_per_trial.is_some_and(|g| g > 0) && !device.starts_with("cuda") {
            bail!("[executor] gpus_per_trial needs [run] device = \"cuda:0\"; trials on the CPU use no GPU");
        }
        Ok(())
    }

    /// Trials that may run at once.
    pub fn slots(&self) -> usize {
        match self.kind {
            ExecutorKind::Local => 1,
            _ => self.workers,
        }
    }

    /// The nas-host binary that runs trials.
    fn command(&self) -> Result<PathBuf> {
        match &self.command {
            Some(c) => Ok(c.clone()),
            None => std::env::current_exe().context("find the nas-host binary for the workers"),
        }
    }
}

/// File name of a trial's spec in its folder.
pub const SPEC_FILE: &str = "spec.json";

/// Writes `spec` into its trial folder; returns the spec file's path.
fn write_spec(spec: &TrialSpec) -> Result<PathBuf> {
    std::fs::create_dir_all(&spec.dir)
        .with_context(|| format!("create trial folder {}", spec.dir.display()))?;
    let path = spec.dir.join(SPEC_FILE);
    // A result left by an earlier attempt must not be taken for this one's.
    let _ = std::fs::remove_file(spec.dir.join(RESULT_FILE));
    std::fs::write(&path, spec.to_json()?).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// The outcome a worker wrote into `dir`, if it wrote one.
fn read_result(dir: &Path) -> Option<TrialOutcome> {
    let text = std::fs::read_to_string(dir.join(RESULT_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The last lines of a worker's log before any backtrace, for a failure's reason.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kept = crate::trial::before_backtrace(&text);
    kept[kept.len().saturating_sub(3)..].join(" | ")
}

/// What an executor reports about the trials it runs.
#[derive(Debug, Clone)]
pub enum Update {
    /// A trial ended with its outcome.
    Finished(TrialOutcome),
    /// A trial's job changed state (Slurm): for the store and `nas-host status`.
    JobState {
        /// The trial.
        trial: u64,
        /// The job id.
        job: String,
        /// Slurm's state, with the node or the pending reason.
        state: String,
    },
    /// A trial's worker or job ended without a result once more than
    /// `max_retries` allow: the host's problem, not the architecture's, so
    /// the run stops and `nas-host resume` runs the trial again.
    Lost {
        /// The trial.
        trial: u64,
        /// What happened, the last time.
        why: String,
    },
    /// A trial's worker or job died and it runs again (from its checkpoint).
    Retried {
        /// The trial.
        trial: u64,
        /// What happened.
        why: String,
        /// The new job id, when there is one.
        job: Option<String>,
    },
}

/// Where the trials of a run go.
pub enum Executor {
    /// In the search process.
    Local(LocalRunner),
    /// Worker processes.
    Process(ProcessPool),
    /// Slurm jobs.
    Slurm(Box<SlurmQueue>),
}

impl Executor {
    /// The executor `config` asks for; `local` runs trials on `local`.
    pub fn new(
        config: &ExecutorConfig,
        run_name: &str,
        device: &str,
        local: LocalRunner,
    ) -> Result<Self> {
        Ok(match config.kind {
            ExecutorKind::Local => Executor::Local(local),
            ExecutorKind::Process => Executor::Process(ProcessPool::new(config)?),
            ExecutorKind::Slurm => {
                Executor::Slurm(Box::new(SlurmQueue::new(config, run_name, device)?))
            }
        })
    }

    /// Whether trials run in the search process.
    pub fn in_process(&self) -> bool {
        matches!(self, Executor::Local(_))
    }

    /// Starts `spec`; returns the Slurm job id, if any.
    pub fn submit(&mut self, spec: TrialSpec) -> Result<Option<String>> {
        match self {
            Executor::Local(l) => {
                l.submit(spec);
                Ok(None)
            }
            Executor::Process(p) => p.submit(spec).map(|()| None),
            Executor::Slurm(s) => s.submit(spec).map(Some),
        }
    }

    /// Follows a trial whose Slurm job `job` was submitted by an earlier
    /// session (after `resume`); worker processes of an earlier session are
    /// gone, so those trials start again.
    pub fn attach(&mut self, spec: TrialSpec, job: Option<&str>) -> Result<Option<String>> {
        match (self, job) {
            (Executor::Slurm(s), Some(job)) => s.attach(spec, job).map(Some),
            (executor, _) => executor.submit(spec),
        }
    }

    /// Waits a little (in process: runs the next trial) and returns what
    /// changed; executors that see training as it happens report it to
    /// `on_progress` with the trial's id.
    pub fn poll(&mut self, on_progress: &mut dyn FnMut(u64, Progress)) -> Result<Vec<Update>> {
        match self {
            Executor::Local(l) => l.poll(on_progress),
            Executor::Process(p) => p.poll(),
            Executor::Slurm(s) => s.poll(),
        }
    }

    /// After Ctrl-C: stops worker processes (their checkpoints stay for
    /// `resume`); Slurm jobs are cancelled only when `cancel_jobs`.
    pub fn stop(&mut self, cancel_jobs: bool) -> Result<()> {
        match self {
            Executor::Local(l) => {
                l.stop();
                Ok(())
            }
            Executor::Process(p) => {
                p.stop();
                Ok(())
            }
            Executor::Slurm(s) if cancel_jobs => s.cancel_all(),
            Executor::Slurm(_) => Ok(()),
        }
    }

    /// Whether training progress reaches `poll`'s `on_progress` as it
    /// happens (in process); otherwise a trial's epochs arrive with its outcome.
    pub fn reports_epochs(&self) -> bool {
        matches!(self, Executor::Local(_))
    }

    /// Whether trials keep running after this process exits (Slurm jobs).
    pub fn outlives_controller(&self) -> bool {
        matches!(self, Executor::Slurm(_))
    }
}
