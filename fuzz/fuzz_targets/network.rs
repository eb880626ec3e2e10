//! Any network, as a plugin could return it, through the plugin edge's gate,
//! shape inference and (within a memory cap) model construction and a
//! forward pass: errors, never panics, and what passes gives one logit per
//! class.
#![no_main]

use candle_core::{DType, Device, Tensor};
use libfuzzer_sys::fuzz_target;
use nas_host::ir::{Activation, Conv2d, Network, Node, Op, Padding, Pool, Task};
use nas_host::network::{analyse, Model};

/// A 32-bit value from two bytes: small values mostly, the extremes too.
fn size(a: u8, b: u8) -> u32 {
    match a {
        0xff => u32::MAX - u32::from(b),
        0xfe => 1 << (b % 32),
        _ => u32::from(a % 16) + u32::from(b % 4) * 16,
    }
}

fn op(bytes: &[u8; 6]) -> Op {
    let [kind, a, b, c, d, _] = *bytes;
    let padding = if c % 2 == 0 { Padding::Same } else { Padding::Valid };
    let pool = Pool {
        kernel: size(a, b),
        stride: size(c, d),
        padding,
    };
    match kind % 15 {
        0 => Op::Input,
        1 => Op::Conv2d(Conv2d {
            filters: size(a, b),
            kernel: u32::from(c % 8),
            stride: u32::from(d % 4),
            padding,
            dilation: u32::from(b % 3),
            groups: u32::from(a % 4),
            bias: d % 2 == 0,
        }),
        2 => Op::Dense(size(a, b)),
        3 => Op::MaxPool(pool),
        4 => Op::AvgPool(pool),
        5 => Op::GlobalAvgPool,
        6 => Op::GlobalMaxPool,
        7 => Op::BatchNorm,
        8 => Op::Activation(match a % 6 {
            0 => Activation::Relu,
            1 => Activation::Gelu,
            2 => Activation::Silu,
            3 => Activation::Tanh,
            4 => Activation::Sigmoid,
            _ => Activation::LeakyRelu,
        }),
        9 => Op::Dropout(f32::from_bits(u32::from_le_bytes([a, b, c, d]))),
        10 => Op::Flatten,
        11 => Op::Add,
        12 => Op::Concat,
        13 => Op::Identity,
        _ => Op::Zero,
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
        return;
    };
    let task = Task {
        channels: u32::from(head[0] % 4) + 1,
        height: u32::from(head[1] % 32) + 1,
        width: u32::from(head[2] % 32) + 1,
        num_classes: u32::from(head[3] % 10) + 2,
    };
    let nodes: Vec<Node> = rest
        .chunks_exact(8)
        .enumerate()
        .map(|(i, chunk)| {
            let (spec, links) = chunk.split_at(6);
            let earlier = |b: u8| u32::from(b) % (i as u32).max(1);
            let inputs = match (i, links[0] % 4) {
                (0, _) => Vec::new(),
                (_, 0) => vec![earlier(links[1]), earlier(links[0] / 4)],
                _ => vec![earlier(links[1])],
            };
            Node {
                op: op(spec.try_into().expect("six bytes")),
                inputs,
            }
        })
        .collect();
    let network = Network {
        nodes,
        key: "fuzz".into(),
    };
    if nas_host::plugin::gate::network(&nas_host::plugin::PluginLimits::DEFAULT, "fuzz", &network).is_err() {
        return;
    }
    let Ok(analysis) = analyse(&network, &task) else {
        return;
    };
    // Within the cap, the network must build and run; past it, the memory
    // check refuses it before any allocation in a real run.
    if analysis.train_memory_mb(2) > 32.0 {
        return;
    }
    let Ok(model) = Model::new(&network, &task, 0, &Device::Cpu) else {
        return;
    };
    let (c, h, w) = (task.channels as usize, task.height as usize, task.width as usize);
    let x = Tensor::zeros((2, c, h, w), DType::F32, &Device::Cpu).expect("input");
    if let Ok(y) = model.forward(&x, false, None) {
        assert_eq!(y.dims(), &[2, task.num_classes as usize]);
    }
});
