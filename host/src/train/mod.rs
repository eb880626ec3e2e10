//! Training and evaluation of one network: configuration, optimisers, the
//! epoch loop, evaluation and latency probes.

mod checkpoint;
mod config;
mod optimizer;
mod trainer;

pub use checkpoint::remove as remove_checkpoint;
pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use optimizer::Optimizer;
pub use trainer::{evaluate, latency_ms, train, Checkpoints, EpochRecord, Progress, TrainOutcome};
