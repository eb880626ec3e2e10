//! One trial, fully described by a serialisable [`TrialSpec`]: compile the
//! network, measure it, train it, save its weights, and return a
//! [`TrialOutcome`]. In-process runs and `nas-host trial --spec` share this
//! code path, so parallel and cluster execution run exactly the same trial.

use crate::data::{DataConfig, Dataset};
use crate::interrupt::Cancel;
use crate::ir::EpochRecord;
use crate::ir::{Network, Task, TrialStatus};
use crate::network::{analyse, Model};
use crate::quant::Quantized;
use crate::train::{self, Progress, TrainConfig};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything needed to run one trial, anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Unique within the run.
    pub trial_id: u64,
    /// The architecture.
    pub network: Network,
    /// The input shape and class count the network was built for.
    pub task: Task,
    /// How to load the data.
    pub data: DataConfig,
    /// Seed of the data split (and synthetic images).
    pub data_seed: u64,
    /// Optimiser and batch settings.
    pub train: TrainConfig,
    /// Budget in epochs.
    pub epochs: u32,
    /// Seed of weight initialisation, batch order and dropout.
    pub seed: u64,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Folder for this trial's files (weights, result).
    pub dir: PathBuf,
    /// `[constraints] max_latency_ms`: a slower network is infeasible and not trained.
    #[serde(default)]
    pub max_latency_ms: Option<f64>,
    /// `[quantize]`: measure the trained network in int8.
    #[serde(default)]
    pub quantize: crate::quant::QuantizeConfig,
    /// `[constraints] max_int8_latency_ms` and `max_int8_size_kb`: an int8
    /// model over one is infeasible and not trained.
    #[serde(default)]
    pub max_int8_latency_ms: Option<f64>,
    /// See `max_int8_latency_ms`.
    #[serde(default)]
    pub max_int8_size_kb: Option<f64>,
    /// `[distill]`: the teacher the network also learns from.
    #[serde(default)]
    pub teacher: Option<crate::train::distill::TeacherSpec>,
    /// A multi-fidelity promotion: continue the trial that trained this
    /// network for fewer epochs, from its final checkpoint.
    #[serde(default)]
    pub resume_from: Option<ResumeFrom>,
    /// `[pruner]`: the rule, with the curves of the trials completed when
    /// this one was admitted.
    #[serde(default)]
    pub pruning: Option<crate::prune::Pruning>,
    /// `[evaluator] proxies`: zero-cost proxies scored before training, or
    /// instead of it.
    #[serde(default)]
    pub proxies: crate::proxy::ProxyPlan,
}

impl TrialSpec {
    /// The spec as a file's text, with the format version of its types
    /// ([`crate::ir::FORMAT_VERSION`]) so a worker of another version refuses it.
    pub fn to_json(&self) -> Result<String> {
        let mut value = serde_json::to_value(self)?;
        value["format"] = crate::ir::FORMAT_VERSION.into();
        Ok(serde_json::to_string_pretty(&value)?)
    }

    /// Reads a spec written by [`TrialSpec::to_json`].
    pub fn from_json(text: &str) -> Result<TrialSpec> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let format = value.get("format").and_then(serde_json::Value::as_u64);
        if format != Some(u64::from(crate::ir::FORMAT_VERSION)) {
            anyhow::bail!(
                "it is in format {} but this nas-host reads format {}: controller and workers must run the same nas-host",
                format.map_or("(none)".to_string(), |f| f.to_string()),
                crate::ir::FORMAT_VERSION
            );
        }
        Ok(serde_json::from_value(value)?)
    }
}

/// The earlier trial a promoted trial continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeFrom {
    /// Its id.
    pub trial: u64,
    /// Its folder (with its final checkpoint).
    pub dir: PathBuf,
    /// The epochs it trained.
    pub epochs: u32,
}

/// What a trial produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// The spec's trial id.
    pub trial_id: u64,
    /// Completed, or failed with a reason.
    pub status: TrialStatus,
    /// Why it failed.
    pub reason: Option<String>,
    /// Final metrics by name (see [`crate::config::METRICS`]).
    #[serde(with = "crate::ir::real::map")]
    pub metrics: BTreeMap<String, f64>,
    /// Per-epoch metrics.
    pub curve: Vec<EpochRecord>,
    /// Saved weights (safetensors), when training completed.
    pub weights: Option<PathBuf>,
    /// Epochs restored from the trial's checkpoint instead of trained again.
    #[serde(default)]
    pub resumed_from_epoch: Option<u32>,
    /// Why the trial's checkpoint could not be continued, when it trained
    /// from scratch instead.
    #[serde(default)]
    pub restarted: Option<String>,
}

/// File name of the weights in a trial's folder.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

impl TrialOutcome {
    /// A failed outcome of `spec` for `reason`.
    pub(crate) fn failed(
        spec: &TrialSpec,
        reason: String,
        metrics: BTreeMap<String, f64>,
        curve: Vec<EpochRecord>,
    ) -> Self {
        TrialOutcome {
            trial_id: spec.trial_id,
            status: TrialStatus::Failed,
            reason: Some(reason),
            metrics,
            curve,
            weights: None,
            resumed_from_epoch: None,
            restarted: None,
        }
    }
}

/// Scores `spec`'s zero-cost proxies into `metrics` (with `proxy_seconds`);
/// returns why some could not be scored for this network, if any were not.
fn score_proxies(
    spec: &TrialSpec,
    data: &Dataset,
    metrics: &mut BTreeMap<String, f64>,
) -> Result<Option<String>> {
    let started = Instant::now();
    let (x, labels) = crate::proxy::minibatch(data, spec.proxies.batch)
        .with_context(|| format!("trial {}", spec.trial_id))?;
    let scores = match crate::proxy::score(
        &spec.network,
        &spec.task,
        spec.seed,
        &x,
        &labels,
        &spec.proxies.proxies,
    ) {
        Ok(scores) => scores,
        Err(e) => return Ok(Some(format!("zero-cost proxy error: {}", concise(&e)))),
    };
    metrics.insert("proxy_seconds".to_string(), started.elapsed().as_secs_f64());
    let mut undefined = Vec::new();
    for (proxy, value) in scores {
        match value {
            Ok(v) => {
                metrics.insert(proxy.name().to_string(), v);
            }
            Err(why) => undefined.push(why),
        }
    }
    Ok((!undefined.is_empty()).then(|| undefined.join("; ")))
}

/// Runs `spec` on already-loaded `data`. Problems of the trial itself (an
/// invalid network, divergence, an error inside candle) make a failed
/// outcome; only problems of the host (an unwritable folder) are errors.
pub fn run(
    spec: &TrialSpec,
    data: &Dataset,
    cancel: &Cancel,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<TrialOutcome> {
    if data.task != spec.task {
        anyhow::bail!(
            "trial {}: the data gives task {:?} but the spec was built for {:?}",
            spec.trial_id,
            data.task,
            spec.task
        );
    }
    // Shapes, counts and the memory estimate come before any weight is
    // allocated: a network too big for the machine is a failed trial, not
    // an aborted process.
    let invalid = |e: anyhow::Error, metrics| {
        let reason = format!("invalid network: {}", concise(&e));
        Ok(TrialOutcome::failed(spec, reason, metrics, Vec::new()))
    };
    let analysis = match analyse(&spec.network, &spec.task) {
        Ok(a) => a,
        Err(e) => return invalid(e, BTreeMap::new()),
    };
    let mut metrics = BTreeMap::new();
    metrics.insert("params".to_string(), analysis.params() as f64);
    metrics.insert("flops".to_string(), analysis.flops() as f64);
    let memory_mb = analysis.train_memory_mb(spec.train.batch_size);
    metrics.insert("memory_mb".to_string(), memory_mb);
    if let Some(reason) = over_memory(memory_mb, spec) {
        return Ok(TrialOutcome::failed(spec, reason, metrics, Vec::new()));
    }
    if !spec.proxies.proxies.is_empty() {
        let undefined = score_proxies(spec, data, &mut metrics)?;
        if spec.proxies.only {
            if let Some(why) = undefined {
                return Ok(TrialOutcome::failed(spec, why, metrics, Vec::new()));
            }
            return Ok(TrialOutcome {
                trial_id: spec.trial_id,
                status: TrialStatus::Completed,
                reason: None,
                metrics,
                curve: Vec::new(),
                weights: None,
                resumed_from_epoch: None,
                restarted: None,
            });
        }
    }
    let model = match Model::from_analysis(&spec.network, analysis, spec.seed, data.device()) {
        Ok(m) => m,
        Err(e) => return invalid(e, metrics),
    };
    let started = Instant::now();
    if let Err(e) = measure(spec, data, &model, cancel, &mut metrics) {
        return Ok(TrialOutcome::failed(
            spec,
            format!("latency probe error: {}", concise(&e)),
            metrics,
            Vec::new(),
        ));
    }
    if spec.quantize.enabled {
        // The int8 model's size and speed do not depend on its weights:
        // measured before training, they can rule it out.
        if let Err(e) = measure_int8(spec, data, &model, cancel, &mut metrics) {
            let reason = format!("int8 quantization error: {}", concise(&e));
            return Ok(TrialOutcome::failed(spec, reason, metrics, Vec::new()));
        }
    }
    let limits = [
        ("latency_b1_ms", "max_latency_ms", spec.max_latency_ms),
        (
            "int8_latency_b1_ms",
            "max_int8_latency_ms",
            spec.max_int8_latency_ms,
        ),
        ("int8_size_kb", "max_int8_size_kb", spec.max_int8_size_kb),
    ];
    for (metric, key, limit) in limits {
        if let (Some(limit), Some(&value)) = (limit, metrics.get(metric)) {
            if value > limit {
                let reason = format!("{metric} {value:.3} > {key} {limit}");
                return Ok(TrialOutcome {
                    trial_id: spec.trial_id,
                    status: TrialStatus::Infeasible,
                    reason: Some(reason),
                    metrics,
                    curve: Vec::new(),
                    weights: None,
                    resumed_from_epoch: None,
                    restarted: None,
                });
            }
        }
    }
    let checkpoints = train::Checkpoints {
        dir: &spec.dir,
        every: spec.train.checkpoint_every,
        from: spec.resume_from.as_ref().map(|r| r.dir.as_path()),
    };
    // A teacher that cannot be loaded is the run's problem, not the network's.
    let teacher = match &spec.teacher {
        Some(t) => Some(
            load_teacher(t, spec, data)
                .with_context(|| format!("trial {}: load the [distill] teacher", spec.trial_id))?,
        ),
        None => None,
    };
    let trained = train::train_with(
        &model,
        data,
        &spec.train,
        spec.epochs,
        spec.seed,
        Some(checkpoints),
        &train::Extras {
            teacher: teacher.as_ref(),
            aware_epochs: if spec.quantize.enabled {
                spec.quantize.aware_epochs
            } else {
                0
            },
            pruning: spec.pruning.as_ref(),
        },
        cancel,
        on_progress,
    );
    metrics.insert("train_seconds".to_string(), started.elapsed().as_secs_f64());
    let outcome = match trained {
        // The host's problem, not the architecture's: no result, the run stops.
        Err(e) if e.downcast_ref::<train::HostFault>().is_some() => {
            return Err(e.context(format!("trial {}", spec.trial_id)))
        }
        Err(e) => {
            return Ok(TrialOutcome::failed(
                spec,
                format!("training error: {}", concise(&e)),
                metrics,
                Vec::new(),
            ))
        }
        Ok(t) => t,
    };
    if outcome.interrupted {
        let reason = Some("stopped by the run before it finished".to_string());
        return Ok(TrialOutcome {
            trial_id: spec.trial_id,
            status: TrialStatus::Pruned,
            reason,
            metrics,
            curve: outcome.curve,
            weights: None,
            resumed_from_epoch: outcome.resumed_from_epoch,
            restarted: outcome.restarted,
        });
    }
    if let Some(why) = outcome.pruned {
        // A pruned trial is never continued.
        train::remove_checkpoint(&spec.dir)?;
        return Ok(TrialOutcome {
            trial_id: spec.trial_id,
            status: TrialStatus::Pruned,
            reason: Some(why),
            metrics,
            curve: outcome.curve,
            weights: None,
            resumed_from_epoch: outcome.resumed_from_epoch,
            restarted: outcome.restarted,
        });
    }
    if outcome.timed_out.is_some() || outcome.diverged.is_some() || !spec.train.keep_checkpoints {
        // A failed trial is never continued, and without promotions a finished one neither.
        train::remove_checkpoint(&spec.dir)?;
    }
    if let Some(why) = outcome.timed_out {
        return Ok(TrialOutcome::failed(spec, why, metrics, outcome.curve));
    }
    if let Some(why) = outcome.diverged {
        return Ok(TrialOutcome::failed(
            spec,
            format!("diverged: {why}"),
            metrics,
            outcome.curve,
        ));
    }
    let last = outcome.curve.last().context("training finished no epoch")?;
    metrics.insert("val_accuracy".to_string(), last.val_accuracy);
    metrics.insert("val_loss".to_string(), last.val_loss);
    metrics.insert("train_loss".to_string(), last.train_loss);
    std::fs::create_dir_all(&spec.dir)
        .with_context(|| format!("create trial folder {}", spec.dir.display()))?;
    if spec.quantize.enabled {
        let quantized = Quantized::new(
            &model,
            &spec.network,
            &spec.task,
            &data.train,
            spec.train.batch_size,
            &spec.quantize,
        )
        .and_then(|q| {
            let pass = |x: &candle_core::Tensor| q.forward(x);
            let cpu = candle_core::Device::Cpu;
            let (loss, accuracy) =
                train::evaluate_pass(&pass, &cpu, &data.val, spec.train.eval_batch_size)?;
            Ok((q, loss, accuracy))
        });
        match quantized {
            Ok((q, loss, accuracy)) => {
                metrics.insert("int8_val_accuracy".to_string(), accuracy);
                metrics.insert("int8_val_loss".to_string(), loss);
                // A disk that refuses the file is the host's problem.
                q.save(&spec.dir, &spec.quantize)?;
            }
            Err(e) => {
                let reason = format!("int8 quantization error: {}", concise(&e));
                return Ok(TrialOutcome::failed(spec, reason, metrics, outcome.curve));
            }
        }
    }
    let weights = spec.dir.join(WEIGHTS_FILE);
    model.save(&weights)?;
    Ok(TrialOutcome {
        trial_id: spec.trial_id,
        status: TrialStatus::Completed,
        reason: None,
        metrics,
        curve: outcome.curve,
        weights: Some(weights),
        resumed_from_epoch: outcome.resumed_from_epoch,
        restarted: outcome.restarted,
    })
}

/// Why training would run out of memory by the trial's size estimate, if it would.
fn over_memory(memory_mb: f64, spec: &TrialSpec) -> Option<String> {
    let (limit, what) = match spec.train.max_memory_mb {
        Some(m) => (m, "[train] max_memory_mb".to_string()),
        None => {
            let (available, bound) = crate::memory::available_mib()?;
            (
                available * 0.9,
                format!("90% of the {available:.0} MiB {bound}"),
            )
        }
    };
    (memory_mb > limit).then(|| {
        format!(
            "out of memory: training needs about {memory_mb:.0} MiB at batch_size {} by its size estimate, over the limit of {limit:.0} MiB ({what}); lower batch_size or the space's widths",
            spec.train.batch_size
        )
    })
}

/// The latency probes, at batch 1 and at the training batch size.
fn measure(
    spec: &TrialSpec,
    data: &Dataset,
    model: &Model,
    cancel: &Cancel,
    metrics: &mut BTreeMap<String, f64>,
) -> Result<()> {
    let repeats = spec.train.latency_repeats;
    metrics.insert(
        "latency_b1_ms".to_string(),
        train::latency_ms(model, data, 1, repeats, cancel)?,
    );
    metrics.insert(
        "latency_batch_ms".to_string(),
        train::latency_ms(model, data, spec.train.batch_size, repeats, cancel)?,
    );
    Ok(())
}

/// The teacher of `spec`, with its logits for the training split cached in
/// the run directory (`teacher-logits/`) when batches are not augmented.
fn load_teacher(
    teacher: &crate::train::distill::TeacherSpec,
    spec: &TrialSpec,
    data: &Dataset,
) -> Result<crate::train::distill::Teacher> {
    let mut loaded = teacher.load(&spec.task, data.device())?;
    if !data.augment.is_active() {
        use sha2::{Digest, Sha256};
        let weights = std::fs::read(&teacher.weights)
            .with_context(|| format!("read {}", teacher.weights.display()))?;
        // The cache holds the teacher's logits for exactly this data.
        let key = format!(
            "{:x}|{}|{}|{}",
            Sha256::digest(&weights),
            serde_json::to_string(&teacher.network)?,
            serde_json::to_string(&spec.data)?,
            spec.data_seed
        );
        let run_dir = spec
            .dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&spec.dir);
        loaded.cache_logits(data, &key, &run_dir.join("teacher-logits"))?;
    }
    Ok(loaded)
}

/// The int8 model's size and latency probes, at batch 1 and at the
/// training batch size (on the CPU, where the integer kernels run).
fn measure_int8(
    spec: &TrialSpec,
    data: &Dataset,
    model: &Model,
    cancel: &Cancel,
    metrics: &mut BTreeMap<String, f64>,
) -> Result<()> {
    let q = Quantized::new(
        model,
        &spec.network,
        &spec.task,
        &data.train,
        spec.train.batch_size,
        &spec.quantize,
    )?;
    metrics.insert("int8_size_kb".to_string(), q.size_bytes as f64 / 1024.0);
    let pass = |x: &candle_core::Tensor| q.forward(x);
    let cpu = candle_core::Device::Cpu;
    let repeats = spec.train.latency_repeats;
    for (metric, batch) in [
        ("int8_latency_b1_ms", 1),
        ("int8_latency_batch_ms", spec.train.batch_size),
    ] {
        let ms = train::pass_latency_ms(&pass, &cpu, data, batch, repeats, cancel)?;
        metrics.insert(metric.to_string(), ms);
    }
    Ok(())
}

/// An error's messages on one line, without the backtraces candle captures
/// when `RUST_BACKTRACE` is set: a failed trial's reason must stay readable.
fn concise(e: &anyhow::Error) -> String {
    before_backtrace(&format!("{e:#}")).join(" ")
}

/// The non-blank lines of `text`, trimmed, up to a backtrace (which candle
/// errors and panics print when `RUST_BACKTRACE` is set).
pub(crate) fn before_backtrace(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("0: ") && !l.eq_ignore_ascii_case("stack backtrace:"))
        .filter(|l| !l.is_empty())
        .collect()
}

/// File name of a trial's result in its folder, written by `nas-host trial`.
pub const RESULT_FILE: &str = "result.json";

/// `nas-host trial --spec FILE`: loads the data the spec names, runs the
/// trial and writes `result.json` into the trial's folder.
pub fn run_spec_file(path: &Path) -> Result<TrialOutcome> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read trial spec {}", path.display()))?;
    let spec = TrialSpec::from_json(&text)
        .with_context(|| format!("{} is not a valid trial spec", path.display()))?;
    let device = crate::device::parse(&spec.device)?;
    let data = crate::data::load(&spec.data, spec.data_seed, &device)?;
    // A worker is never cancelled from inside: its controller stops the
    // process, and the trial's checkpoints carry its work over to the retry.
    let outcome = run(&spec, &data, &Cancel::new(), &mut |_| {})?;
    std::fs::create_dir_all(&spec.dir)
        .with_context(|| format!("create trial folder {}", spec.dir.display()))?;
    let result = spec.dir.join(RESULT_FILE);
    std::fs::write(&result, serde_json::to_string_pretty(&outcome)?)
        .with_context(|| format!("write {}", result.display()))?;
    Ok(outcome)
}
