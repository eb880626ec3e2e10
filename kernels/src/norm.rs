//! Batch normalisation in training mode: per-channel statistics over the
//! batch (and positions, for images), normalisation, scale and shift in one
//! forward pass, and the input, scale and shift gradients in two backward
//! passes, instead of a dozen candle tensor ops each way.

use super::activation::{relu_grad, relu_in_place};
use super::record::Record;
use super::{contiguous_f32, zeros};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Per-channel batch statistics of one forward pass.
#[derive(Debug, Clone, Default)]
pub struct BatchStats {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Biased variance per channel.
    pub var: Vec<f32>,
    /// Values averaged per channel (batch x positions).
    pub count: usize,
}

/// Normalises `x` (N x C, or N x C x H x W) with its batch statistics, then
/// scales by `gamma` and shifts by `beta`; returns the output and the statistics
/// (for the running averages). With `relu`, the output goes through a fused ReLU.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
    record: Record,
) -> Result<(Tensor, BatchStats)> {
    let stats = Arc::new(Mutex::new(BatchStats::default()));
    let op = BatchNorm {
        eps,
        relu,
        stats: stats.clone(),
        input_grad: record.input_grad(x),
    };
    let y = record.apply3(x.contiguous()?, gamma.contiguous()?, beta.contiguous()?, op)?;
    let s = stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((y, s))
}

/// Batch normalisation in eval mode, with running statistics `mean` and
/// `var`: `(x - mean) * gamma / sqrt(var + eps) + beta` per channel in one
/// pass (then ReLU with `relu`), where candle's ops take four broadcast
/// passes. Evaluation builds no backward graph, so this op has none.
pub fn batch_norm_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<Tensor> {
    let (gamma, beta) = (gamma.to_vec1::<f32>()?, beta.to_vec1::<f32>()?);
    let (mean, var) = (mean.to_vec1::<f32>()?, var.to_vec1::<f32>()?);
    let scale = var
        .iter()
        .zip(&gamma)
        .map(|(v, g)| (1.0 / ((*v as f64 + eps).sqrt() as f32)) * g)
        .collect();
    x.contiguous()?.apply_op1_no_bwd(&ScaleShift {
        mean,
        scale,
        shift: beta,
        relu,
    })
}

/// `(x - mean) * scale + shift` per channel, then ReLU when `relu`.
struct ScaleShift {
    mean: Vec<f32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl CustomOp1 for ScaleShift {
    fn name(&self) -> &'static str {
        "nas-batch-norm-eval"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, c, s) = layout_dims(xl.shape())?;
        if self.mean.len() != c {
            candle_core::bail!(
                "batch-norm: {} statistics for {c} channels",
                self.mean.len()
            );
        }
        let x = contiguous_f32(xs, xl, "batch-norm input")?;
        let mut y = zeros::<f32>(x.len());
        y.par_chunks_mut(c * s)
            .zip(x.par_chunks(c * s))
            .for_each(|(out, img)| {
                for ch in 0..c {
                    let (m, k, b) = (self.mean[ch], self.scale[ch], self.shift[ch]);
                    for p in ch * s..(ch + 1) * s {
                        out[p] = (img[p] - m) * k + b;
                    }
                }
                if self.relu {
                    relu_in_place(out);
                }
            });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }
}

/// (batch, channels, positions per channel) of a rank-2 or rank-4 tensor.
fn layout_dims(shape: &Shape) -> Result<(usize, usize, usize)> {
    match shape.dims() {
        [n, c] => Ok((*n, *c, 1)),
        [n, c, h, w] => Ok((*n, *c, h * w)),
        other => candle_core::bail!("batch-norm: expected N x C or N x C x H x W, got {other:?}"),
    }
}

/// Partial sums kept by [`channel_sum`]: one sum in a row waits on the
/// previous addition every time; eight independent ones fill a vector register.
const LANES: usize = 8;

/// What [`channel_sum`] adds up, in f64, for element `i`.
#[derive(Clone, Copy)]
enum Term<'a> {
    /// `v[i]`.
    Value(&'a [f32]),
    /// `(x[i] - mean)²`.
    SquaredDeviation { x: &'a [f32], mean: f64 },
    /// `dy[i] * (x[i] - mean) * scale`.
    ScaledProduct {
        dy: &'a [f32],
        x: &'a [f32],
        mean: f64,
        scale: f64,
    },
}

impl Term<'_> {
    fn at(self, i: usize) -> f64 {
        match self {
            Term::Value(v) => v[i] as f64,
            Term::SquaredDeviation { x, mean } => {
                let d = x[i] as f64 - mean;
                d * d
            }
            Term::ScaledProduct { dy, x, mean, scale } => {
                dy[i] as f64 * (x[i] as f64 - mean) * scale
            }
        }
    }
}

/// The sum of `term` over the batch and positions of channel `ch`, in f64
/// and in a fixed order (element `p` of each plane goes to partial sum
/// `p % LANES`; the partial sums are added in order), whatever the threads
/// and whether or not the CPU has AVX-512.
fn channel_sum(n: usize, c: usize, s: usize, ch: usize, term: Term) -> f64 {
    let mut lanes = [0f64; LANES];
    let whole = s - s % LANES;
    for i in 0..n {
        let base = (i * c + ch) * s;
        add_lanes(term, base, whole, &mut lanes);
        for p in whole..s {
            lanes[p % LANES] += term.at(base + p);
        }
    }
    lanes.iter().sum()
}

/// Adds `term` at `base + p` to partial sum `p % LANES`, for `p < whole`
/// (all eight at once where the CPU has AVX-512).
fn add_lanes(term: Term, base: usize, whole: usize, lanes: &mut [f64; LANES]) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: AVX-512F is present; the term's slices hold the channel's planes.
        return unsafe { avx512::add_lanes(term, base, whole, lanes) };
    }
    for p in (0..whole).step_by(LANES) {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += term.at(base + p + l);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Term, LANES};
    use std::arch::x86_64::*;

    /// [`super::add_lanes`]'s loop with the eight partial sums in one register:
    /// the same additions in the same order, eight at a time.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn add_lanes(
        term: Term,
        base: usize,
        whole: usize,
        lanes: &mut [f64; LANES],
    ) {
        let load = |v: &[f32], i: usize| {
            let v = &v[i..i + LANES];
            // SAFETY: `v` holds eight f32s.
            _mm512_cvtps_pd(unsafe { _mm256_loadu_ps(v.as_ptr()) })
        };
        // SAFETY: `lanes` holds eight f64s, one 512-bit vector.
        let mut acc = unsafe { _mm512_loadu_pd(lanes.as_ptr()) };
        for p in (0..whole).step_by(LANES) {
            let i = base + p;
            let v = match term {
                Term::Value(v) => load(v, i),
                Term::SquaredDeviation { x, mean } => {
                    let d = _mm512_sub_pd(load(x, i), _mm512_set1_pd(mean));
                    _mm512_mul_pd(d, d)
                }
                Term::ScaledProduct { dy, x, mean, scale } => {
                    let d = _mm512_sub_pd(load(x, i), _mm512_set1_pd(mean));
                    _mm512_mul_pd(_mm512_mul_pd(load(dy, i), d), _mm512_set1_pd(scale))
                }
            };
            acc = _mm512_add_pd(acc, v);
        }
        // SAFETY: as for the load above.
        unsafe { _mm512_storeu_pd(lanes.as_mut_ptr(), acc) };
    }
}

struct BatchNorm {
    eps: f64,
    relu: bool,
    stats: Arc<Mutex<BatchStats>>,
    /// Whether the input needs a gradient (the network's input needs none).
    input_grad: bool,
}

impl BatchNorm {
    fn inv_std(&self, stats: &BatchStats) -> Vec<f32> {
        stats
            .var
            .iter()
            .map(|v| 1.0 / ((*v as f64 + self.eps).sqrt() as f32))
            .collect()
    }
}

impl CustomOp3 for BatchNorm {
    fn name(&self) -> &'static str {
        "nas-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, s) = layout_dims(xl.shape())?;
        let x = contiguous_f32(xs, xl, "batch-norm input")?;
        let (gamma, beta) = (
            contiguous_f32(gs, gl, "batch-norm scale")?,
            contiguous_f32(bs, bl, "batch-norm shift")?,
        );
        let count = n * s;
        let moments: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let mean = channel_sum(n, c, s, ch, Term::Value(x)) / count as f64;
                let var =
                    channel_sum(n, c, s, ch, Term::SquaredDeviation { x, mean }) / count as f64;
                (mean as f32, var as f32)
            })
            .collect();
        let stats = BatchStats {
            mean: moments.iter().map(|m| m.0).collect(),
            var: moments.iter().map(|m| m.1).collect(),
            count,
        };
        let inv = self.inv_std(&stats);
        let mut y = zeros::<f32>(x.len());
        y.par_chunks_mut(c * s)
            .zip(x.par_chunks(c * s))
            .for_each(|(out, img)| {
                for ch in 0..c {
                    let (m, k, b) = (stats.mean[ch], inv[ch] * gamma[ch], beta[ch]);
                    for p in 0..s {
                        out[ch * s + p] = (img[ch * s + p] - m) * k + b;
                    }
                }
                if self.relu {
                    relu_in_place(out);
                }
            });
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = stats;
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let inv = Arc::new(self.inv_std(&stats));
        let stats = Arc::new(stats);
        let dy = relu_grad(dy, y, self.relu)?;
        // Row 0: the scale gradient (sum of dy * x-hat); row 1: the shift gradient (sum of dy).
        let params = x.apply_op2_no_bwd(
            &dy,
            &ParamGrad {
                stats: stats.clone(),
                inv: inv.clone(),
            },
        )?;
        let c = gamma.dim(0)?;
        let dgamma = params.narrow(0, 0, c)?;
        let dbeta = params.narrow(0, c, c)?;
        let aux = Tensor::cat(&[gamma, &dgamma, &dbeta], 0)?;
        let dx = if self.input_grad {
            Some(x.apply_op3_no_bwd(&dy, &aux, &InputGrad { stats, inv })?)
        } else {
            None
        };
        Ok((dx, Some(dgamma), Some(dbeta)))
    }
}

struct ParamGrad {
    stats: Arc<BatchStats>,
    inv: Arc<Vec<f32>>,
}

impl CustomOp2 for ParamGrad {
    fn name(&self) -> &'static str {
        "nas-batch-norm-param-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, s) = layout_dims(xl.shape())?;
        let (x, dy) = (
            contiguous_f32(xs, xl, "batch-norm input")?,
            contiguous_f32(ds, dl, "batch-norm output gradient")?,
        );
        let sums: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, scale) = (self.stats.mean[ch] as f64, self.inv[ch] as f64);
                let dgamma = channel_sum(n, c, s, ch, Term::ScaledProduct { dy, x, mean, scale });
                let dbeta = channel_sum(n, c, s, ch, Term::Value(dy));
                (dgamma as f32, dbeta as f32)
            })
            .collect();
        let mut out: Vec<f32> = sums.iter().map(|s| s.0).collect();
        out.extend(sums.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from(2 * c)))
    }
}

struct InputGrad {
    stats: Arc<BatchStats>,
    inv: Arc<Vec<f32>>,
}

impl CustomOp3 for InputGrad {
    fn name(&self) -> &'static str {
        "nas-batch-norm-input-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ds: &CpuStorage,
        dl: &Layout,
        aux_s: &CpuStorage,
        aux_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, s) = layout_dims(xl.shape())?;
        let (x, dy) = (
            contiguous_f32(xs, xl, "batch-norm input")?,
            contiguous_f32(ds, dl, "batch-norm output gradient")?,
        );
        let aux = contiguous_f32(aux_s, aux_l, "batch-norm gradients")?;
        let (gamma, dgamma, dbeta) = (&aux[..c], &aux[c..2 * c], &aux[2 * c..3 * c]);
        let m = self.stats.count as f32;
        let mut dx = zeros::<f32>(x.len());
        dx.par_chunks_mut(c * s)
            .zip(x.par_chunks(c * s).zip(dy.par_chunks(c * s)))
            .for_each(|(out, (img, grad))| {
                for ch in 0..c {
                    let (mean, k) = (self.stats.mean[ch], self.inv[ch]);
                    let scale = gamma[ch] * k / m;
                    for p in 0..s {
                        let xhat = (img[ch * s + p] - mean) * k;
                        out[ch * s + p] =
                            scale * (m * grad[ch * s + p] - dbeta[ch] - xhat * dgamma[ch]);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}
