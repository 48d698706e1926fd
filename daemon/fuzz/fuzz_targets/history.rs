//! Fuzz target: any bytes as a history file (`ders check --history`): the
//! reader, then the exposure model and the cross-check of a fentaNYL bolus
//! and infusion against it. Nothing may panic, and the worst window is
//! never below the request's own amount.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pumpgw::ders::exposure::{Request, worst_window};
use pumpgw::ders::{self, HistoryFile, Programme};
use pumpgw::library::{self, Library};
use pumpgw::units::{AmountKind, Exact};
use std::sync::OnceLock;

fn example() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        library::parse(include_bytes!("../../../config/drug-library.example.json"))
            .expect("the example library is clean")
            .0
    })
}

fn programme(delivery: &str) -> Programme {
    serde_json::from_str(&format!(
        r#"{{"drug": "fentanyl", "library_version": 12, "requested_at": "2026-11-21T03:00:00Z",
            "patient_weight": "70 kg",
            "container": {{"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"}},
            "delivery": {delivery}}}"#
    ))
    .expect("the fixed programmes read")
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = serde_json::from_slice::<HistoryFile>(data) else {
        return;
    };
    let history = file.for_drug("fentanyl");
    let now = time::macros::datetime!(2026-11-21 03:00 UTC);
    let bolus = Exact::int(25_000);
    if let Ok(w) = worst_window(&history, AmountKind::Mass, now, 3_600_000, Request::Bolus(bolus)) {
        assert!(w.total >= bolus);
    }
    for delivery in [
        r#"{"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "0.5 mL"}"#,
        r#"{"kind": "continuous", "rate": "100 micrograms/h", "pump_flow_rate": "2 mL/h"}"#,
    ] {
        let _ = ders::check(example(), "adult-icu", &programme(delivery), &history);
    }
});
