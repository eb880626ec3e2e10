//! What the sandbox costs: ask+tell round trips of the `random` strategy over
//! the seed-template space, through wasmtime and called natively, plus the
//! time to compile, load from the cache, and instantiate a plugin.
//!
//! Run: `cargo bench -p nas-bench --bench plugin_calls`.

use anyhow::Result;
use nas_host::ir as host;
use nas_host::plugin::{ComponentCache, PluginLimits, PluginRuntime, PluginSource};
use nas_plugin_sdk as sdk;
use std::time::{Duration, Instant};

/// The built-in random strategy's own source, compiled natively.
#[path = "../../plugins/random/src/lib.rs"]
mod random;

const ROUNDS: usize = 20_000;
const REPEATS: usize = 7;

/// Median over `REPEATS` of the mean time per call of `f`.
fn median_per_call(mut f: impl FnMut()) -> Duration {
    for _ in 0..ROUNDS / 10 {
        f();
    }
    let mut samples: Vec<Duration> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                f();
            }
            start.elapsed() / ROUNDS as u32
        })
        .collect();
    samples.sort();
    samples[REPEATS / 2]
}

fn median_once(mut f: impl FnMut()) -> Duration {
    let mut samples: Vec<Duration> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[REPEATS / 2]
}

fn main() -> Result<()> {
    let task = host::Task {
        channels: 1,
        height: 28,
        width: 28,
        num_classes: 10,
    };
    let objectives = vec![host::Objective {
        metric: "val_accuracy".into(),
        direction: host::Direction::Maximize,
    }];
    let random = PluginSource::parse("builtin:random")?;
    let cache_dir = std::env::temp_dir().join(format!("nas-bench-cache-{}", std::process::id()));

    let runtime = PluginRuntime::new(PluginLimits::default(), None)?;
    let dims = runtime
        .search_space(&PluginSource::parse("builtin:seed-template")?)?
        .init("{}", task)?;
    let cold = median_once(|| drop(runtime.load(&random).unwrap()));
    let cached_runtime = PluginRuntime::new(
        PluginLimits::default(),
        Some(ComponentCache::new(&cache_dir)),
    )?;
    cached_runtime.load(&random)?;
    let cached = median_once(|| drop(cached_runtime.load(&random).unwrap()));
    let start = median_once(|| drop(cached_runtime.strategy(&random).unwrap()));

    let mut sandboxed = runtime.strategy(&random)?;
    sandboxed.init(&dims, &objectives, "{}", 1)?;
    let wasm = median_per_call(|| {
        let proposal = sandboxed.ask(1).unwrap().remove(0);
        let result = host::TrialResult {
            proposal,
            trial_id: 0,
            status: host::TrialStatus::Completed,
            metrics: vec![host::Metric {
                name: "val_accuracy".into(),
                value: 0.5,
            }],
            curve: Vec::new(),
            reason: None,
        };
        sandboxed.tell(&[result]).unwrap();
    });

    let native_dims: Vec<sdk::Dimension> = dims
        .iter()
        .map(|d| match &d.domain {
            host::Domain::Categorical(labels) => sdk::Dimension {
                name: d.name.clone(),
                domain: sdk::Domain::Categorical(labels.clone()),
                condition: None,
            },
            _ => unreachable!("seed-template is all categorical"),
        })
        .collect();
    let native_objectives = vec![sdk::Objective {
        metric: "val_accuracy".into(),
        direction: sdk::Direction::Maximize,
    }];
    sdk::runtime::strategy_init::<random::Random>(native_dims, native_objectives, "{}".into(), 1)
        .map_err(anyhow::Error::msg)?;
    let native = median_per_call(|| {
        let proposal = sdk::runtime::strategy_ask::<random::Random>(1)
            .unwrap()
            .remove(0);
        let result = sdk::TrialResult {
            proposal,
            trial_id: 0,
            status: sdk::TrialStatus::Completed,
            metrics: vec![sdk::Metric {
                name: "val_accuracy".into(),
                value: 0.5,
            }],
            curve: Vec::new(),
            reason: None,
        };
        sdk::runtime::strategy_tell::<random::Random>(vec![result]).unwrap();
    });
    let _ = std::fs::remove_dir_all(&cache_dir);

    println!("plugin_calls: random strategy over seed-template ({ROUNDS} round trips, median of {REPEATS})");
    println!(
        "  ask(1)+tell(1) round trip, sandboxed (wasmtime): {:>9.2} µs",
        wasm.as_secs_f64() * 1e6
    );
    println!(
        "  ask(1)+tell(1) round trip, native:               {:>9.2} µs",
        native.as_secs_f64() * 1e6
    );
    println!(
        "  sandbox overhead factor:                         {:>9.1}x",
        wasm.as_secs_f64() / native.as_secs_f64()
    );
    println!(
        "  compile component (no cache):                    {:>9.2} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  load component from the disk cache:              {:>9.2} ms",
        cached.as_secs_f64() * 1e3
    );
    println!(
        "  load from cache + instantiate in a new sandbox:  {:>9.2} ms",
        start.as_secs_f64() * 1e3
    );
    Ok(())
}
