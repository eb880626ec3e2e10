//! The subcommands of `nas-host`: argument parsing and dispatch.

mod compare;
mod plugins;
mod run;
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
    /// Compare strategies over several seeds (best-so-far curves, CSV and SVG).
    Compare(compare::CompareArgs),
    /// Run exactly one trial from a spec file and write its result.
    Trial(trial::TrialArgs),
    /// List the built-in plugins, or inspect one plugin.
    Plugins(plugins::PluginsArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Trial(args) => trial::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Plugins(args) => plugins::run(args),
    }
}
