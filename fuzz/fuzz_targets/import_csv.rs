//! Fuzz the CSV import path: header mapping, field splitting, phone
//! normalisation, time zones. Any input must give rows or rejections, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::campaign::import::{ImportMapping, Parsed, parse_all};

fuzz_target!(|data: &[u8]| {
    // The first line (if it parses) is a mapping; the rest is the list.
    let (mapping, list) = match data.iter().position(|&b| b == 0) {
        Some(split) => {
            let mapping = std::str::from_utf8(&data[..split])
                .ok()
                .and_then(|text| ImportMapping::parse(text).ok())
                .unwrap_or_default();
            (mapping, &data[split + 1..])
        }
        None => (ImportMapping::default(), data),
    };
    if let Ok(parsed) = parse_all(list, &mapping, "US") {
        let mut last_line = 1;
        for p in parsed {
            let line = match p {
                Parsed::Row(row) => {
                    assert!(!row.phones.is_empty());
                    assert!(row.phones.iter().all(|(_, e)| e.starts_with('+')));
                    row.line
                }
                Parsed::Rejected(rejection) => rejection.line,
            };
            assert!(line > last_line, "lines are reported in order, once");
            last_line = line;
        }
    }
});
