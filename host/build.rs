//! Builds the built-in plugins (the `plugins/` workspace) for wasm32-wasip2 and
//! embeds them, so `nas-host` is one self-contained binary whose built-ins go
//! through the same sandbox as any other component.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (built-in name, cargo package, world feature of the SDK).
const BUILTINS: &[(&str, &str, &str)] = &[
    ("random", "nas-strategy-random", "strategy"),
    ("grid", "nas-strategy-grid", "strategy"),
    ("greedy", "nas-strategy-greedy", "strategy"),
    ("evolution", "nas-strategy-evolution", "strategy"),
    ("tpe", "nas-strategy-tpe", "strategy"),
    ("gp", "nas-strategy-gp", "strategy"),
    ("local-search", "nas-strategy-local-search", "strategy"),
    ("nsga2", "nas-strategy-nsga2", "strategy"),
    ("asha", "nas-strategy-asha", "strategy"),
    ("hyperband", "nas-strategy-hyperband", "strategy"),
    ("seed-template", "nas-space-seed-template", "search-space"),
    ("cnn", "nas-space-cnn", "search-space"),
    ("nb201", "nas-space-nb201", "search-space"),
    ("template", "nas-space-template", "search-space"),
    ("mlp", "nas-space-mlp", "search-space"),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().expect("host/ has a parent").to_path_buf();
    let plugins = root.join("plugins");
    println!(
        "cargo:rerun-if-changed={}",
        plugins.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        plugins.join("Cargo.lock").display()
    );
    for (_, package, _) in BUILTINS {
        let dir = package_dir(&plugins, package);
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-changed={}", plugins.join("sdk").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    check_target_installed();
    let target_dir = root.join("target").join("wasm");
    // One cargo call per world: the SDK's world feature must not unify across worlds.
    for world in ["strategy", "search-space"] {
        let mut cmd = cargo(&plugins, &target_dir);
        for (_, package, _) in BUILTINS.iter().filter(|b| b.2 == world) {
            cmd.args(["-p", package]);
        }
        let status = cmd
            .status()
            .expect("could not start cargo to build the built-in plugins");
        if !status.success() {
            panic!(
                "building the built-in {world} plugins in {} failed (see the errors above)",
                plugins.display()
            );
        }
    }

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let mut table = String::from("/// Built-in plugins: (name, component bytes).\npub(crate) static BUILTINS: &[(&str, &[u8])] = &[\n");
    for (name, package, _) in BUILTINS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let built = target_dir.join(TARGET).join("release").join(&file);
        let embedded = out.join(&file);
        std::fs::copy(&built, &embedded)
            .unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            embedded.display().to_string()
        )
        .unwrap();
    }
    table.push_str("];\n");
    std::fs::write(out.join("builtins.rs"), table).unwrap();
}

fn package_dir(plugins: &Path, package: &str) -> PathBuf {
    let short = package
        .trim_start_matches("nas-strategy-")
        .trim_start_matches("nas-space-");
    plugins.join(short)
}

/// A cargo command for the plugins' workspace, cleaned of the settings the
/// outer build passes to build scripts (they describe the host target).
fn cargo(plugins: &Path, target_dir: &Path) -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(plugins)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn check_target_installed() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if !Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        panic!(
            "the Rust target {TARGET} is not installed, and nas-host needs it to build its built-in plugins.\n\
             Fix: rustup target add {TARGET}"
        );
    }
}
