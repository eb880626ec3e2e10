//! Post-training int8 quantization of a trained network, as PyTorch's
//! static quantization does it: each batch-norm folded into the convolution
//! or dense layer before it; weights symmetric per output channel (s8); the
//! input of every convolution and dense layer affine per tensor (u8),
//! calibrated on training batches ([`calibrate`]); those layers computed by
//! the integer kernels ([`nas_kernels::int8`]), every other op in float.
//! [`Simulated`] runs the same quantized model in float: the reference the
//! integer kernels are checked against, and what an ONNX runtime computes
//! from the QDQ export.

mod aware;
mod calibrate;
mod layer;

pub use aware::FakeQuant;
pub use calibrate::{calibrate, calibrate_batches, Calibration, QuantizeConfig};
pub use layer::{Int8Pass, Simulated};

use crate::data::Split;
use crate::ir::{Activation, Network, Op, Task};
use crate::network::{analyse, Model, BN_EPS};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use nas_kernels::int8::{PackedWeights, WeightRows};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// File name of a trial's activation quantization parameters in its folder.
pub const INT8_FILE: &str = "int8.json";

/// An activation's u8 grid: `x ≈ scale * (q - zero)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    /// The step between two codes.
    pub scale: f32,
    /// The code of 0.0.
    pub zero: u8,
}

impl Affine {
    /// The grid over `[low, high]` widened to hold 0.0 exactly (padding and
    /// ReLU outputs are zeros); a range of one point gets scale 1.
    pub fn from_range(low: f32, high: f32) -> Result<Affine> {
        if !(low.is_finite() && high.is_finite() && low <= high) {
            bail!("calibration saw the range [{low}, {high}], not a finite range");
        }
        let (low, high) = (low.min(0.0), high.max(0.0));
        let scale = (high - low) / 255.0;
        if !(scale.is_normal()) {
            return Ok(Affine {
                scale: 1.0,
                zero: 0,
            });
        }
        let zero = (-low / scale).round_ties_even().clamp(0.0, 255.0) as u8;
        Ok(Affine { scale, zero })
    }

    /// The code of `x` (rounded half to even, as ONNX's QuantizeLinear does).
    #[inline]
    pub fn quantize(&self, x: f32) -> u8 {
        // Adding and taking away 1.5 x 2^23 rounds a value in [0, 255] to
        // an integer, ties to even (IEEE rounding), in two vector
        // instructions where `round_ties_even` calls `rintf` per value.
        const ROUND: f32 = 12_582_912.0;
        let t = (x / self.scale + f32::from(self.zero)).clamp(0.0, 255.0);
        ((t + ROUND) - ROUND) as u8
    }

    /// The value of code `q`.
    pub fn dequantize(&self, q: u8) -> f32 {
        self.scale * (f32::from(q) - f32::from(self.zero))
    }
}

/// A convolution or dense layer in int8.
pub struct Layer {
    /// The grid of its input.
    pub input: Affine,
    /// s8 weights, `outputs x depth` (depth: a group's input channels x
    /// kernel x kernel for a convolution, the input features for a dense layer).
    pub weights: Vec<i8>,
    /// The weights' dimensions (as the float layer's).
    pub dims: Vec<usize>,
    /// Per output: the weights' scale.
    pub scales: Vec<f32>,
    /// Per output: the bias (batch-norm folded in; zeros where the layer has
    /// none) in int32 steps of the input scale times the weight scale, as
    /// integer runtimes add it to the sums.
    pub bias_steps: Vec<i32>,
    /// Per output: that bias's value.
    pub bias: Vec<f32>,
    /// Whether it applies the ReLU after it (and its folded batch-norm).
    pub relu: bool,
    /// The weights as the integer kernels read them.
    kernel: Kernel,
}

/// A layer's weights as the integer kernels read them.
enum Kernel {
    /// A convolution's, per group (output channels in rows, taps channel-last).
    Conv(Vec<WeightRows>),
    /// A dense layer's (outputs in columns).
    Dense(PackedWeights),
}

/// A trained network quantized to int8.
pub struct Int8Network {
    /// Per node: the int8 layer of a convolution or dense layer.
    layers: Vec<Option<Layer>>,
    /// Per node: a batch-norm folded into the layer before it, or a ReLU
    /// that layer applies.
    passes_on: Vec<bool>,
    network: Network,
}

impl Int8Network {
    /// Quantizes `network` (built for `task`) with trained `tensors` (as
    /// [`crate::network::Model::tensors`] names them); `inputs` are the
    /// calibrated grids of the layers' inputs, by node.
    pub fn new(
        network: &Network,
        task: &Task,
        tensors: &HashMap<String, Tensor>,
        inputs: &BTreeMap<usize, Affine>,
    ) -> Result<Self> {
        analyse(network, task)?;
        let n = network.nodes.len();
        let mut readers = vec![Vec::new(); n];
        for (i, node) in network.nodes.iter().enumerate() {
            for &j in &node.inputs {
                readers[j as usize].push(i);
            }
        }
        let floats = |name: String| -> Result<(Vec<f32>, Vec<usize>)> {
            let t = tensors
                .get(&name)
                .with_context(|| format!("the weights have no tensor `{name}`"))?;
            Ok((t.flatten_all()?.to_vec1::<f32>()?, t.dims().to_vec()))
        };
        let mut layers: Vec<Option<Layer>> = (0..n).map(|_| None).collect();
        let mut passes_on = vec![false; n];
        for (i, node) in network.nodes.iter().enumerate() {
            let groups = match &node.op {
                Op::Conv2d(conv) => conv.groups as usize,
                Op::Dense(_) => 1,
                _ => continue,
            };
            let (mut w, dims) = floats(format!("n{i}.weight"))?;
            let outputs = dims[0];
            let depth = w.len() / outputs.max(1);
            let has_bias = !matches!(&node.op, Op::Conv2d(c) if !c.bias);
            let mut bias = if has_bias {
                floats(format!("n{i}.bias"))?.0
            } else {
                vec![0.0; outputs]
            };
            // A batch-norm that only this layer feeds, and that is all it
            // feeds, then a ReLU likewise.
            let mut last = i;
            if let [j] = readers[i][..] {
                if network.nodes[j].op == Op::BatchNorm {
                    let (gamma, beta) = (
                        floats(format!("n{j}.gamma"))?.0,
                        floats(format!("n{j}.beta"))?.0,
                    );
                    let (mean, var) = (
                        floats(format!("n{j}.running_mean"))?.0,
                        floats(format!("n{j}.running_var"))?.0,
                    );
                    for o in 0..outputs {
                        let k = gamma[o] / (var[o] + BN_EPS as f32).sqrt();
                        w[o * depth..(o + 1) * depth]
                            .iter_mut()
                            .for_each(|v| *v *= k);
                        bias[o] = (bias[o] - mean[o]) * k + beta[o];
                    }
                    passes_on[j] = true;
                    last = j;
                }
            }
            let relu = match readers[last][..] {
                [r] => network.nodes[r].op == Op::Activation(Activation::Relu),
                _ => false,
            };
            if relu {
                passes_on[readers[last][0]] = true;
            }
            let input = *inputs
                .get(&i)
                .with_context(|| format!("no calibrated input grid for layer n{i}"))?;
            let mut weights = Vec::with_capacity(w.len());
            let mut scales = Vec::with_capacity(outputs);
            for row in w.chunks_exact(depth) {
                let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                if !max.is_finite() {
                    bail!("layer n{i} has weights that are not finite");
                }
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                scales.push(scale);
                weights.extend(
                    row.iter()
                        .map(|v| (v / scale).round_ties_even().clamp(-127.0, 127.0) as i8),
                );
            }
            let (mut bias_steps, mut quantized_bias) = (Vec::new(), Vec::new());
            for (b, s) in bias.iter().zip(&scales) {
                if !b.is_finite() {
                    bail!("layer n{i} has a bias that is not finite");
                }
                let step = input.scale * s;
                // The cast saturates at i32's range.
                let q = (b / step).round_ties_even() as i32;
                bias_steps.push(q);
                quantized_bias.push(q as f32 * step);
            }
            let kernel = match &node.op {
                Op::Conv2d(conv) => {
                    // The integer kernels read a convolution's taps channel-last.
                    let taps = (conv.kernel * conv.kernel) as usize;
                    let channel_last = tap_major(&weights, depth, taps);
                    let per_group = outputs / groups;
                    Kernel::Conv(
                        channel_last
                            .chunks_exact(per_group * depth)
                            .map(|g| WeightRows::new(g, per_group, depth))
                            .collect::<std::result::Result<_, String>>()
                            .map_err(|e| anyhow::anyhow!("layer n{i}: {e}"))?,
                    )
                }
                _ => Kernel::Dense(
                    PackedWeights::new(&weights, outputs, depth)
                        .map_err(|e| anyhow::anyhow!("layer n{i}: {e}"))?,
                ),
            };
            layers[i] = Some(Layer {
                input,
                weights,
                dims,
                scales,
                bias_steps,
                bias: quantized_bias,
                relu,
                kernel,
            });
        }
        Ok(Int8Network {
            layers,
            passes_on,
            network: network.clone(),
        })
    }

    /// The int8 layer of node `node`, if it is a convolution or dense layer.
    pub fn layer(&self, node: usize) -> Option<&Layer> {
        self.layers.get(node).and_then(Option::as_ref)
    }

    /// Whether node `node` passes its input on: a batch-norm folded into
    /// the layer before it, or a ReLU that layer applies.
    pub fn passes_on(&self, node: usize) -> bool {
        self.passes_on.get(node).copied().unwrap_or(false)
    }

    /// Bytes of the quantized model's parameters: int8 weights with their
    /// scales and zero points (one per output channel), int32 biases, the
    /// input grids, and the parameters that stay float (batch-norms not
    /// folded) at four bytes each.
    pub fn size_bytes(&self, tensors: &HashMap<String, Tensor>) -> u64 {
        let mut bytes = 0u64;
        for (i, node) in self.network.nodes.iter().enumerate() {
            if let Some(l) = &self.layers[i] {
                bytes += l.weights.len() as u64 + 9 * l.scales.len() as u64 + 5;
            } else if node.op == Op::BatchNorm && !self.passes_on[i] {
                bytes += ["gamma", "beta", "running_mean", "running_var"]
                    .iter()
                    .filter_map(|s| tensors.get(&format!("n{i}.{s}")))
                    .map(|t| 4 * t.elem_count() as u64)
                    .sum::<u64>();
            }
        }
        bytes
    }
}

/// Rows of `depth` weights ordered channel, tap (a convolution's
/// `[ci][ky][kx]`) reordered tap, channel (`[ky][kx][ci]`).
fn tap_major(weights: &[i8], depth: usize, taps: usize) -> Vec<i8> {
    let channels = depth / taps;
    let mut out = vec![0i8; weights.len()];
    for (row, dst) in weights.chunks_exact(depth).zip(out.chunks_exact_mut(depth)) {
        for c in 0..channels {
            for t in 0..taps {
                dst[t * channels + c] = row[c * taps + t];
            }
        }
    }
    out
}

/// A model's int8 form, ready to run.
pub struct Quantized {
    /// The float model's weights on the CPU (the int8 pass runs there).
    cpu: Model,
    /// Its quantized layers.
    net: Int8Network,
    /// The grids of the layers' inputs, by node (what [`INT8_FILE`] keeps).
    pub grids: BTreeMap<usize, Affine>,
    /// Bytes of its parameters ([`Int8Network::size_bytes`]).
    pub size_bytes: u64,
}

impl Quantized {
    /// Quantizes `model` (a network built for `task`), calibrated on the
    /// first batches of `split`.
    pub fn new(
        model: &Model,
        network: &Network,
        task: &Task,
        split: &Split,
        batch_size: usize,
        config: &QuantizeConfig,
    ) -> Result<Self> {
        let cpu = Model::new(network, task, 0, &Device::Cpu)?;
        let tensors: HashMap<String, Tensor> = model
            .snapshot()?
            .into_iter()
            .map(|(name, t)| Ok((name, t.to_device(&Device::Cpu)?)))
            .collect::<Result<_>>()?;
        cpu.set_tensors(&tensors, "the trained model")?;
        let grids = calibrate(&cpu, split, batch_size, config)?;
        let net = Int8Network::new(network, task, &tensors, &grids)?;
        let size_bytes = net.size_bytes(&tensors);
        Ok(Quantized {
            cpu,
            net,
            grids,
            size_bytes,
        })
    }

    /// The int8 model's logits for a batch.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.cpu.forward_hooked(x, &mut Int8Pass(&self.net))
    }

    /// Writes the grids to `dir`/[`INT8_FILE`], with the settings that made them.
    pub fn save(&self, dir: &Path, config: &QuantizeConfig) -> Result<()> {
        let path = dir.join(INT8_FILE);
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "quantize": config,
            "inputs": self.grids,
        }))?;
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
    }
}

/// Reads the grids [`Quantized::save`] wrote to `path`.
pub fn read_grids(path: &Path) -> Result<BTreeMap<usize, Affine>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let grids: BTreeMap<usize, Affine> = serde_json::from_value(value["inputs"].clone())
        .with_context(|| format!("{}: no valid `inputs`", path.display()))?;
    if let Some((node, g)) = grids
        .iter()
        .find(|(_, g)| !(g.scale.is_finite() && g.scale > 0.0))
    {
        bail!(
            "{}: layer n{node}'s input scale {} is not a positive number",
            path.display(),
            g.scale
        );
    }
    Ok(grids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Node;

    #[test]
    fn a_grid_holds_zero_exactly_and_clamps_outside_its_range() {
        let g = Affine::from_range(-1.0, 3.0).unwrap();
        assert_eq!(g.dequantize(g.zero), 0.0);
        assert_eq!(g.quantize(-1.0), 0);
        assert_eq!(g.quantize(3.0), 255);
        assert_eq!(g.quantize(-50.0), 0);
        assert_eq!(g.quantize(50.0), 255);
        assert!((g.dequantize(g.quantize(1.234)) - 1.234).abs() <= g.scale / 2.0);
        // A range above zero is widened to zero: ReLU outputs use all 256 codes.
        let relu = Affine::from_range(0.5, 2.0).unwrap();
        assert_eq!((relu.zero, relu.quantize(2.0)), (0, 255));
        assert_eq!(Affine::from_range(0.0, 0.0).unwrap().scale, 1.0);
        assert!(Affine::from_range(f32::NAN, 1.0).is_err());
        assert!(Affine::from_range(0.0, f32::INFINITY).is_err());
        assert!(Affine::from_range(2.0, 1.0).is_err());
    }

    #[test]
    fn percentile_calibration_ignores_a_rare_outlier_that_minmax_follows() {
        let task = Task {
            channels: 1,
            height: 10,
            width: 10,
            num_classes: 2,
        };
        let network = Network {
            nodes: vec![
                Node {
                    op: Op::Input,
                    inputs: vec![],
                },
                Node {
                    op: Op::Flatten,
                    inputs: vec![0],
                },
                Node {
                    op: Op::Dense(2),
                    inputs: vec![1],
                },
            ],
            key: "dense".into(),
        };
        let model = Model::new(&network, &task, 0, &Device::Cpu).unwrap();
        let mut values: Vec<f32> = (0..100 * 100).map(|i| (i % 100) as f32 / 100.0).collect();
        values[4321] = 1000.0;
        let batch = Tensor::from_vec(values, (100, 1, 10, 10), &Device::Cpu).unwrap();
        let grid = |calibration| {
            let config = QuantizeConfig {
                calibration,
                percentile: 99.9,
                ..QuantizeConfig::default()
            };
            calibrate_batches(&model, std::slice::from_ref(&batch), &config).unwrap()[&2]
        };
        let minmax = grid(Calibration::MinMax);
        assert!((minmax.scale * 255.0 - 1000.0).abs() < 1e-3, "{minmax:?}");
        let percentile = grid(Calibration::Percentile);
        // The top of the grid within one histogram bin (1000 / 2048) of 0.99.
        let top = percentile.scale * 255.0;
        assert!((top - 0.99).abs() < 0.5, "{percentile:?}");
        assert_eq!(percentile.zero, 0);
    }
}
