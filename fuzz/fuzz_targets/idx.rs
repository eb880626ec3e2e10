//! Any bytes as an IDX file (raw or gzip), as images and as labels: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_host::data::idx;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    let path = Path::new("fuzz-idx");
    for ndims in [1, 3] {
        if let Ok((dims, values)) = idx::read(bytes, ndims, "fuzz", path) {
            assert_eq!(dims.iter().product::<usize>(), values.len());
        }
    }
});
