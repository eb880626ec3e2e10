//! `nas-host report`: one self-contained HTML file about a run (inline SVG
//! and a few lines of script, nothing fetched): the summary, best-so-far
//! against trials and against training time, each objective against
//! parameters, FLOPs and latency with the Pareto front marked, learning
//! curves of the top trials, each dimension's effect on the objective, a
//! sortable table of all trials and the best architecture as a graph.

mod graph;

use crate::assignment::value_text;
use crate::ir::{Direction, Objective, Task, TrialStatus, Value};
use crate::network::grouped;
use crate::plot::{escape, number, Chart, Mark, COLORS};
use crate::results::{best_so_far, best_trial, pareto_front, BestSoFar, RunFacts};
use crate::store::{status_text, RunStore, TrialRecord, DB_FILE};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// File name of the report in a run directory.
pub const REPORT_FILE: &str = "report.html";

/// What the report is made from, read once from the run database.
struct Run {
    name: String,
    facts: RunFacts,
    meta: BTreeMap<String, String>,
    trials: Vec<TrialRecord>,
    task: Option<Task>,
}

impl Run {
    fn load(dir: &Path) -> Result<Run> {
        let store = RunStore::open_read_only(&dir.join(DB_FILE))?;
        let facts = RunFacts::load(&store)?;
        let mut meta = BTreeMap::new();
        for key in [
            "data",
            "seed",
            "data_seed",
            "stop_reason",
            "best_trial",
            "test_accuracy",
            "test_loss",
            "nas_host_version",
        ] {
            if let Some(v) = store.meta(key)? {
                meta.insert(key.to_string(), v);
            }
        }
        let task = store
            .meta("task")?
            .and_then(|t| serde_json::from_str(&t).ok());
        Ok(Run {
            name: facts.name.clone(),
            facts,
            meta,
            trials: store.trials()?,
            task,
        })
    }

    fn objective(&self) -> &Objective {
        self.facts.objective()
    }

    /// The best completed trial by the first objective, as the run picks it.
    fn best(&self) -> Option<&TrialRecord> {
        best_trial(&self.trials, self.objective())
    }

    /// Completed trials that were evaluated (not reused), with the objective.
    fn evaluated(&self) -> impl Iterator<Item = &TrialRecord> {
        self.trials
            .iter()
            .filter(|t| t.status == TrialStatus::Completed && t.reused_from.is_none())
    }
}

fn maximize(o: &Objective) -> bool {
    o.direction == Direction::Maximize
}

/// Writes the report of the run in `dir` to `out`.
pub fn write(dir: &Path, out: &Path) -> Result<()> {
    let run = Run::load(dir)?;
    let html = page(&run)?;
    std::fs::write(out, html).with_context(|| format!("write {}", out.display()))
}

fn page(run: &Run) -> Result<String> {
    let mut body = String::new();
    summary(run, &mut body);
    progress(run, &mut body);
    tradeoffs(run, &mut body);
    quantization(run, &mut body);
    curves(run, &mut body);
    effects(run, &mut body);
    table(run, &mut body);
    architecture(run, &mut body)?;
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>nas-host report: {name}</title>\n<script>window.addEventListener('error', function (e) {{ document.documentElement.setAttribute('data-errors', (document.documentElement.getAttribute('data-errors') || '') + e.message + '; '); }});</script>\n<style>{STYLE}</style></head>\n<body>\n<h1>nas-host report: {name}</h1>\n{body}<script>{SCRIPT}</script>\n</body></html>\n",
        name = escape(&run.name)
    ))
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1240px}h2{margin-top:32px;border-bottom:1px solid #ddd}.charts{display:flex;flex-wrap:wrap;gap:12px}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}td.text,th.text{text-align:left}th{background:#f4f4f4;cursor:pointer;user-select:none}tr.best td{background:#fff6d5}.facts td{text-align:left}.note{color:#666}.graph{border:1px solid #eee}";

/// Sorts the trials table by a clicked column (numbers as numbers), and marks the page as rendered.
const SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function (th, col) { th.addEventListener('click', function () { var body = th.closest('table').tBodies[0]; var rows = Array.from(body.rows); var up = th.getAttribute('data-order') !== 'asc'; th.setAttribute('data-order', up ? 'asc' : 'desc'); rows.sort(function (a, b) { var x = a.cells[col].getAttribute('data-v') || a.cells[col].textContent; var y = b.cells[col].getAttribute('data-v') || b.cells[col].textContent; var nx = parseFloat(x), ny = parseFloat(y); var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y); return up ? c : -c; }); rows.forEach(function (r) { body.appendChild(r); }); }); }); document.documentElement.setAttribute('data-rendered', 'yes');";

fn summary(run: &Run, out: &mut String) {
    let count = |s: TrialStatus| run.trials.iter().filter(|t| t.status == s).count();
    let reused = run
        .trials
        .iter()
        .filter(|t| t.reused_from.is_some())
        .count();
    let objectives: Vec<String> = run
        .facts
        .objectives
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                if maximize(o) { "maximize" } else { "minimize" },
                o.metric
            )
        })
        .collect();
    let mut facts = vec![
        ("data", run.meta.get("data").cloned().unwrap_or_default()),
        ("search space", run.facts.space.clone()),
        ("strategy", run.facts.strategy.clone()),
        ("objectives", objectives.join(", ")),
        (
            "seeds",
            format!(
                "run {}, data {}",
                run.meta.get("seed").map_or("?", String::as_str),
                run.meta.get("data_seed").map_or("?", String::as_str)
            ),
        ),
        (
            "trials",
            format!(
                "{} of max_trials {}: {} completed ({reused} reused), {} failed, {} pruned, {} infeasible",
                run.trials.len(),
                run.facts.max_trials,
                count(TrialStatus::Completed),
                count(TrialStatus::Failed),
                count(TrialStatus::Pruned),
                count(TrialStatus::Infeasible)
            ),
        ),
        (
            "state",
            run.meta
                .get("stop_reason")
                .map_or("not finished (running, or stopped: nas-host resume continues it)".to_string(), |r| {
                    format!("finished: {r}")
                }),
        ),
        (
            "training time",
            format!(
                "{:.1} s in trials",
                run.trials.iter().map(|t| t.seconds).sum::<f64>() + 0.0
            ),
        ),
    ];
    if let Some(best) = run.best() {
        let metric = &run.objective().metric;
        let mut text = format!(
            "trial {}: {metric} {:.4}",
            best.id,
            best.metrics.get(metric).copied().unwrap_or(f64::NAN)
        );
        let reported = run.meta.get("best_trial") == Some(&best.id.to_string());
        for key in ["test_accuracy", "test_loss"] {
            if let Some(v) = run
                .meta
                .get(key)
                .filter(|_| reported)
                .and_then(|v| v.parse::<f64>().ok())
            {
                let _ = write!(text, ", {} {v:.4}", key.replace('_', " "));
            }
        }
        let _ = write!(text, " ({})", crate::assignment::text(&best.assignment));
        facts.push(("best", text));
    }
    out.push_str("<table class=\"facts\">\n");
    for (k, v) in facts {
        let _ = writeln!(out, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    out.push_str("</table>\n");
}

fn progress(run: &Run, out: &mut String) {
    let o = run.objective();
    // One best-so-far per budget: a multi-fidelity run's low-budget values
    // are not comparable with its full-budget ones.
    let budgets: std::collections::BTreeSet<u32> = run
        .evaluated()
        .filter(|t| t.status == TrialStatus::Completed && t.metrics.contains_key(&o.metric))
        .map(|t| t.budget)
        .collect();
    let curves: Vec<(String, Vec<BestSoFar>)> = match budgets.len() {
        0 | 1 => vec![("best so far".to_string(), best_so_far(&run.trials, o, None))],
        _ => budgets
            .iter()
            .rev()
            .map(|b| {
                let label = format!("best so far, {b} epochs");
                (label, best_so_far(&run.trials, o, Some(*b)))
            })
            .collect(),
    };
    let each: Vec<(f64, f64)> = run
        .evaluated()
        .filter_map(|t| Some((t.id as f64, *t.metrics.get(&o.metric)?)))
        .collect();
    let labels = run
        .evaluated()
        .filter(|t| t.metrics.contains_key(&o.metric))
        .map(|t| format!("trial {}: {}", t.id, crate::assignment::text(&t.assignment)))
        .collect();
    let mut by_trial = Chart::new(&format!("best-so-far {}", o.metric), "trial", &o.metric)
        .scatter("each trial", "#aaa", each, labels, 3.0);
    let mut by_time = Chart::new(
        &format!("best-so-far {} against training time", o.metric),
        "training seconds spent (cumulative)",
        &o.metric,
    );
    for (i, (label, curve)) in curves.iter().enumerate() {
        let known = || curve.iter().filter(|s| !s.best.is_nan());
        let color = COLORS[i % COLORS.len()];
        by_trial = by_trial.with(
            label,
            color,
            known().map(|s| (s.trial as f64, s.best)).collect(),
            Mark::Steps,
        );
        by_time = by_time.with(
            label,
            color,
            known().map(|s| (s.spent, s.best)).collect(),
            Mark::Steps,
        );
    }
    let _ = writeln!(
        out,
        "<h2>Search progress</h2>\n<div class=\"charts\">{}{}</div>",
        by_trial.svg(),
        by_time.svg()
    );
}

fn tradeoffs(run: &Run, out: &mut String) {
    let mut charts = String::new();
    for o in &run.facts.objectives {
        for (cost, label, log) in [
            ("params", "parameters", true),
            ("flops", "FLOPs per sample", true),
            ("latency_b1_ms", "latency at batch 1 (ms)", false),
        ] {
            if cost == o.metric {
                continue;
            }
            let trials: Vec<&TrialRecord> = run
                .evaluated()
                .filter(|t| t.metrics.contains_key(cost) && t.metrics.contains_key(&o.metric))
                .collect();
            if trials.is_empty() {
                continue;
            }
            let points: Vec<(f64, f64)> = trials
                .iter()
                .map(|t| (t.metrics[cost], t.metrics[&o.metric]))
                .collect();
            let labels = trials
                .iter()
                .map(|t| format!("trial {}: {}", t.id, crate::assignment::text(&t.assignment)))
                .collect();
            // The trials no other trial beats in both the objective and the cost.
            let pair = [
                o.clone(),
                Objective {
                    metric: cost.to_string(),
                    direction: Direction::Minimize,
                },
            ];
            let mut front: Vec<(f64, f64)> = pareto_front(&run.trials, &pair)
                .iter()
                .filter_map(|id| trials.iter().find(|t| t.id == *id))
                .map(|t| (t.metrics[cost], t.metrics[&o.metric]))
                .collect();
            front.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut chart = Chart::new(&format!("{} against {label}", o.metric), label, &o.metric)
                .scatter("trials", "#999", points, labels, 3.5)
                .with("", COLORS[1], front.clone(), Mark::Steps)
                .scatter("Pareto front", COLORS[1], front, Vec::new(), 5.0);
            chart.log_x = log;
            charts += &chart.svg();
        }
    }
    let _ = writeln!(
        out,
        "<h2>Trade-offs</h2>\n<p class=\"note\">Each objective against model cost; the red steps join the trials that no other trial beats in both (the Pareto front of that pair).</p>\n<div class=\"charts\">{charts}</div>"
    );
}

/// With `[quantize]`: each trial's int8 accuracy against its float
/// accuracy, and the int8 model's accuracy against its size with the Pareto
/// front of that pair.
fn quantization(run: &Run, out: &mut String) {
    let trials: Vec<&TrialRecord> = run
        .evaluated()
        .filter(|t| {
            ["val_accuracy", "int8_val_accuracy", "int8_size_kb"]
                .iter()
                .all(|m| t.metrics.contains_key(*m))
        })
        .collect();
    if trials.is_empty() {
        return;
    }
    let labels: Vec<String> = trials
        .iter()
        .map(|t| format!("trial {}: {}", t.id, crate::assignment::text(&t.assignment)))
        .collect();
    let point = |t: &TrialRecord, x: &str, y: &str| (t.metrics[x], t.metrics[y]);
    let accuracies: Vec<(f64, f64)> = trials
        .iter()
        .map(|t| point(t, "val_accuracy", "int8_val_accuracy"))
        .collect();
    let (low, high) = accuracies
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(x, y)| {
            (l.min(x.min(y)), h.max(x.max(y)))
        });
    let changes: Vec<f64> = accuracies.iter().map(|(f, q)| q - f).collect();
    let mean = changes.iter().sum::<f64>() / changes.len() as f64;
    let worst = changes.iter().copied().fold(f64::INFINITY, f64::min);
    let by_accuracy = Chart::new(
        "int8 against float validation accuracy",
        "val_accuracy (float)",
        "int8_val_accuracy",
    )
    .with("equal", "#bbb", vec![(low, low), (high, high)], Mark::Line)
    .scatter("trials", COLORS[0], accuracies, labels.clone(), 3.5);
    let pair = [
        Objective {
            metric: "int8_val_accuracy".into(),
            direction: Direction::Maximize,
        },
        Objective {
            metric: "int8_size_kb".into(),
            direction: Direction::Minimize,
        },
    ];
    let mut front: Vec<(f64, f64)> = pareto_front(&run.trials, &pair)
        .iter()
        .filter_map(|id| trials.iter().find(|t| t.id == *id))
        .map(|t| point(t, "int8_size_kb", "int8_val_accuracy"))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    let sizes = trials
        .iter()
        .map(|t| point(t, "int8_size_kb", "int8_val_accuracy"))
        .collect();
    let mut by_size = Chart::new(
        "int8 Pareto front: int8_val_accuracy against int8_size_kb",
        "int8 model size (KiB)",
        "int8_val_accuracy",
    )
    .scatter("trials", "#999", sizes, labels, 3.5)
    .with("", COLORS[1], front.clone(), Mark::Steps)
    .scatter("Pareto front", COLORS[1], front, Vec::new(), 5.0);
    by_size.log_x = true;
    let _ = writeln!(
        out,
        "<h2>Quantization</h2>\n<p class=\"note\">Each trial quantized to int8 after training: validation accuracy changed by {} points on average, {} at worst, over {} trials.</p>\n<div class=\"charts\">{}{}</div>",
        number(mean * 100.0),
        number(worst * 100.0),
        trials.len(),
        by_accuracy.svg(),
        by_size.svg()
    );
}

fn curves(run: &Run, out: &mut String) {
    let o = run.objective();
    let mut top: Vec<&TrialRecord> = run
        .evaluated()
        .filter(|t| !t.curve.is_empty() && t.metrics.contains_key(&o.metric))
        .collect();
    top.sort_by(|a, b| {
        let c = a.metrics[&o.metric].total_cmp(&b.metrics[&o.metric]);
        if maximize(o) {
            c.reverse()
        } else {
            c
        }
    });
    top.truncate(5);
    out.push_str("<h2>Learning curves of the top trials</h2>\n");
    if top.is_empty() {
        out.push_str("<p class=\"note\">No per-epoch curves (research mode looks results up in a table).</p>\n");
        return;
    }
    let mut acc = Chart::new("validation accuracy per epoch", "epoch", "val_accuracy");
    let mut loss = Chart::new(
        "training and validation loss per epoch",
        "epoch",
        "loss (solid: validation)",
    );
    for (i, t) in top.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let name = format!("trial {}", t.id);
        let points = |f: fn(&crate::ir::EpochRecord) -> f64| -> Vec<(f64, f64)> {
            t.curve.iter().map(|e| (e.epoch as f64, f(e))).collect()
        };
        acc = acc.with(&name, color, points(|e| e.val_accuracy), Mark::Line);
        loss = loss
            .with(&name, color, points(|e| e.val_loss), Mark::Line)
            .scatter("", color, points(|e| e.train_loss), Vec::new(), 2.5);
    }
    let _ = writeln!(
        out,
        "<div class=\"charts\">{}{}</div>",
        acc.svg(),
        loss.svg()
    );
}

fn effects(run: &Run, out: &mut String) {
    let o = run.objective();
    let mut dims: Vec<String> = Vec::new();
    for t in run.evaluated() {
        for b in &t.assignment {
            if !dims.contains(&b.name) {
                dims.push(b.name.clone());
            }
        }
    }
    let mut charts = String::new();
    for dim in &dims {
        let values: Vec<(&Value, f64, u64)> = run
            .evaluated()
            .filter_map(|t| {
                let b = t.assignment.iter().find(|b| &b.name == dim)?;
                Some((&b.value, *t.metrics.get(&o.metric)?, t.id))
            })
            .collect();
        let numeric = values
            .iter()
            .all(|(v, ..)| matches!(v, Value::Integer(_) | Value::Real(_)));
        let labels: Vec<String> = values
            .iter()
            .map(|(_, _, id)| format!("trial {id}"))
            .collect();
        let chart = if numeric {
            let points = values
                .iter()
                .map(|(v, y, _)| {
                    let x = match v {
                        Value::Integer(i) => *i as f64,
                        Value::Real(r) => *r,
                        Value::Categorical(_) => f64::NAN,
                    };
                    (x, *y)
                })
                .collect();
            Chart::new(dim, dim, &o.metric).scatter("", COLORS[0], points, labels, 3.5)
        } else {
            let mut names: Vec<String> = values.iter().map(|(v, ..)| value_text(v)).collect();
            names.sort();
            names.dedup();
            let index = |v: &Value| names.iter().position(|n| *n == value_text(v)).unwrap_or(0);
            // A small fixed spread keeps equal values apart.
            let points = values
                .iter()
                .enumerate()
                .map(|(k, (v, y, _))| (index(v) as f64 + ((k % 7) as f64 - 3.0) * 0.04, *y))
                .collect();
            let means = (0..names.len())
                .filter_map(|i| {
                    let ys: Vec<f64> = values
                        .iter()
                        .filter(|(v, ..)| index(v) == i)
                        .map(|(_, y, _)| *y)
                        .collect();
                    (!ys.is_empty()).then(|| (i as f64, ys.iter().sum::<f64>() / ys.len() as f64))
                })
                .collect();
            let mut chart = Chart::new(dim, dim, &o.metric)
                .scatter("trials", "#999", points, labels, 3.0)
                .scatter("mean", COLORS[1], means, Vec::new(), 6.0);
            chart.x_categories = Some(names);
            chart
        };
        charts += &chart.svg();
    }
    let _ = writeln!(
        out,
        "<h2>Effect of each dimension on {}</h2>\n<div class=\"charts\">{charts}</div>",
        escape(&o.metric)
    );
}

fn table(run: &Run, out: &mut String) {
    let mut metrics: Vec<String> = run
        .facts
        .objectives
        .iter()
        .map(|o| o.metric.clone())
        .collect();
    for m in [
        "val_accuracy",
        "val_loss",
        "params",
        "flops",
        "latency_b1_ms",
        "train_seconds",
    ] {
        if !metrics.iter().any(|x| x == m) && run.trials.iter().any(|t| t.metrics.contains_key(m)) {
            metrics.push(m.to_string());
        }
    }
    let best = run.best().map(|b| b.id);
    out.push_str("<h2>All trials</h2>\n<p class=\"note\">Click a column to sort.</p>\n<table class=\"sortable\"><thead><tr><th>trial</th><th class=\"text\">status</th>");
    for m in &metrics {
        let _ = write!(out, "<th>{}</th>", escape(m));
    }
    out.push_str("<th>epochs</th><th>seconds</th><th>reused from</th><th class=\"text\">assignment</th><th class=\"text\">reason</th></tr></thead><tbody>\n");
    for t in &run.trials {
        let class = if Some(t.id) == best {
            " class=\"best\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td class=\"text\">{}</td>",
            t.id,
            status_text(t.status)
        );
        for m in &metrics {
            match t.metrics.get(m) {
                Some(v) if matches!(m.as_str(), "params" | "flops") => {
                    let _ = write!(out, "<td data-v=\"{v}\">{}</td>", grouped(*v as u64));
                }
                Some(v) => {
                    let _ = write!(out, "<td data-v=\"{v}\">{}</td>", number(*v));
                }
                None => out.push_str("<td data-v=\"\"></td>"),
            }
        }
        let _ = writeln!(
            out,
            "<td>{}</td><td data-v=\"{}\">{:.1}</td><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td></tr>",
            t.budget,
            t.seconds,
            t.seconds,
            t.reused_from.map(|r| r.to_string()).unwrap_or_default(),
            escape(&crate::assignment::text(&t.assignment)),
            escape(t.reason.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>\n");
}

fn architecture(run: &Run, out: &mut String) -> Result<()> {
    out.push_str("<h2>Best architecture</h2>\n");
    let best = run.best();
    match (best, best.and_then(|b| b.network.as_ref()), run.task) {
        (Some(t), Some(network), Some(task)) => {
            let _ = writeln!(
                out,
                "<p>Trial {} ({}): {} parameters.</p>\n{}",
                t.id,
                escape(&crate::assignment::text(&t.assignment)),
                grouped(t.metrics.get("params").copied().unwrap_or(0.0) as u64),
                graph::svg(network, &task)?
            );
        }
        _ => out.push_str("<p class=\"note\">No completed trial yet.</p>\n"),
    }
    Ok(())
}
