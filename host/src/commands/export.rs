//! `nas-host export RUN [--trial N] [--format onnx] --out DIR`.

use crate::export::Format;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The run directory (runs/<name>).
    run: PathBuf,
    /// The trial to export (default: the run's best).
    #[arg(long)]
    trial: Option<u64>,
    /// Where to write architecture.json, weights.safetensors, summary.txt, metrics.json, trials.csv and trials.json.
    #[arg(long)]
    out: PathBuf,
    /// `onnx` also writes model.onnx, the model as ONNX for inference runtimes (and model.int8.onnx, its int8 form in QDQ, for a run with [quantize]).
    #[arg(long, value_enum, default_value = "native")]
    format: Format,
}

pub(crate) fn run(args: ExportArgs) -> Result<ExitCode> {
    let t = crate::export::export(&args.run, args.trial, &args.out, args.format)?;
    println!(
        "exported trial {} ({}) to {}",
        t.id,
        t.key.unwrap_or_default(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
