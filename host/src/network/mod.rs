//! Networks: shape inference with parameter and FLOP counts, compilation into
//! a candle model, and the summary table of an architecture.

mod model;
mod portable_pool;
pub mod shape;
mod summary;
mod tape;

pub use model::{LayerHook, Model, BN_EPS, LEAKY_SLOPE};
pub use shape::{analyse, Analysis, Shape};
pub use summary::{grouped, label, summary};
pub use tape::Tape;

#[cfg(test)]
pub(crate) mod tests;

#[cfg(all(test, feature = "cuda"))]
mod cuda_tests;
