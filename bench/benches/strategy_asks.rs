//! How long a strategy's `ask` takes as results accumulate: each strategy
//! runs 1,000 ask(1)/tell(1) rounds through the sandbox over the `cnn` space
//! (31 dimensions, most of them conditional) with a deterministic stand-in
//! score, and the slowest ask in each stretch of 100 rounds is reported
//! against the default per-call deadline.
//!
//! Run: `cargo bench -p nas-bench --bench strategy_asks`.

use anyhow::Result;
use nas_host::assignment::text;
use nas_host::ir::*;
use nas_host::plugin::{PluginLimits, PluginRuntime, PluginSource};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 1_000;
const STRATEGIES: &[&str] = &["random", "local-search", "evolution", "tpe", "gp"];

/// A deterministic stand-in score for an assignment.
fn score(a: &[Binding]) -> f64 {
    let h = text(a).bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    (h % 10_000) as f64 / 10_000.0
}

fn main() -> Result<()> {
    let limits = PluginLimits::default();
    let runtime = PluginRuntime::new(limits.clone(), None)?;
    let dims = runtime
        .search_space(&PluginSource::parse("builtin:cnn")?)?
        .init(
            "{}",
            Task {
                channels: 3,
                height: 32,
                width: 32,
                num_classes: 10,
            },
        )?;
    let objective = Objective {
        metric: "val_accuracy".into(),
        direction: Direction::Maximize,
    };
    println!(
        "strategy_asks: slowest ask(1) per 100 results over the cnn space ({} dimensions); call deadline {:.0} s",
        dims.len(),
        limits.call_timeout().as_secs_f64()
    );
    print!("{:<14}", "results");
    for k in 1..=ROUNDS / 100 {
        print!("{:>9}", k * 100);
    }
    println!("{:>11}", "total");
    for name in STRATEGIES {
        let mut s = runtime.strategy(&PluginSource::parse(&format!("builtin:{name}"))?)?;
        s.init(&dims, std::slice::from_ref(&objective), "{}", 1)?;
        let mut slowest = vec![Duration::ZERO; (ROUNDS / 100) as usize];
        let start = Instant::now();
        for id in 1..=ROUNDS {
            let t = Instant::now();
            let p = s.ask(1)?.pop().expect("keeps proposing");
            let took = t.elapsed();
            let slot = &mut slowest[((id - 1) / 100) as usize];
            *slot = (*slot).max(took);
            let value = score(&p.assignment);
            s.tell(&[TrialResult {
                proposal: p,
                trial_id: id,
                status: TrialStatus::Completed,
                metrics: vec![Metric {
                    name: "val_accuracy".into(),
                    value,
                }],
                curve: vec![],
                reason: None,
            }])?;
        }
        print!("{name:<14}");
        for d in &slowest {
            print!("{:>7.1}ms", d.as_secs_f64() * 1e3);
        }
        println!("{:>10.1}s", start.elapsed().as_secs_f64());
    }
    Ok(())
}
