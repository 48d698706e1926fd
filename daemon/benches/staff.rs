//! What a PIN check costs: PBKDF2-HMAC-SHA256 at the iterations new PINs
//! get. It is paid at every signature on the terminal and at every guess,
//! so it is a trade: under about 0.5 s on the board for the person at the
//! bed, as slow as that allows for someone with a copy of the staff file.
//! Run on the target board too; this machine is faster.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pumpgw::staff::pin::{DEFAULT_ITERATIONS, MIN_ITERATIONS, PinHash};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pin");
    g.sample_size(10);
    for (name, iterations) in [("default", DEFAULT_ITERATIONS), ("minimum", MIN_ITERATIONS)] {
        let h = PinHash::new("274913", iterations).expect("a valid PIN");
        g.bench_function(format!("verify_{name}_{iterations}"), |b| {
            b.iter(|| black_box(h.verify(black_box("274913"))));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
