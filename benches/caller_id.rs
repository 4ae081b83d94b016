//! Local presence: the caller ID picked for each call the dialer places
//! (`campaign::local_presence`), on the shell's path of every dial.

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::campaign::local_presence::LocalPresence;

fn pick(c: &mut Criterion) {
    // A campaign with a number in each of 20 North American area codes.
    let numbers: Vec<String> = (0..20)
        .map(|i| format!("+1{}5550100", 201 + 10 * i))
        .collect();
    let presence = LocalPresence::new(numbers.iter().map(String::as_str));
    c.bench_function("caller_id/local_presence_of_20_numbers", |b| {
        b.iter(|| presence.caller_id_for(std::hint::black_box("+13015551234")))
    });
}

criterion_group!(benches, pick);
criterion_main!(benches);
