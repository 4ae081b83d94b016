//! Configuration parsing and validation cost (run at start and by check-config).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::config::Config;

const DEFAULT: &str = include_str!("../config/outdial.toml");

fn parse_default(c: &mut Criterion) {
    c.bench_function("config/parse_and_validate_default", |b| {
        b.iter(|| Config::parse(std::hint::black_box(DEFAULT), Path::new("outdial.toml")))
    });
}

criterion_group!(benches, parse_default);
criterion_main!(benches);
