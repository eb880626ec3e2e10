//! Compiles a network into a candle model (convolution and max pooling on
//! the CPU run on [`nas_kernels`]) that owns its parameters and runs
//! the node graph forward in train mode (dropout, batch statistics) or eval
//! mode (running statistics). Initial weights and dropout masks come from a
//! seeded generator: candle's own CPU generator cannot be seeded.

use super::portable_pool;
use super::shape::{analyse, pad_amount, Analysis};
use super::tape::{self, Tape, Target};
use crate::ir::{Activation, Network, Op, Task};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use nas_kernels::{self as kernels, Backward, Record};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Momentum of batch-norm running statistics (PyTorch's default).
const BN_MOMENTUM: f64 = 0.1;
/// Batch normalisation's epsilon (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;
/// Leaky ReLU's slope below zero (PyTorch's default).
pub const LEAKY_SLOPE: f32 = 0.01;

/// Computes or watches the convolutions and dense layers of an eval-mode
/// pass ([`Model::forward_hooked`]): quantized inference and its calibration.
pub trait LayerHook {
    /// Convolution or dense node `node` on input `x`: its output, or `None`
    /// to run the float layer.
    fn layer(&mut self, node: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let _ = (node, x);
        Ok(None)
    }
    /// The input convolution or dense node `node` computes with instead of
    /// `x` (fake quantization in training), or `None` to keep `x`.
    fn input(&mut self, node: usize, x: &Tensor) -> Result<Option<Tensor>> {
        let _ = (node, x);
        Ok(None)
    }
    /// Whether node `node` passes its input on: a batch-norm folded into
    /// the layer before it, or a ReLU that layer applies.
    fn passes_on(&self, node: usize) -> bool {
        let _ = node;
        false
    }
    /// Watches the input of activation node `node` (zero-cost proxies).
    fn activation(&mut self, node: usize, x: &Tensor) -> Result<()> {
        let _ = (node, x);
        Ok(())
    }
}

/// A network compiled for one device.
pub struct Model {
    network: Network,
    analysis: Analysis,
    /// Trainable parameters by node: (name, variable).
    params: Vec<(String, Var)>,
    /// Batch-norm running statistics: (name, variable); saved, not trained.
    buffers: Vec<(String, Var)>,
    /// For each node, indices into `params` / `buffers` (weight first).
    node_params: Vec<Vec<usize>>,
    node_buffers: Vec<Vec<usize>>,
    /// For each node, the last node that reads it (to free outputs early).
    last_use: Vec<usize>,
    /// Per node: a convolution, dense layer or batch-norm that applies the ReLU
    /// of its only reader itself (CPU kernels), or that ReLU, which then passes
    /// its input on.
    fused_relu: Vec<bool>,
    /// Per node: for a convolution that applies the max pool after it (and
    /// after its fused ReLU), that pool's node; for that pool, which then
    /// passes its input on, the convolution's node.
    fused_pool: Vec<Option<usize>>,
    device: Device,
}

fn uniform(
    rng: &mut ChaCha8Rng,
    n: usize,
    bound: f32,
    dims: &[usize],
    device: &Device,
) -> Result<Var> {
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..=bound)).collect();
    Ok(Var::from_tensor(&Tensor::from_vec(data, dims, device)?)?)
}

impl Model {
    /// Checks `network` against `task` and creates its parameters, initialised
    /// as PyTorch does (uniform in ±1/sqrt(fan_in)) from `seed`.
    pub fn new(network: &Network, task: &Task, seed: u64, device: &Device) -> Result<Self> {
        Self::from_analysis(network, analyse(network, task)?, seed, device)
    }

    /// [`Model::new`] for a network already checked: `analysis` is what
    /// [`analyse`] gave for it (callers that check sizes before any
    /// allocation analyse first).
    pub fn from_analysis(
        network: &Network,
        analysis: Analysis,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Vec::new();
        let mut buffers = Vec::new();
        let mut node_params = Vec::new();
        let mut node_buffers = Vec::new();
        for (i, node) in network.nodes.iter().enumerate() {
            let mut mine = Vec::new();
            let mut my_buffers = Vec::new();
            let input = node
                .inputs
                .first()
                .map(|&j| analysis.nodes[j as usize].shape);
            match &node.op {
                Op::Conv2d(conv) => {
                    let c_in = input.context("a convolution without an input")?.channels()
                        / conv.groups as usize;
                    let (f, k) = (conv.filters as usize, conv.kernel as usize);
                    let bound = 1.0 / ((c_in * k * k) as f32).sqrt();
                    params.push((
                        format!("n{i}.weight"),
                        uniform(&mut rng, f * c_in * k * k, bound, &[f, c_in, k, k], device)?,
                    ));
                    mine.push(params.len() - 1);
                    if conv.bias {
                        params.push((
                            format!("n{i}.bias"),
                            uniform(&mut rng, f, bound, &[f], device)?,
                        ));
                        mine.push(params.len() - 1);
                    }
                }
                Op::Dense(units) => {
                    let n = input.context("a dense layer without an input")?.elements();
                    let u = *units as usize;
                    let bound = 1.0 / (n as f32).sqrt();
                    params.push((
                        format!("n{i}.weight"),
                        uniform(&mut rng, u * n, bound, &[u, n], device)?,
                    ));
                    params.push((
                        format!("n{i}.bias"),
                        uniform(&mut rng, u, bound, &[u], device)?,
                    ));
                    mine.extend([params.len() - 2, params.len() - 1]);
                }
                Op::BatchNorm => {
                    let c = input.context("a batch-norm without an input")?.channels();
                    params.push((format!("n{i}.gamma"), Var::ones(c, DType::F32, device)?));
                    params.push((format!("n{i}.beta"), Var::zeros(c, DType::F32, device)?));
                    mine.extend([params.len() - 2, params.len() - 1]);
                    buffers.push((
                        format!("n{i}.running_mean"),
                        Var::zeros(c, DType::F32, device)?,
                    ));
                    buffers.push((
                        format!("n{i}.running_var"),
                        Var::ones(c, DType::F32, device)?,
                    ));
                    my_buffers.extend([buffers.len() - 2, buffers.len() - 1]);
                }
                _ => {}
            }
            node_params.push(mine);
            node_buffers.push(my_buffers);
        }
        let mut last_use: Vec<usize> = (0..network.nodes.len()).collect();
        for (i, node) in network.nodes.iter().enumerate() {
            for &j in &node.inputs {
                last_use[j as usize] = last_use[j as usize].max(i);
            }
        }
        let (fused_relu, fused_pool) = if device.is_cpu() {
            let relus = fused_relus(network);
            let pools = fused_pools(network, &relus);
            (relus, pools)
        } else {
            (
                vec![false; network.nodes.len()],
                vec![None; network.nodes.len()],
            )
        };
        Ok(Model {
            network: network.clone(),
            analysis,
            params,
            buffers,
            node_params,
            node_buffers,
            last_use,
            fused_relu,
            fused_pool,
            device: device.clone(),
        })
    }

    /// Shapes, parameters and FLOPs.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// The trainable parameters.
    pub fn params(&self) -> impl Iterator<Item = &Var> {
        self.params.iter().map(|(_, v)| v)
    }

    /// The device the model lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs a batch (N x C x H x W) forward. `dropout_rng` is required in train
    /// mode when the network has dropout. In train mode the output carries
    /// candle's autograd graph; [`Model::forward_taped`] is the CPU's faster way.
    pub fn forward(
        &self,
        x: &Tensor,
        train: bool,
        dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        self.run(x, train, dropout_rng, None, None)
    }

    /// Runs a batch forward in train mode on the CPU kernels without candle's
    /// autograd graph; the returned tape runs the backward pass. Off the CPU,
    /// returns `None` and the output carries candle's graph instead.
    pub fn forward_taped(
        &self,
        x: &Tensor,
        dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<(Tensor, Option<Tape>)> {
        self.taped(x, dropout_rng, None)
    }

    /// [`Model::forward_taped`] with `hook` giving the layers' inputs
    /// (fake quantization in quantization-aware training), unfused.
    pub fn forward_taped_with(
        &self,
        x: &Tensor,
        dropout_rng: Option<&mut ChaCha8Rng>,
        hook: &mut dyn LayerHook,
    ) -> Result<(Tensor, Option<Tape>)> {
        self.taped(x, dropout_rng, Some(hook))
    }

    fn taped(
        &self,
        x: &Tensor,
        dropout_rng: Option<&mut ChaCha8Rng>,
        hook: Option<&mut dyn LayerHook>,
    ) -> Result<(Tensor, Option<Tape>)> {
        if !self.device.is_cpu() {
            return Ok((self.run(x, true, dropout_rng, None, hook)?, None));
        }
        let mut tape = Tape::new(self.network.nodes.len(), self.params.len());
        let y = self.run(x, true, dropout_rng, Some(&mut tape), hook)?;
        Ok((y, Some(tape)))
    }

    /// The weights of the convolutions and dense layers.
    pub fn layer_weights(&self) -> Vec<&Var> {
        self.network
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Conv2d(_) | Op::Dense(_)))
            .map(|(i, _)| &self.params[self.node_params[i][0]].1)
            .collect()
    }

    /// Runs an eval-mode pass in which `hook` computes or watches every
    /// convolution and dense layer and may fold batch-norms away (quantized
    /// inference, calibration). Each node then runs by itself, without the
    /// CPU kernels' fusions, so that the hook sees every layer's input.
    pub fn forward_hooked(&self, x: &Tensor, hook: &mut dyn LayerHook) -> Result<Tensor> {
        self.run(x, false, None, None, Some(hook))
    }

    /// Runs a batch forward unfused, with batch statistics where `train`
    /// and running statistics otherwise, `hook` watching every layer and
    /// activation; the output carries candle's autograd graph on every
    /// device. Scores untrained networks (zero-cost proxies); a network with
    /// dropout needs the hook to pass its dropout nodes on.
    pub fn forward_probed(
        &self,
        x: &Tensor,
        train: bool,
        hook: &mut dyn LayerHook,
    ) -> Result<Tensor> {
        self.run(x, train, None, None, Some(hook))
    }

    /// The forward pass; with `tape`, every node leaves its backward step there.
    fn run(
        &self,
        x: &Tensor,
        train: bool,
        mut dropout_rng: Option<&mut ChaCha8Rng>,
        mut tape: Option<&mut Tape>,
        mut hook: Option<&mut dyn LayerHook>,
    ) -> Result<Tensor> {
        let taped = tape.is_some();
        // Fusions hide a layer's own output from a hook.
        let fuse = hook.is_none();
        let fused_relu = |i: usize| fuse && self.fused_relu[i];
        let fused_pool = |i: usize| self.fused_pool[i].filter(|_| fuse);
        let mut outputs: Vec<Option<Tensor>> = vec![None; self.network.nodes.len()];
        outputs[0] = Some(x.clone());
        for (i, node) in self.network.nodes.iter().enumerate().skip(1) {
            let ins: Vec<&Tensor> = node
                .inputs
                .iter()
                .map(|&j| {
                    outputs[j as usize]
                        .as_ref()
                        .context("an input used before it ran")
                })
                .collect::<Result<_>>()?;
            let p = |k: usize| self.params[self.node_params[i][k]].1.as_tensor();
            // A kernel op's backward step (taped runs); other nodes get theirs below.
            let mut step: Option<Backward> = None;
            // The network's input needs no gradient.
            let input_grad = node.inputs.first().is_some_and(|&j| j != 0);
            if let (Op::Activation(_), Some(hook)) = (&node.op, hook.as_deref_mut()) {
                hook.activation(i, ins[0])?;
            }
            let hooked = match (&node.op, hook.as_deref_mut()) {
                (Op::Conv2d(_) | Op::Dense(_), Some(hook)) => hook.layer(i, ins[0])?,
                (_, Some(hook)) if hook.passes_on(i) => Some(ins[0].clone()),
                _ => None,
            };
            // A layer's input as the hook gives it.
            let replaced = match (&node.op, hook.as_deref_mut()) {
                (Op::Conv2d(_) | Op::Dense(_), Some(hook)) if hooked.is_none() => {
                    hook.input(i, ins[0])?
                }
                _ => None,
            };
            let layer_input = replaced.as_ref().unwrap_or(ins[0]);
            let y = match &node.op {
                // The hook's output, where it gave one.
                _ if hooked.is_some() => hooked.context("the hook's output")?,
                Op::Input => anyhow::bail!("node {i} is a second input"),
                Op::Conv2d(conv) => {
                    let pad =
                        pad_amount(conv.padding, conv.kernel as usize, conv.dilation as usize);
                    let (stride, dilation, groups) = (
                        conv.stride as usize,
                        conv.dilation as usize,
                        conv.groups as usize,
                    );
                    let bias = conv.bias.then(|| p(1));
                    if self.device.is_cpu() {
                        let conv = kernels::Conv {
                            pad,
                            stride,
                            dilation,
                            groups,
                            relu: fused_relu(i),
                            pool: fused_pool(i).map(|p| self.pool_window(p)),
                        };
                        kernels::conv2d(
                            layer_input,
                            p(0),
                            bias,
                            conv,
                            record(&mut step, taped, input_grad),
                        )?
                    } else {
                        let y = layer_input.conv2d(p(0), pad, stride, dilation, groups)?;
                        match bias {
                            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
                            None => y,
                        }
                    }
                }
                Op::Dense(_) if self.device.is_cpu() => kernels::dense(
                    layer_input,
                    p(0),
                    p(1),
                    fused_relu(i),
                    record(&mut step, taped, input_grad),
                )?,
                Op::Dense(_) => layer_input.matmul(&p(0).t()?)?.broadcast_add(p(1))?,
                Op::MaxPool(_) if fused_pool(i).is_some() => ins[0].clone(),
                Op::MaxPool(_) => {
                    let window = self.pool_window(i);
                    if self.device.is_cpu() {
                        kernels::max_pool2d(ins[0], window, record(&mut step, taped, input_grad))?
                    } else {
                        portable_pool::pool(ins[0], window, true)?
                    }
                }
                Op::AvgPool(pool) => {
                    let kernel = pool.kernel as usize;
                    let window = kernels::PoolWindow {
                        kernel,
                        stride: pool.stride as usize,
                        pad: pad_amount(pool.padding, kernel, 1),
                    };
                    if self.device.is_cpu() {
                        kernels::avg_pool2d(ins[0], window, record(&mut step, taped, input_grad))?
                    } else {
                        portable_pool::pool(ins[0], window, false)?
                    }
                }
                Op::GlobalAvgPool => ins[0].mean(D::Minus1)?.mean(D::Minus1)?,
                Op::GlobalMaxPool => ins[0].max(D::Minus1)?.max(D::Minus1)?,
                Op::BatchNorm => self.batch_norm(
                    i,
                    ins[0],
                    train,
                    fused_relu(i),
                    record(&mut step, taped, input_grad),
                )?,
                Op::Activation(Activation::Relu) if fused_relu(i) => ins[0].clone(),
                Op::Activation(Activation::Relu) if self.device.is_cpu() => {
                    kernels::relu(ins[0], record(&mut step, taped, input_grad))?
                }
                Op::Activation(a) if self.device.is_cpu() => {
                    kernels::smooth(ins[0], smooth(*a), record(&mut step, taped, input_grad))?
                }
                Op::Activation(a) => activate(ins[0], *a)?,
                Op::Dropout(rate) if train && *rate > 0.0 => {
                    let rng = dropout_rng
                        .as_deref_mut()
                        .context("dropout in train mode needs a random generator")?;
                    let keep = 1.0 - *rate;
                    let mask: Vec<f32> = (0..ins[0].elem_count())
                        .map(|_| {
                            if rng.random::<f32>() < keep {
                                1.0 / keep
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    let mask = Tensor::from_vec(mask, ins[0].dims(), &self.device)?;
                    let y = ins[0].mul(&mask)?;
                    if taped {
                        step = Some(Box::new(move |dy| Ok(vec![Some(dy.mul(&mask)?)])));
                    }
                    y
                }
                Op::Dropout(_) | Op::Identity => ins[0].clone(),
                Op::Flatten => ins[0].flatten_from(1)?,
                Op::Add => ins[1..]
                    .iter()
                    .try_fold(ins[0].clone(), |acc, t| acc.add(t))?,
                Op::Concat => Tensor::cat(&ins, 1)?,
                Op::Zero => ins[0].zeros_like()?,
            };
            if let Some(tape) = tape.as_deref_mut() {
                let mut targets: Vec<Target> = node
                    .inputs
                    .iter()
                    .map(|&j| Target::Node(j as usize))
                    .collect();
                let backward = match step {
                    Some(step) => {
                        // A kernel op's arguments: its input, then the node's parameters.
                        targets.extend(self.node_params[i].iter().map(|&k| Target::Param(k)));
                        step
                    }
                    None => plain_step(&node.op, &ins)?,
                };
                tape.push(i, targets, backward);
            }
            outputs[i] = Some(y);
            for &j in &node.inputs {
                if self.last_use[j as usize] == i {
                    outputs[j as usize] = None;
                }
            }
        }
        outputs
            .pop()
            .flatten()
            .context("the last node gave no output")
    }

    /// The window of max-pool node `node`.
    fn pool_window(&self, node: usize) -> kernels::PoolWindow {
        let Op::MaxPool(pool) = &self.network.nodes[node].op else {
            unreachable!("node {node} is a max pool")
        };
        let kernel = pool.kernel as usize;
        kernels::PoolWindow {
            kernel,
            stride: pool.stride as usize,
            pad: pad_amount(pool.padding, kernel, 1),
        }
    }

    /// Batch normalisation over the batch (and spatial positions for images);
    /// in train mode it also updates the running statistics.
    fn batch_norm(
        &self,
        node: usize,
        x: &Tensor,
        train: bool,
        relu: bool,
        record: Record,
    ) -> Result<Tensor> {
        if train && self.device.is_cpu() {
            let gamma = self.params[self.node_params[node][0]].1.as_tensor();
            let beta = self.params[self.node_params[node][1]].1.as_tensor();
            let (y, stats) = kernels::batch_norm_train(x, gamma, beta, BN_EPS, relu, record)?;
            let unbiased = stats.count as f64 / (stats.count.max(2) - 1) as f64;
            let c = stats.mean.len();
            let (mean, var) = (
                Tensor::from_vec(stats.mean, c, &self.device)?,
                Tensor::from_vec(stats.var, c, &self.device)?,
            );
            let (running_mean, running_var) = (
                &self.buffers[self.node_buffers[node][0]].1,
                &self.buffers[self.node_buffers[node][1]].1,
            );
            running_mean.set(
                &((running_mean.as_tensor() * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?,
            )?;
            running_var.set(
                &((running_var.as_tensor() * (1.0 - BN_MOMENTUM))?
                    + (var * (BN_MOMENTUM * unbiased))?)?,
            )?;
            return Ok(y);
        }
        if !train && self.device.is_cpu() {
            let (gamma, beta) = (
                self.params[self.node_params[node][0]].1.as_tensor(),
                self.params[self.node_params[node][1]].1.as_tensor(),
            );
            let (mean, var) = (
                self.buffers[self.node_buffers[node][0]].1.as_tensor(),
                self.buffers[self.node_buffers[node][1]].1.as_tensor(),
            );
            return Ok(kernels::batch_norm_eval(
                x, gamma, beta, mean, var, BN_EPS, relu,
            )?);
        }
        let image = x.rank() == 4;
        let shape: Vec<usize> = if image {
            vec![1, x.dim(1)?, 1, 1]
        } else {
            vec![1, x.dim(1)?]
        };
        let (gamma, beta) = (
            self.params[self.node_params[node][0]]
                .1
                .as_tensor()
                .reshape(shape.as_slice())?,
            self.params[self.node_params[node][1]]
                .1
                .as_tensor()
                .reshape(shape.as_slice())?,
        );
        let (running_mean, running_var) = (
            &self.buffers[self.node_buffers[node][0]].1,
            &self.buffers[self.node_buffers[node][1]].1,
        );
        let (mean, var) = if train {
            let per_channel = if image {
                x.transpose(0, 1)?.flatten_from(1)?
            } else {
                x.t()?
            };
            let count = per_channel.dim(1)?;
            let mean = per_channel.mean_keepdim(1)?;
            let var = per_channel.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?;
            let (m, v) = (mean.flatten_all()?.detach(), var.flatten_all()?.detach());
            let unbiased = count as f64 / (count.max(2) - 1) as f64;
            running_mean
                .set(&((running_mean.as_tensor() * (1.0 - BN_MOMENTUM))? + (m * BN_MOMENTUM)?)?)?;
            running_var.set(
                &((running_var.as_tensor() * (1.0 - BN_MOMENTUM))?
                    + (v * (BN_MOMENTUM * unbiased))?)?,
            )?;
            (
                mean.reshape(shape.as_slice())?,
                var.reshape(shape.as_slice())?,
            )
        } else {
            (
                running_mean.as_tensor().reshape(shape.as_slice())?,
                running_var.as_tensor().reshape(shape.as_slice())?,
            )
        };
        let normed = x
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        Ok(normed.broadcast_mul(&gamma)?.broadcast_add(&beta)?)
    }

    /// Every parameter and buffer by name, for saving.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .chain(&self.buffers)
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// A copy of parameters and buffers that training does not change.
    pub fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        self.tensors()
            .into_iter()
            .map(|(name, t)| Ok((name, t.copy()?)))
            .collect()
    }

    /// Saves parameters and buffers as safetensors.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        candle_core::safetensors::save(&self.tensors(), path)
            .with_context(|| format!("save weights to {}", path.display()))
    }

    /// Loads parameters and buffers saved by [`Model::save`] for the same network.
    pub fn load(&self, path: &std::path::Path) -> Result<()> {
        let saved = candle_core::safetensors::load(path, &self.device)
            .with_context(|| format!("read weights from {}", path.display()))?;
        self.set_tensors(&saved, &path.display().to_string())
    }

    /// Sets parameters and buffers from `saved` (as [`Model::tensors`] names
    /// them; other names are ignored), read from `source`.
    pub fn set_tensors(&self, saved: &HashMap<String, Tensor>, source: &str) -> Result<()> {
        for (name, var) in self.params.iter().chain(&self.buffers) {
            let t = saved.get(name).with_context(|| {
                format!("{source} has no tensor `{name}`: it belongs to another network")
            })?;
            if t.dims() != var.dims() {
                anyhow::bail!(
                    "{source}: tensor `{name}` has shape {:?}, the network needs {:?}",
                    t.dims(),
                    var.dims()
                );
            }
            var.set(t)?;
        }
        Ok(())
    }
}

/// Which ReLUs the CPU kernels fuse into the node before them: a ReLU whose
/// input is a convolution, dense layer or batch-norm read by nothing else.
/// Both nodes are marked; the fused result is the same, bit for bit.
pub(super) fn fused_relus(network: &Network) -> Vec<bool> {
    let mut readers = vec![0usize; network.nodes.len()];
    for node in &network.nodes {
        for &j in &node.inputs {
            readers[j as usize] += 1;
        }
    }
    let mut fused = vec![false; network.nodes.len()];
    for (i, node) in network.nodes.iter().enumerate() {
        if let (Op::Activation(Activation::Relu), [j]) = (&node.op, node.inputs.as_slice()) {
            let j = *j as usize;
            let fusable = matches!(
                network.nodes[j].op,
                Op::Conv2d(_) | Op::Dense(_) | Op::BatchNorm
            );
            if fusable && readers[j] == 1 {
                fused[i] = true;
                fused[j] = true;
            }
        }
    }
    fused
}

/// Which max pools the CPU kernels fuse into the convolution before them: a
/// max pool that is the only reader of a convolution, or of the convolution's
/// fused ReLU (see [`fused_relus`]). Each pairs the convolution with the pool
/// and the pool with the convolution; the fused result is the same, bit for bit.
pub(super) fn fused_pools(network: &Network, fused_relu: &[bool]) -> Vec<Option<usize>> {
    let mut readers = vec![Vec::new(); network.nodes.len()];
    for (i, node) in network.nodes.iter().enumerate() {
        for &j in &node.inputs {
            readers[j as usize].push(i);
        }
    }
    let sole_reader = |j: usize| match readers[j].as_slice() {
        [r] => Some(*r),
        _ => None,
    };
    let mut fused = vec![None; network.nodes.len()];
    for (c, node) in network.nodes.iter().enumerate() {
        if !matches!(node.op, Op::Conv2d(_)) {
            continue;
        }
        let Some(mut next) = sole_reader(c) else {
            continue;
        };
        if fused_relu[c] {
            let Some(after_relu) = sole_reader(next) else {
                continue;
            };
            next = after_relu;
        }
        if matches!(network.nodes[next].op, Op::MaxPool(_)) {
            fused[c] = Some(next);
            fused[next] = Some(c);
        }
    }
    fused
}

/// Where a kernel op of a taped run (or of candle's graph) leaves its
/// backward step.
fn record(step: &mut Option<Backward>, taped: bool, input_grad: bool) -> Record<'_> {
    if taped {
        Record::Taped { step, input_grad }
    } else {
        Record::Graph
    }
}

/// The backward step of a node that is not a kernel op, with inputs `ins`.
fn plain_step(op: &Op, ins: &[&Tensor]) -> Result<Backward> {
    Ok(match op {
        // A ReLU or max pool here is one fused into the op before it.
        Op::Add
        | Op::Identity
        | Op::Dropout(_)
        | Op::Activation(Activation::Relu)
        | Op::MaxPool(_) => tape::pass_on(ins.len()),
        Op::Flatten => {
            let shape = ins[0].shape().clone();
            Box::new(move |dy| Ok(vec![Some(dy.reshape(&shape)?)]))
        }
        Op::Concat => {
            let widths = ins
                .iter()
                .map(|t| t.dim(1))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Box::new(move |dy| {
                let mut start = 0;
                widths
                    .iter()
                    .map(|&c| {
                        start += c;
                        Ok(Some(dy.narrow(1, start - c, c)?))
                    })
                    .collect()
            })
        }
        Op::GlobalAvgPool => {
            let shape = ins[0].shape().clone();
            let (n, c, h, w) = shape.dims4()?;
            Box::new(move |dy| {
                let spread = (dy / (h * w) as f64)?.reshape((n, c, 1, 1))?;
                Ok(vec![Some(spread.broadcast_as(&shape)?.contiguous()?)])
            })
        }
        Op::Zero => Box::new(|_| Ok(vec![None])),
        Op::GlobalMaxPool => tape::local(vec![ins[0].clone()], |x| {
            Ok(x[0].max(D::Minus1)?.max(D::Minus1)?)
        }),
        Op::Input
        | Op::Conv2d(_)
        | Op::Dense(_)
        | Op::AvgPool(_)
        | Op::BatchNorm
        | Op::Activation(_) => {
            anyhow::bail!("node op {op:?} ran without leaving its backward step")
        }
    })
}

/// The CPU kernel of activation `a` (ReLU has a faster one of its own).
fn smooth(a: Activation) -> kernels::Smooth {
    match a {
        Activation::Gelu => kernels::Smooth::Gelu,
        Activation::Silu => kernels::Smooth::Silu,
        Activation::Tanh => kernels::Smooth::Tanh,
        Activation::Sigmoid => kernels::Smooth::Sigmoid,
        Activation::LeakyRelu => kernels::Smooth::LeakyRelu(LEAKY_SLOPE),
        Activation::Relu => kernels::Smooth::LeakyRelu(0.0),
    }
}

fn activate(x: &Tensor, a: Activation) -> Result<Tensor> {
    Ok(match a {
        Activation::Relu => x.relu()?,
        Activation::Gelu => x.gelu_erf()?,
        Activation::Silu => x.silu()?,
        Activation::Tanh => x.tanh()?,
        Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
        Activation::LeakyRelu => candle_nn::ops::leaky_relu(x, LEAKY_SLOPE as f64)?,
    })
}
