//! Assignments that respect domains and conditions: sampling, mutation,
//! validation, and the canonical text of an assignment; and the small
//! helpers search spaces declare and read categorical dimensions with.

use crate::{Assignment, Binding, Condition, Dimension, Domain, Rng, Value};

/// A categorical dimension of `labels`, active under `condition`.
pub fn categorical(
    name: impl Into<String>,
    labels: Vec<String>,
    condition: Option<Condition>,
) -> Dimension {
    Dimension {
        name: name.into(),
        domain: Domain::Categorical(labels),
        condition,
    }
}

/// Labels that read back as the numbers they name: `[16, 32]` as `16`,
/// `32`; `[0.0, 0.5]` as `0.0`, `0.5`.
pub fn number_labels<T: std::fmt::Debug>(values: &[T]) -> Vec<String> {
    values.iter().map(|v| format!("{v:?}")).collect()
}

/// The label `assignment` gives the categorical dimension `name`; errors
/// name `plugin`.
pub fn label<'a>(plugin: &str, assignment: &'a [Binding], name: &str) -> Result<&'a str, String> {
    match value_of(assignment, name) {
        Some(Value::Categorical(l)) => Ok(l),
        _ => Err(format!("{plugin}: `{name}` is missing or not a label")),
    }
}

/// The label of `name` read as a number (see [`number_labels`]).
pub fn number<T: std::str::FromStr>(
    plugin: &str,
    assignment: &[Binding],
    name: &str,
) -> Result<T, String> {
    let text = label(plugin, assignment, name)?;
    text.parse()
        .map_err(|_| format!("{plugin}: `{name}` = `{text}` is not a number"))
}

/// The value bound to `name`, if any.
pub fn value_of<'a>(assignment: &'a [Binding], name: &str) -> Option<&'a Value> {
    assignment.iter().find(|b| b.name == name).map(|b| &b.value)
}

/// Whether `dim` is active given the bindings made so far (its parent, if
/// any, comes earlier in dimension order).
pub fn is_active(dim: &Dimension, so_far: &[Binding]) -> bool {
    match &dim.condition {
        None => true,
        Some(c) => {
            matches!(value_of(so_far, &c.parent), Some(Value::Categorical(l)) if c.labels.contains(l))
        }
    }
}

/// Checks that dimensions are well formed: unique names, non-empty and
/// duplicate-free labels, ordered ranges, log scales on positive ranges, and
/// conditions on earlier categorical parents with labels the parent has.
pub fn check_dimensions(dims: &[Dimension]) -> Result<(), String> {
    for (i, d) in dims.iter().enumerate() {
        let earlier = &dims[..i];
        if d.name.is_empty() || earlier.iter().any(|e| e.name == d.name) {
            return Err(format!(
                "dimension {i}: name `{}` is empty or used twice",
                d.name
            ));
        }
        match &d.domain {
            Domain::Categorical(labels) => {
                if labels.is_empty() {
                    return Err(format!("dimension `{}` has no labels", d.name));
                }
                if labels
                    .iter()
                    .enumerate()
                    .any(|(j, l)| labels[..j].contains(l))
                {
                    return Err(format!("dimension `{}` repeats a label", d.name));
                }
            }
            Domain::Integer(r) => {
                if r.low > r.high || (r.log && r.low < 1) {
                    return Err(format!("dimension `{}`: integer range {}..={} (log {}) is empty or not positive for log", d.name, r.low, r.high, r.log));
                }
            }
            Domain::Real(r) => {
                if !r.low.is_finite()
                    || !r.high.is_finite()
                    || r.low > r.high
                    || (r.log && r.low <= 0.0)
                {
                    return Err(format!("dimension `{}`: real range {}..{} (log {}) is empty, not finite, or not positive for log", d.name, r.low, r.high, r.log));
                }
            }
        }
        if let Some(c) = &d.condition {
            let parent = earlier.iter().find(|e| e.name == c.parent).ok_or_else(|| {
                format!(
                    "dimension `{}` is conditional on `{}`, which is not an earlier dimension",
                    d.name, c.parent
                )
            })?;
            let Domain::Categorical(labels) = &parent.domain else {
                return Err(format!(
                    "dimension `{}` is conditional on `{}`, which is not categorical",
                    d.name, c.parent
                ));
            };
            if let Some(bad) = c.labels.iter().find(|l| !labels.contains(l)) {
                return Err(format!(
                    "dimension `{}`: condition label `{bad}` is not a label of `{}`",
                    d.name, c.parent
                ));
            }
        }
    }
    Ok(())
}

/// Whether `value` lies in `domain`.
pub fn in_domain(domain: &Domain, value: &Value) -> bool {
    match (domain, value) {
        (Domain::Categorical(labels), Value::Categorical(l)) => labels.contains(l),
        (Domain::Integer(r), Value::Integer(v)) => r.low <= *v && *v <= r.high,
        (Domain::Real(r), Value::Real(v)) => r.low <= *v && *v <= r.high,
        _ => false,
    }
}

/// Checks that `assignment` binds exactly the active dimensions, in order,
/// with values in their domains.
pub fn validate(dims: &[Dimension], assignment: &[Binding]) -> Result<(), String> {
    let mut expected = Vec::new();
    for d in dims {
        if is_active(d, assignment) {
            expected.push(d);
        }
    }
    for (i, b) in assignment.iter().enumerate() {
        let Some(d) = expected.get(i) else {
            return Err(format!(
                "assignment binds `{}`, which is not an active dimension at that place",
                b.name
            ));
        };
        if d.name != b.name {
            return Err(format!(
                "assignment binds `{}` where the active dimension `{}` was expected",
                b.name, d.name
            ));
        }
        if !in_domain(&d.domain, &b.value) {
            return Err(format!(
                "assignment gives `{}` the value {}, outside its domain",
                b.name,
                value_text(&b.value)
            ));
        }
    }
    if let Some(d) = expected.get(assignment.len()) {
        return Err(format!(
            "assignment leaves the active dimension `{}` unbound",
            d.name
        ));
    }
    Ok(())
}

/// A value drawn uniformly from `domain` (uniform in log space where asked).
pub fn sample_value(domain: &Domain, rng: &mut Rng) -> Value {
    match domain {
        Domain::Categorical(labels) => Value::Categorical(rng.choose(labels).clone()),
        Domain::Integer(r) if r.log => {
            let (lo, hi) = ((r.low as f64).ln(), ((r.high + 1) as f64).ln());
            let x = (lo + rng.unit() * (hi - lo)).exp().floor() as i64;
            Value::Integer(x.clamp(r.low, r.high))
        }
        Domain::Integer(r) => Value::Integer(rng.int_between(r.low, r.high)),
        Domain::Real(r) if r.log => {
            let (lo, hi) = (r.low.ln(), r.high.ln());
            Value::Real((lo + rng.unit() * (hi - lo)).exp().clamp(r.low, r.high))
        }
        Domain::Real(r) => Value::Real(r.low + rng.unit() * (r.high - r.low)),
    }
}

/// A uniformly random assignment of the active dimensions.
pub fn sample(dims: &[Dimension], rng: &mut Rng) -> Assignment {
    complete(dims, &[], rng)
}

/// A random assignment whose text `taken` does not claim, drawn up to 100
/// times (in a space nearly used up, the last draw is returned anyway).
pub fn sample_new(dims: &[Dimension], rng: &mut Rng, taken: impl Fn(&str) -> bool) -> Assignment {
    let mut a = sample(dims, rng);
    for _ in 0..100 {
        if !taken(&assignment_text(&a)) {
            break;
        }
        a = sample(dims, rng);
    }
    a
}

/// An assignment that keeps the values of `keep` for dimensions that are
/// still active and samples every other active dimension.
pub fn complete(dims: &[Dimension], keep: &[Binding], rng: &mut Rng) -> Assignment {
    let mut out: Assignment = Vec::new();
    for d in dims {
        if !is_active(d, &out) {
            continue;
        }
        let value = match value_of(keep, &d.name) {
            Some(v) if in_domain(&d.domain, v) => v.clone(),
            _ => sample_value(&d.domain, rng),
        };
        out.push(Binding {
            name: d.name.clone(),
            value,
        });
    }
    out
}

/// Whether a dimension can take more than one value.
fn is_variable(domain: &Domain) -> bool {
    match domain {
        Domain::Categorical(labels) => labels.len() > 1,
        Domain::Integer(r) => r.low < r.high,
        Domain::Real(r) => r.low < r.high,
    }
}

/// Changes one active dimension to a different value (categorical: another
/// label; integer: another integer; real: a Gaussian step of a tenth of the
/// range, in log space where asked), then re-completes the dimensions whose
/// activity depends on it. Returns a copy when nothing can change.
pub fn mutate(dims: &[Dimension], assignment: &[Binding], rng: &mut Rng) -> Assignment {
    let candidates: Vec<&Dimension> = dims
        .iter()
        .filter(|d| value_of(assignment, &d.name).is_some() && is_variable(&d.domain))
        .collect();
    if candidates.is_empty() {
        return assignment.to_vec();
    }
    let dim = *rng.choose(&candidates);
    let old = value_of(assignment, &dim.name)
        .cloned()
        .expect("candidate is bound");
    let new = match (&dim.domain, &old) {
        (Domain::Categorical(labels), Value::Categorical(l)) => {
            let others: Vec<&String> = labels.iter().filter(|x| *x != l).collect();
            Value::Categorical((*rng.choose(&others)).clone())
        }
        (Domain::Integer(r), Value::Integer(v)) => {
            let span = (r.high as i128 - r.low as i128) as u64;
            let step = rng.below(span) as i128;
            // A different integer, uniform over the others.
            let x = r.low as i128 + step;
            Value::Integer(if x >= *v as i128 {
                (x + 1) as i64
            } else {
                x as i64
            })
        }
        (Domain::Real(r), Value::Real(v)) => {
            let (lo, hi, x) = if r.log {
                (r.low.ln(), r.high.ln(), v.ln())
            } else {
                (r.low, r.high, *v)
            };
            let y = (x + rng.normal(0.0, 0.1 * (hi - lo))).clamp(lo, hi);
            Value::Real(if r.log {
                y.exp().clamp(r.low, r.high)
            } else {
                y
            })
        }
        _ => sample_value(&dim.domain, rng),
    };
    let keep: Vec<Binding> = assignment
        .iter()
        .map(|b| {
            if b.name == dim.name {
                Binding {
                    name: b.name.clone(),
                    value: new.clone(),
                }
            } else {
                b.clone()
            }
        })
        .collect();
    complete(dims, &keep, rng)
}

/// Every assignment that differs from `assignment` in one active dimension:
/// each other label of a categorical dimension; for a numeric dimension the
/// values an eighth of its range below and above (in log space where asked;
/// for integers at least one step). Dimensions whose activity depends on the
/// changed one are re-completed (kept where still active, else sampled).
/// Neighbours are distinct and in dimension order.
pub fn neighbours(dims: &[Dimension], assignment: &[Binding], rng: &mut Rng) -> Vec<Assignment> {
    let mut out: Vec<Assignment> = Vec::new();
    for dim in dims {
        let Some(old) = value_of(assignment, &dim.name) else {
            continue;
        };
        let values: Vec<Value> = match (&dim.domain, old) {
            (Domain::Categorical(labels), Value::Categorical(l)) => labels
                .iter()
                .filter(|x| *x != l)
                .map(|x| Value::Categorical(x.clone()))
                .collect(),
            (domain, old) => {
                let u = crate::numeric::to_unit(domain, old).unwrap_or(0.5);
                let mut vs = Vec::new();
                for sign in [-1.0, 1.0] {
                    let mut v = crate::numeric::from_unit(domain, u + sign / 8.0);
                    if let (Some(Value::Integer(x)), Value::Integer(o)) = (&v, old) {
                        if x == o {
                            v = Some(Value::Integer(o.saturating_add(sign as i64)));
                        }
                    }
                    if let Some(v) = v.filter(|v| v != old && in_domain(domain, v)) {
                        if !vs.contains(&v) {
                            vs.push(v);
                        }
                    }
                }
                vs
            }
        };
        for value in values {
            let keep: Vec<Binding> = assignment
                .iter()
                .map(|b| Binding {
                    name: b.name.clone(),
                    value: if b.name == dim.name {
                        value.clone()
                    } else {
                        b.value.clone()
                    },
                })
                .collect();
            let n = complete(dims, &keep, rng);
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// The canonical text of a value: the label, the integer, or the real in
/// round-trip form.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Categorical(l) => l.clone(),
        Value::Integer(v) => v.to_string(),
        Value::Real(v) => format!("{v:?}"),
    }
}

/// The canonical text of an assignment, `name=value` joined by commas: equal
/// assignments give equal texts.
pub fn assignment_text(assignment: &[Binding]) -> String {
    assignment
        .iter()
        .map(|b| format!("{}={}", b.name, value_text(&b.value)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Condition, IntRange, RealRange};

    fn space() -> Vec<Dimension> {
        vec![
            Dimension {
                name: "kind".into(),
                domain: Domain::Categorical(vec!["a".into(), "b".into()]),
                condition: None,
            },
            Dimension {
                name: "width".into(),
                domain: Domain::Integer(IntRange {
                    low: 1,
                    high: 64,
                    log: true,
                }),
                condition: Some(Condition {
                    parent: "kind".into(),
                    labels: vec!["b".into()],
                }),
            },
            Dimension {
                name: "lr".into(),
                domain: Domain::Real(RealRange {
                    low: 1e-4,
                    high: 1e-1,
                    log: true,
                }),
                condition: None,
            },
        ]
    }

    #[test]
    fn samples_and_mutations_respect_domains_and_conditions() {
        let dims = space();
        check_dimensions(&dims).unwrap();
        let mut rng = Rng::new(11);
        let mut seen_inactive = false;
        for _ in 0..500 {
            let a = sample(&dims, &mut rng);
            validate(&dims, &a).unwrap();
            seen_inactive |= value_of(&a, "width").is_none();
            let m = mutate(&dims, &a, &mut rng);
            validate(&dims, &m).unwrap();
            assert_ne!(assignment_text(&a), assignment_text(&m));
        }
        assert!(seen_inactive);
    }

    #[test]
    fn neighbours_change_one_dimension_and_respect_conditions() {
        let dims = space();
        let mut rng = Rng::new(5);
        let a = vec![
            Binding {
                name: "kind".into(),
                value: Value::Categorical("b".into()),
            },
            Binding {
                name: "width".into(),
                value: Value::Integer(1),
            },
            Binding {
                name: "lr".into(),
                value: Value::Real(1e-2),
            },
        ];
        let n = neighbours(&dims, &a, &mut rng);
        // kind=a (width leaves), width 2, lr a step down and up.
        assert_eq!(n.len(), 4, "{n:?}");
        for m in &n {
            validate(&dims, m).unwrap();
            assert_ne!(m, &a);
        }
        assert_eq!(value_of(&n[0], "width"), None);
        assert_eq!(value_of(&n[1], "width"), Some(&Value::Integer(2)));
        let Some(Value::Real(down)) = value_of(&n[2], "lr") else {
            panic!()
        };
        assert!((down / 1e-2 - 10f64.powf(-3.0 / 8.0)).abs() < 1e-9);
    }

    #[test]
    fn validate_names_the_problem() {
        let dims = space();
        let a = vec![Binding {
            name: "kind".into(),
            value: Value::Categorical("a".into()),
        }];
        assert!(validate(&dims, &a).unwrap_err().contains("`lr` unbound"));
        let b = vec![
            Binding {
                name: "kind".into(),
                value: Value::Categorical("a".into()),
            },
            Binding {
                name: "width".into(),
                value: Value::Integer(3),
            },
        ];
        assert!(validate(&dims, &b)
            .unwrap_err()
            .contains("`width` where the active dimension `lr`"));
    }

    #[test]
    fn bad_dimensions_are_refused() {
        let mut dims = space();
        dims[1].condition.as_mut().unwrap().labels = vec!["c".into()];
        assert!(check_dimensions(&dims)
            .unwrap_err()
            .contains("`c` is not a label of `kind`"));
    }
}
