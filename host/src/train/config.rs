//! The `[train]` table: optimiser, learning rate and schedule, batch size and
//! the default budget in epochs.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Which optimiser updates the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam; `weight_decay` adds an L2 term to the gradient.
    Adam,
    /// Adam with decoupled weight decay.
    Adamw,
    /// Stochastic gradient descent with optional (Nesterov) momentum.
    Sgd,
}

/// How the learning rate changes over the epochs of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Constant.
    None,
    /// Cosine decay to zero over the trial's epochs.
    Cosine,
    /// Multiply by `gamma` every `step_epochs` epochs.
    Step,
}

/// The largest `batch_size` and `eval_batch_size`.
const MAX_BATCH: usize = 1 << 20;
/// The largest `epochs` (a trial's budget from a strategy is checked against it too).
pub const MAX_EPOCHS: u32 = 100_000;
/// The largest `latency_repeats`: each repeat is a forward pass, so more only adds time.
const MAX_LATENCY_REPEATS: usize = 10_000;

/// The `[train]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// `adam` (default), `adamw` or `sgd`.
    pub optimizer: OptimizerKind,
    /// Initial learning rate (default 0.001).
    pub learning_rate: f64,
    /// Weight decay (default 0).
    pub weight_decay: f64,
    /// SGD momentum (default 0.9).
    pub momentum: f64,
    /// SGD with Nesterov momentum (default false).
    pub nesterov: bool,
    /// Training batch size (default 64).
    pub batch_size: usize,
    /// Epochs per trial when a proposal names no budget (default 3).
    pub epochs: u32,
    /// `none` (default), `cosine` or `step`.
    pub schedule: Schedule,
    /// With `schedule = "step"`: epochs between steps (default 1).
    pub step_epochs: u32,
    /// With `schedule = "step"`: factor per step (default 0.5).
    pub gamma: f64,
    /// Batch size of validation and test passes (default 500).
    pub eval_batch_size: usize,
    /// Timed runs per latency probe, after warm-up (default 10).
    pub latency_repeats: usize,
    /// A batch loss above this (or NaN or infinite) ends the trial as diverged (default 1000).
    pub max_loss: f64,
    /// End a trial as failed when its training runs longer than this many seconds.
    pub trial_timeout_s: Option<f64>,
    /// Save a checkpoint (weights, optimiser state, batch order, random
    /// stream) every this many epochs, so `nas-host resume` continues an
    /// interrupted trial from there; 0 turns checkpoints off (default 1).
    pub checkpoint_every: u32,
    /// Keep a finished trial's final checkpoint (weights and optimiser
    /// state), so that multi-fidelity strategies can promote it (continue it
    /// for more epochs) instead of training again (default true).
    pub keep_checkpoints: bool,
    /// Fail a trial before training when its estimated training memory
    /// (`memory_mb`) is above this many MiB; default: 90 percent of the
    /// memory left to the process when the trial starts (machine, control
    /// group and resource limits).
    pub max_memory_mb: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            momentum: 0.9,
            nesterov: false,
            batch_size: 64,
            epochs: 3,
            schedule: Schedule::None,
            step_epochs: 1,
            gamma: 0.5,
            eval_batch_size: 500,
            latency_repeats: 10,
            max_loss: 1000.0,
            trial_timeout_s: None,
            checkpoint_every: 1,
            keep_checkpoints: true,
            max_memory_mb: None,
        }
    }
}

impl TrainConfig {
    /// Checks values and combinations; errors name the `[train]` key.
    pub fn validate(&self) -> Result<()> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            bail!(
                "[train] learning_rate = {} must be a positive number (default 0.001)",
                self.learning_rate
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            bail!(
                "[train] weight_decay = {} must be zero or positive",
                self.weight_decay
            );
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("[train] momentum = {} must be in [0, 1)", self.momentum);
        }
        if self.nesterov && (self.optimizer != OptimizerKind::Sgd || self.momentum == 0.0) {
            bail!("[train] nesterov = true needs optimizer = \"sgd\" with momentum > 0");
        }
        if !(1..=MAX_BATCH).contains(&self.batch_size)
            || !(1..=MAX_BATCH).contains(&self.eval_batch_size)
        {
            bail!(
                "[train] batch_size and eval_batch_size must be at least 1 and at most {MAX_BATCH}"
            );
        }
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            bail!(
                "[train] epochs must be at least 1 and at most {MAX_EPOCHS} (default 3), not {}",
                self.epochs
            );
        }
        if self.schedule == Schedule::Step
            && (self.step_epochs == 0 || !(self.gamma > 0.0 && self.gamma <= 1.0))
        {
            bail!("[train] schedule = \"step\" needs step_epochs >= 1 and 0 < gamma <= 1");
        }
        if self.max_loss.is_nan() || self.max_loss <= 0.0 {
            bail!(
                "[train] max_loss = {} must be positive (default 1000)",
                self.max_loss
            );
        }
        if self.trial_timeout_s.is_some_and(|t| t.is_nan() || t <= 0.0) {
            bail!("[train] trial_timeout_s must be a positive number of seconds");
        }
        if self.max_memory_mb.is_some_and(|m| m.is_nan() || m <= 0.0) {
            bail!("[train] max_memory_mb must be a positive number of MiB");
        }
        if !(1..=MAX_LATENCY_REPEATS).contains(&self.latency_repeats) {
            bail!(
                "[train] latency_repeats must be at least 1 and at most {MAX_LATENCY_REPEATS} (default 10), not {}",
                self.latency_repeats
            );
        }
        Ok(())
    }

    /// The learning rate in epoch `epoch` (0-based) of `epochs`.
    pub fn learning_rate_at(&self, epoch: u32, epochs: u32) -> f64 {
        match self.schedule {
            Schedule::None => self.learning_rate,
            Schedule::Cosine => {
                0.5 * self.learning_rate
                    * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs.max(1) as f64).cos())
            }
            Schedule::Step => {
                self.learning_rate * self.gamma.powi((epoch / self.step_epochs) as i32)
            }
        }
    }
}
