//! Quantization-aware training: in a trial's last `aware_epochs` epochs the
//! network trains as its int8 form computes. Each convolution's and dense
//! layer's weights are rounded to their per-channel int8 grid for the
//! forward and backward pass, and its input to a u8 grid over a moving
//! range of the inputs it saw; the gradients pass the rounding unchanged
//! (the straight-through estimator) to the float weights, which the
//! optimiser updates.

use super::Affine;
use crate::network::{LayerHook, Model};
use anyhow::Result;
use candle_core::Tensor;
use std::collections::BTreeMap;

/// The weight of the newest batch in a layer's moving input range.
const MOMENTUM: f32 = 0.1;

/// The fake quantization of a training's layers, with the input ranges
/// seen so far.
#[derive(Default)]
pub struct FakeQuant {
    ranges: BTreeMap<usize, (f32, f32)>,
}

impl FakeQuant {
    /// Sets every layer's weights to the values of their int8 grid and
    /// returns the float weights, for [`FakeQuant::restore`].
    pub fn round_weights(model: &Model) -> Result<Vec<Tensor>> {
        let mut saved = Vec::new();
        for var in model.layer_weights() {
            let w = var.as_tensor().copy()?;
            let dims = w.dims().to_vec();
            let values = w.flatten_all()?.to_vec1::<f32>()?;
            let depth = values.len() / dims[0].max(1);
            let mut rounded = Vec::with_capacity(values.len());
            for row in values.chunks_exact(depth.max(1)) {
                let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = if max > 0.0 && max.is_finite() {
                    max / 127.0
                } else {
                    1.0
                };
                rounded.extend(
                    row.iter()
                        .map(|v| (v / scale).round_ties_even().clamp(-127.0, 127.0) * scale),
                );
            }
            var.set(&Tensor::from_vec(rounded, dims, w.device())?)?;
            saved.push(w);
        }
        Ok(saved)
    }

    /// Puts back the float weights [`FakeQuant::round_weights`] returned.
    pub fn restore(model: &Model, saved: Vec<Tensor>) -> Result<()> {
        for (var, w) in model.layer_weights().into_iter().zip(saved) {
            var.set(&w)?;
        }
        Ok(())
    }
}

impl LayerHook for FakeQuant {
    fn input(&mut self, node: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let values = x.flatten_all()?.to_vec1::<f32>()?;
        let (low, high) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        if !(low.is_finite() && high.is_finite()) {
            // A diverging batch: the loss check ends the training.
            return Ok(None);
        }
        let range = self
            .ranges
            .entry(node)
            .and_modify(|r| *r = (r.0 + MOMENTUM * (low - r.0), r.1 + MOMENTUM * (high - r.1)))
            .or_insert((low, high));
        let grid = Affine::from_range(range.0, range.1)?;
        let rounded: Vec<f32> = values
            .iter()
            .map(|&v| grid.dequantize(grid.quantize(v)))
            .collect();
        let rounded = Tensor::from_vec(rounded, x.dims(), x.device())?;
        Ok(Some(if x.device().is_cpu() {
            // The CPU's tape passes the gradient to the layer's input as it is.
            rounded
        } else {
            // Through candle's graph: the rounded value, the gradient of `x`.
            (x + (rounded - x)?.detach())?
        }))
    }
}
