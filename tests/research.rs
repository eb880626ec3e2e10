//! Research mode: table-evaluated searches over the NAS-Bench-201 space with
//! the project's synthetic table, and `nas-host compare` end to end.

mod common;

use nas_host::config::RunConfig;
use nas_host::interrupt::Cancel;
use nas_host::ir::TrialStatus;
use nas_host::progress::{Mode, Reporter};
use nas_host::store::RunStore;
use nas_host::table::Table;
use std::collections::HashMap;
use std::process::Command;

const TABLE: &str = "examples/tables/nb201-synthetic.csv";

#[test]
fn the_shipped_table_is_what_the_generator_writes() {
    let path = common::root().join(TABLE);
    let generated = common::nb201_synthetic_table();
    if std::env::var_os("NAS_REGENERATE_TABLES").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path)
        .expect("examples/tables/nb201-synthetic.csv (NAS_REGENERATE_TABLES=1 writes it)");
    assert!(
        shipped == generated,
        "{} is stale: rerun with NAS_REGENERATE_TABLES=1",
        path.display()
    );
    assert_eq!(shipped.lines().count(), 15_626);
}

/// The research example with `changes` applied and its table path absolute.
fn config(changes: &[(&str, &str)]) -> RunConfig {
    let mut text = std::fs::read_to_string(common::root().join("examples/research.toml")).unwrap();
    for (from, to) in changes {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("research.toml");
    std::fs::write(
        &path,
        text.replace(
            "tables/nb201-synthetic.csv",
            &common::root().join(TABLE).display().to_string(),
        ),
    )
    .unwrap();
    let mut c = RunConfig::load(&path).unwrap();
    c.run.output_dir = dir.join("runs");
    c
}

fn rows() -> HashMap<String, Vec<f64>> {
    std::fs::read_to_string(common::root().join(TABLE))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(',');
            (
                f.next().unwrap().to_string(),
                f.map(|v| v.parse().unwrap()).collect(),
            )
        })
        .collect()
}

#[test]
fn a_thousand_table_trials_record_the_table_values() {
    let c = config(&[
        ("max_trials = 100", "max_trials = 1000"),
        (
            "plugin = \"builtin:random\"",
            "plugin = \"builtin:random\"\nconfig = { unique = true }",
        ),
    ]);
    let result =
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new()).unwrap();
    assert_eq!(result.trials.len(), 1000);
    let table = rows();
    for t in &result.trials {
        assert_eq!(t.status, TrialStatus::Completed);
        let row = &table[t.key.as_ref().unwrap()];
        assert_eq!(
            t.metrics["val_accuracy"], row[1],
            "val_acc_200 of {:?}",
            t.key
        );
        assert_eq!(t.metrics["train_seconds"], row[4]);
    }
    let best = result.best.unwrap();
    assert_eq!(
        best.held_out["test_accuracy"],
        table[best.trial.key.as_ref().unwrap()][2]
    );
    let max = result
        .trials
        .iter()
        .map(|t| t.metrics["val_accuracy"])
        .fold(f64::MIN, f64::max);
    assert_eq!(best.objective, max);
}

#[test]
fn fidelities_pick_their_columns_and_costs() {
    let c = config(&[]);
    let table = Table::load(&c.evaluator.table().unwrap()).unwrap();
    let key = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let row = &rows()[key];
    let full = table.lookup(key, 200).unwrap();
    let short = table.lookup(key, 12).unwrap();
    assert_eq!((full.metrics["val_accuracy"], full.cost), (row[1], row[4]));
    assert_eq!(
        (short.metrics["val_accuracy"], short.cost),
        (row[0], row[3])
    );
    assert_eq!(full.metrics["test_accuracy"], row[2]);
    assert!(
        !short.metrics.contains_key("test_accuracy"),
        "a metric the fidelity does not map is absent, not the 200-epoch column"
    );
    let e = table.lookup("|nope~0|", 200).unwrap_err().to_string();
    assert!(
        e.contains("key `|nope~0|` is not in the evaluator table"),
        "{e}"
    );
}

/// A table that lacks some of the space's architectures is refused before
/// any trial, with the count and examples; with `allow_partial` the run
/// goes on and a trial of a missing architecture fails, saying why.
#[test]
fn a_partial_table_is_found_before_the_run_or_allowed_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.csv");
    let text = std::fs::read_to_string(common::root().join(TABLE)).unwrap();
    std::fs::write(&small, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let mut c = config(&[("max_trials = 100", "max_trials = 5")]);
    c.evaluator.path = Some(small);
    let e = format!(
        "{:#}",
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new())
            .err()
            .unwrap()
    );
    assert!(
        e.contains(
            "the evaluator table lacks 15623 of the space's 15625 architectures, for example `|"
        ) && e.contains("allow_partial = true"),
        "{e}"
    );
    assert!(
        !c.run.output_dir.join("research").exists(),
        "refused before the run directory was made"
    );
    c.evaluator.allow_partial = true;
    let result =
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new()).unwrap();
    assert_eq!(result.trials.len(), 5);
    for t in &result.trials {
        assert_eq!(t.status, TrialStatus::Failed);
        assert!(t
            .reason
            .as_deref()
            .unwrap()
            .contains("is not in the evaluator table"));
    }
}

#[test]
fn max_time_counts_simulated_seconds_in_table_mode() {
    let c = config(&[(
        "max_trials = 100",
        "max_trials = 1000\nmax_time_s = 100000.0",
    )]);
    let result =
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new()).unwrap();
    assert!(
        result.stop_reason.contains("simulated seconds"),
        "{}",
        result.stop_reason
    );
    let spent: Vec<f64> = result
        .trials
        .iter()
        .filter(|t| t.reused_from.is_none())
        .map(|t| t.metrics["train_seconds"])
        .collect();
    let total: f64 = spent.iter().sum();
    assert!(
        total >= 100_000.0 && total - spent.last().unwrap() < 100_000.0,
        "{total}"
    );
}

#[test]
fn compare_runs_strategies_over_seeds_and_saves_csv_and_svg() {
    let c = config(&[]);
    let dir = c.run.output_dir.clone();
    let config_path = dir.parent().unwrap().join("research.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args([
            "compare",
            config_path.to_str().unwrap(),
            "--strategies",
            "random,grid",
            "--seeds",
            "3",
            "--budget",
            "40",
        ])
        .args(["--output-dir", dir.to_str().unwrap()])
        .env(
            "NAS_HOST_CACHE_DIR",
            common::root().join("target/test-component-cache"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("random")
            && stdout.contains("grid")
            && stdout.contains("N=40")
            && stdout.contains("test_accuracy"),
        "{stdout}"
    );
    let base = dir.join("research-compare");
    let csv = std::fs::read_to_string(base.join("best_so_far.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 40);
    // Best-so-far never gets worse.
    for strategy in ["random", "grid"] {
        let means: Vec<f64> = csv
            .lines()
            .filter(|l| l.starts_with(&format!("{strategy},")))
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect();
        assert!(
            means.windows(2).all(|w| w[1] >= w[0]),
            "{strategy}: {means:?}"
        );
    }
    let finals = std::fs::read_to_string(base.join("final.csv")).unwrap();
    assert!(
        finals.contains("random,test_accuracy,") && finals.contains(",3\n"),
        "{finals}"
    );
    let svg = std::fs::read_to_string(base.join("best_so_far.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(base.join("random-seed2").join("nas.sqlite").exists());
}

#[test]
fn compare_by_cost_sets_strategy_keys_and_measures_training_seconds() {
    let c = config(&[]);
    let dir = c.run.output_dir.clone();
    let config_path = dir.parent().unwrap().join("research.toml");
    let compare = |extra: &[&str]| {
        common::nas_host_command(&[
            "compare",
            config_path.to_str().unwrap(),
            "--strategies",
            "random,asha",
            "--seeds",
            "3",
            "--by",
            "cost",
            "--budget",
            "30000",
            "--output-dir",
            dir.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap()
    };
    let out = compare(&["--set", "asha.budgets=[12, 200]", "--set", "asha.eta=4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("after C training seconds") && stdout.contains("C=30000"),
        "{stdout}"
    );
    let base = dir.join("research-compare");
    let csv = std::fs::read_to_string(base.join("best_so_far.csv")).unwrap();
    assert!(csv.starts_with(
        "strategy,training_seconds,mean,std,se,test_accuracy_mean,test_accuracy_std,test_accuracy_se,seeds\n"
    ));
    assert_eq!(csv.lines().count(), 1 + 2 * 100);
    // The key reached the strategy: its trials ran at the table's 12-epoch fidelity.
    let store = RunStore::open_read_only(&base.join("asha-seed0/nas.sqlite")).unwrap();
    let trials = store.trials().unwrap();
    assert!(
        trials.iter().any(|t| t.budget == 12)
            && trials.iter().all(|t| t.budget == 12 || t.budget == 200)
    );
    let spent: f64 = trials
        .iter()
        .filter(|t| t.reused_from.is_none())
        .map(|t| t.metrics["train_seconds"])
        .sum();
    let last = trials.last().unwrap().metrics["train_seconds"];
    assert!(
        spent >= 30000.0 && spent - last < 30000.0,
        "stopped at the budget: {spent}"
    );

    let bad = compare(&["--set", "tpe.gamma=0.3"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`tpe` is not one of --strategies"));
    let bad = compare(&["--set", "asha=3"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("write STRATEGY.KEY=VALUE"));
}

/// A small table written as `header` and `rows` into a new folder; its path.
fn write_table(header: &str, rows: &[&str]) -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("t.csv");
    std::fs::write(&path, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    path
}

/// Tables are read as CSV (quoted fields, CRLF, extra text columns), and
/// every cell the run reads is checked when the table loads: an empty,
/// non-numeric or non-finite cell, or a cost that is not positive, is an
/// error naming the line and the column, never a NaN trial.
#[test]
fn a_table_is_read_as_csv_and_every_cell_it_uses_is_checked() {
    let mut c = config(&[]);
    let shipped = Table::load(&c.evaluator.table().unwrap()).unwrap();
    let text = std::fs::read_to_string(common::root().join(TABLE)).unwrap();
    let quoted: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let note = if i == 0 {
                "note"
            } else {
                "from \"pandas\", quoted"
            };
            let fields: Vec<String> = l.split(',').map(|f| format!("\"{f}\"")).collect();
            format!("{},\"{}\"\r\n", fields.join(","), note.replace('"', "\"\""))
        })
        .collect();
    let path = write_table(quoted.trim_end(), &[]);
    c.evaluator.path = Some(path);
    let table = Table::load(&c.evaluator.table().unwrap()).unwrap();
    assert_eq!(table.len(), 15_625);
    let key = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|";
    for budget in [12, 200] {
        assert_eq!(
            table.lookup(key, budget).unwrap(),
            shipped.lookup(key, budget).unwrap()
        );
    }

    let header = "arch,val_acc_12,val_acc_200,test_acc_200,time_12,time_200";
    for (cell, column, why) in [
        ("", "val_acc_200", "holds ``, not a finite number"),
        ("n/a", "val_acc_200", "holds `n/a`, not a finite number"),
        ("nan", "val_acc_200", "holds `nan`, not a finite number"),
        (
            "0",
            "time_200",
            "holds `0`, not a positive number of seconds",
        ),
    ] {
        let mut row = ["|a~0|", "0.5", "0.6", "0.6", "10", "100"];
        let at = header.split(',').position(|h| h == column).unwrap();
        row[at] = cell;
        let good = "|b~0|,0.5,0.6,0.6,10,100";
        c.evaluator.path = Some(write_table(header, &[good, &row.join(",")]));
        let e = Table::load(&c.evaluator.table().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("t.csv:3: column `") && e.contains(&format!("{column}` {why}")),
            "{cell}: {e}"
        );
    }
}

/// A fidelity maps its own columns: leaving out a metric the run optimises,
/// or the cost of a run that counts simulated seconds, is a config error
/// (before, the 200-epoch column was taken silently).
#[test]
fn a_fidelity_that_leaves_out_the_objective_or_the_cost_is_refused() {
    let load = |from: &str, to: &str| {
        let text = std::fs::read_to_string(common::root().join("examples/research.toml"))
            .unwrap()
            .replace(from, to);
        let path = tempfile::tempdir().unwrap().keep().join("r.toml");
        std::fs::write(&path, text).unwrap();
        format!("{:#}", RunConfig::load(&path).err().unwrap())
    };
    let e = load(
        "[evaluator.fidelities.12]\nval_accuracy = \"val_acc_12\"",
        "[evaluator.fidelities.12]\ntest_accuracy = \"test_acc_200\"",
    );
    assert!(
        e.contains(
            "[evaluator.fidelities.12] does not map `val_accuracy`, which the run optimises"
        ),
        "{e}"
    );
    let e = load("[evaluator.fidelity_costs]\n12 = \"time_12\"", "");
    assert!(
        e.contains("[evaluator.fidelity_costs] has no `12` while the run counts simulated seconds"),
        "{e}"
    );
}

/// Runs `nas-host compare` on the research example (the table made
/// absolute) with `args`, into `dir`.
fn compare_in(dir: &std::path::Path, config_text: &str, args: &[&str]) -> std::process::Output {
    let path = dir.join("research.toml");
    std::fs::write(
        &path,
        config_text.replace(
            "tables/nb201-synthetic.csv",
            &common::root().join(TABLE).display().to_string(),
        ),
    )
    .unwrap();
    common::nas_host_command(&["compare", path.to_str().unwrap(), "--output-dir"])
        .arg(dir.join("runs"))
        .args(args)
        .output()
        .unwrap()
}

/// Two settings of one strategy under names of their own, checkpoints from
/// the command line, and the report metric at each; a comparison never
/// writes into an existing one, and `--by cost` needs a cost.
#[test]
fn compare_runs_named_settings_at_chosen_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("examples/research.toml")).unwrap();
    let args = [
        "--strategies",
        "rea=evolution,rea-big=evolution,random",
        "--set",
        "rea.population=10",
        "--set",
        "rea-big.population=40",
        "--seeds",
        "2",
        "--budget",
        "60",
        "--checkpoints",
        "15,45,60",
    ];
    let out = compare_in(dir.path(), &text, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "over 2 seeds: mean ± sample standard deviation (standard error of the mean)"
        ) && stdout.contains("test_accuracy of the best-so-far trial")
            && ["N=15", "N=45", "N=60", "rea-big", "random"]
                .iter()
                .all(|s| stdout.contains(s)),
        "{stdout}"
    );
    let base = dir.path().join("runs/research-compare");
    for (name, population) in [("rea", 10), ("rea-big", 40)] {
        let saved =
            std::fs::read_to_string(base.join(format!("{name}-seed1/config.toml"))).unwrap();
        assert!(
            saved.contains(&format!("population = {population}")),
            "{saved}"
        );
    }
    // The report metric's rows: three contenders, three checkpoints, all numbers.
    let report_rows: Vec<&str> = stdout
        .split("test_accuracy of the best-so-far trial")
        .nth(1)
        .unwrap()
        .lines()
        .skip(2)
        .take(3)
        .collect();
    assert!(
        report_rows
            .iter()
            .all(|r| r.matches(" ± ").count() == 3 && !r.contains("NaN")),
        "{report_rows:?}"
    );

    let again = compare_in(dir.path(), &text, &args);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already holds a comparison: give this one another --name"),
        "{stderr}"
    );
    let named = compare_in(
        dir.path(),
        &text,
        &[&args[..], &["--name", "second"]].concat(),
    );
    assert!(named.status.success());
    assert!(dir.path().join("runs/second/rea-seed0/nas.sqlite").exists());

    let twice = compare_in(
        dir.path(),
        &text,
        &["--strategies", "asha,asha", "--name", "x"],
    );
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("--strategies names `asha` twice"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    let costless = text
        .replace("cost_column = \"time_200\"\n", "")
        .replace("[evaluator.fidelity_costs]\n12 = \"time_12\"\n", "");
    let by_cost = compare_in(
        dir.path(),
        &costless,
        &[
            "--strategies",
            "random",
            "--by",
            "cost",
            "--budget",
            "1000",
            "--name",
            "y",
        ],
    );
    let stderr = String::from_utf8_lossy(&by_cost.stderr);
    assert!(
        stderr.contains("--by cost needs simulated training seconds, and this table run has none"),
        "{stderr}"
    );
}

/// Table trials record the budget of the columns used and their simulated
/// seconds; a budget the table has no columns for fails its trial; the run
/// records only the config that applies to a table run.
#[test]
fn table_trials_record_their_budget_and_simulated_seconds() {
    let c = config(&[("max_trials = 100", "max_trials = 30")]);
    let result =
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new()).unwrap();
    for t in &result.trials {
        assert_eq!(t.budget, 200, "the epochs of the full-budget columns");
        assert_eq!(t.seconds, t.metrics["train_seconds"]);
        assert!(t.seconds > 0.0);
    }
    let recorded = std::fs::read_to_string(result.dir.join("config.toml")).unwrap();
    let recorded: toml::Table = recorded.parse().unwrap();
    assert!(!recorded.contains_key("data") && !recorded.contains_key("executor"));
    let train = recorded["train"].as_table().unwrap();
    assert_eq!(train.keys().collect::<Vec<_>>(), ["batch_size"]);

    let c = config(&[
        ("max_trials = 100", "max_trials = 12"),
        (
            "plugin = \"builtin:random\"",
            "plugin = \"builtin:asha\"\nconfig = { budgets = [12, 50] }",
        ),
    ]);
    let result =
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new()).unwrap();
    let at_50: Vec<_> = result.trials.iter().filter(|t| t.budget == 50).collect();
    assert!(!at_50.is_empty());
    for t in at_50 {
        assert_eq!(t.status, TrialStatus::Failed);
        let reason = t.reason.as_deref().unwrap();
        assert!(
            reason.contains("no columns for a budget of 50 epochs (it has 12, 200)"),
            "{reason}"
        );
    }
}

/// By cost, a reused trial (a repeated architecture) is free by default but
/// counts as a trial; with `--charge-reused` it costs its first evaluation's
/// seconds again, so fewer trials fit the budget. The output says which.
#[test]
fn compare_by_cost_states_and_sets_the_cost_of_reused_trials() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("examples/research.toml")).unwrap();
    let run = |name: &str, extra: &[&str]| {
        let args = [
            &[
                "--strategies",
                "rea=evolution",
                "--set",
                "rea.population=10",
                "--by",
                "cost",
                "--budget",
                "1000000",
                "--seeds",
                "1",
                "--name",
                name,
            ][..],
            extra,
        ]
        .concat();
        let out = compare_in(dir.path(), &text, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store =
            RunStore::open_read_only(&dir.path().join(format!("runs/{name}/rea-seed0/nas.sqlite")))
                .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            store.trials().unwrap(),
        )
    };
    let (free_out, free) = run("free", &[]);
    let (charged_out, charged) = run("charged", &["--charge-reused"]);
    assert!(free_out
        .contains("a reused trial (a repeated architecture) costs nothing but counts as a trial"));
    assert!(charged_out.contains("costs its first evaluation's seconds again"));
    assert!(
        free.iter().any(|t| t.reused_from.is_some()),
        "the budget is long enough to repeat"
    );
    assert!(
        charged.len() < free.len(),
        "{} vs {}",
        charged.len(),
        free.len()
    );
    let all: f64 = charged.iter().map(|t| t.metrics["train_seconds"]).sum();
    let last = charged.last().unwrap().metrics["train_seconds"];
    assert!(
        all >= 1e6 && all - last < 1e6,
        "charged run stopped at the budget: {all}"
    );
}

/// In table mode with fidelities, a multi-fidelity strategy's compared
/// curve counts only its full-budget trials: its 12-epoch validation values
/// choose what to promote, they are not its result.
#[test]
fn compare_counts_only_full_budget_trials_of_a_multi_fidelity_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("examples/research.toml")).unwrap();
    let args = [
        "--strategies",
        "asha",
        "--set",
        "asha.budgets=[12,200]",
        "--by",
        "cost",
        "--budget",
        "100000",
        "--seeds",
        "1",
    ];
    let out = compare_in(dir.path(), &text, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = dir.path().join("runs/research-compare");
    let trials = RunStore::open_read_only(&base.join("asha-seed0/nas.sqlite"))
        .unwrap()
        .trials()
        .unwrap();
    let csv = std::fs::read_to_string(base.join("best_so_far.csv")).unwrap();
    let mut early_only = 0;
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (x, mean): (f64, f64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        let (mut spent, mut full, mut any) = (0.0, f64::NAN, f64::NAN);
        for t in &trials {
            if t.reused_from.is_none() {
                spent += t.metrics["train_seconds"];
            }
            if spent > x {
                break;
            }
            let v = t.metrics["val_accuracy"];
            any = any.max(v);
            if t.budget == 200 {
                full = full.max(v);
            }
        }
        if full.is_nan() {
            assert!(mean.is_nan(), "{x}: {mean} before any 200-epoch trial");
            early_only += usize::from(any.is_finite());
        } else {
            assert_eq!(mean, full, "at {x}");
        }
    }
    assert!(early_only > 0, "some points had only 12-epoch trials");
}
