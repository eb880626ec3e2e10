//! The checks every value a plugin returns passes before the host uses it
//! (after conversion to the host's types): reals must be finite, since a NaN
//! or an infinity would reach the trainer's arithmetic and the store's JSON,
//! which cannot hold it; texts (names, labels, keys, tags) and lists stay
//! within [`TEXT_BYTES`], [`DIMENSIONS`] and [`LABELS`], since every one of
//! them is stored and shown. Structural limits on networks are shape
//! inference's ([`crate::network::shape::LIMITS`]).

use crate::ir::{Binding, Dimension, Domain, Network, Op, Proposal, Value};
use anyhow::{bail, Result};

/// The longest text a plugin may return as a name, label, key or tag.
pub(crate) const TEXT_BYTES: usize = 4096;
/// The most dimensions a space may have (and bindings an assignment).
pub(crate) const DIMENSIONS: usize = 10_000;
/// The most labels of one categorical dimension.
pub(crate) const LABELS: usize = 100_000;
/// The longest plugin error message passed on; the rest is cut.
const MESSAGE_BYTES: usize = 4096;

/// `message`, cut to [`MESSAGE_BYTES`] (at a character boundary) with a note.
pub(crate) fn clipped(message: &str) -> String {
    if message.len() <= MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... ({} more bytes cut)",
        &message[..end],
        message.len() - end
    )
}

/// Refuses a text over [`TEXT_BYTES`].
fn text(plugin: &str, call: &str, what: &str, value: &str) -> Result<()> {
    if value.len() > TEXT_BYTES {
        bail!(
            "plugin `{plugin}` returned a {what} of {} bytes from `{call}`, over the limit of {TEXT_BYTES}",
            value.len()
        );
    }
    Ok(())
}

/// Refuses an assignment with too many bindings or too long a name or label.
fn sizes(plugin: &str, call: &str, assignment: &[Binding]) -> Result<()> {
    if assignment.len() > DIMENSIONS {
        bail!(
            "plugin `{plugin}` returned an assignment of {} values from `{call}`, over the limit of {DIMENSIONS}",
            assignment.len()
        );
    }
    for b in assignment {
        text(plugin, call, "dimension name", &b.name)?;
        if let Value::Categorical(label) = &b.value {
            text(plugin, call, "label", label)?;
        }
    }
    Ok(())
}

/// Refuses proposals with a non-finite real value.
pub(super) fn proposals(plugin: &str, proposals: &[Proposal]) -> Result<()> {
    for (i, p) in proposals.iter().enumerate() {
        sizes(plugin, "ask", &p.assignment)?;
        text(plugin, "ask", "tag", &p.tag)?;
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
pub(super) fn dimensions(plugin: &str, dimensions: &[Dimension]) -> Result<()> {
    if dimensions.len() > DIMENSIONS {
        bail!(
            "plugin `{plugin}` returned {} dimensions from `init`, over the limit of {DIMENSIONS}",
            dimensions.len()
        );
    }
    for d in dimensions {
        text(plugin, "init", "dimension name", &d.name)?;
        let labels = match (&d.domain, &d.condition) {
            (Domain::Categorical(l), _) if l.len() > LABELS => bail!(
                "plugin `{plugin}` returned dimension `{}` with {} labels from `init`, over the limit of {LABELS}",
                d.name,
                l.len()
            ),
            (Domain::Categorical(l), None) => l.iter().collect::<Vec<_>>(),
            (Domain::Categorical(l), Some(c)) => l.iter().chain(&c.labels).collect(),
            (_, Some(c)) => c.labels.iter().collect(),
            (_, None) => Vec::new(),
        };
        for label in labels {
            text(plugin, "init", "label", label)?;
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
pub fn network(plugin: &str, network: &Network) -> Result<()> {
    text(plugin, "build", "network key", &network.key)?;
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
            let e = proposals("s", std::slice::from_ref(&p))
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
            let e = dimensions("sp", &[d]).unwrap_err().to_string();
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
        let e = network("sp", &n).unwrap_err().to_string();
        assert!(e.contains("node 1 (dropout)"), "{e}");
        let ok = Proposal {
            assignment: vec![real("lr", 0.1)],
            budget: None,
            resume_from: None,
            tag: String::new(),
        };
        assert!(proposals("s", std::slice::from_ref(&ok)).is_ok());
    }

    #[test]
    fn oversized_texts_and_lists_are_refused_and_messages_cut() {
        let long = "x".repeat(TEXT_BYTES + 1);
        let tagged = Proposal {
            assignment: vec![real("lr", 0.1)],
            budget: None,
            resume_from: None,
            tag: long.clone(),
        };
        let e = proposals("s", &[tagged]).unwrap_err().to_string();
        assert!(e.contains("tag of 4097 bytes"), "{e}");
        let n = Network {
            nodes: Vec::new(),
            key: long.clone(),
        };
        let e = network("sp", &n).unwrap_err().to_string();
        assert!(e.contains("network key of 4097 bytes"), "{e}");
        let many = Dimension {
            name: "c".into(),
            domain: Domain::Categorical(vec![String::new(); LABELS + 1]),
            condition: None,
        };
        let e = dimensions("sp", &[many]).unwrap_err().to_string();
        assert!(e.contains("100001 labels"), "{e}");
        let message = "é".repeat(MESSAGE_BYTES);
        let cut = clipped(&message);
        assert!(
            cut.len() < MESSAGE_BYTES + 40 && cut.ends_with("bytes cut)"),
            "{cut}"
        );
        assert_eq!(clipped("short"), "short");
    }
}
