//! The quantized layers of a pass: on the integer kernels ([`Int8Pass`]),
//! or simulated in float with the same grids ([`Simulated`]).

use super::{Int8Network, Kernel, Layer};
use crate::ir::{Conv2d, Op};
use crate::network::shape::pad_amount;
use crate::network::LayerHook;
use anyhow::{Context, Result};
use candle_core::{Device, Layout, Storage, Tensor};
use nas_kernels::int8::{
    gemm_s8u8, gemm_u8s8, row_len, PackedCodes, PackedWeights, WeightRows, Window,
};
use rayon::prelude::*;

/// A pass whose convolutions and dense layers run in int8 (on the CPU).
pub struct Int8Pass<'a>(pub &'a Int8Network);

impl LayerHook for Int8Pass<'_> {
    fn layer(&mut self, node: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let Some(layer) = self.0.layer(node) else {
            return Ok(None);
        };
        let y = match (&self.0.network.nodes[node].op, &layer.kernel) {
            (Op::Conv2d(conv), Kernel::Conv(groups)) => conv_int8(layer, groups, conv, x),
            (_, Kernel::Dense(packed)) => dense_int8(layer, packed, x),
            _ => anyhow::bail!("a convolution's weights on a dense layer"),
        };
        y.with_context(|| format!("int8 layer n{node}")).map(Some)
    }

    fn passes_on(&self, node: usize) -> bool {
        self.0.passes_on(node)
    }
}

/// A pass that computes the quantized model in float: each layer's input
/// rounded to its grid, its int8 weights times their scales.
pub struct Simulated<'a>(pub &'a Int8Network);

impl LayerHook for Simulated<'_> {
    fn layer(&mut self, node: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let Some(layer) = self.0.layer(node) else {
            return Ok(None);
        };
        let device = x.device();
        let values: Vec<f32> = x.flatten_all()?.to_vec1::<f32>()?;
        let rounded: Vec<f32> = values
            .iter()
            .map(|&v| layer.input.dequantize(layer.input.quantize(v)))
            .collect();
        let x = Tensor::from_vec(rounded, x.dims(), device)?;
        let depth = layer.weights.len() / layer.scales.len();
        let w: Vec<f32> = layer
            .weights
            .chunks_exact(depth)
            .zip(&layer.scales)
            .flat_map(|(row, s)| row.iter().map(move |&q| f32::from(q) * s))
            .collect();
        let w = Tensor::from_vec(w, layer.dims.as_slice(), device)?;
        let bias = Tensor::from_vec(layer.bias.clone(), layer.bias.len(), device)?;
        let y = match &self.0.network.nodes[node].op {
            Op::Conv2d(conv) => {
                let pad = pad_amount(conv.padding, conv.kernel as usize, conv.dilation as usize);
                x.conv2d(
                    &w,
                    pad,
                    conv.stride as usize,
                    conv.dilation as usize,
                    conv.groups as usize,
                )?
                .broadcast_add(&bias.reshape((1, (), 1, 1))?)?
            }
            _ => x.matmul(&w.t()?)?.broadcast_add(&bias)?,
        };
        Ok(Some(if layer.relu { y.relu()? } else { y }))
    }

    fn passes_on(&self, node: usize) -> bool {
        self.0.passes_on(node)
    }
}

/// The values of a contiguous f32 tensor's storage on the CPU.
fn cpu_values<'a>(storage: &'a Storage, layout: &Layout) -> Result<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        anyhow::bail!("int8 layers run on the CPU");
    };
    let (start, end) = layout
        .contiguous_offsets()
        .context("int8 layers read contiguous inputs")?;
    Ok(&cpu.as_slice::<f32>()?[start..end])
}

/// From integer sums to a run of outputs' values: `input scale x weight
/// scale x (sum - zero x Σ weights) + bias`, through the ReLU the layer applies.
struct Epilogue {
    /// Per output: the zero's share of its sum.
    correction: Vec<i32>,
    scale: Vec<f32>,
    bias: Vec<f32>,
    /// The ReLU's floor (zero), or none.
    floor: f32,
}

impl Epilogue {
    /// For the outputs `first..` whose weights sum to `sums`.
    fn new(layer: &Layer, sums: &[i32], first: usize) -> Self {
        let outputs = first..first + sums.len();
        Epilogue {
            // Σ (code - zero) x weight is within i32 (the kernels' depth
            // limit), so the wrapping difference below is exact.
            correction: sums
                .iter()
                .map(|&s| i32::from(layer.input.zero).wrapping_mul(s))
                .collect(),
            scale: layer.scales[outputs.clone()]
                .iter()
                .map(|s| layer.input.scale * s)
                .collect(),
            bias: layer.bias[outputs].to_vec(),
            floor: if layer.relu { 0.0 } else { f32::NEG_INFINITY },
        }
    }

    /// Output `o`'s values for the sums of its plane.
    #[inline]
    fn plane(&self, o: usize, sums: &[i32], out: &mut [f32]) {
        let (c, k, b) = (self.correction[o], self.scale[o], self.bias[o]);
        for (y, &s) in out.iter_mut().zip(sums) {
            *y = (k * s.wrapping_sub(c) as f32 + b).max(self.floor);
        }
    }

    /// The values of the outputs whose sums are `sums` (a result row,
    /// possibly wider).
    #[inline]
    fn outputs<'a>(&'a self, sums: &'a [i32]) -> impl Iterator<Item = f32> + 'a {
        sums.iter()
            .zip(&self.correction)
            .zip(self.scale.iter().zip(&self.bias))
            .map(|((&s, &c), (&k, &b))| (k * s.wrapping_sub(c) as f32 + b).max(self.floor))
    }
}

/// A convolution on the integer kernels. Each sample's input becomes codes
/// laid out channel-last with a border of the zero's code, so that one
/// output position's taps are whole runs of a group's channels: its column
/// of the product, whose rows are the output channels' planes.
fn conv_int8(layer: &Layer, groups: &[WeightRows], conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (k, stride, dilation) = (
        conv.kernel as usize,
        conv.stride as usize,
        conv.dilation as usize,
    );
    let pad = pad_amount(conv.padding, k, dilation);
    let span = dilation * (k - 1) + 1;
    let (hp, wp) = (h + 2 * pad, w + 2 * pad);
    let (oh, ow) = ((hp - span) / stride + 1, (wp - span) / stride + 1);
    let outputs = layer.scales.len();
    let (cg, fg) = (c / groups.len(), outputs / groups.len());
    let plane = oh * ow;
    let grid = layer.input;
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let values = cpu_values(&storage, layout)?;
    let mut y = vec![0f32; n * outputs * plane];
    y.par_chunks_mut(outputs * plane)
        .zip(values.par_chunks(c * h * w))
        .try_for_each(|(ys, xs)| -> Result<()> {
            let mut padded = vec![grid.zero; hp * wp * c];
            for (ci, input) in xs.chunks_exact(h * w).enumerate() {
                for (iy, line) in input.chunks_exact(w).enumerate() {
                    let at = ((iy + pad) * wp + pad) * c + ci;
                    for (ix, &v) in line.iter().enumerate() {
                        padded[at + ix * c] = grid.quantize(v);
                    }
                }
            }
            let mut codes = PackedCodes::default();
            let mut acc = Vec::new();
            for (g, weights) in groups.iter().enumerate() {
                let window = Window {
                    channels: c,
                    first: g * cg,
                    count: cg,
                    kernel: k,
                    stride,
                    dilation,
                    width: wp,
                    out_height: oh,
                    out_width: ow,
                };
                codes
                    .fill_window(&padded, &window)
                    .map_err(anyhow::Error::msg)?;
                let width = codes.width();
                acc.resize(fg * width, 0);
                gemm_s8u8(weights, &codes, &mut acc).map_err(anyhow::Error::msg)?;
                let epilogue = Epilogue::new(layer, weights.sums(), g * fg);
                let planes = ys[g * fg * plane..(g + 1) * fg * plane].chunks_exact_mut(plane);
                for (o, (out, sums)) in planes.zip(acc.chunks_exact(width)).enumerate() {
                    epilogue.plane(o, &sums[..plane], out);
                }
            }
            Ok(())
        })?;
    Ok(Tensor::from_vec(y, (n, outputs, oh, ow), &Device::Cpu)?)
}

/// A dense layer on the integer kernels: one row of codes per sample.
fn dense_int8(layer: &Layer, packed: &PackedWeights, x: &Tensor) -> Result<Tensor> {
    let (n, features) = x.dims2()?;
    let row = row_len(features);
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let values = cpu_values(&storage, layout)?;
    let mut rows = vec![0u8; n * row];
    for (r, v) in rows
        .chunks_exact_mut(row)
        .zip(values.chunks_exact(features))
    {
        for (q, &v) in r.iter_mut().zip(v) {
            *q = layer.input.quantize(v);
        }
    }
    let width = packed.width();
    let mut acc = vec![0i32; n * width];
    gemm_u8s8(&rows, n, packed, &mut acc).map_err(anyhow::Error::msg)?;
    let outputs = packed.outputs();
    let epilogue = Epilogue::new(layer, packed.sums(), 0);
    let mut y = Vec::with_capacity(n * outputs);
    for sums in acc.chunks_exact(width) {
        y.extend(epilogue.outputs(sums));
    }
    Ok(Tensor::from_vec(y, (n, outputs), &Device::Cpu)?)
}
