//! Datasets: Fashion-MNIST, MNIST and CIFAR-10 from the standard files at a
//! user-given path, and the built-in synthetic task. Everything is decoded
//! once, split (train / validation / test), normalised with the training
//! split's statistics, and kept in memory as tensors.

pub mod cifar;
pub mod idx;
pub mod synthetic;

use crate::ir::Task;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const FASHION_MNIST_DEFAULT: &str = "/usr/share/datasets/fashion-mnist";

/// Which dataset to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST (IDX files).
    FashionMnist,
    /// MNIST (IDX files).
    Mnist,
    /// CIFAR-10, binary version.
    Cifar10,
    /// The built-in synthetic shapes task.
    Synthetic,
}

/// The `[data]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `fashion-mnist`, `mnist`, `cifar10` or `synthetic` (default).
    pub dataset: DatasetKind,
    /// Folder with the dataset's files (Fashion-MNIST defaults to Debian's location).
    pub path: Option<PathBuf>,
    /// Fraction of the training images held out for validation (default 0.2).
    pub validation_split: f64,
    /// Use only the first N training images (before the split).
    pub subset: Option<usize>,
    /// Normalise each channel with the training split's mean and deviation (default true).
    pub normalize: bool,
    /// Seed of the split and the synthetic images; default: the run's seed.
    pub seed: Option<u64>,
    /// Synthetic only: number of classes, 2..=10 (default 10).
    pub classes: Option<usize>,
    /// Synthetic only: image height and width (default 16).
    pub image_size: Option<usize>,
    /// Synthetic only: training images, before the validation split (default 3000).
    pub train_samples: Option<usize>,
    /// Synthetic only: test images (default 1000).
    pub test_samples: Option<usize>,
    /// Synthetic only: standard deviation of the pixel noise (default 0.35).
    pub noise: Option<f32>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::Synthetic,
            path: None,
            validation_split: 0.2,
            subset: None,
            normalize: true,
            seed: None,
            classes: None,
            image_size: None,
            train_samples: None,
            test_samples: None,
            noise: None,
        }
    }
}

impl DataConfig {
    /// Checks values and combinations; errors name the `[data]` key.
    pub fn validate(&self) -> Result<()> {
        if !(self.validation_split > 0.0 && self.validation_split < 1.0) {
            bail!(
                "[data] validation_split = {} must be strictly between 0 and 1 (default 0.2)",
                self.validation_split
            );
        }
        if self.subset == Some(0) {
            bail!(
                "[data] subset = 0 would leave no training images; remove the key to use them all"
            );
        }
        let synthetic_keys = [
            ("classes", self.classes.is_some()),
            ("image_size", self.image_size.is_some()),
            ("train_samples", self.train_samples.is_some()),
            ("test_samples", self.test_samples.is_some()),
            ("noise", self.noise.is_some()),
        ];
        if self.dataset == DatasetKind::Synthetic {
            if self.path.is_some() {
                bail!("[data] path is set but dataset = \"synthetic\" reads no files; remove `path` or choose a file dataset");
            }
            if let Some(c) = self
                .classes
                .filter(|c| !(2..=synthetic::MAX_CLASSES).contains(c))
            {
                bail!(
                    "[data] classes = {c} must be between 2 and {}",
                    synthetic::MAX_CLASSES
                );
            }
            if let Some(s) = self.image_size.filter(|s| *s < 8) {
                bail!("[data] image_size = {s} must be at least 8");
            }
            if self.train_samples == Some(0) || self.test_samples == Some(0) {
                bail!("[data] train_samples and test_samples must be at least 1");
            }
            if let Some(n) = self.noise.filter(|n| !(0.0..=2.0).contains(n)) {
                bail!("[data] noise = {n} must be between 0 and 2");
            }
        } else if let Some((key, _)) = synthetic_keys.iter().find(|(_, set)| *set) {
            bail!("[data] {key} applies only to dataset = \"synthetic\"; remove it");
        }
        Ok(())
    }
}

/// One split of a dataset, in memory.
pub struct Split {
    /// N x C x H x W, f32, normalised.
    pub images: Tensor,
    /// N, u32 class indices.
    pub labels: Tensor,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.dims()[0]
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dataset ready for training.
pub struct Dataset {
    /// Input shape and class count.
    pub task: Task,
    /// Used for training.
    pub train: Split,
    /// Used for search decisions (validation metrics).
    pub val: Split,
    /// Used only to report the best architecture's final accuracy.
    pub test: Split,
    /// One line saying what was loaded.
    pub description: String,
}

impl Dataset {
    /// The device the images live on, where models that train on them run:
    /// one device for the whole run, opened once (a CUDA device brings its
    /// own library handles and loaded kernels).
    pub fn device(&self) -> &Device {
        self.train.images.device()
    }
}

/// Decoded images (0..1 floats) and labels before splitting.
struct Raw {
    shape: (usize, usize, usize),
    classes: usize,
    train_pixels: Vec<f32>,
    train_labels: Vec<u8>,
    test_pixels: Vec<f32>,
    test_labels: Vec<u8>,
}

fn find_file(dir: &Path, name: &str, dataset: &str) -> Result<PathBuf> {
    for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    let hint = if dataset == "fashion-mnist" {
        " Install Debian's package with `apt-get install dataset-fashion-mnist`, or set [data] path to a folder with the files."
    } else {
        " Set [data] path to the folder that holds the dataset's standard files."
    };
    bail!(
        "{dataset}: cannot find {name} (or {name}.gz) in {}.{hint}",
        dir.display()
    )
}

fn to_unit(bytes: Vec<u8>) -> Vec<f32> {
    bytes.into_iter().map(|b| b as f32 / 255.0).collect()
}

/// Reads the dataset's files; with `pixels` false the images are checked
/// (headers, sizes) but streamed through instead of kept.
fn load_raw(config: &DataConfig, seed: u64, pixels: bool) -> Result<Raw> {
    Ok(match config.dataset {
        DatasetKind::FashionMnist | DatasetKind::Mnist => {
            let name = if config.dataset == DatasetKind::Mnist {
                "mnist"
            } else {
                "fashion-mnist"
            };
            let dir = match (&config.path, config.dataset) {
                (Some(p), _) => p.clone(),
                (None, DatasetKind::FashionMnist) => PathBuf::from(FASHION_MNIST_DEFAULT),
                (None, _) => bail!("[data] path is required for dataset = \"mnist\": the folder with train-images-idx3-ubyte and the other three files"),
            };
            let f = |file| find_file(&dir, file, name);
            let train_images = f("train-images-idx3-ubyte")?;
            let train_labels = f("train-labels-idx1-ubyte")?;
            let (dims, train_px, train_lab) = idx::read_pair(&train_images, &train_labels, pixels)?;
            let (tdims, test_px, test_lab) = idx::read_pair(
                &f("t10k-images-idx3-ubyte")?,
                &f("t10k-labels-idx1-ubyte")?,
                pixels,
            )?;
            if dims[1..] != tdims[1..] {
                bail!(
                    "{name} in {}: training images are {:?} but test images are {:?}",
                    dir.display(),
                    &dims[1..],
                    &tdims[1..]
                );
            }
            let classes = train_lab
                .iter()
                .chain(&test_lab)
                .copied()
                .max()
                .unwrap_or(0) as usize
                + 1;
            // A stray byte (say 255) would otherwise make 256 classes, most of them empty.
            let mut seen = vec![false; classes];
            for &l in &train_lab {
                seen[l as usize] = true;
            }
            if let Some(missing) = seen.iter().position(|s| !s) {
                bail!(
                    "{name}: {}: labels go up to {} but class {missing} never occurs among the training labels; labels must be 0..K-1 with every class present (a corrupt label?)",
                    train_labels.display(),
                    classes - 1
                );
            }
            Raw {
                shape: (1, dims[1], dims[2]),
                classes: classes.max(2),
                train_pixels: to_unit(train_px),
                train_labels: train_lab,
                test_pixels: to_unit(test_px),
                test_labels: test_lab,
            }
        }
        DatasetKind::Cifar10 => {
            let dir = config.path.clone().context("[data] path is required for dataset = \"cifar10\": the folder with data_batch_1.bin .. test_batch.bin")?;
            let train: Vec<PathBuf> = (1..=5)
                .map(|i| find_file(&dir, &format!("data_batch_{i}.bin"), "cifar10"))
                .collect::<Result<_>>()?;
            let (train_px, train_lab) = cifar::read(&train, pixels)?;
            let (test_px, test_lab) =
                cifar::read(&[find_file(&dir, "test_batch.bin", "cifar10")?], pixels)?;
            Raw {
                shape: (3, 32, 32),
                classes: 10,
                train_pixels: to_unit(train_px),
                train_labels: train_lab,
                test_pixels: to_unit(test_px),
                test_labels: test_lab,
            }
        }
        DatasetKind::Synthetic => {
            let classes = config.classes.unwrap_or(synthetic::MAX_CLASSES);
            let size = config.image_size.unwrap_or(16);
            let noise = config.noise.unwrap_or(0.35);
            let (train_pixels, train_labels) = synthetic::generate(
                config.train_samples.unwrap_or(3000),
                classes,
                size,
                noise,
                seed,
            );
            let (test_pixels, test_labels) = synthetic::generate(
                config.test_samples.unwrap_or(1000),
                classes,
                size,
                noise,
                seed ^ 0x7E57_7E57_7E57_7E57,
            );
            Raw {
                shape: (1, size, size),
                classes,
                train_pixels,
                train_labels,
                test_pixels,
                test_labels,
            }
        }
    })
}

/// Loads, splits and normalises the dataset on `device`. `seed` fixes the
/// split and the synthetic images.
pub fn load(config: &DataConfig, seed: u64, device: &Device) -> Result<Dataset> {
    config.validate()?;
    let raw = load_raw(config, seed, true)?;
    let (c, h, w) = raw.shape;
    let per = c * h * w;
    let (pool, val_count) = split_counts(config, raw.train_labels.len())?;
    let DataFacts { task, description } = facts(config, &raw, pool, val_count);
    let mut order: Vec<usize> = (0..pool).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (val_idx, train_idx) = order.split_at(val_count);
    let gather = |idx: &[usize]| -> (Vec<f32>, Vec<u8>) {
        let mut px = Vec::with_capacity(idx.len() * per);
        let mut lab = Vec::with_capacity(idx.len());
        for &i in idx {
            px.extend_from_slice(&raw.train_pixels[i * per..(i + 1) * per]);
            lab.push(raw.train_labels[i]);
        }
        (px, lab)
    };
    let (mut train_px, train_lab) = gather(train_idx);
    let (mut val_px, val_lab) = gather(val_idx);
    let mut test_px = raw.test_pixels;
    if config.normalize {
        let n = train_lab.len();
        for ch in 0..c {
            let plane = |img: usize| (img * per + ch * h * w)..(img * per + (ch + 1) * h * w);
            let (mut sum, mut sq) = (0f64, 0f64);
            for img in 0..n {
                for &v in &train_px[plane(img)] {
                    sum += v as f64;
                    sq += (v as f64) * (v as f64);
                }
            }
            let count = (n * h * w) as f64;
            let mean = sum / count;
            let std = ((sq / count - mean * mean).max(0.0)).sqrt().max(1e-6);
            for data in [&mut train_px, &mut val_px, &mut test_px] {
                for img in 0..data.len() / per {
                    for v in &mut data[plane(img)] {
                        *v = ((*v as f64 - mean) / std) as f32;
                    }
                }
            }
        }
    }
    let split = |px: Vec<f32>, lab: Vec<u8>| -> Result<Split> {
        let n = lab.len();
        Ok(Split {
            images: Tensor::from_vec(px, (n, c, h, w), device)?,
            labels: Tensor::from_vec(
                lab.into_iter().map(u32::from).collect::<Vec<u32>>(),
                n,
                device,
            )?,
        })
    };
    Ok(Dataset {
        task,
        train: split(train_px, train_lab)?,
        val: split(val_px, val_lab)?,
        test: split(test_px, raw.test_labels)?,
        description,
    })
}

/// What a dataset is, known without keeping its images: what a controller
/// that only dispatches trials needs (the workers load the data).
#[derive(Debug, Clone, PartialEq)]
pub struct DataFacts {
    /// Input shape and class count, as [`load`] gives them.
    pub task: Task,
    /// One line saying what [`load`] loads.
    pub description: String,
}

/// Checks the dataset `config` names as [`load`] does (every file read,
/// headers, sizes and labels checked) without keeping its images, and says
/// what `load` would give.
pub fn probe(config: &DataConfig, seed: u64) -> Result<DataFacts> {
    config.validate()?;
    let raw = load_raw(config, seed, false)?;
    let (pool, val_count) = split_counts(config, raw.train_labels.len())?;
    Ok(facts(config, &raw, pool, val_count))
}

/// The images split among training and validation: the pool (the subset,
/// or all) and the validation count.
fn split_counts(config: &DataConfig, available: usize) -> Result<(usize, usize)> {
    let pool = config.subset.map_or(available, |s| s.min(available));
    let val_count = ((pool as f64) * config.validation_split).round() as usize;
    if val_count == 0 || val_count >= pool {
        bail!("[data] validation_split = {} of {pool} training images leaves an empty training or validation split", config.validation_split);
    }
    Ok((pool, val_count))
}

fn facts(config: &DataConfig, raw: &Raw, pool: usize, val_count: usize) -> DataFacts {
    let (c, h, w) = raw.shape;
    DataFacts {
        task: Task {
            channels: c as u32,
            height: h as u32,
            width: w as u32,
            num_classes: raw.classes as u32,
        },
        description: format!(
            "{:?} {c}x{h}x{w}, {} classes: {} train / {val_count} validation / {} test images",
            config.dataset,
            raw.classes,
            pool - val_count,
            raw.test_labels.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`probe`] says what [`load`] gave, without keeping the images.
    fn assert_probe_matches(config: &DataConfig, seed: u64, loaded: &Dataset) {
        assert_eq!(
            probe(config, seed).unwrap(),
            DataFacts {
                task: loaded.task,
                description: loaded.description.clone(),
            }
        );
    }

    #[test]
    fn probing_synthetic_data_says_what_loading_gives() {
        let c = DataConfig {
            classes: Some(5),
            image_size: Some(10),
            train_samples: Some(120),
            test_samples: Some(30),
            subset: Some(100),
            ..DataConfig::default()
        };
        assert_probe_matches(&c, 2, &load(&c, 2, &Device::Cpu).unwrap());
    }

    fn config(dataset: DatasetKind, path: &Path) -> DataConfig {
        DataConfig {
            dataset,
            path: Some(path.to_path_buf()),
            ..DataConfig::default()
        }
    }

    #[test]
    fn cifar10_files_load_split_and_normalise() {
        let dir = tempfile::tempdir().unwrap();
        for (name, n) in [
            ("data_batch_1.bin", 20),
            ("data_batch_2.bin", 20),
            ("data_batch_3.bin", 20),
            ("data_batch_4.bin", 20),
            ("data_batch_5.bin", 20),
            ("test_batch.bin", 10),
        ] {
            let mut bytes = Vec::new();
            for i in 0..n {
                bytes.push((i % 10) as u8);
                bytes.extend((0..3072).map(|p| ((p + i * 7) % 256) as u8));
            }
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let data = load(&config(DatasetKind::Cifar10, dir.path()), 1, &Device::Cpu).unwrap();
        assert_probe_matches(&config(DatasetKind::Cifar10, dir.path()), 1, &data);
        assert_eq!(
            data.task,
            Task {
                channels: 3,
                height: 32,
                width: 32,
                num_classes: 10
            }
        );
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (80, 20, 10)
        );
        let mean = data
            .train
            .images
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            mean.abs() < 1e-3,
            "normalised training images have mean 0, got {mean}"
        );
        std::fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
        let e = load(&config(DatasetKind::Cifar10, dir.path()), 1, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot find data_batch_3.bin"), "{e}");
    }

    #[test]
    fn mnist_idx_files_load_with_subset_and_seeded_split() {
        let dir = tempfile::tempdir().unwrap();
        let idx = |magic: u32, dims: &[u32], data: Vec<u8>| {
            let mut out = magic.to_be_bytes().to_vec();
            dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
            out.extend(data);
            out
        };
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            idx(
                0x803,
                &[50, 6, 6],
                (0..50 * 36).map(|i| (i % 251) as u8).collect(),
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx(0x801, &[50], (0..50).map(|i| (i % 10) as u8).collect()),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte"),
            idx(0x803, &[5, 6, 6], vec![9; 5 * 36]),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            idx(0x801, &[5], vec![1; 5]),
        )
        .unwrap();
        let c = DataConfig {
            subset: Some(40),
            validation_split: 0.25,
            ..config(DatasetKind::Mnist, dir.path())
        };
        let a = load(&c, 3, &Device::Cpu).unwrap();
        assert_probe_matches(&c, 3, &a);
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (30, 10, 5));
        assert_eq!(
            a.task,
            Task {
                channels: 1,
                height: 6,
                width: 6,
                num_classes: 10
            }
        );
        let labels = |d: &Dataset| d.val.labels.to_vec1::<u32>().unwrap();
        assert_eq!(
            labels(&a),
            labels(&load(&c, 3, &Device::Cpu).unwrap()),
            "same seed, same split"
        );
        assert_ne!(
            labels(&a),
            labels(&load(&c, 4, &Device::Cpu).unwrap()),
            "other seed, other split"
        );

        // One corrupt label byte does not make 256 classes.
        let mut stray: Vec<u8> = (0..50).map(|i| (i % 10) as u8).collect();
        stray[7] = 255;
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            idx(0x801, &[50], stray),
        )
        .unwrap();
        for e in [
            load(&c, 3, &Device::Cpu).err().unwrap().to_string(),
            probe(&c, 3).unwrap_err().to_string(),
        ] {
            assert!(
                e.contains("labels go up to 255 but class 10 never occurs"),
                "{e}"
            );
        }
    }

    #[test]
    fn fashion_mnist_loads_from_debian_package() {
        let dir = Path::new(FASHION_MNIST_DEFAULT);
        assert!(
            dir.join("train-images-idx3-ubyte.gz").exists(),
            "Fashion-MNIST is missing: `apt-get install dataset-fashion-mnist` (.ci/run does this)"
        );
        let c = DataConfig {
            dataset: DatasetKind::FashionMnist,
            subset: Some(1000),
            ..DataConfig::default()
        };
        let data = load(&c, 0, &Device::Cpu).unwrap();
        assert_probe_matches(&c, 0, &data);
        assert_eq!(
            data.task,
            Task {
                channels: 1,
                height: 28,
                width: 28,
                num_classes: 10
            }
        );
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (800, 200, 10_000)
        );
    }
}
