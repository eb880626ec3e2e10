//! Zero-cost proxies: each checked against PyTorch (tests/proxy_check.py)
//! on networks covering every IR op, deterministic for a seed, and used by
//! real searches on Fashion-MNIST, scored instead of trained (`[evaluator]
//! kind = "proxy"`) and recorded before training.

mod common;

use candle_core::{DType, Device, Tensor};
use common::networks::{cases, input, network, TASK};
use nas_host::ir::{Activation, Conv2d, Network, Op, Padding, Pool, TrialStatus};
use nas_host::network::Model;
use nas_host::proxy::{score, Proxy, Scores};
use nas_host::store::RunStore;
use std::path::{Path, PathBuf};
use std::process::Command;

const BATCH: usize = 8;

/// The Python with PyTorch: `NAS_TORCH_PYTHON` (scripts/test.sh sets it to
/// its virtual environment), else `python3`; `None` when it lacks torch.
fn torch_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("NAS_TORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| "python3".into());
    let found = Command::new(&python)
        .args(["-c", "import torch, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    assert!(
        std::env::var_os("NAS_REQUIRE_TORCH").is_none(),
        "NAS_REQUIRE_TORCH is set but {} cannot import torch and numpy",
        python.display()
    );
    eprintln!("\n*** SKIPPED {test}: PyTorch not found (scripts/test.sh installs it and sets NAS_TORCH_PYTHON) ***\n");
    None
}

/// Whether PyTorch's modules build `net` as nas-host does: "Same" padding
/// is symmetric in both only for odd windows.
fn torch_builds_alike(net: &Network) -> bool {
    net.nodes.iter().all(|n| match &n.op {
        Op::Conv2d(c) => c.padding == Padding::Valid || c.kernel % 2 == 1,
        Op::MaxPool(p) | Op::AvgPool(p) => p.padding == Padding::Valid || p.kernel % 2 == 1,
        _ => true,
    })
}

/// Residual blocks with every activation, kernel and stride, with and
/// without batch-norm: networks with activations, as searched ones have.
fn blocks() -> Vec<Network> {
    use Activation::*;
    let conv = |kernel, stride, bias| {
        Op::Conv2d(Conv2d {
            filters: 8,
            kernel,
            stride,
            padding: Padding::Same,
            dilation: 1,
            groups: 1,
            bias,
        })
    };
    let mut blocks = Vec::new();
    for act in [Relu, Gelu, Silu, Tanh, Sigmoid, LeakyRelu] {
        for kernel in [1, 3, 5] {
            for stride in [1, 2] {
                for bn in [true, false] {
                    let norm = if bn { Op::BatchNorm } else { Op::Identity };
                    blocks.push(network(
                        &format!("block-{act:?}-k{kernel}-s{stride}-bn{bn}"),
                        vec![
                            (Op::Input, vec![]),
                            (conv(kernel, stride, !bn), vec![0]),
                            (norm, vec![1]),
                            (Op::Activation(act), vec![2]),
                            (conv(3, 1, true), vec![3]),
                            (Op::Activation(act), vec![4]),
                            (Op::Add, vec![3, 5]),
                            (
                                Op::MaxPool(Pool {
                                    kernel: 3,
                                    stride: 2,
                                    padding: Padding::Same,
                                }),
                                vec![6],
                            ),
                            (Op::Flatten, vec![7]),
                            (Op::Dense(12), vec![8]),
                            (Op::Activation(act), vec![9]),
                            (Op::Dense(5), vec![10]),
                        ],
                    ));
                }
            }
        }
    }
    blocks
}

fn labels(seed: u64) -> Tensor {
    let values: Vec<u32> = (0..BATCH as u32)
        .map(|i| (i * 7 + seed as u32) % TASK.num_classes)
        .collect();
    Tensor::from_vec(values, BATCH, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn write_case(dir: &Path, seed: u64, net: &Network, scores: &Scores) {
    let model = Model::new(net, &TASK, seed, &Device::Cpu).unwrap();
    let params: serde_json::Map<String, serde_json::Value> = model
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.contains("running"))
        .map(|(name, t)| (name, serde_json::json!(flat(&t))))
        .collect();
    let ours: serde_json::Map<String, serde_json::Value> = scores
        .iter()
        .filter_map(|(p, v)| Some((p.name().to_string(), serde_json::json!(v.as_ref().ok()?))))
        .collect();
    let case = serde_json::json!({
        "network": net,
        "task": [TASK.channels, TASK.height, TASK.width],
        "batch": BATCH,
        "x": flat(&input(&TASK, BATCH, seed)),
        "labels": flat(&labels(seed).to_dtype(DType::F32).unwrap()),
        "params": params,
        "ours": ours,
    });
    std::fs::write(
        dir.join(format!("{seed:03}-{}.json", net.key)),
        case.to_string(),
    )
    .unwrap();
}

#[test]
fn every_proxy_agrees_with_the_pytorch_formulation_on_networks_covering_every_ir_op() {
    let Some(python) = torch_python(
        "every_proxy_agrees_with_the_pytorch_formulation_on_networks_covering_every_ir_op",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut written = 0;
    let mut defined = [0; 5];
    let networks = cases().into_iter().chain(blocks());
    for (seed, net) in networks.enumerate().filter(|(_, n)| torch_builds_alike(n)) {
        let seed = seed as u64;
        let x = input(&TASK, BATCH, seed);
        let scores = score(&net, &TASK, seed, &x, &labels(seed), &Proxy::ALL)
            .unwrap_or_else(|e| panic!("{}: {e:#}", net.key));
        for (i, (_, v)) in scores.iter().enumerate() {
            defined[i] += usize::from(v.is_ok());
        }
        write_case(dir.path(), seed, &net, &scores);
        written += 1;
    }
    assert!(written > 100, "only {written} cases");
    // Every proxy is compared on real values, not only on being undefined.
    assert!(defined.iter().all(|&d| d >= 70), "{defined:?}");
    let out = Command::new(&python)
        .arg(common::root().join("tests/proxy_check.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "PyTorch disagrees with nas-host:\n{}{}",
        report
            .lines()
            .filter(|l| !l.ends_with(": ok"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report.matches(": ok").count(), written, "{report}");
    eprintln!("{written} networks: every proxy agrees with PyTorch");
}

#[test]
fn scores_are_the_same_for_the_same_seed_and_change_with_the_weights() {
    let net = cases().into_iter().find(|n| n.key == "fused").unwrap();
    let x = input(&TASK, BATCH, 1);
    let first = score(&net, &TASK, 1, &x, &labels(1), &Proxy::ALL).unwrap();
    let again = score(&net, &TASK, 1, &x, &labels(1), &Proxy::ALL).unwrap();
    let other = score(&net, &TASK, 2, &x, &labels(1), &Proxy::ALL).unwrap();
    assert_eq!(first, again);
    assert_eq!(first.len(), 5);
    for ((p, a), (_, b)) in first.iter().zip(&other) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert!(a.is_finite() && a != b, "{}: {a} and {b}", p.name());
    }
    // Only what is asked for, in the order asked.
    let two = score(
        &net,
        &TASK,
        1,
        &x,
        &labels(1),
        &[Proxy::Snip, Proxy::Naswot],
    )
    .unwrap();
    assert_eq!(
        two.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [Proxy::Snip, Proxy::Naswot]
    );
    assert_eq!(two[0].1, first[3].1);
    assert_eq!(two[1].1, first[0].1);
}

#[test]
fn a_network_without_activations_has_no_naswot_score_and_says_why() {
    let net = cases()
        .into_iter()
        .find(|n| !n.nodes.iter().any(|n| matches!(n.op, Op::Activation(_))))
        .unwrap();
    let x = input(&TASK, BATCH, 0);
    let scores = score(
        &net,
        &TASK,
        0,
        &x,
        &labels(0),
        &[Proxy::Naswot, Proxy::Snip],
    )
    .unwrap();
    let why = scores[0].1.as_ref().unwrap_err();
    assert!(why.contains("activation"), "{why}");
    assert!(scores[1].1.is_ok());
}

const FASHION: &str = r#"
[data]
dataset = "fashion-mnist"
subset = 1200
seed = 4

[train]
epochs = 1
batch_size = 64

[space]
plugin = "builtin:seed-template"
"#;

fn search(dir: &Path, name: &str, config: &str) -> Vec<nas_host::store::TrialRecord> {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("[run]\nname = \"{name}\"\nmax_trials = 6\nseed = 11\n{FASHION}{config}"),
    )
    .unwrap();
    let out = common::nas_host_command(&[
        "run",
        path.to_str().unwrap(),
        "--output-dir",
        dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    RunStore::open_read_only(&dir.join(name).join("nas.sqlite"))
        .unwrap()
        .trials()
        .unwrap()
}

#[test]
fn a_proxy_evaluator_scores_fashion_mnist_trials_without_training_and_a_trained_run_records_them_too(
) {
    let dir = tempfile::tempdir().unwrap();
    let scored = search(
        dir.path(),
        "scored",
        "[evaluator]\nkind = \"proxy\"\n[[objectives]]\nmetric = \"naswot\"\ndirection = \"maximize\"\n",
    );
    assert_eq!(scored.len(), 6);
    for t in &scored {
        assert_eq!(t.status, TrialStatus::Completed, "{:?}", t.reason);
        assert!(t.curve.is_empty() && t.weights.is_none());
        assert!(!t.metrics.contains_key("val_accuracy"));
        for p in Proxy::ALL {
            assert!(t.metrics[p.name()].is_finite(), "{}", p.name());
        }
    }
    let trained = search(
        dir.path(),
        "trained",
        "[evaluator]\nproxies = [\"naswot\", \"synflow\"]\n",
    );
    assert_eq!(trained.len(), 6);
    for (s, t) in scored.iter().zip(&trained) {
        assert_eq!(t.status, TrialStatus::Completed, "{:?}", t.reason);
        assert_eq!(t.curve.len(), 1);
        assert!(t.metrics.contains_key("val_accuracy"));
        // The same proposals and seeds: the same scores, and nothing else scored.
        assert_eq!(s.key, t.key);
        assert_eq!(s.metrics["naswot"], t.metrics["naswot"]);
        assert_eq!(s.metrics["synflow"], t.metrics["synflow"]);
        assert!(!t.metrics.contains_key("snip"));
    }
}
