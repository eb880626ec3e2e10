//! `[pruner]` on real training: the median pruner stops trials whose
//! learning curves fall behind, saving training while random search still
//! finds the same best network.

mod common;

use nas_host::ir::TrialStatus;
use nas_host::store::{RunStore, TrialRecord};

const PRUNER: &str = r#"
[pruner]
plugin = "builtin:median"
warmup_epochs = 1
min_trials = 3
"#;

const SEEDS: u32 = 10;
const TRIALS: usize = 16;

/// Runs the comparison of random search with `config` over `SEEDS` seeds;
/// returns each seed's trials.
fn runs(dir: &std::path::Path, name: &str, config: &str) -> Vec<Vec<TrialRecord>> {
    let path = dir.join(format!("{name}.toml"));
    let config = format!("[run]\nname = \"{name}\"\n{}{config}", common::PRUNABLE);
    std::fs::write(&path, config).unwrap();
    let out = common::nas_host_command(&[
        "compare",
        path.to_str().unwrap(),
        "--strategies",
        "random",
        "--seeds",
        &SEEDS.to_string(),
        "--budget",
        &TRIALS.to_string(),
        "--output-dir",
        dir.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (0..SEEDS)
        .map(|seed| {
            let db = dir.join(format!("{name}-compare/random-seed{seed}/nas.sqlite"));
            let trials = RunStore::open_read_only(&db).unwrap().trials().unwrap();
            assert_eq!(trials.len(), TRIALS);
            trials
        })
        .collect()
}

fn best(trials: &[TrialRecord]) -> f64 {
    trials
        .iter()
        .filter(|t| t.status == TrialStatus::Completed)
        .filter_map(|t| t.metrics.get("val_accuracy").copied())
        .fold(f64::NEG_INFINITY, f64::max)
}

fn epochs(trials: &[TrialRecord]) -> usize {
    trials
        .iter()
        .filter(|t| t.reused_from.is_none())
        .map(|t| t.curve.len())
        .sum()
}

fn seconds(trials: &[TrialRecord]) -> f64 {
    trials
        .iter()
        .filter(|t| t.reused_from.is_none())
        .filter_map(|t| t.metrics.get("train_seconds").copied())
        .sum()
}

/// Over 10 seeds, random search with the median pruner finds the same best
/// validation accuracy as without it (the same proposals: random search
/// ignores results) while training clearly fewer epochs; pruned trials are
/// recorded with their curves and the reason.
#[test]
fn the_median_pruner_keeps_the_best_and_saves_training() {
    let dir = tempfile::tempdir().unwrap();
    let plain = runs(dir.path(), "plain", "");
    let pruned = runs(dir.path(), "pruned", PRUNER);
    let (mut same, mut plain_epochs, mut pruned_epochs) = (0, 0, 0);
    let (mut plain_s, mut pruned_s) = (0.0, 0.0);
    for (seed, (a, b)) in plain.iter().zip(&pruned).enumerate() {
        for (x, y) in a.iter().zip(b) {
            assert_eq!(
                x.assignment, y.assignment,
                "seed {seed}: the same proposals"
            );
            if y.status == TrialStatus::Pruned {
                let reason = y.reason.as_deref().unwrap();
                assert!(reason.contains("percentile of"), "{reason}");
                assert!(!y.curve.is_empty() && y.curve.len() < 6);
                // The epochs it trained are the plain run's.
                for (e, f) in y.curve.iter().zip(&x.curve) {
                    assert_eq!(e.val_accuracy, f.val_accuracy, "seed {seed} trial {}", y.id);
                }
            }
        }
        let (ba, bb) = (best(a), best(b));
        eprintln!(
            "seed {seed}: best {ba:.4} plain, {bb:.4} pruned; epochs {} vs {}; {} pruned",
            epochs(a),
            epochs(b),
            b.iter().filter(|t| t.status == TrialStatus::Pruned).count()
        );
        same += usize::from(ba == bb);
        plain_epochs += epochs(a);
        pruned_epochs += epochs(b);
        plain_s += seconds(a);
        pruned_s += seconds(b);
    }
    eprintln!(
        "same best in {same}/{SEEDS} seeds; epochs {pruned_epochs} vs {plain_epochs} ({:.2}x); training seconds {pruned_s:.1} vs {plain_s:.1}",
        pruned_epochs as f64 / plain_epochs as f64
    );
    assert!(same >= 9, "the same best in only {same} of {SEEDS} seeds");
    assert!(
        (pruned_epochs as f64) < 0.75 * plain_epochs as f64,
        "epochs trained: {pruned_epochs} with the pruner, {plain_epochs} without"
    );
}
