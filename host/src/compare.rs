//! `nas-host compare`: runs each contender (a strategy with its settings,
//! under a name of its own) with several seeds on one config and summarises
//! the best-so-far objective after each number of trials, or against the
//! training spent, with the report metric of the best-so-far trial (for
//! example search on validation accuracy, report test accuracy: the
//! NAS-Bench protocol), as mean, sample standard deviation and standard
//! error over seeds. In table mode with fidelities, only full-budget trials
//! (a budget that is not a fidelity) enter the compared curve. Saves CSV
//! files and an SVG plot.

use crate::config::{EvaluatorKind, PluginSection, RunConfig};
use crate::interrupt::Cancel;
use crate::ir::{Objective, TrialStatus};
use crate::plot::{Chart, Mark, COLORS};
use crate::progress::{Mode, Reporter};
use crate::results::{better, charged_seconds, objective_value};
use crate::search;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One strategy setting in a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Contender {
    /// The name shown and used for its runs' folders (`rea` for `rea=evolution`).
    pub name: String,
    /// The strategy: a built-in name (`random`) or a plugin as `[strategy] plugin` takes it.
    pub strategy: String,
    /// Its config keys, over the config's own when the config names the same strategy.
    pub settings: toml::Table,
}

/// One point of a run's path: after a trial, the x reached (trials or
/// training seconds), the best objective by then and that trial's report
/// metric (NaN before the first counted trial, or where a trial lacks it).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    x: f64,
    best: f64,
    report: f64,
}

/// A run's best-so-far path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPath {
    steps: Vec<Step>,
    /// The report metric of the run's final best trial.
    pub last: f64,
}

impl RunPath {
    /// The best objective and its trial's report metric at `x`: from the
    /// last step at or before `x` (a run that finished early keeps its best).
    pub fn at(&self, x: f64) -> (f64, f64) {
        self.steps
            .iter()
            .take_while(|s| s.x <= x)
            .last()
            .map_or((f64::NAN, f64::NAN), |s| (s.best, s.report))
    }
}

/// The runs of one contender over its seeds.
#[derive(Debug, Clone, Default)]
pub struct StrategyRuns {
    /// Per seed, in seed order.
    pub paths: Vec<RunPath>,
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

/// The most trials of one run by cost.
pub const COST_AXIS_TRIALS: u64 = 100_000;

/// Points of a cost curve (at 1%, 2%, ... 100% of the budget).
const COST_POINTS: usize = 100;

/// What a comparison runs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The contenders, in the order shown.
    pub contenders: Vec<Contender>,
    /// Seeds per contender (0 to seeds - 1).
    pub seeds: u64,
    /// Trials per run, or training seconds with [`Axis::Cost`].
    pub budget: u64,
    /// What the budget counts.
    pub axis: Axis,
    /// The metric reported for the best-so-far trial.
    pub report: String,
    /// Where the printed table reads the curves (trials or seconds); empty: the defaults.
    pub checkpoints: Vec<f64>,
    /// The comparison's folder name under the output folder; default `NAME-compare`.
    pub name: Option<String>,
    /// Table mode: reused trials cost their first evaluation's seconds again.
    pub charge_reused: bool,
}

/// A whole comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Contender name -> its runs, in the order given.
    pub runs: Vec<(String, StrategyRuns)>,
    /// Trials per run, or simulated training seconds per run with [`Axis::Cost`].
    pub budget: u64,
    /// What the budget and the curves' x axis count.
    pub axis: Axis,
    /// The searched objective.
    pub objective: Objective,
    /// The reported metric.
    pub report: String,
    /// Where the printed table reads the curves.
    pub checkpoints: Vec<f64>,
    /// Whether reused trials cost their first evaluation's seconds again.
    pub charge_reused: bool,
    /// Where the CSV files, the SVG and the runs went.
    pub dir: PathBuf,
}

/// Mean, sample standard deviation and standard error of a value over seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The mean of the finite values (NaN without any).
    pub mean: f64,
    /// Their sample standard deviation (n - 1 in the denominator; 0 for one value).
    pub std: f64,
    /// The standard error of the mean, std / sqrt(n).
    pub se: f64,
    /// How many values were finite.
    pub n: usize,
}

/// The [`Spread`] of the finite values.
pub fn spread(values: &[f64]) -> Spread {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Spread {
            mean: f64::NAN,
            std: f64::NAN,
            se: f64::NAN,
            n: 0,
        };
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Spread {
        mean,
        std: var.sqrt(),
        se: var.sqrt() / n.sqrt(),
        n: v.len(),
    }
}

/// `random` means `builtin:random`; anything with a `/` or `:` is taken as given.
fn plugin_of(strategy: &str) -> String {
    if strategy.contains(['/', ':']) {
        strategy.to_string()
    } else {
        format!("builtin:{strategy}")
    }
}

/// Refuses a plan that could not give a meaningful comparison.
fn check(config: &RunConfig, plan: &Plan) -> Result<()> {
    if plan.seeds == 0 || plan.budget == 0 {
        bail!("--seeds and --budget must be at least 1");
    }
    let mut names = BTreeSet::new();
    for c in &plan.contenders {
        if c.name.is_empty() || c.name.contains(['/', ':', '.', ',', '=']) {
            bail!(
                "--strategies: `{}` is not a usable name; give one as NAME=STRATEGY, for example rea=evolution",
                c.name
            );
        }
        if !names.insert(&c.name) {
            bail!(
                "--strategies names `{}` twice; give each setting its own name, for example {0}-a={1},{0}-b={1} with --set {0}-a.KEY=VALUE",
                c.name,
                c.strategy
            );
        }
    }
    for &c in &plan.checkpoints {
        if !(c > 0.0 && c <= plan.budget as f64) {
            bail!(
                "--checkpoints {c} must be above 0 and at most the budget, {}",
                plan.budget
            );
        }
    }
    let table = config.evaluator.kind == EvaluatorKind::Table;
    if plan.charge_reused && !table {
        bail!("--charge-reused applies to table mode, where seconds are simulated");
    }
    if plan.axis == Axis::Cost
        && table
        && config.evaluator.cost_column.is_none()
        && config.evaluator.fidelity_costs.is_empty()
    {
        bail!(
            "--by cost needs simulated training seconds, and this table run has none: \
             name the table's time column in [evaluator] cost_column (and [evaluator.fidelity_costs]), or compare --by trials"
        );
    }
    Ok(())
}

/// Runs the comparison; table-mode runs go in parallel across the cores.
pub fn compare(config: &RunConfig, plan: &Plan) -> Result<Comparison> {
    check(config, plan)?;
    let name = plan
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-compare", config.name()));
    let dir = config.run.output_dir.join(&name);
    if dir.exists() {
        bail!(
            "{} already holds a comparison: give this one another --name, or remove that folder",
            dir.display()
        );
    }
    let mut base = config.clone();
    base.evaluator.charge_reused |= plan.charge_reused;
    if base.evaluator.kind == EvaluatorKind::Table {
        // Once for all runs, before any starts.
        search::check_table(&base)?;
        base.evaluator.coverage_checked = true;
    }
    // Each contender runs with its own table: its keys over the config's
    // own when the config names the same strategy.
    let configs: Vec<RunConfig> = plan
        .contenders
        .iter()
        .map(|c| {
            let mut run = base.clone();
            let plugin = plugin_of(&c.strategy);
            let mut table = if plugin == config.strategy.plugin {
                config.strategy.config.clone()
            } else {
                toml::Table::new()
            };
            table.extend(c.settings.clone());
            run.strategy = PluginSection {
                plugin,
                config: table,
            };
            run
        })
        .collect();
    let objective = config.objectives[0].objective();
    let fidelities: BTreeSet<u32> = config
        .evaluator
        .fidelities
        .keys()
        .filter_map(|b| b.parse().ok())
        .collect();
    let jobs: Vec<(usize, u64)> = (0..plan.contenders.len())
        .flat_map(|s| (0..plan.seeds).map(move |seed| (s, seed)))
        .collect();
    let results: Mutex<BTreeMap<(usize, u64), Result<RunPath>>> = Mutex::default();
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
                let run = Run {
                    config: &configs[s],
                    name: &plan.contenders[s].name,
                    objective: &objective,
                    fidelities: &fidelities,
                    plan,
                    dir: &dir,
                };
                let outcome = run.path(seed);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((s, seed), outcome);
            });
        }
    });
    let mut runs: Vec<(String, StrategyRuns)> = plan
        .contenders
        .iter()
        .map(|c| (c.name.clone(), StrategyRuns::default()))
        .collect();
    for ((s, seed), outcome) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let path = outcome.with_context(|| format!("`{}`, seed {seed}", runs[s].0))?;
        runs[s].1.paths.push(path);
    }
    let checkpoints = if plan.checkpoints.is_empty() {
        default_checkpoints(plan)
    } else {
        plan.checkpoints.clone()
    };
    let comparison = Comparison {
        runs,
        budget: plan.budget,
        axis: plan.axis,
        objective,
        report: plan.report.clone(),
        checkpoints,
        charge_reused: base.evaluator.charge_reused,
        dir,
    };
    comparison.save()?;
    Ok(comparison)
}

/// 10, 25, 50, 100, ... below the budget, then the budget (in trials, or in
/// percent of the budget by cost).
fn default_checkpoints(plan: &Plan) -> Vec<f64> {
    let mut points: Vec<f64> = match plan.axis {
        Axis::Trials => [10u64, 25, 50, 100, 200, 500, 1000]
            .into_iter()
            .filter(|&c| c < plan.budget)
            .map(|c| c as f64)
            .collect(),
        Axis::Cost => [10u64, 25, 50]
            .into_iter()
            .map(|p| plan.budget as f64 * p as f64 / 100.0)
            .collect(),
    };
    points.push(plan.budget as f64);
    points
}

/// One run of a comparison.
struct Run<'a> {
    config: &'a RunConfig,
    name: &'a str,
    objective: &'a Objective,
    /// Fidelity budgets of a table: trials at these are not counted.
    fidelities: &'a BTreeSet<u32>,
    plan: &'a Plan,
    dir: &'a Path,
}

impl Run<'_> {
    fn path(&self, seed: u64) -> Result<RunPath> {
        let mut c = self.config.clone();
        c.run.seed = seed;
        match self.plan.axis {
            Axis::Trials => c.run.max_trials = self.plan.budget,
            Axis::Cost => {
                // The training budget limits the run; the trial cap only
                // stops one whose trials cost nothing (reused ones, free by
                // default) from running forever.
                c.run.max_trials = COST_AXIS_TRIALS;
                c.run.max_time_s = Some(self.plan.budget as f64);
            }
        }
        c.run.output_dir = self.dir.to_path_buf();
        c.run.name = Some(format!("{}-seed{seed}", self.name));
        let result = search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new())?;
        let report = &self.plan.report;
        let (mut best, mut best_report, mut spent) = (f64::NAN, f64::NAN, 0.0);
        let mut steps = Vec::with_capacity(result.trials.len());
        for (i, t) in result.trials.iter().enumerate() {
            spent += charged_seconds(t, c.evaluator.charge_reused);
            let counted =
                t.status == TrialStatus::Completed && !self.fidelities.contains(&t.budget);
            if let Some(v) = objective_value(t, self.objective).filter(|_| counted) {
                if best.is_nan() || better(v, best, self.objective) {
                    best = v;
                    best_report = t.metrics.get(report).copied().unwrap_or(f64::NAN);
                }
            }
            let x = match self.plan.axis {
                Axis::Trials => (i + 1) as f64,
                Axis::Cost => spent,
            };
            steps.push(Step {
                x,
                best,
                report: best_report,
            });
        }
        // Where trials do not carry the report metric (it is measured on
        // the held-out split for the final best only), the run's report.
        let held_out = result
            .best
            .as_ref()
            .and_then(|b| b.held_out.get(report).copied())
            .unwrap_or(f64::NAN);
        let last = if best_report.is_finite() {
            best_report
        } else {
            held_out
        };
        Ok(RunPath { steps, last })
    }
}

impl Comparison {
    /// The x values of the saved curves: every trial, or 100 cost points.
    fn points(&self) -> Vec<f64> {
        match self.axis {
            Axis::Trials => (1..=self.budget).map(|t| t as f64).collect(),
            Axis::Cost => (1..=COST_POINTS)
                .map(|k| self.budget as f64 * k as f64 / COST_POINTS as f64)
                .collect(),
        }
    }

    /// Per contender: the spread of the best objective and of its trial's
    /// report metric over seeds at `x`.
    pub fn at(&self, x: f64) -> Vec<(Spread, Spread)> {
        self.runs
            .iter()
            .map(|(_, r)| {
                let (best, report): (Vec<f64>, Vec<f64>) = r.paths.iter().map(|p| p.at(x)).unzip();
                (spread(&best), spread(&report))
            })
            .collect()
    }

    /// Per seed: contender `name`'s best objective at `x`.
    pub fn best_at(&self, name: &str, x: f64) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, r)| r.paths.iter().map(|p| p.at(x).0))
            .collect()
    }

    fn label(&self, x: f64) -> String {
        match self.axis {
            Axis::Trials => format!("N={x}"),
            Axis::Cost => format!("C={x:.0}"),
        }
    }

    /// The printed tables: best-so-far objective, then its trial's report
    /// metric, at each checkpoint; then the final best's report metric.
    pub fn table(&self) -> String {
        let seeds = self.runs.first().map_or(0, |(_, r)| r.paths.len());
        let after = match self.axis {
            Axis::Trials => "N trials",
            Axis::Cost => "C training seconds",
        };
        let mut out = format!(
            "over {seeds} seeds: mean ± sample standard deviation (standard error of the mean), after {after}; \
             k/{seeds}: only k seeds had a value there\n"
        );
        if self.axis == Axis::Cost {
            out += if self.charge_reused {
                "a reused trial (a repeated architecture) costs its first evaluation's seconds again\n"
            } else {
                "a reused trial (a repeated architecture) costs nothing but counts as a trial (--charge-reused to charge it)\n"
            };
        }
        let points: Vec<(f64, Vec<(Spread, Spread)>)> =
            self.checkpoints.iter().map(|&x| (x, self.at(x))).collect();
        // Seeds without a value yet (no counted trial) are left out and counted.
        let cell = |s: &Spread| match s.n {
            0 => "-".to_string(),
            n if n < seeds => format!("{:.3} ± {:.3} ({:.3}) {n}/{seeds}", s.mean, s.std, s.se),
            _ => format!("{:.3} ± {:.3} ({:.3})", s.mean, s.std, s.se),
        };
        for (title, pick) in [
            (format!("best-so-far {}", self.objective.metric), 0usize),
            (format!("{} of the best-so-far trial", self.report), 1),
        ] {
            out += &format!("\n{title}\n{:<16}", "strategy");
            for (x, _) in &points {
                out += &format!(" {:>28}", self.label(*x));
            }
            out.push('\n');
            for (i, (name, _)) in self.runs.iter().enumerate() {
                out += &format!("{name:<16}");
                for (_, spreads) in &points {
                    let s = if pick == 0 {
                        &spreads[i].0
                    } else {
                        &spreads[i].1
                    };
                    out += &format!(" {:>28}", cell(s));
                }
                out.push('\n');
            }
        }
        out += &format!("\nfinal best's {}\n", self.report);
        for (name, runs) in &self.runs {
            let lasts: Vec<f64> = runs.paths.iter().map(|p| p.last).collect();
            out += &format!("{name:<16} {:>28}\n", cell(&spread(&lasts)));
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
        let r = &self.report;
        let mut curve = format!("strategy,{x},mean,std,se,{r}_mean,{r}_std,{r}_se,seeds\n");
        for x in self.points() {
            for ((name, _), (b, rep)) in self.runs.iter().zip(self.at(x)) {
                writeln!(
                    curve,
                    "{name},{x},{},{},{},{},{},{},{}",
                    b.mean, b.std, b.se, rep.mean, rep.std, rep.se, b.n
                )?;
            }
        }
        std::fs::write(self.dir.join("best_so_far.csv"), curve)?;
        let mut finals = String::from("strategy,metric,mean,std,se,seeds\n");
        for (name, runs) in &self.runs {
            let lasts: Vec<f64> = runs.paths.iter().map(|p| p.last).collect();
            let s = spread(&lasts);
            writeln!(finals, "{name},{r},{},{},{},{}", s.mean, s.std, s.se, s.n)?;
        }
        std::fs::write(self.dir.join("final.csv"), finals)?;
        std::fs::write(self.dir.join("best_so_far.svg"), self.svg())?;
        Ok(())
    }

    /// A line per contender (mean) with a band of ± one standard deviation.
    pub fn svg(&self) -> String {
        let xs = self.points();
        let series: Vec<Vec<(Spread, Spread)>> = xs.iter().map(|&x| self.at(x)).collect();
        let x_label = match self.axis {
            Axis::Trials => format!("trials (1 to {})", self.budget),
            Axis::Cost => format!("training seconds (to {})", self.budget),
        };
        let mut chart = Chart::new(
            &format!("best-so-far {} (mean ± sample std)", self.objective.metric),
            &x_label,
            "",
        );
        chart.size = (720.0, 420.0);
        for (i, (name, _)) in self.runs.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64, f64)> = xs
                .iter()
                .zip(&series)
                .filter(|(_, s)| s[i].0.mean.is_finite())
                .map(|(&x, s)| (x, s[i].0.mean, s[i].0.std))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_states_sample_std_and_standard_error() {
        let s = spread(&[1.0, 2.0, 3.0, f64::NAN]);
        assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 3));
        assert!((s.se - 1.0 / 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(spread(&[5.0]).std, 0.0);
        assert!(spread(&[]).mean.is_nan());
    }

    #[test]
    fn a_path_holds_its_last_step_at_or_before_x() {
        let p = RunPath {
            steps: vec![
                Step {
                    x: 1.0,
                    best: f64::NAN,
                    report: f64::NAN,
                },
                Step {
                    x: 2.0,
                    best: 0.5,
                    report: 0.4,
                },
                Step {
                    x: 3.0,
                    best: 0.7,
                    report: 0.6,
                },
            ],
            last: 0.6,
        };
        assert!(p.at(0.5).0.is_nan());
        assert_eq!(p.at(2.5), (0.5, 0.4));
        assert_eq!(
            p.at(100.0),
            (0.7, 0.6),
            "a run that ended early keeps its best"
        );
    }
}
