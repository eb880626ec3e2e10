//! The run configuration (`nas-host run CONFIG.toml`): its tables, defaults,
//! and parsing with errors that name the file, the line, the key and the
//! nearest valid key.

use crate::data::DataConfig;
use crate::plugin::PluginLimits;
use crate::train::TrainConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[run]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Name of the run; its directory is `output_dir/name` (default: the config file's stem).
    pub name: Option<String>,
    /// Where run directories go (default `runs`).
    pub output_dir: PathBuf,
    /// Seed of the strategy, the data split and every trial (default 0).
    pub seed: u64,
    /// Stop after this many trials (default 20).
    pub max_trials: u64,
    /// Stop starting trials after this many seconds (default: no limit).
    pub max_time_s: Option<f64>,
    /// `cpu` (default) or `cuda:N` (needs a build with `--features cuda`).
    pub device: String,
    /// Stop the run when this many trials failed (an integer), or when this
    /// fraction of them failed once at least 10 ran (a number below 1).
    pub max_failures: Option<MaxFailures>,
}

/// `max_failures`: a count or a fraction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxFailures {
    /// Stop once more than this many trials failed.
    Count(u64),
    /// Stop once more than this fraction of at least 10 trials failed.
    Fraction(f64),
}

impl MaxFailures {
    /// Why the run must stop, if `failed` of `total` trials break the limit.
    pub fn exceeded(&self, failed: u64, total: u64) -> Option<String> {
        match *self {
            MaxFailures::Count(max) if failed > max => Some(format!(
                "{failed} of {total} trials failed, more than max_failures = {max}"
            )),
            MaxFailures::Fraction(f) if total >= 10 && failed as f64 > f * total as f64 => Some(
                format!("{failed} of {total} trials failed, more than max_failures = {f} of them"),
            ),
            _ => None,
        }
    }
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            name: None,
            output_dir: PathBuf::from("runs"),
            seed: 0,
            max_trials: 20,
            max_time_s: None,
            device: "cpu".into(),
            max_failures: None,
        }
    }
}

/// A plugin and its own config table (`[space]`, `[strategy]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSection {
    /// `builtin:NAME` or the path of a component file (relative to the config file).
    pub plugin: String,
    /// The plugin's own keys, passed to it as JSON.
    #[serde(default)]
    pub config: toml::Table,
}

/// Whether an objective is minimised or maximised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectionConfig {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

/// One `[[objectives]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// A trial metric, such as `val_accuracy`, `val_loss`, `params`, `flops` or `latency_b1_ms`.
    pub metric: String,
    /// `maximize` or `minimize`.
    pub direction: DirectionConfig,
}

impl ObjectiveConfig {
    /// The objective as the plugin contract states it.
    pub fn objective(&self) -> crate::ir::Objective {
        use crate::ir::Direction;
        crate::ir::Objective {
            metric: self.metric.clone(),
            direction: match self.direction {
                DirectionConfig::Maximize => Direction::Maximize,
                DirectionConfig::Minimize => Direction::Minimize,
            },
        }
    }
}

/// Metrics every completed trial records, usable as objectives.
pub const METRICS: &[&str] = &[
    "val_accuracy",
    "val_loss",
    "train_loss",
    "params",
    "flops",
    "memory_mb",
    "latency_b1_ms",
    "latency_batch_ms",
    "train_seconds",
];

/// Metrics of a trial scored by zero-cost proxies only (`[evaluator] kind
/// = "proxy"`), besides the proxies it lists.
pub const PROXY_MODE_METRICS: &[&str] = &["params", "flops", "memory_mb", "proxy_seconds"];

/// Default examples in the zero-cost proxies' minibatch.
pub const DEFAULT_PROXY_BATCH: usize = 64;
/// Most examples in the zero-cost proxies' minibatch (naswot and jacob_cov
/// build a matrix of this side).
pub const MAX_PROXY_BATCH: usize = 1024;

/// Metrics of the int8 model, which completed trials record when
/// `[quantize] enabled = true`.
pub const INT8_METRICS: &[&str] = &[
    "int8_val_accuracy",
    "int8_val_loss",
    "int8_size_kb",
    "int8_latency_b1_ms",
    "int8_latency_batch_ms",
];

/// A whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// `[run]`.
    #[serde(default)]
    pub run: RunSection,
    /// `[data]`.
    #[serde(default)]
    pub data: DataConfig,
    /// `[train]`.
    #[serde(default)]
    pub train: TrainConfig,
    /// `[space]` (default: `builtin:seed-template`).
    #[serde(default = "default_space")]
    pub space: PluginSection,
    /// `[strategy]` (default: `builtin:random`).
    #[serde(default = "default_strategy")]
    pub strategy: PluginSection,
    /// `[[objectives]]` (default: maximise `val_accuracy`).
    #[serde(default = "default_objectives")]
    pub objectives: Vec<ObjectiveConfig>,
    /// `[plugins]`: sandbox limits.
    #[serde(default)]
    pub plugins: PluginLimits,
    /// `[evaluator]`: train every trial (default) or look it up in a table.
    #[serde(default)]
    pub evaluator: EvaluatorConfig,
    /// `[constraints]`: hardware limits; a proposal over one is infeasible and not trained.
    #[serde(default)]
    pub constraints: Constraints,
    /// `[executor]`: where trials run (this process, worker processes, Slurm).
    #[serde(default)]
    pub executor: crate::executor::ExecutorConfig,
    /// `[quantize]`: int8 quantization of every completed trial.
    #[serde(default)]
    pub quantize: crate::quant::QuantizeConfig,
    /// `[distill]`: every trial also learns from a trained teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<crate::train::distill::DistillConfig>,
    /// `[pruner]`: stop trials whose learning curves fall behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruner: Option<crate::prune::PrunerConfig>,
    /// The `[train]` keys written as a domain, searched with the architecture.
    #[serde(skip)]
    pub searched: Vec<crate::train::searched::SearchedKey>,
}

/// The `[constraints]` table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Constraints {
    /// Most trainable parameters.
    pub max_params: Option<u64>,
    /// Most FLOPs of one sample's forward pass.
    pub max_flops: Option<u64>,
    /// Most milliseconds of a batch-1 forward pass, measured before training (training mode only).
    pub max_latency_ms: Option<f64>,
    /// Most MiB of estimated training memory at the training batch size (metric `memory_mb`).
    pub max_memory_mb: Option<f64>,
    /// Most KiB of the int8 model (metric `int8_size_kb`; needs `[quantize]`).
    pub max_int8_size_kb: Option<f64>,
    /// Most milliseconds of the int8 model's batch-1 pass, measured before
    /// training (metric `int8_latency_b1_ms`; needs `[quantize]`).
    pub max_int8_latency_ms: Option<f64>,
}

/// How trials are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluatorKind {
    /// Train each network with candle (default).
    #[default]
    Train,
    /// Look each architecture key up in a CSV table (research mode).
    Table,
    /// Score each network with zero-cost proxies instead of training it.
    Proxy,
}

/// The `[evaluator]` table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluatorConfig {
    /// `train` (default), `table` or `proxy`.
    pub kind: EvaluatorKind,
    /// Zero-cost proxies to score (`naswot`, `synflow`, `grad_norm`,
    /// `snip`, `jacob_cov`): before training (kind `train`), or instead of
    /// it (kind `proxy`, where none listed means all five).
    pub proxies: Vec<crate::proxy::Proxy>,
    /// Examples in the proxies' minibatch, the first of the training split (default 64).
    pub proxy_batch: Option<usize>,
    /// Table only: the task the space builds for, as CxHxW:CLASSES (default 3x32x32:10).
    pub task: Option<String>,
    /// Table only: the CSV file.
    pub path: Option<PathBuf>,
    /// Table only: the column of architecture keys.
    pub key_column: Option<String>,
    /// Table only: metric name -> column.
    pub metrics: std::collections::BTreeMap<String, String>,
    /// Table only: budget in epochs -> metric name -> column.
    pub fidelities: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Table only: column of simulated training seconds.
    pub cost_column: Option<String>,
    /// Table only: budget in epochs -> cost column.
    pub fidelity_costs: std::collections::BTreeMap<String, String>,
    /// Table only: whether a reused trial (a repeated architecture, whose
    /// result is copied) costs its first evaluation's simulated seconds
    /// again; default false: the look-up is free, but the trial counts.
    pub charge_reused: bool,
    /// Table only: the epochs the `metrics` columns were trained for (200
    /// for NAS-Bench-201's), recorded as the budget of a trial without one.
    pub budget: Option<u32>,
    /// Table only: accept a table that lacks some of the space's
    /// architectures (checked before the run starts); a trial of a missing
    /// one fails. Default false: a missing architecture is an error.
    pub allow_partial: bool,
    /// Whether the table's coverage of the space was already checked (by
    /// `compare`, once for all its runs).
    #[serde(skip)]
    pub coverage_checked: bool,
}

impl EvaluatorConfig {
    /// The table settings; errors name the missing `[evaluator]` key.
    pub fn table(&self) -> Result<crate::table::TableConfig> {
        let path = self
            .path
            .clone()
            .context("[evaluator] kind = \"table\" needs `path`, the CSV file")?;
        let key_column = self.key_column.clone().context(
            "[evaluator] kind = \"table\" needs `key_column`, the column of architecture keys",
        )?;
        if self.metrics.is_empty() {
            bail!("[evaluator] kind = \"table\" needs [evaluator.metrics], for example val_accuracy = \"val_acc\"");
        }
        Ok(crate::table::TableConfig {
            path,
            key_column,
            metrics: self.metrics.clone(),
            fidelities: self.fidelities.clone(),
            cost_column: self.cost_column.clone(),
            fidelity_costs: self.fidelity_costs.clone(),
            allow_partial: self.allow_partial,
            budget: self.budget,
        })
    }

    /// What each trial scores: `proxies` (all five in proxy mode when none
    /// are listed) on `proxy_batch` examples.
    pub fn proxy_plan(&self) -> crate::proxy::ProxyPlan {
        let only = self.kind == EvaluatorKind::Proxy;
        let proxies = if only && self.proxies.is_empty() {
            crate::proxy::Proxy::ALL.to_vec()
        } else {
            self.proxies.clone()
        };
        crate::proxy::ProxyPlan {
            proxies,
            batch: self.proxy_batch.unwrap_or(DEFAULT_PROXY_BATCH),
            only,
        }
    }

    /// The task of table mode.
    pub fn task(&self) -> Result<crate::ir::Task> {
        crate::ir::Task::parse(self.task.as_deref().unwrap_or("3x32x32:10"))
            .context("[evaluator] task")
    }

    fn validate(&self) -> Result<()> {
        if let Some(b) = self.proxy_batch {
            if !(2..=MAX_PROXY_BATCH).contains(&b) {
                bail!("[evaluator] proxy_batch = {b} must be between 2 and {MAX_PROXY_BATCH} examples");
            }
        }
        for (i, p) in self.proxies.iter().enumerate() {
            if self.proxies[..i].contains(p) {
                bail!("[evaluator] proxies lists `{}` twice", p.name());
            }
        }
        match self.kind {
            EvaluatorKind::Table => {
                self.table()?;
                self.task()?;
                let budget = self.budget.context(
                    "[evaluator] kind = \"table\" needs `budget`, the epochs the [evaluator.metrics] columns were trained for (200 for NAS-Bench-201's): trials record it",
                )?;
                if budget == 0 || budget > crate::train::MAX_EPOCHS {
                    bail!(
                        "[evaluator] budget = {budget} must be between 1 and {}",
                        crate::train::MAX_EPOCHS
                    );
                }
                if self.fidelities.contains_key(&budget.to_string()) {
                    bail!("[evaluator.fidelities.{budget}] is the full budget, [evaluator] budget; map those columns under [evaluator.metrics]");
                }
                if !self.proxies.is_empty() || self.proxy_batch.is_some() {
                    bail!("[evaluator] proxies score networks on data, and table mode has none; use kind = \"proxy\" or \"train\"");
                }
            }
            EvaluatorKind::Train | EvaluatorKind::Proxy => {
                let table_keys = [
                    self.task.is_some(),
                    self.path.is_some(),
                    self.key_column.is_some(),
                    !self.metrics.is_empty(),
                    self.cost_column.is_some(),
                    self.allow_partial,
                    self.budget.is_some(),
                    self.charge_reused,
                ];
                if table_keys.iter().any(|&set| set) {
                    bail!("[evaluator] has table keys but kind is not \"table\"; add kind = \"table\" or remove them");
                }
            }
        }
        Ok(())
    }
}

fn default_space() -> PluginSection {
    PluginSection {
        plugin: "builtin:seed-template".into(),
        config: toml::Table::new(),
    }
}

fn default_strategy() -> PluginSection {
    PluginSection {
        plugin: "builtin:random".into(),
        config: toml::Table::new(),
    }
}

fn default_objectives() -> Vec<ObjectiveConfig> {
    vec![ObjectiveConfig {
        metric: "val_accuracy".into(),
        direction: DirectionConfig::Maximize,
    }]
}

impl RunConfig {
    /// The config as the run records it (`config.toml` and the store):
    /// every key resolved, and in table mode without what does not apply
    /// there (the data, the executor, and training keys but `batch_size`,
    /// which the memory estimate uses).
    pub fn recorded_text(&self) -> Result<String> {
        let mut value = toml::Table::try_from(self)?;
        if let Some(toml::Value::Table(train)) = value.get_mut("train") {
            crate::train::searched::record(&self.searched, train);
        }
        if self.evaluator.kind == EvaluatorKind::Table {
            value.remove("data");
            value.remove("executor");
            if let Some(toml::Value::Table(train)) = value.get_mut("train") {
                train.retain(|k, _| k == "batch_size");
            }
        }
        Ok(toml::to_string(&value)?)
    }

    /// Reads and checks `path`; relative plugin and data paths become relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &[])
    }

    /// [`RunConfig::load`] with `overrides` (`TABLE.KEY=VALUE`, such as
    /// `train.epochs=1` or `space.config.max_stages=2`; the value in TOML,
    /// a bare word read as text) set in the file's tables first, so they are
    /// checked exactly as the file is.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self> {
        let mut text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut origin = path.display().to_string();
        if !overrides.is_empty() {
            // A file that is not TOML gets its own error, with its lines, below.
            if let Ok(mut table) = toml::from_str::<toml::Table>(&text) {
                for o in overrides {
                    set_override(&mut table, o)?;
                }
                text = toml::to_string(&table)?;
                origin = format!("{origin} with --set {}", overrides.join(" --set "));
            }
        }
        let mut config = Self::parse(&text, &origin)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for section in [&mut config.space, &mut config.strategy] {
            if !section.plugin.starts_with("builtin:") && Path::new(&section.plugin).is_relative() {
                section.plugin = base.join(&section.plugin).display().to_string();
            }
        }
        if let Some(distill) = config.distill.as_mut() {
            crate::train::distill::rebase(distill, base);
        }
        for p in [config.data.path.as_mut(), config.evaluator.path.as_mut()]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if config.run.name.is_none() {
            config.run.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        }
        config.validate().with_context(|| format!("in {origin}"))?;
        Ok(config)
    }

    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let fail = |text: &str, e: toml::de::Error| anyhow::anyhow!(explain(text, origin, &e));
        let mut table: toml::Table = toml::from_str(text).map_err(|e| fail(text, e))?;
        let searched = match table.get_mut("train") {
            Some(toml::Value::Table(train)) => {
                crate::train::searched::extract(train).with_context(|| format!("in {origin}"))?
            }
            _ => Vec::new(),
        };
        if searched.is_empty() {
            return toml::from_str::<RunConfig>(text).map_err(|e| fail(text, e));
        }
        let rest = toml::to_string(&table)?;
        let config = toml::from_str::<RunConfig>(&rest).map_err(|e| fail(&rest, e))?;
        Ok(RunConfig { searched, ..config })
    }

    /// Checks values and combinations across tables.
    pub fn validate(&self) -> Result<()> {
        match self.run.max_failures {
            Some(MaxFailures::Fraction(f)) if !(f > 0.0 && f < 1.0) => {
                bail!("[run] max_failures = {f}: a fraction must be between 0 and 1 (or give a whole number of trials)")
            }
            _ => {}
        }
        if self.run.max_trials == 0 {
            bail!("[run] max_trials must be at least 1 (default 20)");
        }
        if let Some(t) = self.run.max_time_s.filter(|t| !(*t > 0.0 && t.is_finite())) {
            bail!("[run] max_time_s = {t} must be a positive number of seconds");
        }
        if self
            .run
            .name
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.contains(['/', '\\']) || n == "." || n == "..")
        {
            bail!("[run] name must be a plain folder name (no slashes)");
        }
        self.data.validate()?;
        self.train.validate()?;
        self.plugins.validate()?;
        self.evaluator.validate()?;
        if self
            .constraints
            .max_latency_ms
            .is_some_and(|l| l.is_nan() || l <= 0.0)
        {
            bail!("[constraints] max_latency_ms must be a positive number of milliseconds");
        }
        if self
            .constraints
            .max_memory_mb
            .is_some_and(|m| m.is_nan() || m <= 0.0)
        {
            bail!("[constraints] max_memory_mb must be a positive number of MiB");
        }
        for (key, value) in [
            ("max_int8_size_kb", self.constraints.max_int8_size_kb),
            ("max_int8_latency_ms", self.constraints.max_int8_latency_ms),
        ] {
            match value {
                Some(v) if v.is_nan() || v <= 0.0 => {
                    bail!("[constraints] {key} = {v} must be a positive number")
                }
                Some(_) if !self.quantize.enabled => bail!(
                    "[constraints] {key} limits the int8 model, which only [quantize] enabled = true makes"
                ),
                _ => {}
            }
        }
        self.quantize.validate()?;
        if let Some(distill) = &self.distill {
            distill.validate()?;
            if self.evaluator.kind == EvaluatorKind::Table {
                bail!("[distill] trains with a teacher, and table mode trains nothing");
            }
        }
        if let Some(pruner) = &self.pruner {
            pruner.rule()?;
            if let Some(first) = self.objectives.first() {
                pruner.metric_for(&first.metric)?;
            }
            if self.evaluator.kind == EvaluatorKind::Table {
                bail!("[pruner] stops training, and table mode trains nothing");
            }
        }
        if self.quantize.enabled && self.evaluator.kind == EvaluatorKind::Table {
            bail!("[quantize] needs trained weights, which table mode does not make");
        }
        if !self.searched.is_empty() && self.evaluator.kind == EvaluatorKind::Table {
            bail!("[train] {} is written as a domain, but table mode trains nothing; give it one value", self.searched[0].key);
        }
        if self.constraints.max_latency_ms.is_some() && self.evaluator.kind == EvaluatorKind::Table
        {
            bail!("[constraints] max_latency_ms needs a latency probe, which table mode does not run; use max_params or max_flops");
        }
        if self.evaluator.kind == EvaluatorKind::Proxy {
            let untrained = [
                ("[distill]", self.distill.is_some()),
                ("[pruner]", self.pruner.is_some()),
                ("[quantize]", self.quantize.enabled),
                (
                    "[constraints] max_latency_ms",
                    self.constraints.max_latency_ms.is_some(),
                ),
            ];
            if let Some((what, _)) = untrained.iter().find(|(_, set)| *set) {
                bail!("{what} needs trained or measured networks, but [evaluator] kind = \"proxy\" only scores untrained ones; remove it, or use kind = \"train\" with [evaluator] proxies");
            }
        }
        self.executor.validate(&self.run.device)?;
        if self.executor.kind != crate::executor::ExecutorKind::Local
            && self.evaluator.kind == EvaluatorKind::Table
        {
            bail!("[executor] kind = \"local\" is the only executor for [evaluator] kind = \"table\": look-ups take microseconds");
        }
        if self.objectives.is_empty() {
            bail!("[[objectives]] is empty; give at least one, for example metric = \"val_accuracy\", direction = \"maximize\"");
        }
        if self.evaluator.kind == EvaluatorKind::Table {
            let optimised: Vec<&str> = self.objectives.iter().map(|o| o.metric.as_str()).collect();
            self.evaluator.table()?.check_fidelities(&optimised)?;
        }
        let table_metrics: Vec<&str> = self
            .evaluator
            .metrics
            .keys()
            .map(String::as_str)
            .chain(["params", "flops", "train_seconds"])
            .collect();
        let plan = self.evaluator.proxy_plan();
        let scored = plan
            .proxies
            .iter()
            .map(|p| p.name())
            .chain((!plan.proxies.is_empty()).then_some("proxy_seconds"));
        let trained: Vec<&str> = METRICS
            .iter()
            .chain(if self.quantize.enabled {
                INT8_METRICS
            } else {
                &[]
            })
            .copied()
            .chain(scored.clone())
            .collect();
        let proxy_mode: Vec<&str> = PROXY_MODE_METRICS.iter().copied().chain(scored).collect();
        let valid: &[&str] = match self.evaluator.kind {
            EvaluatorKind::Table => &table_metrics,
            EvaluatorKind::Train => &trained,
            EvaluatorKind::Proxy => &proxy_mode,
        };
        for (i, o) in self.objectives.iter().enumerate() {
            if self.objectives[..i].iter().any(|p| p.metric == o.metric) {
                bail!(
                    "[[objectives]] names metric `{}` twice; each objective needs a metric of its own",
                    o.metric
                );
            }
            if INT8_METRICS.contains(&o.metric.as_str()) && !self.quantize.enabled {
                bail!(
                    "[[objectives]] metric `{}` is measured on the int8 model: add [quantize] enabled = true",
                    o.metric
                );
            }
            if !valid.contains(&o.metric.as_str()) {
                let near = nearest(&o.metric, valid)
                    .map(|n| format!(" Did you mean `{n}`?"))
                    .unwrap_or_default();
                bail!(
                    "[[objectives]] metric `{}` is not a trial metric.{near} Metrics: {}",
                    o.metric,
                    valid.join(", ")
                );
            }
        }
        crate::device::parse(&self.run.device).context("[run] device")?;
        Ok(())
    }

    /// The run's name (set by [`RunConfig::load`], else `run`).
    pub fn name(&self) -> &str {
        self.run.name.as_deref().unwrap_or("run")
    }
}

/// A TOML error as `file:line:column: message`, with the nearest valid key for unknown ones.
/// Sets one `--set TABLE.KEY=VALUE` in `table`, creating the tables on the way.
fn set_override(table: &mut toml::Table, text: &str) -> Result<()> {
    let fail = |why: &str| anyhow::anyhow!("--set {text}: {why}");
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| fail("expected TABLE.KEY=VALUE, such as train.epochs=1"))?;
    let path: Vec<&str> = key.trim().split('.').map(str::trim).collect();
    if path.len() < 2 || path.iter().any(|p| p.is_empty()) {
        return Err(fail(
            "the key names a table and a key, such as train.epochs",
        ));
    }
    let value = value.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, tables) = path.split_last().ok_or_else(|| fail("no key"))?;
    let mut at = table;
    for name in tables {
        let entry = at
            .entry(name.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry
            .as_table_mut()
            .ok_or_else(|| fail(&format!("`{name}` is not a table")))?;
    }
    at.insert(last.to_string(), value);
    Ok(())
}

fn explain(text: &str, origin: &str, e: &toml::de::Error) -> String {
    let location = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{origin}:{line}:{column}")
    });
    let message = e.message().trim().to_string();
    let mut out = format!(
        "{}: {message}",
        location.unwrap_or_else(|| origin.to_string())
    );
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let valid: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        if let Some(near) = nearest(field, &valid) {
            out += &format!("\n  did you mean `{near}`?");
        }
    }
    out
}

/// The valid name `name` abbreviates, else the closest by edit distance when
/// close enough to be a typo.
pub fn nearest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    if let Some(full) = valid
        .iter()
        .filter(|v| name.len() >= 3 && v.starts_with(name))
        .min_by_key(|v| v.len())
    {
        return Some(full);
    }
    valid
        .iter()
        .map(|v| (strsim::levenshtein(name, v), *v))
        .filter(|(d, v)| *d <= (v.len().max(name.len()) / 2).max(2))
        .min()
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_takes_the_documented_defaults() {
        let c = RunConfig::parse("", "x.toml").unwrap();
        assert_eq!(c.space.plugin, "builtin:seed-template");
        assert_eq!(c.strategy.plugin, "builtin:random");
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.run.max_trials, 20);
        assert_eq!(c.objectives[0].metric, "val_accuracy");
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_names_line_and_nearest_key() {
        let e = RunConfig::parse("[run]\nseed = 1\n\n[train]\nepochz = 3\n", "cfg.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cfg.toml:5:1:")
                && e.contains("unknown field `epochz`")
                && e.contains("did you mean `epochs`?"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_and_malformed_toml_name_the_place() {
        let e = RunConfig::parse("[train]\nbatch_size = \"big\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:2:") && e.contains("invalid type"),
            "{e}"
        );
        let e = RunConfig::parse("[train\nepochs = 1\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:1:"), "{e}");
    }

    #[test]
    fn values_past_their_upper_bounds_are_refused_naming_the_key() {
        let bad = |text: &str, want: &str| {
            let c = RunConfig::parse(text, "c.toml").unwrap();
            let e = format!("{:#}", c.validate().unwrap_err());
            assert!(e.contains(want), "`{text}`: {e}");
        };
        bad(
            "[plugins]\ncall_timeout_s = 1e300\n",
            "plugins.call_timeout_s",
        );
        bad(
            "[train]\nlatency_repeats = 100000000000\n",
            "latency_repeats",
        );
        bad(
            "[train]\nepochs = 4294967295\n",
            "epochs must be at least 1 and at most",
        );
        bad("[train]\nbatch_size = 100000000000\n", "batch_size");
        bad("[executor]\nkind = \"process\"\npoll_s = 1e300\n", "poll_s");
    }

    #[test]
    fn out_of_range_and_contradictory_values_are_refused() {
        let bad = |text: &str, want: &str| {
            let c = RunConfig::parse(text, "c.toml").unwrap();
            let e = format!("{:#}", c.validate().unwrap_err());
            assert!(e.contains(want), "`{text}`: {e}");
        };
        bad(
            "[data]\nvalidation_split = 1.5\n",
            "validation_split = 1.5 must be strictly between 0 and 1",
        );
        bad(
            "[train]\nbatch_size = 0\n",
            "batch_size and eval_batch_size must be at least 1",
        );
        bad("[train]\nepochs = 0\n", "epochs must be at least 1");
        bad(
            "[pruner]\nplugin = \"builtin:median\"\n[[objectives]]\nmetric = \"params\"\ndirection = \"minimize\"\n",
            "`params` is not recorded per epoch",
        );
        bad(
            "[pruner]\nplugin = \"builtin:median\"\n[evaluator]\nkind = \"table\"\npath = \"t.csv\"\nkey_column = \"arch\"\nbudget = 200\n[evaluator.metrics]\nval_accuracy = \"v\"\n",
            "table mode trains nothing",
        );
        bad(
            "[train]\nnesterov = true\n",
            "nesterov = true needs optimizer = \"sgd\"",
        );
        let proxy = "[evaluator]\nkind = \"proxy\"\n";
        let naswot = "[[objectives]]\nmetric = \"naswot\"\ndirection = \"maximize\"\n";
        bad(proxy, "metric `val_accuracy` is not a trial metric");
        bad(
            &format!("{proxy}proxy_batch = 1\n{naswot}"),
            "proxy_batch = 1 must be between 2 and 1024",
        );
        bad(
            &format!("{proxy}proxies = [\"snip\", \"snip\"]\n{naswot}"),
            "lists `snip` twice",
        );
        bad(
            &format!("{proxy}{naswot}[constraints]\nmax_latency_ms = 5.0\n"),
            "[constraints] max_latency_ms needs trained or measured networks",
        );
        bad(naswot, "metric `naswot` is not a trial metric");
        bad(
            "[evaluator]\nkind = \"table\"\npath = \"t.csv\"\nkey_column = \"arch\"\nbudget = 200\nproxies = [\"naswot\"]\n[evaluator.metrics]\nval_accuracy = \"v\"\n",
            "table mode has none",
        );
        for good in [
            format!("{proxy}{naswot}"),
            format!("[evaluator]\nproxies = [\"naswot\"]\n{naswot}"),
        ] {
            RunConfig::parse(&good, "c.toml")
                .unwrap()
                .validate()
                .unwrap();
        }
        bad(
            "[data]\ndataset = \"mnist\"\nnoise = 0.1\n",
            "noise applies only to dataset = \"synthetic\"",
        );
        bad(
            "[[objectives]]\nmetric = \"val_acc\"\ndirection = \"maximize\"\n",
            "Did you mean `val_accuracy`?",
        );
        bad("[run]\ndevice = \"tpu\"\n", "device");
        let e = RunConfig::parse("[train]\nepochs = -2\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml:2:"), "{e}");
    }
}
