//! ONNX export checked by the ONNX checker and onnxruntime (PyPI; installed
//! by scripts/test.sh): networks covering every IR op and every convolution
//! and pooling variant, and a model trained on Fashion-MNIST and exported by
//! `nas-host export --format onnx`, give nas-host's outputs. In CI
//! (`NAS_REQUIRE_ONNXRUNTIME=1`) onnxruntime must be there; elsewhere the
//! tests say loudly that they were skipped.

mod common;

use candle_core::{Device, Tensor};
use common::nas_host;
use nas_host::ir::{Activation, Conv2d, Network, Node, Op, Padding, Pool, Task};
use nas_host::network::Model;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Float outputs agree within this (relative and absolute, numpy.allclose).
const FLOAT_TOLERANCE: f64 = 1e-4;

/// Whether Python has onnxruntime and onnx.
fn onnxruntime_here(test: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", "import onnxruntime, onnx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("NAS_REQUIRE_ONNXRUNTIME").is_none(),
            "NAS_REQUIRE_ONNXRUNTIME is set but Python cannot import onnxruntime and onnx"
        );
        eprintln!("\n*** SKIPPED {test}: python3 -m pip install onnxruntime onnx (scripts/test.sh does) ***\n");
    }
    found
}

fn le_bytes(t: &Tensor) -> Vec<u8> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Writes a case folder for tests/onnx_check.py.
fn write_case(dir: &Path, onnx: &[u8], input: &Tensor, expected: &Tensor, same_classes: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("model.onnx"), onnx).unwrap();
    std::fs::write(dir.join("input.f32"), le_bytes(input)).unwrap();
    std::fs::write(dir.join("expected.f32"), le_bytes(expected)).unwrap();
    let spec = serde_json::json!({
        "input": input.dims(),
        "rtol": FLOAT_TOLERANCE,
        "atol": FLOAT_TOLERANCE,
        "same_classes": same_classes,
    });
    std::fs::write(dir.join("case.json"), spec.to_string()).unwrap();
}

/// Runs tests/onnx_check.py over the cases in `dir`; panics with its report
/// unless every case passes.
fn check_cases(dir: &Path, cases: usize) {
    let out = Command::new("python3")
        .arg(common::root().join("tests/onnx_check.py"))
        .arg(dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "onnxruntime disagrees with nas-host:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report.matches(": ok").count(), cases, "{report}");
}

fn network(key: &str, nodes: Vec<(Op, Vec<u32>)>) -> Network {
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
fn model(net: &Network, task: &Task, seed: u64) -> Model {
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

fn input(task: &Task, batch: usize, seed: u64) -> Tensor {
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
fn cases() -> Vec<Network> {
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

#[test]
fn every_ir_op_and_variant_exported_as_onnx_gives_nas_hosts_outputs_in_onnxruntime() {
    if !onnxruntime_here(
        "every_ir_op_and_variant_exported_as_onnx_gives_nas_hosts_outputs_in_onnxruntime",
    ) {
        return;
    }
    // Odd and unequal height and width catch transposed or one-sided padding.
    let task = Task {
        channels: 3,
        height: 13,
        width: 11,
        num_classes: 5,
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    for (seed, net) in cases.iter().enumerate() {
        let model = model(net, &task, seed as u64);
        let x = input(&task, 3, seed as u64);
        let expected = model.forward(&x, false, None).unwrap();
        let onnx = nas_host::onnx::encode(net, &task, &model.tensors()).unwrap();
        write_case(&dir.path().join(&net.key), &onnx, &x, &expected, false);
    }
    check_cases(dir.path(), cases.len());
}

#[test]
fn a_model_trained_on_fashion_mnist_exported_as_onnx_classifies_its_test_split_as_nas_host_does() {
    if !onnxruntime_here("a_model_trained_on_fashion_mnist_exported_as_onnx_classifies_its_test_split_as_nas_host_does") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[run]
name = "onnx"
output_dir = "{}"
seed = 3
max_trials = 1
[data]
dataset = "fashion-mnist"
validation_split = 0.2
subset = 3000
[train]
batch_size = 64
epochs = 1
[space]
plugin = "builtin:seed-template"
[strategy]
plugin = "builtin:random"
[[objectives]]
metric = "val_accuracy"
direction = "maximize"
"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let run = nas_host(&["run", config.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let exported = dir.path().join("model");
    let export = nas_host(&[
        "export",
        dir.path().join("onnx").to_str().unwrap(),
        "--format",
        "onnx",
        "--out",
        exported.to_str().unwrap(),
    ]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );

    // nas-host's outputs for the whole test split, as `nas-host eval` computes them.
    let (task, net) = read_export(&exported);
    let model = Model::new(&net, &task, 0, &Device::Cpu).unwrap();
    model.load(&exported.join("weights.safetensors")).unwrap();
    let run_config = nas_host::config::RunConfig::load(&config).unwrap();
    let data = nas_host::data::load(&run_config.data, 3, &Device::Cpu).unwrap();
    let (x, _) = data.test.tensors(0, data.test.len(), &Device::Cpu).unwrap();
    let expected = model.forward(&x, false, None).unwrap();
    let cases = dir.path().join("cases");
    write_case(
        &cases.join("fashion-mnist-test"),
        &std::fs::read(exported.join("model.onnx")).unwrap(),
        &x,
        &expected,
        true,
    );
    check_cases(&cases, 1);
}

fn read_export(dir: &Path) -> (Task, Network) {
    let text = std::fs::read_to_string(dir.join("architecture.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        serde_json::from_value(value["task"].clone()).unwrap(),
        serde_json::from_value(value["network"].clone()).unwrap(),
    )
}
