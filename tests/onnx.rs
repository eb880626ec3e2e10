//! ONNX export checked by the ONNX checker and onnxruntime (PyPI; installed
//! by scripts/test.sh): networks covering every IR op and every convolution
//! and pooling variant, float and int8 (QDQ), and a model trained on
//! Fashion-MNIST with `[quantize]` and exported by `nas-host export --format
//! onnx`, give nas-host's outputs. In CI
//! (`NAS_REQUIRE_ONNXRUNTIME=1`) onnxruntime must be there; elsewhere the
//! tests say loudly that they were skipped.

mod common;

use candle_core::{Device, Tensor};
use common::nas_host;
use common::networks::{cases, input, model, TASK};
use nas_host::ir::{Network, Task};
use nas_host::network::Model;
use nas_host::onnx::encode;
use nas_host::quant::{
    calibrate_batches, read_grids, Int8Network, Int8Pass, QuantizeConfig, INT8_FILE,
};
use std::path::Path;
use std::process::Command;

/// Float outputs agree within this (relative and absolute, numpy.allclose).
const FLOAT_TOLERANCE: f64 = 1e-4;
/// Int8 outputs agree within this fraction of the largest output magnitude:
/// onnxruntime adds the products in float, nas-host in integers, and a
/// layer input a rounding away from a step of its grid can land on the
/// next code (on the trained model, 99.9 percent of the outputs agree
/// within 2e-6 and the rest within 0.3 percent).
const INT8_TOLERANCE: f64 = 1e-2;

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

/// A float model (outputs within [`FLOAT_TOLERANCE`], relative and
/// absolute) or an int8 one ([`INT8_TOLERANCE`] of the largest output).
#[derive(Clone, Copy)]
enum Kind {
    Float,
    Int8,
}

/// Writes a case folder for tests/onnx_check.py.
fn write_case(
    dir: &Path,
    onnx: &[u8],
    input: &Tensor,
    expected: &Tensor,
    kind: Kind,
    same_classes: bool,
) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("model.onnx"), onnx).unwrap();
    std::fs::write(dir.join("input.f32"), le_bytes(input)).unwrap();
    std::fs::write(dir.join("expected.f32"), le_bytes(expected)).unwrap();
    let largest = expected
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let (rtol, atol) = match kind {
        Kind::Float => (FLOAT_TOLERANCE, FLOAT_TOLERANCE),
        Kind::Int8 => (0.0, INT8_TOLERANCE * f64::from(largest)),
    };
    let spec = serde_json::json!({
        "input": input.dims(),
        "rtol": rtol,
        "atol": atol,
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

#[test]
fn every_ir_op_and_variant_exported_as_onnx_float_and_int8_gives_nas_hosts_outputs_in_onnxruntime()
{
    if !onnxruntime_here("every_ir_op_and_variant_exported_as_onnx_float_and_int8_gives_nas_hosts_outputs_in_onnxruntime") {
        return;
    }
    let task = TASK;
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    for (seed, net) in cases.iter().enumerate() {
        let model = model(net, &task, seed as u64);
        let x = input(&task, 3, seed as u64);
        let tensors = model.tensors();
        let expected = model.forward(&x, false, None).unwrap();
        let onnx = encode(net, &task, &tensors, None).unwrap();
        let case = dir.path().join(&net.key);
        write_case(&case, &onnx, &x, &expected, Kind::Float, false);
        // The input is among the calibration batches: no value outside its grid.
        let batches = [input(&task, 4, seed as u64 + 1000), x.clone()];
        let grids = calibrate_batches(&model, &batches, &QuantizeConfig::default()).unwrap();
        let int8 = Int8Network::new(net, &task, &tensors, &grids).unwrap();
        let expected = model.forward_hooked(&x, &mut Int8Pass(&int8)).unwrap();
        let onnx = encode(net, &task, &tensors, Some(&int8)).unwrap();
        let case = dir.path().join(format!("{}-int8", net.key));
        write_case(&case, &onnx, &x, &expected, Kind::Int8, false);
    }
    check_cases(dir.path(), 2 * cases.len());
}

#[test]
fn a_model_trained_on_fashion_mnist_exported_as_onnx_float_and_int8_classifies_its_test_split_as_nas_host_does(
) {
    if !onnxruntime_here("a_model_trained_on_fashion_mnist_exported_as_onnx_float_and_int8_classifies_its_test_split_as_nas_host_does") {
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
[quantize]
enabled = true
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

    // Quantization costs the seed-template network under a point of accuracy.
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported.join("metrics.json")).unwrap())
            .unwrap();
    let (float, int8) = (
        metrics["metrics"]["val_accuracy"].as_f64().unwrap(),
        metrics["metrics"]["int8_val_accuracy"].as_f64().unwrap(),
    );
    assert!((float - int8).abs() <= 0.01, "float {float}, int8 {int8}");

    // nas-host's outputs for the whole test split, float and int8.
    let (task, net) = read_export(&exported);
    let model = Model::new(&net, &task, 0, &Device::Cpu).unwrap();
    model.load(&exported.join("weights.safetensors")).unwrap();
    let run_config = nas_host::config::RunConfig::load(&config).unwrap();
    let data = nas_host::data::load(&run_config.data, 3, &Device::Cpu).unwrap();
    let (x, _) = data.test.tensors(0, data.test.len(), &Device::Cpu).unwrap();
    let cases = dir.path().join("cases");
    let expected = model.forward(&x, false, None).unwrap();
    let onnx = std::fs::read(exported.join("model.onnx")).unwrap();
    let case = cases.join("fashion-mnist-test");
    write_case(&case, &onnx, &x, &expected, Kind::Float, true);
    let grids = read_grids(&exported.join(INT8_FILE)).unwrap();
    let int8 = Int8Network::new(&net, &task, &model.tensors(), &grids).unwrap();
    let expected = model.forward_hooked(&x, &mut Int8Pass(&int8)).unwrap();
    let onnx = std::fs::read(exported.join("model.int8.onnx")).unwrap();
    let case = cases.join("fashion-mnist-test-int8");
    write_case(&case, &onnx, &x, &expected, Kind::Int8, true);
    check_cases(&cases, 2);
}

fn read_export(dir: &Path) -> (Task, Network) {
    let text = std::fs::read_to_string(dir.join("architecture.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    (
        serde_json::from_value(value["task"].clone()).unwrap(),
        serde_json::from_value(value["network"].clone()).unwrap(),
    )
}
