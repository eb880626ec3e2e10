//! Training hyperparameters searched with the architecture: a `[train]` key
//! written as a domain (`learning_rate = { log_range = [1e-4, 1e-1] }`,
//! `optimizer = { choices = ["adam", "sgd"] }`, `batch_size = { choices =
//! [32, 64] }`, `weight_decay = { range = [0.0, 1e-3] }`) becomes a
//! dimension `train.KEY` after the space's own, so every strategy searches
//! it without knowing; each trial trains with the values its assignment
//! gives, which are part of its key (reuse only with equal hyperparameters).

use super::TrainConfig;
use crate::ir::{Binding, Dimension, Domain, IntRange, RealRange, Value};
use anyhow::{bail, Context, Result};

/// The `[train]` keys that may be searched.
pub const SEARCHABLE: [&str; 8] = [
    "learning_rate",
    "weight_decay",
    "momentum",
    "nesterov",
    "batch_size",
    "optimizer",
    "schedule",
    "gamma",
];

/// The prefix of a searched key's dimension name.
pub const PREFIX: &str = "train.";

/// A `[train]` key searched over a domain.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchedKey {
    /// The `[train]` key.
    pub key: String,
    /// Its values, as a dimension's domain.
    pub domain: Domain,
    /// For `choices`, the values in label order.
    choices: Vec<toml::Value>,
    /// The domain as written, for the recorded config.
    written: toml::Value,
}

/// Takes the searched keys (those written as a domain) out of a `[train]`
/// table, checking each: a searchable key, one of `choices`, `range` or
/// `log_range`, and values the key accepts.
pub fn extract(train: &mut toml::Table) -> Result<Vec<SearchedKey>> {
    let domains: Vec<String> = train
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.clone())
        .collect();
    let mut searched = Vec::new();
    for key in domains {
        let written = train.remove(&key).context("the key was listed")?;
        let spec = parse(&key, &written)?;
        // Every value the domain allows must be one the key accepts.
        for sample in spec.extremes() {
            let mut probe = toml::Table::try_from(TrainConfig::default())?;
            probe.insert(key.clone(), sample.clone());
            let config: TrainConfig = probe.try_into().map_err(|e| {
                anyhow::anyhow!("[train] {key}: the value {sample} is not one it takes: {e}")
            })?;
            config
                .validate()
                .with_context(|| format!("[train] {key}: the value {sample}"))?;
        }
        searched.push(spec);
    }
    Ok(searched)
}

fn parse(key: &str, written: &toml::Value) -> Result<SearchedKey> {
    let fail = |why: String| anyhow::anyhow!("[train] {key} = {written}: {why}");
    if !SEARCHABLE.contains(&key) {
        return Err(fail(format!(
            "this key cannot be searched; searchable keys: {}",
            SEARCHABLE.join(", ")
        )));
    }
    let table = written
        .as_table()
        .ok_or_else(|| fail("expected a value or a domain".into()))?;
    let (kind, values) = match table.iter().collect::<Vec<_>>().as_slice() {
        [(kind, toml::Value::Array(values))] => (kind.as_str(), values),
        _ => {
            return Err(fail(
                "a domain is one of { choices = [..] }, { range = [low, high] } or { log_range = [low, high] }"
                    .into(),
            ))
        }
    };
    let domain = match kind {
        "choices" => {
            if values.is_empty() {
                return Err(fail("`choices` is empty".into()));
            }
            let labels: Vec<String> = values.iter().map(label).collect();
            let mut seen = std::collections::BTreeSet::new();
            if let Some(twice) = labels.iter().find(|l| !seen.insert(*l)) {
                return Err(fail(format!("`{twice}` is listed twice")));
            }
            Domain::Categorical(labels)
        }
        "range" | "log_range" => {
            let log = kind == "log_range";
            match values.as_slice() {
                [toml::Value::Integer(low), toml::Value::Integer(high)] if low < high => {
                    if log && *low <= 0 {
                        return Err(fail("a log range starts above 0".into()));
                    }
                    Domain::Integer(IntRange {
                        low: *low,
                        high: *high,
                        log,
                    })
                }
                [low, high] => {
                    let number =
                        |v: &toml::Value| v.as_float().or(v.as_integer().map(|i| i as f64));
                    let (Some(low), Some(high)) = (number(low), number(high)) else {
                        return Err(fail(format!("`{kind}` takes two numbers")));
                    };
                    if !(low.is_finite() && high.is_finite() && low < high) {
                        return Err(fail(format!("`{kind}` takes finite numbers, low < high")));
                    }
                    if log && low <= 0.0 {
                        return Err(fail("a log range starts above 0".into()));
                    }
                    Domain::Real(RealRange { low, high, log })
                }
                _ => return Err(fail(format!("`{kind}` takes [low, high]"))),
            }
        }
        other => {
            return Err(fail(format!(
                "unknown domain `{other}`; use choices, range or log_range"
            )))
        }
    };
    Ok(SearchedKey {
        key: key.to_string(),
        choices: if matches!(domain, Domain::Categorical(_)) {
            values.clone()
        } else {
            Vec::new()
        },
        domain,
        written: written.clone(),
    })
}

/// A choice's label: text as it is, anything else as TOML writes it.
fn label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SearchedKey {
    /// The dimension strategies search.
    pub fn dimension(&self) -> Dimension {
        Dimension {
            name: format!("{PREFIX}{}", self.key),
            domain: self.domain.clone(),
            condition: None,
        }
    }

    /// The values that bound the domain (every choice; a range's ends).
    fn extremes(&self) -> Vec<toml::Value> {
        match &self.domain {
            Domain::Categorical(_) => self.choices.clone(),
            Domain::Integer(r) => vec![r.low.into(), r.high.into()],
            Domain::Real(r) => vec![r.low.into(), r.high.into()],
        }
    }

    /// The TOML value `value` (of this key's dimension) stands for.
    fn toml(&self, value: &Value) -> Result<toml::Value> {
        Ok(match (value, &self.domain) {
            (Value::Categorical(l), Domain::Categorical(labels)) => {
                let i = labels
                    .iter()
                    .position(|x| x == l)
                    .with_context(|| format!("`{l}` is not a choice"))?;
                self.choices[i].clone()
            }
            (Value::Integer(i), _) => (*i).into(),
            (Value::Real(r), _) => (*r).into(),
            (other, _) => bail!("{other:?} does not fit the domain"),
        })
    }
}

/// Puts the searched keys back into a `[train]` table as they were written.
pub fn record(searched: &[SearchedKey], train: &mut toml::Table) {
    for s in searched {
        train.insert(s.key.clone(), s.written.clone());
    }
}

/// Whether a binding is a searched training hyperparameter's.
pub fn is_searched(binding: &Binding) -> bool {
    binding.name.starts_with(PREFIX)
}

/// `base` with the values `assignment` gives the searched keys, checked.
pub fn apply(
    base: &TrainConfig,
    searched: &[SearchedKey],
    assignment: &[Binding],
) -> Result<TrainConfig> {
    let mut table = toml::Table::try_from(base)?;
    for s in searched {
        let name = format!("{PREFIX}{}", s.key);
        let binding = assignment
            .iter()
            .find(|b| b.name == name)
            .with_context(|| format!("the assignment has no `{name}`"))?;
        let value = s
            .toml(&binding.value)
            .with_context(|| format!("`{name}`"))?;
        table.insert(s.key.clone(), value);
    }
    let config: TrainConfig = table
        .try_into()
        .map_err(|e| anyhow::anyhow!("the searched [train] values: {e}"))?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;
    use crate::train::OptimizerKind;

    fn parse(train: &str) -> Result<RunConfig> {
        RunConfig::parse(&format!("[train]\n{train}\n"), "test")
    }

    #[test]
    fn domains_become_dimensions_and_values_apply() {
        let config = parse(
            "learning_rate = { log_range = [1e-4, 0.1] }\noptimizer = { choices = [\"adam\", \"sgd\"] }\nbatch_size = { range = [16, 64] }\nepochs = 2",
        )
        .unwrap();
        let dims: Vec<Dimension> = config.searched.iter().map(SearchedKey::dimension).collect();
        assert_eq!(
            dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
            ["train.batch_size", "train.learning_rate", "train.optimizer"]
        );
        assert_eq!(
            dims[1].domain,
            Domain::Real(RealRange {
                low: 1e-4,
                high: 0.1,
                log: true
            })
        );
        let bind = |name: &str, value: Value| Binding {
            name: name.into(),
            value,
        };
        let assignment = [
            bind("depth", Value::Integer(2)),
            bind("train.batch_size", Value::Integer(48)),
            bind("train.learning_rate", Value::Real(0.02)),
            bind("train.optimizer", Value::Categorical("sgd".into())),
        ];
        let train = apply(&config.train, &config.searched, &assignment).unwrap();
        assert_eq!(
            (
                train.batch_size,
                train.learning_rate,
                train.optimizer,
                train.epochs
            ),
            (48, 0.02, OptimizerKind::Sgd, 2)
        );
        // The recorded config reads back to the same search.
        let again = RunConfig::parse(&config.recorded_text().unwrap(), "recorded").unwrap();
        assert_eq!(again.searched, config.searched);
    }

    #[test]
    fn bad_domains_are_errors_naming_the_key() {
        for (train, needle) in [
            ("epochs = { choices = [1, 2] }", "[train] epochs"),
            (
                "learning_rate = { between = [0.1, 1.0] }",
                "unknown domain `between`",
            ),
            ("learning_rate = { range = [0.1, 0.01] }", "low < high"),
            (
                "learning_rate = { log_range = [0.0, 0.1] }",
                "a log range starts above 0",
            ),
            (
                "batch_size = { choices = [0, 32] }",
                "[train] batch_size: the value 0",
            ),
            (
                "optimizer = { choices = [\"adam\", \"lion\"] }",
                "the value \"lion\"",
            ),
            ("momentum = { choices = [] }", "`choices` is empty"),
            ("gamma = { choices = [0.5, 0.5] }", "`0.5` is listed twice"),
        ] {
            let e = format!("{:#}", parse(train).unwrap_err());
            assert!(e.contains(needle), "{train}: {e}");
        }
    }
}
