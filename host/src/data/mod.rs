//! Datasets: Fashion-MNIST, MNIST, CIFAR-10 and CIFAR-100 from the standard
//! files at a user-given path, the user's own images (a folder per class),
//! tables (CSV) and NumPy arrays, and the built-in synthetic task. Everything is decoded
//! once, split (train / validation / test) and kept in memory as read
//! (images as bytes; uint8 arrays stored uncompressed mapped from their
//! files); batches are normalised with the training split's statistics
//! (per channel; per feature for a table) as they are made.

pub mod arrays;
pub mod augment;
pub mod cifar;
pub mod examples;
pub mod idx;
pub mod image_folder;
pub mod synthetic;
pub mod tabular;

use crate::ir::Task;
use anyhow::{bail, Context, Result};
use candle_core::Device;
pub use examples::{as_tensors, Split};
use examples::{Norm, Store, Values};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// CIFAR-100, binary version (fine or coarse labels).
    Cifar100,
    /// Images in a folder per class (`root/<class>/*.png`), optionally
    /// under `train/`, `val/` and `test/`.
    ImageFolder,
    /// A CSV table of numeric features and a label column.
    Csv,
    /// NumPy arrays in an `.npz` archive.
    Npz,
    /// NumPy arrays as `.npy` files in a folder.
    Npy,
    /// The built-in synthetic shapes task.
    Synthetic,
}

/// The `[data]` table of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `fashion-mnist`, `mnist`, `cifar10`, `cifar100`, `image-folder`,
    /// `csv` or `synthetic` (default).
    pub dataset: DatasetKind,
    /// Folder with the dataset's files (Fashion-MNIST defaults to Debian's
    /// location); the CSV file for `csv`.
    pub path: Option<PathBuf>,
    /// Fraction of the training images held out for validation (default 0.2).
    pub validation_split: f64,
    /// `image-folder` and `csv` without a test set of their own: the
    /// fraction of the examples held out for the final test (default 0.2).
    pub test_split: Option<f64>,
    /// `image-folder`: images are resized to this height and width (default:
    /// they must all have one size); `synthetic`: the images' size (default 16).
    pub image_size: Option<usize>,
    /// `image-folder`: `stretch` (default) resizes to `image_size` as is;
    /// `crop` keeps the aspect ratio and crops the centre.
    pub resize: Option<Resize>,
    /// `image-folder`: 1 (grayscale) or 3 (RGB, default).
    pub channels: Option<usize>,
    /// `csv`: the label column's name.
    pub label: Option<String>,
    /// `csv`: the feature columns (default: every column but the label).
    pub features: Option<Vec<String>>,
    /// `cifar100`: `fine` (100 classes, default) or `coarse` (20).
    pub labels: Option<Cifar100Labels>,
    /// `npz` / `npy`: the training images' array (default `x_train`).
    pub train_images: Option<String>,
    /// `npz` / `npy`: the training labels' array (default `y_train`).
    pub train_labels: Option<String>,
    /// `npz` / `npy`: the test images' array (default `x_test`; without
    /// it, `test_split` holds out test examples).
    pub test_images: Option<String>,
    /// `npz` / `npy`: the test labels' array (default `y_test`).
    pub test_labels: Option<String>,
    /// `npz` / `npy`: `nhwc` (default) or `nchw`, for 4-D image arrays.
    pub layout: Option<ArrayLayout>,
    /// `[data.augment]`: how training batches are augmented (default: not).
    pub augment: augment::Augment,
    /// Use only the first N training images (before the split); for
    /// `image-folder`, N drawn at random (seeded).
    pub subset: Option<usize>,
    /// Normalise each channel with the training split's mean and deviation (default true).
    pub normalize: bool,
    /// Seed of the split and the synthetic images; default: the run's seed.
    pub seed: Option<u64>,
    /// Synthetic only: number of classes, 2..=10 (default 10).
    pub classes: Option<usize>,
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
            test_split: None,
            resize: None,
            channels: None,
            label: None,
            features: None,
            labels: None,
            train_images: None,
            train_labels: None,
            test_images: None,
            test_labels: None,
            layout: None,
            augment: augment::Augment::default(),
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

/// How `image-folder` brings images to `image_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resize {
    /// Resize to the square as is (the aspect ratio may change).
    Stretch,
    /// Resize the shorter side to `image_size`, then crop the centre.
    Crop,
}

/// The order of a 4-D image array's axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArrayLayout {
    /// Examples, height, width, channels (NumPy's and Keras's usual order).
    Nhwc,
    /// Examples, channels, height, width (PyTorch's order).
    Nchw,
}

/// Which labels of CIFAR-100 to learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cifar100Labels {
    /// The 100 classes.
    Fine,
    /// The 20 superclasses.
    Coarse,
}

impl DatasetKind {
    /// Every dataset.
    pub const ALL: [DatasetKind; 9] = [
        DatasetKind::FashionMnist,
        DatasetKind::Mnist,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
        DatasetKind::ImageFolder,
        DatasetKind::Csv,
        DatasetKind::Npz,
        DatasetKind::Npy,
        DatasetKind::Synthetic,
    ];

    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::ImageFolder => "image-folder",
            DatasetKind::Csv => "csv",
            DatasetKind::Npz => "npz",
            DatasetKind::Npy => "npy",
            DatasetKind::Synthetic => "synthetic",
        }
    }

    /// The `[data]` keys of this dataset only.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Synthetic => &[
                "classes",
                "image_size",
                "train_samples",
                "test_samples",
                "noise",
            ],
            DatasetKind::ImageFolder => &["image_size", "resize", "channels", "test_split"],
            DatasetKind::Csv => &["label", "features", "test_split"],
            DatasetKind::Cifar100 => &["labels"],
            DatasetKind::Npz | DatasetKind::Npy => &[
                "train_images",
                "train_labels",
                "test_images",
                "test_labels",
                "layout",
                "test_split",
            ],
            DatasetKind::FashionMnist | DatasetKind::Mnist | DatasetKind::Cifar10 => &[],
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
        if let Some(t) = self.test_split.filter(|t| !(*t > 0.0 && *t < 1.0)) {
            bail!("[data] test_split = {t} must be strictly between 0 and 1 (default 0.2)");
        }
        self.augment.validate()?;
        if self.augment.is_active() && self.dataset == DatasetKind::Csv {
            bail!("[data.augment] applies to images, and dataset = \"csv\" is a table; remove it");
        }
        if self.subset == Some(0) {
            bail!(
                "[data] subset = 0 would leave no training images; remove the key to use them all"
            );
        }
        let set = [
            ("classes", self.classes.is_some()),
            ("image_size", self.image_size.is_some()),
            ("train_samples", self.train_samples.is_some()),
            ("test_samples", self.test_samples.is_some()),
            ("noise", self.noise.is_some()),
            ("test_split", self.test_split.is_some()),
            ("resize", self.resize.is_some()),
            ("channels", self.channels.is_some()),
            ("label", self.label.is_some()),
            ("features", self.features.is_some()),
            ("labels", self.labels.is_some()),
            ("train_images", self.train_images.is_some()),
            ("train_labels", self.train_labels.is_some()),
            ("test_images", self.test_images.is_some()),
            ("test_labels", self.test_labels.is_some()),
            ("layout", self.layout.is_some()),
        ];
        let dataset = self.dataset.name();
        if let Some((key, _)) = set
            .iter()
            .find(|(key, set)| *set && !self.dataset.own_keys().contains(key))
        {
            let owners: Vec<String> = DatasetKind::ALL
                .iter()
                .filter(|d| d.own_keys().contains(key))
                .map(|d| format!("\"{}\"", d.name()))
                .collect();
            bail!(
                "[data] {key} applies only to dataset = {}, not \"{dataset}\"; remove it",
                owners.join(" or ")
            );
        }
        match self.dataset {
            DatasetKind::Synthetic => {
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
                if let Some(s) = self.image_size.filter(|s| !(8..=1024).contains(s)) {
                    bail!("[data] image_size = {s} must be between 8 and 1024");
                }
                if self.train_samples == Some(0) || self.test_samples == Some(0) {
                    bail!("[data] train_samples and test_samples must be at least 1");
                }
                if let Some(n) = self.noise.filter(|n| !(0.0..=2.0).contains(n)) {
                    bail!("[data] noise = {n} must be between 0 and 2");
                }
            }
            DatasetKind::ImageFolder => {
                if self.path.is_none() {
                    bail!("[data] path is required for dataset = \"image-folder\": the folder with a subfolder of images per class (or train/, val/ and test/ folders of those)");
                }
                if let Some(s) = self
                    .image_size
                    .filter(|s| !(1..=image_folder::MAX_SIDE).contains(s))
                {
                    bail!(
                        "[data] image_size = {s} must be between 1 and {}",
                        image_folder::MAX_SIDE
                    );
                }
                if self.resize.is_some() && self.image_size.is_none() {
                    bail!("[data] resize needs image_size, the size to resize to");
                }
                if let Some(c) = self.channels.filter(|c| *c != 1 && *c != 3) {
                    bail!("[data] channels = {c} must be 1 (grayscale) or 3 (RGB)");
                }
            }
            DatasetKind::Csv => {
                if self.path.is_none() {
                    bail!("[data] path is required for dataset = \"csv\": the CSV file, with a header row");
                }
                let Some(label) = &self.label else {
                    bail!("[data] label is required for dataset = \"csv\": the name of the label column");
                };
                if let Some(features) = &self.features {
                    if features.is_empty() {
                        bail!("[data] features is empty; list the feature columns, or remove the key to use every column but `{label}`");
                    }
                    if features.contains(label) {
                        bail!("[data] features lists the label column `{label}`");
                    }
                    let mut seen = std::collections::BTreeSet::new();
                    if let Some(twice) = features.iter().find(|f| !seen.insert(*f)) {
                        bail!("[data] features lists `{twice}` twice");
                    }
                }
            }
            DatasetKind::Npz | DatasetKind::Npy => {
                if self.path.is_none() {
                    bail!(
                        "[data] path is required for dataset = \"{dataset}\": {}",
                        if self.dataset == DatasetKind::Npz {
                            "the .npz file"
                        } else {
                            "the folder with x_train.npy, y_train.npy (and x_test.npy, y_test.npy)"
                        }
                    );
                }
            }
            DatasetKind::FashionMnist
            | DatasetKind::Mnist
            | DatasetKind::Cifar10
            | DatasetKind::Cifar100 => {}
        }
        Ok(())
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
    /// The class names, in class-index order.
    pub classes: Vec<String>,
    /// How training batches are augmented.
    pub augment: augment::Augment,
    /// Where batches go, and models that train on them run.
    device: Device,
}

impl Dataset {
    /// The device batches go to, where models that train on them run: one
    /// device for the whole run, opened once (a CUDA device brings its own
    /// library handles and loaded kernels).
    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// Examples of one part of a dataset before splitting: their values
/// (image bytes, or floats: pixels in 0..1, features for a table), example
/// after example, and class indices.
#[derive(Default)]
struct Part {
    values: Values,
    labels: Vec<u32>,
}

/// A dataset as read: its training examples, and its validation and test
/// examples where the dataset has its own (otherwise they are split off
/// the training examples).
struct Raw {
    shape: (usize, usize, usize),
    /// Class names, in class-index order.
    classes: Vec<String>,
    train: Part,
    val: Option<Part>,
    test: Option<Part>,
}

/// Class names `0`..`K-1`, for datasets whose classes are numbered.
fn numbered(classes: usize) -> Vec<String> {
    (0..classes).map(|c| c.to_string()).collect()
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

/// The number of classes (at least 2) of labels `0..K-1` that `what`
/// names, checked: every class occurs among the training labels, so a
/// stray label (say 255) cannot make 256 classes, most of them empty.
fn class_count(train: &[u32], test: impl Iterator<Item = u32>, what: &str) -> Result<usize> {
    let classes = train.iter().copied().chain(test).max().unwrap_or(0) as usize + 1;
    let mut seen = vec![false; classes];
    for &l in train {
        seen[l as usize] = true;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        bail!(
            "{what}: labels go up to {} but class {missing} never occurs among the training labels; labels must be 0..K-1 with every class present (a corrupt label?)",
            classes - 1
        );
    }
    Ok(classes.max(2))
}

/// Refuses a dataset whose values (`value_bytes` each) would not fit in
/// the memory left.
fn check_memory(images: usize, per: usize, value_bytes: usize, keep: bool) -> Result<()> {
    let Some((available, bound)) = crate::memory::available_mib().filter(|_| keep) else {
        return Ok(());
    };
    // The values as decoded, then gathered into one array: twice, briefly.
    let mib = (images as f64) * (per as f64) * (value_bytes as f64) * 2.0 / (1u64 << 20) as f64;
    if mib > available {
        bail!(
            "{images} images of {per} values need about {mib:.0} MiB, more than the {available:.0} MiB {bound}; set [data] subset or a smaller image_size"
        );
    }
    Ok(())
}

/// Planar pixel bytes and byte labels as a [`Part`].
fn from_bytes(pixels: Vec<u8>, labels: Vec<u8>) -> Part {
    Part {
        values: Values::Bytes(pixels),
        labels: labels.into_iter().map(u32::from).collect(),
    }
}

/// Reads the dataset's files; with `pixels` false the images are checked
/// (headers, sizes) but streamed through instead of kept.
fn load_raw(config: &DataConfig, seed: u64, pixels: bool) -> Result<Raw> {
    let path = |what: &str| {
        config.path.clone().with_context(|| {
            format!(
                "[data] path is required for dataset = \"{}\": {what}",
                config.dataset.name()
            )
        })
    };
    Ok(match config.dataset {
        DatasetKind::FashionMnist | DatasetKind::Mnist => {
            let name = config.dataset.name();
            let dir = match (&config.path, config.dataset) {
                (Some(p), _) => p.clone(),
                (None, DatasetKind::FashionMnist) => PathBuf::from(FASHION_MNIST_DEFAULT),
                (None, _) => {
                    path("the folder with train-images-idx3-ubyte and the other three files")?
                }
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
            let (train, test) = (
                from_bytes(train_px, train_lab),
                from_bytes(test_px, test_lab),
            );
            let classes = class_count(
                &train.labels,
                test.labels.iter().copied(),
                &format!("{name}: {}", train_labels.display()),
            )?;
            Raw {
                shape: (1, dims[1], dims[2]),
                classes: numbered(classes),
                train,
                val: None,
                test: Some(test),
            }
        }
        DatasetKind::Cifar10 => {
            let dir = path("the folder with data_batch_1.bin .. test_batch.bin")?;
            let train: Vec<PathBuf> = (1..=5)
                .map(|i| find_file(&dir, &format!("data_batch_{i}.bin"), "cifar10"))
                .collect::<Result<_>>()?;
            let layout = cifar::Layout::Cifar10;
            let (train_px, train_lab) = cifar::read(&train, layout, pixels)?;
            let test = [find_file(&dir, "test_batch.bin", "cifar10")?];
            let (test_px, test_lab) = cifar::read(&test, layout, pixels)?;
            Raw {
                shape: (3, 32, 32),
                classes: numbered(10),
                train: from_bytes(train_px, train_lab),
                val: None,
                test: Some(from_bytes(test_px, test_lab)),
            }
        }
        DatasetKind::Cifar100 => {
            let dir = path("the folder with train.bin and test.bin")?;
            let layout = match config.labels.unwrap_or(Cifar100Labels::Fine) {
                Cifar100Labels::Fine => cifar::Layout::Cifar100Fine,
                Cifar100Labels::Coarse => cifar::Layout::Cifar100Coarse,
            };
            let train = [find_file(&dir, "train.bin", "cifar100")?];
            let (train_px, train_lab) = cifar::read(&train, layout, pixels)?;
            let test = [find_file(&dir, "test.bin", "cifar100")?];
            let (test_px, test_lab) = cifar::read(&test, layout, pixels)?;
            Raw {
                shape: (3, 32, 32),
                classes: numbered(layout.classes()),
                train: from_bytes(train_px, train_lab),
                val: None,
                test: Some(from_bytes(test_px, test_lab)),
            }
        }
        DatasetKind::ImageFolder => image_folder::read(config, pixels)?,
        DatasetKind::Csv => tabular::read(config)?,
        DatasetKind::Npz | DatasetKind::Npy => arrays::read(config, pixels)?,
        DatasetKind::Synthetic => {
            let classes = config.classes.unwrap_or(synthetic::MAX_CLASSES);
            let size = config.image_size.unwrap_or(16);
            let noise = config.noise.unwrap_or(0.35);
            let part = |n, seed| {
                let (pixels, labels) = synthetic::generate(n, classes, size, noise, seed);
                Part {
                    values: Values::Floats(pixels),
                    labels: labels.into_iter().map(u32::from).collect(),
                }
            };
            Raw {
                shape: (1, size, size),
                classes: numbered(classes),
                train: part(config.train_samples.unwrap_or(3000), seed),
                val: None,
                test: Some(part(
                    config.test_samples.unwrap_or(1000),
                    seed ^ 0x7E57_7E57_7E57_7E57,
                )),
            }
        }
    })
}

/// Loads and splits the dataset for `device`, with the training split's
/// normalisation. `seed` fixes the split and the synthetic images.
pub fn load(config: &DataConfig, seed: u64, device: &Device) -> Result<Dataset> {
    config.validate()?;
    let raw = load_raw(config, seed, true)?;
    let plan = split(config, &raw, seed)?;
    let DataFacts {
        task,
        description,
        classes,
    } = facts(config, &raw, &plan);
    let Raw {
        shape,
        train: pool,
        val,
        test,
        ..
    } = raw;
    let norm = Arc::new(if config.normalize {
        Norm::fit(&pool.values, shape, &plan.train)
    } else {
        Norm::identity(shape.0)
    });
    let pool_labels = pool.labels;
    let pool = Arc::new(Store {
        values: pool.values,
        shape,
    });
    let carve = |rows: Vec<usize>| {
        let labels = rows.iter().map(|&r| pool_labels[r]).collect();
        Split::new(pool.clone(), rows, labels, norm.clone())
    };
    let own = |part: Part| {
        let rows = (0..part.labels.len()).collect();
        let store = Arc::new(Store {
            values: part.values,
            shape,
        });
        Split::new(store, rows, part.labels, norm.clone())
    };
    let val = val.map_or_else(|| carve(plan.val), own);
    let test = test.map_or_else(|| carve(plan.test), own);
    Ok(Dataset {
        task,
        train: carve(plan.train),
        val,
        test,
        description,
        classes,
        augment: config.augment,
        device: device.clone(),
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
    /// The class names, in class-index order (folder names, label values,
    /// or `0`..`K-1` for numbered classes).
    pub classes: Vec<String>,
}

/// Checks the dataset `config` names as [`load`] does (every file read,
/// headers, sizes and labels checked) without keeping its images, and says
/// what `load` would give.
pub fn probe(config: &DataConfig, seed: u64) -> Result<DataFacts> {
    config.validate()?;
    let raw = load_raw(config, seed, false)?;
    let plan = split(config, &raw, seed)?;
    Ok(facts(config, &raw, &plan))
}

/// Which training examples (by index) go to training, and to validation
/// and test where the dataset has none of its own.
struct Plan {
    train: Vec<usize>,
    val: Vec<usize>,
    test: Vec<usize>,
}

/// Splits the pool (the first `subset` training examples, or all) in a
/// seeded order: the test examples first (when the dataset has no test
/// set), then `validation_split` of the rest (when it has no validation set).
fn split(config: &DataConfig, raw: &Raw, seed: u64) -> Result<Plan> {
    let available = raw.train.labels.len();
    let pool = config.subset.map_or(available, |s| s.min(available));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..available).collect();
    if config.dataset == DatasetKind::ImageFolder && pool < available {
        // A folder has no order that mixes its classes: a seeded sample.
        order.shuffle(&mut rng);
    }
    order.truncate(pool);
    order.shuffle(&mut rng);
    let test_count = match (&raw.test, config.test_split) {
        (Some(_), Some(_)) => bail!(
            "[data] test_split applies to a dataset without a test set of its own, and {} has one (a test/ folder, or test arrays); remove test_split",
            config.path.as_deref().unwrap_or(Path::new("")).display()
        ),
        (Some(_), None) => 0,
        (None, fraction) => ((pool as f64) * fraction.unwrap_or(0.2)).round() as usize,
    };
    let rest = pool - test_count.min(pool);
    let val_count = match raw.val {
        Some(_) => 0,
        None => ((rest as f64) * config.validation_split).round() as usize,
    };
    let empty = |what: &str| {
        anyhow::anyhow!("[data] {what} of {pool} examples leaves an empty training, validation or test split; use more data or other fractions")
    };
    if raw.test.is_none() && (test_count == 0 || test_count >= pool) {
        return Err(empty(&format!(
            "test_split = {}",
            config.test_split.unwrap_or(0.2)
        )));
    }
    if raw.val.is_none() && (val_count == 0 || val_count >= rest) {
        return Err(empty(&format!(
            "validation_split = {}",
            config.validation_split
        )));
    }
    let (test, rest) = order.split_at(test_count);
    let (val, train) = rest.split_at(val_count);
    Ok(Plan {
        train: train.to_vec(),
        val: val.to_vec(),
        test: test.to_vec(),
    })
}

fn facts(config: &DataConfig, raw: &Raw, plan: &Plan) -> DataFacts {
    let (c, h, w) = raw.shape;
    let count = |own: &Option<Part>, carved: &[usize]| match own {
        Some(part) => part.labels.len(),
        None => carved.len(),
    };
    let classes = raw.classes.len();
    let named = match config.dataset {
        DatasetKind::ImageFolder | DatasetKind::Csv => {
            let shown: Vec<&str> = raw.classes.iter().take(12).map(String::as_str).collect();
            let more = if classes > shown.len() { ", ..." } else { "" };
            format!(" ({}{more})", shown.join(", "))
        }
        _ => String::new(),
    };
    DataFacts {
        task: Task {
            channels: c as u32,
            height: h as u32,
            width: w as u32,
            num_classes: classes as u32,
        },
        description: format!(
            "{:?} {c}x{h}x{w}, {classes} classes{named}: {} train / {} validation / {} test {}",
            config.dataset,
            plan.train.len(),
            count(&raw.val, &plan.val),
            count(&raw.test, &plan.test),
            if config.dataset == DatasetKind::Csv {
                "rows"
            } else {
                "images"
            },
        ),
        classes: raw.classes.clone(),
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
                classes: loaded.classes.clone(),
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
        let (values, _) = data.train.examples(0..data.train.len());
        let mean = values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64;
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
        assert_eq!(a.train.storage(), "bytes", "images are held as bytes");
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
        let labels = |d: &Dataset| d.val.labels().to_vec();
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

    /// `train/` and `test/` folders: classes from the training folder in
    /// sorted order, validation split off the training images, the test
    /// folder as the test split; RGB images cropped to a square.
    #[test]
    fn an_image_folder_with_train_and_test_folders_keeps_its_test_set() {
        let dir = tempfile::tempdir().unwrap();
        let save = |split: &str, class: &str, i: usize, color: [u8; 3]| {
            let path = dir.path().join(split).join(class);
            std::fs::create_dir_all(&path).unwrap();
            let mut img = image::RgbImage::from_pixel(12, 6, image::Rgb(color));
            // The centre crop keeps the middle 6 columns: mark the outer ones.
            for y in 0..6 {
                img.put_pixel(0, y, image::Rgb([255, 255, 255]));
            }
            img.save(path.join(format!("{i}.png"))).unwrap();
        };
        for i in 0..10 {
            save("train", "zebra", i, [0, 0, 200]);
            save("train", "ant", i, [200, 0, 0]);
        }
        save("test", "ant", 0, [200, 0, 0]);
        save("test", "zebra", 0, [0, 0, 200]);
        save("test", "zebra", 1, [0, 0, 200]);
        let c = DataConfig {
            dataset: DatasetKind::ImageFolder,
            path: Some(dir.path().to_path_buf()),
            image_size: Some(6),
            resize: Some(Resize::Crop),
            validation_split: 0.25,
            normalize: false,
            ..DataConfig::default()
        };
        let data = load(&c, 1, &Device::Cpu).unwrap();
        assert_probe_matches(&c, 1, &data);
        assert_eq!(data.classes, ["ant", "zebra"]);
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (15, 5, 3)
        );
        assert_eq!(data.test.labels(), [0, 1, 1]);
        // Test image 0 is an ant: red, cropped clear of the white column.
        let (planes, _) = data.test.examples(0..1);
        assert!(planes[..36]
            .iter()
            .all(|v| (*v - 200.0 / 255.0).abs() < 1e-6));
        assert!(planes[36..].iter().all(|v| *v == 0.0));

        let with_split = DataConfig {
            test_split: Some(0.1),
            ..c.clone()
        };
        let e = load(&with_split, 1, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("test_split") && e.contains("test/ folder"),
            "{e}"
        );
        save("test", "bee", 0, [0, 200, 0]);
        let e = load(&c, 1, &Device::Cpu).err().unwrap().to_string();
        assert!(
            e.contains("bee") && e.contains("a class the training images do not have"),
            "{e}"
        );
    }

    #[test]
    fn augmentation_is_checked_and_applies_to_images_only() {
        let parse = |text: &str| toml::from_str::<DataConfig>(text).map_err(|e| e.to_string());
        let c = parse("dataset = \"csv\"\npath = \"t.csv\"\nlabel = \"y\"\n[augment]\nflip = true")
            .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("[data.augment] applies to images"), "{e}");
        let c = parse("[augment]\ncrop_padding = 65").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("crop_padding = 65 must be at most 64"), "{e}");
        let e = parse("[augment]\nrotate = 10").unwrap_err();
        assert!(e.contains("unknown field `rotate`"), "{e}");
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
