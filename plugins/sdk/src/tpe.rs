//! Tree-structured Parzen Estimator (Bergstra et al. 2011), independent per
//! dimension as in Optuna's default TPESampler: after `startup` random
//! trials, the completed results are split into the best `gamma` fraction
//! (good) and the rest (bad); each dimension gets a density l(x) from the
//! good and g(x) from the bad values (categorical: counts plus a uniform
//! prior; integer and real: Gaussian kernels, in log space where asked, plus
//! a wide prior kernel of weight `prior_weight`); `candidates` draws from l
//! are scored by the sum of log l(x) - log g(x) over their active
//! dimensions, and the best is proposed. Conditional dimensions are modelled
//! from the results where they were active. A candidate proposed before is
//! skipped (the host would only reuse its result). Never finishes.

use crate::space::{assignment_text, is_active, value_of};
use crate::*;
use std::collections::HashSet;

/// The TPE strategy; also a sampler that other strategies (such as `asha`
/// and `hyperband`, BOHB-style) can drive through [`Strategy`].
pub struct Tpe {
    dims: Vec<Dimension>,
    objective: Objective,
    rng: Rng,
    startup: usize,
    gamma: f64,
    candidates: usize,
    prior_weight: f64,
    /// Completed results: assignment and score (larger is better).
    observations: Vec<(Assignment, f64)>,
    /// Texts of every proposal made, told or not.
    proposed: HashSet<String>,
}

/// A one-dimensional density over a dimension's values.
enum Density {
    /// Probabilities of the labels.
    Categorical(Vec<f64>),
    /// Weighted Gaussian kernels (mean, sigma, weight) on [low, high] in the internal scale.
    Kernels {
        low: f64,
        high: f64,
        kernels: Vec<(f64, f64, f64)>,
    },
}

fn normal_cdf(x: f64, mu: f64, sigma: f64) -> f64 {
    crate::numeric::normal_cdf((x - mu) / sigma)
}

/// The internal scale of a numeric dimension: bounds and the map into it.
fn scale(domain: &Domain) -> Option<(f64, f64, bool, bool)> {
    match domain {
        Domain::Integer(r) => Some((r.low as f64 - 0.5, r.high as f64 + 0.5, r.log, true)),
        Domain::Real(r) => Some((r.low, r.high, r.log, false)),
        Domain::Categorical(_) => None,
    }
}

fn to_internal(v: f64, log: bool) -> f64 {
    if log {
        v.max(1e-300).ln()
    } else {
        v
    }
}

impl Density {
    fn fit(domain: &Domain, values: &[&Value], prior_weight: f64) -> Density {
        match domain {
            Domain::Categorical(labels) => {
                let k = labels.len() as f64;
                let mut w: Vec<f64> = vec![prior_weight / k; labels.len()];
                for v in values {
                    if let Value::Categorical(l) = v {
                        if let Some(i) = labels.iter().position(|x| x == l) {
                            w[i] += 1.0;
                        }
                    }
                }
                let total: f64 = w.iter().sum();
                Density::Categorical(w.into_iter().map(|x| x / total).collect())
            }
            _ => {
                let (lo, hi, log, _) = scale(domain).expect("numeric");
                let (low, high) = if log {
                    (lo.max(1e-12).ln(), hi.ln())
                } else {
                    (lo, hi)
                };
                let span = (high - low).max(1e-12);
                let mut mus: Vec<f64> = values
                    .iter()
                    .filter_map(|v| match v {
                        Value::Integer(i) => Some(to_internal(*i as f64, log)),
                        Value::Real(r) => Some(to_internal(*r, log)),
                        Value::Categorical(_) => None,
                    })
                    .collect();
                mus.sort_by(f64::total_cmp);
                let floor = span / (1.0 + mus.len() as f64).min(100.0);
                let mut kernels: Vec<(f64, f64, f64)> = mus
                    .iter()
                    .enumerate()
                    .map(|(i, &m)| {
                        // Bandwidth: the larger distance to a neighbour (or a bound).
                        let left = if i > 0 { m - mus[i - 1] } else { m - low };
                        let right = if i + 1 < mus.len() {
                            mus[i + 1] - m
                        } else {
                            high - m
                        };
                        (m, left.max(right).clamp(floor, span), 1.0)
                    })
                    .collect();
                kernels.push(((low + high) / 2.0, span, prior_weight));
                Density::Kernels { low, high, kernels }
            }
        }
    }

    fn log_density(&self, domain: &Domain, value: &Value) -> f64 {
        match (self, value) {
            (Density::Categorical(p), Value::Categorical(l)) => {
                let Domain::Categorical(labels) = domain else {
                    return 0.0;
                };
                labels
                    .iter()
                    .position(|x| x == l)
                    .map_or(f64::NEG_INFINITY, |i| p[i].ln())
            }
            (Density::Kernels { low, high, kernels }, v) => {
                let log = scale(domain).is_some_and(|s| s.2);
                let x = match v {
                    Value::Integer(i) => to_internal(*i as f64, log),
                    Value::Real(r) => to_internal(*r, log),
                    Value::Categorical(_) => return 0.0,
                };
                let total: f64 = kernels.iter().map(|k| k.2).sum();
                let p: f64 = kernels
                    .iter()
                    .map(|&(mu, sigma, w)| {
                        let mass =
                            (normal_cdf(*high, mu, sigma) - normal_cdf(*low, mu, sigma)).max(1e-12);
                        let z = (x - mu) / sigma;
                        w * (-0.5 * z * z).exp()
                            / (sigma * (2.0 * std::f64::consts::PI).sqrt() * mass)
                    })
                    .sum();
                (p / total).max(1e-300).ln()
            }
            _ => 0.0,
        }
    }

    fn sample(&self, domain: &Domain, rng: &mut Rng) -> Value {
        match self {
            Density::Categorical(p) => {
                let Domain::Categorical(labels) = domain else {
                    unreachable!("categorical density on a numeric dimension")
                };
                let mut u = rng.unit();
                for (i, w) in p.iter().enumerate() {
                    if u < *w {
                        return Value::Categorical(labels[i].clone());
                    }
                    u -= w;
                }
                Value::Categorical(labels[labels.len() - 1].clone())
            }
            Density::Kernels { low, high, kernels } => {
                let total: f64 = kernels.iter().map(|k| k.2).sum();
                let mut u = rng.unit() * total;
                let (mu, sigma) = kernels
                    .iter()
                    .find(|k| {
                        u -= k.2;
                        u < 0.0
                    })
                    .map_or((kernels[0].0, kernels[0].1), |k| (k.0, k.1));
                let mut x = mu;
                for _ in 0..32 {
                    x = rng.normal(mu, sigma);
                    if (*low..=*high).contains(&x) {
                        break;
                    }
                }
                let x = x.clamp(*low, *high);
                let log = scale(domain).is_some_and(|s| s.2);
                let v = if log { x.exp() } else { x };
                match domain {
                    Domain::Integer(r) => Value::Integer((v.round() as i64).clamp(r.low, r.high)),
                    Domain::Real(r) => Value::Real(v.clamp(r.low, r.high)),
                    Domain::Categorical(_) => {
                        unreachable!("numeric density on a categorical dimension")
                    }
                }
            }
        }
    }
}

impl Tpe {
    fn suggest(&mut self) -> Assignment {
        // Sorted by index: the observations themselves are not copied.
        let mut sorted: Vec<usize> = (0..self.observations.len()).collect();
        let scores: Vec<f64> = self.observations.iter().map(|o| o.1).collect();
        sorted.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let n_good = ((self.gamma * sorted.len() as f64).ceil() as usize)
            .clamp(1, sorted.len().saturating_sub(1).max(1));
        let (good, bad) = sorted.split_at(n_good);
        let observations = &self.observations;
        let fit = |set: &[usize], d: &Dimension| -> Density {
            let values: Vec<&Value> = set
                .iter()
                .filter_map(|&i| value_of(&observations[i].0, &d.name))
                .collect();
            Density::fit(&d.domain, &values, self.prior_weight)
        };
        let l: Vec<Density> = self.dims.iter().map(|d| fit(good, d)).collect();
        let g: Vec<Density> = self.dims.iter().map(|d| fit(bad, d)).collect();
        let mut best: Option<(Assignment, f64)> = None;
        for _ in 0..self.candidates {
            let mut cand: Assignment = Vec::new();
            let mut ratio = 0.0;
            for (i, d) in self.dims.iter().enumerate() {
                if !is_active(d, &cand) {
                    continue;
                }
                let v = l[i].sample(&d.domain, &mut self.rng);
                ratio += l[i].log_density(&d.domain, &v) - g[i].log_density(&d.domain, &v);
                cand.push(Binding {
                    name: d.name.clone(),
                    value: v,
                });
            }
            // A repeat teaches nothing: the host would only reuse its result.
            if self.proposed.contains(&assignment_text(&cand)) {
                continue;
            }
            if best.as_ref().is_none_or(|(_, r)| ratio > *r) {
                best = Some((cand, ratio));
            }
        }
        match best {
            Some((cand, _)) => cand,
            None => self.unseen_sample(),
        }
    }

    /// A random assignment not proposed before, when one turns up in a
    /// bounded number of draws.
    fn unseen_sample(&mut self) -> Assignment {
        let mut a = sample(&self.dims, &mut self.rng);
        for _ in 0..100 {
            if !self.proposed.contains(&assignment_text(&a)) {
                break;
            }
            a = sample(&self.dims, &mut self.rng);
        }
        a
    }
}

impl Strategy for Tpe {
    const NAME: &'static str = "tpe";
    const DESCRIPTION: &'static str =
        "Tree-structured Parzen Estimator (independent per dimension, conditions respected)";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("startup", "10", "random trials before the model is used"),
            ConfigKey::new("gamma", "0.25", "fraction of results counted as good"),
            ConfigKey::new(
                "candidates",
                "24",
                "draws from the good density per proposal",
            ),
            ConfigKey::new(
                "prior_weight",
                "1.0",
                "weight of the uniform (categorical) or wide (numeric) prior",
            ),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let gamma = setup.config.f64("gamma")?;
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err("tpe: `gamma` must be in (0, 1)".into());
        }
        let prior_weight = setup.config.f64("prior_weight")?;
        if prior_weight.is_nan() || prior_weight <= 0.0 {
            return Err("tpe: `prior_weight` must be positive".into());
        }
        Ok(Tpe {
            dims: setup.dimensions,
            objective: setup.objectives[0].clone(),
            rng: Rng::new(setup.seed),
            startup: setup.config.u64("startup")?.max(1) as usize,
            gamma,
            candidates: setup.config.u64("candidates")?.max(1) as usize,
            prior_weight,
            observations: Vec::new(),
            proposed: HashSet::new(),
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        for _ in 0..max {
            let a = if self.proposed.len() < self.startup || self.observations.len() < 2 {
                self.unseen_sample()
            } else {
                self.suggest()
            };
            self.proposed.insert(assignment_text(&a));
            out.push(Proposal::new(a));
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            // A failed trial (diverged, unbuildable, out of memory) or an
            // infeasible one marks a bad region: it counts as the worst, so
            // the model steers away (a learning rate that diverges is not
            // proposed again and again). A pruned one says nothing final.
            let s = match r.status {
                TrialStatus::Failed | TrialStatus::Infeasible => Some(f64::NEG_INFINITY),
                _ => score(&r, &self.objective),
            };
            if let Some(s) = s {
                self.observations.push((r.proposal.assignment, s));
            }
        }
        Ok(())
    }
}
