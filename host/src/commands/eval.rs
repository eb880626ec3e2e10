//! `nas-host eval DIR --config CONFIG [--split test]`: evaluates an exported
//! model on the data a run config describes.

use crate::config::RunConfig;
use crate::network::Model;
use crate::trial::WEIGHTS_FILE;
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Split {
    Train,
    Val,
    Test,
}

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// A folder written by `nas-host export`.
    model: PathBuf,
    /// A run config whose [data] table (and seed) names the data.
    #[arg(long)]
    config: PathBuf,
    /// Which split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
}

pub(crate) fn run(args: EvalArgs) -> Result<ExitCode> {
    let config = RunConfig::load(&args.config)?;
    let (task, network) = crate::export::read_architecture(&args.model)?;
    let device = crate::device::parse(&config.run.device)?;
    let data = crate::data::load(
        &config.data,
        config.data.seed.unwrap_or(config.run.seed),
        &device,
    )?;
    if data.task != task {
        bail!(
            "the model was built for {task:?}, but {} gives {:?}",
            args.config.display(),
            data.task
        );
    }
    let model = Model::new(&network, &task, 0, &device)?;
    model.load(&args.model.join(WEIGHTS_FILE))?;
    let split = match args.split {
        Split::Train => &data.train,
        Split::Val => &data.val,
        Split::Test => &data.test,
    };
    let (loss, accuracy) = crate::train::evaluate(&model, split, config.train.eval_batch_size)?;
    println!(
        "{}",
        serde_json::json!({"split": format!("{:?}", args.split).to_lowercase(), "images": split.len(), "accuracy": accuracy, "loss": loss})
    );
    Ok(ExitCode::SUCCESS)
}
