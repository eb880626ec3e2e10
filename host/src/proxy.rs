//! Zero-cost proxies: scores of an untrained network from one minibatch of
//! training data, which rank architectures before training them (or
//! instead of it). Each follows its paper's formulation as the
//! zero-cost-proxies code of Abdelfattah et al. (2021) computes it, with
//! dropout off:
//!
//! - `naswot` (Mellor et al., 2021): log |det K|, where K sums over every
//!   activation the agreement of the samples' binary codes (input > 0),
//!   `c cᵀ + (1 - c)(1 - c)ᵀ`; batch statistics in batch-norms.
//! - `synflow` (Tanaka et al., 2020): every parameter made positive, batch-norms
//!   left out, one input of ones; the sum over the convolution and dense
//!   weights of |w · ∂R/∂w| where R is the sum of the outputs.
//! - `grad_norm`: the sum over the convolution and dense layers of the norm
//!   of their weights' cross-entropy gradient; batch statistics.
//! - `snip` (Lee et al., 2019): the sum over the same weights of
//!   |w · ∂L/∂w| for the cross-entropy L; batch statistics.
//! - `jacob_cov` (Mellor et al., 2020): from the correlation matrix C of the
//!   samples' input gradients of the summed outputs, -Σ log(λ + k) + 1/(λ + k)
//!   over C's eigenvalues λ, k = 1e-5 (computed as -log det(C + kI) - tr((C + kI)⁻¹)).

use crate::ir::{Network, Op, Task};
use crate::network::{LayerHook, Model};
use anyhow::{Context, Result};
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

/// A zero-cost proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proxy {
    /// Log-determinant of the activation-code kernel (NASWOT).
    Naswot,
    /// Synaptic flow of the positive network on an input of ones.
    Synflow,
    /// Norms of the layers' loss gradients.
    GradNorm,
    /// Connection sensitivity |w · ∂L/∂w|.
    Snip,
    /// Eigenvalue score of the input-gradient correlations.
    JacobCov,
}

impl Proxy {
    /// Every proxy, in the order they are listed.
    pub const ALL: [Proxy; 5] = [
        Proxy::Naswot,
        Proxy::Synflow,
        Proxy::GradNorm,
        Proxy::Snip,
        Proxy::JacobCov,
    ];

    /// The proxy's name: its metric and its name in configs.
    pub fn name(self) -> &'static str {
        match self {
            Proxy::Naswot => "naswot",
            Proxy::Synflow => "synflow",
            Proxy::GradNorm => "grad_norm",
            Proxy::Snip => "snip",
            Proxy::JacobCov => "jacob_cov",
        }
    }
}

/// The proxies a trial scores before training, or instead of it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProxyPlan {
    /// The proxies (none: nothing is scored).
    pub proxies: Vec<Proxy>,
    /// Examples in the minibatch (the first of the training split).
    pub batch: usize,
    /// Score instead of training (`[evaluator] kind = "proxy"`).
    pub only: bool,
}

/// Scores of one network: each proxy's value, or why it is undefined for
/// this network (no activation, samples the network cannot tell apart).
pub type Scores = Vec<(Proxy, std::result::Result<f64, String>)>;

/// Scores `network`, initialised from `seed`, with `proxies` on the
/// minibatch `x` (N x C x H x W) with labels `labels`. Errors are the
/// network's (an op candle cannot run), not a proxy's being undefined.
pub fn score(
    network: &Network,
    task: &Task,
    seed: u64,
    x: &Tensor,
    labels: &Tensor,
    proxies: &[Proxy],
) -> Result<Scores> {
    let wants = |p| proxies.contains(&p);
    // A model of its own: batch statistics in train mode update running ones.
    let model = Model::new(network, task, seed, x.device())?;
    let mut scores = Scores::new();
    if wants(Proxy::Naswot) || wants(Proxy::JacobCov) {
        let input = Var::from_tensor(&x.detach())?;
        let mut probe = Probe::new(network, false, wants(Proxy::Naswot));
        let y = model.forward_probed(input.as_tensor(), true, &mut probe)?;
        if wants(Proxy::Naswot) {
            scores.push((Proxy::Naswot, probe.naswot()));
        }
        if wants(Proxy::JacobCov) {
            let grads = y.sum_all()?.backward()?;
            let jacobian = match grads.get(input.as_tensor()) {
                Some(g) => g.flatten_from(1)?.to_dtype(DType::F64)?.to_vec2::<f64>()?,
                None => Vec::new(),
            };
            scores.push((Proxy::JacobCov, jacob_cov(&jacobian)));
        }
    }
    if wants(Proxy::GradNorm) || wants(Proxy::Snip) {
        let mut probe = Probe::new(network, false, false);
        let y = model.forward_probed(&x.detach(), true, &mut probe)?;
        let loss = candle_nn::loss::cross_entropy(&y, labels)?;
        let grads = loss.backward()?;
        let (mut norm, mut snip) = (0.0, 0.0);
        for w in model.layer_weights() {
            if let Some(g) = grads.get(w.as_tensor()) {
                norm += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?
                    .sqrt();
                snip += saliency(w.as_tensor(), g)?;
            }
        }
        for (proxy, value) in [(Proxy::GradNorm, norm), (Proxy::Snip, snip)] {
            if wants(proxy) {
                scores.push((proxy, finite(value, proxy)));
            }
        }
    }
    if wants(Proxy::Synflow) {
        // Last: it changes the model's weights.
        for v in model.params() {
            v.set(&v.as_tensor().abs()?)?;
        }
        let (c, h, w) = (task.channels, task.height, task.width);
        let ones = Tensor::ones(
            (1, c as usize, h as usize, w as usize),
            DType::F32,
            x.device(),
        )?;
        let mut probe = Probe::new(network, true, false);
        let y = model.forward_probed(&ones, false, &mut probe)?;
        let grads = y.sum_all()?.backward()?;
        let mut flow = 0.0;
        for w in model.layer_weights() {
            if let Some(g) = grads.get(w.as_tensor()) {
                flow += saliency(w.as_tensor(), g)?;
            }
        }
        scores.push((Proxy::Synflow, finite(flow, Proxy::Synflow)));
    }
    scores.sort_by_key(|(p, _)| proxies.iter().position(|q| q == p));
    Ok(scores)
}

/// Σ |w · g|, summed in f64.
fn saliency(w: &Tensor, g: &Tensor) -> Result<f64> {
    Ok(w.mul(g)?
        .abs()?
        .to_dtype(DType::F64)?
        .sum_all()?
        .to_scalar::<f64>()?)
}

fn finite(value: f64, proxy: Proxy) -> std::result::Result<f64, String> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!(
            "{} overflowed single precision ({value})",
            proxy.name()
        ))
    }
}

/// Watches a proxy's forward pass: passes dropout on (and batch-norms, for
/// synflow) and sums the activation-code kernel for naswot.
struct Probe<'a> {
    network: &'a Network,
    skip_batch_norm: bool,
    /// K, row-major N x N, when naswot is scored.
    kernel: Option<Vec<f64>>,
    activations: usize,
}

impl<'a> Probe<'a> {
    fn new(network: &'a Network, skip_batch_norm: bool, naswot: bool) -> Self {
        Probe {
            network,
            skip_batch_norm,
            kernel: naswot.then(Vec::new),
            activations: 0,
        }
    }

    fn naswot(&self) -> std::result::Result<f64, String> {
        let kernel = self.kernel.as_deref().unwrap_or_default();
        if self.activations == 0 {
            return Err("naswot needs an activation, and the network has none".into());
        }
        let n = (kernel.len() as f64).sqrt() as usize;
        match log_abs_det(kernel.to_vec(), n) {
            Some(value) => Ok(value),
            None => Err(
                "naswot is undefined: two samples have the same activation codes (K is singular)"
                    .into(),
            ),
        }
    }
}

impl LayerHook for Probe<'_> {
    fn passes_on(&self, node: usize) -> bool {
        match self.network.nodes[node].op {
            Op::Dropout(_) => true,
            Op::BatchNorm => self.skip_batch_norm,
            _ => false,
        }
    }

    fn activation(&mut self, _: usize, x: &Tensor) -> Result<()> {
        let Some(kernel) = self.kernel.as_mut() else {
            return Ok(());
        };
        let codes = x.flatten_from(1)?.gt(0f32)?.to_dtype(DType::F32)?;
        let others = codes.affine(-1.0, 1.0)?;
        // Counts of agreeing units: whole numbers, exact in f32 below 2^24 units.
        let agree = (codes.matmul(&codes.t()?.contiguous()?)?
            + others.matmul(&others.t()?.contiguous()?)?)?;
        let agree = agree
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        if kernel.is_empty() {
            *kernel = agree;
        } else {
            for (k, a) in kernel.iter_mut().zip(agree) {
                *k += a;
            }
        }
        self.activations += 1;
        Ok(())
    }
}

/// log |det A| of the row-major n x n matrix `a` by LU decomposition with
/// partial pivoting; `None` when A is singular.
fn log_abs_det(mut a: Vec<f64>, n: usize) -> Option<f64> {
    if n == 0 || a.len() != n * n {
        return None;
    }
    let mut log_det = 0.0;
    for col in 0..n {
        let pivot =
            (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        let p = a[pivot * n + col];
        if p == 0.0 || !p.is_finite() {
            return None;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(pivot * n + k, col * n + k);
            }
        }
        log_det += p.abs().ln();
        for row in col + 1..n {
            let f = a[row * n + col] / p;
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
        }
    }
    Some(log_det)
}

/// The jacob_cov score of the Jacobian rows `rows` (one per sample).
fn jacob_cov(rows: &[Vec<f64>]) -> std::result::Result<f64, String> {
    const K: f64 = 1e-5;
    let n = rows.len();
    if n < 2 {
        return Err("jacob_cov needs a minibatch of at least two samples".into());
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| {
            let mean = r.iter().sum::<f64>() / r.len().max(1) as f64;
            r.iter().map(|v| v - mean).collect()
        })
        .collect();
    let norms: Vec<f64> = centred
        .iter()
        .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    if norms.iter().any(|&s| s == 0.0 || !s.is_finite()) {
        return Err(
            "jacob_cov is undefined: a sample's input gradient is constant (the output does not depend on that input)"
                .into(),
        );
    }
    // C + kI, the correlations of the rows.
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = centred[i].iter().zip(&centred[j]).map(|(a, b)| a * b).sum();
            let c = dot / (norms[i] * norms[j]);
            m[i * n + j] = c;
            m[j * n + i] = c;
        }
        m[i * n + i] += K;
    }
    let l = cholesky(&m, n).ok_or("jacob_cov: the correlation matrix is not positive definite")?;
    let log_det: f64 = (0..n).map(|i| 2.0 * l[i * n + i].ln()).sum();
    // tr(M⁻¹) = ‖L⁻¹‖², L⁻¹ by forward substitution, column by column.
    let mut trace = 0.0;
    for col in 0..n {
        let mut z = vec![0.0; n];
        for i in col..n {
            let rhs = if i == col { 1.0 } else { 0.0 };
            let s: f64 = (col..i).map(|k| l[i * n + k] * z[k]).sum();
            z[i] = (rhs - s) / l[i * n + i];
        }
        trace += z.iter().map(|v| v * v).sum::<f64>();
    }
    finite(-(log_det + trace), Proxy::JacobCov)
}

/// The lower Cholesky factor of the symmetric row-major n x n matrix `m`;
/// `None` when `m` is not positive definite.
fn cholesky(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = m[i * n + i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (m[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// The first `batch` examples of the training split of `data` (fewer when
/// the split is smaller): the minibatch every trial of a run is scored on.
pub fn minibatch(data: &crate::data::Dataset, batch: usize) -> Result<(Tensor, Tensor)> {
    let len = batch.min(data.train.len());
    data.train
        .tensors(0, len, data.device())
        .context("gather the proxies' minibatch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_abs_det_matches_a_hand_computed_determinant_and_finds_singular_matrices() {
        // det [[0, 2, 1], [1, 1, 0], [3, 0, 1]] = 0(1) - 2(1) + 1(-3) = -5 (needs a row swap).
        let a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let got = log_abs_det(a, 3).unwrap();
        assert!((got - 5f64.ln()).abs() < 1e-12, "{got}");
        assert_eq!(log_abs_det(vec![1.0, 2.0, 2.0, 4.0], 2), None);
        assert_eq!(log_abs_det(vec![], 0), None);
    }

    #[test]
    fn jacob_cov_of_two_samples_is_the_closed_form_of_their_correlation() {
        // Two rows with correlation r: eigenvalues 1 ± r.
        let rows = vec![vec![1.0, 2.0, 4.0], vec![2.0, 1.0, 3.0]];
        let centre = |r: &[f64]| {
            let m = r.iter().sum::<f64>() / 3.0;
            r.iter().map(|v| v - m).collect::<Vec<_>>()
        };
        let (a, b) = (centre(&rows[0]), centre(&rows[1]));
        let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
        let r = dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt();
        let k = 1e-5;
        let expected: f64 = [1.0 + r, 1.0 - r]
            .iter()
            .map(|v| -((v + k).ln() + 1.0 / (v + k)))
            .sum();
        let got = jacob_cov(&rows).unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        assert!(jacob_cov(&[vec![1.0, 1.0], vec![1.0, 2.0]]).is_err());
        assert!(jacob_cov(&[vec![1.0, 2.0]]).is_err());
    }
}
