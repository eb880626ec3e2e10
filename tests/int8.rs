//! Int8 quantization: the integer kernels against the quantized model's
//! float simulation, layer by layer, and the int8 network against the float
//! network it came from, over every IR op and every convolution and pooling
//! variant.

mod common;

use candle_core::Tensor;
use common::networks::{cases, input, model, network, TASK};
use nas_host::ir::Op;
use nas_host::network::LayerHook;
use nas_host::quant::{calibrate_batches, Int8Network, Int8Pass, QuantizeConfig, Simulated};

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Runs each layer both ways on the same input and passes the int8 output on.
struct Compare<'a> {
    net: &'a Int8Network,
    /// The largest difference seen, relative to the layer's largest output.
    worst: f32,
    layers: usize,
}

impl LayerHook for Compare<'_> {
    fn layer(&mut self, node: usize, x: &Tensor) -> anyhow::Result<Option<Tensor>> {
        let int8 = Int8Pass(self.net).layer(node, x)?.unwrap();
        let simulated = Simulated(self.net).layer(node, x)?.unwrap();
        let scale = max_abs(&simulated).max(1e-3);
        self.worst = self.worst.max(max_abs(&(&int8 - &simulated)?) / scale);
        self.layers += 1;
        Ok(Some(int8))
    }

    fn passes_on(&self, node: usize) -> bool {
        self.net.passes_on(node)
    }
}

#[test]
fn int8_layers_equal_their_float_simulation_and_stay_near_the_float_network() {
    let mut worst_network = (0f32, String::new());
    for (seed, net) in cases().iter().enumerate() {
        let seed = seed as u64;
        let model = model(net, &TASK, seed);
        let x = input(&TASK, 3, seed);
        // The input among them: no value falls outside its grid.
        let batches = [input(&TASK, 4, seed + 1000), x.clone()];
        let grids = calibrate_batches(&model, &batches, &QuantizeConfig::default()).unwrap();
        let int8 = Int8Network::new(net, &TASK, &model.tensors(), &grids).unwrap();
        let mut compare = Compare {
            net: &int8,
            worst: 0.0,
            layers: 0,
        };
        let y = model.forward_hooked(&x, &mut compare).unwrap();
        let layers = net
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Conv2d(_) | Op::Dense(_)))
            .count();
        assert_eq!(compare.layers, layers, "{}", net.key);
        // Only the order of float additions differs.
        assert!(
            compare.worst < 1e-5,
            "{}: int8 and its simulation differ by {}",
            net.key,
            compare.worst
        );
        // Folding and quantization keep the network's function.
        let float = model.forward(&x, false, None).unwrap();
        let error = max_abs(&(&y - &float).unwrap()) / max_abs(&float).max(1e-3);
        if error > worst_network.0 {
            worst_network = (error, net.key.clone());
        }
    }
    assert!(worst_network.0 < 0.05, "{worst_network:?}");
}

/// `aware_epochs` changes only the last epochs: before them training is
/// bitwise plain training; in them the pass sees the int8 grids, so the
/// curve departs from plain training's, deterministically.
#[test]
fn quantization_aware_training_changes_only_the_last_epochs_and_is_deterministic() {
    use candle_core::Device;
    use nas_host::data::{self, DataConfig, DatasetKind};
    use nas_host::interrupt::Cancel;
    use nas_host::network::Model;
    use nas_host::train::{train_with, Extras, TrainConfig};
    let config = DataConfig {
        dataset: DatasetKind::Synthetic,
        classes: Some(4),
        image_size: Some(12),
        train_samples: Some(400),
        test_samples: Some(100),
        ..DataConfig::default()
    };
    let data = data::load(&config, 0, &Device::Cpu).unwrap();
    use nas_host::ir::{Activation, Conv2d, Padding, Pool};
    let net = &network(
        "qat",
        vec![
            (Op::Input, vec![]),
            (
                Op::Conv2d(Conv2d {
                    filters: 8,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Same,
                    dilation: 1,
                    groups: 1,
                    bias: true,
                }),
                vec![0],
            ),
            (Op::BatchNorm, vec![1]),
            (Op::Activation(Activation::Relu), vec![2]),
            (
                Op::MaxPool(Pool {
                    kernel: 2,
                    stride: 2,
                    padding: Padding::Valid,
                }),
                vec![3],
            ),
            (Op::Flatten, vec![4]),
            (Op::Dense(4), vec![5]),
        ],
    );
    let train_config = TrainConfig {
        batch_size: 32,
        ..TrainConfig::default()
    };
    let curve = |aware_epochs| {
        let model = Model::new(net, &data.task, 3, &Device::Cpu).unwrap();
        let extras = Extras {
            aware_epochs,
            ..Extras::default()
        };
        let outcome = train_with(
            &model,
            &data,
            &train_config,
            3,
            3,
            None,
            &extras,
            &Cancel::new(),
            &mut |_| {},
        )
        .unwrap();
        outcome
            .curve
            .iter()
            .map(|e| (e.train_loss, e.val_loss))
            .collect::<Vec<_>>()
    };
    let (plain, aware) = (curve(0), curve(1));
    assert_eq!(plain[..2], aware[..2]);
    assert_ne!(plain[2], aware[2]);
    assert_eq!(aware, curve(1));
    // Rounding every weight and input to its grid costs the loss a little, no more.
    assert!(
        (aware[2].0 - plain[2].0).abs() < 0.1 * plain[2].0,
        "{plain:?} {aware:?}"
    );
}

/// Int8 metrics as objectives and constraints: a search over int8 accuracy
/// and size records both; `max_int8_size_kb` rules proposals out before
/// training; int8 keys without `[quantize]` are refused, naming them.
#[test]
fn int8_metrics_are_objectives_and_constraints_of_a_search() {
    use common::nas_host;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, extra: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let text = format!(
            r#"
[run]
name = "{name}"
output_dir = "{}"
seed = 2
max_trials = 4
[data]
dataset = "synthetic"
classes = 4
image_size = 12
train_samples = 300
test_samples = 100
[train]
batch_size = 32
epochs = 1
latency_repeats = 1
[space]
plugin = "builtin:seed-template"
[strategy]
plugin = "builtin:nsga2"
{extra}
[[objectives]]
metric = "int8_val_accuracy"
direction = "maximize"
[[objectives]]
metric = "int8_size_kb"
direction = "minimize"
"#,
            dir.path().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let trials = |name: &str| {
        let db = dir.path().join(name).join(nas_host::store::DB_FILE);
        nas_host::store::RunStore::open_read_only(&db)
            .unwrap()
            .trials()
            .unwrap()
    };
    let ok = write("searched", "[quantize]\nenabled = true\n");
    let out = nas_host(&["run", ok.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for t in trials("searched") {
        assert_eq!(
            t.status,
            nas_host::ir::TrialStatus::Completed,
            "{:?}",
            t.reason
        );
        let (float, int8) = (t.metrics["val_accuracy"], t.metrics["int8_val_accuracy"]);
        assert!(
            (float - int8).abs() < 0.05,
            "trial {}: {float} vs {int8}",
            t.id
        );
        assert!(t.metrics["int8_size_kb"] * 1024.0 < t.metrics["params"] * 4.0 / 3.0);
        assert!(t.metrics["int8_latency_b1_ms"] > 0.0 && t.metrics["int8_latency_batch_ms"] > 0.0);
    }
    let limited = write(
        "limited",
        "[quantize]\nenabled = true\n[constraints]\nmax_int8_size_kb = 30.0\n",
    );
    let out = nas_host(&["run", limited.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ruled_out = 0;
    for t in trials("limited") {
        let size = t.metrics["int8_size_kb"];
        if size > 30.0 {
            assert_eq!(t.status, nas_host::ir::TrialStatus::Infeasible);
            let reason = t.reason.unwrap();
            assert!(
                reason.starts_with("int8_size_kb ") && reason.ends_with("> max_int8_size_kb 30"),
                "{reason}"
            );
            assert!(t.curve.is_empty(), "an infeasible proposal is not trained");
            ruled_out += 1;
        } else {
            assert_eq!(
                t.status,
                nas_host::ir::TrialStatus::Completed,
                "{:?}",
                t.reason
            );
        }
    }
    assert!(ruled_out > 0);
    for (name, extra, says) in [
        ("no-quantize", "", "add [quantize] enabled = true"),
        (
            "no-quantize-limit",
            "[constraints]\nmax_int8_latency_ms = 5.0\n",
            "max_int8_latency_ms",
        ),
        (
            "bad-percentile",
            "[quantize]\nenabled = true\npercentile = 30.0\n",
            "[quantize] percentile",
        ),
    ] {
        let path = write(name, extra);
        let out = nas_host(&["run", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(says),
            "{name}: {stderr}"
        );
    }
}
