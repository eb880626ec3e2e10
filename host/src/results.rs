//! What a run's recorded trials say: the best trial, the Pareto front, the
//! best-so-far curve, and the run's facts (name, plugins, objectives,
//! limits) as the store records them. The search, `status`, `report` and
//! `compare` all read results through this module, so none of them reaches
//! into another.

use crate::ir::{Direction, Objective, TrialStatus};
use crate::store::{RunStore, TrialRecord};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Whether `a` is better than `b` under `objective`.
pub fn better(a: f64, b: f64, objective: &Objective) -> bool {
    match objective.direction {
        Direction::Maximize => a > b,
        Direction::Minimize => a < b,
    }
}

/// The completed, not reused trials that no other such trial dominates
/// under `objectives` (at least as good in all, better in one), by id.
pub fn pareto_front(trials: &[TrialRecord], objectives: &[Objective]) -> Vec<u64> {
    let scored: Vec<(u64, Vec<f64>)> = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed && t.reused_from.is_none())
        .filter_map(|t| {
            let signed = objectives.iter().map(|o| {
                let v = objective_value(t, o)?;
                Some(if o.direction == Direction::Maximize {
                    v
                } else {
                    -v
                })
            });
            Some((t.id, signed.collect::<Option<Vec<f64>>>()?))
        })
        .collect();
    let dominates = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).all(|(x, y)| x >= y) && a.iter().zip(b).any(|(x, y)| x > y)
    };
    scored
        .iter()
        .filter(|(_, s)| !scored.iter().any(|(_, o)| dominates(o, s)))
        .map(|(id, _)| *id)
        .collect()
}

/// A trial's value of `objective`, if it has a finite one: a NaN or an
/// infinity never ranks (NaN compares false both ways, so it would stay best
/// once first).
pub fn objective_value(trial: &TrialRecord, objective: &Objective) -> Option<f64> {
    trial
        .metrics
        .get(&objective.metric)
        .copied()
        .filter(|v| v.is_finite())
}

/// The best completed trial under `objective` (the earliest of equals, as
/// the run picks it), reused trials included.
pub fn best_trial<'a>(trials: &'a [TrialRecord], objective: &Objective) -> Option<&'a TrialRecord> {
    trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed)
        .filter_map(|t| Some((t, objective_value(t, objective)?)))
        .reduce(|a, b| if better(b.1, a.1, objective) { b } else { a })
        .map(|(t, _)| t)
}

/// One point of a best-so-far curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestSoFar {
    /// The trial after which it holds.
    pub trial: u64,
    /// Training seconds spent by then (simulated in table mode; reused trials cost nothing).
    pub spent: f64,
    /// The best objective by then (NaN before the first completed trial).
    pub best: f64,
}

/// The training seconds a trial costs the run: its `train_seconds`, and
/// for a reused trial (its result copied from an earlier one) nothing,
/// unless `charge_reused`.
pub fn charged_seconds(t: &TrialRecord, charge_reused: bool) -> f64 {
    if t.reused_from.is_some() && !charge_reused {
        return 0.0;
    }
    let seconds = t.metrics.get("train_seconds").copied();
    seconds.filter(|s| s.is_finite()).unwrap_or(0.0)
}

/// The best objective after each trial, in trial order, with the training
/// spent by then (by every trial); with `budget`, only trials of that budget
/// can be the best, so a multi-fidelity run's low-budget values never mix
/// with its full-budget ones.
pub fn best_so_far(
    trials: &[TrialRecord],
    objective: &Objective,
    budget: Option<u32>,
) -> Vec<BestSoFar> {
    let (mut best, mut spent) = (f64::NAN, 0.0);
    trials
        .iter()
        .map(|t| {
            spent += charged_seconds(t, false);
            if t.status == TrialStatus::Completed && budget.is_none_or(|b| b == t.budget) {
                if let Some(v) = objective_value(t, objective) {
                    if best.is_nan() || better(v, best, objective) {
                        best = v;
                    }
                }
            }
            BestSoFar {
                trial: t.id,
                spent,
                best,
            }
        })
        .collect()
}

/// The facts of a run that its readers show, as the run recorded them (the
/// store's `facts` entry): readers never re-parse the recorded config with
/// today's config schema, so a run stays readable when the schema moves on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFacts {
    /// The run's name.
    pub name: String,
    /// The search-space plugin, as configured.
    pub space: String,
    /// The strategy plugin, as configured.
    pub strategy: String,
    /// The objectives, first the one the best trial is chosen by.
    pub objectives: Vec<Objective>,
    /// `[run] max_trials` of the latest session.
    pub max_trials: u64,
    /// `[run] max_time_s` of the latest session.
    pub max_time_s: Option<f64>,
}

/// The store's key for [`RunFacts`].
pub(crate) const FACTS_KEY: &str = "facts";

impl RunFacts {
    /// Reads the facts of the run in `store`; for a run recorded before the
    /// store kept them, from its recorded config read loosely (only the keys
    /// needed, whatever else it holds).
    pub fn load(store: &RunStore) -> Result<RunFacts> {
        if let Some(text) = store.meta(FACTS_KEY)? {
            return serde_json::from_str(&text)
                .context("the run database's `facts` entry is damaged");
        }
        let text = store
            .meta("config")?
            .context("the run database records no config: the run never started")?;
        Self::from_recorded_config(&text).context("reading the run's recorded config")
    }

    fn from_recorded_config(text: &str) -> Result<RunFacts> {
        let config: toml::Table = toml::from_str(text)?;
        let table = |name: &str| config.get(name).and_then(toml::Value::as_table);
        let text_of = |section: &str, key: &str| -> Option<String> {
            Some(table(section)?.get(key)?.as_str()?.to_string())
        };
        let run = table("run").context("no [run] section")?;
        let objectives = config
            .get("objectives")
            .and_then(toml::Value::as_array)
            .context("no [[objectives]]")?
            .iter()
            .map(|o| {
                let metric = o.get("metric")?.as_str()?.to_string();
                let direction = match o.get("direction")?.as_str()? {
                    "maximize" => Direction::Maximize,
                    "minimize" => Direction::Minimize,
                    _ => return None,
                };
                Some(Objective { metric, direction })
            })
            .collect::<Option<Vec<_>>>()
            .context("an objective without a metric or a direction")?;
        Ok(RunFacts {
            name: text_of("run", "name").unwrap_or_else(|| "run".into()),
            space: text_of("space", "plugin").context("no [space] plugin")?,
            strategy: text_of("strategy", "plugin").context("no [strategy] plugin")?,
            objectives,
            max_trials: run
                .get("max_trials")
                .and_then(toml::Value::as_integer)
                .and_then(|n| u64::try_from(n).ok())
                .context("no [run] max_trials")?,
            max_time_s: run
                .get("max_time_s")
                .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64))),
        })
    }

    /// The objective the best trial is chosen by.
    pub fn objective(&self) -> &Objective {
        &self.objectives[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FORMAT_KEY;

    /// A run recorded before the store kept its facts, by a nas-host whose
    /// config schema had a key today's does not know: still readable.
    #[test]
    fn facts_of_an_older_run_come_from_its_config_read_loosely() {
        let config = r#"
[run]
name = "old"
max_trials = 12
max_time_s = 30
a_key_of_another_version = true

[space]
plugin = "builtin:seed-template"

[strategy]
plugin = "builtin:tpe"

[[objectives]]
metric = "val_accuracy"
direction = "maximize"

[[objectives]]
metric = "params"
direction = "minimize"
"#;
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(&dir.path().join("nas.sqlite")).unwrap();
        store.set_meta("config", config).unwrap();
        let facts = RunFacts::load(&store).unwrap();
        assert_eq!(
            facts,
            RunFacts {
                name: "old".into(),
                space: "builtin:seed-template".into(),
                strategy: "builtin:tpe".into(),
                objectives: vec![
                    Objective {
                        metric: "val_accuracy".into(),
                        direction: Direction::Maximize
                    },
                    Objective {
                        metric: "params".into(),
                        direction: Direction::Minimize
                    },
                ],
                max_trials: 12,
                max_time_s: Some(30.0),
            }
        );
        // Recorded facts win over the config.
        let recorded = RunFacts {
            name: "new".into(),
            ..facts
        };
        store
            .set_meta(FACTS_KEY, &serde_json::to_string(&recorded).unwrap())
            .unwrap();
        assert_eq!(RunFacts::load(&store).unwrap(), recorded);
    }

    /// A completed trial of budget 1 with `val_accuracy` = `v`.
    fn completed(id: u64, v: f64) -> TrialRecord {
        TrialRecord {
            id,
            assignment: Vec::new(),
            key: None,
            network: None,
            budget: 1,
            status: TrialStatus::Completed,
            reason: None,
            metrics: [("val_accuracy".to_string(), v)].into(),
            curve: Vec::new(),
            seed: 0,
            seconds: 0.0,
            reused_from: None,
            tag: String::new(),
            weights: None,
        }
    }

    /// A best-so-far at one budget ignores the trials of other budgets
    /// (a high 12-epoch value never stands in for the 200-epoch curve),
    /// while the training spent counts every trial.
    #[test]
    fn a_best_so_far_at_one_budget_ignores_the_others() {
        let trial = |id, budget, v| {
            let mut t = completed(id, v);
            t.budget = budget;
            t.metrics.insert("train_seconds".into(), 10.0);
            t
        };
        let trials = [trial(1, 12, 0.9), trial(2, 200, 0.7), trial(3, 12, 0.95)];
        let maximize = Objective {
            metric: "val_accuracy".into(),
            direction: Direction::Maximize,
        };
        let at = |budget| -> Vec<(f64, f64)> {
            best_so_far(&trials, &maximize, budget)
                .iter()
                .map(|b| (b.spent, b.best))
                .collect()
        };
        let full = at(Some(200));
        assert!(full[0].1.is_nan());
        assert_eq!(full[1..], [(20.0, 0.7), (30.0, 0.7)]);
        assert_eq!(at(Some(12)), [(10.0, 0.9), (20.0, 0.9), (30.0, 0.95)]);
        assert_eq!(at(None)[1], (20.0, 0.9));
    }

    /// A NaN objective (a table's empty cell, a diverged metric) never
    /// ranks, not even as the first completed trial.
    #[test]
    fn a_non_finite_objective_is_never_the_best() {
        let trial = completed;
        let trials = [trial(1, f64::NAN), trial(2, 0.5), trial(3, f64::INFINITY)];
        let maximize = Objective {
            metric: "val_accuracy".into(),
            direction: Direction::Maximize,
        };
        assert_eq!(best_trial(&trials, &maximize).map(|t| t.id), Some(2));
        assert_eq!(
            pareto_front(&trials, std::slice::from_ref(&maximize)),
            vec![2]
        );
        let curve: Vec<f64> = best_so_far(&trials, &maximize, None)
            .iter()
            .map(|b| b.best)
            .collect();
        assert!(
            curve[0].is_nan() && curve[1] == 0.5 && curve[2] == 0.5,
            "{curve:?}"
        );
    }

    #[test]
    fn a_run_recorded_in_a_newer_format_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nas.sqlite");
        let store = RunStore::open(&path).unwrap();
        let newer = (crate::ir::FORMAT_VERSION + 1).to_string();
        store.set_meta(FORMAT_KEY, &newer).unwrap();
        drop(store);
        for e in [
            RunStore::open(&path).err(),
            RunStore::open_read_only(&path).err(),
        ] {
            let e = format!("{:#}", e.expect("refused"));
            assert!(
                e.contains("nas.sqlite") && e.contains(&format!("format {newer}")),
                "{e}"
            );
        }
    }
}
