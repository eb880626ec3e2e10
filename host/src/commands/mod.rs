//! The subcommands of `nas-host`: argument parsing and dispatch.

mod compare;
mod eval;
mod export;
mod plugins;
mod report;
mod resume;
mod run;
mod status;
mod trial;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Neural architecture search with sandboxed WebAssembly strategies and search spaces.
#[derive(Debug, Parser)]
#[command(name = "nas-host", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a search: `nas-host run CONFIG.toml`.
    Run(run::RunArgs),
    /// Continue a run after a crash, kill or Ctrl-C, or with new limits: `nas-host resume runs/NAME`.
    Resume(resume::ResumeArgs),
    /// Compare strategies over several seeds (best-so-far curves, CSV and SVG).
    Compare(compare::CompareArgs),
    /// Show a run's progress, best so far and failures (safe while it runs).
    Status(status::StatusArgs),
    /// Write the run's HTML report (charts, trials table, best architecture): `nas-host report runs/NAME`.
    Report(report::ReportArgs),
    /// Export a trial's model (default: the best) and all trials as CSV and JSON.
    Export(export::ExportArgs),
    /// Evaluate an exported model on the data of a run config.
    Eval(eval::EvalArgs),
    /// Run exactly one trial from a spec file and write its result.
    Trial(trial::TrialArgs),
    /// List the built-in plugins, or inspect one plugin.
    Plugins(plugins::PluginsArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Resume(args) => resume::run(args),
        Command::Trial(args) => trial::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Status(args) => status::run(args),
        Command::Report(args) => report::run(args),
        Command::Export(args) => export::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Plugins(args) => plugins::run(args),
    }
}
