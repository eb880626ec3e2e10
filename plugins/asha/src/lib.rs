//! Asynchronous Successive Halving (ASHA; Li et al. 2020). New
//! configurations start at the lowest rung's budget; whenever a slot is
//! free, the strategy first looks for a promotion, from the highest rung
//! down: a trial among the best 1/eta of those finished in its rung, not
//! promoted before, goes to the next rung's budget and continues its
//! training (`resume-from` its trial) instead of starting again. With no
//! promotion ready it samples a new configuration (`sampler`: random, or TPE
//! fitted to the lowest rung as in BOHB). Failed, pruned and infeasible
//! trials rank last. It never waits for results and never finishes.

use nas_plugin_sdk::fidelity::{self, Sampler};
use nas_plugin_sdk::*;
use std::collections::HashSet;

/// One finished trial in a rung.
struct Entry {
    trial: u64,
    assignment: Assignment,
    /// Larger is better; failed trials rank last.
    score: f64,
}

struct Asha {
    budgets: Vec<u32>,
    eta: f64,
    objective: Objective,
    sampler: Sampler,
    /// Finished trials per rung.
    rungs: Vec<Vec<Entry>>,
    /// Trials already promoted out of their rung.
    promoted: HashSet<u64>,
}

impl Asha {
    /// The next promotion, from the highest rung down, if one is ready.
    fn promotion(&mut self) -> Option<Proposal> {
        for k in (0..self.budgets.len() - 1).rev() {
            let rung = &self.rungs[k];
            let top = (rung.len() as f64 / self.eta).floor() as usize;
            let mut order: Vec<&Entry> = rung.iter().collect();
            order.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.trial.cmp(&b.trial)));
            if let Some(e) = order
                .into_iter()
                .take(top)
                .find(|e| e.score.is_finite() && !self.promoted.contains(&e.trial))
            {
                self.promoted.insert(e.trial);
                return Some(Proposal {
                    assignment: e.assignment.clone(),
                    budget: Some(self.budgets[k + 1]),
                    resume_from: Some(e.trial),
                    tag: format!("rung {}", k + 1),
                });
            }
        }
        None
    }
}

impl Strategy for Asha {
    const NAME: &'static str = "asha";
    const DESCRIPTION: &'static str =
        "Asynchronous successive halving: promotions continue training from checkpoints";

    fn config_keys() -> Vec<ConfigKey> {
        fidelity::config_keys()
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let (budgets, eta) = fidelity::rungs(&setup.config, Self::NAME)?;
        Ok(Asha {
            rungs: budgets.iter().map(|_| Vec::new()).collect(),
            sampler: Sampler::new(&setup.config, &setup, Self::NAME)?,
            budgets,
            eta,
            objective: setup.objectives[0].clone(),
            promoted: HashSet::new(),
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        for _ in 0..max {
            let proposal = match self.promotion() {
                Some(p) => p,
                None => Proposal {
                    assignment: self.sampler.draw()?,
                    budget: Some(self.budgets[0]),
                    resume_from: None,
                    tag: "rung 0".into(),
                },
            };
            out.push(proposal);
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            let budget = r.proposal.budget.unwrap_or(self.budgets[0]);
            let Some(k) = self.budgets.iter().position(|b| *b == budget) else {
                continue;
            };
            if k == 0 {
                self.sampler.observe(&r)?;
            }
            self.rungs[k].push(Entry {
                trial: r.trial_id,
                assignment: r.proposal.assignment.clone(),
                score: score(&r, &self.objective).unwrap_or(f64::NEG_INFINITY),
            });
        }
        Ok(())
    }
}

export_strategy!(Asha);
