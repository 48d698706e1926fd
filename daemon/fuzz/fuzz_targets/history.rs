//! Fuzz target: any bytes as a history file (`ders check --history`): the
//! reader, then the exposure model and the cross-check of a fentaNYL bolus
//! and infusion against it. Nothing may panic, and the worst window is
//! never below the request's own amount.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use pumpgw::ders::exposure::{Request, worst_window};
use pumpgw::ders::{self, HistoryFile};
use pumpgw::units::{AmountKind, Exact};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = serde_json::from_slice::<HistoryFile>(data) else {
        return;
    };
    let history = file.for_drug("fentanyl");
    let now = time::macros::datetime!(2026-11-21 03:00 UTC);
    let bolus = Exact::int(25_000);
    if let Ok(w) = worst_window(
        &history,
        AmountKind::Mass,
        now,
        3_600_000,
        Request::Bolus(bolus),
    ) {
        assert!(w.total >= bolus);
    }
    for delivery in [common::BOLUS, common::INFUSION] {
        let _ = ders::check(
            common::example(),
            "adult-icu",
            &common::fentanyl(12, delivery),
            &history,
        );
    }
});
