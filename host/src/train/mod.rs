//! Training and evaluation of one network: configuration, optimisers, the
//! epoch loop, evaluation and latency probes.

mod config;
mod optimizer;
mod trainer;

pub use config::{OptimizerKind, Schedule, TrainConfig};
pub use optimizer::Optimizer;
pub use trainer::{evaluate, latency_ms, train, EpochRecord, Progress, TrainOutcome};
