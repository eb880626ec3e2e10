//! CPU kernels for the hot ops of training, as candle custom ops with their
//! own backward passes: dense layers (fused ReLU), convolution (direct
//! AVX-512 tiles for stride-1 `same` convolutions, im2col and gemm
//! otherwise; both gradients, the input gradient skipped where the input
//! needs none), max pooling (the gradient routed to the saved first maximum, as
//! PyTorch does), average pooling (any window, padding not counted), ReLU
//! (also fused into the convolution, dense layer or batch-norm before it),
//! max pooling fused into the convolution before it, batch-norm in training
//! and eval mode, a fused in-place optimiser update, and the integer
//! products of int8 inference ([`int8`]). Each op records its
//! backward pass in candle's graph or hands it to the caller ([`Record`]). Work is split over
//! the batch across threads, and every reduction runs in a fixed order, so
//! results do not depend on scheduling.
//! Other devices keep candle's own kernels.
// Nothing reachable from plugin output, a data file or a config may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod activation;
mod conv;
mod dense;
mod direct;
mod direct_weights;
mod gemm;
pub mod int8;
pub mod machine;
mod max2x2;
mod norm;
pub mod optim;
mod pool;
mod record;
#[cfg(target_arch = "x86_64")]
mod vmath;

pub use activation::{relu, smooth, Smooth};
pub use conv::{conv2d, Conv};
pub use dense::dense;
pub use norm::{batch_norm_eval, batch_norm_train, BatchStats};
pub use pool::{avg_pool2d, max_pool2d, PoolWindow};
pub use record::{Backward, Record};

#[cfg(test)]
mod tests;

use candle_core::{CpuStorage, Layout, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Whether the kernels use AVX-512: the CPU has AVX-512F, and the
/// environment variable `NAS_KERNELS_AVX512` is not `off`. The vector paths
/// check it at run time and keep a portable path for other CPUs; `off`
/// makes an AVX-512 machine take those paths, to measure and test them
/// there (the `gemm` crate still picks its own instructions).
fn has_avx512() -> bool {
    static USE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *USE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let found = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let found = false;
        found && std::env::var("NAS_KERNELS_AVX512").map_or(true, |v| v != "off")
    })
}

/// The mask of the first `n` (at most 16) lanes of a 16-lane vector.
fn lanes(n: usize) -> u16 {
    ((1u32 << n) - 1) as u16
}

/// `len` zeros written by all threads: an output of a whole batch zeroed by
/// `vec!` on the calling thread kept the other cores waiting (3-5 percent of
/// a training step's samples were that `memset`).
fn zeros<T: Copy + Default + Send + Sync>(len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()
        .par_chunks_mut(1 << 14)
        .for_each(|chunk| chunk.fill(MaybeUninit::new(T::default())));
    // SAFETY: the loop above wrote all `len` elements.
    unsafe { v.set_len(len) };
    v
}

/// The f32 values of a contiguous tensor's storage.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{what}: expected a contiguous tensor");
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}
