//! Evolutionary search. `mode = "regularized"` (default): regularized
//! evolution (Real et al. 2019): a population of the last `population`
//! results; each child mutates one dimension of the best of `sample_size`
//! members drawn at random; the oldest member leaves when a child joins.
//! `mode = "genetic"`: a generational genetic algorithm: tournament selection
//! of size `sample_size`, uniform crossover, per-dimension mutation with
//! probability `mutation_rate`, and the best `elitism` members carried over.
//! Both respect conditional dimensions and never finish.

use nas_plugin_sdk::space::{complete, value_of};
use nas_plugin_sdk::*;
use std::collections::VecDeque;

#[derive(PartialEq)]
enum Mode {
    Regularized,
    Genetic,
}

struct Evolution {
    dims: Vec<Dimension>,
    objective: Objective,
    rng: Rng,
    mode: Mode,
    size: usize,
    sample_size: usize,
    mutation_rate: f64,
    elitism: usize,
    /// Evaluated members, oldest first, with their scores.
    population: VecDeque<(Assignment, f64)>,
    /// Genetic mode: the generation's children told so far.
    children: Vec<(Assignment, f64)>,
    /// Proposals not yet told.
    pending: usize,
}

impl Evolution {
    /// The best of `sample_size` members drawn at random.
    fn tournament(&mut self) -> Assignment {
        let mut best: Option<&(Assignment, f64)> = None;
        for _ in 0..self.sample_size {
            let i = self.rng.below(self.population.len() as u64) as usize;
            let m = &self.population[i];
            if best.is_none_or(|b| m.1 > b.1) {
                best = Some(m);
            }
        }
        best.expect("population is not empty").0.clone()
    }

    /// Each dimension from either parent, then re-completed for conditions.
    fn crossover(&mut self, a: &Assignment, b: &Assignment) -> Assignment {
        let mut keep = Vec::new();
        for d in &self.dims {
            let from = match (value_of(a, &d.name), value_of(b, &d.name)) {
                (Some(x), Some(y)) => Some(if self.rng.below(2) == 0 { x } else { y }),
                (x, y) => x.or(y),
            };
            if let Some(v) = from {
                keep.push(Binding {
                    name: d.name.clone(),
                    value: v.clone(),
                });
            }
        }
        complete(&self.dims, &keep, &mut self.rng)
    }

    /// Resamples each active dimension with probability `mutation_rate`.
    fn mutate_each(&mut self, a: Assignment) -> Assignment {
        let keep: Vec<Binding> = a
            .into_iter()
            .filter(|_| self.rng.unit() >= self.mutation_rate)
            .collect();
        complete(&self.dims, &keep, &mut self.rng)
    }

    fn child(&mut self) -> Assignment {
        match self.mode {
            Mode::Regularized => {
                let parent = self.tournament();
                mutate(&self.dims, &parent, &mut self.rng)
            }
            Mode::Genetic => {
                let (a, b) = (self.tournament(), self.tournament());
                let c = self.crossover(&a, &b);
                self.mutate_each(c)
            }
        }
    }

    /// Genetic mode: the next generation from the elites and the children.
    fn next_generation(&mut self) {
        let mut old: Vec<(Assignment, f64)> = self.population.drain(..).collect();
        old.sort_by(|x, y| y.1.total_cmp(&x.1));
        old.truncate(self.elitism);
        let mut next: Vec<(Assignment, f64)> =
            old.into_iter().chain(self.children.drain(..)).collect();
        next.sort_by(|x, y| y.1.total_cmp(&x.1));
        next.truncate(self.size);
        self.population = next.into();
    }
}

impl Strategy for Evolution {
    const NAME: &'static str = "evolution";
    const DESCRIPTION: &'static str = "Regularized evolution (aging tournament + mutation), or a genetic algorithm with mode = \"genetic\"";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "mode",
                r#""regularized""#,
                "\"regularized\" (Real et al. 2019) or \"genetic\"",
            ),
            ConfigKey::new("population", "20", "members of the population"),
            ConfigKey::new("sample_size", "5", "members drawn per tournament"),
            ConfigKey::new(
                "mutation_rate",
                "0.2",
                "genetic: probability that a child's dimension is resampled",
            ),
            ConfigKey::new(
                "elitism",
                "2",
                "genetic: best members carried into the next generation",
            ),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let mode = match setup.config.string("mode")?.as_str() {
            "regularized" => Mode::Regularized,
            "genetic" => Mode::Genetic,
            other => {
                return Err(format!(
                    "evolution: `mode` must be \"regularized\" or \"genetic\", got `{other}`"
                ))
            }
        };
        let size = setup.config.u64("population")?.max(2) as usize;
        let rate = setup.config.f64("mutation_rate")?;
        if !(0.0..=1.0).contains(&rate) {
            return Err("evolution: `mutation_rate` must be in [0, 1]".into());
        }
        Ok(Evolution {
            dims: setup.dimensions,
            objective: setup.objectives[0].clone(),
            rng: Rng::new(setup.seed),
            mode,
            size,
            sample_size: setup.config.u64("sample_size")?.max(1) as usize,
            mutation_rate: rate,
            elitism: (setup.config.u64("elitism")? as usize).min(size),
            population: VecDeque::new(),
            children: Vec::new(),
            pending: 0,
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        for _ in 0..max {
            let filling =
                self.population.len() + self.pending < self.size && self.children.is_empty();
            let assignment = if self.population.is_empty() || filling {
                sample(&self.dims, &mut self.rng)
            } else {
                self.child()
            };
            self.pending += 1;
            out.push(Proposal::new(assignment));
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        for r in results {
            self.pending = self.pending.saturating_sub(1);
            // Failed, pruned and infeasible children do not join.
            let Some(s) = score(&r, &self.objective) else {
                continue;
            };
            let member = (r.proposal.assignment, s);
            match self.mode {
                Mode::Regularized => {
                    self.population.push_back(member);
                    if self.population.len() > self.size {
                        self.population.pop_front();
                    }
                }
                Mode::Genetic if self.population.len() < self.size && self.children.is_empty() => {
                    self.population.push_back(member)
                }
                Mode::Genetic => {
                    self.children.push(member);
                    if self.children.len() >= self.size - self.elitism.min(self.size - 1) {
                        self.next_generation();
                    }
                }
            }
        }
        Ok(())
    }
}

export_strategy!(Evolution);
