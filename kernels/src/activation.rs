//! Activations. ReLU's backward pass is one multiply-by-mask over the saved
//! output, instead of candle's chain of comparison, conversion and product
//! tensors; the smooth activations (GELU, SiLU, tanh, sigmoid, leaky ReLU)
//! compute value and derivative element by element on all threads, where
//! candle ran several scalar tensor ops each way on one thread.

use super::record::Record;
use super::{contiguous_f32, zeros};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `max(x, 0)` on the CPU kernels.
pub fn relu(x: &Tensor, record: Record) -> Result<Tensor> {
    record.apply1(x.contiguous()?, Relu)
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "nas-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "relu input")?;
        let mut y = zeros::<f32>(x.len());
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = x.max(0.0));
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(relu_grad(dy, y, true)?))
    }
}

/// `max(v, 0)` for every element, in place: the ops that fuse a following
/// ReLU apply it to their output while it is still in the cache.
pub(crate) fn relu_in_place(y: &mut [f32]) {
    y.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// The gradient before an op's output `y`, contiguous: with a (fused) ReLU,
/// `dy` where `y > 0`, else 0; without, `dy` itself.
pub(crate) fn relu_grad(dy: &Tensor, y: &Tensor, relu: bool) -> Result<Tensor> {
    let dy = dy.contiguous()?;
    if relu {
        dy.apply_op2_no_bwd(y, &ReluGrad)
    } else {
        Ok(dy)
    }
}

/// `dy` where the output was positive, else 0.
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "nas-relu-grad"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (dy, y) = (
            contiguous_f32(ds, dl, "relu output gradient")?,
            contiguous_f32(ys, yl, "relu output")?,
        );
        let mut dx = zeros::<f32>(dy.len());
        dx.par_chunks_mut(CHUNK)
            .zip(dy.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
            .for_each(|(dx, (dy, y))| {
                for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
                    *dx = if y > 0.0 { dy } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(dx), dl.shape().clone()))
    }
}

/// A smooth activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smooth {
    /// `x Φ(x)`, with the exact (erf) normal distribution function.
    Gelu,
    /// `x σ(x)`.
    Silu,
    /// `tanh x`.
    Tanh,
    /// `σ(x) = 1 / (1 + e^-x)`.
    Sigmoid,
    /// `x` for positive `x`, else `slope · x`.
    LeakyRelu(f32),
}

impl Smooth {
    /// Whether this CPU computes `f` sixteen lanes at a time.
    #[cfg(target_arch = "x86_64")]
    fn vectorised(self) -> bool {
        super::has_avx512() && super::vmath::covers(self)
    }

    /// `y = f(x)` for every element; the same code for every element on a
    /// given CPU, so results do not depend on how the work is split.
    fn values(self, x: &[f32], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.vectorised() {
            // SAFETY: AVX-512F is present and `f` is covered; `x` and `y` have equal lengths.
            return unsafe { super::vmath::values(self, x, y) };
        }
        for (y, &x) in y.iter_mut().zip(x) {
            *y = self.value(x);
        }
    }

    /// `dx = dy · f'(x)` for every element, as [`Smooth::values`] does.
    fn slopes(self, dy: &[f32], x: &[f32], y: &[f32], dx: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if self.vectorised() {
            // SAFETY: as in `values`.
            return unsafe { super::vmath::slopes(self, dy, x, y, dx) };
        }
        for (((dx, &dy), &x), &y) in dx.iter_mut().zip(dy).zip(x).zip(y) {
            *dx = dy * self.slope(x, y);
        }
    }

    /// `f(x)` (the portable form).
    pub(super) fn value(self, x: f32) -> f32 {
        match self {
            Smooth::Gelu => 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2)),
            Smooth::Silu => x / (1.0 + (-x).exp()),
            Smooth::Tanh => x.tanh(),
            Smooth::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Smooth::LeakyRelu(slope) => {
                if x > 0.0 {
                    x
                } else {
                    slope * x
                }
            }
        }
    }

    /// The derivative at input `x`, whose output was `y` (the portable form).
    pub(super) fn slope(self, x: f32, y: f32) -> f32 {
        match self {
            Smooth::Gelu => {
                // Φ(x) + x φ(x).
                let cdf = 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
                let density = (-0.5 * x * x).exp()
                    * (0.5 * std::f32::consts::FRAC_2_SQRT_PI)
                    * std::f32::consts::FRAC_1_SQRT_2;
                cdf + x * density
            }
            Smooth::Silu => {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 + x * (1.0 - s))
            }
            Smooth::Tanh => 1.0 - y * y,
            Smooth::Sigmoid => y * (1.0 - y),
            Smooth::LeakyRelu(slope) => {
                if x > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
        }
    }
}

/// `f(x)` for every element, on the CPU kernels.
pub fn smooth(x: &Tensor, f: Smooth, record: Record) -> Result<Tensor> {
    record.apply1(x.contiguous()?, SmoothOp(f))
}

struct SmoothOp(Smooth);

impl CustomOp1 for SmoothOp {
    fn name(&self) -> &'static str {
        "nas-smooth-activation"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(s, l, "activation input")?;
        let mut y = zeros::<f32>(x.len());
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| self.0.values(x, y));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op3_no_bwd(
            &x.contiguous()?,
            &y.contiguous()?,
            &SmoothGrad(self.0),
        )?))
    }
}

/// `dy · f'(x)`, from the output gradient, the input and the output.
struct SmoothGrad(Smooth);

impl CustomOp3 for SmoothGrad {
    fn name(&self) -> &'static str {
        "nas-smooth-activation-grad"
    }

    fn cpu_fwd(
        &self,
        ds: &CpuStorage,
        dl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (dy, x, y) = (
            contiguous_f32(ds, dl, "activation output gradient")?,
            contiguous_f32(xs, xl, "activation input")?,
            contiguous_f32(ys, yl, "activation output")?,
        );
        let mut dx = zeros::<f32>(dy.len());
        dx.par_chunks_mut(CHUNK)
            .zip(
                dy.par_chunks(CHUNK)
                    .zip(x.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))),
            )
            .for_each(|(dx, (dy, (x, y)))| self.0.slopes(dy, x, y, dx));
        Ok((CpuStorage::F32(dx), dl.shape().clone()))
    }
}
