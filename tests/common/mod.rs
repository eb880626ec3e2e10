//! Shared helpers of the end-to-end tests: building the test plugins in
//! `tests/fixtures/` and the example plugin in `examples/rust-strategy/`.

#![allow(dead_code)] // Each test binary uses its own subset.

pub mod networks;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Small MLPs and learning rates over a wide log range (so many trials learn
/// slowly or not at all) on synthetic images, trained with SGD for 6 epochs:
/// the runs the pruner tests stop early. `[run]`, `[strategy]` and
/// `[pruner]` are the test's own.
pub const PRUNABLE: &str = r#"
[data]
dataset = "synthetic"
classes = 4
image_size = 8
train_samples = 400
test_samples = 100
seed = 3

[train]
epochs = 6
batch_size = 32
optimizer = "sgd"
momentum = 0.9
learning_rate = { log_range = [1e-4, 0.3] }

[space]
plugin = "builtin:mlp"
[space.config]
max_layers = 2
widths = [16, 64]
activations = ["relu", "tanh"]
dropout_rates = [0.0]
"#;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `nas-host ARGS` through the binary under test, with the tests' shared
/// compiled-component cache.
pub fn nas_host_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nas-host"));
    cmd.args(args).env(
        "NAS_HOST_CACHE_DIR",
        root().join("target/test-component-cache"),
    );
    cmd
}

/// A trial record as JSON without what differs between equal runs: wall
/// seconds, timing metrics and latency probes, epoch times, the weights path.
pub fn deterministic(t: &nas_host::store::TrialRecord) -> String {
    let mut t = t.clone();
    t.seconds = 0.0;
    t.weights = None;
    t.metrics
        .retain(|k, _| !k.contains("seconds") && !k.contains("latency"));
    for e in &mut t.curve {
        e.seconds = 0.0;
    }
    serde_json::to_string(&t).unwrap()
}

/// Runs `nas-host ARGS` to the end.
pub fn nas_host(args: &[&str]) -> std::process::Output {
    nas_host_command(args).output().unwrap()
}

fn cargo_build(manifest: &Path, packages: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(manifest)
    .arg("--target-dir")
    .arg(root().join("target").join("wasm"));
    for p in packages {
        cmd.args(["-p", p]);
    }
    let status = cmd.status().expect("start cargo");
    assert!(
        status.success(),
        "building test plugins {packages:?} from {} failed",
        manifest.display()
    );
}

/// The path of the built component `name` (file stem, such as
/// `nas_fixture_loop_ask` or `hill_walk`); builds all test plugins once.
pub fn wasm(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let fixtures = root().join("tests/fixtures/Cargo.toml");
        // One cargo call per world: the SDK's world feature must not unify.
        cargo_build(
            &fixtures,
            &[
                "nas-fixture-loop-ask",
                "nas-fixture-alloc-ask",
                "nas-fixture-trap-tell",
                "nas-fixture-open-file",
                "nas-fixture-wrong-world",
                "nas-fixture-future-version",
                "nas-fixture-hostile-strategy",
            ],
        );
        cargo_build(
            &fixtures,
            &[
                "nas-fixture-cond-space",
                "nas-fixture-widths",
                "nas-fixture-hostile-space",
            ],
        );
        cargo_build(&root().join("examples/rust-strategy/Cargo.toml"), &[]);
        root().join("target/wasm/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// NAS-Bench-201's operations, in the plugin's order.
pub const NB201_OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// The project's own synthetic NAS-Bench-201-like table (not benchmark
/// data): one row per cell, written to `examples/tables/nb201-synthetic.csv`.
/// Accuracy grows with the strength of the cell's paths from input to
/// output (conv3x3 > conv1x1 > pooling > skip > none; a cell without a path
/// is at chance), plus noise seeded by the key; a 12-epoch fidelity is a
/// noisier, lower copy; cost grows with the convolutions.
pub fn nb201_synthetic_table() -> String {
    let strength = |op: &str| match op {
        "skip_connect" => 0.3,
        "avg_pool_3x3" => 0.35,
        "nor_conv_1x1" => 0.6,
        "nor_conv_3x3" => 1.0,
        _ => 0.0,
    };
    let mut out = String::from("arch,val_acc_12,val_acc_200,test_acc_200,time_12,time_200\n");
    for code in 0..15_625u32 {
        let ops: Vec<&str> = (0..6)
            .map(|e| NB201_OPS[(code / 5u32.pow(5 - e) % 5) as usize])
            .collect();
        let key = format!(
            "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|",
            ops[0], ops[1], ops[2], ops[3], ops[4], ops[5]
        );
        let s: Vec<f64> = ops.iter().map(|o| strength(o)).collect();
        // Edges: 0 (1<-0), 1 (2<-0), 2 (2<-1), 3 (3<-0), 4 (3<-1), 5 (3<-2).
        let paths = s[3] + s[0] * s[4] + s[1] * s[5] + s[0] * s[2] * s[5];
        let mut state = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        let mut noise = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let val_200 = (10.0 + 84.0 * (1.0 - (-1.6 * paths).exp()) + 1.5 * noise()).clamp(9.5, 94.5);
        let val_12 = (val_200 * 0.8 - 4.0 + 4.0 * noise()).clamp(9.0, 90.0);
        let test_200 = (val_200 - 0.3 + 0.8 * noise()).clamp(9.5, 94.5);
        let convs: f64 = ops
            .iter()
            .map(|o| match *o {
                "nor_conv_3x3" => 12.0,
                "nor_conv_1x1" => 4.0,
                "avg_pool_3x3" => 1.0,
                _ => 0.0,
            })
            .sum();
        let time_200 = 200.0 * (5.0 + convs);
        out += &format!(
            "{key},{val_12:.3},{val_200:.3},{test_200:.3},{:.1},{time_200:.1}\n",
            time_200 * 12.0 / 200.0
        );
    }
    out
}
