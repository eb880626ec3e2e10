//! Any text as a run config: parsing and validation return errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_host::config::RunConfig;

fuzz_target!(|text: &str| {
    if let Ok(config) = RunConfig::parse(text, "fuzz.toml") {
        let _ = config.validate();
    }
});
