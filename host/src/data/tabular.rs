//! `csv`: a table with a header row, numeric feature columns and a label
//! column, read with the `csv` crate (quoting, CRLF). Each row is one
//! example, its features held as `F x 1 x 1` (one channel per feature, so
//! the usual per-channel normalisation standardises each feature with the
//! training split's mean and deviation). Classes are the label column's
//! distinct values in order: numerically when every value is an integer,
//! otherwise as text.

use super::{DataConfig, Part, Raw, Values};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;

/// The most cells read from one table (rows times used columns).
const MAX_CELLS: usize = 1 << 28;

/// The most classes a label column may have.
const MAX_CLASSES: usize = 100_000;

/// Reads the table `config` names.
pub(super) fn read(config: &DataConfig) -> Result<Raw> {
    let path = config.path.as_deref().context("[data] path is required")?;
    let label = config
        .label
        .as_deref()
        .context("[data] label is required")?;
    let file = super::idx::open_regular(path)?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("cannot read the header row of {}", path.display()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let column = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{} has no column `{name}` (its columns: {})",
                path.display(),
                header.join(", ")
            )
        })
    };
    let label_at = column(label).context("[data] label")?;
    let features: Vec<usize> = match &config.features {
        Some(names) => names
            .iter()
            .map(|n| column(n).context("[data] features"))
            .collect::<Result<_>>()?,
        None => (0..header.len()).filter(|c| *c != label_at).collect(),
    };
    if features.is_empty() {
        bail!(
            "{} has no column besides the label `{label}`: nothing to learn from",
            path.display()
        );
    }
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (row, record) in reader.records().enumerate() {
        // The header is line 1.
        let line = row + 2;
        let record = record.with_context(|| format!("{}: line {line}", path.display()))?;
        if values.len() + features.len() > MAX_CELLS {
            bail!(
                "{} has more than {MAX_CELLS} feature cells; use a smaller table",
                path.display()
            );
        }
        for &c in &features {
            let cell = record.get(c).unwrap_or("").trim();
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v as f32),
                _ => bail!(
                    "{}: line {line}, column `{}`: `{cell}` is not a finite number; feature cells must be numbers",
                    path.display(),
                    header[c]
                ),
            }
        }
        let cell = record.get(label_at).unwrap_or("").trim();
        if cell.is_empty() {
            bail!(
                "{}: line {line}, column `{label}`: the label is empty",
                path.display()
            );
        }
        labels.push(cell.to_string());
    }
    if labels.is_empty() {
        bail!("{} has a header but no rows", path.display());
    }
    let classes = class_names(&labels);
    if classes.len() < 2 || classes.len() > MAX_CLASSES {
        bail!(
            "{}: the label column `{label}` has {} distinct values; a classification needs 2 to {MAX_CLASSES}",
            path.display(),
            classes.len()
        );
    }
    let index: std::collections::HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let labels = labels.iter().map(|l| index[l.as_str()]).collect();
    // Planar per example: with H = W = 1, an example's values are its features.
    Ok(Raw {
        shape: (features.len(), 1, 1),
        classes,
        train: Part {
            values: Values::Floats(values),
            labels,
        },
        val: None,
        test: None,
    })
}

/// The distinct labels in class order: numerically when all are integers.
fn class_names(labels: &[String]) -> Vec<String> {
    let distinct: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
    let mut names: Vec<&str> = distinct.into_iter().collect();
    if names.iter().all(|n| n.parse::<i64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<i64>().unwrap_or(0));
    }
    names.into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_labels_order_numerically_and_text_labels_alphabetically() {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            class_names(&owned(&["10", "2", "2", "-1"])),
            owned(&["-1", "2", "10"])
        );
        assert_eq!(
            class_names(&owned(&["virginica", "setosa", "10"])),
            owned(&["10", "setosa", "virginica"])
        );
    }
}
