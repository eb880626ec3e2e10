//! Training and evaluation of one network: configuration, optimisers, the
//! epoch loop, evaluation and latency probes, and the process settings
//! (allocator, candle's thread pool) they need.

mod allocator;
mod candle_threads;
mod checkpoint;
mod config;
pub mod distill;
mod optimizer;
pub mod searched;
mod trainer;

pub use allocator::keep_freed_memory;
pub use candle_threads::serial_candle_elementwise;
pub use checkpoint::{remove as remove_checkpoint, SET_ASIDE as DAMAGED_CHECKPOINT};
pub use config::{OptimizerKind, Schedule, TrainConfig, MAX_EPOCHS};
pub use optimizer::Optimizer;
pub use trainer::{
    cross_entropy_grad, evaluate, evaluate_pass, latency_ms, pass_latency_ms, train, train_with,
    Checkpoints, Extras, HostFault, Pass, Progress, TrainOutcome,
};
