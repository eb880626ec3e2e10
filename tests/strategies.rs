//! The strategy library through the real plugin runtime: determinism,
//! domains and conditions over the `cnn` space, surviving failed, pruned and
//! infeasible results, finishing as documented, and search quality against
//! random search on the project's NAS-Bench-201-like table (fixed seeds).

mod common;

use nas_host::assignment::{text, validate};
use nas_host::config::RunConfig;
use nas_host::contract::*;
use nas_host::plugin::{PluginLimits, PluginRuntime, PluginSource};

const STRATEGIES: &[(&str, &str)] = &[
    ("random", "{}"),
    ("greedy", "{}"),
    ("evolution", "{}"),
    ("evolution", r#"{"mode": "genetic", "population": 10}"#),
    ("tpe", "{}"),
];

fn runtime() -> PluginRuntime {
    PluginRuntime::new(PluginLimits::default(), None).unwrap()
}

/// A deterministic stand-in score for an assignment.
fn fake_score(a: &[Binding]) -> f64 {
    let h = text(a).bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    (h % 10_000) as f64 / 10_000.0
}

/// Runs `strategy` for `steps` ask(1)/tell rounds over `dims`; returns the proposals' texts.
fn drive(
    rt: &PluginRuntime,
    strategy: &str,
    config: &str,
    dims: &[Dimension],
    seed: u64,
    steps: u64,
) -> Vec<String> {
    let mut s = rt
        .strategy(&PluginSource::parse(&format!("builtin:{strategy}")).unwrap())
        .unwrap();
    s.init(
        dims,
        &[Objective {
            metric: "val_accuracy".into(),
            direction: Direction::Maximize,
        }],
        config,
        seed,
    )
    .unwrap();
    let mut texts = Vec::new();
    for id in 1..=steps {
        let Some(p) = s.ask(1).unwrap().pop() else {
            break;
        };
        validate(dims, &p.assignment)
            .unwrap_or_else(|e| panic!("{strategy}: {}: {e}", text(&p.assignment)));
        let status = match id {
            i if i % 7 == 0 => TrialStatus::Failed,
            i if i % 11 == 0 => TrialStatus::Pruned,
            i if i % 13 == 0 => TrialStatus::Infeasible,
            _ => TrialStatus::Completed,
        };
        let metrics = if status == TrialStatus::Completed {
            vec![Metric {
                name: "val_accuracy".into(),
                value: fake_score(&p.assignment),
            }]
        } else {
            vec![]
        };
        texts.push(text(&p.assignment));
        let reason = (status != TrialStatus::Completed).then(|| "test".to_string());
        s.tell(&[TrialResult {
            proposal: p,
            trial_id: id,
            status,
            metrics,
            curve: vec![],
            reason,
        }])
        .unwrap();
    }
    texts
}

#[test]
fn strategies_are_deterministic_and_respect_the_cnn_space() {
    let rt = runtime();
    let mut cnn = rt
        .search_space(&PluginSource::parse("builtin:cnn").unwrap())
        .unwrap();
    let dims = cnn
        .init(
            "{}",
            Task {
                channels: 3,
                height: 32,
                width: 32,
                num_classes: 10,
            },
        )
        .unwrap();
    for (strategy, config) in STRATEGIES {
        let a = drive(&rt, strategy, config, &dims, 5, 150);
        assert_eq!(a.len(), 150, "{strategy} keeps proposing");
        assert_eq!(
            a,
            drive(&rt, strategy, config, &dims, 5, 150),
            "{strategy} {config}: same seed, same proposals"
        );
        assert_ne!(
            a,
            drive(&rt, strategy, config, &dims, 6, 150),
            "{strategy} {config}: another seed, other proposals"
        );
    }
}

#[test]
fn greedy_with_restarts_finishes() {
    let rt = runtime();
    let mut space = rt
        .search_space(&PluginSource::parse("builtin:seed-template").unwrap())
        .unwrap();
    let dims = space
        .init(
            "{}",
            Task {
                channels: 1,
                height: 28,
                width: 28,
                num_classes: 10,
            },
        )
        .unwrap();
    let proposed = drive(
        &rt,
        "greedy",
        r#"{"restarts": 2, "neighbours": 4}"#,
        &dims,
        1,
        10_000,
    );
    assert!(
        !proposed.is_empty() && proposed.len() < 10_000,
        "finished after {} proposals",
        proposed.len()
    );
}

#[test]
fn greedy_evolution_and_tpe_beat_random_on_the_table() {
    let path = common::root().join("examples/research.toml");
    let mut config = RunConfig::load(&path).unwrap();
    config.run.output_dir = tempfile::tempdir().unwrap().keep();
    let strategies: Vec<String> = ["random", "greedy", "evolution", "tpe"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let comparison =
        nas_host::compare::compare(&config, &strategies, 20, 100, "test_accuracy").unwrap();
    let median = |name: &str| {
        let runs = &comparison.runs.iter().find(|(n, _)| n == name).unwrap().1;
        let mut last: Vec<f64> = runs.curves.iter().map(|c| c[99]).collect();
        last.sort_by(f64::total_cmp);
        (last[9] + last[10]) / 2.0
    };
    let random = median("random");
    for s in ["greedy", "evolution", "tpe"] {
        assert!(
            median(s) > random,
            "{s}: median best {} vs random {random}\n{}",
            median(s),
            comparison.table()
        );
    }
}
