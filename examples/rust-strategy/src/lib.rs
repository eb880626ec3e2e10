//! A minimal strategy: start at a random point, then propose mutations of the
//! best assignment seen so far (a random walk that climbs).

use nas_plugin_sdk::*;

struct HillWalk {
    dims: Vec<Dimension>,
    rng: Rng,
    objective: Objective,
    /// The best completed result so far: (objective value, assignment).
    best: Option<(f64, Assignment)>,
}

impl Strategy for HillWalk {
    const NAME: &'static str = "hill-walk";
    const DESCRIPTION: &'static str = "Mutates the best assignment seen so far";

    fn init(setup: StrategySetup) -> Result<Self, String> {
        Ok(HillWalk {
            dims: setup.dimensions,
            rng: Rng::new(setup.seed),
            objective: setup.objectives[0].clone(),
            best: None,
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        for _ in 0..max {
            let assignment = match &self.best {
                Some((_, best)) => mutate(&self.dims, best, &mut self.rng),
                None => sample(&self.dims, &mut self.rng),
            };
            out.push(Proposal::new(assignment));
        }
        Ok(out)
    }

    fn tell(&mut self, results: Vec<TrialResult>) -> Result<(), String> {
        let sign = if self.objective.direction == Direction::Maximize {
            1.0
        } else {
            -1.0
        };
        for r in results
            .into_iter()
            .filter(|r| r.status == TrialStatus::Completed)
        {
            let Some(m) = r.metrics.iter().find(|m| m.name == self.objective.metric) else {
                continue;
            };
            if self
                .best
                .as_ref()
                .is_none_or(|(v, _)| sign * m.value > sign * v)
            {
                self.best = Some((m.value, r.proposal.assignment));
            }
        }
        Ok(())
    }
}

export_strategy!(HillWalk);
