//! Getting results out of a run: a trial's model (architecture JSON,
//! safetensors weights, summary, metrics) for use elsewhere or with
//! `nas-host eval`, optionally as ONNX for inference runtimes, and every
//! trial as CSV and JSON for pandas or spreadsheets.

use crate::ir::{Network, Task, TrialStatus};
use crate::network::summary;
use crate::store::{status_text, RunStore, TrialRecord, DB_FILE};
use crate::trial::WEIGHTS_FILE;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// What `export` writes besides the trial's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// architecture.json and weights.safetensors, which nas-host reads.
    Native,
    /// Those and model.onnx (and model.int8.onnx for a quantized trial).
    Onnx,
}

/// The ONNX model's file name in an export folder.
pub const ONNX_FILE: &str = "model.onnx";
/// The int8 ONNX model's (QDQ form) file name in an export folder, for a
/// trial of a run with `[quantize]`.
pub const ONNX_INT8_FILE: &str = "model.int8.onnx";

/// The task a run's networks were built for.
pub fn run_task(store: &RunStore) -> Result<Task> {
    let text = store
        .meta("task")?
        .context("the run database records no task")?;
    Ok(serde_json::from_str(&text)?)
}

/// Writes trial `trial` (default: the run's best) of the run in `run_dir` to
/// `out`, with `trials.csv` and `trials.json` of all trials, and as ONNX
/// when `format` says so. Returns the exported trial.
pub fn export(
    run_dir: &Path,
    trial: Option<u64>,
    out: &Path,
    format: Format,
) -> Result<TrialRecord> {
    let store = RunStore::open_read_only(&run_dir.join(DB_FILE))?;
    let trials = store.trials()?;
    let id = match trial {
        Some(id) => id,
        None => store.meta("best_trial")?.context("the run has no best trial yet (none completed, or it is still running): pass --trial N")?.parse()?,
    };
    let t = trials
        .iter()
        .find(|t| t.id == id)
        .with_context(|| format!("run {} has no trial {id}", run_dir.display()))?;
    if t.status != TrialStatus::Completed {
        bail!(
            "trial {id} is {}, not completed: nothing to export",
            status_text(t.status)
        );
    }
    let network = t.network.as_ref().context("the trial has no network")?;
    let task = run_task(&store)?;
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    std::fs::write(
        out.join("architecture.json"),
        serde_json::to_string_pretty(&serde_json::json!({"task": task, "network": network}))?,
    )?;
    std::fs::write(out.join("summary.txt"), summary(network, &task)?)?;
    std::fs::write(out.join("metrics.json"), serde_json::to_string_pretty(t)?)?;
    let weights = t.weights_in(run_dir)?;
    if let Some(w) = &weights {
        std::fs::copy(w, out.join(WEIGHTS_FILE))
            .with_context(|| format!("copy the weights {}", w.display()))?;
        let grids = w.with_file_name(crate::quant::INT8_FILE);
        if grids.exists() {
            std::fs::copy(&grids, out.join(crate::quant::INT8_FILE))
                .with_context(|| format!("copy {}", grids.display()))?;
        }
    }
    if format == Format::Onnx {
        let w = weights.with_context(|| {
            format!("trial {id} kept no weights, so there is no model to write as ONNX")
        })?;
        // Loaded into a model first: its names and shapes are checked there.
        let model = crate::network::Model::new(network, &task, 0, &candle_core::Device::Cpu)?;
        model.load(&w)?;
        let tensors = model.tensors();
        let write = |file: &str, int8: Option<&crate::quant::Int8Network>| -> Result<()> {
            let bytes = crate::onnx::encode(network, &task, &tensors, int8)
                .with_context(|| format!("trial {id} as ONNX"))?;
            let path = out.join(file);
            std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))
        };
        write(ONNX_FILE, None)?;
        let grids = w.with_file_name(crate::quant::INT8_FILE);
        if grids.exists() {
            let grids = crate::quant::read_grids(&grids)?;
            let int8 = crate::quant::Int8Network::new(network, &task, &tensors, &grids)
                .with_context(|| format!("trial {id} in int8"))?;
            write(ONNX_INT8_FILE, Some(&int8))?;
        }
    }
    std::fs::write(
        out.join("trials.json"),
        serde_json::to_string_pretty(&trials)?,
    )?;
    std::fs::write(out.join("trials.csv"), trials_csv(&trials))?;
    Ok(t.clone())
}

/// Reads an exported model folder: its task and network.
pub fn read_architecture(dir: &Path) -> Result<(Task, Network)> {
    let path = dir.join("architecture.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (export a model with `nas-host export`)",
            path.display()
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let task = serde_json::from_value(value["task"].clone())
        .with_context(|| format!("{}: no valid `task`", path.display()))?;
    let network = serde_json::from_value(value["network"].clone())
        .with_context(|| format!("{}: no valid `network`", path.display()))?;
    Ok((task, network))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// One row per trial: identity, status, budget, seed, timing, then every metric.
pub fn trials_csv(trials: &[TrialRecord]) -> String {
    let metrics: BTreeSet<&String> = trials.iter().flat_map(|t| t.metrics.keys()).collect();
    let mut out =
        String::from("id,status,key,assignment,budget,seed,seconds,reused_from,tag,reason");
    for m in &metrics {
        out += &format!(",{m}");
    }
    out.push('\n');
    for t in trials {
        let fields = [
            t.id.to_string(),
            status_text(t.status).to_string(),
            t.key.clone().unwrap_or_default(),
            crate::assignment::text(&t.assignment),
            t.budget.to_string(),
            t.seed.to_string(),
            t.seconds.to_string(),
            t.reused_from.map(|r| r.to_string()).unwrap_or_default(),
            t.tag.clone(),
            t.reason.clone().unwrap_or_default(),
        ];
        out += &fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",");
        for m in &metrics {
            out += &format!(
                ",{}",
                t.metrics.get(*m).map(|v| v.to_string()).unwrap_or_default()
            );
        }
        out.push('\n');
    }
    out
}
