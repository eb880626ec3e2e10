//! Grid search: every combination of categorical and integer values, and
//! `real_points` evenly spaced points (in log space where asked) for each real
//! dimension, walked in dimension order; inactive dimensions are skipped, so
//! conditional spaces give each architecture once. Finishes with an empty list.

use nas_plugin_sdk::space::is_active;
use nas_plugin_sdk::*;

struct Grid {
    dims: Vec<Dimension>,
    /// The grid values of each dimension.
    values: Vec<Vec<Value>>,
    /// The current index into `values` of each dimension, or `None` when done.
    cursor: Option<Vec<usize>>,
}

impl Grid {
    /// The assignment at the cursor: the active dimensions in order.
    fn assignment(&self, cursor: &[usize]) -> Assignment {
        let mut out: Assignment = Vec::new();
        for (i, d) in self.dims.iter().enumerate() {
            if is_active(d, &out) {
                out.push(Binding {
                    name: d.name.clone(),
                    value: self.values[i][cursor[i]].clone(),
                });
            }
        }
        out
    }

    /// Moves the cursor like an odometer over the active dimensions only; the
    /// dimensions after a changed one restart at their first value.
    fn advance(&mut self) {
        let Some(mut cursor) = self.cursor.take() else {
            return;
        };
        let current = self.assignment(&cursor);
        let active: Vec<usize> = (0..self.dims.len())
            .filter(|&i| current.iter().any(|b| b.name == self.dims[i].name))
            .collect();
        for &i in active.iter().rev() {
            if cursor[i] + 1 < self.values[i].len() {
                cursor[i] += 1;
                cursor[i + 1..].iter_mut().for_each(|c| *c = 0);
                self.cursor = Some(cursor);
                return;
            }
        }
    }
}

fn grid_values(domain: &Domain, real_points: u64, max_integers: u64) -> Result<Vec<Value>, String> {
    Ok(match domain {
        Domain::Categorical(labels) => labels.iter().cloned().map(Value::Categorical).collect(),
        Domain::Integer(r) => {
            let count = (r.high as i128 - r.low as i128 + 1) as u128;
            if count > max_integers as u128 {
                return Err(format!(
                    "integer range {}..={} has {count} values, more than `max_integers` = {max_integers}; raise it or use another strategy",
                    r.low, r.high
                ));
            }
            (r.low..=r.high).map(Value::Integer).collect()
        }
        Domain::Real(r) => {
            let n = real_points.max(1);
            let (lo, hi) = if r.log {
                (r.low.ln(), r.high.ln())
            } else {
                (r.low, r.high)
            };
            (0..n)
                .map(|k| {
                    let t = if n == 1 {
                        0.5
                    } else {
                        k as f64 / (n - 1) as f64
                    };
                    let x = lo + t * (hi - lo);
                    Value::Real(if r.log {
                        x.exp().clamp(r.low, r.high)
                    } else {
                        x
                    })
                })
                .collect()
        }
    })
}

impl Strategy for Grid {
    const NAME: &'static str = "grid";
    const DESCRIPTION: &'static str = "Exhaustive grid over categorical and integer dimensions, evenly spaced points for real ones; then finishes";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "real_points",
                "5",
                "evenly spaced points per real dimension (in log space for log dimensions)",
            ),
            ConfigKey::new(
                "max_integers",
                "10000",
                "refuse integer dimensions with more values than this",
            ),
        ]
    }

    fn init(setup: StrategySetup) -> Result<Self, String> {
        let real_points = setup.config.u64("real_points")?;
        let max_integers = setup.config.u64("max_integers")?;
        let values = setup
            .dimensions
            .iter()
            .map(|d| {
                grid_values(&d.domain, real_points, max_integers)
                    .map_err(|e| format!("grid: dimension `{}`: {e}", d.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cursor = Some(vec![0; values.len()]);
        Ok(Grid {
            dims: setup.dimensions,
            values,
            cursor,
        })
    }

    fn ask(&mut self, max: u32) -> Result<Vec<Proposal>, String> {
        let mut out = Vec::new();
        while out.len() < max as usize {
            let Some(cursor) = &self.cursor else { break };
            out.push(Proposal::new(self.assignment(cursor)));
            self.advance();
        }
        Ok(out)
    }
}

export_strategy!(Grid);
