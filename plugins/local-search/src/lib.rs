//! Local search as White et al. (2021) found it state of the art on NAS
//! benchmarks: start from the best of `initial` random points; evaluate the
//! current point's whole one-dimension neighbourhood
//! ([`nas_plugin_sdk::space::neighbours`]) in random order and move to the
//! first neighbour that improves on it; at a local optimum (no neighbour
//! improves) restart from new random points. Points evaluated before are
//! never proposed again. Never finishes.

use nas_plugin_sdk::space::{assignment_text, neighbours, sample_new};
use nas_plugin_sdk::*;
use std::collections::{HashMap, VecDeque};

struct LocalSearch {
    dims: Vec<Dimension>,
    objective: Objective,
    rng: Rng,
    initial: usize,
    /// The point being improved and its score.
    current: Option<(Assignment, f64)>,
    /// A (re)start's random points not yet handed out.
    starts: usize,
    /// The current point's neighbours not yet handed out.
    queue: VecDeque<Assignment>,
    /// Proposals not yet told.
    pending: usize,
    /// Best point told since the last (re)start, for choosing where to climb from.
    start_best: Option<(Assignment, f64)>,
    /// Every proposed assignment by text, with its score once told (failed: none).
    known: HashMap<String, Option<f64>>,
}

impl LocalSearch {
    /// A random point not proposed before (or, in a space nearly used up, any).
    fn fresh_sample(&mut self) -> Assignment {
        let seen = &self.known;
        sample_new(&self.dims, &mut self.rng, |t| seen.contains_key(t))
    }

    /// Queues the unevaluated neighbours of the current point, shuffled.
    fn queue_neighbours(&mut self) {
        self.queue.clear();
        let Some((center, _)) = &self.current else {
            return;
        };
        let mut fresh: Vec<Assignment> = neighbours(&self.dims, center, &mut self.rng)
            .into_iter()
            .filter(|n| !self.known.contains_key(&assignment_text(n)))
            .collect();
        // Fisher-Yates with the seeded generator.
        for i in (1..fresh.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            fresh.swap(i, j);
        }
        self.queue = fresh.into();
    }

    fn restart(&mut self) {
        self.current = None;
        self.start_best = None;
        self.queue.clear();
        self.starts = self.initial;
    }
}

impl Strategy for LocalSearch {
    const NAME: &'static str = "local-search";
    const DESCRIPTION: &'static str =
        "Local search: first improvement over the full one-dimension neighbourhood, random restart at a local optimum";

    fn config_keys() -> Vec<ConfigKey> {
        vec![ConfigKey::new(
            "initial",
            "10",
            "random points evaluated at each (re)start; the climb starts from their best",
        )]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let initial = setup.config.u64("initial")?;
        if !(1..=10_000).contains(&initial) {
            return Err(format!(
                "local-search: `initial` = {initial} must be between 1 and 10000"
            ));
        }
        Ok(LocalSearch {
            dims: setup.dimensions,
            objective: setup.objectives[0].clone(),
            rng: Rng::new(setup.seed),
            initial: initial as usize,
            current: None,
            starts: initial as usize,
            queue: VecDeque::new(),
            pending: 0,
            start_best: None,
            known: HashMap::new(),
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        while out.len() < max as usize {
            let next = if self.starts > 0 {
                self.starts -= 1;
                self.fresh_sample()
            } else if let Some(n) = self.queue.pop_front() {
                n
            } else if self.pending > 0 {
                // Wait for the outstanding results before deciding where to go.
                break;
            } else {
                // A local optimum (the whole neighbourhood evaluated, none
                // better), or every start point failed: start afresh.
                self.restart();
                continue;
            };
            self.known.insert(assignment_text(&next), None);
            self.pending += 1;
            out.push(Proposal::new(next));
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            self.pending = self.pending.saturating_sub(1);
            let s = score(&r, &self.objective);
            let text = assignment_text(&r.proposal.assignment);
            self.known.insert(text, s);
            if let Some(s) = s {
                let point = (r.proposal.assignment, s);
                match &self.current {
                    None => {
                        if self.start_best.as_ref().is_none_or(|(_, b)| s > *b) {
                            self.start_best = Some(point);
                        }
                    }
                    Some((_, c)) if s > *c => {
                        self.current = Some(point);
                        self.queue_neighbours();
                    }
                    Some(_) => {}
                }
            }
            if self.current.is_none() && self.starts == 0 && self.pending == 0 {
                if let Some(best) = self.start_best.take() {
                    self.current = Some(best);
                    self.queue_neighbours();
                }
            }
        }
        Ok(())
    }
}

export_strategy!(LocalSearch);
