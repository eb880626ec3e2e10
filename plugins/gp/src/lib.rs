//! Gaussian-process Bayesian optimisation for mixed, conditional spaces.
//!
//! After `initial` random points, each proposal maximises expected
//! improvement under a Gaussian process fitted to the results so far: a
//! Matérn-5/2 kernel on a distance that adds squared differences of numeric
//! dimensions (on [0, 1], log scale where asked) and a weighted count of
//! categorical mismatches (a dimension active in only one of two points
//! counts as one), with the length scale, the mismatch weight and the noise
//! chosen by marginal likelihood on a grid ([`model`]). Candidates are
//! `candidates` random points, perturbations of the best five results at
//! three step sizes, and a short hill climb on expected improvement from the best
//! of them; points proposed before are skipped. Failed, pruned and
//! infeasible results count as the worst score seen, so the model learns to
//! avoid them. Proposals of one ask, and proposals still being evaluated,
//! enter the model at its predicted mean ("kriging believer"), so a batch
//! spreads out. The model keeps the `max_points` best results (the cost of a
//! fit grows with their cube). Optimises the first objective. Never
//! finishes.

mod model;

use model::{Coord, Hyper, Kinds, Model};
use nas_plugin_sdk::numeric::{from_unit, normal_cdf, normal_pdf, to_unit};
use nas_plugin_sdk::space::{assignment_text, complete, sample_new, value_of};
use nas_plugin_sdk::*;
use std::collections::HashSet;

struct Gp {
    dims: Vec<Dimension>,
    objective: Objective,
    rng: Rng,
    initial: usize,
    candidates: usize,
    max_points: usize,
    kinds: Kinds,
    /// Told results: assignment and score (larger is better; none when not completed).
    observations: Vec<(Assignment, Option<f64>)>,
    /// Proposed and not yet told.
    pending: Vec<Assignment>,
    /// Texts of every proposal made.
    proposed: HashSet<String>,
    /// The hyperparameters of the last fit, where the next search starts.
    hyper: Hyper,
    /// Training-set size at the last search of the whole grid.
    full_fit_at: usize,
}

/// What the model is fitted to.
struct TrainingSet {
    /// Encoded assignments, best first.
    points: Vec<Vec<Coord>>,
    /// Their standardised scores.
    y: Vec<f64>,
    /// The assignments themselves.
    ranked: Vec<Assignment>,
}

/// Scores shifted and scaled to mean 0 and variance 1 (a constant set to 0).
fn standardise(v: &[f64]) -> Vec<f64> {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
    v.iter().map(|x| (x - mean) / sd).collect()
}

/// Expected improvement over `best` of a normal with `mean` and `sd`.
fn expected_improvement(mean: f64, sd: f64, best: f64) -> f64 {
    let gap = mean - best;
    let z = gap / sd;
    gap * normal_cdf(z) + sd * normal_pdf(z)
}

impl Gp {
    fn encode(&self, a: &[Binding]) -> Vec<Coord> {
        self.dims
            .iter()
            .map(|d| match (&d.domain, value_of(a, &d.name)) {
                (_, None) => Coord::Off,
                (Domain::Categorical(labels), Some(Value::Categorical(l))) => {
                    Coord::Cat(labels.iter().position(|x| x == l).unwrap_or(usize::MAX))
                }
                (domain, Some(v)) => Coord::Num(to_unit(domain, v).unwrap_or(0.5)),
            })
            .collect()
    }

    /// A copy of `a` with every numeric dimension moved by a Gaussian step
    /// of `sigma` (on [0, 1]) and each categorical one resampled with
    /// probability one in the number of active dimensions.
    fn perturb(&mut self, a: &[Binding], sigma: f64) -> Assignment {
        let rate = 1.0 / a.len().max(1) as f64;
        let mut keep = Vec::with_capacity(a.len());
        for b in a {
            let Some(d) = self.dims.iter().find(|d| d.name == b.name) else {
                continue;
            };
            let value = match &d.domain {
                Domain::Categorical(labels) if self.rng.unit() < rate => {
                    Value::Categorical(self.rng.choose(labels).clone())
                }
                Domain::Categorical(_) => b.value.clone(),
                domain => {
                    let u = to_unit(domain, &b.value).unwrap_or(0.5);
                    let step = self.rng.normal(0.0, sigma);
                    from_unit(domain, u + step).unwrap_or_else(|| b.value.clone())
                }
            };
            keep.push(Binding {
                name: b.name.clone(),
                value,
            });
        }
        let out = complete(&self.dims, &keep, &mut self.rng);
        if out.as_slice() == a {
            mutate(&self.dims, a, &mut self.rng)
        } else {
            out
        }
    }

    /// A random point not proposed before (or, in a space nearly used up, any).
    fn fresh_sample(&mut self) -> Assignment {
        let seen = &self.proposed;
        sample_new(&self.dims, &mut self.rng, |t| seen.contains(t))
    }

    /// The training set: the `max_points` best results (failed ones at the
    /// worst score), scores standardised; `None` before any completed result.
    fn training_set(&self) -> Option<TrainingSet> {
        let worst = self
            .observations
            .iter()
            .filter_map(|(_, s)| *s)
            .min_by(f64::total_cmp)?;
        let mut scored: Vec<(&Assignment, f64)> = self
            .observations
            .iter()
            .map(|(a, s)| (a, s.unwrap_or(worst)))
            .collect();
        // Stable: equal scores keep their order, so the set is deterministic.
        scored.sort_by(|x, y| y.1.total_cmp(&x.1));
        scored.truncate(self.max_points);
        let raw: Vec<f64> = scored.iter().map(|s| s.1).collect();
        let y = standardise(&raw);
        Some(TrainingSet {
            points: scored.iter().map(|(a, _)| self.encode(a)).collect(),
            y,
            ranked: scored.iter().map(|(a, _)| (*a).clone()).collect(),
        })
    }

    /// The candidate with the largest expected improvement that was not proposed before.
    fn best_candidate(
        &mut self,
        model: &Model,
        best: f64,
        elite: &[Assignment],
    ) -> Option<Assignment> {
        let mut pool: Vec<Assignment> = (0..self.candidates)
            .map(|_| sample(&self.dims, &mut self.rng))
            .collect();
        for (i, e) in elite.iter().enumerate() {
            for k in 0..30 {
                let sigma = [0.2, 0.05, 0.01][(i + k) % 3];
                pool.push(self.perturb(e, sigma));
            }
        }
        let mut scored: Vec<(f64, Assignment)> = Vec::new();
        for a in pool {
            if self.proposed.contains(&assignment_text(&a)) {
                continue;
            }
            let (mean, sd) = model.predict(&self.encode(&a));
            scored.push((expected_improvement(mean, sd, best), a));
        }
        scored.sort_by(|x, y| y.0.total_cmp(&x.0));
        scored.truncate(3);
        // A short hill climb on expected improvement from the best few.
        let mut winner: Option<(f64, Assignment)> = None;
        for (mut ei, mut a) in scored {
            for step in 0..20 {
                let b = self.perturb(&a, [0.02, 0.005][step % 2]);
                if self.proposed.contains(&assignment_text(&b)) {
                    continue;
                }
                let (mean, sd) = model.predict(&self.encode(&b));
                let e = expected_improvement(mean, sd, best);
                if e > ei {
                    (ei, a) = (e, b);
                }
            }
            if winner.as_ref().is_none_or(|(w, _)| ei > *w) {
                winner = Some((ei, a));
            }
        }
        winner.map(|(_, a)| a)
    }

    /// Proposals from the model; fewer than `max` (or none) when it cannot be fitted.
    fn model_proposals(&mut self, max: usize) -> Vec<Assignment> {
        let Some(TrainingSet {
            mut points,
            mut y,
            ranked,
        }) = self.training_set()
        else {
            return Vec::new();
        };
        let n = points.len();
        // The whole grid for small sets and whenever the set has doubled, up
        // to 64 results (a fit costs the cube of the set); a local search of
        // the grid from the last fit otherwise.
        let full = n <= 16 || (n >= 2 * self.full_fit_at && n <= 64);
        let Some(fitted) = Model::best(&points, &y, self.hyper, self.kinds, full) else {
            return Vec::new();
        };
        if full {
            self.full_fit_at = n;
        }
        self.hyper = fitted.hyper;
        let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let elite: Vec<Assignment> = ranked.into_iter().take(5).collect();
        let believe =
            |model: &Model, points: &mut Vec<Vec<Coord>>, y: &mut Vec<f64>, x: Vec<Coord>| {
                let (mean, _) = model.predict(&x);
                points.push(x);
                y.push(mean);
            };
        let mut model = fitted;
        let pending: Vec<Vec<Coord>> = self.pending.iter().map(|a| self.encode(a)).collect();
        if !pending.is_empty() {
            for x in pending {
                believe(&model, &mut points, &mut y, x);
            }
            match model.refit(&points, &y, self.kinds) {
                Some(m) => model = m,
                None => return Vec::new(),
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(a) = self.best_candidate(&model, best, &elite) else {
                break;
            };
            self.proposed.insert(assignment_text(&a));
            let x = self.encode(&a);
            out.push(a);
            if out.len() < max {
                believe(&model, &mut points, &mut y, x);
                match model.refit(&points, &y, self.kinds) {
                    Some(m) => model = m,
                    None => break,
                }
            }
        }
        out
    }
}

impl Strategy for Gp {
    const NAME: &'static str = "gp";
    const DESCRIPTION: &'static str =
        "Bayesian optimisation: a Gaussian process over mixed, conditional dimensions and expected improvement";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("initial", "10", "random points before the model proposes"),
            ConfigKey::new(
                "candidates",
                "500",
                "random candidates scored per proposal (besides perturbations of the best results)",
            ),
            ConfigKey::new(
                "max_points",
                "256",
                "results the model is fitted to (the best ones); a fit costs their cube",
            ),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let read = |key: &str, low: u64, high: u64| -> Result<usize, String> {
            let v = setup.config.u64(key)?;
            if (low..=high).contains(&v) {
                Ok(v as usize)
            } else {
                Err(format!(
                    "gp: `{key}` = {v} must be between {low} and {high}"
                ))
            }
        };
        let initial = read("initial", 1, 10_000)?;
        let candidates = read("candidates", 1, 100_000)?;
        let max_points = read("max_points", 2, 2_000)?;
        let kinds = Kinds {
            numeric: setup
                .dimensions
                .iter()
                .filter(|d| !matches!(d.domain, Domain::Categorical(_)))
                .count(),
            categorical: setup
                .dimensions
                .iter()
                .any(|d| matches!(d.domain, Domain::Categorical(_)) || d.condition.is_some()),
        };
        Ok(Gp {
            dims: setup.dimensions,
            objective: setup.objectives[0].clone(),
            rng: Rng::new(setup.seed),
            initial,
            candidates,
            max_points,
            kinds,
            observations: Vec::new(),
            pending: Vec::new(),
            proposed: HashSet::new(),
            hyper: Hyper::middle(),
            full_fit_at: 0,
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let max = max as usize;
        let mut out = if self.proposed.len() >= self.initial {
            self.model_proposals(max)
        } else {
            Vec::new()
        };
        // Random points for the initial design, and whenever the model cannot propose.
        while out.len() < max {
            let a = self.fresh_sample();
            self.proposed.insert(assignment_text(&a));
            out.push(a);
        }
        self.pending.extend(out.iter().cloned());
        Ok(out.into_iter().map(Proposal::new).collect())
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            if let Some(i) = self
                .pending
                .iter()
                .position(|a| *a == r.proposal.assignment)
            {
                self.pending.remove(i);
            }
            let s = score(&r, &self.objective);
            self.observations.push((r.proposal.assignment, s));
        }
        Ok(())
    }
}

export_strategy!(Gp);
