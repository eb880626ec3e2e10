//! The weight gradient of a [`Direct`] convolution without a column matrix:
//! `dW[o][i][t] = sum over positions p of dY[o][p] * X[i][p + shift(t)]`. Per
//! image the input is copied with its zero padding (so every tap reads
//! inside it) and the output gradient is turned position-major; a tile then
//! holds up to 8 (input channel, tap) rows times 32 output channels in 16
//! AVX-512 registers while it runs over all positions: per position, one
//! broadcast input value per row and two loaded output-gradient vectors.
//! im2col built a matrix larger than L2 for every image, and the product
//! packed it again.

use super::direct::Direct;

/// Output channels per vector.
const LANES: usize = 16;

/// Per-image buffers, reused across the images of a task.
#[derive(Default)]
pub(super) struct Scratch {
    /// The input with its padding: `ins` planes of `(h + 2 pad) x (w + 2 pad)`.
    padded: Vec<f32>,
    /// The output gradient, position-major: `h * w` rows of `outs`.
    turned: Vec<f32>,
}

/// Adds one image's weight gradient into `acc`, laid out `[i][t][o]` (as
/// the tiles run; [`weight_layout`] turns it into the weight's `[o][i][t]`).
/// `x`: `ins` planes; `dy`: `outs` planes.
pub(super) fn add_image(
    plan: &Direct,
    (ins, outs): (usize, usize),
    x: &[f32],
    dy: &[f32],
    scratch: &mut Scratch,
    acc: &mut [f32],
) {
    let (h, w, pad) = (plan.h, plan.w, plan.pad);
    let (hp, wp, plane) = (h + 2 * pad, w + 2 * pad, h * w);
    assert!(
        x.len() >= ins * plane && dy.len() >= outs * plane && acc.len() >= plan.taps() * ins * outs,
        "direct weight gradient: operands do not match the plan"
    );
    let padded = &mut scratch.padded;
    // Zeroed once per size: every image overwrites the same interior, so
    // the borders stay zero.
    if padded.len() != ins * hp * wp {
        padded.clear();
        padded.resize(ins * hp * wp, 0.0);
    }
    for i in 0..ins {
        for y in 0..h {
            let src = &x[(i * h + y) * w..][..w];
            padded[(i * hp + y + pad) * wp + pad..][..w].copy_from_slice(src);
        }
    }
    let turned = &mut scratch.turned;
    turned.resize(plane * outs, 0.0);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a `Direct` plan exists only on CPUs with AVX-512F; `turn` and
    // the tiles read `dy`, `padded` and `turned` and write `turned` and `acc`
    // inside the sizes made and checked above.
    unsafe {
        avx512::turn(dy, plane, outs, turned);
        avx512::image(plan, (ins, outs), (hp, wp), padded, turned, acc)
    }
}

/// Writes `acc` (`[i][t][o]`) into `dw` in the weight's layout, `[o][i][t]`.
pub(super) fn weight_layout(acc: &[f32], outs: usize, dw: &mut [f32]) {
    let rows = acc.len() / outs;
    for (m, row) in acc.chunks_exact(outs).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            dw[o * rows + m] = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Direct, LANES};
    use crate::direct::tile_width;
    use crate::lanes;
    use std::arch::x86_64::*;

    /// Rows (input channel and tap) per tile: one broadcast and pointer each.
    const ROWS: usize = 8;
    /// Output-gradient vectors per tile.
    const COLS: usize = 2;

    /// The output-gradient columns of one tile and where its sums go.
    struct Cols {
        /// The turned gradient at the tile's first channel, rows `outs` apart.
        grad: *const f32,
        outs: usize,
        /// The lanes of the tile's last vector.
        last: __mmask16,
        /// The tile's first sum, rows `outs` apart.
        acc: *mut f32,
    }

    /// # Safety
    /// AVX-512F; `padded` holds `ins` planes of `hp x wp`, `turned` the
    /// plan's positions times `outs`, `acc` `taps x ins x outs` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn image(
        plan: &Direct,
        (ins, outs): (usize, usize),
        (hp, wp): (usize, usize),
        padded: &[f32],
        turned: &[f32],
        acc: &mut [f32],
    ) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let (d, taps) = (plan.dilation, plan.taps());
            // Row m of the gradient is input channel m / taps at tap m % taps: its
            // values are that channel's padded plane from the tap's corner on.
            let row = |m: usize| {
                let (i, t) = (m / taps, m % taps);
                let (ky, kx) = (t / plan.k, t % plan.k);
                padded.as_ptr().add(i * hp * wp + ky * d * wp + kx * d)
            };
            let mut m = 0;
            while m < ins * taps {
                let rows = tile_width(ins * taps - m, ROWS);
                let x = |r: usize| row(m + r);
                let mut o = 0;
                while o < outs {
                    let width = (outs - o).min(COLS * LANES);
                    let cols = Cols {
                        grad: turned.as_ptr().add(o),
                        outs,
                        last: lanes((width - 1) % LANES + 1),
                        acc: acc.as_mut_ptr().add(m * outs + o),
                    };
                    let (p, wide) = (plan, width > LANES);
                    match (rows, wide) {
                        (ROWS, true) => tile::<ROWS, 2>(p, wp, std::array::from_fn(x), &cols),
                        (ROWS, false) => tile::<ROWS, 1>(p, wp, std::array::from_fn(x), &cols),
                        (4, true) => tile::<4, 2>(p, wp, std::array::from_fn(x), &cols),
                        (4, false) => tile::<4, 1>(p, wp, std::array::from_fn(x), &cols),
                        (2, true) => tile::<2, 2>(p, wp, std::array::from_fn(x), &cols),
                        (2, false) => tile::<2, 1>(p, wp, std::array::from_fn(x), &cols),
                        (_, true) => tile::<1, 2>(p, wp, std::array::from_fn(x), &cols),
                        (_, false) => tile::<1, 1>(p, wp, std::array::from_fn(x), &cols),
                    }
                    o += width;
                }
                m += rows;
            }
        }
    }

    /// `turned[p][o] = dy[o][p]` (`outs` planes of `plane` positions): whole
    /// 16 x 16 blocks transposed in registers, the edges one value at a time
    /// (a scalar loop over all values was about a fifth of the weight
    /// gradient's time on the seed-template network).
    ///
    /// # Safety
    /// AVX-512F; `dy` holds `outs * plane` values, `turned` as many.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn turn(dy: &[f32], plane: usize, outs: usize, turned: &mut [f32]) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let (whole_o, whole_p) = (outs / LANES * LANES, plane / LANES * LANES);
            for o in (0..whole_o).step_by(LANES) {
                for p in (0..whole_p).step_by(LANES) {
                    let (src, dst) = (dy.as_ptr().add(o * plane + p), turned.as_mut_ptr());
                    transpose16(src, plane, dst.add(p * outs + o), outs);
                }
            }
            for o in 0..outs {
                let edge = if o < whole_o {
                    whole_p..plane
                } else {
                    0..plane
                };
                for p in edge {
                    turned[p * outs + o] = dy[o * plane + p];
                }
            }
        }
    }

    /// Transposes the 16 x 16 block at `src` (rows `src_row` apart) into
    /// `dst` (rows `dst_row` apart): pairs of rows interleaved, then pairs
    /// of pairs, then 128-bit lanes gathered twice.
    ///
    /// # Safety
    /// AVX-512F; both blocks lie inside their buffers.
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose16(src: *const f32, src_row: usize, dst: *mut f32, dst_row: usize) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let a: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * src_row)));
            // t[2k], t[2k+1]: rows 2k and 2k+1 interleaved, low and high halves of each lane.
            let t: [__m512; 16] = std::array::from_fn(|i| {
                let (x, y) = (a[i & !1], a[i | 1]);
                if i % 2 == 0 {
                    _mm512_unpacklo_ps(x, y)
                } else {
                    _mm512_unpackhi_ps(x, y)
                }
            });
            // u[4m + q]: in lane l, column 4l + q of rows 4m .. 4m + 4.
            let u: [__m512; 16] = std::array::from_fn(|i| {
                let (b, q) = (i & !3, i % 4);
                let (x, y) = (
                    _mm512_castps_pd(t[b + q / 2]),
                    _mm512_castps_pd(t[b + q / 2 + 2]),
                );
                _mm512_castpd_ps(if q % 2 == 0 {
                    _mm512_unpacklo_pd(x, y)
                } else {
                    _mm512_unpackhi_pd(x, y)
                })
            });
            for q in 0..4 {
                let (lo_a, hi_a) = (
                    _mm512_shuffle_f32x4::<0x44>(u[q], u[4 + q]),
                    _mm512_shuffle_f32x4::<0xEE>(u[q], u[4 + q]),
                );
                let (lo_b, hi_b) = (
                    _mm512_shuffle_f32x4::<0x44>(u[8 + q], u[12 + q]),
                    _mm512_shuffle_f32x4::<0xEE>(u[8 + q], u[12 + q]),
                );
                let rows = [
                    _mm512_shuffle_f32x4::<0x88>(lo_a, lo_b),
                    _mm512_shuffle_f32x4::<0xDD>(lo_a, lo_b),
                    _mm512_shuffle_f32x4::<0x88>(hi_a, hi_b),
                    _mm512_shuffle_f32x4::<0xDD>(hi_a, hi_b),
                ];
                for (l, row) in rows.into_iter().enumerate() {
                    _mm512_storeu_ps(dst.add((4 * l + q) * dst_row), row);
                }
            }
        }
    }

    /// `R` rows of the gradient (each read from `x[r]`, its tap's corner of
    /// its channel's padded plane, rows `wp` apart) times `V` vectors of output channels,
    /// over all positions, added to their sums.
    ///
    /// # Safety
    /// As for [`image`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const R: usize, const V: usize>(
        plan: &Direct,
        wp: usize,
        x: [*const f32; R],
        cols: &Cols,
    ) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let lanes = |v: usize| if v + 1 == V { cols.last } else { !0 };
            let mut acc = [[_mm512_setzero_ps(); V]; R];
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, a) in row.iter_mut().enumerate() {
                    *a = _mm512_maskz_loadu_ps(lanes(v), cols.acc.add(r * cols.outs + v * LANES));
                }
            }
            for y in 0..plan.h {
                let (from, grad) = (y * wp, cols.grad.add(y * plan.w * cols.outs));
                for px in 0..plan.w {
                    let g = grad.add(px * cols.outs);
                    let mut b = [_mm512_setzero_ps(); V];
                    for (v, b) in b.iter_mut().enumerate() {
                        *b = _mm512_maskz_loadu_ps(lanes(v), g.add(v * LANES));
                    }
                    for (row, x) in acc.iter_mut().zip(&x) {
                        let a = _mm512_set1_ps(*x.add(from + px));
                        for (acc, &b) in row.iter_mut().zip(&b) {
                            *acc = _mm512_fmadd_ps(a, b, *acc);
                        }
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                for (v, &a) in row.iter().enumerate() {
                    _mm512_mask_storeu_ps(cols.acc.add(r * cols.outs + v * LANES), lanes(v), a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{add_image, weight_layout, Scratch};
    use crate::direct::tests::{plan, random, tap};
    use rand::SeedableRng;

    /// Two images' weight gradient, summed by the definition in f64.
    fn reference(
        images: &[(Vec<f32>, Vec<f32>)],
        (ins, outs, h, w): (usize, usize, usize, usize),
        (k, dilation, pad): (usize, usize, usize),
    ) -> Vec<f32> {
        let mut dw = vec![0f32; outs * ins * k * k];
        for o in 0..outs {
            for i in 0..ins {
                for t in 0..k * k {
                    let (ky, kx) = (t / k, t % k);
                    let mut s = 0f64;
                    for (x, dy) in images {
                        for oy in 0..h {
                            for ox in 0..w {
                                let at = (oy, ox, ky, kx);
                                if let Some(v) = tap(x, (h, w), i, at, (dilation, pad)) {
                                    s += v * dy[(o * h + oy) * w + ox] as f64;
                                }
                            }
                        }
                    }
                    dw[(o * ins + i) * k * k + t] = s as f32;
                }
            }
        }
        dw
    }

    /// Row counts around the tile's eight (channels times taps: 1 x 9 up to
    /// 12 x 25), output channels around its 16 and 32 lanes, kernels 1-5
    /// with dilation 1 and 2, and two images summed: the definition's values.
    #[test]
    fn matches_the_definition_over_two_images() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
        let cases = [
            (3, 1, 1, 32, 28, 28),
            (3, 1, 9, 17, 7, 5),
            (5, 1, 12, 33, 6, 9),
            (5, 2, 3, 64, 10, 10),
            (1, 1, 8, 5, 4, 4),
            (3, 2, 2, 16, 1, 3),
        ];
        for (k, dilation, ins, outs, h, w) in cases {
            let Some((plan, pad)) = plan(k, dilation, h, w) else {
                continue;
            };
            let images: Vec<_> = (0..2)
                .map(|_| {
                    (
                        random(&mut rng, ins * h * w),
                        random(&mut rng, outs * h * w),
                    )
                })
                .collect();
            let (mut acc, mut scratch) = (vec![0f32; ins * k * k * outs], Scratch::default());
            for (x, dy) in &images {
                add_image(&plan, (ins, outs), x, dy, &mut scratch, &mut acc);
            }
            let expected = reference(&images, (ins, outs, h, w), (k, dilation, pad));
            let mut dw = vec![0f32; acc.len()];
            weight_layout(&acc, outs, &mut dw);
            for (j, (a, e)) in dw.iter().zip(&expected).enumerate() {
                assert!(
                    (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                    "k{k} d{dilation} {ins}->{outs} {h}x{w}: weight {j}: {a} vs {e}"
                );
            }
        }
    }
}
