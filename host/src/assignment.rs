//! Checks proposals against the search space's dimensions before anything is
//! built from them (strategies are untrusted plugins), enumerates the
//! assignments of a finite space, and gives assignments a canonical text for
//! logs and the store.

use crate::ir::{Assignment, Binding, Dimension, Domain, Value};

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

/// Every assignment of `dims` (conditions respected, in dimension order)
/// when all dimensions are categorical or integer and there are at most
/// `cap` assignments; None otherwise.
pub fn enumerate(dims: &[Dimension], cap: usize) -> Option<Vec<Assignment>> {
    let mut all: Vec<Assignment> = vec![Vec::new()];
    for dim in dims {
        let values: Vec<Value> = match &dim.domain {
            Domain::Categorical(labels) => labels.iter().cloned().map(Value::Categorical).collect(),
            Domain::Integer(r) => {
                if i128::from(r.high) - i128::from(r.low) >= cap as i128 {
                    return None;
                }
                (r.low..=r.high).map(Value::Integer).collect()
            }
            Domain::Real(_) => return None,
        };
        let mut next = Vec::with_capacity(all.len());
        for a in all {
            if !is_active(dim, &a) {
                next.push(a);
                continue;
            }
            for v in &values {
                if next.len() >= cap {
                    return None;
                }
                let mut b = a.clone();
                b.push(Binding {
                    name: dim.name.clone(),
                    value: v.clone(),
                });
                next.push(b);
            }
        }
        all = next;
    }
    Some(all)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Condition, IntRange, RealRange};

    fn dim(name: &str, domain: Domain, condition: Option<Condition>) -> Dimension {
        Dimension {
            name: name.into(),
            domain,
            condition,
        }
    }

    #[test]
    fn a_finite_space_is_enumerated_with_its_conditions_and_an_infinite_one_is_not() {
        let layers = dim(
            "layers",
            Domain::Categorical(vec!["1".into(), "2".into()]),
            None,
        );
        let width = dim(
            "second",
            Domain::Integer(IntRange {
                low: 8,
                high: 10,
                log: false,
            }),
            Some(Condition {
                parent: "layers".into(),
                labels: vec!["2".into()],
            }),
        );
        let dims = [layers, width];
        let all = enumerate(&dims, 100).unwrap();
        // "1" alone, then "2" with each of three widths.
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|a| validate(&dims, a).is_ok()));
        assert!(enumerate(&dims, 3).is_none(), "over the cap");
        let real = dim(
            "lr",
            Domain::Real(RealRange {
                low: 0.0,
                high: 1.0,
                log: false,
            }),
            None,
        );
        assert!(enumerate(&[real], 100).is_none());
    }
}
