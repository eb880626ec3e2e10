//! `nas-host plugins` through the real binary.

mod common;

use std::process::Command;

fn nas_host(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nas-host"))
        .args(args)
        .env(
            "NAS_HOST_CACHE_DIR",
            common::root().join("target/test-component-cache"),
        )
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn plugins_lists_builtins_with_their_config_keys() {
    let (ok, out, err) = nas_host(&["plugins"]);
    assert!(ok, "{err}");
    for line in [
        "builtin:random  (strategy",
        "builtin:grid  (strategy",
        "builtin:seed-template  (search space",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}");
    }
    for key in [
        "unique = false",
        "real_points = 5",
        "dense_units = [16, 32, 64]",
        "dropout_rates = [0.0, 0.2, 0.4, 0.6]",
    ] {
        assert!(out.contains(key), "missing config key `{key}` in:\n{out}");
    }
}

#[test]
fn inspect_shows_world_version_and_dimensions_and_forwards_plugin_output() {
    let path = common::wasm("nas_fixture_cond_space");
    let (ok, out, err) = nas_host(&[
        "plugins",
        "inspect",
        path.to_str().unwrap(),
        "--task",
        "3x32x32:7",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("world:       nas:plugin/search-space-plugin@0.1.0"),
        "{out}"
    );
    assert!(
        out.contains("dimensions for task 3x32x32 with 7 classes"),
        "{out}"
    );
    assert!(
        out.contains("width: integer 8..=512 (log), when kind in [wide]"),
        "{out}"
    );
    assert!(
        err.contains("[plugin nas_fixture_cond_space] cond-space ready for 7 classes"),
        "{err}"
    );
}

#[test]
fn inspect_of_a_bad_file_fails_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, "nope").unwrap();
    let (ok, _, err) = nas_host(&["plugins", "inspect", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("bad.wasm") && err.contains("not a WebAssembly file"),
        "{err}"
    );
}
