//! Multi-fidelity building blocks shared by the `asha` and `hyperband`
//! strategies: the rung budgets, and the sampler of new configurations
//! (uniform random, or TPE as in BOHB).

use crate::space::sample;
use crate::tpe::Tpe;
use crate::*;

/// The rung budgets: `budgets` when given (sorted, distinct), else
/// `min`, `min * eta`, `min * eta^2`, ... up to and including `max`.
pub fn rungs(config: &Config, strategy: &str) -> Result<(Vec<u32>, f64), String> {
    let eta = config.f64("eta")?;
    if !(eta > 1.0 && eta.is_finite()) {
        return Err(format!("{strategy}: `eta` must be above 1"));
    }
    let listed = if config.is_empty_list("budgets")? {
        Vec::new()
    } else {
        config.u64_list("budgets")?
    };
    let mut budgets: Vec<u32> = if listed.is_empty() {
        let (min, max) = (config.u64("min_epochs")?, config.u64("max_epochs")?);
        if min == 0 || max < min {
            return Err(format!(
                "{strategy}: need 1 <= `min_epochs` <= `max_epochs`"
            ));
        }
        let mut out = Vec::new();
        let mut b = min as f64;
        while (b.round() as u64) < max {
            out.push(b.round() as u32);
            b *= eta;
        }
        out.push(max as u32);
        out
    } else {
        if listed.contains(&0) {
            return Err(format!(
                "{strategy}: `budgets` must be positive numbers of epochs"
            ));
        }
        listed.iter().map(|&b| b as u32).collect()
    };
    budgets.sort_unstable();
    budgets.dedup();
    if budgets.len() < 2 {
        return Err(format!("{strategy}: needs at least two budgets (rungs)"));
    }
    Ok((budgets, eta))
}

/// The config keys of [`rungs`] and [`Sampler`], with defaults.
pub fn config_keys() -> Vec<ConfigKey> {
    vec![
        ConfigKey::new("min_epochs", "1", "budget of the lowest rung"),
        ConfigKey::new("max_epochs", "9", "budget of the highest rung"),
        ConfigKey::new("eta", "3", "reduction factor: the best 1/eta of a rung is promoted, and budgets grow by eta"),
        ConfigKey::new("budgets", "[]", "explicit rung budgets in epochs (for example a table's fidelities), instead of min_epochs * eta^k"),
        ConfigKey::new("sampler", "\"random\"", "how new configurations are drawn: `random` or `tpe` (BOHB-style: TPE fitted to the lowest rung's results)"),
    ]
}

/// Draws new configurations.
pub enum Sampler {
    /// Uniform over the active dimensions.
    Random(Vec<Dimension>, Rng),
    /// TPE, told the lowest rung's results.
    Tpe(Box<Tpe>),
}

impl Sampler {
    /// The sampler `config`'s `sampler` key names, set up like a strategy.
    pub fn new(config: &Config, setup: &StrategySetup, strategy: &str) -> Result<Self, String> {
        match config.string("sampler")?.as_str() {
            "random" => Ok(Sampler::Random(
                setup.dimensions.clone(),
                Rng::new(setup.seed),
            )),
            "tpe" => {
                let tpe_setup = StrategySetup {
                    dimensions: setup.dimensions.clone(),
                    objectives: setup.objectives.clone(),
                    config: Config::parse("{}", "tpe", Tpe::config_keys())?,
                    seed: setup.seed,
                };
                Ok(Sampler::Tpe(Box::new(Tpe::init(tpe_setup)?)))
            }
            other => Err(format!(
                "{strategy}: `sampler = \"{other}\"` is not known; use `random` or `tpe`"
            )),
        }
    }

    /// A new configuration.
    pub fn draw(&mut self) -> Result<Assignment, String> {
        match self {
            Sampler::Random(dims, rng) => Ok(sample(dims, rng)),
            Sampler::Tpe(tpe) => Ok(tpe.ask(1)?.pop().ok_or("tpe proposed nothing")?.assignment),
        }
    }

    /// Learns from a result at the lowest rung.
    pub fn observe(&mut self, result: &TrialResult) -> Result<(), String> {
        match self {
            Sampler::Random(..) => Ok(()),
            Sampler::Tpe(tpe) => tpe.tell(vec![result.clone()]),
        }
    }
}
