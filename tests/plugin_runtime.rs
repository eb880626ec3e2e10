//! The plugin runtime through real wasmtime and real components: the built-in
//! strategies over the built-in space, determinism, conditions, the example
//! plugin, and hostile plugins that the sandbox must contain.

mod common;

use nas_host::assignment::{text, validate};
use nas_host::ir::*;
use nas_host::plugin::{ComponentCache, PluginLimits, PluginRuntime, PluginSource};
use std::collections::BTreeSet;

const MNIST_TASK: Task = Task {
    channels: 1,
    height: 28,
    width: 28,
    num_classes: 10,
};

fn runtime_with(limits: PluginLimits) -> PluginRuntime {
    PluginRuntime::new(limits, None).unwrap()
}

fn runtime() -> PluginRuntime {
    runtime_with(PluginLimits::default())
}

fn builtin(name: &str) -> PluginSource {
    PluginSource::parse(&format!("builtin:{name}")).unwrap()
}

fn file(name: &str) -> PluginSource {
    PluginSource::File(common::wasm(name))
}

fn maximize_accuracy() -> Vec<Objective> {
    vec![Objective {
        metric: "val_accuracy".into(),
        direction: Direction::Maximize,
    }]
}

fn space_dims(rt: &PluginRuntime, space: &PluginSource, config: &str) -> Vec<Dimension> {
    rt.search_space(space)
        .unwrap()
        .init(config, MNIST_TASK)
        .unwrap()
}

/// Asks `strategy` (seeded `seed`) in batches of `batch` until it finishes or `limit` proposals.
fn proposals(
    rt: &PluginRuntime,
    strategy: &str,
    config: &str,
    dims: &[Dimension],
    seed: u64,
    limit: usize,
) -> Vec<Proposal> {
    let mut s = rt.strategy(&builtin(strategy)).unwrap();
    s.init(dims, &maximize_accuracy(), config, seed).unwrap();
    let mut out = Vec::new();
    while out.len() < limit {
        let batch = s.ask(5).unwrap();
        if batch.is_empty() {
            break;
        }
        out.extend(batch);
    }
    out
}

#[test]
fn grid_over_seed_template_yields_24_distinct_keys_then_finishes() {
    let rt = runtime();
    let dims = space_dims(&rt, &builtin("seed-template"), "{}");
    let mut space = rt.search_space(&builtin("seed-template")).unwrap();
    space.init("{}", MNIST_TASK).unwrap();
    let mut grid = rt.strategy(&builtin("grid")).unwrap();
    grid.init(&dims, &maximize_accuracy(), "{}", 0).unwrap();
    let mut keys = BTreeSet::new();
    let mut count = 0;
    loop {
        let batch = grid.ask(7).unwrap();
        if batch.is_empty() {
            break;
        }
        for p in batch {
            validate(&dims, &p.assignment).unwrap();
            keys.insert(space.build(&p.assignment).unwrap().key);
            count += 1;
        }
        assert!(count <= 24, "grid proposed more than the 24 architectures");
    }
    assert_eq!(count, 24);
    assert_eq!(keys.len(), 24, "keys must distinguish all 24 architectures");
    assert!(
        grid.ask(3).unwrap().is_empty(),
        "a finished grid stays finished"
    );
}

#[test]
fn random_is_deterministic_per_seed() {
    let rt = runtime();
    let dims = space_dims(&rt, &file("nas_fixture_cond_space"), "{}");
    let texts = |seed| {
        proposals(&rt, "random", "{}", &dims, seed, 60)
            .iter()
            .map(|p| text(&p.assignment))
            .collect::<Vec<_>>()
    };
    let a = texts(7);
    assert_eq!(a.len(), 60);
    assert_eq!(a, texts(7), "same seed, same proposals");
    assert_ne!(a, texts(8), "another seed, other proposals");
}

#[test]
fn random_respects_domains_and_conditions() {
    let rt = runtime();
    let dims = space_dims(&rt, &file("nas_fixture_cond_space"), "{}");
    let all = proposals(&rt, "random", "{}", &dims, 3, 600);
    let mut kinds = BTreeSet::new();
    let (mut widths, mut lrs) = (Vec::new(), Vec::new());
    for p in &all {
        validate(&dims, &p.assignment).unwrap_or_else(|e| panic!("{}: {e}", text(&p.assignment)));
        for b in &p.assignment {
            match (&*b.name, &b.value) {
                ("kind", Value::Categorical(k)) => drop(kinds.insert(k.clone())),
                ("width", Value::Integer(w)) => widths.push(*w),
                ("lr", Value::Real(v)) => lrs.push(*v),
                _ => {}
            }
        }
    }
    assert_eq!(kinds.len(), 3, "all three kinds are drawn");
    // `width` is log-uniform on [8, 512]: about half the draws fall below 64.
    let small = widths.iter().filter(|&&w| w < 64).count() as f64 / widths.len() as f64;
    assert!(
        (0.35..0.65).contains(&small),
        "log-uniform width: {small} below 64"
    );
    let below = lrs.iter().filter(|&&v| v < 1e-2).count() as f64 / lrs.len() as f64;
    assert!(
        (0.55..0.78).contains(&below),
        "log-uniform lr: {below} below 1e-2 (expected 2/3)"
    );
}

#[test]
fn grid_walks_a_conditional_space_once_per_assignment() {
    let rt = runtime();
    let dims = space_dims(&rt, &file("nas_fixture_cond_space"), "{}");
    let all = proposals(&rt, "grid", r#"{"real_points": 2}"#, &dims, 0, 5000);
    // plain: 2 lr points; wide: 505 widths x 2; deep: 4 depths x 2.
    assert_eq!(all.len(), 2 + 505 * 2 + 4 * 2);
    let distinct: BTreeSet<String> = all.iter().map(|p| text(&p.assignment)).collect();
    assert_eq!(distinct.len(), all.len());
    for p in &all {
        validate(&dims, &p.assignment).unwrap();
    }
}

#[test]
fn random_unique_finishes_when_the_space_is_exhausted() {
    let rt = runtime();
    let dims = space_dims(&rt, &builtin("seed-template"), "{}");
    let all = proposals(&rt, "random", r#"{"unique": true}"#, &dims, 1, 100);
    assert_eq!(all.len(), 24);
}

#[test]
fn bad_plugin_config_names_the_key_and_the_fix() {
    let rt = runtime();
    let dims = space_dims(&rt, &builtin("seed-template"), "{}");
    let mut grid = rt.strategy(&builtin("grid")).unwrap();
    let e = format!(
        "{:#}",
        grid.init(&dims, &maximize_accuracy(), r#"{"real_point": 3}"#, 0)
            .unwrap_err()
    );
    assert!(
        e.contains("`grid`")
            && e.contains("`real_point`")
            && e.contains("did you mean `real_points`"),
        "{e}"
    );
    let mut space = rt.search_space(&builtin("seed-template")).unwrap();
    let e = format!(
        "{:#}",
        space
            .init(r#"{"dropout_rates": [1.5]}"#, MNIST_TASK)
            .unwrap_err()
    );
    assert!(e.contains("dropout_rates") && e.contains("[0, 1)"), "{e}");
}

#[test]
fn example_plugin_climbs_from_the_best_result() {
    let rt = runtime();
    let dims = space_dims(&rt, &builtin("seed-template"), "{}");
    let mut s = rt.strategy(&file("hill_walk")).unwrap();
    assert_eq!(s.info().unwrap().name, "hill-walk");
    s.init(&dims, &maximize_accuracy(), "{}", 5).unwrap();
    let first = s.ask(4).unwrap();
    let results: Vec<TrialResult> = first
        .iter()
        .enumerate()
        .map(|(i, p)| TrialResult {
            proposal: p.clone(),
            trial_id: i as u64,
            status: TrialStatus::Completed,
            metrics: vec![Metric {
                name: "val_accuracy".into(),
                value: i as f64 / 10.0,
            }],
            curve: Vec::new(),
            reason: None,
        })
        .collect();
    s.tell(&results).unwrap();
    let best = &first[3].assignment;
    for p in s.ask(10).unwrap() {
        let changed = p
            .assignment
            .iter()
            .zip(best)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            changed, 1,
            "a mutation of the best changes exactly one dimension"
        );
    }
}

/// After a hostile plugin failed, the same runtime still runs a good plugin.
fn assert_good_plugin_still_runs(rt: &PluginRuntime) {
    let dims = space_dims(rt, &builtin("seed-template"), "{}");
    assert_eq!(proposals(rt, "random", "{}", &dims, 1, 5).len(), 5);
}

fn started(rt: &PluginRuntime, name: &str) -> StrategyPlugin {
    let dims = space_dims(rt, &builtin("seed-template"), "{}");
    let mut s = rt.strategy(&file(name)).unwrap();
    s.init(&dims, &maximize_accuracy(), "{}", 0).unwrap();
    s
}

use nas_host::plugin::StrategyPlugin;

#[test]
fn endless_loop_is_stopped_by_the_deadline() {
    let rt = runtime_with(PluginLimits {
        call_timeout_s: 0.5,
        ..PluginLimits::default()
    });
    let mut s = started(&rt, "nas_fixture_loop_ask");
    let e = format!("{:#}", s.ask(1).unwrap_err());
    assert!(
        e.contains("`nas_fixture_loop_ask`")
            && e.contains("deadline of 0.5 s in `ask`")
            && e.contains("call_timeout_s"),
        "{e}"
    );
    let again = format!("{:#}", s.ask(1).unwrap_err());
    assert!(again.contains("stopped working earlier"), "{again}");
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_cap() {
    let rt = runtime_with(PluginLimits {
        memory_mib: 32,
        ..PluginLimits::default()
    });
    let mut s = started(&rt, "nas_fixture_alloc_ask");
    let e = format!("{:#}", s.ask(1).unwrap_err());
    assert!(
        e.contains("exceeded its memory limit in `ask`")
            && e.contains("the limit is 32 MiB")
            && e.contains("memory_mib"),
        "{e}"
    );
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn trap_in_tell_names_the_plugin_and_the_call() {
    let rt = runtime();
    let mut s = started(&rt, "nas_fixture_trap_tell");
    let p = s.ask(1).unwrap().remove(0);
    let result = TrialResult {
        proposal: p,
        trial_id: 0,
        status: TrialStatus::Failed,
        metrics: vec![],
        curve: vec![],
        reason: Some("x".into()),
    };
    let e = format!("{:#}", s.tell(&[result]).unwrap_err());
    assert!(
        e.contains("plugin `nas_fixture_trap_tell` trapped in `tell`"),
        "{e}"
    );
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn files_and_environment_are_out_of_reach() {
    let rt = runtime();
    let mut s = started(&rt, "nas_fixture_open_file");
    let e = format!("{:#}", s.ask(1).unwrap_err());
    assert!(
        e.contains("open denied") && e.contains("env vars seen: 0") && !e.contains("LEAKED"),
        "{e}"
    );
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn component_of_another_world_is_refused() {
    let rt = runtime();
    let e = format!(
        "{:#}",
        rt.strategy(&file("nas_fixture_wrong_world")).err().unwrap()
    );
    assert!(
        e.contains("exports add")
            && e.contains("must export the world `strategy-plugin`")
            && e.contains("nas:plugin@0.1.0"),
        "{e}"
    );
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn unknown_contract_version_is_refused_with_the_supported_ones() {
    let rt = runtime();
    let e = format!(
        "{:#}",
        rt.strategy(&file("nas_fixture_future_version"))
            .err()
            .unwrap()
    );
    assert!(
        e.contains("targets nas:plugin@0.2.0")
            && e.contains("supported versions: nas:plugin@0.1.0"),
        "{e}"
    );
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn files_that_are_not_components_are_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "definitely not wasm").unwrap();
    let e = format!(
        "{:#}",
        rt.strategy(&PluginSource::File(text.clone()))
            .err()
            .unwrap()
    );
    assert!(
        e.contains(&text.display().to_string()) && e.contains("is not a WebAssembly file"),
        "{e}"
    );
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let e = format!(
        "{:#}",
        rt.strategy(&PluginSource::File(core)).err().unwrap()
    );
    assert!(
        e.contains("core WebAssembly module, not a component") && e.contains("wasm32-wasip2"),
        "{e}"
    );
    let missing = dir.path().join("missing.wasm");
    let e = format!(
        "{:#}",
        rt.strategy(&PluginSource::File(missing)).err().unwrap()
    );
    assert!(
        e.contains("cannot read plugin file") && e.contains("missing.wasm"),
        "{e}"
    );
    let e = format!("{:#}", rt.search_space(&builtin("random")).err().unwrap());
    assert!(
        e.contains("is a strategy-plugin plugin")
            && e.contains("search-space-plugin plugin is expected"),
        "{e}"
    );
    let e = format!("{:#}", PluginSource::parse("builtin:nope").unwrap_err());
    assert!(
        e.contains("no built-in plugin `nope`") && e.contains("builtin:random"),
        "{e}"
    );
    assert_good_plugin_still_runs(&rt);
}

#[test]
fn compiled_components_are_cached_on_disk_and_a_broken_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let rt = PluginRuntime::new(
        PluginLimits::default(),
        Some(ComponentCache::new(dir.path())),
    )
    .unwrap();
    rt.load(&builtin("grid")).unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one compiled component: {entries:?}");
    let size = std::fs::metadata(&entries[0]).unwrap().len();
    std::fs::write(&entries[0], b"garbage").unwrap();
    let dims = space_dims(&rt, &builtin("seed-template"), "{}");
    assert_eq!(
        proposals(&rt, "grid", "{}", &dims, 0, 100).len(),
        24,
        "a broken cache entry costs a compile, not a failure"
    );
    assert_eq!(
        std::fs::metadata(&entries[0]).unwrap().len(),
        size,
        "the broken entry is rewritten"
    );
}

#[test]
fn readme_search_space_example_builds_one_or_two_layer_networks() {
    let rt = runtime();
    let task = Task {
        channels: 1,
        height: 8,
        width: 8,
        num_classes: 3,
    };
    let mut space = rt.search_space(&file("nas_fixture_widths")).unwrap();
    let dims = space.init("{}", task).unwrap();
    let mut layer_counts = BTreeSet::new();
    for p in proposals(&rt, "random", "{}", &dims, 1, 50) {
        validate(&dims, &p.assignment).unwrap();
        let network = space.build(&p.assignment).unwrap();
        nas_host::network::analyse(&network, &task).unwrap();
        layer_counts.insert(
            network
                .nodes
                .iter()
                .filter(|n| matches!(n.op, Op::Dense(_)))
                .count(),
        );
    }
    assert_eq!(layer_counts, BTreeSet::from([1, 2]));
}
