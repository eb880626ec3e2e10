//! Any bytes as a NumPy `.npy` array, read as a dataset's images (beside
//! valid labels) and as its labels (beside valid images): errors, never
//! panics, never allocates what the header claims before checking it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_host::data::{probe, DataConfig, DatasetKind};
use std::path::PathBuf;

/// An `.npy` file of `descr` values with `shape`, holding `data`.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn folder() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nas-fuzz-arrays-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok();
    dir
}

fuzz_target!(|bytes: &[u8]| {
    let dir = folder();
    let config = DataConfig {
        dataset: DatasetKind::Npy,
        path: Some(dir.clone()),
        ..DataConfig::default()
    };
    let images = npy("|u1", "(4, 2, 2)", &[7; 16]);
    let labels = npy(
        "<i8",
        "(4,)",
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
            0, 0, 0,
        ],
    );
    for (x, y) in [(bytes, &labels[..]), (&images[..], bytes)] {
        if std::fs::write(dir.join("x_train.npy"), x).is_err()
            || std::fs::write(dir.join("y_train.npy"), y).is_err()
        {
            return;
        }
        if let Ok(facts) = probe(&config, 0) {
            assert!(facts.task.num_classes >= 2);
        }
    }
});
