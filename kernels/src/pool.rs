//! Pooling. Max pooling saves where each maximum came from, so the backward
//! pass routes the gradient to that position (the first maximum of a window,
//! as PyTorch does) instead of spreading it over ties. Average pooling
//! averages the positions inside the input only (padding is not counted, as
//! NAS-Bench-201 and Keras's `same` do), for any window, stride and padding.

use super::max2x2::max_2x2;
use super::record::Record;
use super::{contiguous_f32, zeros};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Max pooling of `x` (N x C x H x W) over `window`, the padding being
/// implicit negative infinity.
pub fn max_pool2d(x: &Tensor, window: PoolWindow, record: Record) -> Result<Tensor> {
    let argmax = Mutex::default();
    record.apply1(x.contiguous()?, MaxPool { window, argmax })
}

/// Average pooling of `x` (N x C x H x W) over the in-bounds positions of
/// each square window.
pub fn avg_pool2d(x: &Tensor, window: PoolWindow, record: Record) -> Result<Tensor> {
    record.apply1(x.contiguous()?, AvgPool(window))
}

/// Output height and width, and the input rows and columns of every window.
pub(super) type Plan = (usize, usize, Vec<Range<usize>>, Vec<Range<usize>>);

/// The geometry of a square pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    /// Window height and width.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
    /// Implicit padding on each side (never part of a window's result).
    pub pad: usize,
}

impl PoolWindow {
    /// A `kernel` x `kernel` window moved by `stride`, with `pad` on each side.
    pub fn new(kernel: usize, stride: usize, pad: usize) -> Self {
        PoolWindow {
            kernel,
            stride,
            pad,
        }
    }

    fn out_len(&self, len: usize) -> Result<usize> {
        // Every window must hold at least one input position.
        if len + 2 * self.pad < self.kernel || self.pad >= self.kernel || self.stride == 0 {
            candle_core::bail!(
                "pooling: window {} with stride {} and padding {} does not fit length {len}",
                self.kernel,
                self.stride,
                self.pad
            );
        }
        Ok((len + 2 * self.pad - self.kernel) / self.stride + 1)
    }

    /// The input positions of window `o` along an axis of length `len`.
    fn range(&self, o: usize, len: usize) -> Range<usize> {
        let start = (o * self.stride).saturating_sub(self.pad);
        let end = (o * self.stride + self.kernel)
            .saturating_sub(self.pad)
            .min(len);
        start..end
    }

    pub(super) fn plan(&self, h: usize, w: usize) -> Result<Plan> {
        let (oh, ow) = (self.out_len(h)?, self.out_len(w)?);
        Ok((
            oh,
            ow,
            (0..oh).map(|o| self.range(o, h)).collect(),
            (0..ow).map(|o| self.range(o, w)).collect(),
        ))
    }
}

struct MaxPool {
    window: PoolWindow,
    argmax: SavedArgmax,
}

/// Per output element of a max pool, the index of its maximum within its
/// input plane: written by the forward pass, read by the backward pass.
pub(super) type SavedArgmax = Mutex<Option<Arc<Vec<u32>>>>;

/// The argmax saved by the forward pass of `op`.
pub(super) fn saved(argmax: &SavedArgmax, op: &str) -> Result<Arc<Vec<u32>>> {
    let saved = argmax.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match saved {
        Some(argmax) => Ok(argmax),
        None => candle_core::bail!("{op}: backward pass before the forward pass"),
    }
}

/// Max-pools one sample (`c` planes of `h x w`) into `out`, with each
/// maximum's index within its plane in `idx`.
pub(super) fn max_pool_sample(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    window: PoolWindow,
    (oh, ow, rows, cols): &Plan,
    out: &mut [f32],
    idx: &mut [u32],
) {
    let (oh, ow) = (*oh, *ow);
    for ch in 0..c {
        let plane = &x[ch * h * w..][..h * w];
        let out = &mut out[ch * oh * ow..][..oh * ow];
        let idx = &mut idx[ch * oh * ow..][..oh * ow];
        if window.kernel == 2 && window.stride == 2 && window.pad == 0 {
            max_2x2(plane, w, out, idx, oh, ow);
        } else {
            max_plane(plane, w, rows, cols, out, idx);
        }
    }
}

/// The input gradient of a max pool over `h x w` planes: each of `dy`'s
/// elements added at its saved maximum's position.
pub(super) fn scatter_max(
    dy: &Tensor,
    argmax: Arc<Vec<u32>>,
    h: usize,
    w: usize,
) -> Result<Tensor> {
    dy.contiguous()?
        .apply_op1_no_bwd(&MaxScatter { argmax, h, w })
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "nas-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let x = contiguous_f32(s, l, "max-pool input")?;
        let plan = self.window.plan(h, w)?;
        let (oh, ow) = (plan.0, plan.1);
        let mut y = zeros::<f32>(n * c * oh * ow);
        let mut argmax = zeros::<u32>(n * c * oh * ow);
        // One task per sample: per-plane tasks are too small to pay for their scheduling.
        let per_sample = c * oh * ow;
        y.par_chunks_mut(per_sample)
            .zip(argmax.par_chunks_mut(per_sample))
            .enumerate()
            .for_each(|(i, (outs, idxs))| {
                let image = &x[i * c * h * w..][..c * h * w];
                max_pool_sample(image, (c, h, w), self.window, &plan, outs, idxs);
            });
        *self.argmax.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(argmax));
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = x.dims4()?;
        let argmax = saved(&self.argmax, "max-pool")?;
        Ok(Some(scatter_max(dy, argmax, h, w)?))
    }
}

/// Whether `v` replaces `best` as a window's maximum: strictly greater keeps
/// the first maximum, and a NaN wins once and stays.
#[inline(always)]
pub(super) fn wins(v: f32, best: f32) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

/// Any window: the maximum of each window of rows `rows[oy]` and columns `cols[ox]`.
fn max_plane(
    plane: &[f32],
    w: usize,
    rows: &[Range<usize>],
    cols: &[Range<usize>],
    out: &mut [f32],
    idx: &mut [u32],
) {
    let ow = cols.len();
    for (oy, ys) in rows.iter().enumerate() {
        for (ox, xs) in cols.iter().enumerate() {
            let first = ys.start * w + xs.start;
            let (mut best, mut at) = (plane[first], first);
            for iy in ys.clone() {
                for ix in xs.clone() {
                    let v = plane[iy * w + ix];
                    if wins(v, best) {
                        best = v;
                        at = iy * w + ix;
                    }
                }
            }
            out[oy * ow + ox] = best;
            idx[oy * ow + ox] = at as u32;
        }
    }
}

/// Adds each output gradient at its saved maximum's position.
struct MaxScatter {
    argmax: Arc<Vec<u32>>,
    h: usize,
    w: usize,
}

impl CustomOp1 for MaxScatter {
    fn name(&self) -> &'static str {
        "nas-max-pool2d-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, oh, ow) = l.shape().dims4()?;
        let dy = contiguous_f32(s, l, "max-pool output gradient")?;
        let plane_len = self.h * self.w;
        let mut dx = zeros::<f32>(n * c * plane_len);
        dx.par_chunks_mut(c * plane_len)
            .enumerate()
            .for_each(|(i, planes)| {
                for ch in 0..c {
                    let p = i * c + ch;
                    let plane = &mut planes[ch * plane_len..][..plane_len];
                    let grads = &dy[p * oh * ow..][..oh * ow];
                    let at = &self.argmax[p * oh * ow..][..oh * ow];
                    for (g, &k) in grads.iter().zip(at) {
                        plane[k as usize] += g;
                    }
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from((n, c, self.h, self.w))))
    }
}

struct AvgPool(PoolWindow);

impl CustomOp1 for AvgPool {
    fn name(&self) -> &'static str {
        "nas-avg-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let x = contiguous_f32(s, l, "avg-pool input")?;
        let (oh, ow, rows, cols) = self.0.plan(h, w)?;
        let mut y = zeros::<f32>(n * c * oh * ow);
        y.par_chunks_mut(c * oh * ow)
            .enumerate()
            .for_each(|(i, outs)| {
                for ch in 0..c {
                    let plane = &x[(i * c + ch) * h * w..][..h * w];
                    for (oy, ys) in rows.iter().enumerate() {
                        for (ox, xs) in cols.iter().enumerate() {
                            let sum: f32 = ys
                                .clone()
                                .map(|iy| {
                                    plane[iy * w + xs.start..iy * w + xs.end]
                                        .iter()
                                        .sum::<f32>()
                                })
                                .sum();
                            outs[(ch * oh + oy) * ow + ox] = sum / (ys.len() * xs.len()) as f32;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = x.dims4()?;
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&AvgSpread {
            window: self.0,
            h,
            w,
        })?))
    }
}

/// Spreads each output gradient evenly over its window's in-bounds positions.
struct AvgSpread {
    window: PoolWindow,
    h: usize,
    w: usize,
}

impl CustomOp1 for AvgSpread {
    fn name(&self) -> &'static str {
        "nas-avg-pool2d-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, oh, ow) = l.shape().dims4()?;
        let dy = contiguous_f32(s, l, "avg-pool output gradient")?;
        let (h, w) = (self.h, self.w);
        let (_, _, rows, cols) = self.window.plan(h, w)?;
        let mut dx = zeros::<f32>(n * c * h * w);
        dx.par_chunks_mut(c * h * w)
            .enumerate()
            .for_each(|(i, planes)| {
                for ch in 0..c {
                    let plane = &mut planes[ch * h * w..][..h * w];
                    let grads = &dy[(i * c + ch) * oh * ow..][..oh * ow];
                    for (oy, ys) in rows.iter().enumerate() {
                        for (ox, xs) in cols.iter().enumerate() {
                            let g = grads[oy * ow + ox] / (ys.len() * xs.len()) as f32;
                            for iy in ys.clone() {
                                plane[iy * w + xs.start..iy * w + xs.end]
                                    .iter_mut()
                                    .for_each(|v| *v += g);
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from((n, c, h, w))))
    }
}
