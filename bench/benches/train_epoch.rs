//! Training speed: one epoch of the seed-template network (flatten, 64 units,
//! dropout 0) on Fashion-MNIST (48,000 training and 12,000 validation images),
//! built by the real seed-template plugin and trained by the real trainer.
//! Prints the CPU (model, instruction sets, the kernels' vector width and
//! its measured FMA peak), then seconds per epoch, images per second,
//! achieved GFLOP/s (3 x forward
//! FLOPs per training image) and the validation pass.
//!
//! Run: `cargo bench -p nas-bench --bench train_epoch`
//! Then the same for two `cnn`-space networks at batch 32: a residual one
//! with kernel 5 and batch-norm, and one of mixed ops (inception, strided
//! convolution, SiLU, GELU, average pooling, dropout).
//! (`NAS_BENCH_AUGMENT=1` also times each seed-template epoch with `[data.augment]` crop, flip and cutout; `NAS_BENCH_BATCHES=32,128` picks batch sizes, empty for the `cnn` networks only; `NAS_BENCH_CNN_BATCHES=32` those of the `cnn` networks; `NAS_BENCH_RESIDUAL=0` and `NAS_BENCH_MIXED=0` skip those networks; `NAS_BENCH_SUBSET=N` uses N images for a quick look;
//! `NAS_BENCH_PYTHON=path/to/python` with torch installed prints PyTorch's time for the same
//! epoch under each row, from `bench/peers/torch_epoch.py`;
//! `NAS_BENCH_DEVICE=cuda:0` trains on that GPU, PyTorch too, in a build with
//! `--features cuda`.)

use anyhow::Result;
use nas_host::data::augment::Augment;
use nas_host::data::{self, DataConfig, DatasetKind};
use nas_host::interrupt::Cancel;
use nas_host::ir::{Binding, Value};
use nas_host::network::Model;
use nas_host::plugin::{PluginLimits, PluginRuntime, PluginSource};
use nas_host::train::{evaluate, train, TrainConfig};
use std::time::Instant;

/// The augmentation `NAS_BENCH_AUGMENT=1` measures: the usual CIFAR recipe.
const AUGMENT: Augment = Augment {
    crop_padding: 4,
    flip: true,
    cutout: 8,
};

fn label(name: &str, value: &str) -> Binding {
    Binding {
        name: name.into(),
        value: Value::Categorical(value.into()),
    }
}

/// The batch sizes listed in the environment variable `name` (`default`
/// where it is unset).
fn batch_sizes(name: &str, default: &str) -> Result<Vec<usize>> {
    Ok(std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|b| !b.trim().is_empty())
        .map(|b| b.trim().parse())
        .collect::<Result<_, _>>()?)
}

fn main() -> Result<()> {
    // As `nas-host` does: candle's element-wise ops on the calling thread.
    let candle_threads = nas_host::train::serial_candle_elementwise();
    let batches = batch_sizes("NAS_BENCH_BATCHES", "32,128")?;
    let cnn_batches = batch_sizes("NAS_BENCH_CNN_BATCHES", "32")?;
    let device_name = std::env::var("NAS_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = nas_host::device::parse(&device_name)?;
    let subset = std::env::var("NAS_BENCH_SUBSET")
        .ok()
        .map(|s| s.parse())
        .transpose()?;
    let config = DataConfig {
        dataset: DatasetKind::FashionMnist,
        subset,
        ..DataConfig::default()
    };
    let loaded = Instant::now();
    let mut data = data::load(&config, 0, &device)?;
    let load_s = loaded.elapsed().as_secs_f64();

    let runtime = PluginRuntime::new(PluginLimits::default(), None)?;
    let mut space = runtime.search_space(&PluginSource::parse("builtin:seed-template")?)?;
    space.init("{}", data.task)?;
    let network = space.build(&[
        label("global_pooling", "false"),
        label("dense_units", "64"),
        label("dropout_rate", "0.0"),
    ])?;

    println!(
        "train_epoch: seed-template `{}` on {}",
        network.key, data.description
    );
    println!(
        "device: {device_name}; data decode and split: {load_s:.2} s; threads: RAYON_NUM_THREADS={}, CANDLE_NUM_THREADS={candle_threads}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    // The ceiling the CPU rows' GFLOP/s are a fraction of.
    let peak = device.is_cpu().then(|| {
        let machine = nas_kernels::machine::machine();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let one = nas_kernels::machine::fma_peak_gflops(1, 0.3);
        let all = nas_kernels::machine::fma_peak_gflops(threads, 0.3);
        println!(
            "cpu: {} ({}); kernels: {} FMA; measured FMA peak {one:.0} GFLOP/s on 1 thread, {all:.0} on {threads}",
            machine.model,
            machine.features.join(" "),
            machine.vector
        );
        all
    });
    let of_peak =
        |gflops: f64| peak.map_or(String::new(), |p| format!("{:.0}%", 100.0 * gflops / p));
    println!(
        "{:>6} {:>10} {:>10} {:>9} {:>6} {:>12} {:>8}",
        "batch", "train s", "images/s", "GFLOP/s", "peak", "val pass s", "val acc"
    );
    for batch in batches {
        let train_config = TrainConfig {
            batch_size: batch,
            ..TrainConfig::default()
        };
        // `train` ends its epoch with one validation pass; it is timed on its own below and subtracted.
        let (model, with_validation) = timed_epoch(&network, &data, &train_config)?;
        let val_start = Instant::now();
        let (_, accuracy) = evaluate(&model, &data.val, train_config.eval_batch_size)?;
        let val_s = val_start.elapsed().as_secs_f64();
        let train_s = with_validation - val_s;
        let images = data.train.len() as f64;
        let gflops = 3.0 * model.analysis().flops() as f64 * images / train_s / 1e9;
        println!(
            "{batch:>6} {train_s:>10.1} {:>10.0} {gflops:>9.2} {:>6} {val_s:>12.2} {accuracy:>8.4}",
            images / train_s,
            of_peak(gflops)
        );
        peer(&network, batch, subset, &device_name, train_s)?;
        if std::env::var("NAS_BENCH_AUGMENT").is_ok_and(|v| v == "1") {
            // The same epoch with batches augmented on the prefetch thread.
            data.augment = AUGMENT;
            let augmented_s = timed_epoch(&network, &data, &train_config)?.1 - val_s;
            data.augment = Augment::default();
            println!(
                "{:>6} {augmented_s:>10.1}   augmented ({AUGMENT:?}): {:+.1}% training time",
                "",
                (augmented_s / train_s - 1.0) * 100.0
            );
        }
    }
    let skipped = |variable: &str| std::env::var(variable).is_ok_and(|v| v == "0");
    let bench = Bench {
        peak,
        data: &data,
        subset,
        device: &device_name,
    };
    for batch in cnn_batches {
        if !skipped("NAS_BENCH_RESIDUAL") {
            bench.cnn_epoch(&runtime, "residual cnn (k5, batch-norm", RESIDUAL, batch)?;
        }
        if !skipped("NAS_BENCH_MIXED") {
            let title = "mixed cnn (inception, strided conv, SiLU, GELU, avg-pool, dropout";
            bench.cnn_epoch(&runtime, title, MIXED, batch)?;
        }
    }
    Ok(())
}

/// A fresh model of `network` and the seconds of one epoch of training it
/// on `data` (its validation pass included).
fn timed_epoch(
    network: &nas_host::ir::Network,
    data: &data::Dataset,
    config: &TrainConfig,
) -> Result<(Model, f64)> {
    let model = Model::new(network, &data.task, 1, data.device())?;
    let start = Instant::now();
    train(
        &model,
        data,
        config,
        1,
        1,
        None,
        &Cancel::new(),
        &mut |_| {},
    )?;
    Ok((model, start.elapsed().as_secs_f64()))
}

/// With `NAS_BENCH_PYTHON` (a Python with torch): the same epoch in
/// PyTorch (`peers/torch_epoch.py`), printed under nas-host's, with the ratio.
fn peer(
    network: &nas_host::ir::Network,
    batch: usize,
    subset: Option<usize>,
    device: &str,
    ours: f64,
) -> Result<()> {
    let Ok(python) = std::env::var("NAS_BENCH_PYTHON") else {
        return Ok(());
    };
    let file = std::env::temp_dir().join(format!("nas-bench-network-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string(network)?)?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/torch_epoch.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script)
        .arg(&file)
        .arg(batch.to_string())
        .arg(device.replace("cpu", "cpu:0"))
        .arg(subset.map_or_else(|| "all".into(), |n| n.to_string()));
    let out = cmd.output()?;
    std::fs::remove_file(&file)?;
    anyhow::ensure!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let theirs = peer["train_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{:>6} {theirs:>10.1} {:>10} {:>9} {:>6} {:>12.2} {:>8.4}   PyTorch {} ({}): nas-host takes {:.2}x PyTorch's time",
        "",
        "",
        "",
        "",
        peer["val_s"].as_f64().unwrap_or(f64::NAN),
        peer["val_acc"].as_f64().unwrap_or(f64::NAN),
        peer["torch"].as_str().unwrap_or("?"),
        peer["where"].as_str().unwrap_or("?"),
        ours / theirs
    );
    Ok(())
}

/// A `cnn`-space residual network with kernel 5 and batch-norm (2 stages of
/// 2 residual blocks, 32 and 64 filters): the convolution-heavy case.
const RESIDUAL: &[(&str, &str)] = &[
    ("stages", "2"),
    ("s1_blocks", "2"),
    ("s1_filters", "32"),
    ("s1_kernel", "5"),
    ("s1_block", "residual"),
    ("s1_batch_norm", "true"),
    ("s1_activation", "relu"),
    ("s1_downsample", "max-pool"),
    ("s2_blocks", "2"),
    ("s2_filters", "64"),
    ("s2_kernel", "5"),
    ("s2_block", "residual"),
    ("s2_batch_norm", "true"),
    ("s2_activation", "relu"),
    ("s2_downsample", "max-pool"),
    ("global_pooling", "true"),
    ("dense_units", "0"),
    ("dropout_rate", "0.0"),
];

/// A `cnn`-space network of the ops the fast paths cover least: an
/// inception block (1x1, 3x3, 5x5 and pooled branches, concatenated),
/// a strided convolution (im2col), SiLU and GELU, average pooling, dropout.
const MIXED: &[(&str, &str)] = &[
    ("stages", "2"),
    ("s1_blocks", "1"),
    ("s1_filters", "32"),
    ("s1_kernel", "5"),
    ("s1_block", "inception"),
    ("s1_batch_norm", "true"),
    ("s1_activation", "silu"),
    ("s1_downsample", "strided-conv"),
    ("s2_blocks", "1"),
    ("s2_filters", "64"),
    ("s2_kernel", "3"),
    ("s2_block", "plain"),
    ("s2_batch_norm", "false"),
    ("s2_activation", "gelu"),
    ("s2_downsample", "avg-pool"),
    ("global_pooling", "false"),
    ("dense_units", "64"),
    ("dropout_rate", "0.2"),
];

/// What every `cnn`-network row shares.
struct Bench<'a> {
    /// The CPU's measured FMA peak, GFLOP/s (none on a GPU).
    peak: Option<f64>,
    data: &'a data::Dataset,
    subset: Option<usize>,
    device: &'a str,
}

impl Bench<'_> {
    /// The same epoch at `batch` for the `cnn`-space network of `pairs`,
    /// printed as `title` (an open parenthesis, closed with the network's size).
    fn cnn_epoch(
        &self,
        runtime: &PluginRuntime,
        title: &str,
        pairs: &[(&str, &str)],
        batch: usize,
    ) -> Result<()> {
        let data = self.data;
        let mut cnn = runtime.search_space(&PluginSource::parse("builtin:cnn")?)?;
        cnn.init("{}", data.task)?;
        let network = cnn.build(&pairs.iter().map(|(n, v)| label(n, v)).collect::<Vec<_>>())?;
        let config = TrainConfig {
            batch_size: batch,
            ..TrainConfig::default()
        };
        let (model, with_validation) = timed_epoch(&network, data, &config)?;
        let val_start = Instant::now();
        let (_, accuracy) = evaluate(&model, &data.val, config.eval_batch_size)?;
        let val_s = val_start.elapsed().as_secs_f64();
        let train_s = with_validation - val_s;
        let flops = model.analysis().flops() as f64;
        let gflops = 3.0 * flops * data.train.len() as f64 / train_s / 1e9;
        println!(
            "\n{title}, {} params, {:.1} MFLOP/image), batch {batch}: {train_s:.1} s, {:.0} images/s, {gflops:.2} GFLOP/s{}, val pass {val_s:.2} s, val acc {accuracy:.4}",
            nas_host::network::grouped(model.analysis().params()),
            flops / 1e6,
            data.train.len() as f64 / train_s,
            self.peak.map_or(String::new(), |p| format!(" ({:.0}% of the FMA peak)", 100.0 * gflops / p))
        );
        peer(&network, batch, self.subset, self.device, train_s)
    }
}
