//! 2-D convolution: forward and the input and weight gradients, one sample
//! per task, with an optional ReLU and max pool applied to each sample's
//! output while it is in the cache. Stride-1 `same` convolutions run all
//! three passes as [`Direct`] tiles where the CPU has AVX-512; everything
//! else by im2col and gemm.

use super::activation::{relu_grad, relu_in_place};
use super::direct::{Direct, Packed};
use super::direct_weights;
use super::gemm::{matmul, Out, View};
use super::pool::{max_pool_sample, saved, scatter_max, PoolWindow, SavedArgmax};
use super::record::Record;
use super::{contiguous_f32, zeros};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// Geometry of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    f: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    groups: usize,
    oh: usize,
    ow: usize,
}

impl Geometry {
    fn new(
        x: (usize, usize, usize, usize),
        f: usize,
        k: usize,
        stride: usize,
        pad: usize,
        dilation: usize,
        groups: usize,
    ) -> Result<Self> {
        let (n, c, h, w) = x;
        let span = dilation * (k - 1) + 1;
        if h + 2 * pad < span || w + 2 * pad < span {
            candle_core::bail!(
                "conv2d: kernel {k} (dilation {dilation}) does not fit {h}x{w} with padding {pad}"
            );
        }
        let oh = (h + 2 * pad - span) / stride + 1;
        let ow = (w + 2 * pad - span) / stride + 1;
        Ok(Geometry {
            n,
            c,
            h,
            w,
            f,
            k,
            stride,
            pad,
            dilation,
            groups,
            oh,
            ow,
        })
    }

    /// Channels per group (input), filters per group (output), rows of a column matrix.
    fn per_group(&self) -> (usize, usize, usize) {
        let cg = self.c / self.groups;
        (cg, self.f / self.groups, cg * self.k * self.k)
    }

    /// Whether im2col is the identity (1x1, stride 1, no padding).
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }

    /// The direct plan, for a stride-1 convolution whose output keeps the
    /// input's size (1x1 ones need no im2col anyway), on a CPU with AVX-512.
    fn direct(&self) -> Option<Direct> {
        #[cfg(test)]
        if IM2COL_ONLY.get() {
            return None;
        }
        let same = self.stride == 1 && self.oh == self.h && self.ow == self.w;
        (same && !self.pointwise())
            .then(|| Direct::new(self.h, self.w, self.k, self.dilation, self.pad))
            .flatten()
    }

    /// Per group, its weights packed for `plan` as the forward pass reads
    /// them, or (`turned`) as the input gradient does: input and output
    /// channels swapped and the kernel turned round, which makes the input
    /// gradient of a `same` convolution the `same` convolution of the
    /// output gradient.
    fn pack(&self, plan: &Direct, w: &[f32], turned: bool) -> Vec<Packed> {
        let (cg, fg, _) = self.per_group();
        let taps = self.k * self.k;
        let at = |grp: usize, f: usize, c: usize, t: usize| w[((grp * fg + f) * cg + c) * taps + t];
        (0..self.groups)
            .map(|grp| match turned {
                false => plan.pack(fg, cg, |f, c, t| at(grp, f, c, t)),
                true => plan.pack(cg, fg, |c, f, t| at(grp, f, c, taps - 1 - t)),
            })
            .collect()
    }

    /// The outputs `o` (of `out_len`) whose input `o * stride + kk * dilation - pad`
    /// lies inside `0..len`, and that input for the first of them: the valid
    /// outputs are one contiguous range, so the copies below need no test per
    /// element.
    fn inside(&self, kk: usize, len: usize, out_len: usize) -> (Range<usize>, usize) {
        let offset = kk * self.dilation;
        let lo = self.pad.saturating_sub(offset).div_ceil(self.stride);
        let hi = (len + self.pad)
            .saturating_sub(offset)
            .div_ceil(self.stride);
        let (lo, hi) = (lo.min(out_len), hi.min(out_len));
        let hi = hi.max(lo);
        (lo..hi, (lo * self.stride + offset).saturating_sub(self.pad))
    }

    /// Writes the column matrix (rows: channel, ky, kx; columns: oy, ox) of
    /// channels `c0..c0 + cg` of one image; rows are `ld` apart in `col`.
    /// `masks`: [`Geometry::inside_masks`], made once per op.
    fn im2col(&self, masks: &[Vec<bool>], image: &[f32], c0: usize, col: &mut [f32], ld: usize) {
        let (cg, _, _) = self.per_group();
        let (k, s, ohw) = (self.k, self.stride, self.oh * self.ow);
        for ci in 0..cg {
            let plane = &image[(c0 + ci) * self.h * self.w..][..self.h * self.w];
            for ky in 0..k {
                let (rows, iy0) = self.inside(ky, self.h, self.oh);
                for kx in 0..k {
                    let (cols, ix0) = self.inside(kx, self.w, self.ow);
                    let row = &mut col[((ci * k + ky) * k + kx) * ld..][..ohw];
                    row[..rows.start * self.ow].fill(0.0);
                    row[rows.end * self.ow..].fill(0.0);
                    if let Some((first, len)) = self.span(&rows, &cols) {
                        // One pass for all rows; the border columns it spans become 0.
                        let src = &plane[iy0 * self.w + ix0..][..len];
                        let inside = &masks[kx][first..][..len];
                        for ((o, &v), &keep) in row[first..][..len].iter_mut().zip(src).zip(inside)
                        {
                            *o = if keep { v } else { 0.0 };
                        }
                        continue;
                    }
                    if cols.is_empty() {
                        // No output column of this tap reads the image (and
                        // `ix0` then lies past it): its rows are all padding.
                        row.fill(0.0);
                        continue;
                    }
                    for (j, oy) in rows.clone().enumerate() {
                        let out = &mut row[oy * self.ow..][..self.ow];
                        let src = &plane[(iy0 + j * s) * self.w + ix0..];
                        out[..cols.start].fill(0.0);
                        out[cols.end..].fill(0.0);
                        let out = &mut out[cols.clone()];
                        if s == 1 {
                            out.copy_from_slice(&src[..out.len()]);
                        } else {
                            for (j, o) in out.iter_mut().enumerate() {
                                *o = src[j * s];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stride 1 and output rows as wide as the input's (`same` padding).
    fn rows_align(&self) -> bool {
        self.stride == 1 && self.ow == self.w
    }

    /// With stride 1 and output rows as wide as the input's (`same` padding),
    /// output and plane rows are both `w` apart, so the valid ranges of all
    /// rows `rows` (columns `cols`) lie in one contiguous span at the same
    /// offsets: its start in the column-matrix row, and its length.
    fn span(&self, rows: &Range<usize>, cols: &Range<usize>) -> Option<(usize, usize)> {
        (self.rows_align() && !rows.is_empty() && !cols.is_empty()).then(|| {
            (
                rows.start * self.ow + cols.start,
                (rows.len() - 1) * self.ow + cols.len(),
            )
        })
    }

    /// Per kernel column `kx`, for each position of an output plane, whether
    /// its input column lies inside the image (for [`Geometry::span`]'s single
    /// passes; empty when they do not apply). Made once per op, not per
    /// sample: the same for every image.
    fn inside_masks(&self) -> Vec<Vec<bool>> {
        if !self.rows_align() {
            return Vec::new();
        }
        (0..self.k)
            .map(|kx| {
                let (cols, _) = self.inside(kx, self.w, self.ow);
                let row: Vec<bool> = (0..self.ow).map(|ox| cols.contains(&ox)).collect();
                row.repeat(self.oh)
            })
            .collect()
    }

    /// Adds a column matrix (rows `ld` apart) back into channels `c0..c0 + cg`
    /// of one image's gradient. `masks`: as for [`Geometry::im2col`].
    fn col2im(&self, masks: &[Vec<bool>], col: &[f32], c0: usize, image: &mut [f32], ld: usize) {
        let (cg, _, _) = self.per_group();
        let (k, s, ohw) = (self.k, self.stride, self.oh * self.ow);
        for ci in 0..cg {
            let plane = &mut image[(c0 + ci) * self.h * self.w..][..self.h * self.w];
            for ky in 0..k {
                let (rows, iy0) = self.inside(ky, self.h, self.oh);
                for kx in 0..k {
                    let (cols, ix0) = self.inside(kx, self.w, self.ow);
                    let row = &col[((ci * k + ky) * k + kx) * ld..][..ohw];
                    if let Some((first, len)) = self.span(&rows, &cols) {
                        // One pass for all rows, skipping the padding taps the span holds.
                        let dst = &mut plane[iy0 * self.w + ix0..][..len];
                        let inside = &masks[kx][first..][..len];
                        for ((d, &v), &keep) in dst.iter_mut().zip(&row[first..][..len]).zip(inside)
                        {
                            *d += if keep { v } else { 0.0 };
                        }
                        continue;
                    }
                    if cols.is_empty() {
                        // This tap reads only padding: nothing flows back.
                        continue;
                    }
                    for (j, oy) in rows.clone().enumerate() {
                        let src = &row[oy * self.ow..][cols.clone()];
                        let dst = &mut plane[(iy0 + j * s) * self.w + ix0..];
                        if s == 1 {
                            dst[..src.len()]
                                .iter_mut()
                                .zip(src)
                                .for_each(|(d, v)| *d += v);
                        } else {
                            for (j, v) in src.iter().enumerate() {
                                dst[j * s] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// im2col's border masks, needed only off the direct path.
fn im2col_masks(g: &Geometry, direct: Option<&Direct>) -> Vec<Vec<bool>> {
    match direct {
        Some(_) => Vec::new(),
        None => g.inside_masks(),
    }
}

#[cfg(test)]
thread_local! {
    /// Set by [`im2col_only`]: this thread's convolutions skip [`Direct`].
    static IM2COL_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's convolutions (forward and gradients) on the
/// im2col path, so tests cover it on CPUs where [`Direct`] would run.
#[cfg(test)]
pub(super) fn im2col_only<T>(f: impl FnOnce() -> T) -> T {
    IM2COL_ONLY.set(true);
    let out = f();
    IM2COL_ONLY.set(false);
    out
}

/// `x (N x C x H x W) * w (F x C/groups x K x K) + bias (F)`, followed by a
/// ReLU when `conv.relu` and a max pool when `conv.pool`, on the CPU kernels.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    conv: Conv,
    record: Record,
) -> Result<Tensor> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    let op = ConvOp {
        conv,
        direct: conv.geometry(x.shape(), w.shape())?.direct(),
        argmax: SavedArgmax::default(),
        input_grad: record.input_grad(&x),
    };
    match bias {
        Some(b) => record.apply3(x, w, b.contiguous()?, op),
        None => record.apply2(x, w, op),
    }
}

/// A convolution's parameters, and whether a ReLU is fused into its output.
#[derive(Debug, Clone, Copy)]
pub struct Conv {
    /// Zero padding on each side.
    pub pad: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Dilation of the kernel.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
    /// Apply `max(y, 0)` to the output (one pass fewer each way than a separate ReLU).
    pub relu: bool,
    /// Max-pool the (ReLU'd) output, as [`super::max_pool2d`] would: the full
    /// output never leaves the thread's cache, and the backward pass routes
    /// the gradient to each window's saved maximum.
    pub pool: Option<PoolWindow>,
}

/// The op candle runs: the options, the direct plan its three passes share
/// (`None`: im2col), and where each pooled maximum came from.
struct ConvOp {
    conv: Conv,
    direct: Option<Direct>,
    argmax: SavedArgmax,
    /// Whether the input needs a gradient (the network's input needs none).
    input_grad: bool,
}

impl Conv {
    fn geometry(&self, x: &Shape, w: &Shape) -> Result<Geometry> {
        let (f, _, k, _) = w.dims4()?;
        Geometry::new(
            x.dims4()?,
            f,
            k,
            self.stride,
            self.pad,
            self.dilation,
            self.groups,
        )
    }
}

impl ConvOp {
    fn forward(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bias: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let conv = &self.conv;
        let g = conv.geometry(xl.shape(), wl.shape())?;
        let (x, w) = (
            contiguous_f32(xs, xl, "conv2d input")?,
            contiguous_f32(ws, wl, "conv2d weight")?,
        );
        let (cg, fg, rows) = g.per_group();
        let ohw = g.oh * g.ow;
        // One sample's full output (F x OH x OW), ReLU applied.
        let direct = (self.direct.as_ref()).map(|plan| (plan, g.pack(plan, w, false)));
        let masks = im2col_masks(&g, self.direct.as_ref());
        let sample = |i: usize, out: &mut [f32], col: &mut Vec<f32>| {
            let image = &x[i * g.c * g.h * g.w..][..g.c * g.h * g.w];
            if let Some((plan, packed)) = &direct {
                for (grp, packed) in packed.iter().enumerate() {
                    let input = &image[grp * cg * ohw..][..cg * ohw];
                    let out = &mut out[grp * fg * ohw..][..fg * ohw];
                    let bias = bias.map(|b| &b[grp * fg..][..fg]);
                    plan.run(packed, input, out, bias, conv.relu);
                }
                return;
            }
            col.resize(rows * ohw, 0.0);
            for grp in 0..g.groups {
                let cols: &[f32] = if g.pointwise() {
                    &image[grp * cg * ohw..][..rows * ohw]
                } else {
                    g.im2col(&masks, image, grp * cg, col, ohw);
                    col
                };
                let weights = View::rows(&w[grp * fg * rows..][..fg * rows], rows);
                let dst = Out::rows(&mut out[grp * fg * ohw..][..fg * ohw], ohw);
                matmul(fg, ohw, rows, dst, weights, View::rows(cols, ohw));
            }
            if let Some(bias) = bias {
                for (plane, b) in out.chunks_mut(ohw).zip(bias) {
                    plane.iter_mut().for_each(|v| *v += b);
                }
            }
            if conv.relu {
                relu_in_place(out);
            }
        };
        // With a fused pool, its window and plan (which starts with the pooled size).
        let pooled = conv
            .pool
            .map(|window| window.plan(g.oh, g.ow).map(|plan| (window, plan)))
            .transpose()?;
        let (oh, ow) = pooled.as_ref().map_or((g.oh, g.ow), |(_, p)| (p.0, p.1));
        let per_sample = g.f * oh * ow;
        let mut y = zeros::<f32>(g.n * per_sample);
        match pooled {
            Some((window, plan)) => {
                let mut argmax = zeros::<u32>(y.len());
                y.par_chunks_mut(per_sample)
                    .zip(argmax.par_chunks_mut(per_sample))
                    .enumerate()
                    .for_each_init(
                        || (Vec::new(), vec![0f32; g.f * ohw]),
                        |(col, full), (i, (out, idx))| {
                            sample(i, full, col);
                            max_pool_sample(full, (g.f, g.oh, g.ow), window, &plan, out, idx);
                        },
                    );
                *self.argmax.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(argmax));
            }
            None => y
                .par_chunks_mut(per_sample)
                .enumerate()
                .for_each_init(Vec::new, |col, (i, out)| sample(i, out, col)),
        }
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.f, oh, ow))))
    }

    /// The gradient at the convolution's own output (before ReLU and pool).
    fn output_grad(&self, x: &Tensor, w: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let dy = relu_grad(dy, y, self.conv.relu)?;
        if self.conv.pool.is_none() {
            return Ok(dy);
        }
        let g = self.conv.geometry(x.shape(), w.shape())?;
        scatter_max(&dy, saved(&self.argmax, "conv2d")?, g.oh, g.ow)
    }

    /// Input gradient (where the input needs one) and weight gradient.
    fn gradients(&self, x: &Tensor, w: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Tensor)> {
        let g = self.conv.geometry(x.shape(), w.shape())?;
        let direct = self.direct.as_ref();
        let dw = x.apply_op2_no_bwd(dy, &WeightGrad { g, direct })?;
        let dx = if self.input_grad {
            Some(dy.apply_op2_no_bwd(w, &InputGrad { g, direct })?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "nas-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(xs, xl, ws, wl, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.gradients(x, w, &self.output_grad(x, w, y, dy)?)?;
        Ok((dx, Some(dw)))
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "nas-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(xs, xl, ws, wl, Some(contiguous_f32(bs, bl, "conv2d bias")?))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = self.output_grad(x, w, y, dy)?;
        let (dx, dw) = self.gradients(x, w, &dy)?;
        Ok((dx, Some(dw), Some(dy.apply_op1_no_bwd(&BiasGrad)?)))
    }
}

/// The bias gradient: each output channel's gradient summed over batch and
/// positions, in a fixed order.
struct BiasGrad;

/// Partial sums of the bias gradient (each position goes to lane `p % 16`):
/// one sum in a row waited on the previous addition at every element.
const BIAS_LANES: usize = 16;

impl CustomOp1 for BiasGrad {
    fn name(&self) -> &'static str {
        "nas-conv2d-bias-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, f, oh, ow) = l.shape().dims4()?;
        let dy = contiguous_f32(s, l, "conv2d output gradient")?;
        let db: Vec<f32> = (0..f)
            .into_par_iter()
            .map(|ch| {
                let mut lanes = [0f32; BIAS_LANES];
                for i in 0..n {
                    let plane = &dy[(i * f + ch) * oh * ow..][..oh * ow];
                    let mut chunks = plane.chunks_exact(BIAS_LANES);
                    for chunk in &mut chunks {
                        lanes.iter_mut().zip(chunk).for_each(|(l, v)| *l += v);
                    }
                    lanes
                        .iter_mut()
                        .zip(chunks.remainder())
                        .for_each(|(l, v)| *l += v);
                }
                lanes.iter().map(|&l| l as f64).sum::<f64>() as f32
            })
            .collect();
        Ok((CpuStorage::F32(db), Shape::from(f)))
    }
}

/// The batch is cut into this many chunks (fewer for small batches); each
/// chunk's weight gradient is accumulated sample by sample, and the chunks'
/// gradients are summed in order, so the result does not depend on how many
/// threads ran.
const CHUNKS: usize = 8;

impl Geometry {
    /// Samples per chunk.
    fn chunk_len(&self) -> usize {
        self.n.div_ceil(CHUNKS).max(1)
    }
}

struct WeightGrad<'a> {
    g: Geometry,
    direct: Option<&'a Direct>,
}

impl WeightGrad<'_> {
    /// The weight gradient of `samples`, by [`Direct`] tiles.
    fn tiles(&self, plan: &Direct, x: &[f32], dy: &[f32], samples: Range<usize>) -> Vec<f32> {
        let g = self.g;
        let (cg, fg, _) = g.per_group();
        let (ohw, per_group) = (g.oh * g.ow, g.k * g.k * cg * fg);
        let mut scratch = direct_weights::Scratch::default();
        let mut acc = vec![0f32; g.groups * per_group];
        for i in samples {
            let image = &x[i * g.c * ohw..][..g.c * ohw];
            for (grp, acc) in acc.chunks_exact_mut(per_group).enumerate() {
                let x = &image[grp * cg * ohw..][..cg * ohw];
                let dy = &dy[(i * g.f + grp * fg) * ohw..][..fg * ohw];
                direct_weights::add_image(plan, (cg, fg), x, dy, &mut scratch, acc);
            }
        }
        let mut dw = vec![0f32; acc.len()];
        for (acc, dw) in acc
            .chunks_exact(per_group)
            .zip(dw.chunks_exact_mut(per_group))
        {
            direct_weights::weight_layout(acc, fg, dw);
        }
        dw
    }

    /// The weight gradient of `samples`, by im2col and gemm. `masks`:
    /// [`Geometry::inside_masks`].
    fn im2col(
        &self,
        masks: &[Vec<bool>],
        x: &[f32],
        dy: &[f32],
        samples: Range<usize>,
    ) -> Vec<f32> {
        let g = self.g;
        let (cg, fg, rows) = g.per_group();
        let (ohw, image_len, first) = (g.oh * g.ow, g.c * g.h * g.w, samples.start);
        let (mut dw, mut col) = (vec![0f32; g.f * rows], vec![0f32; rows * ohw]);
        // One sample at a time keeps its columns in the cache between im2col and gemm.
        for i in samples {
            let image = &x[i * image_len..][..image_len];
            for grp in 0..g.groups {
                let cols: &[f32] = if g.pointwise() {
                    &image[grp * cg * ohw..][..rows * ohw]
                } else {
                    g.im2col(masks, image, grp * cg, &mut col, ohw);
                    &col
                };
                // dW_g^T (rows x fg) += col_i (rows x ohw) * dY_i^T (ohw x fg),
                // stored transposed into dW_g (fg x rows).
                let dst = Out::transposed(&mut dw[grp * fg * rows..][..fg * rows], rows)
                    .adding(i != first);
                let grad = &dy[(i * g.f + grp * fg) * ohw..][..fg * ohw];
                let (cols, grad) = (View::rows(cols, ohw), View::transposed(grad, ohw));
                matmul(rows, fg, ohw, dst, cols, grad);
            }
        }
        dw
    }
}

impl CustomOp2 for WeightGrad<'_> {
    fn name(&self) -> &'static str {
        "nas-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        dys: &CpuStorage,
        dyl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let (x, dy) = (
            contiguous_f32(xs, xl, "conv2d input")?,
            contiguous_f32(dys, dyl, "conv2d output gradient")?,
        );
        let (cg, _, rows) = g.per_group();
        let per_chunk = g.chunk_len();
        let chunks = (0..g.n.div_ceil(per_chunk)).into_par_iter();
        let samples = |chunk: usize| chunk * per_chunk..((chunk + 1) * per_chunk).min(g.n);
        let parts: Vec<Vec<f32>> = match self.direct {
            Some(plan) => chunks
                .map(|chunk| self.tiles(plan, x, dy, samples(chunk)))
                .collect(),
            None => {
                let masks = g.inside_masks();
                chunks
                    .map(|chunk| self.im2col(&masks, x, dy, samples(chunk)))
                    .collect()
            }
        };
        let mut dw = vec![0f32; g.f * rows];
        for part in parts {
            dw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
        }
        Ok((CpuStorage::F32(dw), Shape::from((g.f, cg, g.k, g.k))))
    }
}

struct InputGrad<'a> {
    g: Geometry,
    direct: Option<&'a Direct>,
}

impl CustomOp2 for InputGrad<'_> {
    fn name(&self) -> &'static str {
        "nas-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        dys: &CpuStorage,
        dyl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.g;
        let (dy, w) = (
            contiguous_f32(dys, dyl, "conv2d output gradient")?,
            contiguous_f32(ws, wl, "conv2d weight")?,
        );
        let (cg, fg, rows) = g.per_group();
        let (ohw, image_len) = (g.oh * g.ow, g.c * g.h * g.w);
        let direct = self.direct.map(|plan| (plan, g.pack(plan, w, true)));
        let masks = im2col_masks(&g, self.direct);
        let mut dx = zeros::<f32>(g.n * image_len);
        dx.par_chunks_mut(image_len)
            .enumerate()
            .for_each_init(Vec::new, |col, (i, image)| {
                if let Some((plan, packed)) = &direct {
                    for (grp, packed) in packed.iter().enumerate() {
                        let grad = &dy[(i * g.f + grp * fg) * ohw..][..fg * ohw];
                        plan.run(packed, grad, &mut image[grp * cg * ohw..], None, false);
                    }
                    return;
                }
                col.resize(rows * ohw, 0.0);
                for grp in 0..g.groups {
                    // col (rows x ohw) = W_g^T (rows x fg) * dY_i (fg x ohw).
                    let weights = View::transposed(&w[grp * fg * rows..][..fg * rows], rows);
                    let grad = View::rows(&dy[(i * g.f + grp * fg) * ohw..][..fg * ohw], ohw);
                    if g.pointwise() {
                        let out = &mut image[grp * cg * ohw..][..rows * ohw];
                        matmul(rows, ohw, fg, Out::rows(out, ohw), weights, grad);
                    } else {
                        matmul(rows, ohw, fg, Out::rows(col, ohw), weights, grad);
                        g.col2im(&masks, col, grp * cg, image, ohw);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from((g.n, g.c, g.h, g.w))))
    }
}
