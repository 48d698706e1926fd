//! Fuzz target: any bytes as a programme, read as the pump link reads it
//! (CBOR) or as `ders check` reads it (JSON); every programme that reads is
//! cross-checked in every care area of the example library, and what it
//! would add to the bed's exposure is worked out. Nothing may panic.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use pumpgw::ders::{self, History, Programme};

fuzz_target!(|data: &[u8]| {
    let Some((&how, bytes)) = data.split_first() else {
        return;
    };
    let programme: Option<Programme> = if how % 2 == 0 {
        serde_json::from_slice(bytes).ok()
    } else {
        ciborium::from_reader(bytes).ok()
    };
    let Some(p) = programme else { return };
    let _ = ders::exposure_request(&p);
    let library = common::example();
    for area in &library.care_areas {
        let v = ders::check(library, &area.id, &p, &History::default());
        // A verdict always says why it is not a pass.
        assert!(v.outcome == ders::Outcome::Pass || !v.reasons.is_empty());
    }
});
