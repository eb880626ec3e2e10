//! Augmentation of training batches (`[data.augment]`): a random crop with
//! padding, a horizontal flip and cutout, drawn for each image from a seed
//! of the trial, the epoch and the batch, so a trial's batches are the same
//! in every run and after every resume, with no state to save.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The largest `crop_padding`.
const MAX_PADDING: usize = 64;

/// The largest `cutout` side.
const MAX_CUTOUT: usize = 1024;

/// The `[data.augment]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Shift each image by up to this many pixels each way, filling with 0
    /// (the channel mean, after normalisation): a random crop of the image
    /// padded by this much. 0: none.
    pub crop_padding: usize,
    /// Mirror each image left to right with probability one half.
    pub flip: bool,
    /// Zero a square of this side at a random centre (cutout). 0: none.
    pub cutout: usize,
}

impl Augment {
    /// Whether it changes anything.
    pub fn is_active(&self) -> bool {
        self.crop_padding > 0 || self.flip || self.cutout > 0
    }

    /// Checks the values; errors name the key.
    pub fn validate(&self) -> Result<()> {
        if self.crop_padding > MAX_PADDING {
            bail!(
                "[data.augment] crop_padding = {} must be at most {MAX_PADDING}",
                self.crop_padding
            );
        }
        if self.cutout > MAX_CUTOUT {
            bail!(
                "[data.augment] cutout = {} must be at most {MAX_CUTOUT}",
                self.cutout
            );
        }
        Ok(())
    }

    /// Augments a batch of planar images (`N x C x H x W`) in place, each
    /// image with its own draws from `seed`.
    pub fn apply(&self, images: &mut [f32], (c, h, w): (usize, usize, usize), seed: u64) {
        let per = c * h * w;
        if per == 0 {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut scratch = vec![0f32; per];
        for image in images.chunks_exact_mut(per) {
            let flip = self.flip && rng.random_bool(0.5);
            let p = self.crop_padding as i64;
            let (dy, dx) = if p > 0 {
                (rng.random_range(-p..=p), rng.random_range(-p..=p))
            } else {
                (0, 0)
            };
            if flip || dy != 0 || dx != 0 {
                scratch.copy_from_slice(image);
                for plane in 0..c {
                    for y in 0..h as i64 {
                        for x in 0..w as i64 {
                            let (sy, sx) = (y + dy, x + dx);
                            let sx = if flip { w as i64 - 1 - sx } else { sx };
                            let inside = (0..h as i64).contains(&sy) && (0..w as i64).contains(&sx);
                            let at = plane * h * w + (y as usize) * w + x as usize;
                            image[at] = if inside {
                                scratch[plane * h * w + sy as usize * w + sx as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            if self.cutout > 0 {
                let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
                let half = self.cutout / 2;
                let rows = cy.saturating_sub(half)..(cy + self.cutout - half).min(h);
                let cols = cx.saturating_sub(half)..(cx + self.cutout - half).min(w);
                for plane in 0..c {
                    for y in rows.clone() {
                        let row = plane * h * w + y * w;
                        image[row + cols.start..row + cols.end].fill(0.0);
                    }
                }
            }
        }
    }
}

/// The seed of a trial's batch `batch` of epoch `epoch` (SplitMix64 of the three).
pub fn batch_seed(trial: u64, epoch: u32, batch: usize) -> u64 {
    let mut z =
        trial ^ (u64::from(epoch) << 32) ^ (batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 x 3 x 4 image with distinct values.
    fn image() -> Vec<f32> {
        (1..=12).map(|v| v as f32).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_batch_and_each_change_is_what_it_says() {
        let shape = (1, 3, 4);
        let all = Augment {
            crop_padding: 1,
            flip: true,
            cutout: 2,
        };
        let batch = |a: &Augment, seed| {
            let mut b: Vec<f32> = (0..8).flat_map(|_| image()).collect();
            a.apply(&mut b, shape, seed);
            b
        };
        assert_eq!(batch(&all, 7), batch(&all, 7));
        assert_ne!(batch(&all, 7), batch(&all, 8));
        // Images of one batch get their own draws.
        let b = batch(&all, 7);
        assert!(b.chunks(12).any(|i| i != &b[..12]));

        // A flip mirrors rows; values are kept.
        let flip = Augment {
            flip: true,
            ..Augment::default()
        };
        for i in batch(&flip, 3).chunks(12) {
            let mirrored: Vec<f32> = image()
                .chunks(4)
                .flat_map(|r| r.iter().rev().copied().collect::<Vec<_>>())
                .collect();
            assert!(i == image() || i == mirrored, "{i:?}");
        }
        // A crop shifts within the padding and fills with 0.
        let crop = Augment {
            crop_padding: 1,
            ..Augment::default()
        };
        for i in batch(&crop, 5).chunks(12) {
            let kept = i.iter().filter(|v| **v != 0.0).count();
            assert!(kept >= 6, "at most one row and one column lost: {i:?}");
        }
        // Cutout zeroes at most a 2 x 2 square and nothing else.
        let cut = Augment {
            cutout: 2,
            ..Augment::default()
        };
        for i in batch(&cut, 9).chunks(12) {
            let zeroed: Vec<usize> = (0..12).filter(|&k| i[k] == 0.0).collect();
            assert!(!zeroed.is_empty() && zeroed.len() <= 4, "{i:?}");
            assert!((0..12).all(|k| i[k] == 0.0 || i[k] == image()[k]));
        }
        assert_ne!(batch_seed(1, 1, 0), batch_seed(1, 1, 1));
        assert_ne!(batch_seed(1, 1, 0), batch_seed(1, 2, 0));
    }
}
