//! A built-in, deterministic image classification task: each class is a kind
//! of shape (bars, diagonals, outlines, disks, crosses, rings, checkers, dot
//! pairs, ...) drawn at a random place, size and brightness over Gaussian
//! noise. It needs no download, is learnable by a small CNN, and is not
//! trivial: position, scale and noise vary within each class.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The number of different shape classes available.
pub const MAX_CLASSES: usize = 10;

/// Generates `count` images of `size` x `size` (values in [0, 1]) and labels
/// cycling through `classes`, from `seed`.
pub fn generate(
    count: usize,
    classes: usize,
    size: usize,
    noise: f32,
    seed: u64,
) -> (Vec<f32>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(count * size * size);
    let mut labels = Vec::with_capacity(count);
    let s = size as f32;
    for i in 0..count {
        let class = i % classes;
        let cx = s / 2.0 + rng.random_range(-s / 6.0..=s / 6.0);
        let cy = s / 2.0 + rng.random_range(-s / 6.0..=s / 6.0);
        let r = s * rng.random_range(0.22..0.38);
        let t = (s / 14.0).max(1.0) * rng.random_range(0.8..1.4);
        let ink = rng.random_range(0.55..1.0f32);
        for y in 0..size {
            for x in 0..size {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let inside = shape(class, dx, dy, r, t);
                let v = if inside { ink } else { 0.0 } + noise * gaussian(&mut rng);
                pixels.push(v.clamp(0.0, 1.0));
            }
        }
        labels.push(class as u8);
    }
    (pixels, labels)
}

/// Whether the point (dx, dy) from the centre is ink for `class` at radius
/// `r` and stroke `t`.
fn shape(class: usize, dx: f32, dy: f32, r: f32, t: f32) -> bool {
    let d = (dx * dx + dy * dy).sqrt();
    let within = dx.abs() <= r && dy.abs() <= r;
    match class {
        0 => dy.abs() <= t && dx.abs() <= r,       // horizontal bar
        1 => dx.abs() <= t && dy.abs() <= r,       // vertical bar
        2 => (dx - dy).abs() <= t * 1.2 && within, // diagonal
        3 => (dx + dy).abs() <= t * 1.2 && within, // anti-diagonal
        4 => within && (r - dx.abs() <= t || r - dy.abs() <= t), // square outline
        5 => d <= r * 0.8,                         // filled disk
        6 => within && (dx.abs() <= t || dy.abs() <= t), // plus
        7 => (d - r * 0.8).abs() <= t,             // ring
        8 => {
            within
                && ((dx + r) / (2.0 * t)).floor() as i32 % 2
                    == ((dy + r) / (2.0 * t)).floor() as i32 % 2
        } // checkers
        _ => {
            ((dx - r * 0.5).powi(2) + dy.powi(2)).sqrt() <= t * 1.5
                || ((dx + r * 0.5).powi(2) + dy.powi(2)).sqrt() <= t * 1.5
        } // two dots
    }
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = 1.0 - rng.random::<f32>();
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_classes_differ() {
        let (a, la) = generate(200, 10, 16, 0.3, 5);
        let (b, lb) = generate(200, 10, 16, 0.3, 5);
        let (c, _) = generate(200, 10, 16, 0.3, 6);
        assert_eq!((&a, &la), (&b, &lb));
        assert_ne!(a, c);
        assert!(la.iter().all(|&l| (l as usize) < 10));
        assert_eq!(la.iter().filter(|&&l| l == 3).count(), 20);
        // Without noise, the mean image of each class differs from every other's.
        let (clean, labels) = generate(500, 10, 16, 0.0, 1);
        let means: Vec<Vec<f32>> = (0..10)
            .map(|k| {
                let mut m = vec![0.0; 256];
                for (img, _) in clean.chunks(256).zip(&labels).filter(|(_, &l)| l == k) {
                    m.iter_mut().zip(img).for_each(|(a, b)| *a += b / 50.0);
                }
                m
            })
            .collect();
        for i in 0..10 {
            for j in 0..i {
                let dist: f32 = means[i]
                    .iter()
                    .zip(&means[j])
                    .map(|(a, b)| (a - b).abs())
                    .sum();
                assert!(dist > 3.0, "classes {i} and {j} look alike ({dist})");
            }
        }
    }
}
