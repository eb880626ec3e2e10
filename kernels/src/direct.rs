//! Stride-1 convolution with `same` padding of one image, without a column
//! matrix. With stride 1 and output planes as large as the input's, the
//! input of output position `p` for kernel tap `t` sits at `p + shift(t)` in
//! the flattened plane, except where the tap falls into the padding. So each
//! tap reads sixteen consecutive positions with one masked load (the mask
//! drops the padding, precomputed per tap and block of sixteen), and a tile
//! of 3 x 16 positions times 8 output channels stays in 24 AVX-512 registers
//! over all input channels and taps (narrower tiles for the last channels).
//! im2col copied every input value k x k times into a matrix larger than L2
//! (2.5 MB per 28x28, 32-channel 5x5 layer) before the product could start;
//! the input gradient is the same convolution over the output gradient with
//! the kernel turned round, which also saves col2im. Where the CPU lacks
//! AVX-512 the caller keeps im2col.

/// Output channels per tile (one weight broadcast each per tap), and the
/// packed weights' row length.
const OUTS: usize = 8;
/// Blocks of sixteen positions per tile of [`OUTS`] channels (one masked
/// load each per tap): 3 x 8 accumulators measured fastest here (4 x 6 and
/// 6 x 4 about 10 percent slower, 2 x 12 spilled registers).
const BLOCKS: usize = 3;
/// Positions per block: one AVX-512 vector of f32.
const LANES: usize = 16;

/// Where each tap reads, for planes of one size and one kernel.
#[derive(Debug, Clone)]
pub(super) struct Direct {
    /// Plane size, kernel size, dilation and padding.
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub dilation: usize,
    pub pad: usize,
    /// Positions of a plane (`h * w`), and blocks of sixteen covering them.
    plane: usize,
    blocks: usize,
    /// Per tap (raster order), the offset of its input from the output position.
    shifts: Vec<isize>,
    /// Per tap and block, the lanes whose input lies inside the plane.
    masks: Vec<u16>,
}

/// Weights in the order the tiles read them: per block of [`OUTS`] output
/// channels, per input channel and tap, the block's [`OUTS`] weights (zeros
/// past the last channel).
pub(super) struct Packed {
    outs: usize,
    ins: usize,
    data: Vec<f32>,
}

impl Direct {
    /// The plan for a `k x k` kernel with `dilation` over `h x w` planes at
    /// stride 1 with padding `pad`, when the output keeps the input's size
    /// and the CPU has AVX-512; `None` otherwise.
    pub fn new(h: usize, w: usize, k: usize, dilation: usize, pad: usize) -> Option<Self> {
        if 2 * pad != dilation * (k - 1) || !super::has_avx512() {
            return None;
        }
        let plane = h * w;
        let blocks = plane.div_ceil(LANES);
        let offset = |kk: usize| (kk * dilation) as isize - pad as isize;
        let taps = (0..k).flat_map(|ky| (0..k).map(move |kx| (offset(ky), offset(kx))));
        let (mut shifts, mut masks) = (Vec::new(), Vec::with_capacity(k * k * blocks));
        for (dy, dx) in taps {
            shifts.push(dy * w as isize + dx);
            for b in 0..blocks {
                let inside = |lane: usize| {
                    let p = b * LANES + lane;
                    let (y, x) = ((p / w) as isize + dy, (p % w) as isize + dx);
                    p < plane && (0..h as isize).contains(&y) && (0..w as isize).contains(&x)
                };
                masks.push((0..LANES).filter(|&l| inside(l)).fold(0, |m, l| m | 1 << l));
            }
        }
        Some(Direct {
            h,
            w,
            k,
            dilation,
            pad,
            plane,
            blocks,
            shifts,
            masks,
        })
    }

    /// Taps of the kernel.
    pub fn taps(&self) -> usize {
        self.shifts.len()
    }

    /// Packs `outs x ins x taps` weights, `weight(o, i, t)` each.
    pub fn pack(
        &self,
        outs: usize,
        ins: usize,
        weight: impl Fn(usize, usize, usize) -> f32,
    ) -> Packed {
        let taps = self.taps();
        let mut data = vec![0f32; outs.div_ceil(OUTS) * OUTS * ins * taps];
        for o in 0..outs {
            for i in 0..ins {
                for t in 0..taps {
                    data[(((o / OUTS) * ins + i) * taps + t) * OUTS + o % OUTS] = weight(o, i, t);
                }
            }
        }
        Packed { outs, ins, data }
    }

    /// `out` (`packed.outs` planes) = the convolution of `input`
    /// (`packed.ins` planes), plus `bias` per output channel, then
    /// `max(y, 0)` when `relu`.
    pub fn run(
        &self,
        packed: &Packed,
        input: &[f32],
        out: &mut [f32],
        bias: Option<&[f32]>,
        relu: bool,
    ) {
        assert!(
            input.len() >= packed.ins * self.plane
                && out.len() >= packed.outs * self.plane
                && bias.is_none_or(|b| b.len() >= packed.outs)
                && packed.data.len()
                    == packed.outs.div_ceil(OUTS) * OUTS * packed.ins * self.taps(),
            "direct convolution: operands do not match the plan"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `new` only made a plan on a CPU with AVX-512F; the assertion
        // above keeps every plane the tiles read or write inside its slice.
        unsafe {
            avx512::run(self, packed, input, out, bias, relu)
        }
    }
}

/// Channels in the next tile of a sweep with `rest` channels left: whole
/// tiles of `full`, then 4 + 2 + 1, so narrow and depthwise layers compute
/// no padding channels.
pub(super) fn tile_width(rest: usize, full: usize) -> usize {
    match rest {
        n if n >= full => full,
        n if n >= 4 => 4,
        n if n >= 2 => 2,
        _ => 1,
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{tile_width, Direct, Packed, BLOCKS, LANES, OUTS};
    use crate::lanes;
    use std::arch::x86_64::*;

    /// The output channels of one sweep over the plane: where they read and write.
    struct Channels {
        /// Their first packed weight (rows of [`OUTS`] per input channel and tap).
        weights: *const f32,
        /// First plane of the input, and their first output plane.
        input: *const f32,
        out: *mut f32,
        /// Their biases (the first ones of a sweep narrower than [`OUTS`]).
        bias: [f32; OUTS],
        relu: bool,
    }

    /// # Safety
    /// AVX-512F; `input` holds `packed.ins` planes, `out` `packed.outs`,
    /// `bias` (when given) `packed.outs` values (checked by the caller).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn run(
        plan: &Direct,
        packed: &Packed,
        input: &[f32],
        out: &mut [f32],
        bias: Option<&[f32]>,
        relu: bool,
    ) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let per_block = packed.ins * plan.taps() * OUTS;
            let mut first = 0;
            while first < packed.outs {
                // Tiles narrower than OUTS all lie inside the last packed block.
                let width = tile_width(packed.outs - first, OUTS);
                let mut b = [0f32; OUTS];
                if let Some(bias) = bias {
                    b[..width].copy_from_slice(&bias[first..first + width]);
                }
                let channels = Channels {
                    weights: packed
                        .data
                        .as_ptr()
                        .add((first / OUTS) * per_block + first % OUTS),
                    input: input.as_ptr(),
                    out: out.as_mut_ptr().add(first * plan.plane),
                    bias: b,
                    relu,
                };
                match width {
                    OUTS => sweep::<OUTS, BLOCKS>(plan, packed.ins, &channels),
                    4 => sweep::<4, 6>(plan, packed.ins, &channels),
                    2 => sweep::<2, 6>(plan, packed.ins, &channels),
                    _ => sweep::<1, 6>(plan, packed.ins, &channels),
                }
                first += width;
            }
        }
    }

    /// All positions of `O` output channels, `N` blocks of sixteen per tile.
    ///
    /// # Safety
    /// As for [`run`].
    #[target_feature(enable = "avx512f")]
    unsafe fn sweep<const O: usize, const N: usize>(plan: &Direct, ins: usize, ch: &Channels) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let mut at = 0;
            while at + N <= plan.blocks {
                tile::<O, N>(plan, ins, ch, at);
                at += N;
            }
            match plan.blocks - at {
                0 => {}
                1 => tile::<O, 1>(plan, ins, ch, at),
                2 => tile::<O, 2>(plan, ins, ch, at),
                3 => tile::<O, 3>(plan, ins, ch, at),
                4 => tile::<O, 4>(plan, ins, ch, at),
                _ => tile::<O, 5>(plan, ins, ch, at),
            }
        }
    }

    /// Positions `first * 16 ..` (`N` blocks) of `O` output channels.
    ///
    /// # Safety
    /// As for [`run`]; each masked load only touches lanes inside its plane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const O: usize, const N: usize>(
        plan: &Direct,
        ins: usize,
        ch: &Channels,
        first: usize,
    ) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); O]; N];
            for row in acc.iter_mut() {
                for (a, &b) in row.iter_mut().zip(&ch.bias) {
                    *a = _mm512_set1_ps(b);
                }
            }
            let taps = plan.taps();
            let mut weights = ch.weights;
            for i in 0..ins {
                let plane = ch.input.add(i * plan.plane);
                for t in 0..taps {
                    // Lanes outside the plane are masked off, so the address may
                    // point before or past it: only the kept lanes are read.
                    let base = plane.wrapping_offset(*plan.shifts.get_unchecked(t));
                    let masks = plan.masks.as_ptr().add(t * plan.blocks + first);
                    let mut v = [_mm512_setzero_ps(); N];
                    for (j, v) in v.iter_mut().enumerate() {
                        let at = base.wrapping_add((first + j) * LANES);
                        *v = _mm512_maskz_loadu_ps(*masks.add(j), at);
                    }
                    // One weight broadcast at a time, used by all N blocks (all
                    // O broadcasts at once would not fit the registers).
                    for o in 0..O {
                        let w = _mm512_set1_ps(*weights.add(o));
                        for (row, &v) in acc.iter_mut().zip(&v) {
                            row[o] = _mm512_fmadd_ps(v, w, row[o]);
                        }
                    }
                    weights = weights.add(OUTS);
                }
            }
            let zero = _mm512_setzero_ps();
            for (j, row) in acc.iter().enumerate() {
                let p = (first + j) * LANES;
                let keep = lanes((plan.plane - p).min(LANES));
                for (o, &a) in row.iter().enumerate() {
                    let a = if ch.relu { _mm512_max_ps(a, zero) } else { a };
                    _mm512_mask_storeu_ps(ch.out.add(o * plan.plane + p), keep, a);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::Direct;
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;

    /// The plan of a `same` case and its padding; `None` (after checking
    /// that the CPU lacks AVX-512) where the tiles cannot run.
    pub(crate) fn plan(k: usize, dilation: usize, h: usize, w: usize) -> Option<(Direct, usize)> {
        let pad = dilation * (k - 1) / 2;
        let plan = Direct::new(h, w, k, dilation, pad);
        assert!(
            plan.is_some() || !crate::has_avx512(),
            "no plan for a same-size convolution"
        );
        plan.map(|plan| (plan, pad))
    }

    /// The input that output position `(oy, ox)` reads at tap `(ky, kx)` of
    /// channel `i` of `x` (`h x w` planes), or `None` in the padding.
    pub(crate) fn tap(
        x: &[f32],
        (h, w): (usize, usize),
        i: usize,
        (oy, ox, ky, kx): (usize, usize, usize, usize),
        (dilation, pad): (usize, usize),
    ) -> Option<f64> {
        let iy = (oy + ky * dilation).checked_sub(pad).filter(|&y| y < h)?;
        let ix = (ox + kx * dilation).checked_sub(pad).filter(|&x| x < w)?;
        Some(x[(i * h + iy) * w + ix] as f64)
    }

    /// `n` values in -1..1.
    pub(crate) fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// The convolution by its definition, in f64.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        w: &[f32],
        (ins, outs, h, wd): (usize, usize, usize, usize),
        (k, dilation, pad): (usize, usize, usize),
        bias: Option<&[f32]>,
        relu: bool,
    ) -> Vec<f32> {
        let mut y = vec![0f32; outs * h * wd];
        for o in 0..outs {
            for oy in 0..h {
                for ox in 0..wd {
                    let mut s = bias.map_or(0.0, |b| b[o] as f64);
                    for i in 0..ins {
                        for ky in 0..k {
                            for kx in 0..k {
                                let at = (oy, ox, ky, kx);
                                if let Some(v) = tap(x, (h, wd), i, at, (dilation, pad)) {
                                    s += v * w[((o * ins + i) * k + ky) * k + kx] as f64;
                                }
                            }
                        }
                    }
                    y[(o * h + oy) * wd + ox] = if relu { s.max(0.0) } else { s } as f32;
                }
            }
        }
        y
    }

    /// Kernels 1-7 with dilation 1 and 2, planes from 1x1 to 28x28 (whole,
    /// partial and single blocks of sixteen), channel counts around the
    /// tile's eight, with and without bias and ReLU: the definition's values.
    /// Without AVX-512 there is no plan, and the test only checks that.
    #[test]
    fn matches_the_definition() {
        let mut rng = rand::SeedableRng::seed_from_u64(17);
        let cases = [
            (3, 1, 5, 9, 1, 1),
            (3, 1, 7, 7, 5, 3),
            (5, 1, 32, 8, 28, 28),
            (5, 2, 3, 17, 14, 14),
            (7, 1, 2, 3, 4, 9),
            (1, 1, 4, 12, 6, 6),
            (3, 2, 6, 16, 11, 5),
            (3, 1, 1, 1, 1, 1),
        ];
        for (k, dilation, ins, outs, h, w) in cases {
            let Some((plan, pad)) = plan(k, dilation, h, w) else {
                continue;
            };
            let x = random(&mut rng, ins * h * w);
            let (wt, b) = (random(&mut rng, outs * ins * k * k), random(&mut rng, outs));
            let packed = plan.pack(outs, ins, |o, i, t| wt[(o * ins + i) * k * k + t]);
            for (bias, relu) in [(None, false), (Some(&b[..]), true), (Some(&b[..]), false)] {
                let mut y = vec![f32::NAN; outs * h * w];
                plan.run(&packed, &x, &mut y, bias, relu);
                let expected =
                    reference(&x, &wt, (ins, outs, h, w), (k, dilation, pad), bias, relu);
                for (p, (a, e)) in y.iter().zip(&expected).enumerate() {
                    assert!(
                        (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "k{k} d{dilation} {ins}->{outs} {h}x{w} bias {} relu {relu}: \
                         position {p}: {a} vs {e}",
                        bias.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn only_same_size_convolutions_get_a_plan() {
        // Same size (also with dilation): a plan exactly where the CPU has AVX-512.
        let avx512 = crate::has_avx512();
        assert_eq!(Direct::new(8, 8, 3, 1, 1).is_some(), avx512);
        assert_eq!(Direct::new(8, 6, 5, 2, 4).is_some(), avx512);
        assert!(Direct::new(8, 8, 3, 1, 0).is_none());
        assert!(Direct::new(8, 8, 3, 1, 2).is_none());
        assert!(Direct::new(8, 8, 5, 2, 2).is_none());
    }
}
