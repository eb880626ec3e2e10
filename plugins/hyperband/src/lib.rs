//! Hyperband (Li et al. 2018): brackets of synchronous successive halving.
//! With rungs r_0 < ... < r_K, bracket s (s = K down to 0) starts
//! ceil((K + 1) / (s + 1) * eta^s) configurations at rung K - s; when every
//! trial of a rung is back, the best 1/eta (at least one) continue to the
//! next rung's budget from their checkpoints (`resume-from`). After bracket
//! 0 the brackets start again with new configurations, so it never
//! finishes. While a rung waits for results it proposes nothing (the host
//! asks again after the next result). New configurations come from
//! `sampler` (random, or TPE fitted to the lowest rung as in BOHB).

use nas_plugin_sdk::fidelity::{self, Sampler};
use nas_plugin_sdk::*;
use std::collections::VecDeque;

struct Hyperband {
    budgets: Vec<u32>,
    eta: f64,
    objective: Objective,
    sampler: Sampler,
    /// The bracket running: its first rung is `budgets.len() - 1 - bracket`.
    bracket: usize,
    /// The rung running, as an index into `budgets`.
    rung: usize,
    /// Configurations the bracket started with.
    width: usize,
    /// Proposals of this rung not yet asked for.
    queue: VecDeque<Proposal>,
    /// Proposals of this rung asked for but not told.
    outstanding: usize,
    /// This rung's results: trial, assignment, score (larger is better).
    finished: Vec<(u64, Assignment, f64)>,
}

impl Hyperband {
    fn top(&self) -> usize {
        self.budgets.len() - 1
    }

    /// Starts bracket `s` with new configurations at its first rung.
    fn start_bracket(&mut self, s: usize) -> Result<(), String> {
        self.bracket = s;
        self.rung = self.top() - s;
        let rungs = (self.top() + 1) as f64;
        self.width = (rungs / (s as f64 + 1.0) * self.eta.powi(s as i32)).ceil() as usize;
        self.finished.clear();
        for _ in 0..self.width {
            self.queue.push_back(Proposal {
                assignment: self.sampler.draw()?,
                budget: Some(self.budgets[self.rung]),
                resume_from: None,
                tag: format!("bracket {s} rung {}", self.rung),
            });
        }
        Ok(())
    }

    /// With every result of the rung back: promote its best to the next
    /// rung, or start the next bracket.
    fn advance(&mut self) -> Result<(), String> {
        let step = self.rung + 1 - (self.top() - self.bracket);
        if self.rung < self.top() {
            let keep = ((self.width as f64 / self.eta.powi(step as i32)).floor() as usize).max(1);
            let mut order = std::mem::take(&mut self.finished);
            order.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
            self.rung += 1;
            for (trial, assignment, _) in order.into_iter().filter(|e| e.2.is_finite()).take(keep) {
                self.queue.push_back(Proposal {
                    assignment,
                    budget: Some(self.budgets[self.rung]),
                    resume_from: Some(trial),
                    tag: format!("bracket {} rung {}", self.bracket, self.rung),
                });
            }
            if !self.queue.is_empty() {
                return Ok(());
            }
        }
        let next = if self.bracket == 0 {
            self.top()
        } else {
            self.bracket - 1
        };
        self.start_bracket(next)
    }
}

impl Strategy for Hyperband {
    const NAME: &'static str = "hyperband";
    const DESCRIPTION: &'static str =
        "Hyperband: brackets of successive halving; promotions continue training from checkpoints";

    fn config_keys() -> Vec<ConfigKey> {
        fidelity::config_keys()
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let (budgets, eta) = fidelity::rungs(&setup.config, Self::NAME)?;
        let mut hb = Hyperband {
            sampler: Sampler::new(&setup.config, &setup, Self::NAME)?,
            budgets,
            eta,
            objective: setup.objectives[0].clone(),
            bracket: 0,
            rung: 0,
            width: 0,
            queue: VecDeque::new(),
            outstanding: 0,
            finished: Vec::new(),
        };
        let top = hb.top();
        hb.start_bracket(top)?;
        Ok(hb)
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        while out.len() < max as usize {
            if self.queue.is_empty() {
                if self.outstanding > 0 {
                    break;
                }
                self.advance()?;
            }
            let p = self.queue.pop_front().expect("advance fills the queue");
            self.outstanding += 1;
            out.push(p);
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            self.outstanding = self.outstanding.saturating_sub(1);
            if r.proposal.resume_from.is_none() {
                self.sampler.observe(&r)?;
            }
            let s = score(&r, &self.objective).unwrap_or(f64::NEG_INFINITY);
            self.finished.push((r.trial_id, r.proposal.assignment, s));
        }
        Ok(())
    }
}

export_strategy!(Hyperband);
