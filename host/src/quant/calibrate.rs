//! `[quantize]` and calibration: the grid of each convolution's and dense
//! layer's input from what the float model computes on training batches.

use super::Affine;
use crate::data::Split;
use crate::network::{LayerHook, Model};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How an input's range is read from the calibration batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Calibration {
    /// The smallest and largest value seen.
    #[default]
    MinMax,
    /// The `percentile`-th and `(100 - percentile)`-th percentiles: a few
    /// outliers do not stretch the grid.
    Percentile,
}

/// The `[quantize]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantizeConfig {
    /// Quantize every completed trial to int8 and measure it (default false).
    pub enabled: bool,
    /// `minmax` (default) or `percentile`.
    pub calibration: Calibration,
    /// For `percentile`: the upper percentile kept, in (50, 100] (default 99.99).
    pub percentile: f64,
    /// Training batches the calibration runs (default 8, at the training batch size).
    pub calibration_batches: usize,
    /// Quantization-aware training in each trial's last this many epochs
    /// (default 0: none).
    pub aware_epochs: u32,
}

impl Default for QuantizeConfig {
    fn default() -> Self {
        QuantizeConfig {
            enabled: false,
            calibration: Calibration::MinMax,
            percentile: 99.99,
            calibration_batches: 8,
            aware_epochs: 0,
        }
    }
}

/// The most calibration batches: each is a forward pass.
const MAX_CALIBRATION_BATCHES: usize = 10_000;
/// Histogram bins of the percentile calibration.
const BINS: usize = 2048;

impl QuantizeConfig {
    /// Checks the keys' ranges.
    pub fn validate(&self) -> Result<()> {
        if !(self.percentile > 50.0 && self.percentile <= 100.0) {
            bail!(
                "[quantize] percentile = {} must be above 50 and at most 100 (default 99.99)",
                self.percentile
            );
        }
        if !(1..=MAX_CALIBRATION_BATCHES).contains(&self.calibration_batches) {
            bail!(
                "[quantize] calibration_batches = {} must be between 1 and {MAX_CALIBRATION_BATCHES} (default 8)",
                self.calibration_batches
            );
        }
        if self.aware_epochs > 0 && !self.enabled {
            bail!("[quantize] aware_epochs trains for the int8 model, which only enabled = true makes");
        }
        Ok(())
    }
}

/// Watches the layers' inputs; every layer runs in float.
struct Observer {
    /// Per layer: the smallest and largest input value seen.
    ranges: BTreeMap<usize, (f32, f32)>,
    /// Per layer, in the second pass of `percentile`: counts over its range.
    histograms: Option<BTreeMap<usize, Vec<u64>>>,
}

impl LayerHook for Observer {
    fn layer(&mut self, node: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let values = x.flatten_all()?.to_vec1::<f32>()?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            bail!("the input of layer n{node} holds {v} on a calibration batch");
        }
        match &mut self.histograms {
            None => {
                let (low, high) = values
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                        (l.min(v), h.max(v))
                    });
                let range = self.ranges.entry(node).or_insert((low, high));
                *range = (range.0.min(low), range.1.max(high));
            }
            Some(histograms) => {
                let (low, high) = self.ranges[&node];
                let counts = histograms.entry(node).or_insert_with(|| vec![0; BINS]);
                let width = (high - low).max(f32::MIN_POSITIVE);
                for v in values {
                    let bin = (((v - low) / width) * BINS as f32) as usize;
                    counts[bin.min(BINS - 1)] += 1;
                }
            }
        }
        Ok(None)
    }
}

/// The grid of each convolution's and dense layer's input, by node, from
/// the first `calibration_batches` batches of `split` (in order, not
/// augmented) through `model` (on the CPU) in eval mode.
pub fn calibrate(
    model: &Model,
    split: &Split,
    batch_size: usize,
    config: &QuantizeConfig,
) -> Result<BTreeMap<usize, Affine>> {
    let batches = (0..split.len())
        .step_by(batch_size.max(1))
        .take(config.calibration_batches)
        .map(|start| {
            Ok(split
                .tensors(start, batch_size.min(split.len() - start), &Device::Cpu)?
                .0)
        })
        .collect::<Result<Vec<_>>>()?;
    calibrate_batches(model, &batches, config).context("calibration")
}

/// [`calibrate`] on the batches `batches`.
pub fn calibrate_batches(
    model: &Model,
    batches: &[Tensor],
    config: &QuantizeConfig,
) -> Result<BTreeMap<usize, Affine>> {
    let mut observer = Observer {
        ranges: BTreeMap::new(),
        histograms: None,
    };
    let pass = |observer: &mut Observer| -> Result<()> {
        for x in batches {
            model.forward_hooked(x, observer)?;
        }
        Ok(())
    };
    pass(&mut observer)?;
    if config.calibration == Calibration::Percentile {
        observer.histograms = Some(BTreeMap::new());
        pass(&mut observer)?;
    }
    let mut grids = BTreeMap::new();
    for (&node, &(low, high)) in &observer.ranges {
        let (low, high) = match &observer.histograms {
            None => (low, high),
            Some(h) => {
                let counts = &h[&node];
                let keep = config.percentile / 100.0;
                let at = |q: f64| low + (high - low) * quantile(counts, q) as f32;
                (at(1.0 - keep), at(keep))
            }
        };
        grids.insert(node, Affine::from_range(low, high)?);
    }
    Ok(grids)
}

/// The fraction of the range (0 to 1) below which a share `q` of the
/// histogram's counts lies (bins' upper edges for the upper half, lower
/// edges for the lower, so that the extremes stay inside).
fn quantile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    let target = q * total as f64;
    let mut seen = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen as f64 >= target {
            let edge = if q >= 0.5 { i + 1 } else { i };
            return edge as f64 / counts.len() as f64;
        }
    }
    1.0
}
