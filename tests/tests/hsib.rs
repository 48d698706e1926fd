//! The three HSIB fentanyl incidents (2020 national investigation), recreated
//! against the real `pumpgwd ders check`: a wrong concentration programmed at
//! syringe load, and 25, 20 and 50 microgram boluses that would have emptied
//! the syringe. Every one must be stopped (exit 2, never authorised).

use pumpgw_tests::{ders_check, write_json};
use serde_json::{Value, json};

fn programme(area: &str, conc: &str, remaining: &str, delivery: &Value) -> Value {
    json!({
        "drug": "fentanyl",
        "care_area": area,
        "library_version": 12,
        "requested_at": "2026-11-21T03:00:00Z",
        "patient_weight": "70 kg",
        "container": {
            "concentration": conc,
            "volume_loaded": "50 mL",
            "volume_remaining": remaining
        },
        "delivery": delivery
    })
}

fn check(area: &str, p: &Value) -> (i32, Value) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = write_json(dir.path(), "programme.json", p);
    let out = ders_check(area, &file, &["--json"]);
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verdict JSON: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), verdict)
}

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .expect("reasons array")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_owned())
        .collect()
}

#[test]
fn wrong_concentration_at_syringe_load_is_blocked() {
    // Adult critical care syringe is 2,500 micrograms in 50 mL; the
    // paediatric 500 micrograms in 50 mL was selected instead.
    let p = programme(
        "adult-icu",
        "500 micrograms in 50 mL",
        "50 mL",
        &json!({"kind": "continuous", "rate": "50 micrograms/h", "pump_flow_rate": "5 mL/h"}),
    );
    let (code, v) = check("adult-icu", &p);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["outcome"], "block");
    assert!(codes(&v).contains(&"CONCENTRATION_NOT_IN_LIBRARY".to_owned()));
    let r = &v["reasons"][0];
    // PIV 9018: a parameter that does not match the library (9037 is a
    // concentration that does not match the order).
    assert_eq!(r["ihe_code"], 9018);
    assert!(
        r["message"]
            .as_str()
            .expect("message")
            .contains("500 micrograms in 50 mL (10 micrograms/mL)")
    );
}

#[test]
fn twenty_five_microgram_bolus_that_would_empty_the_syringe_is_blocked() {
    // Concentration entered as 0.5 micrograms/mL: 25 micrograms means 50 mL,
    // and 12 mL of the real 50 micrograms/mL (600 micrograms) is left.
    let p = programme(
        "adult-icu",
        "25 micrograms in 50 mL",
        "12 mL",
        &json!({"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "50 mL"}),
    );
    let (code, v) = check("adult-icu", &p);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["outcome"], "block");
    let c = codes(&v);
    assert!(c.contains(&"BOLUS_EXCEEDS_CONTAINER".to_owned()), "{c:?}");
    assert!(
        c.contains(&"CONCENTRATION_NOT_IN_LIBRARY".to_owned()),
        "{c:?}"
    );
}

#[test]
fn twenty_microgram_bolus_at_a_valid_but_wrong_concentration_is_stopped() {
    // Theatres list both 10 and 50 micrograms/mL. The syringe holds 50 but
    // 10 was selected: 20 micrograms means 2 mL of the 4 mL left (50%).
    let p = programme(
        "theatres",
        "500 micrograms in 50 mL",
        "4 mL",
        &json!({"kind": "bolus", "dose": "20 micrograms", "duration": "30 s", "pump_volume": "2 mL"}),
    );
    let (code, v) = check("theatres", &p);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["outcome"], "hard_limit");
    let c = codes(&v);
    assert_eq!(c, vec!["BOLUS_SHARE_OF_CONTAINER".to_owned()], "{v:#}");
    let msg = v["reasons"][0]["message"].as_str().expect("message");
    assert!(msg.contains("50% of the 4 mL left"), "{msg}");
}

#[test]
fn fifty_microgram_bolus_that_would_empty_the_syringe_is_blocked() {
    // 1 microgram/mL typed for a 50 micrograms/mL syringe.
    let p = programme(
        "theatres",
        "50 micrograms in 50 mL",
        "12 mL",
        &json!({"kind": "bolus", "dose": "50 micrograms", "duration": "30 s", "pump_volume": "50 mL"}),
    );
    let (code, v) = check("theatres", &p);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["outcome"], "block");
    assert!(codes(&v).contains(&"BOLUS_EXCEEDS_CONTAINER".to_owned()));
}

#[test]
fn the_same_bolus_at_the_right_concentration_passes() {
    // Control: the checks do not simply block every fentanyl bolus.
    let p = programme(
        "adult-icu",
        "2,500 micrograms in 50 mL",
        "40 mL",
        &json!({"kind": "bolus", "dose": "25 micrograms", "duration": "60 s", "pump_volume": "0.5 mL"}),
    );
    let (code, v) = check("adult-icu", &p);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["outcome"], "pass");
}
