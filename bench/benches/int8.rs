//! Int8 against float: the seed-template network (flatten, 64 units,
//! dropout 0) trained on Fashion-MNIST, quantized after training (batch-norm
//! folded, per-channel s8 weights, u8 inputs calibrated on 8 training
//! batches, min-max and 99.99th percentile), then validation and test
//! accuracy and the latency of a pass at batch 1 and batch 64 (the median
//! of seven rounds of probes, the models interleaved), float against int8,
//! in one run. Prints the CPU and whether the integer
//! kernels use AVX-512 VNNI.
//!
//! Run: `cargo bench -p nas-bench --bench int8`
//! (`NAS_BENCH_EPOCHS=N` trains N epochs, default 2; `NAS_BENCH_SUBSET=N`
//! uses N images for a quick look; `NAS_KERNELS_AVX512=off` measures the
//! portable paths.)

use anyhow::Result;
use candle_core::{Device, Tensor};
use nas_host::data::{self, DataConfig, DatasetKind};
use nas_host::interrupt::Cancel;
use nas_host::ir::{Binding, Value};
use nas_host::network::Model;
use nas_host::plugin::{PluginLimits, PluginRuntime, PluginSource};
use nas_host::quant::{Calibration, QuantizeConfig, Quantized};
use nas_host::train::{evaluate_pass, pass_latency_ms, train, Pass, TrainConfig};

/// Timed passes per latency probe (the probe also stops after ten seconds).
const REPEATS: usize = 50;
/// Latency probes per model and batch size.
const ROUNDS: usize = 7;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn label(name: &str, value: &str) -> Binding {
    Binding {
        name: name.into(),
        value: Value::Categorical(value.into()),
    }
}

fn main() -> Result<()> {
    nas_host::train::serial_candle_elementwise();
    let env = |name: &str| -> Result<Option<usize>> {
        Ok(std::env::var(name).ok().map(|v| v.parse()).transpose()?)
    };
    let epochs = env("NAS_BENCH_EPOCHS")?.unwrap_or(2) as u32;
    let config = DataConfig {
        dataset: DatasetKind::FashionMnist,
        subset: env("NAS_BENCH_SUBSET")?,
        ..DataConfig::default()
    };
    let cpu = Device::Cpu;
    let data = data::load(&config, 0, &cpu)?;
    let runtime = PluginRuntime::new(PluginLimits::default(), None)?;
    let mut space = runtime.search_space(&PluginSource::parse("builtin:seed-template")?)?;
    space.init("{}", data.task)?;
    let network = space.build(&[
        label("global_pooling", "false"),
        label("dense_units", "64"),
        label("dropout_rate", "0.0"),
    ])?;
    let machine = nas_kernels::machine::machine();
    println!(
        "int8: seed-template `{}` on {}",
        network.key, data.description
    );
    println!(
        "cpu: {} ({}); integer kernels: {}",
        machine.model,
        machine.features.join(" "),
        if nas_kernels::int8::uses_vnni() {
            "AVX-512 VNNI"
        } else {
            "portable"
        }
    );
    let train_config = TrainConfig {
        batch_size: 64,
        ..TrainConfig::default()
    };
    let model = Model::new(&network, &data.task, 1, &cpu)?;
    train(
        &model,
        &data,
        &train_config,
        epochs,
        1,
        None,
        &Cancel::new(),
        &mut |_| {},
    )?;
    let batch = train_config.eval_batch_size;
    let cancel = Cancel::new();
    let float_pass = |x: &Tensor| model.forward(x, false, None);
    let quantized = [Calibration::MinMax, Calibration::Percentile]
        .into_iter()
        .map(|calibration| {
            let quantize = QuantizeConfig {
                enabled: true,
                calibration,
                ..QuantizeConfig::default()
            };
            let q = Quantized::new(&model, &network, &data.task, &data.train, 64, &quantize)?;
            Ok((format!("int8 ({calibration:?})"), q))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rows: Vec<(String, &Pass, f64)> = vec![(
        "float32".to_string(),
        &float_pass,
        model.analysis().params() as f64 * 4.0 / 1024.0,
    )];
    let passes: Vec<_> = quantized
        .iter()
        .map(|(_, q)| move |x: &Tensor| q.forward(x))
        .collect();
    for ((name, q), pass) in quantized.iter().zip(&passes) {
        rows.push((name.clone(), pass, q.size_bytes as f64 / 1024.0));
    }
    // The models' latencies interleaved, round after round, so that a
    // slow spell of the machine does not land on one of them only.
    let mut times = vec![(Vec::new(), Vec::new()); rows.len()];
    for _ in 0..ROUNDS {
        for ((_, pass, _), (b1, b64)) in rows.iter().zip(times.iter_mut()) {
            b1.push(pass_latency_ms(*pass, &cpu, &data, 1, REPEATS, &cancel)?);
            b64.push(pass_latency_ms(*pass, &cpu, &data, 64, REPEATS, &cancel)?);
        }
    }
    println!("trained {epochs} epochs at batch 64; latency: median of {ROUNDS} interleaved rounds of {REPEATS} passes");
    println!(
        "{:<22} {:>8} {:>9} {:>9} {:>10} {:>9}",
        "model", "val acc", "test acc", "b1 ms", "b64 ms", "size KiB"
    );
    for ((name, pass, size), (b1, b64)) in rows.iter().zip(times) {
        let (_, val) = evaluate_pass(*pass, &cpu, &data.val, batch)?;
        let (_, test) = evaluate_pass(*pass, &cpu, &data.test, batch)?;
        println!(
            "{name:<22} {val:>8.4} {test:>9.4} {:>9.3} {:>10.3} {size:>9.1}",
            median(b1),
            median(b64)
        );
    }
    Ok(())
}
