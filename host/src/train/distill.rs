//! Knowledge distillation (Hinton, Vinyals and Dean, 2015): a trial's
//! network learns from a trained teacher's softened outputs as well as from
//! the labels. The loss per batch is
//! `alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(p_teacher || p_student)`
//! with `p = softmax(logits / T)`. The teacher's logits for the training
//! split are computed once (eval mode) and cached in the run directory,
//! keyed by the teacher and the data; with augmentation on, the teacher
//! runs on each augmented batch instead.

use crate::data::Dataset;
use crate::export::{read_architecture, run_task};
use crate::ir::{Network, Task, TrialStatus};
use crate::network::Model;
use crate::store::{status_text, RunStore, DB_FILE};
use crate::trial::WEIGHTS_FILE;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The `[distill]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    /// A folder written by `nas-host export`, or a run directory (its best
    /// trial, or `teacher_trial`); relative to the config file.
    pub teacher: PathBuf,
    /// With a run directory: the trial to learn from (default: its best).
    #[serde(default)]
    pub teacher_trial: Option<u64>,
    /// The labels' share of the loss, in [0, 1] (default 0.5).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The softening temperature T, in (0, 100] (default 4).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
}

/// Examples per teacher pass when its logits are cached.
const CACHE_BATCH: usize = 500;

fn default_alpha() -> f64 {
    0.5
}

fn default_temperature() -> f64 {
    4.0
}

impl DistillConfig {
    /// Checks the keys' ranges.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.alpha) {
            bail!(
                "[distill] alpha = {} must be between 0 and 1 (the labels' share of the loss)",
                self.alpha
            );
        }
        if !(self.temperature > 0.0 && self.temperature <= 100.0) {
            bail!(
                "[distill] temperature = {} must be above 0 and at most 100 (default 4)",
                self.temperature
            );
        }
        Ok(())
    }

    /// The teacher's network and weights, checked against `task`: from an
    /// export folder, or from a run's trial.
    pub fn resolve(&self, task: &Task) -> Result<TeacherSpec> {
        let dir = &self.teacher;
        let (teacher_task, network, weights) = if dir.join("architecture.json").exists() {
            let (t, network) = read_architecture(dir)?;
            (t, network, dir.join(WEIGHTS_FILE))
        } else if dir.join(DB_FILE).exists() {
            let store = RunStore::open_read_only(&dir.join(DB_FILE))?;
            let id = match self.teacher_trial {
                Some(id) => id,
                None => store
                    .meta("best_trial")?
                    .with_context(|| {
                        format!(
                            "run {} has no best trial yet: give [distill] teacher_trial",
                            dir.display()
                        )
                    })?
                    .parse()?,
            };
            let trial = store
                .trials()?
                .into_iter()
                .find(|t| t.id == id)
                .with_context(|| format!("run {} has no trial {id}", dir.display()))?;
            if trial.status != TrialStatus::Completed {
                bail!(
                    "[distill] teacher: trial {id} of {} is {}, not completed",
                    dir.display(),
                    status_text(trial.status)
                );
            }
            let weights = trial.weights_in(dir)?.with_context(|| {
                format!(
                    "[distill] teacher: trial {id} of {} kept no weights",
                    dir.display()
                )
            })?;
            let network = trial
                .network
                .with_context(|| format!("trial {id} of {} has no network", dir.display()))?;
            (run_task(&store)?, network, weights)
        } else {
            bail!(
                "[distill] teacher = {}: neither a folder written by `nas-host export` (architecture.json) nor a run directory ({DB_FILE})",
                dir.display()
            );
        };
        if teacher_task != *task {
            bail!(
                "[distill] teacher {} was built for {teacher_task:?}, but the data give {task:?}",
                dir.display()
            );
        }
        let spec = TeacherSpec {
            network,
            weights,
            alpha: self.alpha,
            temperature: self.temperature,
        };
        // Loaded once here so that a broken teacher stops the run before any trial.
        spec.load(task, &Device::Cpu)
            .with_context(|| format!("[distill] teacher {}", dir.display()))?;
        Ok(spec)
    }
}

/// The teacher as a trial spec carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherSpec {
    /// Its architecture.
    pub network: Network,
    /// Its trained weights (safetensors).
    pub weights: PathBuf,
    /// The labels' share of the loss.
    pub alpha: f64,
    /// The softening temperature.
    pub temperature: f64,
}

impl TeacherSpec {
    /// The teacher's model on `device`.
    pub fn load(&self, task: &Task, device: &Device) -> Result<Teacher> {
        let model = Model::new(&self.network, task, 0, device)?;
        model.load(&self.weights)?;
        Ok(Teacher {
            model,
            alpha: self.alpha as f32,
            temperature: self.temperature as f32,
            cached: None,
        })
    }
}

/// A loaded teacher.
pub struct Teacher {
    model: Model,
    alpha: f32,
    temperature: f32,
    /// Its logits for every example of the training split, in split order.
    cached: Option<Vec<f32>>,
}

/// The first bytes of a cache file of teacher logits.
const CACHE_MAGIC: &[u8; 8] = b"NASTL001";

impl Teacher {
    /// Computes the teacher's logits for every example of `data`'s training
    /// split, or reads them from `dir` where an earlier trial left them
    /// (the file is named by a hash of `key`, the teacher and the data).
    /// A damaged or foreign file is computed again and replaced.
    pub fn cache_logits(&mut self, data: &Dataset, key: &str, dir: &Path) -> Result<()> {
        let n = data.train.len();
        let k = data.task.num_classes as usize;
        let path = dir.join(format!("{:x}.bin", Sha256::digest(key.as_bytes())));
        let expected = CACHE_MAGIC.len() + 4 * n * k;
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.len() == expected && bytes.starts_with(CACHE_MAGIC) {
                let values = bytes[CACHE_MAGIC.len()..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                self.cached = Some(values);
                return Ok(());
            }
        }
        let mut values = Vec::with_capacity(n * k);
        for start in (0..n).step_by(CACHE_BATCH) {
            let len = CACHE_BATCH.min(n - start);
            let (x, _) = data.train.tensors(start, len, self.model.device())?;
            let logits = self.model.forward(&x, false, None)?;
            values.extend(logits.flatten_all()?.to_vec1::<f32>()?);
        }
        let mut bytes = CACHE_MAGIC.to_vec();
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        // Written whole, then renamed: a worker reading it sees all or nothing.
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        std::fs::write(&partial, bytes).with_context(|| format!("write {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("write {}", path.display()))?;
        self.cached = Some(values);
        Ok(())
    }

    /// The distillation loss of a batch with `student` logits and `labels`,
    /// and its gradient with respect to the student's logits. The teacher's
    /// logits are the cached rows of the training examples at `positions`,
    /// or (uncached) the teacher's pass over `x`.
    pub fn loss(
        &self,
        x: &Tensor,
        positions: &[u32],
        student: &Tensor,
        labels: &Tensor,
    ) -> Result<(f64, Tensor)> {
        let (n, k) = student.dims2()?;
        let s = student.flatten_all()?.to_vec1::<f32>()?;
        let t = match &self.cached {
            Some(cached) => positions
                .iter()
                .flat_map(|&p| {
                    let row = p as usize * k;
                    cached[row..row + k].iter().copied()
                })
                .collect(),
            None => self
                .model
                .forward(x, false, None)?
                .flatten_all()?
                .to_vec1::<f32>()?,
        };
        if t.len() != n * k {
            bail!(
                "the teacher gave {} logits for {n} examples of {k} classes",
                t.len()
            );
        }
        let labels = labels.to_vec1::<u32>()?;
        let (alpha, temp) = (self.alpha, self.temperature);
        let mut grad = vec![0f32; n * k];
        let mut total = 0f64;
        for (i, &label) in labels.iter().enumerate() {
            let row = i * k..(i + 1) * k;
            let p = log_softmax(&s[row.clone()], 1.0);
            let ps = log_softmax(&s[row.clone()], temp);
            let pt = log_softmax(&t[row], temp);
            let kl: f32 = pt
                .iter()
                .zip(&ps)
                .map(|(lt, ls)| lt.exp() * (lt - ls))
                .sum();
            total += f64::from(alpha * -p[label as usize] + (1.0 - alpha) * temp * temp * kl);
            for (j, g) in grad[i * k..(i + 1) * k].iter_mut().enumerate() {
                let hard = p[j].exp() - if j == label as usize { 1.0 } else { 0.0 };
                let soft = temp * (ps[j].exp() - pt[j].exp());
                *g = (alpha * hard + (1.0 - alpha) * soft) / n as f32;
            }
        }
        let grad = Tensor::from_vec(grad, (n, k), student.device())?;
        Ok((total / n as f64, grad))
    }
}

/// `log softmax(values / temperature)`.
fn log_softmax(values: &[f32], temperature: f32) -> Vec<f32> {
    let scaled: Vec<f32> = values.iter().map(|v| v / temperature).collect();
    let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = scaled.iter().map(|v| (v - max).exp()).sum();
    let log_sum = max + sum.ln();
    scaled.iter().map(|v| v - log_sum).collect()
}

/// A relative teacher path made relative to the config file's folder `base`.
pub(crate) fn rebase(config: &mut DistillConfig, base: &Path) {
    if config.teacher.is_relative() {
        config.teacher = base.join(&config.teacher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cached logits are the teacher's own, read back from the file; a
    /// damaged file is computed again.
    #[test]
    fn cached_logits_are_the_teachers_and_a_damaged_cache_is_replaced() {
        let config = crate::data::DataConfig {
            image_size: Some(28),
            train_samples: Some(70),
            test_samples: Some(10),
            ..crate::data::DataConfig::default()
        };
        let data = crate::data::load(&config, 3, &Device::Cpu).unwrap();
        let network = crate::network::tests::seed_template(true, 8, 0.0);
        let model = Model::new(&network, &data.task, 1, &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join(WEIGHTS_FILE);
        model.save(&weights).unwrap();
        let spec = TeacherSpec {
            network,
            weights,
            alpha: 0.0,
            temperature: 2.0,
        };
        let cache = dir.path().join("cache");
        let logits = |teacher: &Teacher, positions: &[u32]| {
            let (x, y) = data.train.tensors(0, 3, &Device::Cpu).unwrap();
            let student = Tensor::zeros((3, 10), candle_core::DType::F32, &Device::Cpu).unwrap();
            teacher.loss(&x, positions, &student, &y).unwrap().0
        };
        let uncached = spec.load(&data.task, &Device::Cpu).unwrap();
        let mut computed = spec.load(&data.task, &Device::Cpu).unwrap();
        computed.cache_logits(&data, "key", &cache).unwrap();
        let file = std::fs::read_dir(&cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut read = spec.load(&data.task, &Device::Cpu).unwrap();
        read.cache_logits(&data, "key", &cache).unwrap();
        let want = logits(&uncached, &[]);
        assert!((logits(&computed, &[0, 1, 2]) - want).abs() < 1e-6);
        assert_eq!(logits(&read, &[0, 1, 2]), logits(&computed, &[0, 1, 2]));
        std::fs::write(&file, b"NASTL001 short").unwrap();
        let mut again = spec.load(&data.task, &Device::Cpu).unwrap();
        again.cache_logits(&data, "key", &cache).unwrap();
        assert_eq!(logits(&again, &[0, 1, 2]), logits(&computed, &[0, 1, 2]));
        assert!(std::fs::metadata(&file).unwrap().len() > 100);
    }

    /// With alpha 1 the loss is cross-entropy and its gradient candle's; the
    /// soft part's gradient matches a finite difference of its value.
    #[test]
    fn the_loss_and_its_gradient_agree_with_their_definitions() {
        let task = crate::network::tests::MNIST;
        let network = crate::network::tests::seed_template(true, 8, 0.0);
        let model = Model::new(&network, &task, 1, &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join(WEIGHTS_FILE);
        model.save(&weights).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 1, 28, 28), &Device::Cpu).unwrap();
        let labels = Tensor::new(&[1u32, 7, 3], &Device::Cpu).unwrap();
        let student = Tensor::randn(0f32, 2.0, (3, 10), &Device::Cpu).unwrap();
        let teacher = |alpha| {
            TeacherSpec {
                network: network.clone(),
                weights: weights.clone(),
                alpha,
                temperature: 3.0,
            }
            .load(&task, &Device::Cpu)
            .unwrap()
        };
        let (ce, grad) = teacher(1.0).loss(&x, &[], &student, &labels).unwrap();
        let expected = candle_nn::loss::cross_entropy(&student, &labels)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((ce - f64::from(expected)).abs() < 1e-5);
        let ce_grad = crate::train::cross_entropy_grad(&student, &labels).unwrap();
        let diff = (grad - ce_grad).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        let soft = teacher(0.0);
        let (value, grad) = soft.loss(&x, &[], &student, &labels).unwrap();
        assert!(value >= 0.0);
        let grad = grad.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let base = student.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for at in [0, 4, 13, 29] {
            let h = 1e-2f32;
            let mut nudged = base.clone();
            nudged[at] += h;
            let up = Tensor::from_vec(nudged.clone(), (3, 10), &Device::Cpu).unwrap();
            nudged[at] -= 2.0 * h;
            let down = Tensor::from_vec(nudged, (3, 10), &Device::Cpu).unwrap();
            let numeric = (soft.loss(&x, &[], &up, &labels).unwrap().0
                - soft.loss(&x, &[], &down, &labels).unwrap().0)
                / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(grad[at])).abs() < 2e-3,
                "{at}: {numeric} vs {}",
                grad[at]
            );
        }
    }
}
