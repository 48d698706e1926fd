//! Fuzz target: any bytes as a drug library file: the loader and lint
//! (which refuse bad ones with findings, never a panic), then, for one that
//! loads, a bolus and an infusion cross-checked in each of its care areas.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use pumpgw::ders::{self, History};
use pumpgw::library;

fuzz_target!(|data: &[u8]| {
    let Ok((lib, _findings)) = library::parse(data) else {
        return;
    };
    for delivery in [common::BOLUS, common::INFUSION] {
        let p = common::fentanyl(lib.version, delivery);
        for area in &lib.care_areas {
            let _ = ders::check(&lib, &area.id, &p, &History::default());
        }
    }
});
