//! Random search: uniform over the active dimensions, log scales respected.
//! It never finishes unless `unique` is set and the space runs out.

use nas_plugin_sdk::space::assignment_text;
use nas_plugin_sdk::*;
use std::collections::HashSet;

/// The strategy (public so that bench/ can call it natively).
pub struct Random {
    dims: Vec<Dimension>,
    rng: Rng,
    /// Texts of assignments already proposed, when `unique` is on.
    seen: Option<HashSet<String>>,
    max_attempts: u64,
}

impl Strategy for Random {
    const NAME: &'static str = "random";
    const DESCRIPTION: &'static str =
        "Uniform random search over the active dimensions (log scales respected)";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new("unique", "false", "never propose the same assignment twice; finish when the space seems exhausted"),
            ConfigKey::new("max_attempts", "1000", "with `unique`, consecutive repeated draws after which the space counts as exhausted"),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let unique = setup.config.bool("unique")?;
        Ok(Random {
            dims: setup.dimensions,
            rng: Rng::new(setup.seed),
            seen: unique.then(HashSet::new),
            max_attempts: setup.config.u64("max_attempts")?.max(1),
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        'proposals: for _ in 0..max {
            for _ in 0..self.max_attempts {
                let a = sample(&self.dims, &mut self.rng);
                let fresh = match &mut self.seen {
                    Some(seen) => seen.insert(assignment_text(&a)),
                    None => true,
                };
                if fresh {
                    out.push(Proposal::new(a));
                    continue 'proposals;
                }
            }
            break;
        }
        Ok(out)
    }
}

export_strategy!(Random);
