//! NSGA-II (Deb et al. 2002) for two or more objectives: a population of
//! `population` assignments; each generation's children come from binary
//! tournaments on (non-domination rank, crowding distance), uniform
//! crossover with probability `crossover_rate` and one-dimension mutation;
//! parents and children together are sorted into non-dominated fronts and
//! the best `population` survive, by rank and then by crowding distance.
//! Conditions are respected; an assignment is not proposed twice. With one
//! objective it is a plain elitist genetic algorithm. Never finishes.

use nas_plugin_sdk::space::{assignment_text, complete, value_of};
use nas_plugin_sdk::*;
use std::collections::HashSet;

/// An evaluated member: assignment and objective scores (larger is better).
#[derive(Clone)]
struct Member {
    assignment: Assignment,
    scores: Vec<f64>,
}

struct Nsga2 {
    dims: Vec<Dimension>,
    objectives: Vec<Objective>,
    rng: Rng,
    size: usize,
    crossover_rate: f64,
    population: Vec<Member>,
    children: Vec<Member>,
    /// Ranks and crowding distances of `population`.
    fitness: Vec<(usize, f64)>,
    proposed: HashSet<String>,
    pending: usize,
}

fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y)
}

/// Non-dominated sorting and crowding distance: (rank, crowding) per member.
fn rank_and_crowd(members: &[Member]) -> Vec<(usize, f64)> {
    let n = members.len();
    let mut rank = vec![usize::MAX; n];
    let mut remaining: Vec<usize> = (0..n).collect();
    let mut level = 0;
    while !remaining.is_empty() {
        let front: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&i| {
                !remaining
                    .iter()
                    .any(|&j| dominates(&members[j].scores, &members[i].scores))
            })
            .collect();
        for &i in &front {
            rank[i] = level;
        }
        remaining.retain(|i| !front.contains(i));
        level += 1;
    }
    let mut crowd = vec![0.0; n];
    let objectives = members.first().map_or(0, |m| m.scores.len());
    for r in 0..level {
        let front: Vec<usize> = (0..n).filter(|&i| rank[i] == r).collect();
        for k in 0..objectives {
            let mut sorted = front.clone();
            sorted.sort_by(|&a, &b| members[a].scores[k].total_cmp(&members[b].scores[k]));
            let (lo, hi) = (
                members[sorted[0]].scores[k],
                members[sorted[sorted.len() - 1]].scores[k],
            );
            crowd[sorted[0]] = f64::INFINITY;
            crowd[sorted[sorted.len() - 1]] = f64::INFINITY;
            if hi > lo {
                for w in 1..sorted.len().saturating_sub(1) {
                    crowd[sorted[w]] += (members[sorted[w + 1]].scores[k]
                        - members[sorted[w - 1]].scores[k])
                        / (hi - lo);
                }
            }
        }
    }
    rank.into_iter().zip(crowd).collect()
}

impl Nsga2 {
    fn better(&self, a: usize, b: usize) -> bool {
        let (fa, fb) = (self.fitness[a], self.fitness[b]);
        fa.0 < fb.0 || (fa.0 == fb.0 && fa.1 > fb.1)
    }

    fn tournament(&mut self) -> Assignment {
        let n = self.population.len() as u64;
        let (a, b) = (self.rng.below(n) as usize, self.rng.below(n) as usize);
        self.population[if self.better(a, b) { a } else { b }]
            .assignment
            .clone()
    }

    fn child(&mut self) -> Assignment {
        let a = self.tournament();
        let mut c = if self.rng.unit() < self.crossover_rate {
            let b = self.tournament();
            let mut keep = Vec::new();
            for d in &self.dims {
                let pick = match (value_of(&a, &d.name), value_of(&b, &d.name)) {
                    (Some(x), Some(y)) => Some(if self.rng.below(2) == 0 { x } else { y }),
                    (x, y) => x.or(y),
                };
                if let Some(v) = pick {
                    keep.push(Binding {
                        name: d.name.clone(),
                        value: v.clone(),
                    });
                }
            }
            complete(&self.dims, &keep, &mut self.rng)
        } else {
            a
        };
        c = mutate(&self.dims, &c, &mut self.rng);
        // Prefer something new: the host would only reuse a repeat's result.
        for _ in 0..20 {
            if !self.proposed.contains(&assignment_text(&c)) {
                break;
            }
            c = mutate(&self.dims, &c, &mut self.rng);
        }
        c
    }

    /// Parents and children together; the best `size` survive.
    fn select(&mut self) {
        let mut all: Vec<Member> = self
            .population
            .drain(..)
            .chain(self.children.drain(..))
            .collect();
        let fit = rank_and_crowd(&all);
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&a, &b| fit[a].0.cmp(&fit[b].0).then(fit[b].1.total_cmp(&fit[a].1)));
        order.truncate(self.size);
        let mut keep = vec![false; all.len()];
        order.iter().for_each(|&i| keep[i] = true);
        let mut i = 0;
        all.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        self.population = all;
        self.fitness = rank_and_crowd(&self.population);
    }
}

impl Strategy for Nsga2 {
    const NAME: &'static str = "nsga2";
    const DESCRIPTION: &'static str =
        "NSGA-II multi-objective search: non-dominated sorting and crowding distance";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("population", "20", "members per generation"),
            ConfigKey::new(
                "crossover_rate",
                "0.9",
                "probability that a child is a crossover of two parents",
            ),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let rate = setup.config.f64("crossover_rate")?;
        if !(0.0..=1.0).contains(&rate) {
            return Err("nsga2: `crossover_rate` must be in [0, 1]".into());
        }
        Ok(Nsga2 {
            dims: setup.dimensions,
            objectives: setup.objectives,
            rng: Rng::new(setup.seed),
            size: setup.config.u64("population")?.max(4) as usize,
            crossover_rate: rate,
            population: Vec::new(),
            children: Vec::new(),
            fitness: Vec::new(),
            proposed: HashSet::new(),
            pending: 0,
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        for _ in 0..max {
            let initial =
                self.population.len() + self.pending < self.size && self.fitness.is_empty();
            let a = if initial || self.population.is_empty() {
                sample(&self.dims, &mut self.rng)
            } else {
                if self.fitness.len() != self.population.len() {
                    // Failed initial trials left the population short: rank what there is.
                    self.fitness = rank_and_crowd(&self.population);
                }
                self.child()
            };
            self.proposed.insert(assignment_text(&a));
            self.pending += 1;
            out.push(Proposal::new(a));
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            self.pending = self.pending.saturating_sub(1);
            let scores: Option<Vec<f64>> = self.objectives.iter().map(|o| score(&r, o)).collect();
            let Some(scores) = scores else { continue };
            let member = Member {
                assignment: r.proposal.assignment,
                scores,
            };
            if self.fitness.is_empty() {
                self.population.push(member);
                if self.population.len() >= self.size {
                    self.fitness = rank_and_crowd(&self.population);
                }
            } else {
                self.children.push(member);
                if self.children.len() >= self.size {
                    self.select();
                }
            }
        }
        Ok(())
    }
}

export_strategy!(Nsga2);
