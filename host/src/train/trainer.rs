//! The training loop of one trial: shuffled mini-batches, cross-entropy on
//! logits, an optimiser step per batch, and per epoch the training loss, the
//! validation loss and accuracy and the elapsed time. A NaN or infinite loss,
//! or one above `max_loss`, ends training as diverged. Also evaluation and latency probes, which build
//! no backward graph.

use super::checkpoint::{self, Checkpoint};
use super::config::TrainConfig;
use super::distill::Teacher;
use super::optimizer::Optimizer;
use crate::data::{self, augment, Dataset, Split};
use crate::interrupt::Cancel;
use crate::ir::EpochRecord;
use crate::network::Model;
use crate::quant::FakeQuant;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use std::path::Path;
use std::time::Instant;

/// The most seconds a latency probe repeats for (after its first pass).
const PROBE_SECONDS: f64 = 10.0;

/// Marks an error of the host, not of the network being trained (a
/// checkpoint that cannot be written or read): it must stop the run, which
/// `resume` continues, and never be recorded as the trial's failure.
#[derive(Debug, Clone, Copy)]
pub struct HostFault;

impl std::fmt::Display for HostFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host could not keep the trial's checkpoint")
    }
}

/// What the loop reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A batch finished.
    Batch {
        /// 1-based epoch.
        epoch: u32,
        /// Epochs in this trial.
        epochs: u32,
        /// 1-based batch in the epoch.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// Mean loss of the epoch so far.
        running_loss: f64,
    },
    /// An epoch finished.
    Epoch(&'a EpochRecord),
}

/// How training ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainOutcome {
    /// One record per finished epoch.
    pub curve: Vec<EpochRecord>,
    /// Why training stopped early, when the loss stopped being finite.
    pub diverged: Option<String>,
    /// Whether Ctrl-C stopped training early.
    pub interrupted: bool,
    /// Why a pruner stopped training after an epoch, when one did.
    pub pruned: Option<String>,
    /// Why training ran out of time, when it did.
    pub timed_out: Option<String>,
    /// The epochs restored from a checkpoint instead of trained again.
    pub resumed_from_epoch: Option<u32>,
    /// Why the checkpoint could not be continued, when training started
    /// again from scratch instead.
    pub restarted: Option<String>,
}

/// Where one training keeps its checkpoint, and how often it writes it.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoints<'a> {
    /// The trial's folder.
    pub dir: &'a Path,
    /// Write one after every this many epochs (and after the last).
    pub every: u32,
    /// Without a checkpoint in `dir`: continue from the (final) checkpoint
    /// in this folder, another trial's (a multi-fidelity promotion).
    pub from: Option<&'a Path>,
}

/// The training state that a checkpoint restores.
struct State {
    optimizer: Optimizer,
    rng: ChaCha8Rng,
    order: Vec<u32>,
    curve: Vec<EpochRecord>,
    /// Training seconds before this process took over.
    seconds_before: f64,
}

impl State {
    fn fresh(config: &TrainConfig, params: usize, samples: usize, seed: u64) -> Self {
        State {
            optimizer: Optimizer::new(config, params),
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: (0..samples as u32).collect(),
            curve: Vec::new(),
            seconds_before: 0.0,
        }
    }

    /// Continues from the checkpoint in `dir`, if there is one.
    fn restore(
        &mut self,
        model: &Model,
        params: &[&Var],
        dir: &Path,
        seed: u64,
    ) -> Result<Option<u32>> {
        let Some((facts, tensors)) = checkpoint::load(dir, model.device())? else {
            return Ok(None);
        };
        let source = dir.join(checkpoint::FILE).display().to_string();
        if facts.seed != seed {
            bail!(
                "{source} belongs to seed {}, this trial's seed is {seed}",
                facts.seed
            );
        }
        model.set_tensors(&tensors, &source)?;
        self.optimizer
            .restore(params, facts.optimizer_step, &tensors)
            .with_context(|| format!("{source}: optimizer state"))?;
        let order = tensors
            .get(ORDER)
            .with_context(|| format!("{source} has no batch order"))?
            .to_vec1::<u32>()?;
        if order.len() != self.order.len() {
            bail!(
                "{source} was trained on {} samples, this data has {}",
                order.len(),
                self.order.len()
            );
        }
        self.order = order;
        self.rng.set_word_pos(
            facts
                .rng_word_pos
                .parse()
                .with_context(|| format!("{source}: rng_word_pos"))?,
        );
        self.seconds_before = facts.seconds;
        self.curve = facts.curve;
        Ok(Some(facts.epoch))
    }

    fn save(&self, model: &Model, params: &[&Var], dir: &Path, seed: u64) -> Result<()> {
        let (step, moments) = self.optimizer.state(params)?;
        let mut tensors = model.tensors();
        tensors.extend(moments);
        let device = model.device();
        tensors.insert(
            ORDER.to_string(),
            Tensor::from_slice(&self.order, self.order.len(), device)?,
        );
        let epoch = self.curve.len() as u32;
        let facts = Checkpoint {
            epoch,
            seed,
            optimizer_step: step,
            rng_word_pos: self.rng.get_word_pos().to_string(),
            seconds: self.curve.last().map_or(0.0, |e| e.seconds),
            curve: self.curve.clone(),
            tensors: format!("checkpoint-{epoch}.safetensors"),
        };
        checkpoint::save(dir, &facts, &tensors)
    }
}

/// Name of the batch order in a checkpoint's tensors.
const ORDER: &str = "train.order";

/// Trains `model` for `epochs` epochs; `seed` fixes batch order and dropout.
/// With `checkpoints`, training continues from the checkpoint there (epochs
/// already finished are not trained again) and writes a new one as it goes.
/// Once `cancel` is cancelled, training stops at the next batch.
// Each argument is an independent input of one training; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &Model,
    data: &Dataset,
    config: &TrainConfig,
    epochs: u32,
    seed: u64,
    checkpoints: Option<Checkpoints>,
    cancel: &Cancel,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome> {
    train_with(
        model,
        data,
        config,
        epochs,
        seed,
        checkpoints,
        &Extras::default(),
        cancel,
        on_progress,
    )
}

/// What a training adds to learning from its labels.
#[derive(Default)]
pub struct Extras<'a> {
    /// Learn also from this teacher (knowledge distillation).
    pub teacher: Option<&'a Teacher>,
    /// Train the last this many epochs as the int8 model computes
    /// (quantization-aware training).
    pub aware_epochs: u32,
    /// Stop after an epoch when this pruner says so.
    pub pruning: Option<&'a crate::prune::Pruning>,
}

/// [`train`] with `extras`.
#[allow(clippy::too_many_arguments)]
pub fn train_with(
    model: &Model,
    data: &Dataset,
    config: &TrainConfig,
    epochs: u32,
    seed: u64,
    checkpoints: Option<Checkpoints>,
    extras: &Extras,
    cancel: &Cancel,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome> {
    let teacher = extras.teacher;
    let mut fake_quant = FakeQuant::default();
    super::allocator::keep_freed_memory();
    let params: Vec<&candle_core::Var> = model.params().collect();
    let n = data.train.len();
    let mut state = State::fresh(config, params.len(), n, seed);
    let mut resumed_from_epoch = None;
    let mut restarted = None;
    if let Some(c) = checkpoints {
        // A checkpoint that cannot be continued (damaged by a kill or a
        // disk, or not this trial's) is set aside and the trial trains from
        // scratch, which gives the same numbers as a trial never stopped;
        // stopping the run instead would stop every resume on it as well.
        let continues = checkpoint::exists(c.dir) || c.from.is_some();
        let initial = if continues {
            Some(model.snapshot()?)
        } else {
            None
        };
        let restored = state
            .restore(model, &params, c.dir, seed)
            .and_then(|r| match (r, c.from) {
                (None, Some(from)) => state.restore(model, &params, from, seed),
                _ => Ok(r),
            });
        match restored {
            Ok(epochs) => resumed_from_epoch = epochs,
            Err(e) => {
                checkpoint::set_aside(c.dir).context(HostFault)?;
                if let Some(initial) = &initial {
                    model.set_tensors(initial, "the initial weights")?;
                }
                state = State::fresh(config, params.len(), n, seed);
                restarted = Some(format!("{e:#}"));
            }
        }
    }
    let batches = n.div_ceil(config.batch_size);
    let start = Instant::now();
    let elapsed = |state: &State| state.seconds_before + start.elapsed().as_secs_f64();
    let first = state.curve.len() as u32 + 1;
    let stopped = |state: State, why: TrainOutcome| TrainOutcome {
        curve: state.curve,
        resumed_from_epoch,
        restarted: restarted.clone(),
        ..why
    };
    for epoch in first..=epochs {
        let lr = config.learning_rate_at(epoch - 1, epochs);
        let aware = epoch + extras.aware_epochs > epochs;
        state.order.shuffle(&mut state.rng);
        let mut loss_sum = 0.0;
        let order = std::mem::take(&mut state.order);
        let augment = data.augment;
        let shape = data.train.shape();
        // One batch on the host: gathered, normalised, and augmented from
        // its own seed.
        let make = |b: usize, chunk: &[u32]| -> (Vec<f32>, Vec<u32>) {
            let (mut values, labels) = data.train.examples(chunk.iter().map(|&i| i as usize));
            if augment.is_active() {
                augment.apply(&mut values, shape, augment::batch_seed(seed, epoch, b));
            }
            (values, labels)
        };
        let early = std::thread::scope(|scope| -> Result<Option<TrainOutcome>> {
            // The next batches are made on a thread of their own while this
            // one trains; each goes to the device here, in one copy (candle
            // queues CUDA work on the calling thread's stream).
            let (tx, rx) = std::sync::mpsc::sync_channel(2);
            let (make, order) = (&make, &order);
            let positions: Vec<&[u32]> = order.chunks(config.batch_size).collect();
            scope.spawn(move || {
                for (b, chunk) in order.chunks(config.batch_size).enumerate() {
                    if tx.send(make(b, chunk)).is_err() {
                        break;
                    }
                }
            });
            let made = rx
                .into_iter()
                .map(|(values, labels)| data::as_tensors(values, labels, shape, model.device()));
            for (b, batch) in made.enumerate() {
                if cancel.is_cancelled() {
                    return Ok(Some(TrainOutcome {
                        interrupted: true,
                        ..Default::default()
                    }));
                }
                if let Some(limit) = config.trial_timeout_s.filter(|l| elapsed(&state) > *l) {
                    return Ok(Some(TrainOutcome {
                        timed_out: Some(format!(
                            "timeout: training ran past trial_timeout_s = {limit} in epoch {epoch}"
                        )),
                        ..Default::default()
                    }));
                }
                let (x, y) = batch?;
                let value = on_worker(model.device(), || {
                    // In quantization-aware epochs the pass sees int8-rounded
                    // weights (put back before the step) and layer inputs.
                    let mut float_weights = if aware {
                        Some(FakeQuant::round_weights(model)?)
                    } else {
                        None
                    };
                    let (logits, tape) = if aware {
                        model.forward_taped_with(&x, Some(&mut state.rng), &mut fake_quant)?
                    } else {
                        model.forward_taped(&x, Some(&mut state.rng))?
                    };
                    // The loss, and its gradient with respect to the logits
                    // where it is not candle's cross-entropy's.
                    let (loss, value, logits_grad) = match teacher {
                        None => {
                            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
                            let value = loss.to_scalar::<f32>()? as f64;
                            (loss, value, None)
                        }
                        Some(teacher) => {
                            let (value, grad) = teacher.loss(&x, positions[b], &logits, &y)?;
                            // Its gradient is `grad`: the loss through candle's graph.
                            let loss = (&logits * grad.detach())?.sum_all()?;
                            (loss, value, Some(grad))
                        }
                    };
                    // A diverged batch is reported below, without a step.
                    if value.is_finite() && value <= config.max_loss {
                        let grads = match tape {
                            Some(tape) => tape.backward(match logits_grad {
                                Some(grad) => grad,
                                None => cross_entropy_grad(&logits, &y)?,
                            })?,
                            None => {
                                let grads = loss.backward()?;
                                params
                                    .iter()
                                    .map(|v| grads.get(v.as_tensor()).cloned())
                                    .collect()
                            }
                        };
                        if let Some(w) = float_weights.take() {
                            FakeQuant::restore(model, w)?;
                        }
                        state.optimizer.step(&params, &grads, lr)?;
                    }
                    if let Some(w) = float_weights {
                        FakeQuant::restore(model, w)?;
                    }
                    anyhow::Ok(value)
                })?;
                if !value.is_finite() || value > config.max_loss {
                    return Ok(Some(TrainOutcome {
                        diverged: Some(format!(
                            "loss became {value} in epoch {epoch}, batch {} (limit: max_loss = {})",
                            b + 1,
                            config.max_loss
                        )),
                        ..Default::default()
                    }));
                }
                loss_sum += value;
                on_progress(Progress::Batch {
                    epoch,
                    epochs,
                    batch: b + 1,
                    batches,
                    running_loss: loss_sum / (b + 1) as f64,
                });
            }
            Ok(None)
        })?;
        if let Some(why) = early {
            return Ok(stopped(state, why));
        }
        state.order = order;
        let (val_loss, val_accuracy) = evaluate(model, &data.val, config.eval_batch_size)?;
        if !val_loss.is_finite() {
            let why = TrainOutcome {
                diverged: Some(format!(
                    "validation loss became {val_loss} after epoch {epoch}"
                )),
                ..Default::default()
            };
            return Ok(stopped(state, why));
        }
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / batches as f64,
            val_loss,
            val_accuracy,
            seconds: elapsed(&state),
        };
        on_progress(Progress::Epoch(&record));
        state.curve.push(record);
        // After the last epoch the trial is complete: nothing left to save.
        let judged = extras.pruning.filter(|_| epoch < epochs);
        if let Some(why) = judged.and_then(|p| p.stop(&state.curve)) {
            let why = TrainOutcome {
                pruned: Some(why),
                ..Default::default()
            };
            return Ok(stopped(state, why));
        }
        if let Some(c) =
            checkpoints.filter(|c| c.every > 0 && (epoch % c.every == 0 || epoch == epochs))
        {
            state.save(model, &params, c.dir, seed).context(HostFault)?;
        }
    }
    Ok(stopped(state, TrainOutcome::default()))
}

/// The gradient of the mean cross-entropy of `logits` (N x K) against
/// `labels` (N, u32) with respect to the logits: `(softmax - one-hot) / N`.
pub fn cross_entropy_grad(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (n, k) = logits.dims2()?;
    let mut grad = candle_nn::ops::softmax_last_dim(logits)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    for (i, label) in labels.to_vec1::<u32>()?.into_iter().enumerate() {
        grad[i * k + label as usize] -= 1.0;
    }
    let scale = 1.0 / n as f32;
    grad.iter_mut().for_each(|g| *g *= scale);
    Ok(Tensor::from_vec(grad, (n, k), logits.device())?)
}

/// Runs `f` on a rayon worker thread. The kernels' parallel loops inside it
/// then start from a worker's own queue; called from any other thread, each
/// of the dozens of parallel ops in a training step would hand its work to
/// the pool and put the caller to sleep until done (a futex sleep and wake
/// per op). Measured: a batch-32 seed-template epoch about 8 percent faster.
///
/// Only on the CPU: candle queues CUDA work on the calling thread's own
/// stream, so a step on a worker would race the batch that the caller's
/// stream is still gathering (seen on an H200: labels read before they were
/// written, a device-side assert in the loss's gather).
fn on_worker<R: Send>(device: &Device, f: impl FnOnce() -> R + Send) -> R {
    if device.is_cpu() {
        rayon::scope(|_| f())
    } else {
        f()
    }
}

/// Mean cross-entropy and accuracy of `model` on `split`, in eval mode.
pub fn evaluate(model: &Model, split: &Split, batch_size: usize) -> Result<(f64, f64)> {
    evaluate_pass(
        &|x| model.forward(x, false, None),
        model.device(),
        split,
        batch_size,
    )
}

/// An eval-mode pass: the logits of a batch.
pub type Pass<'a> = dyn Fn(&Tensor) -> Result<Tensor> + Sync + 'a;

/// [`evaluate`] for any `pass` on `device` (an int8 model's, say).
pub fn evaluate_pass(
    pass: &Pass,
    device: &Device,
    split: &Split,
    batch_size: usize,
) -> Result<(f64, f64)> {
    super::allocator::keep_freed_memory();
    let n = split.len();
    let (loss_sum, correct) = on_worker(device, || {
        let (mut loss_sum, mut correct) = (0.0f64, 0u64);
        for start in (0..n).step_by(batch_size) {
            let len = batch_size.min(n - start);
            let (x, y) = split.tensors(start, len, device)?;
            let logits = pass(&x)?;
            loss_sum += candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64
                * len as f64;
            let predicted = logits.argmax(D::Minus1)?;
            correct += predicted
                .eq(&y)?
                .to_dtype(DType::U32)?
                .sum_all()?
                .to_scalar::<u32>()? as u64;
        }
        anyhow::Ok((loss_sum, correct))
    })?;
    Ok((loss_sum / n as f64, correct as f64 / n as f64))
}

/// Median milliseconds of an eval-mode forward pass of `batch` images (after
/// warm-up), over `repeats` passes, or fewer once the probe has run for
/// ten seconds or `cancel` is cancelled (one pass at least). Each pass
/// waits for the device to finish: a GPU only queues the work when the call
/// returns.
pub fn latency_ms(
    model: &Model,
    data: &Dataset,
    batch: usize,
    repeats: usize,
    cancel: &Cancel,
) -> Result<f64> {
    pass_latency_ms(
        &|x| model.forward(x, false, None),
        model.device(),
        data,
        batch,
        repeats,
        cancel,
    )
}

/// [`latency_ms`] for any `pass` on `device` (an int8 model's, say).
pub fn pass_latency_ms(
    pass: &Pass,
    device: &Device,
    data: &Dataset,
    batch: usize,
    repeats: usize,
    cancel: &Cancel,
) -> Result<f64> {
    let mut times = probe(pass, device, data, batch, repeats, cancel)?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The milliseconds of each timed pass of [`latency_ms`] (at least one).
fn probe(
    pass: &Pass,
    device: &Device,
    data: &Dataset,
    batch: usize,
    repeats: usize,
    cancel: &Cancel,
) -> Result<Vec<f64>> {
    let batch = batch.min(data.val.len()).max(1);
    let (x, _) = data.val.tensors(0, batch, device)?;
    for _ in 0..2 {
        pass(&x)?;
    }
    device.synchronize()?;
    let started = Instant::now();
    let mut times = Vec::with_capacity(repeats);
    while times.is_empty()
        || (times.len() < repeats
            && started.elapsed().as_secs_f64() < PROBE_SECONDS
            && !cancel.is_cancelled())
    {
        let t = Instant::now();
        pass(&x)?;
        device.synchronize()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, DataConfig};
    use crate::network::tests::{seed_template, MNIST};
    use candle_core::Device;

    /// `train` synthetic 28x28 images of 10 classes (the MNIST task).
    fn mnist_like(train: usize) -> Dataset {
        let config = DataConfig {
            image_size: Some(28),
            train_samples: Some(train),
            test_samples: Some(10),
            ..DataConfig::default()
        };
        data::load(&config, 3, &Device::Cpu).unwrap()
    }

    fn weights(model: &Model) -> Vec<Vec<f32>> {
        model
            .params()
            .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    }

    #[test]
    fn the_cross_entropy_gradient_is_candles() {
        let logits =
            Var::from_tensor(&Tensor::randn(0f32, 2.0, (5, 10), &Device::Cpu).unwrap()).unwrap();
        let labels = Tensor::new(&[3u32, 0, 9, 3, 7], &Device::Cpu).unwrap();
        let loss = candle_nn::loss::cross_entropy(logits.as_tensor(), &labels).unwrap();
        let expected = loss.backward().unwrap();
        let expected = expected.get(logits.as_tensor()).unwrap();
        let got = cross_entropy_grad(logits.as_tensor(), &labels).unwrap();
        let diff = (got - expected).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    }

    /// A cancelled probe stops after its first timed pass, whatever the
    /// repeats asked for; an uncancelled one takes them all.
    #[test]
    fn a_latency_probe_honours_its_cancel_token() {
        let data = mnist_like(64);
        let model = Model::new(&seed_template(true, 16, 0.0), &MNIST, 5, &Device::Cpu).unwrap();
        let cancelled = Cancel::new();
        cancelled.cancel();
        let pass = |x: &Tensor| model.forward(x, false, None);
        let cpu = Device::Cpu;
        assert_eq!(
            probe(&pass, &cpu, &data, 1, 10_000, &cancelled)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            probe(&pass, &cpu, &data, 1, 5, &Cancel::new())
                .unwrap()
                .len(),
            5
        );
        assert!(latency_ms(&model, &data, 1, 3, &Cancel::new()).unwrap() > 0.0);
    }

    /// Cancelling the token mid-epoch stops training at the next batch,
    /// with the finished epochs kept; another token is not affected.
    #[test]
    fn training_stops_at_the_next_batch_once_its_token_is_cancelled() {
        let data = mnist_like(160);
        let net = seed_template(false, 16, 0.3);
        let train_config = TrainConfig {
            batch_size: 32,
            ..TrainConfig::default()
        };
        let model = Model::new(&net, &MNIST, 5, &Device::Cpu).unwrap();
        let (cancel, other) = (Cancel::new(), Cancel::new());
        let mut batches_after = 0;
        let outcome = train(
            &model,
            &data,
            &train_config,
            3,
            7,
            None,
            &cancel,
            &mut |p| {
                if let Progress::Batch {
                    epoch: 2, batch, ..
                } = p
                {
                    if batch == 1 {
                        cancel.cancel();
                    } else {
                        batches_after += 1;
                    }
                }
            },
        )
        .unwrap();
        assert!(outcome.interrupted);
        assert_eq!(outcome.curve.len(), 1, "the first epoch is kept");
        assert_eq!(batches_after, 0, "no batch ran after the cancel");
        assert!(cancel.clone().is_cancelled() && !other.is_cancelled());
    }

    /// A run stopped in its second epoch and continued from its checkpoint
    /// ends with the same weights and curve as a run that never stopped.
    /// With augmentation, a trial's batches come from its seed alone: the
    /// same weights in every run and after a crash and resume, and other
    /// weights than training without it.
    #[test]
    fn augmented_training_is_deterministic_and_resumes_exactly() {
        let mut data = mnist_like(160);
        let net = seed_template(false, 16, 0.3);
        let train_config = TrainConfig {
            batch_size: 32,
            ..TrainConfig::default()
        };
        let model = || Model::new(&net, &MNIST, 5, &Device::Cpu).unwrap();
        let run = |data: &Dataset, checkpoints, crash: bool| {
            let m = model();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                train(
                    &m,
                    data,
                    &train_config,
                    3,
                    7,
                    checkpoints,
                    &Cancel::new(),
                    &mut |p| {
                        if let (
                            true,
                            Progress::Batch {
                                epoch: 2, batch: 3, ..
                            },
                        ) = (crash, p)
                        {
                            panic!("simulated crash in epoch 2");
                        }
                    },
                )
                .unwrap()
            }));
            (weights(&m), outcome.ok())
        };
        let plain = run(&data, None, false).0;
        data.augment = crate::data::augment::Augment {
            crop_padding: 3,
            flip: true,
            cutout: 6,
        };
        let (whole, _) = run(&data, None, false);
        assert_eq!(whole, run(&data, None, false).0, "deterministic");
        assert_ne!(whole, plain, "augmentation changes the batches");
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Some(Checkpoints {
            dir: dir.path(),
            every: 1,
            from: None,
        });
        assert!(run(&data, checkpoints, true).1.is_none(), "crashed");
        let (resumed, outcome) = run(&data, checkpoints, false);
        assert_eq!(outcome.and_then(|o| o.resumed_from_epoch), Some(1));
        assert_eq!(resumed, whole, "bitwise the same after resume");
    }

    #[test]
    fn training_continued_from_a_checkpoint_matches_uninterrupted_training() {
        let data = mnist_like(160);
        assert_eq!(data.task, MNIST);
        let net = seed_template(false, 16, 0.3);
        let train_config = TrainConfig {
            batch_size: 32,
            ..TrainConfig::default()
        };
        let model = || Model::new(&net, &MNIST, 5, &Device::Cpu).unwrap();

        let reference = model();
        let whole = train(
            &reference,
            &data,
            &train_config,
            3,
            7,
            None,
            &Cancel::new(),
            &mut |_| {},
        )
        .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Some(Checkpoints {
            dir: dir.path(),
            every: 1,
            from: None,
        });
        let stopped = model();
        let crash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train(
                &stopped,
                &data,
                &train_config,
                3,
                7,
                checkpoints,
                &Cancel::new(),
                &mut |p| {
                    if let Progress::Batch {
                        epoch: 2, batch: 2, ..
                    } = p
                    {
                        panic!("simulated crash in epoch 2");
                    }
                },
            )
        }));
        assert!(crash.is_err());
        let continued = model();
        let rest = train(
            &continued,
            &data,
            &train_config,
            3,
            7,
            checkpoints,
            &Cancel::new(),
            &mut |_| {},
        )
        .unwrap();

        assert_eq!(rest.resumed_from_epoch, Some(1));
        assert_eq!(weights(&continued), weights(&reference));
        let strip = |c: &[EpochRecord]| -> Vec<(u32, f64, f64, f64)> {
            c.iter()
                .map(|e| (e.epoch, e.train_loss, e.val_loss, e.val_accuracy))
                .collect()
        };
        assert_eq!(strip(&rest.curve), strip(&whole.curve));
        assert_ne!(
            weights(&continued),
            weights(&model()),
            "training moved the weights"
        );

        // Another seed's checkpoint is set aside and training starts from
        // scratch: the same weights and curve as training never checkpointed.
        let (restarted, fresh) = (model(), model());
        let other_seed = train(
            &restarted,
            &data,
            &train_config,
            3,
            8,
            checkpoints,
            &Cancel::new(),
            &mut |_| {},
        )
        .unwrap();
        let why = other_seed.restarted.as_deref().unwrap_or_default();
        assert!(
            why.contains("belongs to seed 7") && why.contains("checkpoint.json"),
            "{why}"
        );
        assert!(dir.path().join(checkpoint::SET_ASIDE).exists());
        assert_eq!(other_seed.resumed_from_epoch, None);
        let never = train(
            &fresh,
            &data,
            &train_config,
            3,
            8,
            None,
            &Cancel::new(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(weights(&restarted), weights(&fresh));
        assert_eq!(strip(&other_seed.curve), strip(&never.curve));
    }
}
