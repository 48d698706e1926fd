//! The cross-check against a large library: 2,000 drug entries over 10 care
//! areas, the programme's drug last in the last area (worst-case lookup).
//! Target: a check in under 1/1000 of one 100-byte frame at 115200 baud
//! (about 8.7 ms), i.e. under 8.7 microseconds.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pumpgw::ders::{self, History, Programme};
use pumpgw::library;
use serde_json::json;

fn big_library() -> library::Library {
    let areas: Vec<_> = (0..10)
        .map(|a| {
            let drugs: Vec<_> = (0..200)
                .map(|d| {
                    json!({
                        "id": format!("drug-{d}"),
                        "generic_name": format!("drug {d}"),
                        "display_name": format!("DRUG {d}"),
                        "high_alert": true,
                        "concentrations": [
                            {"amount": "2500", "unit": "micrograms", "volume_ml": "50"},
                            {"amount": "500", "unit": "micrograms", "volume_ml": "50"}
                        ],
                        "continuous": {"dose_unit": "micrograms/kg/h", "soft_min": "0.5", "soft_max": "4", "hard_max": "8"},
                        "bolus": {"allowed": true, "dose_unit": "micrograms", "soft_max": "50", "hard_max": "100",
                                  "min_duration_s": "30", "max_volume_ml": "2", "max_share_of_remaining_percent": "25"},
                        "cumulative": {"max": "500", "unit": "micrograms", "window_minutes": 60}
                    })
                })
                .collect();
            json!({"id": format!("area-{a}"), "name": format!("Area {a}"),
                   "patient_weight_kg": {"min": "0.5", "max": "250"}, "drugs": drugs})
        })
        .collect();
    let doc = json!({
        "format": "pumpgw-drug-library", "format_version": 1, "library_id": "bench",
        "name": "Benchmark library", "version": 1, "created_at": "2026-11-21T00:00:00Z",
        "author": "bench", "care_areas": areas
    });
    let bytes = serde_json::to_vec(&doc).expect("serialises");
    let (lib, _) = library::parse(&bytes).expect("benchmark library is clean");
    assert_eq!(lib.entry_count(), 2_000);
    lib
}

fn programme(delivery: &serde_json::Value) -> Programme {
    serde_json::from_value(json!({
        "drug": "drug-199", "library_version": 1, "requested_at": "2026-11-21T03:00:00Z",
        "patient_weight": "70 kg",
        "container": {"concentration": "2,500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"},
        "delivery": delivery
    }))
    .expect("programme parses")
}

fn bench(c: &mut Criterion) {
    let lib = big_library();
    let history: History = serde_json::from_value::<ders::HistoryFile>(json!({"deliveries": [
        {"drug": "drug-199", "at": "2026-11-21T02:30:00Z", "amount": "25 micrograms"},
        {"drug": "drug-199", "at": "2026-11-21T02:45:00Z", "amount": "25 micrograms"}
    ]}))
    .expect("history parses")
    .for_drug("drug-199");
    let infusion = programme(
        &json!({"kind": "continuous", "rate": "2 micrograms/kg/h", "pump_flow_rate": "2.8 mL/h"}),
    );
    let bolus = programme(
        &json!({"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "0.5 mL"}),
    );
    assert_eq!(
        ders::check(&lib, "area-9", &infusion, &history).outcome,
        ders::Outcome::Pass
    );
    assert_eq!(
        ders::check(&lib, "area-9", &bolus, &history).outcome,
        ders::Outcome::Pass
    );
    c.bench_function("ders_check_infusion_2000_entries", |b| {
        b.iter(|| ders::check(black_box(&lib), "area-9", black_box(&infusion), &history));
    });
    c.bench_function("ders_check_bolus_2000_entries", |b| {
        b.iter(|| ders::check(black_box(&lib), "area-9", black_box(&bolus), &history));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
