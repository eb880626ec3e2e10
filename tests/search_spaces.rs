//! The built-in search spaces `cnn`, `nb201` and `mlp` through the real plugin
//! runtime: every sampled network passes shape inference, keys are stable,
//! conditional dimensions are absent when inactive, NAS-Bench-201's 15,625
//! cells and its published parameter count, and short real training.

use candle_core::Device;
use nas_host::assignment::{text, validate};
use nas_host::data::{self, DataConfig};
use nas_host::ir::*;
use nas_host::network::{analyse, Model};
use nas_host::plugin::{PluginLimits, PluginRuntime, PluginSource, SpacePlugin};
use nas_host::train::{train, TrainConfig};
use std::collections::{BTreeMap, BTreeSet};

fn runtime() -> PluginRuntime {
    PluginRuntime::new(PluginLimits::default(), None).unwrap()
}

fn space(
    rt: &PluginRuntime,
    name: &str,
    config: &str,
    task: Task,
) -> (SpacePlugin, Vec<Dimension>) {
    let mut s = rt
        .search_space(&PluginSource::parse(&format!("builtin:{name}")).unwrap())
        .unwrap();
    let dims = s.init(config, task).unwrap();
    (s, dims)
}

/// `count` proposals of `strategy` (with `config`) over `dims`.
fn proposals(
    rt: &PluginRuntime,
    strategy: &str,
    config: &str,
    dims: &[Dimension],
    count: usize,
) -> Vec<Proposal> {
    let mut s = rt
        .strategy(&PluginSource::parse(&format!("builtin:{strategy}")).unwrap())
        .unwrap();
    let objective = Objective {
        metric: "val_accuracy".into(),
        direction: Direction::Maximize,
    };
    s.init(dims, &[objective], config, 11).unwrap();
    let mut out = Vec::new();
    while out.len() < count {
        let batch = s.ask(500).unwrap();
        if batch.is_empty() {
            break;
        }
        out.extend(batch);
    }
    out.truncate(count);
    out
}

fn stages_of(a: &[Binding]) -> usize {
    match &a.iter().find(|b| b.name == "stages").unwrap().value {
        Value::Categorical(l) => l.parse().unwrap(),
        other => panic!("stages is {other:?}"),
    }
}

#[test]
fn cnn_samples_build_valid_networks_with_stable_keys() {
    let rt = runtime();
    for task in [
        Task {
            channels: 1,
            height: 28,
            width: 28,
            num_classes: 10,
        },
        Task {
            channels: 3,
            height: 32,
            width: 32,
            num_classes: 10,
        },
    ] {
        let (mut cnn, dims) = space(&rt, "cnn", "{}", task);
        let mut keys = BTreeSet::new();
        let mut block_types = BTreeSet::new();
        for p in proposals(&rt, "random", "{}", &dims, 2000) {
            validate(&dims, &p.assignment).unwrap();
            let stages = stages_of(&p.assignment);
            for b in &p.assignment {
                if let Some(k) = b
                    .name
                    .strip_prefix('s')
                    .and_then(|r| r.split('_').next())
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    assert!(
                        k <= stages,
                        "{}: stage {k} dimension with {stages} stages",
                        text(&p.assignment)
                    );
                }
                if b.name.ends_with("_block") {
                    block_types.insert(format!("{:?}", b.value));
                }
            }
            let network = cnn.build(&p.assignment).unwrap();
            analyse(&network, &task).unwrap_or_else(|e| panic!("{}: {e:#}", text(&p.assignment)));
            assert_eq!(
                cnn.build(&p.assignment).unwrap().key,
                network.key,
                "key is stable"
            );
            keys.insert(network.key);
        }
        assert_eq!(
            block_types.len(),
            3,
            "plain, residual and inception all sampled"
        );
        assert!(
            keys.len() > 1900,
            "2000 random draws give almost 2000 networks, got {}",
            keys.len()
        );
    }
}

fn bind(pairs: &[(&str, &str)]) -> Vec<Binding> {
    pairs
        .iter()
        .map(|(n, v)| Binding {
            name: n.to_string(),
            value: Value::Categorical(v.to_string()),
        })
        .collect()
}

#[test]
fn residual_and_inception_cnn_samples_train() {
    let rt = runtime();
    let config = DataConfig {
        classes: Some(4),
        image_size: Some(16),
        train_samples: Some(300),
        test_samples: Some(50),
        ..DataConfig::default()
    };
    let data = data::load(&config, 1, &Device::Cpu).unwrap();
    let (mut cnn, dims) = space(&rt, "cnn", "{}", data.task);
    for (block, bn) in [("residual", "true"), ("inception", "false")] {
        let a = bind(&[
            ("stages", "2"),
            ("s1_blocks", "2"),
            ("s1_filters", "16"),
            ("s1_kernel", "5"),
            ("s1_block", block),
            ("s1_batch_norm", bn),
            ("s1_activation", "relu"),
            ("s1_downsample", "max-pool"),
            ("s2_blocks", "1"),
            ("s2_filters", "32"),
            ("s2_kernel", "3"),
            ("s2_block", block),
            ("s2_batch_norm", bn),
            ("s2_activation", "silu"),
            ("s2_downsample", "strided-conv"),
            ("global_pooling", "true"),
            ("dense_units", "64"),
            ("dropout_rate", "0.2"),
        ]);
        validate(&dims, &a).unwrap();
        let network = cnn.build(&a).unwrap();
        let ops: BTreeSet<&str> = network
            .nodes
            .iter()
            .map(|n| nas_host::network::shape::op_name(&n.op))
            .collect();
        assert!(
            ops.contains(if block == "residual" { "add" } else { "concat" }),
            "{block}: {ops:?}"
        );
        let model = Model::new(&network, &data.task, 3, &Device::Cpu).unwrap();
        let outcome = train(
            &model,
            &data,
            &TrainConfig {
                epochs: 2,
                batch_size: 32,
                ..TrainConfig::default()
            },
            2,
            3,
            None,
            &nas_host::interrupt::Cancel::new(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(outcome.diverged, None);
        assert_eq!(outcome.curve.len(), 2);
        assert!(
            outcome.curve[1].train_loss < outcome.curve[0].train_loss + 0.5,
            "{block}: {:?}",
            outcome.curve
        );
    }
}

#[test]
fn nb201_builds_all_15625_cells() {
    let rt = runtime();
    let task = Task {
        channels: 3,
        height: 32,
        width: 32,
        num_classes: 10,
    };
    let (mut nb, dims) = space(&rt, "nb201", r#"{"cells": 1}"#, task);
    let all = proposals(&rt, "grid", "{}", &dims, 20_000);
    assert_eq!(all.len(), 15_625);
    let mut keys = BTreeSet::new();
    let mut op_counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in &all {
        let network = nb.build(&p.assignment).unwrap();
        analyse(&network, &task).unwrap_or_else(|e| panic!("{}: {e:#}", network.key));
        for edge in network.key.split('|').filter(|s| s.contains('~')) {
            *op_counts
                .entry(edge.split('~').next().unwrap().to_string())
                .or_default() += 1;
        }
        keys.insert(network.key);
    }
    assert_eq!(keys.len(), 15_625, "distinct keys");
    // Each of the 6 edges takes each of the 5 ops in 5^5 cells.
    assert_eq!(op_counts.len(), 5);
    assert!(op_counts.values().all(|&n| n == 6 * 3125), "{op_counts:?}");
}

#[test]
fn nb201_parameter_count_matches_the_benchmark() {
    let rt = runtime();
    let task = Task {
        channels: 3,
        height: 32,
        width: 32,
        num_classes: 10,
    };
    let (mut nb, dims) = space(&rt, "nb201", "{}", task);
    let a: Vec<Binding> = dims
        .iter()
        .map(|d| Binding {
            name: d.name.clone(),
            value: Value::Categorical("nor_conv_3x3".into()),
        })
        .collect();
    let network = nb.build(&a).unwrap();
    assert_eq!(network.key, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|");
    let params = analyse(&network, &task).unwrap().params() as f64;
    // Published: 1.53 M. Stem 464, cells 1,458,240, reductions 72,064, last BN 128, classifier 650.
    assert!((params - 1.53e6).abs() / 1.53e6 < 0.01, "{params}");
    assert_eq!(params, 1_531_546.0);
    let e = rt
        .search_space(&PluginSource::parse("builtin:nb201").unwrap())
        .unwrap()
        .init(
            "{}",
            Task {
                channels: 1,
                height: 30,
                width: 30,
                num_classes: 10,
            },
        )
        .unwrap_err();
    assert!(format!("{e:#}").contains("divisible by 4"), "{e:#}");
}

/// The `[space.config]` of an example, as the JSON the plugin receives.
fn example_space_config(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    let config = nas_host::config::RunConfig::load(&path).unwrap();
    serde_json::to_string(&config.space.config).unwrap()
}

/// Parameters, FLOPs and every node's shape of each network a grid walk over `space` builds.
fn fingerprints(
    rt: &PluginRuntime,
    name: &str,
    config: &str,
    task: Task,
) -> Vec<(u64, u64, Vec<String>)> {
    let (mut s, dims) = space(rt, name, config, task);
    let mut out: Vec<(u64, u64, Vec<String>)> = proposals(rt, "grid", "{}", &dims, 1000)
        .iter()
        .map(|p| {
            let a = analyse(&s.build(&p.assignment).unwrap(), &task).unwrap();
            (
                a.params(),
                a.flops(),
                a.nodes.iter().map(|n| n.shape.to_string()).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn template_reproduces_the_seed_templates_24_networks() {
    let rt = runtime();
    let task = Task {
        channels: 1,
        height: 28,
        width: 28,
        num_classes: 10,
    };
    let template = fingerprints(
        &rt,
        "template",
        &example_space_config("template-seed.toml"),
        task,
    );
    let seed = fingerprints(&rt, "seed-template", "{}", task);
    assert_eq!(template.len(), 24);
    assert_eq!(template, seed);
}

#[test]
fn template_branches_repeats_and_ranges() {
    let rt = runtime();
    let task = Task {
        channels: 3,
        height: 16,
        width: 16,
        num_classes: 5,
    };
    let config = serde_json::json!({"layers": [
        {"name": "stem", "op": "conv2d", "filters": 8, "kernel": 3},
        {"name": "body", "op": "branches", "merge": {"choice": ["add", "concat"]}, "repeat": {"int": [1, 3]}, "branches": [
            [{"name": "a", "op": "conv2d", "filters": 8, "kernel": {"choice": [1, 3, 5]}}],
            [{"name": "b", "op": "identity"}]
        ]},
        {"op": "global-avg-pool"},
        {"name": "drop", "op": "dropout", "rate": {"real": [0.0, 0.5]}},
        {"op": "dense", "units": "classes"}
    ]});
    let (mut s, dims) = space(&rt, "template", &config.to_string(), task);
    let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["body.merge", "body.repeat", "body.b0.a.kernel", "drop.rate"]
    );
    let mut depths = BTreeSet::new();
    for p in proposals(&rt, "random", "{}", &dims, 200) {
        let network = s.build(&p.assignment).unwrap();
        analyse(&network, &task).unwrap_or_else(|e| panic!("{}: {e:#}", text(&p.assignment)));
        depths.insert(
            network
                .nodes
                .iter()
                .filter(|n| matches!(n.op, Op::Add | Op::Concat))
                .count(),
        );
    }
    assert_eq!(
        depths,
        BTreeSet::from([1, 2, 3]),
        "repeat spans 1 to 3 merged blocks"
    );
    let bad = serde_json::json!({"layers": [{"op": "dense", "unitz": 3}]});
    let e = rt
        .search_space(&PluginSource::parse("builtin:template").unwrap())
        .unwrap()
        .init(&bad.to_string(), task)
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("unknown key `unitz`; it takes units"),
        "{e:#}"
    );
}

/// The `mlp` space's grid builds valid networks for a table's `F x 1 x 1`
/// input, one key per assignment; a layer's width exists only when the
/// network has that layer, and a skip across a change of width goes
/// through a dense projection.
#[test]
fn mlp_grid_builds_valid_networks_with_conditional_widths() {
    let rt = runtime();
    let task = Task {
        channels: 13,
        height: 1,
        width: 1,
        num_classes: 3,
    };
    let config = r#"{"max_layers": 3, "widths": [8, 16], "activations": ["relu", "tanh"], "dropout_rates": [0.0, 0.2]}"#;
    let (mut s, dims) = space(&rt, "mlp", config, task);
    let names: Vec<&str> = dims.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "layers",
            "width_1",
            "width_2",
            "width_3",
            "activation",
            "dropout_rate",
            "batch_norm",
            "skip"
        ]
    );
    let grid = proposals(&rt, "grid", "{}", &dims, 10_000);
    // (2 + 4 + 8 width settings) x 2 activations x 2 rates x 2 x 2.
    assert_eq!(grid.len(), 14 * 16);
    let mut keys = std::collections::HashSet::new();
    for p in &grid {
        let layers: usize = match &p.assignment[0].value {
            Value::Categorical(l) => l.parse().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            p.assignment.len(),
            5 + layers,
            "widths beyond `layers` are inactive"
        );
        let network = s.build(&p.assignment).unwrap();
        let a = analyse(&network, &task).unwrap();
        assert_eq!(a.nodes.last().unwrap().shape.to_string(), "3");
        assert!(keys.insert(network.key.clone()), "{}", network.key);
    }
    let mut one = |width: &str, skip: &str| {
        let mut a = grid[0].assignment.clone();
        for b in &mut a {
            match b.name.as_str() {
                "layers" => b.value = Value::Categorical("1".into()),
                "width_1" => b.value = Value::Categorical(width.into()),
                "skip" => b.value = Value::Categorical(skip.into()),
                "batch_norm" => b.value = Value::Categorical("false".into()),
                _ => {}
            }
        }
        a.retain(|b| !b.name.starts_with("width_") || b.name == "width_1");
        analyse(&s.build(&a).unwrap(), &task).unwrap().params()
    };
    // 13 -> 8 dense (112 params) and 8 -> 3 (27); a skip adds a 13 -> 8 projection.
    assert_eq!(one("8", "false"), 112 + 27);
    assert_eq!(one("8", "true"), 112 + 112 + 27);
}
