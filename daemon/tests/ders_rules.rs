//! Every DERS rule at and just over its boundary, as a table of programmes
//! against the example library (config/drug-library.example.json).

use pumpgw::ders::{self, Code, History, HistoryFile, Outcome, Programme};
use pumpgw::library::{self, Library};
use serde_json::{Value, json};

fn library() -> Library {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/drug-library.example.json"
    ))
    .expect("example library");
    library::parse(&bytes).expect("example library is clean").0
}

struct Row {
    area: &'static str,
    drug: &'static str,
    conc: &'static str,
    remaining: &'static str,
    weight: Option<&'static str>,
    delivery: Value,
    outcome: Outcome,
    code: Option<Code>,
}

fn cont(rate: &str, pump: &str) -> Value {
    json!({"kind": "continuous", "rate": rate, "pump_flow_rate": pump})
}

fn bolus(dose: &str, duration: Option<&str>, pump: &str) -> Value {
    match duration {
        Some(d) => json!({"kind": "bolus", "dose": dose, "duration": d, "pump_volume": pump}),
        None => json!({"kind": "bolus", "dose": dose, "pump_volume": pump}),
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    area: &'static str,
    drug: &'static str,
    conc: &'static str,
    remaining: &'static str,
    weight: Option<&'static str>,
    delivery: Value,
    outcome: Outcome,
    code: Option<Code>,
) -> Row {
    Row {
        area,
        drug,
        conc,
        remaining,
        weight,
        delivery,
        outcome,
        code,
    }
}

fn programme(r: &Row, version: u64) -> Programme {
    let mut p = json!({
        "drug": r.drug,
        "library_version": version,
        "requested_at": "2026-11-21T03:00:00Z",
        "container": {"concentration": r.conc, "volume_loaded": "500 mL", "volume_remaining": r.remaining},
        "delivery": r.delivery,
    });
    if let Some(w) = r.weight {
        p["patient_weight"] = json!(w);
    }
    serde_json::from_value(p).expect("row programme parses")
}

use Code::*;
use Outcome::{Block, HardLimit as Hard, Pass, SoftLimit as Soft};

const F: &str = "2,500 micrograms in 50 mL";

#[allow(clippy::too_many_lines)]
fn corpus() -> Vec<Row> {
    let w70 = Some("70 kg");
    vec![
        // fentanyl, adult critical care, continuous micrograms/h: soft 10-200, hard max 400.
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("100 micrograms/h", "2 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("200 micrograms/h", "4 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("200.001 micrograms/h", "4.00002 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("400 micrograms/h", "8 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("401 micrograms/h", "8.02 mL/h"),
            Hard,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("10 micrograms/h", "0.2 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("9 micrograms/h", "0.18 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("0.1 mg/h", "2 mL/h"),
            Pass,
            None,
        ),
        // The pump's own flow rate: tolerance max(1%, 0.005 mL/h).
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("100 micrograms/h", "2.02 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("100 micrograms/h", "2.021 mL/h"),
            Block,
            Some(PumpComputationMismatch),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("100 micrograms/h", "20 mL/h"),
            Block,
            Some(PumpComputationMismatch),
        ),
        row(
            "adult-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "50 mL",
            w70,
            cont("100 micrograms/h", "10 mL/h"),
            Block,
            Some(ConcentrationNotInLibrary),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("2 units/h", "2 mL/h"),
            Block,
            Some(UnitMismatch),
        ),
        // noradrenaline micrograms/kg/min: soft max 1, hard max 3; 16 mg in 50 mL non-standard.
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            w70,
            cont("0.1 micrograms/kg/min", "5.25 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            w70,
            cont("1 micrograms/kg/min", "52.5 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "16 mg in 50 mL",
            "50 mL",
            w70,
            cont("0.1 micrograms/kg/min", "1.3125 mL/h"),
            Soft,
            Some(NonStandardConcentration),
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            w70,
            cont("3.5 micrograms/kg/min", "183.75 mL/h"),
            Hard,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            None,
            cont("0.1 micrograms/kg/min", "5 mL/h"),
            Block,
            Some(WeightMissing),
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            None,
            cont("5 mL/h", "5 mL/h"),
            Block,
            Some(WeightMissing),
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            Some("300 kg"),
            cont("0.1 micrograms/kg/min", "22.5 mL/h"),
            Hard,
            Some(WeightOutOfRange),
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            Some("250 kg"),
            cont("0.1 micrograms/kg/min", "18.75 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "noradrenaline",
            "4 mg in 50 mL",
            "50 mL",
            w70,
            bolus("10 micrograms", Some("60 s"), "0.125 mL"),
            Block,
            Some(BolusNotAllowed),
        ),
        // insulin units/h: soft 10, hard 20.
        row(
            "adult-icu",
            "insulin",
            "50 units in 50 mL",
            "50 mL",
            w70,
            cont("5 units/h", "5 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "insulin",
            "50 units in 50 mL",
            "50 mL",
            w70,
            cont("25 units/h", "25 mL/h"),
            Hard,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "insulin",
            "50 mg in 50 mL",
            "50 mL",
            w70,
            cont("5 units/h", "5 mL/h"),
            Block,
            Some(ConcentrationNotInLibrary),
        ),
        // heparin units/kg/h, 500 units/mL.
        row(
            "adult-icu",
            "heparin",
            "25,000 units in 50 mL",
            "50 mL",
            Some("80 kg"),
            cont("18 units/kg/h", "2.88 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "heparin",
            "25,000 units in 50 mL",
            "50 mL",
            Some("80 kg"),
            cont("30 units/kg/h", "4.8 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        // propofol mg/kg/h 10 mg/mL: soft min 0.3.
        row(
            "adult-icu",
            "propofol",
            "500 mg in 50 mL",
            "50 mL",
            w70,
            cont("2 mg/kg/h", "14 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "propofol",
            "500 mg in 50 mL",
            "50 mL",
            w70,
            cont("0.2 mg/kg/h", "1.4 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        // potassium chloride mmol/h 0.4 mmol/mL: soft 10, hard 20, no bolus.
        row(
            "adult-icu",
            "potassium-chloride",
            "20 mmol in 50 mL",
            "50 mL",
            w70,
            cont("10 mmol/h", "25 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "potassium-chloride",
            "20 mmol in 50 mL",
            "50 mL",
            w70,
            cont("20.5 mmol/h", "51.25 mL/h"),
            Hard,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "potassium-chloride",
            "20 mmol in 50 mL",
            "50 mL",
            w70,
            bolus("5 mmol", Some("600 s"), "12.5 mL"),
            Block,
            Some(BolusNotAllowed),
        ),
        row(
            "adult-icu",
            "dexmedetomidine",
            "400 micrograms in 50 mL",
            "50 mL",
            w70,
            cont("0.7 micrograms/kg/h", "6.125 mL/h"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "ketamine",
            "50 mg in 50 mL",
            "50 mL",
            w70,
            cont("1 mg/kg/h", "70 mL/h"),
            Block,
            Some(DrugNotInLibrary),
        ),
        // oxytocin in volume mode (mL/h): soft 125, hard 150.
        row(
            "theatres",
            "oxytocin",
            "40 units in 500 mL",
            "500 mL",
            w70,
            cont("125 mL/h", "125 mL/h"),
            Pass,
            None,
        ),
        row(
            "theatres",
            "oxytocin",
            "40 units in 500 mL",
            "500 mL",
            w70,
            cont("140 mL/h", "140 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        row(
            "theatres",
            "oxytocin",
            "40 units in 500 mL",
            "500 mL",
            w70,
            cont("151 mL/h", "151 mL/h"),
            Hard,
            Some(DoseRateLimit),
        ),
        row(
            "theatres",
            "oxytocin",
            "40 units in 500 mL",
            "500 mL",
            w70,
            cont("10 units/h", "125 mL/h"),
            Pass,
            None,
        ),
        // paediatrics: weights, custom concentrations.
        row(
            "paed-icu",
            "potassium-chloride",
            "10 mmol in 50 mL",
            "50 mL",
            Some("20 kg"),
            cont("0.2 mmol/kg/h", "20 mL/h"),
            Pass,
            None,
        ),
        row(
            "paed-icu",
            "morphine",
            "20 mg in 50 mL",
            "50 mL",
            Some("10 kg"),
            cont("20 micrograms/kg/h", "0.5 mL/h"),
            Soft,
            Some(CustomConcentration),
        ),
        row(
            "paed-icu",
            "morphine",
            "100 mg in 50 mL",
            "50 mL",
            Some("10 kg"),
            cont("20 micrograms/kg/h", "0.1 mL/h"),
            Block,
            Some(ConcentrationNotInLibrary),
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "50 mL",
            Some("0.4 kg"),
            cont("1 micrograms/kg/h", "0.04 mL/h"),
            Hard,
            Some(WeightOutOfRange),
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "50 mL",
            Some("0.5 kg"),
            cont("1 micrograms/kg/h", "0.05 mL/h"),
            Pass,
            None,
        ),
        // fentanyl boluses, adult: soft 50, hard 100 micrograms, >= 30 s, <= 2 mL, <= 25% of what is left.
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("50 micrograms", Some("30 s"), "1 mL"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("51 micrograms", Some("60 s"), "1.02 mL"),
            Soft,
            Some(BolusDoseLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("101 micrograms", Some("60 s"), "2.02 mL"),
            Hard,
            Some(BolusDoseLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("101 micrograms", Some("60 s"), "2.02 mL"),
            Hard,
            Some(BolusVolumeLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("50 micrograms", Some("29 s"), "1 mL"),
            Hard,
            Some(BolusDurationLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("50 micrograms", None, "1 mL"),
            Block,
            Some(BolusDurationMissing),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "4 mL",
            w70,
            bolus("50 micrograms", Some("30 s"), "1 mL"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "3.9 mL",
            w70,
            bolus("50 micrograms", Some("30 s"), "1 mL"),
            Hard,
            Some(BolusShareOfContainer),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "0.5 mL",
            w70,
            bolus("50 micrograms", Some("30 s"), "1 mL"),
            Block,
            Some(BolusExceedsContainer),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("50 micrograms", Some("30 s"), "1.01 mL"),
            // The pump's 1.01 mL is within 1% of the gateway's 1 mL, but it
            // would give 50.5 micrograms: over the 50 microgram soft maximum.
            Soft,
            Some(BolusDoseLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("49 micrograms", Some("30 s"), "0.9898 mL"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("50 micrograms", Some("30 s"), "1.011 mL"),
            Block,
            Some(PumpComputationMismatch),
        ),
        // paediatric fentanyl bolus per kg: soft 1, hard 2 micrograms/kg.
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "30 mL",
            Some("10 kg"),
            bolus("1 micrograms/kg", Some("60 s"), "1 mL"),
            Pass,
            None,
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "30 mL",
            Some("10 kg"),
            bolus("10 micrograms", Some("60 s"), "1 mL"),
            Pass,
            None,
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "30 mL",
            Some("10 kg"),
            bolus("2.5 micrograms/kg", Some("60 s"), "2.5 mL"),
            Hard,
            Some(BolusDoseLimit),
        ),
        // furosemide: max bolus rate 24 mL/h.
        row(
            "adult-icu",
            "furosemide",
            "250 mg in 25 mL",
            "25 mL",
            w70,
            bolus("40 mg", Some("600 s"), "4 mL"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "furosemide",
            "250 mg in 25 mL",
            "25 mL",
            w70,
            bolus("40 mg", Some("300 s"), "4 mL"),
            Hard,
            Some(BolusRateLimit),
        ),
        // heparin bolus: soft 5,000, hard 10,000 units, <= 20 mL, <= 50% of what is left.
        row(
            "adult-icu",
            "heparin",
            "25,000 units in 50 mL",
            "40 mL",
            Some("80 kg"),
            bolus("5,000 units", Some("300 s"), "10 mL"),
            Pass,
            None,
        ),
        row(
            "adult-icu",
            "heparin",
            "25,000 units in 50 mL",
            "45 mL",
            Some("80 kg"),
            bolus("10,000 units", Some("300 s"), "20 mL"),
            Soft,
            Some(BolusDoseLimit),
        ),
        // magnesium sulfate, soft = hard = 4 g.
        row(
            "theatres",
            "magnesium-sulfate",
            "20 g in 500 mL",
            "500 mL",
            w70,
            bolus("4 g", Some("1,200 s"), "100 mL"),
            Pass,
            None,
        ),
        row(
            "theatres",
            "magnesium-sulfate",
            "20 g in 500 mL",
            "500 mL",
            w70,
            bolus("4.5 g", Some("1,200 s"), "112.5 mL"),
            Hard,
            Some(BolusDoseLimit),
        ),
        // At the lowest rates a doubled pump rate or volume is still caught.
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "50 mL",
            Some("0.5 kg"),
            cont("1 micrograms/kg/h", "0.1 mL/h"),
            Block,
            Some(PumpComputationMismatch),
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "50 mL",
            Some("0.5 kg"),
            cont("1 micrograms/kg/h", "0.055 mL/h"),
            // 10% above 0.05 mL/h: no absolute floor lets it through.
            Block,
            Some(PumpComputationMismatch),
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "50 mL",
            Some("0.5 kg"),
            cont("1 micrograms/kg/h", "0.0505 mL/h"),
            Pass,
            None,
        ),
        // furosemide has no share limit: a bolus of exactly what is left
        // (40 mg at 10 mg/mL is 4 mL) empties the container all the same.
        row(
            "adult-icu",
            "furosemide",
            "250 mg in 25 mL",
            "4 mL",
            w70,
            bolus("40 mg", Some("600 s"), "4 mL"),
            Block,
            Some(BolusExceedsContainer),
        ),
        row(
            "adult-icu",
            "furosemide",
            "250 mg in 25 mL",
            "4.01 mL",
            w70,
            bolus("40 mg", Some("600 s"), "4 mL"),
            Pass,
            None,
        ),
        // Issue 14: paediatric adrenaline, 0.6 kg, 0.01 micrograms/kg/min
        // from 4 mg in 50 mL works out at 0.0045 mL/h; a pump saying
        // 0.0095 mL/h would give 2.1 times the dose.
        row(
            "paed-icu",
            "adrenaline",
            "4 mg in 50 mL",
            "50 mL",
            Some("0.6 kg"),
            cont("0.01 micrograms/kg/min", "0.0095 mL/h"),
            Block,
            Some(PumpComputationMismatch),
        ),
        // A programme exactly on the hard maximum (400 micrograms/h, 8 mL/h)
        // with the pump 1% faster: what the pump gives is over the HARD
        // maximum, not a soft limit that could be overridden.
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("400 micrograms/h", "8.08 mL/h"),
            Hard,
            Some(DoseRateLimit),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "50 mL",
            w70,
            cont("400 micrograms/h", "8 mL/h"),
            Soft,
            Some(DoseRateLimit),
        ),
        row(
            "paed-icu",
            "fentanyl",
            "500 micrograms in 50 mL",
            "30 mL",
            Some("1 kg"),
            bolus("0.1 micrograms/kg", Some("60 s"), "0.02 mL"),
            Block,
            Some(PumpComputationMismatch),
        ),
        row(
            "adult-icu",
            "fentanyl",
            F,
            "40 mL",
            w70,
            bolus("50 micrograms", Some("0 s"), "1 mL"),
            Block,
            Some(BolusDurationMissing),
        ),
    ]
}

#[test]
fn corpus_of_programmes_gets_the_expected_verdicts() {
    let lib = library();
    let rows = corpus();
    assert!(rows.len() >= 40);
    let mut failures = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let v = ders::check(&lib, r.area, &programme(r, 12), &History::default());
        let code_ok = r.code.is_none_or(|c| v.has(c));
        if v.outcome != r.outcome || !code_ok || (r.outcome == Pass && !v.reasons.is_empty()) {
            failures.push(format!(
                "row {i} {} {} {:?}: expected {:?} {:?}, got {:?}: {:#?}",
                r.area, r.drug, r.delivery, r.outcome, r.code, v.outcome, v.reasons
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A missing weight is reported once, as such, not also as a unit problem.
    let r = rows
        .iter()
        .find(|r| r.weight.is_none() && r.delivery["rate"] == "5 mL/h")
        .expect("row");
    let v = ders::check(&lib, r.area, &programme(r, 12), &History::default());
    assert_eq!(v.reasons.len(), 1, "{:#?}", v.reasons);
}

fn history(entries: &Value, drug: &str) -> History {
    serde_json::from_value::<HistoryFile>(json!({ "deliveries": entries }))
        .expect("history parses")
        .for_drug(drug)
}

#[test]
fn library_version_and_care_area_mismatches_block() {
    let lib = library();
    let r = &corpus()[0];
    let v = ders::check(&lib, r.area, &programme(r, 11), &History::default());
    assert_eq!(v.outcome, Block);
    assert!(v.has(LibraryVersionMismatch));
    let mut p = programme(r, 12);
    p.care_area = Some("theatres".into());
    let v = ders::check(&lib, "adult-icu", &p, &History::default());
    assert!(v.has(CareAreaMismatch));
    assert_eq!(v.reasons[0].ihe_code, Some(9021));
    let v = ders::check(&lib, "maternity", &programme(r, 12), &History::default());
    assert_eq!(v.outcome, Block);
    assert!(v.has(CareAreaMismatch));
}

#[test]
fn cumulative_bolus_limit_counts_the_window_exactly() {
    let lib = library();
    // theatres morphine: 20 mg per 60 min; 1 mg/mL; bolus soft max 3 mg.
    let r = row(
        "theatres",
        "morphine",
        "50 mg in 50 mL",
        "40 mL",
        Some("70 kg"),
        bolus("3 mg", Some("120 s"), "3 mL"),
        Pass,
        None,
    );
    let p = programme(&r, 12);
    // 17 mg inside the window + 3 mg = 20 mg: on the limit, inside it.
    let h = history(
        &json!([{"drug": "morphine", "at": "2026-11-21T02:00:01Z", "amount": "17 mg"}]),
        "morphine",
    );
    assert_eq!(ders::check(&lib, "theatres", &p, &h).outcome, Pass);
    // 1 microgram more is over.
    let h = history(
        &json!([{"drug": "morphine", "at": "2026-11-21T02:30:00Z", "amount": "17.001 mg"}]),
        "morphine",
    );
    let v = ders::check(&lib, "theatres", &p, &h);
    assert_eq!(v.outcome, Hard);
    assert!(v.has(CumulativeLimit));
    assert!(
        v.reasons[0].message.contains("20.001 mg"),
        "{}",
        v.reasons[0].message
    );
    // Exactly 60 min ago has left the window; other drugs never count.
    let h = history(
        &json!([
            {"drug": "morphine", "at": "2026-11-21T02:00:00Z", "amount": "18 mg"},
            {"drug": "fentanyl", "at": "2026-11-21T02:59:00Z", "amount": "18 mg"}
        ]),
        "morphine",
    );
    assert_eq!(ders::check(&lib, "theatres", &p, &h).outcome, Pass);
}

#[test]
fn cumulative_infusion_limit_looks_ahead_over_the_window() {
    let lib = library();
    // paed KCl: 20 mmol per 60 min; 0.2 mmol/kg/h x 20 kg = 4 mmol/h.
    let r = row(
        "paed-icu",
        "potassium-chloride",
        "10 mmol in 50 mL",
        "50 mL",
        Some("20 kg"),
        cont("0.2 mmol/kg/h", "20 mL/h"),
        Pass,
        None,
    );
    let p = programme(&r, 12);
    // 16 mmol given 10 min ago: still in the window for 50 more minutes,
    // during which 3.333 mmol more run in: 19.33 mmol, inside.
    let h = history(
        &json!([{"drug": "potassium-chloride", "at": "2026-11-21T02:50:00Z", "amount": "16 mmol"}]),
        "potassium-chloride",
    );
    assert_eq!(ders::check(&lib, "paed-icu", &p, &h).outcome, Pass);
    // 18 mmol: 21.33 mmol, over.
    let h = history(
        &json!([{"drug": "potassium-chloride", "at": "2026-11-21T02:50:00Z", "amount": "18 mmol"}]),
        "potassium-chloride",
    );
    let v = ders::check(&lib, "paed-icu", &p, &h);
    assert_eq!(v.outcome, Hard, "{v:#?}");
    assert!(v.has(CumulativeLimit));
}

#[test]
fn every_message_uses_the_display_rules() {
    let lib = library();
    for r in corpus() {
        let v = ders::check(&lib, r.area, &programme(&r, 12), &History::default());
        for reason in v.reasons {
            let m = &reason.message;
            for bad in ["µg", "mcg", " U/", "IU", ".0 ", " .", "5.0"] {
                assert!(!m.contains(bad), "{bad:?} in {m}");
            }
            assert!(!m.is_empty());
        }
    }
}

#[test]
fn history_from_a_disagreeing_clock_or_in_another_unit_is_never_ignored() {
    let lib = library();
    let r = row(
        "theatres",
        "morphine",
        "50 mg in 50 mL",
        "40 mL",
        Some("70 kg"),
        bolus("3 mg", Some("120 s"), "3 mL"),
        Pass,
        None,
    );
    let p = programme(&r, 12);
    // Dated one second after the request: counted as given just now.
    let h = history(
        &json!([{"drug": "morphine", "at": "2026-11-21T03:00:01Z", "amount": "30 mg"}]),
        "morphine",
    );
    let v = ders::check(&lib, "theatres", &p, &h);
    assert_eq!(v.outcome, Hard);
    assert!(v.has(CumulativeLimit));
    // An amount in units against a drug counted in mg cannot be added: block.
    let h = history(
        &json!([{"drug": "morphine", "at": "2026-11-21T02:30:00Z", "amount": "30 units"}]),
        "morphine",
    );
    let v = ders::check(&lib, "theatres", &p, &h);
    assert_eq!(v.outcome, Block);
    assert!(v.has(UnitMismatch));
}

#[test]
fn soft_alerts_never_carry_the_ihe_hard_limit_code() {
    let lib = library();
    for r in corpus() {
        let v = ders::check(&lib, r.area, &programme(&r, 12), &History::default());
        for reason in &v.reasons {
            if reason.outcome == Soft {
                assert_ne!(reason.ihe_code, Some(9024), "{reason:?}");
            }
            if reason.outcome == Hard && reason.code != WeightOutOfRange {
                assert_eq!(reason.ihe_code, Some(9024), "{reason:?}");
            }
        }
    }
}

#[test]
fn limit_messages_say_which_limit_and_by_how_much() {
    let lib = library();
    let r = row(
        "adult-icu",
        "fentanyl",
        F,
        "50 mL",
        Some("70 kg"),
        cont("401 micrograms/h", "8.02 mL/h"),
        Hard,
        None,
    );
    let v = ders::check(&lib, "adult-icu", &programme(&r, 12), &History::default());
    let reason = &v.reasons[0];
    assert_eq!(reason.limit.as_deref(), Some("hard_max"));
    assert_eq!(reason.programmed.as_deref(), Some("401 micrograms/h"));
    assert_eq!(reason.limit_value.as_deref(), Some("400 micrograms/h"));
    assert_eq!(
        reason.message,
        "fentaNYL dose rate 401 micrograms/h is over the HARD maximum of 400 micrograms/h by 1 microgram/h, 1.003 times the limit."
    );
}

fn full_history(v: &Value, drug: &str) -> History {
    serde_json::from_value::<HistoryFile>(v.clone())
        .expect("history parses")
        .for_drug(drug)
}

#[test]
fn cumulative_limit_counts_infusions_running_and_boluses_authorised() {
    let lib = library();
    // adult fentaNYL: 500 micrograms per 60 min; a 50 microgram bolus.
    let r = row(
        "adult-icu",
        "fentanyl",
        F,
        "40 mL",
        Some("70 kg"),
        bolus("50 micrograms", Some("30 s"), "1 mL"),
        Pass,
        None,
    );
    let p = programme(&r, 12);
    // An infusion on another pump since 02:30 at 450 micrograms/h: in the
    // hour ending at 03:30 it gives 450, plus this bolus is 500: on the limit.
    let running = |rate: &str| {
        json!({"deliveries": [], "running": [
            {"drug": "fentanyl", "since": "2026-11-21T02:30:00Z", "rate": rate, "source": "p2"}
        ]})
    };
    let v = ders::check(
        &lib,
        "adult-icu",
        &p,
        &full_history(&running("450 micrograms/h"), "fentanyl"),
    );
    assert_eq!(v.outcome, Pass, "{v:#?}");
    let v = ders::check(
        &lib,
        "adult-icu",
        &p,
        &full_history(&running("460 micrograms/h"), "fentanyl"),
    );
    assert_eq!(v.outcome, Hard, "{v:#?}");
    let reason = v
        .reasons
        .iter()
        .find(|r| r.code == CumulativeLimit)
        .expect("cumulative");
    assert!(
        reason.message.contains("510 micrograms"),
        "{}",
        reason.message
    );
    assert!(
        reason
            .message
            .contains("460 micrograms running or authorised on p2"),
        "{}",
        reason.message
    );
    assert!(
        reason.message.contains("50 micrograms from this programme"),
        "{}",
        reason.message
    );
    // The same infusion with only 100 micrograms left to give stops early.
    let bounded = json!({"deliveries": [], "running": [
        {"drug": "fentanyl", "since": "2026-11-21T02:30:00Z", "rate": "460 micrograms/h", "left": "100 micrograms"}
    ]});
    assert_eq!(
        ders::check(&lib, "adult-icu", &p, &full_history(&bounded, "fentanyl")).outcome,
        Pass
    );
    // Boluses authorised and not yet reported count as given now.
    let pending = json!({"deliveries": [
        {"drug": "fentanyl", "at": "2026-11-21T02:40:00Z", "amount": "300 micrograms"}
    ], "pending": [
        {"drug": "fentanyl", "amount": "100 micrograms", "source": "p1"},
        {"drug": "fentanyl", "amount": "50 micrograms", "source": "p2"}
    ]});
    assert_eq!(
        ders::check(&lib, "adult-icu", &p, &full_history(&pending, "fentanyl")).outcome,
        Pass
    );
    let over = json!({"deliveries": [
        {"drug": "fentanyl", "at": "2026-11-21T02:40:00Z", "amount": "300.001 micrograms"}
    ], "pending": [
        {"drug": "fentanyl", "amount": "100 micrograms"},
        {"drug": "fentanyl", "amount": "50 micrograms"}
    ]});
    assert_eq!(
        ders::check(&lib, "adult-icu", &p, &full_history(&over, "fentanyl")).outcome,
        Hard
    );
}

#[test]
fn an_infusion_is_counted_beside_one_already_running() {
    let lib = library();
    // adult fentaNYL at 100 micrograms/h from a full syringe; one already
    // running at 300 micrograms/h for 20 minutes: 400 in the next hour,
    // inside; at 420 micrograms/h, 520, over.
    let r = row(
        "adult-icu",
        "fentanyl",
        F,
        "50 mL",
        Some("70 kg"),
        cont("100 micrograms/h", "2 mL/h"),
        Pass,
        None,
    );
    let p = programme(&r, 12);
    let h = |rate: &str| {
        full_history(
            &json!({"deliveries": [], "running": [
                {"drug": "fentanyl", "since": "2026-11-21T02:40:00Z", "rate": rate}
            ]}),
            "fentanyl",
        )
    };
    assert_eq!(
        ders::check(&lib, "adult-icu", &p, &h("300 micrograms/h")).outcome,
        Pass
    );
    let v = ders::check(&lib, "adult-icu", &p, &h("420 micrograms/h"));
    assert_eq!(v.outcome, Hard, "{v:#?}");
    assert!(v.has(CumulativeLimit));
}

#[test]
fn a_running_rate_must_be_an_amount_per_time() {
    for bad in ["5 mL/h", "1 micrograms/kg/h"] {
        let e = serde_json::from_value::<HistoryFile>(json!({"deliveries": [], "running": [
            {"drug": "fentanyl", "since": "2026-11-21T02:40:00Z", "rate": bad}
        ]}))
        .expect_err("refused");
        assert!(e.to_string().contains("amount per time"), "{e}");
    }
}

#[test]
fn a_limit_passed_by_the_pumps_own_figure_says_so() {
    let lib = library();
    let r = row(
        "adult-icu",
        "fentanyl",
        F,
        "50 mL",
        Some("70 kg"),
        cont("400 micrograms/h", "8.08 mL/h"),
        Hard,
        None,
    );
    let v = ders::check(&lib, "adult-icu", &programme(&r, 12), &History::default());
    assert_eq!(v.outcome, Hard);
    assert_eq!(
        v.reasons[0].message,
        "fentaNYL dose rate 404 micrograms/h (as the pump would give it) is over the HARD maximum of 400 micrograms/h by 4 micrograms/h, 1.01 times the limit."
    );
}

#[test]
fn a_syringe_change_is_not_held_back_by_the_whole_last_syringe() {
    // adult fentaNYL, 500 micrograms per 60 min: a 2,500 microgram syringe
    // ran out just now at up to 100 micrograms/h since 25 h ago; the next
    // syringe at 100 micrograms/h. Counted at its rate, as late as it can
    // have run, the hour holds 100; as one lump at its end, 2,600.
    let lib = library();
    let r = row(
        "adult-icu",
        "fentanyl",
        F,
        "50 mL",
        Some("70 kg"),
        cont("100 micrograms/h", "2 mL/h"),
        Pass,
        None,
    );
    let p = programme(&r, 12);
    let ended = |rate: Option<&str>| {
        let mut entry = json!({"drug": "fentanyl", "at": "2026-11-21T03:00:00Z", "amount": "2,500 micrograms",
                               "since": "2026-11-20T02:00:00Z"});
        if let Some(rate) = rate {
            entry["rate"] = json!(rate);
        }
        full_history(&json!({ "deliveries": [entry] }), "fentanyl")
    };
    assert_eq!(
        ders::check(&lib, "adult-icu", &p, &ended(Some("100 micrograms/h"))).outcome,
        Pass
    );
    assert_eq!(
        ders::check(&lib, "adult-icu", &p, &ended(None)).outcome,
        Hard
    );
}
