//! Checks proposals against the search space's dimensions before anything is
//! built from them (strategies are untrusted plugins), and gives assignments a
//! canonical text for logs and the store.

use crate::ir::{Binding, Dimension, Domain, Value};

/// Whether `dim` is active given the bindings before it.
fn is_active(dim: &Dimension, earlier: &[Binding]) -> bool {
    dim.condition.as_ref().is_none_or(|c| {
        earlier.iter().any(|b| {
            b.name == c.parent && matches!(&b.value, Value::Categorical(l) if c.labels.contains(l))
        })
    })
}

fn fits(domain: &Domain, value: &Value) -> bool {
    match (domain, value) {
        (Domain::Categorical(labels), Value::Categorical(l)) => labels.contains(l),
        (Domain::Integer(r), Value::Integer(v)) => (r.low..=r.high).contains(v),
        (Domain::Real(r), Value::Real(v)) => r.low <= *v && *v <= r.high,
        _ => false,
    }
}

/// Checks that `assignment` binds exactly the active dimensions, in
/// dimension order, each with a value in its domain; the error says which
/// binding is wrong and why.
pub fn validate(dims: &[Dimension], assignment: &[Binding]) -> Result<(), String> {
    let mut bound = 0;
    for dim in dims {
        let earlier = &assignment[..bound];
        if !is_active(dim, earlier) {
            if let Some(b) = assignment.iter().find(|b| b.name == dim.name) {
                return Err(format!(
                    "binds `{}`, which is inactive (its condition does not hold)",
                    b.name
                ));
            }
            continue;
        }
        match assignment.get(bound) {
            Some(b) if b.name == dim.name => {
                if !fits(&dim.domain, &b.value) {
                    return Err(format!(
                        "gives `{}` the value {}, outside its domain",
                        b.name,
                        value_text(&b.value)
                    ));
                }
                bound += 1;
            }
            Some(b) => {
                return Err(format!(
                    "binds `{}` where the active dimension `{}` comes next",
                    b.name, dim.name
                ))
            }
            None => {
                return Err(format!(
                    "leaves the active dimension `{}` unbound",
                    dim.name
                ))
            }
        }
    }
    match assignment.get(bound) {
        Some(b) => Err(format!(
            "binds `{}`, which is not a dimension of the space (or is out of order)",
            b.name
        )),
        None => Ok(()),
    }
}

/// The canonical text of a value.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Categorical(l) => l.clone(),
        Value::Integer(v) => v.to_string(),
        Value::Real(v) => format!("{v:?}"),
    }
}

/// `name=value` pairs joined by commas: equal assignments, equal texts.
pub fn text(assignment: &[Binding]) -> String {
    assignment
        .iter()
        .map(|b| format!("{}={}", b.name, value_text(&b.value)))
        .collect::<Vec<_>>()
        .join(",")
}
