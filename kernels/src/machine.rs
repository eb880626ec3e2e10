//! What this CPU is, for reports of speed: its model, the instruction sets
//! the kernels may use, which convolution path they take, and its measured
//! peak of f32 fused multiply-adds, against which a kernel's GFLOP/s read
//! as a fraction.

use rayon::prelude::*;
use std::time::Instant;

/// This CPU as the kernels see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// The model name the operating system gives (`/proc/cpuinfo`), or
    /// `unknown`.
    pub model: String,
    /// The instruction sets found that matter to training kernels, from
    /// `avx2`, `fma`, `avx512f`, `avx512bw`, `avx512vnni`, `avx512bf16`,
    /// `avx512fp16`, `avxvnni`.
    pub features: Vec<&'static str>,
    /// The widest FMA this CPU has and the kernels use: `avx512`, `avx2` or
    /// `scalar` (`avx2` on an AVX-512 CPU with `NAS_KERNELS_AVX512=off`).
    pub vector: &'static str,
}

/// Describes this CPU.
pub fn machine() -> Machine {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        model,
        features: features(),
        vector: vector(),
    }
}

#[cfg(target_arch = "x86_64")]
fn features() -> Vec<&'static str> {
    let found = [
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
        (
            "avx512vnni",
            std::arch::is_x86_feature_detected!("avx512vnni"),
        ),
        (
            "avx512bf16",
            std::arch::is_x86_feature_detected!("avx512bf16"),
        ),
        (
            "avx512fp16",
            std::arch::is_x86_feature_detected!("avx512fp16"),
        ),
        ("avxvnni", std::arch::is_x86_feature_detected!("avxvnni")),
    ];
    found.iter().filter(|(_, f)| *f).map(|(n, _)| *n).collect()
}

#[cfg(not(target_arch = "x86_64"))]
fn features() -> Vec<&'static str> {
    Vec::new()
}

fn vector() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if super::has_avx512() {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2";
        }
    }
    "scalar"
}

/// Independent accumulator chains per thread: enough to keep two FMA
/// ports busy through a four-cycle latency.
const CHAINS: usize = 12;

/// GFLOP/s of f32 fused multiply-adds at the widest vector width
/// ([`Machine::vector`]) on `threads` threads of rayon's pool at once (one
/// multiply-add counts two FLOPs), over about `seconds`: the ceiling that
/// training's GFLOP/s are a fraction of.
pub fn fma_peak_gflops(threads: usize, seconds: f64) -> f64 {
    let threads = threads.clamp(1, rayon::current_num_threads());
    // A short run sizes the timed one.
    let probe = 1 << 14;
    let start = Instant::now();
    std::hint::black_box(fma_chains(probe));
    let per_iter = start.elapsed().as_secs_f64().max(1e-9) / probe as f64;
    let iters = ((seconds / per_iter) as usize).max(probe);
    let start = Instant::now();
    let flops: f64 = (0..threads)
        .into_par_iter()
        .map(|_| {
            let (lanes, sum) = fma_chains(iters);
            std::hint::black_box(sum);
            (iters * CHAINS * lanes * 2) as f64
        })
        .sum();
    flops / start.elapsed().as_secs_f64() / 1e9
}

/// `iters` rounds of one multiply-add on each of the chains; the lanes per
/// multiply-add, and a sum that keeps the work from being optimised away.
fn fma_chains(iters: usize) -> (usize, f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::has_avx512() {
            // SAFETY: AVX-512F was detected on this CPU just above.
            return (16, unsafe { fma_avx512(iters) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: AVX2 and FMA were detected on this CPU just above.
            return (8, unsafe { fma_avx2(iters) });
        }
    }
    let mut acc = [0f32; CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = std::hint::black_box(*a).mul_add(0.999, 0.001);
        }
    }
    (1, acc.iter().sum())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_avx512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(0.999), _mm512_set1_ps(0.001));
    let mut acc = [_mm512_setzero_ps(); CHAINS];
    for _ in 0..iters {
        for x in &mut acc {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    acc.iter().map(|x| _mm512_reduce_add_ps(*x)).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_avx2(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001));
    let mut acc = [_mm256_setzero_ps(); CHAINS];
    for _ in 0..iters {
        for x in &mut acc {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut lanes = [0f32; 8];
    let mut sum = 0.0;
    for x in acc {
        // SAFETY: `lanes` holds the 8 floats an unaligned store writes.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
        sum += lanes.iter().sum::<f32>();
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chains compute what scalar multiply-adds compute, on every path
    /// this CPU has: each converges to the fixed point 0.001 / 0.001 = 1.
    #[test]
    fn every_path_computes_the_same_chains() {
        let (lanes, sum) = fma_chains(20_000);
        assert!([1, 8, 16].contains(&lanes));
        let expected = (lanes * CHAINS) as f32;
        assert!(
            (sum - expected).abs() < 1e-3 * expected,
            "{sum} vs {expected}"
        );
    }

    #[test]
    fn the_peak_is_positive_and_the_machine_is_described() {
        let peak = fma_peak_gflops(1, 0.01);
        assert!(peak.is_finite() && peak > 0.0, "{peak}");
        let m = machine();
        assert!(!m.model.is_empty());
        if m.vector == "avx512" {
            assert!(m.features.contains(&"avx512f"));
        }
        if std::env::var("NAS_KERNELS_AVX512").as_deref() == Ok("off") {
            assert_ne!(
                m.vector, "avx512",
                "NAS_KERNELS_AVX512=off turns AVX-512 off"
            );
        }
    }
}
