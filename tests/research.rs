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
    assert_eq!(
        short.metrics["test_accuracy"], row[2],
        "metrics without a fidelity column keep the default"
    );
    let e = table.lookup("|nope~0|", 200).unwrap_err().to_string();
    assert!(
        e.contains("key `|nope~0|` is not in the evaluator table"),
        "{e}"
    );
}

#[test]
fn a_key_missing_from_the_table_stops_the_run_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.csv");
    let text = std::fs::read_to_string(common::root().join(TABLE)).unwrap();
    std::fs::write(&small, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let mut c = config(&[]);
    c.evaluator.path = Some(small);
    let e = format!(
        "{:#}",
        nas_host::search::run(&c, &mut Reporter::new(Mode::Quiet), &Cancel::new())
            .err()
            .unwrap()
    );
    assert!(
        e.contains("is not in the evaluator table") && e.contains("small.csv"),
        "{e}"
    );
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
    assert!(csv.starts_with("strategy,training_seconds,mean,std,seeds\n"));
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
