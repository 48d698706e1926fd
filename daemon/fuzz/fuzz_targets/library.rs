//! Fuzz target: any bytes as a drug library file: the loader and lint
//! (which refuse bad ones with findings, never a panic), then, for one that
//! loads, a programme cross-checked in each of its care areas.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pumpgw::ders::{self, History, Programme};
use pumpgw::library;

fuzz_target!(|data: &[u8]| {
    let Ok((lib, _findings)) = library::parse(data) else {
        return;
    };
    let p: Programme = serde_json::from_str(&format!(
        r#"{{"drug": "fentanyl", "library_version": {}, "requested_at": "2026-11-21T03:00:00Z",
            "patient_weight": "70 kg",
            "container": {{"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"}},
            "delivery": {{"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "0.5 mL"}}}}"#,
        lib.version
    ))
    .expect("the fixed programme reads");
    for area in &lib.care_areas {
        let _ = ders::check(&lib, &area.id, &p, &History::default());
    }
});
