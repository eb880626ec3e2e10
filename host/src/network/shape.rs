//! Shape inference over a network, before any training: every node's output
//! shape, the parameter count and the FLOPs of one forward pass, with errors
//! that name the node, its op and the shapes that do not fit.
//!
//! Shape inference is also the gate on what a network may ask of the host:
//! every size is computed in 128-bit arithmetic and checked against
//! [`LIMITS`] before anything is allocated, so a network from an untrusted
//! plugin either fits or is refused with the node and the limit it breaks.
//!
//! FLOPs count a multiply-add as 2: convolutions and dense layers cost
//! 2 x MACs plus one per output for a bias; pooling costs one per window
//! element per output; batch-norm 2 and an activation 1 per element; `add`
//! one per element per extra input; the rest is free.

use crate::ir::{Network, Op, Padding, Task};
use anyhow::{bail, Result};
use std::fmt;

/// The shape of one sample (batch left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Image { c: usize, h: usize, w: usize },
    /// A flat vector of features.
    Flat { n: usize },
}

impl Shape {
    /// Number of elements of one sample.
    pub fn elements(&self) -> usize {
        match *self {
            Shape::Image { c, h, w } => c * h * w,
            Shape::Flat { n } => n,
        }
    }

    /// Number of elements of one sample, in 128 bits (for checks before
    /// [`LIMITS`] are known to hold).
    fn wide_elements(&self) -> u128 {
        match *self {
            Shape::Image { c, h, w } => c as u128 * h as u128 * w as u128,
            Shape::Flat { n } => n as u128,
        }
    }

    /// The channel (or feature) count.
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Image { c, .. } => c,
            Shape::Flat { n } => n,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Flat { n } => write!(f, "{n}"),
        }
    }
}

/// What shape inference learns about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Output shape of one sample.
    pub shape: Shape,
    /// Trainable parameters.
    pub params: u64,
    /// FLOPs of one sample's forward pass through this node.
    pub flops: u64,
}

/// Shapes, parameters and FLOPs of a whole network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// One entry per node, in node order.
    pub nodes: Vec<NodeInfo>,
}

impl Analysis {
    /// Total trainable parameters.
    pub fn params(&self) -> u64 {
        self.nodes.iter().map(|n| n.params).sum()
    }

    /// FLOPs of one sample's forward pass.
    pub fn flops(&self) -> u64 {
        self.nodes.iter().map(|n| n.flops).sum()
    }

    /// Estimated MiB that training at `batch` holds at its peak, in f32:
    /// the parameters four times (values, gradients, two optimiser moments)
    /// and every node's output twice (kept for the backward pass, and its
    /// gradient). Kernel scratch space and the dataset are not counted.
    pub fn train_memory_mb(&self, batch: usize) -> f64 {
        let activations: u64 = self.nodes.iter().map(|n| n.shape.elements() as u64).sum();
        let floats = self.params() as f64 * 4.0 + activations as f64 * batch as f64 * 2.0;
        floats * 4.0 / (1u64 << 20) as f64
    }
}

/// Structural limits on a network, checked by [`analyse`]. Within them every
/// size, parameter and FLOP count the host computes fits its integer types;
/// beyond them no machine could train the network anyway. Run constraints
/// (`max_params`, `max_memory_mb`, ...) come on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Nodes in a network.
    pub nodes: usize,
    /// Inputs of one node.
    pub inputs: usize,
    /// Kernel, stride and dilation of a window.
    pub window: u64,
    /// Elements of one sample's output at one node.
    pub elements: u64,
    /// Trainable parameters of the whole network.
    pub params: u64,
    /// FLOPs of one sample's forward pass through the whole network.
    pub flops: u64,
}

/// The limits [`analyse`] checks.
pub const LIMITS: NetworkLimits = NetworkLimits {
    nodes: 100_000,
    inputs: 4_096,
    window: 4_096,
    elements: 1 << 31,
    params: 1 << 36,
    flops: 1 << 60,
};

// Sums over a network's nodes stay far inside 64 bits within the limits
// (so `Analysis::train_memory_mb` and the totals need no checks), and every
// element count fits a `usize` on the 64-bit targets the host builds for.
const _: () = assert!(
    (LIMITS.nodes as u64) * LIMITS.elements < u64::MAX / 8 && LIMITS.elements <= u32::MAX as u64
);

/// Short name of an op for messages and summaries.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Input => "input",
        Op::Conv2d(_) => "conv2d",
        Op::Dense(_) => "dense",
        Op::MaxPool(_) => "max-pool",
        Op::AvgPool(_) => "avg-pool",
        Op::GlobalAvgPool => "global-avg-pool",
        Op::GlobalMaxPool => "global-max-pool",
        Op::BatchNorm => "batch-norm",
        Op::Activation(_) => "activation",
        Op::Dropout(_) => "dropout",
        Op::Flatten => "flatten",
        Op::Add => "add",
        Op::Concat => "concat",
        Op::Identity => "identity",
        Op::Zero => "zero",
    }
}

/// Symmetric padding of a window: `same` keeps the size for odd windows at stride 1.
pub fn pad_amount(padding: Padding, kernel: usize, dilation: usize) -> usize {
    match padding {
        Padding::Same => dilation * (kernel - 1) / 2,
        Padding::Valid => 0,
    }
}

/// Output length of a window op along one axis, if at least 1 (all
/// arguments within [`LIMITS`], so nothing here overflows).
fn out_len(len: usize, kernel: usize, stride: usize, pad: usize, dilation: usize) -> Option<usize> {
    let span = dilation * (kernel - 1) + 1;
    (len + 2 * pad).checked_sub(span).map(|x| x / stride + 1)
}

/// `value` (computed in 128 bits) if it is at most `limit`, else why not.
fn within(value: u128, limit: u64, what: &str) -> std::result::Result<u64, String> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= limit)
        .ok_or_else(|| format!("{what} {value} is over the host's limit of {limit}"))
}

/// Checks a kernel, stride or dilation against [`LIMITS`].
fn window_ok(value: u32, what: &str) -> std::result::Result<usize, String> {
    if u64::from(value) > LIMITS.window {
        return Err(format!(
            "{what} {value} is over the host's limit of {}",
            LIMITS.window
        ));
    }
    Ok(value as usize)
}

/// Infers every node's shape for `task` and checks the network is well formed.
pub fn analyse(network: &Network, task: &Task) -> Result<Analysis> {
    let nodes = &network.nodes;
    if nodes.len() > LIMITS.nodes {
        bail!(
            "network `{}` has {} nodes, over the host's limit of {}",
            network.key,
            nodes.len(),
            LIMITS.nodes
        );
    }
    if nodes.is_empty() || nodes[0].op != Op::Input || !nodes[0].inputs.is_empty() {
        bail!(
            "network `{}`: node 0 must be `input` with no inputs",
            network.key
        );
    }
    let mut infos: Vec<NodeInfo> = Vec::with_capacity(nodes.len());
    let (mut total_params, mut total_flops) = (0u64, 0u64);
    for (i, node) in nodes.iter().enumerate() {
        let name = op_name(&node.op);
        let fail =
            |why: String| anyhow::anyhow!("network `{}`: node {i} ({name}): {why}", network.key);
        if node.inputs.len() > LIMITS.inputs {
            return Err(fail(format!(
                "{} inputs are over the host's limit of {}",
                node.inputs.len(),
                LIMITS.inputs
            )));
        }
        if let Some(&bad) = node.inputs.iter().find(|&&j| j as usize >= i) {
            return Err(fail(format!("input {bad} is not an earlier node")));
        }
        let ins: Vec<Shape> = node
            .inputs
            .iter()
            .map(|&j| infos[j as usize].shape)
            .collect();
        let merging = matches!(node.op, Op::Add | Op::Concat);
        match (&node.op, ins.len()) {
            (Op::Input, _) if i > 0 => return Err(fail("only node 0 may be `input`".into())),
            (Op::Input, _) => {}
            (_, n) if merging && n < 2 => {
                return Err(fail(format!("needs at least 2 inputs, has {n}")))
            }
            (_, n) if !merging && n != 1 => {
                return Err(fail(format!("needs exactly 1 input, has {n}")))
            }
            _ => {}
        }
        let image = |s: Shape| {
            match s {
            Shape::Image { c, h, w } => Ok((c, h, w)),
            Shape::Flat { n } => Err(fail(format!(
                "needs an image (CxHxW) input, got a flat vector of {n}; put it before flatten or global pooling"
            ))),
        }
        };
        let info = match &node.op {
            Op::Input => NodeInfo {
                shape: Shape::Image {
                    c: task.channels as usize,
                    h: task.height as usize,
                    w: task.width as usize,
                },
                params: 0,
                flops: 0,
            },
            Op::Conv2d(conv) => {
                let (c, h, w) = image(ins[0])?;
                let (k, s, d, g, f) = (
                    window_ok(conv.kernel, "kernel").map_err(fail)?,
                    window_ok(conv.stride, "stride").map_err(fail)?,
                    window_ok(conv.dilation, "dilation").map_err(fail)?,
                    conv.groups as usize,
                    conv.filters as usize,
                );
                if k == 0 || s == 0 || d == 0 || g == 0 || f == 0 {
                    return Err(fail(
                        "kernel, stride, dilation, groups and filters must all be at least 1"
                            .into(),
                    ));
                }
                if c % g != 0 || f % g != 0 {
                    return Err(fail(format!(
                        "groups {g} must divide both input channels {c} and filters {f}"
                    )));
                }
                let p = pad_amount(conv.padding, k, d);
                let (Some(oh), Some(ow)) = (out_len(h, k, s, p, d), out_len(w, k, s, p, d)) else {
                    return Err(fail(format!(
                        "a {k}x{k} kernel (dilation {d}) does not fit the {c}x{h}x{w} input"
                    )));
                };
                let wide = |x: usize| x as u128;
                let macs_per_out = wide(c / g) * wide(k) * wide(k);
                let outs = wide(f) * wide(oh) * wide(ow);
                let bias = u128::from(conv.bias);
                NodeInfo {
                    shape: Shape::Image { c: f, h: oh, w: ow },
                    params: within(
                        wide(f) * macs_per_out + bias * wide(f),
                        LIMITS.params,
                        "parameters",
                    )
                    .map_err(fail)?,
                    flops: within(2 * outs * macs_per_out + bias * outs, LIMITS.flops, "FLOPs")
                        .map_err(fail)?,
                }
            }
            Op::Dense(units) => {
                let n = match ins[0] {
                    Shape::Flat { n } => n,
                    Shape::Image { c, h, w } => {
                        return Err(fail(format!(
                            "needs a flat input, got an image {c}x{h}x{w}; add `flatten` or a global pooling before it"
                        )))
                    }
                };
                let u = *units as usize;
                if u == 0 {
                    return Err(fail("units must be at least 1".into()));
                }
                let (n, u) = (n as u128, u as u128);
                NodeInfo {
                    shape: Shape::Flat { n: u as usize },
                    params: within(n * u + u, LIMITS.params, "parameters").map_err(fail)?,
                    flops: within(2 * n * u + u, LIMITS.flops, "FLOPs").map_err(fail)?,
                }
            }
            Op::MaxPool(pool) | Op::AvgPool(pool) => {
                let (c, h, w) = image(ins[0])?;
                let (k, s) = (
                    window_ok(pool.kernel, "kernel").map_err(fail)?,
                    window_ok(pool.stride, "stride").map_err(fail)?,
                );
                if k == 0 || s == 0 {
                    return Err(fail("kernel and stride must be at least 1".into()));
                }
                let p = pad_amount(pool.padding, k, 1);
                let (Some(oh), Some(ow)) = (out_len(h, k, s, p, 1), out_len(w, k, s, p, 1)) else {
                    return Err(fail(format!(
                        "a {k}x{k} window does not fit the {c}x{h}x{w} input"
                    )));
                };
                NodeInfo {
                    shape: Shape::Image { c, h: oh, w: ow },
                    params: 0,
                    flops: within(
                        (c * oh * ow) as u128 * (k * k) as u128,
                        LIMITS.flops,
                        "FLOPs",
                    )
                    .map_err(fail)?,
                }
            }
            Op::GlobalAvgPool | Op::GlobalMaxPool => {
                let (c, h, w) = image(ins[0])?;
                NodeInfo {
                    shape: Shape::Flat { n: c },
                    params: 0,
                    flops: (c * h * w) as u64,
                }
            }
            Op::BatchNorm => NodeInfo {
                shape: ins[0],
                params: 2 * ins[0].channels() as u64,
                flops: 2 * ins[0].elements() as u64,
            },
            Op::Activation(_) => NodeInfo {
                shape: ins[0],
                params: 0,
                flops: ins[0].elements() as u64,
            },
            Op::Dropout(rate) => {
                if !(0.0..1.0).contains(rate) {
                    return Err(fail(format!("rate {rate} must be in [0, 1)")));
                }
                NodeInfo {
                    shape: ins[0],
                    params: 0,
                    flops: 0,
                }
            }
            Op::Identity | Op::Zero => NodeInfo {
                shape: ins[0],
                params: 0,
                flops: 0,
            },
            Op::Flatten => NodeInfo {
                shape: Shape::Flat {
                    n: ins[0].elements(),
                },
                params: 0,
                flops: 0,
            },
            Op::Add => {
                if ins.iter().any(|s| *s != ins[0]) {
                    return Err(fail(format!(
                        "inputs must have equal shapes, got {}",
                        shapes_text(&ins)
                    )));
                }
                NodeInfo {
                    shape: ins[0],
                    params: 0,
                    flops: ((ins.len() - 1) * ins[0].elements()) as u64,
                }
            }
            Op::Concat => {
                let shape = match ins[0] {
                    Shape::Image { h, w, .. } => {
                        if ins.iter().any(|s| !matches!(s, Shape::Image { h: hh, w: ww, .. } if *hh == h && *ww == w)) {
                            return Err(fail(format!("image inputs must share height and width, got {}", shapes_text(&ins))));
                        }
                        Shape::Image {
                            c: channel_sum(&ins).map_err(fail)?,
                            h,
                            w,
                        }
                    }
                    Shape::Flat { .. } => {
                        if ins.iter().any(|s| matches!(s, Shape::Image { .. })) {
                            return Err(fail(format!(
                                "cannot mix flat and image inputs, got {}",
                                shapes_text(&ins)
                            )));
                        }
                        Shape::Flat {
                            n: channel_sum(&ins).map_err(fail)?,
                        }
                    }
                };
                NodeInfo {
                    shape,
                    params: 0,
                    flops: 0,
                }
            }
        };
        within(
            info.shape.wide_elements(),
            LIMITS.elements,
            "output elements",
        )
        .map_err(fail)?;
        total_params = total_params
            .checked_add(info.params)
            .filter(|p| *p <= LIMITS.params)
            .ok_or_else(|| {
                fail(format!(
                    "the network's parameters pass the host's limit of {}",
                    LIMITS.params
                ))
            })?;
        total_flops = total_flops
            .checked_add(info.flops)
            .filter(|f| *f <= LIMITS.flops)
            .ok_or_else(|| {
                fail(format!(
                    "the network's FLOPs pass the host's limit of {}",
                    LIMITS.flops
                ))
            })?;
        infos.push(info);
    }
    let Some(last) = infos.last().map(|i| i.shape) else {
        bail!("network `{}` has no nodes", network.key);
    };
    if last
        != (Shape::Flat {
            n: task.num_classes as usize,
        })
    {
        bail!(
            "network `{}`: the last node ({}, node {}) gives {last}, but the task needs {} class logits (a flat vector)",
            network.key,
            op_name(&nodes[nodes.len() - 1].op),
            nodes.len() - 1,
            task.num_classes
        );
    }
    Ok(Analysis { nodes: infos })
}

/// The channels of concatenated inputs, if they stay within [`LIMITS`].
fn channel_sum(ins: &[Shape]) -> std::result::Result<usize, String> {
    let sum: u128 = ins.iter().map(|s| s.channels() as u128).sum();
    within(sum, LIMITS.elements, "concatenated channels").map(|c| c as usize)
}

fn shapes_text(shapes: &[Shape]) -> String {
    shapes
        .iter()
        .map(Shape::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}
