//! Research mode's tabular evaluator: a trial is a look-up of its
//! architecture key in a CSV table (such as NAS-Bench-201's), with optional
//! columns per fidelity (budget in epochs) and a cost column summed as
//! simulated training time.
//!
//! Everything is checked when the table loads: every named column exists,
//! every cell of those columns is a finite number (an error names the line
//! and the column), keys are unique, and each fidelity says its own columns:
//! a metric a fidelity does not map is absent at that budget, never taken
//! from another budget's column.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A table's settings (from the run's `[evaluator]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct TableConfig {
    /// The CSV file (header row; quoted fields allowed).
    pub path: PathBuf,
    /// The column holding the space's architecture keys.
    pub key_column: String,
    /// Metric name -> column, for proposals without a budget or with a budget not in `fidelities`.
    pub metrics: BTreeMap<String, String>,
    /// Budget (epochs, as a string key) -> metric name -> column.
    pub fidelities: BTreeMap<String, BTreeMap<String, String>>,
    /// Column of simulated training seconds at the default budget.
    pub cost_column: Option<String>,
    /// Budget -> cost column, for fidelities.
    pub fidelity_costs: BTreeMap<String, String>,
    /// Whether a table lacking some of the space's architectures is
    /// accepted (a look-up of a missing one then fails the trial).
    pub allow_partial: bool,
    /// The epochs of the `metrics` columns (the full budget), when known.
    pub budget: Option<u32>,
}

/// The columns read at one budget.
#[derive(Debug, Clone, PartialEq)]
struct Columns {
    /// Metric name -> index into a row's values.
    metrics: BTreeMap<String, usize>,
    /// Index of the cost, if any.
    cost: Option<usize>,
}

/// A loaded table: rows by key.
pub struct Table {
    path: PathBuf,
    key_column: String,
    /// Per key, the values of the columns the config names, in `read` order.
    rows: HashMap<String, Vec<f64>>,
    /// Columns at budgets without a fidelity of their own.
    default: Columns,
    /// Columns per fidelity budget.
    fidelities: BTreeMap<u32, Columns>,
    allow_partial: bool,
    budget: Option<u32>,
}

/// One looked-up trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// Metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Simulated seconds (0 without a cost column).
    pub cost: f64,
}

impl TableConfig {
    /// The fidelity budgets, parsed.
    fn budgets(&self) -> Result<Vec<(u32, &BTreeMap<String, String>)>> {
        self.fidelities
            .iter()
            .map(|(b, m)| {
                let budget = b.parse::<u32>().ok().filter(|&b| b >= 1).with_context(|| {
                    format!(
                        "[evaluator.fidelities] key `{b}` must be a budget in epochs (1 or more)"
                    )
                })?;
                Ok((budget, m))
            })
            .collect()
    }

    /// Refuses fidelities that leave out a cost the run has elsewhere, or
    /// one of `needed` (the objectives' metrics): at that budget they would
    /// be missing, and taking another budget's column would be wrong.
    pub fn check_fidelities(&self, needed: &[&str]) -> Result<()> {
        let costed = self.cost_column.is_some() || !self.fidelity_costs.is_empty();
        for (budget, metrics) in self.budgets()? {
            for metric in needed {
                if self.metrics.contains_key(*metric) && !metrics.contains_key(*metric) {
                    bail!(
                        "[evaluator.fidelities.{budget}] does not map `{metric}`, which the run optimises; \
                         map it to the {budget}-epoch column (a fidelity never takes another budget's column)"
                    );
                }
            }
            if costed && !self.fidelity_costs.contains_key(&budget.to_string()) {
                bail!(
                    "[evaluator.fidelity_costs] has no `{budget}` while the run counts simulated seconds: \
                     name the {budget}-epoch cost column (a fidelity never takes another budget's cost)"
                );
            }
        }
        for budget in self.fidelity_costs.keys() {
            if !self.fidelities.contains_key(budget) {
                bail!("[evaluator.fidelity_costs] `{budget}` is not a budget of [evaluator.fidelities]");
            }
        }
        Ok(())
    }
}

impl Table {
    /// Reads and checks the table against `config`.
    pub fn load(config: &TableConfig) -> Result<Self> {
        let path = &config.path;
        let shown = path.display();
        let file = crate::data::idx::open_regular(path)
            .with_context(|| format!("cannot read the evaluator table {shown}"))?;
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(std::io::BufReader::new(file));
        let header: Vec<String> = reader
            .headers()
            .with_context(|| format!("{shown}: cannot read the header row"))?
            .iter()
            .map(str::to_string)
            .collect();
        if header.iter().all(String::is_empty) {
            bail!("{shown} is empty");
        }
        let position = |column: &String| {
            header.iter().position(|h| h == column).with_context(|| {
                format!(
                    "{shown}: no column `{column}`; the header has: {}",
                    header.join(", ")
                )
            })
        };
        let key_index = position(&config.key_column)?;
        // The numeric columns read, each once; rows keep only these.
        let mut read: Vec<usize> = Vec::new();
        let mut slot = |column: &String| -> Result<usize> {
            let at = position(column)?;
            Ok(match read.iter().position(|&r| r == at) {
                Some(s) => s,
                None => {
                    read.push(at);
                    read.len() - 1
                }
            })
        };
        let mut columns_of = |metrics: &BTreeMap<String, String>, cost: Option<&String>| {
            Ok::<_, anyhow::Error>(Columns {
                metrics: metrics
                    .iter()
                    .map(|(m, c)| Ok((m.clone(), slot(c)?)))
                    .collect::<Result<_>>()?,
                cost: cost.map(&mut slot).transpose()?,
            })
        };
        let default = columns_of(&config.metrics, config.cost_column.as_ref())?;
        let mut fidelities = BTreeMap::new();
        for (budget, metrics) in config.budgets()? {
            let cost = config.fidelity_costs.get(&budget.to_string());
            fidelities.insert(budget, columns_of(metrics, cost)?);
        }
        // Simulated seconds must be positive: a cost of 0 would let a
        // search by cost run forever.
        let cost_slots: Vec<usize> = std::iter::once(&default)
            .chain(fidelities.values())
            .filter_map(|c| c.cost)
            .collect();
        let mut rows = HashMap::new();
        for record in reader.records() {
            let record = record.with_context(|| format!("{shown}: cannot read a row"))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != header.len() {
                bail!(
                    "{shown}:{line}: {} fields, the header has {}",
                    record.len(),
                    header.len()
                );
            }
            let values = read
                .iter()
                .enumerate()
                .map(|(s, &i)| {
                    let cell = &record[i];
                    let cost = cost_slots.contains(&s);
                    cell.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && (!cost || *v > 0.0))
                        .with_context(|| {
                            let what = if cost {
                                "a positive number of seconds"
                            } else {
                                "a finite number"
                            };
                            format!(
                                "{shown}:{line}: column `{}` holds `{cell}`, not {what}",
                                header[i]
                            )
                        })
                })
                .collect::<Result<Vec<f64>>>()?;
            let key = record[key_index].to_string();
            if rows.insert(key.clone(), values).is_some() {
                bail!("{shown}:{line}: key `{key}` appears twice");
            }
        }
        Ok(Table {
            path: path.clone(),
            key_column: config.key_column.clone(),
            rows,
            default,
            fidelities,
            allow_partial: config.allow_partial,
            budget: config.budget,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the table has a row for `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.rows.contains_key(key)
    }

    /// Whether a table lacking some of the space's architectures was
    /// accepted ([`TableConfig::allow_partial`]).
    pub fn allow_partial(&self) -> bool {
        self.allow_partial
    }

    /// Whether the table has columns for `budget` epochs: the full budget
    /// or a fidelity (any budget when the full one is not stated).
    pub fn has_budget(&self, budget: u32) -> bool {
        self.budget.is_none_or(|b| b == budget) || self.fidelities.contains_key(&budget)
    }

    /// The budgets the table has columns for, for messages.
    pub fn budgets(&self) -> String {
        let mut all: Vec<String> = self.fidelities.keys().map(u32::to_string).collect();
        all.extend(self.budget.map(|b| b.to_string()));
        all.join(", ")
    }

    fn columns(&self, budget: u32) -> &Columns {
        self.fidelities.get(&budget).unwrap_or(&self.default)
    }

    /// The metrics of `key` at `budget`: the fidelity's columns where the
    /// budget is one, else the default columns.
    pub fn lookup(&self, key: &str, budget: u32) -> Result<Lookup> {
        let row = self.rows.get(key).with_context(|| {
            format!(
                "key `{key}` is not in the evaluator table {} (column `{}`)",
                self.path.display(),
                self.key_column
            )
        })?;
        let columns = self.columns(budget);
        let value = |slot: usize| row.get(slot).copied().unwrap_or(f64::NAN);
        Ok(Lookup {
            metrics: columns
                .metrics
                .iter()
                .map(|(m, &s)| (m.clone(), value(s)))
                .collect(),
            cost: columns.cost.map_or(0.0, value),
        })
    }
}
