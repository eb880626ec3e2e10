//! The Gaussian process: a Matérn-5/2 kernel on a distance that mixes
//! numeric and categorical dimensions, fitted by maximising the marginal
//! likelihood over a grid of hyperparameters.

/// One dimension of an encoded assignment.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Coord {
    /// The dimension is inactive (its condition does not hold).
    Off,
    /// A numeric value's position in [0, 1] (log scale where asked).
    Num(f64),
    /// A categorical value's label index.
    Cat(usize),
}

/// Squared numeric distance and the count of categorical mismatches (a
/// dimension active in one point only counts as a mismatch).
fn parts(a: &[Coord], b: &[Coord]) -> (f64, f64) {
    let (mut num, mut cat) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Coord::Num(u), Coord::Num(v)) => num += (u - v) * (u - v),
            (Coord::Cat(i), Coord::Cat(j)) if i != j => cat += 1.0,
            (Coord::Off, Coord::Off) | (Coord::Cat(_), Coord::Cat(_)) => {}
            _ => cat += 1.0,
        }
    }
    (num, cat)
}

/// Numeric length scales (multiplied by the square root of the number of
/// numeric dimensions, so that they suit any dimensionality).
const LENGTHS: [f64; 11] = [0.03, 0.05, 0.08, 0.12, 0.18, 0.27, 0.4, 0.6, 0.9, 1.35, 2.0];
/// Weights of one categorical mismatch in the squared distance.
const CATEGORICAL: [f64; 8] = [0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.0, 4.0];
/// Observation noise variances, relative to the standardised objective.
const NOISES: [f64; 7] = [1e-6, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3];

/// Indices into the hyperparameter grids.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) struct Hyper {
    length: usize,
    categorical: usize,
    noise: usize,
}

impl Hyper {
    /// The middle of every grid.
    pub(crate) fn middle() -> Self {
        Hyper {
            length: LENGTHS.len() / 2,
            categorical: CATEGORICAL.len() / 2,
            noise: 3,
        }
    }

    fn grid() -> impl Iterator<Item = Hyper> {
        (0..LENGTHS.len()).flat_map(|length| {
            (0..CATEGORICAL.len()).flat_map(move |categorical| {
                (0..NOISES.len()).map(move |noise| Hyper {
                    length,
                    categorical,
                    noise,
                })
            })
        })
    }

    /// The grid points one step away in one hyperparameter.
    fn steps(self) -> Vec<Hyper> {
        let mut out = Vec::new();
        let step = |i: usize, len: usize| [i.checked_sub(1), (i + 1 < len).then_some(i + 1)];
        for l in step(self.length, LENGTHS.len()).into_iter().flatten() {
            out.push(Hyper { length: l, ..self });
        }
        for c in step(self.categorical, CATEGORICAL.len())
            .into_iter()
            .flatten()
        {
            out.push(Hyper {
                categorical: c,
                ..self
            });
        }
        for n in step(self.noise, NOISES.len()).into_iter().flatten() {
            out.push(Hyper { noise: n, ..self });
        }
        out
    }
}

/// The Matérn-5/2 correlation at distance `r`.
fn matern52(r: f64) -> f64 {
    let s = 5f64.sqrt() * r;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

/// Which kinds of dimension the space has: a grid that cannot matter is
/// not searched.
#[derive(Clone, Copy)]
pub(crate) struct Kinds {
    /// Numeric dimensions (their count scales the length scales).
    pub(crate) numeric: usize,
    /// Whether any dimension is categorical or conditional.
    pub(crate) categorical: bool,
}

/// A fitted Gaussian process over standardised observations.
pub(crate) struct Model {
    points: Vec<Vec<Coord>>,
    length: f64,
    weight: f64,
    /// The lower Cholesky factor of K + noise I, row-major n x n.
    chol: Vec<f64>,
    /// (K + noise I)^-1 y.
    alpha: Vec<f64>,
    /// The log marginal likelihood.
    pub(crate) likelihood: f64,
    /// The hyperparameters it was fitted with.
    pub(crate) hyper: Hyper,
}

impl Model {
    /// Fits `points` with values `y` (standardised) at `hyper`; `None` when
    /// the kernel matrix is not positive definite.
    pub(crate) fn fit(
        points: &[Vec<Coord>],
        y: &[f64],
        hyper: Hyper,
        kinds: Kinds,
    ) -> Option<Model> {
        let n = points.len();
        let length = LENGTHS[hyper.length] * (kinds.numeric.max(1) as f64).sqrt();
        let weight = CATEGORICAL[hyper.categorical];
        let noise = NOISES[hyper.noise];
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let (num, cat) = parts(&points[i], &points[j]);
                let v = matern52((num / (length * length) + cat * weight).sqrt());
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += noise;
        }
        cholesky(&mut k, n)?;
        let z = forward(&k, n, y);
        let alpha = backward(&k, n, &z);
        let log_det: f64 = (0..n).map(|i| k[i * n + i].ln()).sum();
        let likelihood = -0.5 * z.iter().map(|v| v * v).sum::<f64>()
            - log_det
            - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        Some(Model {
            points: points.to_vec(),
            length,
            weight,
            chol: k,
            alpha,
            likelihood,
            hyper,
        })
    }

    /// The fit with the largest marginal likelihood: over the whole grid when
    /// `full`, else by coordinate ascent from `start`.
    pub(crate) fn best(
        points: &[Vec<Coord>],
        y: &[f64],
        start: Hyper,
        kinds: Kinds,
        full: bool,
    ) -> Option<Model> {
        let relevant = |h: &Hyper| {
            (kinds.numeric > 0 || h.length == Hyper::middle().length)
                && (kinds.categorical || h.categorical == Hyper::middle().categorical)
        };
        let better = |a: Option<Model>, b: Option<Model>| match (a, b) {
            (Some(a), Some(b)) => Some(if b.likelihood > a.likelihood { b } else { a }),
            (a, b) => a.or(b),
        };
        if full {
            return Hyper::grid()
                .filter(relevant)
                .map(|h| Model::fit(points, y, h, kinds))
                .fold(None, better);
        }
        let mut best = Model::fit(points, y, start, kinds);
        loop {
            let from = best.as_ref().map_or(start, |m| m.hyper);
            let step = from
                .steps()
                .into_iter()
                .filter(relevant)
                .map(|h| Model::fit(points, y, h, kinds))
                .fold(None, better);
            match (&best, step) {
                (Some(b), Some(s)) if s.likelihood > b.likelihood => best = Some(s),
                (None, Some(s)) => best = Some(s),
                _ => return best,
            }
        }
    }

    /// The same hyperparameters refitted on other data.
    pub(crate) fn refit(&self, points: &[Vec<Coord>], y: &[f64], kinds: Kinds) -> Option<Model> {
        Model::fit(points, y, self.hyper, kinds)
    }

    /// The posterior mean and standard deviation of the latent function at `x`.
    pub(crate) fn predict(&self, x: &[Coord]) -> (f64, f64) {
        let n = self.points.len();
        let k: Vec<f64> = self
            .points
            .iter()
            .map(|p| {
                let (num, cat) = parts(x, p);
                matern52((num / (self.length * self.length) + cat * self.weight).sqrt())
            })
            .collect();
        let mean = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let v = forward(&self.chol, n, &k);
        let var = (1.0 - v.iter().map(|x| x * x).sum::<f64>()).max(1e-12);
        (mean, var.sqrt())
    }
}

/// In-place lower Cholesky factorisation of the symmetric n x n `a`
/// (row-major; the upper triangle is left as it was). `None` when `a` is not
/// positive definite.
fn cholesky(a: &mut [f64], n: usize) -> Option<()> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d.is_nan() || d <= 1e-12 {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    Some(())
}

/// Solves L z = b for the lower factor L.
fn forward(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * z[k];
        }
        z[i] = s / l[i * n + i];
    }
    z
}

/// Solves L^T x = z for the lower factor L.
fn backward(l: &[f64], n: usize, z: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = z[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(xs: &[f64]) -> Vec<Vec<Coord>> {
        xs.iter().map(|&x| vec![Coord::Num(x)]).collect()
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] = L L^T with L = [[2, 0], [1, sqrt 2]].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        cholesky(&mut a, 2).unwrap();
        assert!((a[0] - 2.0).abs() < 1e-12 && (a[2] - 1.0).abs() < 1e-12);
        assert!((a[3] - 2f64.sqrt()).abs() < 1e-12);
        let z = forward(&a, 2, &[2.0, 4.0]);
        let x = backward(&a, 2, &z);
        // 4x + 2y = 2, 2x + 3y = 4: x = -0.25, y = 1.5.
        assert!((x[0] + 0.25).abs() < 1e-12 && (x[1] - 1.5).abs() < 1e-12);
        assert!(cholesky(&mut [1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn the_posterior_interpolates_data_and_is_uncertain_away_from_it() {
        let kinds = Kinds {
            numeric: 1,
            categorical: false,
        };
        let xs = [0.1, 0.3, 0.5, 0.7, 0.9];
        let y: Vec<f64> = xs.iter().map(|x: &f64| (6.0 * x).sin()).collect();
        let m = Model::best(&line(&xs), &y, Hyper::middle(), kinds, true).unwrap();
        for (x, want) in xs.iter().zip(&y) {
            let (mean, sd) = m.predict(&[Coord::Num(*x)]);
            assert!((mean - want).abs() < 0.05, "{x}: {mean} vs {want}");
            assert!(sd < 0.1, "{x}: sd {sd}");
        }
        let (_, far) = m.predict(&[Coord::Num(5.0)]);
        assert!(far > 0.9, "sd far from the data: {far}");
        // Coordinate ascent from the middle reaches a fit at least as likely
        // as the middle itself.
        let middle = Model::fit(&line(&xs), &y, Hyper::middle(), kinds).unwrap();
        let ascent = Model::best(&line(&xs), &y, Hyper::middle(), kinds, false).unwrap();
        assert!(ascent.likelihood >= middle.likelihood);
        assert!(m.likelihood >= ascent.likelihood - 1e-9);
    }

    #[test]
    fn categorical_mismatches_and_inactive_dimensions_add_distance() {
        let a = [Coord::Cat(0), Coord::Num(0.5), Coord::Off];
        let b = [Coord::Cat(1), Coord::Num(0.25), Coord::Cat(2)];
        assert_eq!(parts(&a, &b), (0.0625, 2.0));
        assert_eq!(parts(&a, &a), (0.0, 0.0));
    }
}
