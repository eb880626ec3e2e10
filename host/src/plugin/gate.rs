//! The checks every value a plugin returns passes before the host uses it
//! (after conversion to the host's types): reals must be finite, since a NaN
//! or an infinity would reach the trainer's arithmetic and the store's JSON,
//! which cannot hold it. Structural limits on networks are shape
//! inference's ([`crate::network::shape::LIMITS`]).

use crate::ir::{Binding, Dimension, Domain, Network, Op, Proposal, Value};
use anyhow::{bail, Result};

/// Refuses proposals with a non-finite real value.
pub(super) fn proposals(plugin: &str, proposals: &[Proposal]) -> Result<()> {
    for (i, p) in proposals.iter().enumerate() {
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

/// Refuses dimensions whose real range is not finite and ordered.
pub(super) fn dimensions(plugin: &str, dimensions: &[Dimension]) -> Result<()> {
    for d in dimensions {
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

/// Refuses a network with a non-finite dropout rate.
pub(super) fn network(plugin: &str, network: &Network) -> Result<()> {
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

/// Refuses an assignment with a non-finite real value (one the host is asked to build).
pub(super) fn assignment(assignment: &[Binding]) -> Result<()> {
    match non_finite(assignment) {
        Some(b) => bail!(
            "dimension `{}` is {}; values must be finite",
            b.name,
            describe(&b.value)
        ),
        None => Ok(()),
    }
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
            assert!(assignment(&p.assignment).is_err());
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
        assert!(proposals("s", &[ok]).is_ok());
    }
}
