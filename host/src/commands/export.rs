//! `nas-host export RUN [--trial N] --out DIR`.

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
}

pub(crate) fn run(args: ExportArgs) -> Result<ExitCode> {
    let t = crate::export::export(&args.run, args.trial, &args.out)?;
    println!(
        "exported trial {} ({}) to {}",
        t.id,
        t.key.unwrap_or_default(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
