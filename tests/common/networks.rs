//! Networks for the deployment tests (ONNX export, int8): every IR op and
//! every convolution and pooling variant, with models whose batch-norms
//! carry random statistics.

use candle_core::{Device, Tensor};
use nas_host::ir::{Activation, Conv2d, Network, Node, Op, Padding, Pool, Task};
use nas_host::network::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Odd and unequal height and width catch transposed or one-sided padding.
pub const TASK: Task = Task {
    channels: 3,
    height: 13,
    width: 11,
    num_classes: 5,
};

pub fn network(key: &str, nodes: Vec<(Op, Vec<u32>)>) -> Network {
    Network {
        nodes: nodes
            .into_iter()
            .map(|(op, inputs)| Node { op, inputs })
            .collect(),
        key: key.into(),
    }
}

/// A model of `net` with its initial weights, and batch-norm parameters and
/// running statistics set to random values so that they matter.
pub fn model(net: &Network, task: &Task, seed: u64) -> Model {
    let model =
        Model::new(net, task, seed, &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e:#}", net.key));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tensors: HashMap<String, Tensor> = model
        .snapshot()
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            let bn = ["gamma", "beta", "running_mean", "running_var"]
                .iter()
                .any(|s| name.ends_with(s));
            if !bn {
                return (name, t);
            }
            let (low, high) = if name.ends_with("running_var") {
                (0.3, 2.0)
            } else {
                (-1.0, 1.0)
            };
            let values: Vec<f32> = (0..t.elem_count())
                .map(|_| rng.random_range(low..high))
                .collect();
            (
                name,
                Tensor::from_vec(values, t.dims(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    model.set_tensors(&tensors, "test").unwrap();
    model
}

pub fn input(task: &Task, batch: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dims = [
        batch,
        task.channels as usize,
        task.height as usize,
        task.width as usize,
    ];
    let values: Vec<f32> = (0..dims.iter().product::<usize>())
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    Tensor::from_vec(values, &dims[..], &Device::Cpu).unwrap()
}

/// Every op and activation of the IR, the CPU's fused paths (convolution
/// with ReLU and max pool, dense with ReLU), and every convolution and
/// pooling variant the IR allows.
pub fn cases() -> Vec<Network> {
    use Activation::*;
    let conv = |filters, kernel, stride, padding, dilation, groups, bias| {
        Op::Conv2d(Conv2d {
            filters,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
        })
    };
    let mut cases = vec![
        network(
            "every-op",
            vec![
                (Op::Input, vec![]),
                (conv(6, 3, 1, Padding::Same, 1, 1, true), vec![0]),
                (Op::BatchNorm, vec![1]),
                (Op::Activation(Relu), vec![2]),
                (Op::Activation(Gelu), vec![2]),
                (Op::Activation(Silu), vec![2]),
                (Op::Add, vec![3, 4, 5]),
                (Op::Activation(Tanh), vec![6]),
                (Op::Activation(Sigmoid), vec![6]),
                (Op::Activation(LeakyRelu), vec![6]),
                (Op::Concat, vec![7, 8, 9]),
                (Op::Dropout(0.3), vec![10]),
                (Op::Identity, vec![11]),
                (Op::Zero, vec![12]),
                (Op::Add, vec![12, 13]),
                (Op::GlobalAvgPool, vec![14]),
                (Op::GlobalMaxPool, vec![14]),
                (Op::Flatten, vec![14]),
                (Op::Dense(18), vec![17]),
                (Op::Concat, vec![15, 16, 18]),
                (Op::BatchNorm, vec![19]),
                (Op::Activation(Relu), vec![20]),
                (Op::Dense(5), vec![21]),
            ],
        ),
        network(
            "fused",
            vec![
                (Op::Input, vec![]),
                (conv(8, 3, 1, Padding::Same, 1, 1, true), vec![0]),
                (Op::Activation(Relu), vec![1]),
                (
                    Op::MaxPool(Pool {
                        kernel: 2,
                        stride: 2,
                        padding: Padding::Valid,
                    }),
                    vec![2],
                ),
                (conv(8, 3, 1, Padding::Same, 1, 1, false), vec![3]),
                (Op::BatchNorm, vec![4]),
                (Op::Activation(Relu), vec![5]),
                (
                    Op::AvgPool(Pool {
                        kernel: 3,
                        stride: 2,
                        padding: Padding::Same,
                    }),
                    vec![6],
                ),
                (Op::Flatten, vec![7]),
                (Op::Dense(16), vec![8]),
                (Op::Activation(Relu), vec![9]),
                (Op::Dense(5), vec![10]),
            ],
        ),
        network(
            "pooled-logits",
            vec![
                (Op::Input, vec![]),
                (conv(5, 1, 1, Padding::Valid, 1, 1, true), vec![0]),
                (Op::GlobalAvgPool, vec![1]),
            ],
        ),
    ];
    for kernel in 1..=5 {
        for stride in [1, 2] {
            for padding in [Padding::Same, Padding::Valid] {
                for dilation in [1, 2] {
                    for (filters, groups) in [(6, 1), (6, 3), (3, 3)] {
                        for bias in [true, false] {
                            cases.push(network(
                                &format!("conv-k{kernel}-s{stride}-{padding:?}-d{dilation}-f{filters}-g{groups}-b{bias}"),
                                vec![
                                    (Op::Input, vec![]),
                                    (conv(filters, kernel, stride, padding, dilation, groups, bias), vec![0]),
                                    (Op::Flatten, vec![1]),
                                    (Op::Dense(5), vec![2]),
                                ],
                            ));
                        }
                    }
                }
            }
        }
    }
    for max in [true, false] {
        for kernel in [2, 3] {
            for stride in [1, 2] {
                for padding in [Padding::Same, Padding::Valid] {
                    let pool = Pool {
                        kernel,
                        stride,
                        padding,
                    };
                    let op = if max {
                        Op::MaxPool(pool)
                    } else {
                        Op::AvgPool(pool)
                    };
                    cases.push(network(
                        &format!(
                            "{}-k{kernel}-s{stride}-{padding:?}",
                            if max { "max" } else { "avg" }
                        ),
                        vec![
                            (Op::Input, vec![]),
                            (op, vec![0]),
                            (Op::Flatten, vec![1]),
                            (Op::Dense(5), vec![2]),
                        ],
                    ));
                }
            }
        }
    }
    cases
}
