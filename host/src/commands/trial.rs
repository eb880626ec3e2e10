//! `nas-host trial --spec SPEC.json`: runs exactly one trial, as a worker
//! process would, and writes its result file next to its weights.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct TrialArgs {
    /// A trial spec (JSON), as written by a run.
    #[arg(long)]
    spec: PathBuf,
}

pub(crate) fn run(args: TrialArgs) -> Result<ExitCode> {
    let outcome = crate::trial::run_spec_file(&args.spec)?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(ExitCode::SUCCESS)
}
