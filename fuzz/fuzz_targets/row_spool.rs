//! Any bytes as a row spool file (a torn line, a hand edit, a disk's
//! garbage): read into rows and unreadable lines, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outdial::store::spool::read_spool;

fuzz_target!(|data: &[u8]| {
    let contents = read_spool(data);
    // Every line is either read or set aside.
    let lines = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    assert!(contents.unreadable.len() <= lines);
    assert!(contents.rows.len() <= lines);
});
