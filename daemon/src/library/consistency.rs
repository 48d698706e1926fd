//! Lint rules that compare a library's entries with each other, learned
//! from real libraries (`../shared/INTEROP.md`, last section: limits typed
//! in micrograms/mL where mg/mL was meant): a limit or a concentration a
//! thousand times away from the same drug's others, the same drug dosed
//! in two units across care areas with no advisory saying so, and soft
//! limits nobody could override for want of a reason.

use super::lint::Finding;
use super::model::{Drug, Library};
use crate::format;
use crate::units::{Concentration, Exact, Rate, Volume};

/// How far apart two entries of one drug must be to be a typing slip:
/// a factor of 1,000 (micrograms for milligrams, mg for g).
const SLIP: i128 = 1_000;

/// Every finding of these rules.
pub(super) fn lint_consistency(library: &Library) -> Vec<Finding> {
    let mut out = Vec::new();
    let entries: Vec<(String, &Drug)> = library
        .care_areas
        .iter()
        .enumerate()
        .flat_map(|(ai, a)| {
            a.drugs
                .iter()
                .enumerate()
                .map(move |(di, d)| (format!("$.care_areas[{ai}].drugs[{di}]"), d))
        })
        .collect();
    continuous_limits(&entries, &mut out);
    concentrations(&entries, &mut out);
    dose_units(&entries, &mut out);
    override_reasons(library, &mut out);
    out
}

/// True when `a` and `b` are a factor of [`SLIP`] or more apart.
fn slip(a: Exact, b: Exact) -> bool {
    if a.is_zero() || b.is_zero() {
        return false;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    lo.mul_int(SLIP).is_ok_and(|x| hi >= x)
}

/// The same limit of the same drug in another care area, in a unit it
/// converts to (same kind of amount, both per kg or neither).
fn continuous_limits(entries: &[(String, &Drug)], out: &mut Vec<Finding>) {
    type Get = fn(&super::model::ContinuousLimits) -> Option<Exact>;
    let fields: [(&str, Get); 4] = [
        ("hard_min", |l| l.hard_min),
        ("soft_min", |l| l.soft_min),
        ("soft_max", |l| l.soft_max),
        ("hard_max", |l| l.hard_max),
    ];
    for (field, get) in fields {
        let values: Vec<(&str, &Drug, Rate)> = entries
            .iter()
            .filter_map(|(path, d)| {
                let l = d.continuous?;
                Some((
                    path.as_str(),
                    *d,
                    Rate {
                        value: get(&l)?,
                        unit: l.dose_unit,
                    },
                ))
            })
            .collect();
        for (path, drug, rate) in &values {
            let other = values.iter().find(|(p, d, r)| {
                p != path
                    && d.id == drug.id
                    && r.convert(rate.unit)
                        .and_then(Result::ok)
                        .is_some_and(|v| slip(v, rate.value))
            });
            if let Some((p, _, r)) = other {
                out.push(Finding::warning(
                    "thousandfold-limit",
                    &format!("{path}.continuous.{field}"),
                    format!(
                        "{} {field} {} is a thousand times or more away from {} at {p}: check the unit (micrograms for mg?)",
                        drug.display_name,
                        format::rate(*rate),
                        format::rate(*r)
                    ),
                ));
            }
        }
    }
}

/// A concentration a thousand times away from one of the same drug's
/// standard concentrations (in any care area).
fn concentrations(entries: &[(String, &Drug)], out: &mut Vec<Finding>) {
    let strength = |c: &super::model::LibraryConcentration| {
        let volume = Volume::from_ml(c.volume_ml).ok()?;
        Concentration::new(c.amount, c.unit, volume).ok()
    };
    for (path, drug) in entries {
        for (ci, c) in drug.concentrations.iter().enumerate() {
            let Some(mine) = strength(c) else { continue };
            let standard = entries
                .iter()
                .filter(|(_, d)| d.id == drug.id)
                .flat_map(|(_, d)| d.concentrations.iter().filter(|s| s.standard))
                .filter_map(strength)
                .find(|s| {
                    s.amount().kind() == mine.amount().kind()
                        && matches!(
                            (s.base_per_ml(), mine.base_per_ml()),
                            (Ok(a), Ok(b)) if slip(a, b)
                        )
                });
            if let Some(s) = standard {
                out.push(Finding::warning(
                    "thousandfold-concentration",
                    &format!("{path}.concentrations[{ci}]"),
                    format!(
                        "{} {} is a thousand times or more away from its standard {}: check the unit (micrograms for mg?)",
                        drug.display_name,
                        format::concentration(mine),
                        format::concentration(s)
                    ),
                ));
            }
        }
    }
}

/// The same drug dosed in another unit in another care area, with no
/// advisory on this entry to warn whoever moves between them.
fn dose_units(entries: &[(String, &Drug)], out: &mut Vec<Finding>) {
    for (path, drug) in entries {
        let Some(mine) = drug.continuous.map(|c| c.dose_unit) else {
            continue;
        };
        let other = entries.iter().find_map(|(p, d)| {
            let theirs = d.continuous.map(|c| c.dose_unit)?;
            (d.id == drug.id && theirs != mine).then_some((p, theirs))
        });
        if let Some((p, theirs)) = other
            && drug.advisory.is_none()
        {
            out.push(Finding::warning(
                "dose-unit-differs",
                &format!("{path}.continuous.dose_unit"),
                format!(
                    "{} is dosed in {} here and in {} at {p}, and this entry has no advisory saying so",
                    drug.display_name,
                    mine, theirs
                ),
            ));
        }
    }
}

/// Soft limits exist, but no reason (or no role) to override one with.
fn override_reasons(library: &Library, out: &mut Vec<Finding>) {
    let soft = library.care_areas.iter().flat_map(|a| &a.drugs).any(|d| {
        d.continuous
            .is_some_and(|c| c.soft_min.is_some() || c.soft_max.is_some())
            || d.bolus.is_some_and(|b| b.allowed && b.soft_max.is_some())
    });
    if !soft {
        return;
    }
    if library.policy.override_reasons.is_empty() {
        out.push(Finding::error(
            "override-reasons-empty",
            "$.policy.override_reasons",
            "the library has soft limits but no reason to override one with: every soft alert would be a stop".to_owned(),
        ));
    }
    if library.policy.soft_override_roles.is_empty() {
        out.push(Finding::error(
            "override-reasons-empty",
            "$.policy.soft_override_roles",
            "the library has soft limits but nobody may override one".to_owned(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn example() -> Value {
        serde_json::from_str(include_str!("../../../config/drug-library.example.json"))
            .expect("the example is JSON")
    }

    fn findings(v: &Value) -> Vec<(String, String)> {
        let l: Library = serde_json::from_value(v.clone()).expect("the model reads it");
        lint_consistency(&l)
            .into_iter()
            .map(|f| (f.code.to_owned(), f.path))
            .collect()
    }

    #[test]
    fn the_example_is_consistent() {
        assert_eq!(findings(&example()), vec![]);
    }

    #[test]
    fn micrograms_typed_for_mg_stand_out_in_a_limit_and_a_concentration() {
        // Theatres' fentanyl hard maximum typed as 400 mg/h.
        let mut v = example();
        let theatres = v["care_areas"][2]["drugs"]
            .as_array_mut()
            .expect("drugs")
            .iter_mut()
            .find(|d| d["id"] == "fentanyl")
            .expect("fentanyl in theatres");
        theatres["continuous"]["dose_unit"] = json!("mg/h");
        let f = findings(&v);
        assert!(
            f.iter().any(|(c, p)| c == "thousandfold-limit"
                && p.starts_with("$.care_areas[2].")
                && p.ends_with(".continuous.hard_max")),
            "{f:?}"
        );
        // A fentanyl syringe listed as 2,500 mg in 50 mL.
        let mut v = example();
        v["care_areas"][0]["drugs"][0]["concentrations"]
            .as_array_mut()
            .expect("concentrations")
            .push(json!({"amount": "2500", "unit": "mg", "volume_ml": "50", "standard": false}));
        let f = findings(&v);
        assert!(
            f.contains(&(
                "thousandfold-concentration".to_owned(),
                "$.care_areas[0].drugs[0].concentrations[1]".to_owned()
            )),
            "{f:?}"
        );
    }

    #[test]
    fn two_dose_units_need_an_advisory_and_soft_limits_need_reasons() {
        let mut v = example();
        for area in v["care_areas"].as_array_mut().expect("areas") {
            for d in area["drugs"].as_array_mut().expect("drugs") {
                if d["id"] == "morphine" {
                    d.as_object_mut().expect("a drug").remove("advisory");
                }
            }
        }
        let f = findings(&v);
        assert!(
            f.iter().any(|(c, _)| c == "dose-unit-differs"),
            "morphine is mg/h in adults and micrograms/kg/h in children: {f:?}"
        );
        let mut v = example();
        v["policy"]["override_reasons"] = json!([]);
        let f = findings(&v);
        assert!(
            f.contains(&(
                "override-reasons-empty".to_owned(),
                "$.policy.override_reasons".to_owned()
            )),
            "{f:?}"
        );
    }
}
