//! Any bytes as a CIFAR-10 or CIFAR-100 binary batch: errors, never panics;
//! what parses is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_host::data::cifar;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    for layout in [
        cifar::Layout::Cifar10,
        cifar::Layout::Cifar100Fine,
        cifar::Layout::Cifar100Coarse,
    ] {
        let (mut pixels, mut labels) = (Vec::new(), Vec::new());
        if cifar::parse(
            bytes,
            Path::new("fuzz.bin"),
            layout,
            &mut pixels,
            &mut labels,
        )
        .is_ok()
        {
            assert_eq!(pixels.len(), labels.len() * 3 * 32 * 32);
            assert!(labels.iter().all(|&l| (l as usize) < layout.classes()));
        }
    }
});
