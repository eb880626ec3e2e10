//! Greedy local search (hill climbing): start from a random point, evaluate
//! `neighbours` neighbours that differ in one dimension (conditions
//! respected), move to the best improvement, and restart from a new random
//! point when no neighbour improves. Finishes after `restarts` restarts
//! (0: never).

use nas_plugin_sdk::space::assignment_text;
use nas_plugin_sdk::*;
use std::collections::{HashMap, VecDeque};

struct Greedy {
    dims: Vec<Dimension>,
    objective: Objective,
    rng: Rng,
    neighbours: usize,
    restarts: u64,
    restarts_done: u64,
    /// The point being improved and its score.
    current: Option<(Assignment, f64)>,
    /// Proposals not yet handed out.
    queue: VecDeque<Assignment>,
    /// Proposed and not yet told, by assignment text.
    pending: usize,
    /// Best neighbour of this round so far.
    round_best: Option<(Assignment, f64)>,
    /// Scores of every told assignment, by text (failed: none).
    known: HashMap<String, Option<f64>>,
}

impl Greedy {
    fn start_round(&mut self) {
        match &self.current {
            None => {
                self.queue.push_back(sample(&self.dims, &mut self.rng));
            }
            Some((center, _)) => {
                let center = center.clone();
                let mut seen: Vec<String> = vec![assignment_text(&center)];
                // Distinct one-dimension changes; small spaces may have fewer.
                for _ in 0..self.neighbours * 10 {
                    if self.queue.len() >= self.neighbours {
                        break;
                    }
                    let n = mutate(&self.dims, &center, &mut self.rng);
                    let text = assignment_text(&n);
                    if seen.contains(&text) {
                        continue;
                    }
                    seen.push(text.clone());
                    match self.known.get(&text) {
                        // Already evaluated: it counts for this round without a new trial.
                        Some(known) => {
                            if let Some(s) = *known {
                                if self.round_best.as_ref().is_none_or(|(_, b)| s > *b) {
                                    self.round_best = Some((n, s));
                                }
                            }
                        }
                        None => self.queue.push_back(n),
                    }
                }
            }
        }
    }

    /// Ends a round: move to the best improvement or restart.
    fn finish_round(&mut self) {
        let improved = match (&self.round_best, &self.current) {
            (Some((_, b)), Some((_, c))) => b > c,
            (Some(_), None) => true,
            _ => false,
        };
        if improved {
            self.current = self.round_best.take();
        } else {
            self.current = None;
            self.round_best = None;
            self.restarts_done += 1;
        }
    }
}

impl Strategy for Greedy {
    const NAME: &'static str = "greedy";
    const DESCRIPTION: &'static str =
        "Hill climbing over one-dimension neighbours, with random restarts";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("neighbours", "8", "neighbours evaluated per step"),
            ConfigKey::new(
                "restarts",
                "0",
                "finish after this many restarts (0: never finish)",
            ),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        Ok(Greedy {
            dims: setup.dimensions,
            objective: setup.objectives[0].clone(),
            rng: Rng::new(setup.seed),
            neighbours: setup.config.u64("neighbours")?.max(1) as usize,
            restarts: setup.config.u64("restarts")?,
            restarts_done: 0,
            current: None,
            queue: VecDeque::new(),
            pending: 0,
            round_best: None,
            known: HashMap::new(),
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        let mut rounds_without_proposals = 0;
        while out.len() < max as usize {
            if self.restarts > 0 && self.restarts_done >= self.restarts {
                break;
            }
            if self.queue.is_empty() {
                if self.pending > 0 {
                    // Waiting for this round's results: explore meanwhile.
                    out.push(Proposal {
                        tag: "explore".into(),
                        ..Proposal::new(sample(&self.dims, &mut self.rng))
                    });
                    continue;
                }
                self.start_round();
                if self.queue.is_empty() {
                    // Every neighbour was known: the round is decided already.
                    self.finish_round();
                    rounds_without_proposals += 1;
                    if rounds_without_proposals > 1000 {
                        break; // The reachable space is exhausted.
                    }
                    continue;
                }
            }
            let Some(next) = self.queue.pop_front() else {
                break;
            };
            self.pending += 1;
            out.push(Proposal {
                tag: "round".into(),
                ..Proposal::new(next)
            });
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            let s = score(&r, &self.objective);
            self.known
                .insert(assignment_text(&r.proposal.assignment), s);
            if r.proposal.tag != "round" {
                continue;
            }
            self.pending = self.pending.saturating_sub(1);
            if let Some(s) = s {
                if self.round_best.as_ref().is_none_or(|(_, b)| s > *b) {
                    self.round_best = Some((r.proposal.assignment.clone(), s));
                }
            }
            if self.pending == 0 && self.queue.is_empty() {
                self.finish_round();
            }
        }
        Ok(())
    }
}

export_strategy!(Greedy);
