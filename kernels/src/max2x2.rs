//! The common max pool, a 2x2 window with stride 2 and no padding, of one
//! plane: the maxima and where each came from (the first maximum in raster
//! order; a NaN wins once and stays, as in [`super::pool`]). The scalar
//! loop's data-dependent branches mispredicted on every other window (9
//! percent of a seed-template epoch); with AVX-512 sixteen windows are
//! compared at once, without branches, with the same results.

use super::pool::wins;

/// Maxima of the `oh x ow` windows of `plane` (rows `w` apart) into `out`,
/// their indices within the plane into `idx`.
pub(super) fn max_2x2(
    plane: &[f32],
    w: usize,
    out: &mut [f32],
    idx: &mut [u32],
    oh: usize,
    ow: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if super::has_avx512() {
        // SAFETY: the CPU has AVX-512F (checked just above).
        unsafe { avx512::max_2x2(plane, w, out, idx, oh, ow) };
        return;
    }
    scalar(plane, w, out, idx, oh, ow);
}

/// The scalar version: each window's four values in raster order.
pub(super) fn scalar(
    plane: &[f32],
    w: usize,
    out: &mut [f32],
    idx: &mut [u32],
    oh: usize,
    ow: usize,
) {
    for oy in 0..oh {
        let (r0, r1) = (
            &plane[2 * oy * w..][..2 * ow],
            &plane[(2 * oy + 1) * w..][..2 * ow],
        );
        let (out, idx) = (&mut out[oy * ow..][..ow], &mut idx[oy * ow..][..ow]);
        for ox in 0..ow {
            let base = 2 * oy * w + 2 * ox;
            let (mut best, mut at) = (r0[2 * ox], base);
            for (v, i) in [
                (r0[2 * ox + 1], base + 1),
                (r1[2 * ox], base + w),
                (r1[2 * ox + 1], base + w + 1),
            ] {
                if wins(v, best) {
                    best = v;
                    at = i;
                }
            }
            out[ox] = best;
            idx[ox] = at as u32;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use crate::lanes;
    use std::arch::x86_64::*;

    /// Lanes `0, 2, .., 30` and `1, 3, .., 31` of two 16-float vectors.
    const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
    const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];

    /// Lanes where `v` replaces `best`: greater, or NaN over a number
    /// (the vector form of [`super::wins`]).
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn wins(v: __m512, best: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
            | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v)
                & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best))
    }

    /// The first `len` (at most 32) values of `src`, split into the values
    /// at even and at odd positions (the left and right of each window).
    ///
    /// # Safety
    /// The CPU must have AVX-512F and `src` at least `len` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn pairs(src: &[f32], len: usize) -> (__m512, __m512) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let lo = _mm512_maskz_loadu_ps(lanes(len.min(16)), src.as_ptr());
            let hi = if len > 16 {
                _mm512_maskz_loadu_ps(lanes(len - 16), src.as_ptr().add(16))
            } else {
                _mm512_setzero_ps()
            };
            let (even, odd) = (
                _mm512_loadu_si512(EVEN.as_ptr().cast()),
                _mm512_loadu_si512(ODD.as_ptr().cast()),
            );
            (
                _mm512_permutex2var_ps(lo, even, hi),
                _mm512_permutex2var_ps(lo, odd, hi),
            )
        }
    }

    /// Same contract as [`super::scalar`]. Each window: the better of its
    /// left and right value in each row, then the better row, the upper one
    /// on ties, which is the raster order's first maximum.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_2x2(
        plane: &[f32],
        w: usize,
        out: &mut [f32],
        idx: &mut [u32],
        oh: usize,
        ow: usize,
    ) {
        // SAFETY: the caller keeps this function's `# Safety` contract.
        unsafe {
            let offsets = _mm512_loadu_si512(EVEN.as_ptr().cast());
            let (zero, one) = (_mm512_setzero_si512(), _mm512_set1_epi32(1));
            let (below, below_right) =
                (_mm512_set1_epi32(w as i32), _mm512_set1_epi32(w as i32 + 1));
            for oy in 0..oh {
                let (r0, r1) = (
                    &plane[2 * oy * w..][..2 * ow],
                    &plane[(2 * oy + 1) * w..][..2 * ow],
                );
                let (out, idx) = (&mut out[oy * ow..][..ow], &mut idx[oy * ow..][..ow]);
                let mut ox = 0;
                while ox < ow {
                    let n = (ow - ox).min(16);
                    let (a, b) = pairs(&r0[2 * ox..], 2 * n);
                    let (c, d) = pairs(&r1[2 * ox..], 2 * n);
                    let right = wins(b, a);
                    let (top, top_at) = (
                        _mm512_mask_blend_ps(right, a, b),
                        _mm512_mask_blend_epi32(right, zero, one),
                    );
                    let right = wins(d, c);
                    let (bottom, bottom_at) = (
                        _mm512_mask_blend_ps(right, c, d),
                        _mm512_mask_blend_epi32(right, below, below_right),
                    );
                    let lower = wins(bottom, top);
                    let best = _mm512_mask_blend_ps(lower, top, bottom);
                    let at = _mm512_add_epi32(
                        _mm512_mask_blend_epi32(lower, top_at, bottom_at),
                        _mm512_add_epi32(_mm512_set1_epi32((2 * oy * w + 2 * ox) as i32), offsets),
                    );
                    _mm512_mask_storeu_ps(out.as_mut_ptr().add(ox), lanes(n), best);
                    _mm512_mask_storeu_epi32(idx.as_mut_ptr().add(ox).cast(), lanes(n), at);
                    ox += n;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    /// Every plane shape from 2x2 to 41x41 (odd sizes leave a row and a
    /// column out), values from a few levels (ties) with NaNs: the same
    /// maxima, bit for bit, and the same positions as the scalar loop. On a
    /// CPU without AVX-512 both sides run the scalar loop.
    #[test]
    fn matches_the_scalar_loop_with_ties_and_nans() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for h in 2..42 {
            for w in (2..42).step_by(3) {
                let plane: Vec<f32> = (0..h * w)
                    .map(|_| match rng.random_range(0..20) {
                        0 => f32::NAN,
                        k => (k % 4) as f32 - 1.0,
                    })
                    .collect();
                let (oh, ow) = (h / 2, w / 2);
                let (mut out, mut idx) = (vec![0f32; oh * ow], vec![0u32; oh * ow]);
                let (mut out_ref, mut idx_ref) = (vec![0f32; oh * ow], vec![0u32; oh * ow]);
                super::max_2x2(&plane, w, &mut out, &mut idx, oh, ow);
                super::scalar(&plane, w, &mut out_ref, &mut idx_ref, oh, ow);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out), bits(&out_ref), "{h}x{w}: maxima");
                assert_eq!(idx, idx_ref, "{h}x{w}: positions");
            }
        }
    }
}
