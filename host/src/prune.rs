//! Pruners: stopping a trial after an epoch when its learning curve shows it
//! will not be among the best (`[pruner]`). The rules follow Optuna's
//! pruners. A trial decides for itself after each epoch, against the curves
//! of the trials completed when it was admitted (carried in its spec), so the
//! decision is the same under every executor and when a run is resumed.

use crate::ir::{Direction, EpochRecord};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// `[pruner]`: which rule stops trials, and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrunerConfig {
    /// `builtin:median`, `builtin:percentile`, `builtin:patience` or `builtin:threshold`.
    pub plugin: String,
    /// The curve metric judged: `val_accuracy`, `val_loss` or `train_loss`
    /// (default: the first objective's, which must then be one of them).
    #[serde(default)]
    pub metric: Option<String>,
    /// Epochs that never prune at the start of a trial (default 1).
    #[serde(default = "default_warmup")]
    pub warmup_epochs: u32,
    /// median and percentile: completed trials with a value at an epoch
    /// before that epoch can prune (default 5).
    #[serde(default = "default_min_trials")]
    pub min_trials: u32,
    /// percentile: the share of trials kept, in (0, 100] (a trial whose best
    /// value so far is outside the top `percentile` percent is stopped).
    #[serde(default)]
    pub percentile: Option<f64>,
    /// patience: epochs without an improvement before a trial stops.
    #[serde(default)]
    pub patience: Option<u32>,
    /// patience: the least change that counts as an improvement (default 0).
    #[serde(default)]
    pub min_delta: f64,
    /// threshold: a value below this stops the trial.
    #[serde(default)]
    pub lower: Option<f64>,
    /// threshold: a value above this stops the trial.
    #[serde(default)]
    pub upper: Option<f64>,
}

fn default_warmup() -> u32 {
    1
}

fn default_min_trials() -> u32 {
    5
}

/// The metrics of an epoch record a pruner can judge.
pub const CURVE_METRICS: &[&str] = &["val_accuracy", "val_loss", "train_loss"];

/// A pruning rule with its settings checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Stop when the best value so far is outside the top `keep` percent of
    /// the completed trials' values at the same epoch (median: 50).
    Percentile { keep: f64, min_trials: u32 },
    /// Stop when the last `patience` epochs did not improve on the best
    /// before them by more than `min_delta`.
    Patience { patience: u32, min_delta: f64 },
    /// Stop when a value is below `lower`, above `upper`, or not finite.
    Threshold {
        lower: Option<f64>,
        upper: Option<f64>,
    },
}

impl PrunerConfig {
    /// The rule this config names, checked.
    pub fn rule(&self) -> Result<Rule> {
        let rule = match self.plugin.as_str() {
            "builtin:median" => Rule::Percentile {
                keep: 50.0,
                min_trials: self.min_trials,
            },
            "builtin:percentile" => {
                let Some(keep) = self.percentile else {
                    bail!("[pruner] plugin = \"builtin:percentile\" needs `percentile`, the share of trials kept, in (0, 100]");
                };
                if !(keep > 0.0 && keep <= 100.0) {
                    bail!("[pruner] percentile = {keep} must be in (0, 100]");
                }
                Rule::Percentile {
                    keep,
                    min_trials: self.min_trials,
                }
            }
            "builtin:patience" => {
                let Some(patience) = self.patience.filter(|p| *p >= 1) else {
                    bail!("[pruner] plugin = \"builtin:patience\" needs `patience`, a number of epochs of at least 1");
                };
                if !(self.min_delta >= 0.0 && self.min_delta.is_finite()) {
                    bail!("[pruner] min_delta = {} must be a finite number of at least 0", self.min_delta);
                }
                Rule::Patience {
                    patience,
                    min_delta: self.min_delta,
                }
            }
            "builtin:threshold" => {
                if self.lower.is_none() && self.upper.is_none() {
                    bail!("[pruner] plugin = \"builtin:threshold\" needs `lower`, `upper` or both");
                }
                if [self.lower, self.upper].iter().flatten().any(|v| !v.is_finite()) {
                    bail!("[pruner] lower and upper must be finite numbers");
                }
                Rule::Threshold {
                    lower: self.lower,
                    upper: self.upper,
                }
            }
            other => bail!(
                "[pruner] plugin = \"{other}\": the pruners are builtin:median, builtin:percentile, builtin:patience and builtin:threshold"
            ),
        };
        Ok(rule)
    }

    /// The curve metric judged, given the run's first objective.
    pub fn metric_for(&self, first_objective: &str) -> Result<String> {
        let metric = self.metric.as_deref().unwrap_or(first_objective);
        if !CURVE_METRICS.contains(&metric) {
            bail!(
                "[pruner] judges a learning curve, and `{metric}` is not recorded per epoch: set [pruner] metric to one of {}",
                CURVE_METRICS.join(", ")
            );
        }
        Ok(metric.to_string())
    }
}

/// What a trial needs to decide after each epoch whether to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pruning {
    /// The rule.
    pub rule: Rule,
    /// The curve metric judged.
    pub metric: String,
    /// Whether larger values of `metric` are better.
    pub direction: Direction,
    /// Epochs that never prune.
    pub warmup_epochs: u32,
    /// The metric per epoch of each trial completed when this one was admitted.
    pub reference: Vec<Vec<f64>>,
}

impl PrunerConfig {
    /// The pruning of a run whose first objective is `first_objective`,
    /// with no reference curves yet.
    pub fn pruning(&self, first_objective: &str) -> Result<Pruning> {
        let metric = self.metric_for(first_objective)?;
        Ok(Pruning {
            rule: self.rule()?,
            direction: if metric == "val_accuracy" {
                Direction::Maximize
            } else {
                Direction::Minimize
            },
            metric,
            warmup_epochs: self.warmup_epochs,
            reference: Vec::new(),
        })
    }
}

/// `value` of `metric` in `record`.
fn metric_of(record: &EpochRecord, metric: &str) -> f64 {
    match metric {
        "val_loss" => record.val_loss,
        "train_loss" => record.train_loss,
        _ => record.val_accuracy,
    }
}

/// The `q`-th percentile (0 to 100) of sorted `values`, interpolated
/// linearly between neighbours (numpy's default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

impl Pruning {
    /// The values of `metric` of a finished trial's curve.
    pub fn values(curve: &[EpochRecord], metric: &str) -> Vec<f64> {
        curve.iter().map(|r| metric_of(r, metric)).collect()
    }

    /// Why a trial with this `curve` so far should stop now, or `None`.
    pub fn stop(&self, curve: &[EpochRecord]) -> Option<String> {
        let epoch = curve.len();
        if epoch <= self.warmup_epochs as usize {
            return None;
        }
        let sign = match self.direction {
            Direction::Maximize => 1.0,
            Direction::Minimize => -1.0,
        };
        // Larger is better from here on.
        let values: Vec<f64> = curve
            .iter()
            .map(|r| sign * metric_of(r, &self.metric))
            .collect();
        let shown = |v: f64| sign * v;
        match &self.rule {
            Rule::Percentile { keep, min_trials } => {
                let mut at: Vec<f64> = self
                    .reference
                    .iter()
                    .filter_map(|c| c.get(epoch - 1))
                    .map(|v| sign * v)
                    .filter(|v| v.is_finite())
                    .collect();
                if at.len() < (*min_trials).max(1) as usize {
                    return None;
                }
                at.sort_by(f64::total_cmp);
                let bar = percentile(&at, 100.0 - keep);
                let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (best < bar).then(|| {
                    format!(
                        "pruned after epoch {epoch}: best {} so far {:.4}, worse than {:.4}, the {}th percentile of {} completed trials at that epoch",
                        self.metric,
                        shown(best),
                        shown(bar),
                        100.0 - keep,
                        at.len()
                    )
                })
            }
            Rule::Patience {
                patience,
                min_delta,
            } => {
                let p = *patience as usize;
                if epoch <= p {
                    return None;
                }
                let before = values[..epoch - p]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                let recent = values[epoch - p..]
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max);
                (recent <= before + min_delta).then(|| {
                    format!(
                        "pruned after epoch {epoch}: {} did not improve on {:.4} by more than {min_delta} in {p} epochs",
                        self.metric,
                        shown(before)
                    )
                })
            }
            Rule::Threshold { lower, upper } => {
                let value = metric_of(&curve[epoch - 1], &self.metric);
                let out = !value.is_finite()
                    || lower.is_some_and(|l| value < l)
                    || upper.is_some_and(|u| value > u);
                out.then(|| {
                    format!(
                        "pruned after epoch {epoch}: {} = {value:.4} is outside [{}, {}]",
                        self.metric,
                        lower.map_or("-inf".into(), |l| l.to_string()),
                        upper.map_or("inf".into(), |u| u.to_string())
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(acc: &[f64]) -> Vec<EpochRecord> {
        acc.iter()
            .enumerate()
            .map(|(i, &a)| EpochRecord {
                epoch: i as u32 + 1,
                train_loss: 1.0 - a,
                val_loss: 1.0 - a,
                val_accuracy: a,
                seconds: i as f64,
            })
            .collect()
    }

    fn pruning(rule: Rule, direction: Direction, metric: &str) -> Pruning {
        Pruning {
            rule,
            metric: metric.into(),
            direction,
            warmup_epochs: 1,
            reference: vec![
                vec![0.5, 0.6, 0.7],
                vec![0.4, 0.5, 0.6],
                vec![0.3, 0.4, 0.5],
                vec![0.2],
            ],
        }
    }

    #[test]
    fn the_median_rule_matches_optunas_median_pruner() {
        let median = Rule::Percentile {
            keep: 50.0,
            min_trials: 3,
        };
        let p = pruning(median.clone(), Direction::Maximize, "val_accuracy");
        // Epoch 1 is warm-up; at epoch 2 the median of 0.6, 0.5, 0.4 is 0.5.
        assert_eq!(p.stop(&curve(&[0.1])), None);
        assert!(p.stop(&curve(&[0.1, 0.45])).unwrap().contains("0.5000"));
        assert_eq!(p.stop(&curve(&[0.1, 0.5])), None);
        // The best value so far counts, not the last one.
        assert_eq!(p.stop(&curve(&[0.55, 0.3])), None);
        // Three completed trials reach epoch 2, but only three reach epoch 3
        // and min_trials = 4 is not met.
        let few = pruning(
            Rule::Percentile {
                keep: 50.0,
                min_trials: 4,
            },
            Direction::Maximize,
            "val_accuracy",
        );
        assert_eq!(few.stop(&curve(&[0.0, 0.0, 0.0])), None);
        // Minimising a loss: 1 - accuracy, so the same decisions.
        let loss = pruning(median, Direction::Minimize, "val_loss");
        assert!(loss.stop(&curve(&[0.1, 0.45])).is_some());
        assert_eq!(loss.stop(&curve(&[0.1, 0.5])), None);
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], 25) = 1.75.
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 25.0) - 1.75).abs() < 1e-12);
        assert_eq!(percentile(&[3.0], 80.0), 3.0);
        let keep_top_quarter = pruning(
            Rule::Percentile {
                keep: 25.0,
                min_trials: 3,
            },
            Direction::Maximize,
            "val_accuracy",
        );
        // At epoch 2 the 75th percentile of 0.4, 0.5, 0.6 is 0.55.
        assert!(keep_top_quarter.stop(&curve(&[0.1, 0.54])).is_some());
        assert_eq!(keep_top_quarter.stop(&curve(&[0.1, 0.56])), None);
    }

    #[test]
    fn patience_and_thresholds() {
        let p = pruning(
            Rule::Patience {
                patience: 2,
                min_delta: 0.01,
            },
            Direction::Maximize,
            "val_accuracy",
        );
        assert_eq!(p.stop(&curve(&[0.5, 0.4])), None);
        assert!(p.stop(&curve(&[0.5, 0.4, 0.505])).is_some());
        assert_eq!(p.stop(&curve(&[0.5, 0.4, 0.52])), None);
        let t = pruning(
            Rule::Threshold {
                lower: Some(0.3),
                upper: None,
            },
            Direction::Maximize,
            "val_accuracy",
        );
        assert_eq!(t.stop(&curve(&[0.0])), None, "warm-up");
        assert!(t.stop(&curve(&[0.5, 0.2])).is_some());
        assert!(t.stop(&curve(&[0.5, f64::NAN])).is_some());
        assert_eq!(t.stop(&curve(&[0.5, 0.3])), None);
    }

    #[test]
    fn configs_are_checked_naming_the_key() {
        let config = |text: &str| -> PrunerConfig { toml::from_str(text).unwrap() };
        let e = config("plugin = \"builtin:percentile\"")
            .rule()
            .unwrap_err();
        assert!(e.to_string().contains("needs `percentile`"), "{e}");
        let e = config("plugin = \"builtin:percentile\"\npercentile = 0.0")
            .rule()
            .unwrap_err();
        assert!(e.to_string().contains("(0, 100]"), "{e}");
        let e = config("plugin = \"builtin:patience\"").rule().unwrap_err();
        assert!(e.to_string().contains("needs `patience`"), "{e}");
        let e = config("plugin = \"builtin:threshold\"").rule().unwrap_err();
        assert!(e.to_string().contains("`lower`, `upper`"), "{e}");
        let e = config("plugin = \"pruner.wasm\"").rule().unwrap_err();
        assert!(e.to_string().contains("builtin:median"), "{e}");
        let e = config("plugin = \"builtin:median\"")
            .metric_for("params")
            .unwrap_err();
        assert!(e.to_string().contains("set [pruner] metric"), "{e}");
        assert!(toml::from_str::<PrunerConfig>("plugin = \"builtin:median\"\nwarmup = 2").is_err());
    }
}
