//! The checks every value a plugin returns passes before the host uses it
//! (after conversion to the host's types): reals must be finite, since a NaN
//! or an infinity would reach the trainer's arithmetic and the store's JSON,
//! which cannot hold it; texts (names, labels, keys, tags) and lists stay
//! within the [`PluginLimits`] of the run (`text_bytes`, `dimensions`,
//! `labels`), since every one of them is stored and shown. Structural
//! limits on networks are shape inference's
//! ([`crate::network::shape::LIMITS`]).

use super::PluginLimits;
use crate::ir::{Binding, Dimension, Domain, Network, Op, Proposal, Value};
use anyhow::{bail, Result};

/// A limit as a length (saturating where `usize` is narrower).
fn len(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// `message`, cut to `limits.message_bytes` (at a character boundary) with a note.
pub(crate) fn clipped(limits: &PluginLimits, message: &str) -> String {
    let most = len(limits.message_bytes);
    if message.len() <= most {
        return message.to_string();
    }
    let mut end = most;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... ({} more bytes cut)",
        &message[..end],
        message.len() - end
    )
}

/// Refuses a text over `limits.text_bytes`.
fn text(limits: &PluginLimits, plugin: &str, call: &str, what: &str, value: &str) -> Result<()> {
    if value.len() > len(limits.text_bytes) {
        bail!(
            "plugin `{plugin}` returned a {what} of {} bytes from `{call}`, over the limit of {} ([plugins] text_bytes)",
            value.len(),
            limits.text_bytes
        );
    }
    Ok(())
}

/// Refuses an assignment with too many bindings or too long a name or label.
fn sizes(limits: &PluginLimits, plugin: &str, call: &str, assignment: &[Binding]) -> Result<()> {
    if assignment.len() > len(limits.dimensions) {
        bail!(
            "plugin `{plugin}` returned an assignment of {} values from `{call}`, over the limit of {} ([plugins] dimensions)",
            assignment.len(),
            limits.dimensions
        );
    }
    for b in assignment {
        text(limits, plugin, call, "dimension name", &b.name)?;
        if let Value::Categorical(label) = &b.value {
            text(limits, plugin, call, "label", label)?;
        }
    }
    Ok(())
}

/// Refuses proposals with a non-finite real value or past the limits.
pub(super) fn proposals(limits: &PluginLimits, plugin: &str, proposals: &[Proposal]) -> Result<()> {
    for (i, p) in proposals.iter().enumerate() {
        sizes(limits, plugin, "ask", &p.assignment)?;
        text(limits, plugin, "ask", "tag", &p.tag)?;
        if let Some(b) = non_finite(&p.assignment) {
            bail!(
                "plugin `{plugin}` returned a non-finite value from `ask`: proposal {i} sets dimension `{}` to {}; a strategy must propose finite reals",
                b.name,
                describe(&b.value)
            );
        }
    }
    Ok(())
}

/// Refuses dimensions whose real range is not finite and ordered, and
/// spaces, names and label lists past their limits.
pub(super) fn dimensions(
    limits: &PluginLimits,
    plugin: &str,
    dimensions: &[Dimension],
) -> Result<()> {
    if dimensions.len() > len(limits.dimensions) {
        bail!(
            "plugin `{plugin}` returned {} dimensions from `init`, over the limit of {} ([plugins] dimensions)",
            dimensions.len(),
            limits.dimensions
        );
    }
    for d in dimensions {
        text(limits, plugin, "init", "dimension name", &d.name)?;
        let labels = match (&d.domain, &d.condition) {
            (Domain::Categorical(l), _) if l.len() > len(limits.labels) => bail!(
                "plugin `{plugin}` returned dimension `{}` with {} labels from `init`, over the limit of {} ([plugins] labels)",
                d.name,
                l.len(),
                limits.labels
            ),
            (Domain::Categorical(l), None) => l.iter().collect::<Vec<_>>(),
            (Domain::Categorical(l), Some(c)) => l.iter().chain(&c.labels).collect(),
            (_, Some(c)) => c.labels.iter().collect(),
            (_, None) => Vec::new(),
        };
        for label in labels {
            text(limits, plugin, "init", "label", label)?;
        }
        if let Domain::Real(r) = &d.domain {
            if !(r.low.is_finite() && r.high.is_finite() && r.low <= r.high) {
                bail!(
                    "plugin `{plugin}` returned dimension `{}` with the real range [{}, {}] from `init`; a range must be finite with low <= high",
                    d.name,
                    r.low,
                    r.high
                );
            }
        }
    }
    Ok(())
}

/// Refuses a network with a non-finite dropout rate or an over-long key.
pub fn network(limits: &PluginLimits, plugin: &str, network: &Network) -> Result<()> {
    text(limits, plugin, "build", "network key", &network.key)?;
    for (i, node) in network.nodes.iter().enumerate() {
        if let Op::Dropout(rate) = node.op {
            if !rate.is_finite() {
                bail!(
                    "plugin `{plugin}` built network `{}` whose node {i} (dropout) has the rate {rate}; a rate must be a finite number in [0, 1)",
                    network.key
                );
            }
        }
    }
    Ok(())
}

fn non_finite(assignment: &[Binding]) -> Option<&Binding> {
    assignment
        .iter()
        .find(|b| matches!(b.value, Value::Real(v) if !v.is_finite()))
}

fn describe(value: &Value) -> String {
    match value {
        Value::Real(v) => v.to_string(),
        Value::Integer(v) => v.to_string(),
        Value::Categorical(v) => format!("`{v}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Node, RealRange};

    /// The default limits.
    const L: PluginLimits = PluginLimits::DEFAULT;

    fn real(name: &str, v: f64) -> Binding {
        Binding {
            name: name.into(),
            value: Value::Real(v),
        }
    }

    #[test]
    fn non_finite_reals_are_refused_naming_the_plugin_and_the_value() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let p = Proposal {
                assignment: vec![real("lr", 0.1), real("wd", bad)],
                budget: None,
                resume_from: None,
                tag: String::new(),
            };
            let e = proposals(&L, "s", std::slice::from_ref(&p))
                .unwrap_err()
                .to_string();
            assert!(e.contains("plugin `s`") && e.contains("`wd`"), "{e}");
            let d = Dimension {
                name: "x".into(),
                domain: Domain::Real(RealRange {
                    low: 0.0,
                    high: bad,
                    log: false,
                }),
                condition: None,
            };
            let e = dimensions(&L, "sp", &[d]).unwrap_err().to_string();
            assert!(e.contains("plugin `sp`") && e.contains("`x`"), "{e}");
        }
        let n = Network {
            nodes: vec![
                Node {
                    op: Op::Input,
                    inputs: vec![],
                },
                Node {
                    op: Op::Dropout(f32::NAN),
                    inputs: vec![0],
                },
            ],
            key: "k".into(),
        };
        let e = network(&L, "sp", &n).unwrap_err().to_string();
        assert!(e.contains("node 1 (dropout)"), "{e}");
        let ok = Proposal {
            assignment: vec![real("lr", 0.1)],
            budget: None,
            resume_from: None,
            tag: String::new(),
        };
        assert!(proposals(&L, "s", std::slice::from_ref(&ok)).is_ok());
    }

    #[test]
    fn oversized_texts_and_lists_are_refused_and_messages_cut() {
        let long = "x".repeat(4097);
        let tagged = Proposal {
            assignment: vec![real("lr", 0.1)],
            budget: None,
            resume_from: None,
            tag: long.clone(),
        };
        let e = proposals(&L, "s", &[tagged]).unwrap_err().to_string();
        assert!(e.contains("tag of 4097 bytes"), "{e}");
        let n = Network {
            nodes: Vec::new(),
            key: long.clone(),
        };
        let e = network(&L, "sp", &n).unwrap_err().to_string();
        assert!(e.contains("network key of 4097 bytes"), "{e}");
        let many = Dimension {
            name: "c".into(),
            domain: Domain::Categorical(vec![String::new(); 100_001]),
            condition: None,
        };
        let e = dimensions(&L, "sp", &[many]).unwrap_err().to_string();
        assert!(e.contains("100001 labels"), "{e}");
        let message = "é".repeat(4096);
        let cut = clipped(&L, &message);
        assert!(
            cut.len() < 4096 + 40 && cut.ends_with("bytes cut)"),
            "{cut}"
        );
        assert_eq!(clipped(&L, "short"), "short");
    }

    #[test]
    fn the_limits_follow_the_run_config() {
        let raised = PluginLimits {
            text_bytes: 10_000,
            message_bytes: 10,
            ..L
        };
        let tagged = Proposal {
            assignment: vec![real("lr", 0.1)],
            budget: None,
            resume_from: None,
            tag: "t".repeat(5000),
        };
        assert!(proposals(&raised, "s", std::slice::from_ref(&tagged)).is_ok());
        let e = proposals(&L, "s", &[tagged]).unwrap_err().to_string();
        assert!(
            e.contains("over the limit of 4096 ([plugins] text_bytes)"),
            "{e}"
        );
        assert!(clipped(&raised, &"m".repeat(20)).starts_with("mmmmmmmmmm... (10 more"));
    }
}
