//! `nas-host run CONFIG`: runs a search and prints the top trials and the best
//! architecture's summary, validation and test accuracy.

use crate::config::RunConfig;
use crate::interrupt::Cancel;
use crate::ir::TrialStatus;
use crate::network::grouped;
use crate::progress::{Mode, Reporter};
use crate::search::{self, RunResult};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The run's TOML config (see examples/).
    config: PathBuf,
    /// Override [run] name.
    #[arg(long)]
    name: Option<String>,
    /// Override [run] output_dir.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Override [run] seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override [run] max_trials.
    #[arg(long)]
    max_trials: Option<u64>,
    /// Override [run] max_time_s.
    #[arg(long)]
    max_time_s: Option<f64>,
    /// Set any config key, checked as in the file: `--set train.epochs=1
    /// --set data.subset=5000` (the value in TOML; a bare word is text).
    #[arg(long = "set", value_name = "TABLE.KEY=VALUE")]
    set: Vec<String>,
    /// Show no progress, only the final summary.
    #[arg(long, conflicts_with = "json")]
    quiet: bool,
    /// Print one JSON object per event on stdout, for scripts.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode> {
    let mut config = RunConfig::load_with(&args.config, &args.set)?;
    if let Some(name) = args.name {
        config.run.name = Some(name);
    }
    if let Some(dir) = args.output_dir {
        config.run.output_dir = dir;
    }
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    if let Some(n) = args.max_trials {
        config.run.max_trials = n;
    }
    if let Some(t) = args.max_time_s {
        config.run.max_time_s = Some(t);
    }
    config.validate()?;
    let mode = Mode::from_flags(args.quiet, args.json);
    let cancel = Cancel::on_ctrl_c();
    let result = search::run(&config, &mut Reporter::new(mode), &cancel)?;
    conclude(&result, mode)
}

/// Prints the end of a run (`run` or `resume`) and picks the exit status:
/// 2 when no trial completed, 130 when Ctrl-C stopped it, else success.
pub(super) fn conclude(result: &RunResult, mode: Mode) -> Result<ExitCode> {
    if mode == Mode::Json {
        let best = result.best.as_ref().map(|b| {
            serde_json::json!({"trial": b.trial.id, "key": b.trial.key, "objective": b.objective,
                "val_accuracy": b.trial.metrics.get("val_accuracy"), "held_out": b.held_out, "dir": b.dir})
        });
        println!(
            "{}",
            serde_json::json!({"event": "summary", "dir": result.dir, "trials": result.trials.len(), "stop_reason": result.stop_reason, "best": best})
        );
    } else {
        print!("{}", report(result, &result.objectives));
    }
    let html = result.dir.join(crate::report::REPORT_FILE);
    match crate::report::write(&result.dir, &html) {
        Ok(()) if mode != Mode::Json => println!("report:              {}", html.display()),
        Ok(()) => {}
        // The run's results are stored; a report can be written again with `nas-host report`.
        Err(e) => eprintln!("warning: could not write the HTML report: {e:#}"),
    }
    if result.interrupted {
        eprintln!(
            "nas-host: stopped; continue with `nas-host resume {}`",
            result.dir.display()
        );
    }
    if result.best.is_none() {
        let counts: Vec<String> = [
            TrialStatus::Failed,
            TrialStatus::Pruned,
            TrialStatus::Infeasible,
        ]
        .into_iter()
        .map(|st| (st, result.trials.iter().filter(|t| t.status == st).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{n} {}", crate::store::status_text(st)))
        .collect();
        let what = if counts.is_empty() {
            "none finished".to_string()
        } else {
            counts.join(", ")
        };
        eprintln!(
            "error: no trial completed ({what}); see the reasons above and in {}",
            result.dir.join(crate::store::DB_FILE).display()
        );
        return Ok(ExitCode::from(2));
    }
    if result.stop_reason == crate::interrupt::STOP_REASON {
        // Scripts can tell an interrupted run from a finished one.
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// The final text report: top trials, then the best model.
fn report(result: &RunResult, objectives: &[crate::config::ObjectiveConfig]) -> String {
    let metric = objectives[0].metric.as_str();
    let mut completed: Vec<_> = result
        .trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed && t.reused_from.is_none())
        .collect();
    let ascending = result.best.as_ref().is_some_and(|b| {
        completed
            .iter()
            .all(|t| t.metrics.get(metric).is_some_and(|v| *v >= b.objective))
    });
    completed.sort_by(|a, b| {
        let (x, y) = (
            a.metrics.get(metric).copied().unwrap_or(f64::NAN),
            b.metrics.get(metric).copied().unwrap_or(f64::NAN),
        );
        if ascending {
            x.total_cmp(&y)
        } else {
            y.total_cmp(&x)
        }
    });
    let failed = result
        .trials
        .iter()
        .filter(|t| t.status != TrialStatus::Completed)
        .count();
    let reused = result
        .trials
        .iter()
        .filter(|t| t.reused_from.is_some())
        .count();
    let mut out = format!(
        "\n{} trials: {} trained, {reused} reused, {failed} failed ({})\n\nTop trials by {metric}:\n",
        result.trials.len(),
        completed.len(),
        result.stop_reason
    );
    out += &format!(
        "{:>5} {:>6} {:>13} {:>10} {:>14} {:>6} {:>8}  {}\n",
        "rank", "trial", metric, "params", "FLOPs", "epochs", "seconds", "assignment"
    );
    for (rank, t) in completed.iter().take(5).enumerate() {
        out += &format!(
            "{:>5} {:>6} {:>13.4} {:>10} {:>14} {:>6} {:>8.1}  {}\n",
            rank + 1,
            t.id,
            t.metrics.get(metric).copied().unwrap_or(f64::NAN),
            grouped(t.metrics.get("params").copied().unwrap_or(0.0) as u64),
            grouped(t.metrics.get("flops").copied().unwrap_or(0.0) as u64),
            t.budget,
            t.seconds,
            crate::assignment::text(&t.assignment)
        );
    }
    if let Some(best) = &result.best {
        out += &format!(
            "\nBest architecture: trial {} ({})\n{}",
            best.trial.id,
            crate::assignment::text(&best.trial.assignment),
            best.summary
        );
        out += &format!(
            "validation accuracy: {:.4}\n",
            best.trial
                .metrics
                .get("val_accuracy")
                .copied()
                .unwrap_or(f64::NAN)
        );
        for (name, value) in &best.held_out {
            out += &format!("{:<21}{value:.4}\n", format!("{}:", name.replace('_', " ")));
        }
        out += &format!("best model:          {}\n", best.dir.display());
    }
    if !result.pareto.is_empty() {
        let names: Vec<&str> = objectives.iter().map(|o| o.metric.as_str()).collect();
        out += &format!(
            "\nPareto front over {} ({} trials):\n",
            names.join(", "),
            result.pareto.len()
        );
        for id in &result.pareto {
            let Some(t) = result.trials.iter().find(|t| t.id == *id) else {
                continue;
            };
            let values: Vec<String> = names
                .iter()
                .map(|m| {
                    let v = t.metrics[*m];
                    // Counts (params, flops) read better as whole numbers.
                    if v.fract() == 0.0 && v.abs() < 1e15 {
                        format!("{m} {}", grouped(v as u64))
                    } else {
                        format!("{m} {v:.4}")
                    }
                })
                .collect();
            out += &format!(
                "  trial {id:>4}  {}  {}\n",
                values.join("  "),
                crate::assignment::text(&t.assignment)
            );
        }
    }
    out += &format!(
        "run database:        {}\n",
        result.dir.join(crate::store::DB_FILE).display()
    );
    out
}
