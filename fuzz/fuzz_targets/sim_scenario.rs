//! Any bytes as a scenario file: a scenario or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = outdial::sim::Scenario::parse(text);
    }
});
