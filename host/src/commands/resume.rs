//! `nas-host resume RUN`: continues a run that was killed, interrupted or
//! that finished, optionally with new limits.

use super::run::conclude;
use crate::progress::{Mode, Reporter};
use crate::search::{self, Overrides};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The run directory (runs/<name>).
    run: PathBuf,
    /// A new [run] max_trials (to search further than first planned).
    #[arg(long)]
    max_trials: Option<u64>,
    /// A new [run] max_time_s, counted over the whole run.
    #[arg(long)]
    max_time_s: Option<f64>,
    /// Show no progress, only the final summary.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Print one JSON object per event on stdout, for scripts.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ResumeArgs) -> Result<ExitCode> {
    let mode = Mode::from_flags(args.quiet, args.json);
    let overrides = Overrides {
        max_trials: args.max_trials,
        max_time_s: args.max_time_s,
    };
    let cancel = crate::interrupt::Cancel::on_ctrl_c();
    let result = search::resume(&args.run, &overrides, &mut Reporter::new(mode), &cancel)?;
    conclude(&result, mode)
}
