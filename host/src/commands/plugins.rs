//! `nas-host plugins`: lists built-ins with their config keys, and inspects a
//! plugin's world, version, config keys and (for a space) its dimensions.

use crate::ir::{Dimension, Domain, PluginInfo, Task};
use crate::plugin::{
    builtin, ComponentCache, PluginKind, PluginLimits, PluginRuntime, PluginSource,
};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct PluginsArgs {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Show one plugin: world, version, config keys, and a space's dimensions.
    Inspect {
        /// `builtin:NAME` or the path of a component file.
        plugin: String,
        /// For a search space: the task, as CHANNELSxHEIGHTxWIDTH:CLASSES.
        #[arg(long, default_value = "1x28x28:10")]
        task: String,
        /// For a search space: its config table as JSON.
        #[arg(long, default_value = "{}")]
        config: String,
    },
}

pub(crate) fn run(args: PluginsArgs) -> Result<ExitCode> {
    let runtime = PluginRuntime::new(PluginLimits::default(), ComponentCache::default_location())?;
    let text = match args.action {
        None => list(&runtime)?,
        Some(Action::Inspect {
            plugin,
            task,
            config,
        }) => inspect(
            &runtime,
            &PluginSource::parse(&plugin)?,
            Task::parse(&task).context("--task")?,
            &config,
        )?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn list(runtime: &PluginRuntime) -> Result<String> {
    let mut out = String::new();
    for name in builtin::names() {
        let source = PluginSource::Builtin(name.to_string());
        let loaded = runtime.load(&source)?;
        let info = info_of(runtime, &source, loaded.kind)?;
        writeln!(
            out,
            "builtin:{name}  ({}, v{})  {}",
            kind_label(loaded.kind),
            info.version,
            info.description
        )?;
        out.push_str(&config_keys(&info));
    }
    Ok(out)
}

fn inspect(
    runtime: &PluginRuntime,
    source: &PluginSource,
    task: Task,
    config: &str,
) -> Result<String> {
    let loaded = runtime.load(source)?;
    let info = info_of(runtime, source, loaded.kind)?;
    let mut out = String::new();
    writeln!(out, "plugin:      {source}")?;
    writeln!(out, "name:        {}", info.name)?;
    writeln!(out, "version:     {}", info.version)?;
    writeln!(
        out,
        "world:       nas:plugin/{}@{}",
        loaded.kind.world(),
        loaded.version
    )?;
    writeln!(out, "description: {}", info.description)?;
    writeln!(out, "config keys:")?;
    out.push_str(&config_keys(&info));
    if loaded.kind == PluginKind::SearchSpace {
        let mut space = runtime.search_space(source)?;
        let dims = space.init(config, task)?;
        writeln!(
            out,
            "dimensions for task {}x{}x{} with {} classes:",
            task.channels, task.height, task.width, task.num_classes
        )?;
        for d in &dims {
            writeln!(out, "  {}", dimension_text(d))?;
        }
    }
    Ok(out)
}

fn info_of(runtime: &PluginRuntime, source: &PluginSource, kind: PluginKind) -> Result<PluginInfo> {
    match kind {
        PluginKind::Strategy => runtime.strategy(source)?.info(),
        PluginKind::SearchSpace => runtime.search_space(source)?.info(),
    }
}

fn kind_label(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Strategy => "strategy",
        PluginKind::SearchSpace => "search space",
    }
}

fn config_keys(info: &PluginInfo) -> String {
    if info.config.is_empty() {
        return "    (no config keys)\n".into();
    }
    info.config
        .iter()
        .map(|k| format!("    {} = {}  # {}\n", k.name, k.default, k.help))
        .collect()
}

/// One line describing a dimension: name, domain, condition.
pub(crate) fn dimension_text(d: &Dimension) -> String {
    let domain = match &d.domain {
        Domain::Categorical(labels) => format!("one of [{}]", labels.join(", ")),
        Domain::Integer(r) => format!(
            "integer {}..={}{}",
            r.low,
            r.high,
            if r.log { " (log)" } else { "" }
        ),
        Domain::Real(r) => format!(
            "real {}..{}{}",
            r.low,
            r.high,
            if r.log { " (log)" } else { "" }
        ),
    };
    match &d.condition {
        None => format!("{}: {domain}", d.name),
        Some(c) => format!(
            "{}: {domain}, when {} in [{}]",
            d.name,
            c.parent,
            c.labels.join(", ")
        ),
    }
}
