//! `nas-host compare`: runs each strategy with several seeds on one config and
//! summarises the best-so-far objective after each number of trials, or
//! against the training spent (mean and standard deviation over seeds), and the final best's value on a separate
//! report metric (for example search on validation accuracy, report test
//! accuracy: the NAS-Bench protocol). Saves CSV files and an SVG plot.

use crate::config::{EvaluatorKind, PluginSection, RunConfig};
use crate::interrupt::Cancel;
use crate::ir::Objective;
use crate::plot::{Chart, Mark, COLORS};
use crate::progress::{Mode, Reporter};
use crate::results::best_so_far;
use crate::search;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Best-so-far curves and final report values of one strategy over its seeds.
#[derive(Debug, Clone, Default)]
pub struct StrategyRuns {
    /// Per seed: the best objective after 1, 2, ... trials (NaN before the first completed trial).
    pub curves: Vec<Vec<f64>>,
    /// Per seed: the report metric of the run's best trial.
    pub finals: Vec<f64>,
}

/// What a comparison's budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Axis {
    /// Trials: best-so-far after 1, 2, ... trials.
    Trials,
    /// Training seconds (simulated in table mode): best-so-far against the
    /// training spent, which compares multi-fidelity strategies fairly.
    Cost,
}

/// Points of a cost curve (at 1%, 2%, ... 100% of the budget).
const COST_POINTS: usize = 100;

/// A whole comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Strategy name -> its runs, in the order given.
    pub runs: Vec<(String, StrategyRuns)>,
    /// Trials per run, or simulated training seconds per run with [`Axis::Cost`].
    pub budget: u64,
    /// What the budget and the curves' x axis count.
    pub axis: Axis,
    /// The searched objective.
    pub objective: Objective,
    /// The reported metric.
    pub report: String,
    /// Where the CSV files, the SVG and the runs went.
    pub dir: PathBuf,
}

/// `random` means `builtin:random`; anything with a `/` or `:` is taken as given.
fn plugin_of(strategy: &str) -> String {
    if strategy.contains(['/', ':']) {
        strategy.to_string()
    } else {
        format!("builtin:{strategy}")
    }
}

/// Mean and (sample) standard deviation of the finite values.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Runs the comparison; table-mode runs go in parallel across the cores.
pub fn compare(
    config: &RunConfig,
    strategies: &[(String, toml::Table)],
    seeds: u64,
    (budget, axis): (u64, Axis),
    report: &str,
) -> Result<Comparison> {
    // Each strategy runs with its own table: the given keys, else the
    // config's own table when the config names that strategy.
    let configs: Vec<RunConfig> = strategies
        .iter()
        .map(|(name, settings)| {
            let mut c = config.clone();
            let plugin = plugin_of(name);
            let mut table = if plugin == config.strategy.plugin {
                config.strategy.config.clone()
            } else {
                toml::Table::new()
            };
            table.extend(settings.clone());
            c.strategy = PluginSection {
                plugin,
                config: table,
            };
            c
        })
        .collect();
    let dir = config
        .run
        .output_dir
        .join(format!("{}-compare", config.name()));
    let objective = config.objectives[0].objective();
    let jobs: Vec<(usize, u64)> = (0..strategies.len())
        .flat_map(|s| (0..seeds).map(move |seed| (s, seed)))
        .collect();
    let results: Mutex<BTreeMap<(usize, u64), Result<RunSummary>>> = Mutex::default();
    let next = Mutex::new(jobs.into_iter());
    let threads = if config.evaluator.kind == EvaluatorKind::Table {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1 // Training already uses every core.
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some((s, seed)) = next.lock().unwrap_or_else(|e| e.into_inner()).next() else {
                    break;
                };
                let outcome = one_run(
                    &configs[s],
                    &strategies[s].0,
                    seed,
                    (budget, axis),
                    &objective,
                    report,
                    &dir,
                );
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((s, seed), outcome);
            });
        }
    });
    let mut runs: Vec<(String, StrategyRuns)> = strategies
        .iter()
        .map(|(s, _)| (s.clone(), StrategyRuns::default()))
        .collect();
    for ((s, seed), outcome) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let (curve, last) =
            outcome.with_context(|| format!("strategy `{}`, seed {seed}", strategies[s].0))?;
        runs[s].1.curves.push(curve);
        runs[s].1.finals.push(last);
    }
    let comparison = Comparison {
        runs,
        budget,
        axis,
        objective,
        report: report.to_string(),
        dir,
    };
    comparison.save()?;
    Ok(comparison)
}

/// One run's best-so-far curve and its best trial's report metric.
type RunSummary = (Vec<f64>, f64);

fn one_run(
    config: &RunConfig,
    strategy: &str,
    seed: u64,
    (budget, axis): (u64, Axis),
    objective: &Objective,
    report: &str,
    dir: &Path,
) -> Result<RunSummary> {
    let mut c = config.clone();
    c.run.seed = seed;
    match axis {
        Axis::Trials => c.run.max_trials = budget,
        Axis::Cost => {
            // Only the training budget limits the run.
            c.run.max_trials = u64::MAX / 2;
            c.run.max_time_s = Some(budget as f64);
        }
    }
    c.run.output_dir = dir.to_path_buf();
    c.run.name = Some(format!(
        "{}-seed{seed}",
        strategy.replace(['/', ':', '.'], "_")
    ));
    let result = search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new())?;
    let steps = best_so_far(&result.trials, objective);
    let curve = match axis {
        Axis::Trials => {
            let mut curve: Vec<f64> = steps.iter().map(|s| s.best).collect();
            // A strategy that finished early keeps its best for the remaining trials.
            curve.resize(budget as usize, steps.last().map_or(f64::NAN, |s| s.best));
            curve
        }
        Axis::Cost => (1..=COST_POINTS)
            .map(|k| {
                let x = budget as f64 * k as f64 / COST_POINTS as f64;
                steps
                    .iter()
                    .take_while(|s| s.spent <= x)
                    .last()
                    .map_or(f64::NAN, |s| s.best)
            })
            .collect(),
    };
    let last = result
        .best
        .as_ref()
        .and_then(|b| {
            b.trial
                .metrics
                .get(report)
                .or(b.held_out.get(report))
                .copied()
        })
        .unwrap_or(f64::NAN);
    Ok((curve, last))
}

impl Comparison {
    /// Points on each curve: trials, or cost points.
    fn points(&self) -> usize {
        match self.axis {
            Axis::Trials => self.budget as usize,
            Axis::Cost => COST_POINTS,
        }
    }

    /// The x value (trials or training seconds) of curve point `k` (1-based).
    fn x_of(&self, k: usize) -> f64 {
        match self.axis {
            Axis::Trials => k as f64,
            Axis::Cost => self.budget as f64 * k as f64 / COST_POINTS as f64,
        }
    }

    /// Mean and standard deviation of each strategy's best-so-far at curve point `trials` (1-based).
    pub fn at(&self, trials: usize) -> Vec<(f64, f64)> {
        self.runs
            .iter()
            .map(|(_, r)| mean_std(&r.curves.iter().map(|c| c[trials - 1]).collect::<Vec<_>>()))
            .collect()
    }

    /// The printed table: best-so-far at checkpoints, then the report metric.
    pub fn table(&self) -> String {
        let points = self.points();
        let mut checkpoints: Vec<usize> = [10, 25, 50, 100, 200, 500, 1000]
            .into_iter()
            .filter(|&c| c < points)
            .collect();
        checkpoints.push(points);
        let after = match self.axis {
            Axis::Trials => "N trials",
            Axis::Cost => "C training seconds",
        };
        let mut out = format!(
            "best-so-far {} (mean ± std over seeds) after {after}; final best's {}\n",
            self.objective.metric, self.report
        );
        out += &format!("{:<16}", "strategy");
        for &c in &checkpoints {
            let label = match self.axis {
                Axis::Trials => format!("N={c}"),
                Axis::Cost => format!("C={:.0}", self.x_of(c)),
            };
            out += &format!(" {label:>16}");
        }
        out += &format!(" {:>18}\n", self.report);
        for (i, (name, runs)) in self.runs.iter().enumerate() {
            out += &format!("{name:<16}");
            for &c in &checkpoints {
                let (m, s) = self.at(c)[i];
                out += &format!(" {:>16}", format!("{m:.3} ± {s:.3}"));
            }
            let (m, s) = mean_std(&runs.finals);
            out += &format!(" {:>18}\n", format!("{m:.3} ± {s:.3}"));
        }
        out
    }

    fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        let x = match self.axis {
            Axis::Trials => "trials",
            Axis::Cost => "training_seconds",
        };
        let mut curve = format!("strategy,{x},mean,std,seeds\n");
        for t in 1..=self.points() {
            for ((name, runs), (m, s)) in self.runs.iter().zip(self.at(t)) {
                writeln!(
                    curve,
                    "{name},{},{m},{s},{}",
                    self.x_of(t),
                    runs.curves.len()
                )?;
            }
        }
        std::fs::write(self.dir.join("best_so_far.csv"), curve)?;
        let mut finals = String::from("strategy,metric,mean,std,seeds\n");
        for (name, runs) in &self.runs {
            let (m, s) = mean_std(&runs.finals);
            writeln!(
                finals,
                "{name},{},{m},{s},{}",
                self.report,
                runs.finals.len()
            )?;
        }
        std::fs::write(self.dir.join("final.csv"), finals)?;
        std::fs::write(self.dir.join("best_so_far.svg"), self.svg())?;
        Ok(())
    }

    /// A line per strategy (mean) with a band of ± one standard deviation.
    pub fn svg(&self) -> String {
        let series: Vec<Vec<(f64, f64)>> = (1..=self.points()).map(|t| self.at(t)).collect();
        let x_label = match self.axis {
            Axis::Trials => format!("trials (1 to {})", self.budget),
            Axis::Cost => format!("training seconds (to {})", self.budget),
        };
        let mut chart = Chart::new(
            &format!("best-so-far {} (mean ± std)", self.objective.metric),
            &x_label,
            "",
        );
        chart.size = (720.0, 420.0);
        for (i, (name, _)) in self.runs.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64, f64)> = series
                .iter()
                .enumerate()
                .filter(|(_, s)| s[i].0.is_finite())
                .map(|(t, s)| (self.x_of(t + 1), s[i].0, s[i].1))
                .collect();
            let upper = points.iter().map(|&(t, m, s)| (t, m + s)).collect();
            let lower = points.iter().map(|&(t, m, s)| (t, m - s)).collect();
            let mean = points.iter().map(|&(t, m, _)| (t, m)).collect();
            chart = chart.with("", color, upper, Mark::Band { lower }).with(
                name,
                color,
                mean,
                Mark::Line,
            );
        }
        chart.svg()
    }
}
