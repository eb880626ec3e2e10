//! The training loop of one trial: shuffled mini-batches, cross-entropy on
//! logits, an optimiser step per batch, and per epoch the training loss, the
//! validation loss and accuracy and the elapsed time. A NaN or infinite loss,
//! or one above `max_loss`, ends training as diverged. Also evaluation and latency probes, which build
//! no backward graph.

use super::config::TrainConfig;
use super::optimizer::Optimizer;
use crate::data::{Dataset, Split};
use crate::network::Model;
use anyhow::Result;
use candle_core::{DType, Tensor, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The metrics of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: u32,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation accuracy in [0, 1].
    pub val_accuracy: f64,
    /// Seconds since training started, at the end of this epoch.
    pub seconds: f64,
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
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// One record per finished epoch.
    pub curve: Vec<EpochRecord>,
    /// Why training stopped early, when the loss stopped being finite.
    pub diverged: Option<String>,
    /// Whether Ctrl-C stopped training early.
    pub interrupted: bool,
    /// Why training ran out of time, when it did.
    pub timed_out: Option<String>,
}

/// Trains `model` for `epochs` epochs; `seed` fixes batch order and dropout.
pub fn train(
    model: &Model,
    data: &Dataset,
    config: &TrainConfig,
    epochs: u32,
    seed: u64,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<TrainOutcome> {
    let params: Vec<&candle_core::Var> = model.params().collect();
    let mut optimizer = Optimizer::new(config, params.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = data.train.len();
    let batches = n.div_ceil(config.batch_size);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let start = Instant::now();
    let mut curve = Vec::new();
    for epoch in 1..=epochs {
        let lr = config.learning_rate_at(epoch - 1, epochs);
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            if crate::interrupt::requested() {
                return Ok(TrainOutcome {
                    curve,
                    diverged: None,
                    interrupted: true,
                    timed_out: None,
                });
            }
            if let Some(limit) = config
                .trial_timeout_s
                .filter(|l| start.elapsed().as_secs_f64() > *l)
            {
                let why = format!(
                    "timeout: training ran past trial_timeout_s = {limit} in epoch {epoch}"
                );
                return Ok(TrainOutcome {
                    curve,
                    diverged: None,
                    interrupted: false,
                    timed_out: Some(why),
                });
            }
            let idx = Tensor::from_slice(chunk, chunk.len(), model.device())?;
            let x = data.train.images.index_select(&idx, 0)?;
            let y = data.train.labels.index_select(&idx, 0)?;
            let logits = model.forward(&x, true, Some(&mut rng))?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() || value > config.max_loss {
                return Ok(TrainOutcome {
                    curve,
                    interrupted: false,
                    timed_out: None,
                    diverged: Some(format!(
                        "loss became {value} in epoch {epoch}, batch {} (limit: max_loss = {})",
                        b + 1,
                        config.max_loss
                    )),
                });
            }
            let grads = loss.backward()?;
            optimizer.step(&params, &grads, lr)?;
            loss_sum += value;
            on_progress(Progress::Batch {
                epoch,
                epochs,
                batch: b + 1,
                batches,
                running_loss: loss_sum / (b + 1) as f64,
            });
        }
        let (val_loss, val_accuracy) = evaluate(model, &data.val, config.eval_batch_size)?;
        if !val_loss.is_finite() {
            return Ok(TrainOutcome {
                curve,
                interrupted: false,
                timed_out: None,
                diverged: Some(format!(
                    "validation loss became {val_loss} after epoch {epoch}"
                )),
            });
        }
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / batches as f64,
            val_loss,
            val_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        };
        on_progress(Progress::Epoch(&record));
        curve.push(record);
    }
    Ok(TrainOutcome {
        curve,
        diverged: None,
        interrupted: false,
        timed_out: None,
    })
}

/// Mean cross-entropy and accuracy of `model` on `split`, in eval mode.
pub fn evaluate(model: &Model, split: &Split, batch_size: usize) -> Result<(f64, f64)> {
    let n = split.len();
    let (mut loss_sum, mut correct) = (0.0f64, 0u64);
    for start in (0..n).step_by(batch_size) {
        let len = batch_size.min(n - start);
        let x = split.images.narrow(0, start, len)?;
        let y = split.labels.narrow(0, start, len)?;
        let logits = model.forward(&x, false, None)?;
        loss_sum +=
            candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * len as f64;
        let predicted = logits.argmax(D::Minus1)?;
        correct += predicted
            .eq(&y)?
            .to_dtype(DType::U32)?
            .sum_all()?
            .to_scalar::<u32>()? as u64;
    }
    Ok((loss_sum / n as f64, correct as f64 / n as f64))
}

/// Median milliseconds of an eval-mode forward pass of `batch` images (after warm-up).
pub fn latency_ms(model: &Model, data: &Dataset, batch: usize, repeats: usize) -> Result<f64> {
    let batch = batch.min(data.val.len()).max(1);
    let x = data.val.images.narrow(0, 0, batch)?;
    for _ in 0..2 {
        model.forward(&x, false, None)?;
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            model
                .forward(&x, false, None)
                .map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
