//! The lint rule that needs the wards' logs: a soft limit within a
//! rounding step of a standard dose (`library lint FILE --events LOG...`).
//!
//! The library does not say which doses are standard; the logs do. A
//! *standard dose* of a drug in a care area is a dose (a continuous dose
//! rate, or a bolus dose) programmed at least [`MIN_PROGRAMMES`] times and
//! in at least [`MIN_SHARE_PERCENT`]% of that drug's programmes of that
//! kind there whose dose can be put in the library's unit, compared in
//! that unit. A soft limit within one rounding step of one (one unit of
//! its last significant decimal place: 1 for `100`, 0.1 for `0.5`, 0.01
//! for `2.25`) raises an alert on, or just
//! beside, a dose people give every day: a nuisance alert, the kind a
//! pharmacist otherwise silences by moving the limit by hand.

use std::collections::BTreeMap;

use serde_json::Value;

use super::lint::Finding;
use super::model::Library;
use crate::format;
use crate::units::{Exact, parse_dose, parse_rate};

/// A standard dose is programmed at least this many times...
pub const MIN_PROGRAMMES: u64 = 3;
/// ... and in at least this share of its drug's programmes of that kind
/// in that care area.
pub const MIN_SHARE_PERCENT: u64 = 10;

/// Doses programmed, by care area, drug and kind (`continuous`, `bolus`),
/// as written: the number and its unit.
#[derive(Debug, Default)]
pub struct Programmed {
    doses: BTreeMap<(String, String, &'static str), Vec<String>>,
    /// Programmes read.
    pub programmes: u64,
}

impl Programmed {
    /// Takes one log line; anything but a `programme_requested` record is
    /// skipped.
    pub fn record(&mut self, line: &[u8]) {
        let Ok(r) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        if r.get("type").and_then(Value::as_str) != Some("programme_requested") {
            return;
        }
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let Some(p) = r.get("programme") else { return };
        let (Some(area), Some(drug)) = (text(&r, "care_area"), text(p, "drug")) else {
            return;
        };
        let delivery = p.get("delivery").unwrap_or(&Value::Null);
        let (kind, dose) = match text(delivery, "kind").as_deref() {
            Some("bolus") => ("bolus", text(delivery, "dose")),
            Some(_) => ("continuous", text(delivery, "rate")),
            None => return,
        };
        if let Some(dose) = dose {
            self.programmes += 1;
            self.doses.entry((area, drug, kind)).or_default().push(dose);
        }
    }
}

/// The rounding step of a limit: one unit of its last significant decimal
/// place, read from the value (integers: 1; `0.50` reads as 0.5).
fn step(x: Exact) -> Exact {
    let mut scale: i128 = 1;
    for _ in 0..9 {
        if x.mul_int(scale).is_ok_and(Exact::is_integer) {
            break;
        }
        scale *= 10;
    }
    Exact::ratio(1, scale).unwrap_or(Exact::ratio(1, 1).expect("1/1 is a ratio"))
}

/// The standard doses among `doses` (already in one unit): each with its
/// count, and the programmes of that kind.
fn standard(doses: &[Exact]) -> Vec<(Exact, u64)> {
    let mut counts: BTreeMap<Exact, u64> = BTreeMap::new();
    for d in doses {
        *counts.entry(*d).or_insert(0) += 1;
    }
    let total = doses.len() as u64;
    counts
        .into_iter()
        .filter(|(_, n)| *n >= MIN_PROGRAMMES && n * 100 >= total * MIN_SHARE_PERCENT)
        .collect()
}

/// The findings: each soft limit within a rounding step of a standard
/// dose of its drug and care area.
pub fn lint(library: &Library, programmed: &Programmed) -> Vec<Finding> {
    let mut out = Vec::new();
    for (ai, area) in library.care_areas.iter().enumerate() {
        for (di, drug) in area.drugs.iter().enumerate() {
            let key = |kind| (area.id.clone(), drug.id.clone(), kind);
            let written = |kind| {
                programmed
                    .doses
                    .get(&key(kind))
                    .cloned()
                    .unwrap_or_default()
            };
            let path =
                |kind: &str, field: &str| format!("$.care_areas[{ai}].drugs[{di}].{kind}.{field}");
            let mut check = |kind: &str,
                             field: &str,
                             limit: Option<Exact>,
                             doses: &[Exact],
                             unit: String| {
                let Some(limit) = limit else { return };
                let s = step(limit);
                let total = doses.len();
                for (dose, n) in standard(doses) {
                    let near = dose.sub(limit).and_then(Exact::abs).is_ok_and(|d| d <= s);
                    if near {
                        out.push(Finding::warning(
                            "soft-limit-at-standard-dose",
                            &path(kind, field),
                            format!(
                                "{} {kind} {field} {} is within a rounding step ({}) of {}, a dose programmed {} times ({}% of its {total} {kind} programmes in {} in these logs): expect nuisance alerts; move the limit away from the dose people give",
                                drug.display_name,
                                format::with_unit(limit, &unit),
                                format::with_unit(s, &unit),
                                format::with_unit(dose, &unit),
                                format::count(n),
                                crate::cqi::figures::percent(n, total as u64),
                                area.id
                            ),
                        ));
                    }
                }
            };
            if let Some(c) = &drug.continuous {
                let doses: Vec<Exact> = written("continuous")
                    .iter()
                    .filter_map(|t| parse_rate(t).ok())
                    .filter_map(|r| r.convert(c.dose_unit).and_then(Result::ok))
                    .collect();
                let unit = c.dose_unit.to_string();
                check("continuous", "soft_min", c.soft_min, &doses, unit.clone());
                check("continuous", "soft_max", c.soft_max, &doses, unit);
            }
            if let Some(b) = &drug.bolus
                && let Some(unit) = b.dose_unit
            {
                let doses: Vec<Exact> = written("bolus")
                    .iter()
                    .filter_map(|t| parse_dose(t).ok())
                    .filter_map(|d| d.convert(unit).and_then(Result::ok))
                    .collect();
                check("bolus", "soft_max", b.soft_max, &doses, unit.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> Library {
        super::super::parse(include_bytes!("../../../config/drug-library.example.json"))
            .expect("the example is valid")
            .0
    }

    fn line(area: &str, drug: &str, delivery: &Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": "programme_requested", "care_area": area,
            "programme": {"drug": drug, "delivery": delivery}
        }))
        .expect("the test input is well formed")
    }

    #[test]
    fn the_rounding_step_is_the_last_written_place() {
        let x = |s: &str| crate::units::parse_number(s).expect("the test input is well formed");
        assert_eq!(step(x("100")), x("1"));
        assert_eq!(step(x("0.5")), x("0.1"));
        assert_eq!(step(x("2.25")), x("0.01"));
    }

    #[test]
    fn a_soft_limit_on_a_dose_given_every_day_is_found_and_a_rare_one_is_not() {
        let mut p = Programmed::default();
        // Fentanyl in adult-icu: soft_max 200 micrograms/h. 201 is given
        // often; 50 most; 199.5 once.
        for _ in 0..4 {
            p.record(&line(
                "adult-icu",
                "fentanyl",
                &serde_json::json!({"kind": "continuous", "rate": "201 micrograms/h"}),
            ));
        }
        for _ in 0..20 {
            p.record(&line(
                "adult-icu",
                "fentanyl",
                &serde_json::json!({"kind": "continuous", "rate": "50 micrograms/h"}),
            ));
        }
        p.record(&line(
            "adult-icu",
            "fentanyl",
            &serde_json::json!({"kind": "continuous", "rate": "199.5 micrograms/h"}),
        ));
        // The same dose written in mg/h counts as the same dose.
        for _ in 0..3 {
            p.record(&line(
                "adult-icu",
                "fentanyl",
                &serde_json::json!({"kind": "continuous", "rate": "0.2 mg/h"}),
            ));
        }
        // Elsewhere, or another drug: not fentanyl's in adult-icu.
        p.record(&line(
            "paed-icu",
            "fentanyl",
            &serde_json::json!({"kind": "continuous", "rate": "200 micrograms/h"}),
        ));
        let found = lint(&library(), &p);
        let ours: Vec<&Finding> = found
            .iter()
            .filter(|f| f.path.contains("continuous.soft_max") && f.message.starts_with("fentaNYL"))
            .collect();
        assert_eq!(ours.len(), 2, "{found:#?}");
        assert!(ours.iter().all(|f| f.code == "soft-limit-at-standard-dose"));
        assert!(
            ours[0]
                .message
                .contains("of 200 micrograms/h, a dose programmed 3 times"),
            "{}",
            ours[0].message
        );
        assert!(
            ours[1]
                .message
                .contains("of 201 micrograms/h, a dose programmed 4 times"),
            "{}",
            ours[1].message
        );
        // Nothing at all without logs.
        assert!(lint(&library(), &Programmed::default()).is_empty());
    }
}
