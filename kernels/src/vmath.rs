//! The smooth activations' values and derivatives sixteen lanes at a time
//! with AVX-512, from a vector `exp` (range reduction to |r| <= ln2/2, a
//! degree-6 polynomial, scaling by 2^n; about 1 ulp) and the complementary
//! error function of Numerical Recipes (`t·exp(-z² + P(t))`, fractional
//! error below 1.2e-7 in exact arithmetic). The scalar `exp` and `erf` were
//! most of a GELU or SiLU network's step.

use super::activation::Smooth;
use super::lanes;
use std::arch::x86_64::*;

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two: `n · LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1 / sqrt(2 pi), the normal density's factor.
const INV_SQRT_2PI: f32 = 0.398_942_3;
/// Numerical Recipes' `erfcc` coefficients of `P(t)`, lowest power first.
const ERFC: [f32; 10] = [
    -1.265_512_2,
    1.000_023_7,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_204,
    1.488_515_9,
    -0.822_152_2,
    0.170_872_77,
];

#[target_feature(enable = "avx512f")]
fn splat(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

/// `e^x`; 0 below about -104, and `x` clamped to 88 above.
#[target_feature(enable = "avx512f")]
fn exp(x: __m512) -> __m512 {
    let x = _mm512_max_ps(_mm512_min_ps(x, splat(88.0)), splat(-104.0));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, splat(LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, splat(LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, splat(LN2_LO), r);
    let mut p = splat(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, splat(c));
    }
    _mm512_scalef_ps(p, n)
}

/// `erfc(z)` for `z >= 0`.
#[target_feature(enable = "avx512f")]
fn erfc(z: __m512) -> __m512 {
    let t = _mm512_div_ps(splat(1.0), _mm512_fmadd_ps(splat(0.5), z, splat(1.0)));
    let mut p = splat(ERFC[9]);
    for &c in ERFC[..9].iter().rev() {
        p = _mm512_fmadd_ps(p, t, splat(c));
    }
    let exponent = _mm512_fnmadd_ps(z, z, p);
    _mm512_mul_ps(t, exp(exponent))
}

/// Φ(x), the standard normal distribution function (no cancellation for
/// negative `x`: it is half of `erfc` there).
#[target_feature(enable = "avx512f")]
fn cdf(x: __m512) -> __m512 {
    let z = _mm512_mul_ps(_mm512_abs_ps(x), splat(std::f32::consts::FRAC_1_SQRT_2));
    let half = _mm512_mul_ps(splat(0.5), erfc(z));
    let positive = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, _mm512_setzero_ps());
    _mm512_mask_blend_ps(positive, half, _mm512_sub_ps(splat(1.0), half))
}

/// σ(x) = 1 / (1 + e^-x).
#[target_feature(enable = "avx512f")]
fn sigmoid(x: __m512) -> __m512 {
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(splat(1.0), _mm512_add_ps(splat(1.0), e))
}

#[target_feature(enable = "avx512f")]
fn value(f: Smooth, x: __m512) -> __m512 {
    match f {
        Smooth::Gelu => _mm512_mul_ps(x, cdf(x)),
        Smooth::Silu => _mm512_mul_ps(x, sigmoid(x)),
        Smooth::Sigmoid => sigmoid(x),
        Smooth::Tanh | Smooth::LeakyRelu(_) => unreachable!("{f:?} is not vectorised"),
    }
}

#[target_feature(enable = "avx512f")]
fn slope(f: Smooth, x: __m512, y: __m512) -> __m512 {
    let one = splat(1.0);
    match f {
        Smooth::Gelu => {
            // Φ(x) + x φ(x).
            let density = _mm512_mul_ps(
                exp(_mm512_mul_ps(splat(-0.5), _mm512_mul_ps(x, x))),
                splat(INV_SQRT_2PI),
            );
            _mm512_fmadd_ps(x, density, cdf(x))
        }
        Smooth::Silu => {
            let s = sigmoid(x);
            _mm512_mul_ps(s, _mm512_fmadd_ps(x, _mm512_sub_ps(one, s), one))
        }
        Smooth::Sigmoid => _mm512_mul_ps(y, _mm512_sub_ps(one, y)),
        Smooth::Tanh | Smooth::LeakyRelu(_) => unreachable!("{f:?} is not vectorised"),
    }
}

/// Whether `f` has a vector form here.
pub(super) fn covers(f: Smooth) -> bool {
    matches!(f, Smooth::Gelu | Smooth::Silu | Smooth::Sigmoid)
}

/// `y = f(x)`, every element through the vector code (the last block masked).
///
/// # Safety
/// The CPU must have AVX-512F, `f` must be [`covers`]ed and `y` as long as `x`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn values(f: Smooth, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len());
    for start in (0..x.len()).step_by(16) {
        let m = lanes((x.len() - start).min(16));
        // SAFETY: the mask keeps the loads and stores inside both slices.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, x.as_ptr().add(start));
            _mm512_mask_storeu_ps(y.as_mut_ptr().add(start), m, value(f, v));
        }
    }
}

/// `dx = dy · f'(x)` (with `y = f(x)`), every element through the vector code.
///
/// # Safety
/// As for [`values`]; all four slices of the same length.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn slopes(f: Smooth, dy: &[f32], x: &[f32], y: &[f32], dx: &mut [f32]) {
    assert!(dy.len() == x.len() && x.len() == y.len() && y.len() == dx.len());
    for start in (0..x.len()).step_by(16) {
        let m = lanes((x.len() - start).min(16));
        // SAFETY: the mask keeps the loads and stores inside the slices.
        unsafe {
            let g = _mm512_maskz_loadu_ps(m, dy.as_ptr().add(start));
            let xv = _mm512_maskz_loadu_ps(m, x.as_ptr().add(start));
            let yv = _mm512_maskz_loadu_ps(m, y.as_ptr().add(start));
            let d = _mm512_mul_ps(g, slope(f, xv, yv));
            _mm512_mask_storeu_ps(dx.as_mut_ptr().add(start), m, d);
        }
    }
}
