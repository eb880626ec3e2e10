//! Shared helpers of the end-to-end tests: building the test plugins in
//! `tests/fixtures/` and the example plugin in `examples/rust-strategy/`.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
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
            ],
        );
        cargo_build(&fixtures, &["nas-fixture-cond-space"]);
        cargo_build(&root().join("examples/rust-strategy/Cargo.toml"), &[]);
        root().join("target/wasm/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}
