//! What the cross-check fuzz targets share: the example library and a
//! fixed fentaNYL programme.

#![allow(dead_code, reason = "each target uses part of it")]

use std::sync::OnceLock;

use pumpgw::ders::Programme;
use pumpgw::library::{self, Library};

/// `config/drug-library.example.json`, loaded once.
pub fn example() -> &'static Library {
    static LIBRARY: OnceLock<Library> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        library::parse(include_bytes!("../../../config/drug-library.example.json"))
            .expect("the example library is clean")
            .0
    })
}

/// An adult fentaNYL programme from a 2,500 micrograms in 50 mL syringe
/// with 40 mL left, for library `version`, with this `delivery` map.
pub fn fentanyl(version: u64, delivery: &str) -> Programme {
    serde_json::from_str(&format!(
        r#"{{"drug": "fentanyl", "library_version": {version}, "requested_at": "2026-11-21T03:00:00Z",
            "patient_weight": "70 kg",
            "container": {{"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"}},
            "delivery": {delivery}}}"#
    ))
    .expect("the fixed programme reads")
}

/// A 25 microgram bolus over 60 s (0.5 mL).
pub const BOLUS: &str =
    r#"{"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "0.5 mL"}"#;
/// An infusion at 100 micrograms/h (2 mL/h).
pub const INFUSION: &str =
    r#"{"kind": "continuous", "rate": "100 micrograms/h", "pump_flow_rate": "2 mL/h"}"#;
