//! Research mode's tabular evaluator: a trial is a look-up of its
//! architecture key in a CSV table (such as NAS-Bench-201's), with optional
//! columns per fidelity (budget in epochs) and a cost column summed as
//! simulated training time.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A table's settings (from the run's `[evaluator]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct TableConfig {
    /// The CSV file (header row, comma-separated, no quoting).
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
}

/// A loaded table: rows by key.
pub struct Table {
    path: PathBuf,
    columns: HashMap<String, usize>,
    rows: HashMap<String, Vec<f64>>,
    config: TableConfig,
    fidelities: BTreeMap<u32, BTreeMap<String, String>>,
}

/// One looked-up trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// Metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Simulated seconds (0 without a cost column).
    pub cost: f64,
}

impl Table {
    /// Reads and checks the table against `config` (every named column must exist).
    pub fn load(config: &TableConfig) -> Result<Self> {
        let path = &config.path;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the evaluator table {}", path.display()))?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .with_context(|| format!("{} is empty", path.display()))?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let columns: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        let fidelities = config
            .fidelities
            .iter()
            .map(|(b, m)| {
                Ok((
                    b.parse::<u32>().with_context(|| {
                        format!("[evaluator.fidelities] key `{b}` must be a budget in epochs")
                    })?,
                    m.clone(),
                ))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let named = std::iter::once(&config.key_column)
            .chain(config.metrics.values())
            .chain(config.fidelities.values().flat_map(|m| m.values()))
            .chain(config.cost_column.iter())
            .chain(config.fidelity_costs.values());
        for column in named {
            if !columns.contains_key(column) {
                bail!(
                    "{}: no column `{column}`; the header has: {}",
                    path.display(),
                    names.join(", ")
                );
            }
        }
        let key_index = columns[&config.key_column];
        let mut rows = HashMap::new();
        for (line, row) in lines {
            let fields: Vec<&str> = row.split(',').map(str::trim).collect();
            if fields.len() != names.len() {
                bail!(
                    "{}:{}: {} fields, the header has {}",
                    path.display(),
                    line + 1,
                    fields.len(),
                    names.len()
                );
            }
            let values = fields
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    if i == key_index {
                        Ok(f64::NAN)
                    } else {
                        f.parse::<f64>().or(Ok(f64::NAN))
                    }
                })
                .collect::<Result<Vec<f64>>>()?;
            if rows.insert(fields[key_index].to_string(), values).is_some() {
                bail!(
                    "{}:{}: key `{}` appears twice",
                    path.display(),
                    line + 1,
                    fields[key_index]
                );
            }
        }
        Ok(Table {
            path: path.clone(),
            columns,
            rows,
            config: config.clone(),
            fidelities,
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

    /// The metrics of `key` at `budget` (the fidelity's columns where given).
    pub fn lookup(&self, key: &str, budget: u32) -> Result<Lookup> {
        let row = self.rows.get(key).with_context(|| {
            format!(
                "key `{key}` is not in the evaluator table {} (column `{}`)",
                self.path.display(),
                self.config.key_column
            )
        })?;
        let columns = self.fidelities.get(&budget).unwrap_or(&self.config.metrics);
        let mut metrics: BTreeMap<String, f64> = self
            .config
            .metrics
            .iter()
            .map(|(m, c)| (m.clone(), row[self.columns[c]]))
            .collect();
        metrics.extend(
            columns
                .iter()
                .map(|(m, c)| (m.clone(), row[self.columns[c]])),
        );
        let cost_column = self
            .config
            .fidelity_costs
            .get(&budget.to_string())
            .or(self.config.cost_column.as_ref());
        let cost = cost_column.map_or(0.0, |c| row[self.columns[c]]);
        Ok(Lookup { metrics, cost })
    }
}
