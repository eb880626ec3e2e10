//! `nas-host report RUN`: writes the run's self-contained HTML report.

use crate::report::{self, REPORT_FILE};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The run directory (runs/<name>).
    run: PathBuf,
    /// Where to write the HTML file (default: RUN/report.html).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: ReportArgs) -> Result<ExitCode> {
    let out = args.out.unwrap_or_else(|| args.run.join(REPORT_FILE));
    report::write(&args.run, &out)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}
