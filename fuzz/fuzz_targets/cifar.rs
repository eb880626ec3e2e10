//! Any bytes as a CIFAR-10 binary batch: errors, never panics; what parses is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_host::data::cifar;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    if cifar::parse(bytes, Path::new("fuzz.bin"), &mut pixels, &mut labels).is_ok() {
        assert_eq!(pixels.len(), labels.len() * 3 * 32 * 32);
        assert!(labels.iter().all(|&l| l <= 9));
    }
});
