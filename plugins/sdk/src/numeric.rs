//! Numeric helpers for model-based strategies: the standard normal
//! distribution, and the unit interval that every numeric dimension maps
//! onto (in log space where the dimension asks for it).

use crate::{Domain, Value};

/// The error function (Abramowitz and Stegun 7.1.26, error below 1.5e-7).
pub fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

/// The standard normal distribution function.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// The standard normal density.
pub fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The ends of a numeric domain in its internal scale (log where asked;
/// integers widened by half a step so each integer owns an equal share).
fn ends(domain: &Domain) -> Option<(f64, f64, bool)> {
    let (low, high, log) = match domain {
        Domain::Integer(r) => (r.low as f64 - 0.5, r.high as f64 + 0.5, r.log),
        Domain::Real(r) => (r.low, r.high, r.log),
        Domain::Categorical(_) => return None,
    };
    Some(if log {
        // An integer log range starts at 1: its widened end 0.5 stays positive.
        (low.ln(), high.ln(), true)
    } else {
        (low, high, false)
    })
}

/// Where `value` lies in its numeric `domain`, as a number in [0, 1]; `None`
/// for categorical domains or mismatched values.
pub fn to_unit(domain: &Domain, value: &Value) -> Option<f64> {
    let (low, high, log) = ends(domain)?;
    let v = match value {
        Value::Integer(i) => *i as f64,
        Value::Real(r) => *r,
        Value::Categorical(_) => return None,
    };
    let x = if log { v.ln() } else { v };
    if high > low {
        Some(((x - low) / (high - low)).clamp(0.0, 1.0))
    } else {
        Some(0.5)
    }
}

/// The value of numeric `domain` at position `u` of [0, 1] (clamped; integers
/// rounded into their range); `None` for categorical domains.
pub fn from_unit(domain: &Domain, u: f64) -> Option<Value> {
    let (low, high, log) = ends(domain)?;
    let x = low + u.clamp(0.0, 1.0) * (high - low);
    let v = if log { x.exp() } else { x };
    Some(match domain {
        Domain::Integer(r) => Value::Integer((v.round() as i64).clamp(r.low, r.high)),
        Domain::Real(r) => Value::Real(v.clamp(r.low, r.high)),
        Domain::Categorical(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntRange, RealRange};

    #[test]
    fn the_normal_distribution_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
        assert!((normal_pdf(0.0) - 0.398_942_28).abs() < 1e-7);
    }

    #[test]
    fn unit_positions_round_trip_in_linear_and_log_scales() {
        let real = Domain::Real(RealRange {
            low: 1e-4,
            high: 1e-1,
            log: true,
        });
        let u = to_unit(&real, &Value::Real(1e-2)).unwrap();
        assert!((u - 2.0 / 3.0).abs() < 1e-12);
        let Some(Value::Real(back)) = from_unit(&real, u) else {
            panic!("not a real")
        };
        assert!((back - 1e-2).abs() < 1e-12);
        let int = Domain::Integer(IntRange {
            low: 1,
            high: 4,
            log: false,
        });
        for i in 1..=4 {
            let u = to_unit(&int, &Value::Integer(i)).unwrap();
            assert_eq!(from_unit(&int, u), Some(Value::Integer(i)));
        }
        assert_eq!(from_unit(&int, 7.0), Some(Value::Integer(4)));
        assert_eq!(
            to_unit(&Domain::Categorical(vec!["a".into()]), &Value::Integer(1)),
            None
        );
    }
}
