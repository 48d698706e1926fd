//! What a confirmation screen shows, in words, built by the daemon so that
//! every terminal shows the same thing and its hash can bind a confirmation
//! to it. Every number goes through [`crate::format`].
//!
//! The concentration stage is blind: it names the pump, the drug and what
//! kind of delivery waits, and nothing from which the programmed
//! concentration could be read (no concentration, no volume, no rate).
//! The prescriber's order, when there is one, is on every stage as
//! `order` lines; on the blind stage without its concentration, so that
//! the label is read, not the order copied (a syringe made up wrong would
//! otherwise pass as prescribed).

use serde_json::{Value, json};

use super::confirm::Need;
use crate::ders::{Delivery, Ordered, Outcome, Programme, Verdict};
use crate::format;
use crate::library::Drug;
use crate::staff::policy;

/// The screen of one confirmation stage.
pub fn build(
    pump: &str,
    needs: &[Need],
    programme: &Programme,
    drug: Option<&Drug>,
    verdict: &Verdict,
    order: Option<&Ordered>,
) -> Value {
    let name = drug.map_or_else(|| programme.drug.clone(), |d| d.display_name.clone());
    let high_alert = drug.is_some_and(|d| d.high_alert);
    let delivery = match programme.delivery {
        Delivery::Bolus { .. } => "bolus",
        Delivery::Continuous { .. } => "continuous infusion",
    };
    if needs
        .iter()
        .any(|n| matches!(n, Need::Concentration { .. }))
    {
        let mut screen = json!({
            "stage": "concentration",
            "title": "Confirm the concentration of the new container",
            "pump": pump,
            "drug": name,
            "high_alert": high_alert,
            "facts": [["Waiting to start", delivery]],
            "instruction": "Read the label on the syringe or bag and type what it says: the amount, its unit and the volume. The programmed value is not shown on purpose.",
        });
        if let Some(o) = order {
            let blind = Ordered {
                concentration: None,
                ..o.clone()
            };
            screen["order"] = json!(blind.lines());
        }
        return screen;
    }
    let bolus = needs.iter().find_map(|n| match n {
        Need::Bolus { rule, .. } => Some(rule),
        _ => None,
    });
    let overriding = needs.iter().any(|n| matches!(n, Need::Override { .. }));
    let stage = match (bolus.is_some(), overriding) {
        (true, true) => "bolus_override",
        (true, false) => "bolus",
        _ => "override",
    };
    let title = match stage {
        "bolus_override" => "Confirm a bolus outside a soft limit",
        "bolus" => "Confirm a bolus",
        _ => "Override a soft limit",
    };
    let mut who = Vec::new();
    if let Some(rule) = bolus {
        who.push(format!("This bolus needs {}.", policy::who_confirms(rule)));
    }
    let mut screen = json!({
        "stage": stage,
        "title": title,
        "pump": pump,
        "drug": name,
        "high_alert": high_alert,
        "facts": facts(programme, verdict),
        "limits": limits(programme, drug),
        "soft_limits": soft_limits(verdict),
        "who": who,
        "instruction": match stage {
            "override" => "Choose why the limit is overridden, then sign with your PIN.",
            "bolus_override" => "Check every line, choose why the limit is overridden, then sign with your PIN.",
            _ => "Check every line, then sign with your PIN.",
        },
    });
    if let Some(o) = order {
        screen["order"] = json!(o.lines());
    }
    screen
}

/// The programme's numbers, as the gateway computed them.
fn facts(p: &Programme, verdict: &Verdict) -> Vec<[String; 2]> {
    let computed = |label: &str| {
        verdict
            .computed
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    match p.delivery {
        Delivery::Bolus { dose, duration, .. } => {
            out.push(["Dose".to_owned(), format::dose(dose)]);
            if let Some(amount) = computed("bolus amount").filter(|a| *a != format::dose(dose)) {
                out.push(["That is".to_owned(), amount]);
            }
            if let Some(v) = computed("bolus volume") {
                out.push(["Volume".to_owned(), v.clone()]);
                out.push([
                    "Share of the container".to_owned(),
                    share(&v, p.container.volume_remaining),
                ]);
            }
            out.push([
                "Over".to_owned(),
                duration.map_or_else(
                    || "as fast as the pump gives it".to_owned(),
                    format::duration,
                ),
            ]);
        }
        Delivery::Continuous { rate, vtbi, .. } => {
            out.push(["Rate".to_owned(), format::rate(rate)]);
            for label in ["dose rate", "flow rate"] {
                if let Some(v) = computed(label).filter(|v| *v != format::rate(rate)) {
                    out.push([capital(label), v]);
                }
            }
            if let Some(v) = vtbi {
                out.push(["Volume to be infused".to_owned(), format::volume(v)]);
            }
        }
    }
    out.push([
        "Concentration".to_owned(),
        format::concentration(p.container.concentration),
    ]);
    out.push([
        "Left in the container".to_owned(),
        format::volume(p.container.volume_remaining),
    ]);
    if let Some(w) = p.patient_weight {
        out.push(["Patient weight".to_owned(), format::weight(w)]);
    }
    out
}

/// "4.2% of the 12 mL left".
fn share(volume: &str, remaining: crate::units::Volume) -> String {
    let left = format::volume(remaining);
    let Ok(v) = crate::units::parse_volume(volume) else {
        return format!("of the {left} left");
    };
    let r = remaining.microlitres();
    if r.is_zero() {
        return "the container is empty".to_owned();
    }
    match v.microlitres().div(r) {
        Ok(f) => format!("{} of the {left} left", format::percent(f)),
        Err(_) => format!("of the {left} left"),
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The library's bolus limits for the drug, in words.
fn limits(p: &Programme, drug: Option<&Drug>) -> Vec<[String; 2]> {
    let Delivery::Bolus { .. } = p.delivery else {
        return Vec::new();
    };
    let Some(b) = drug.and_then(|d| d.bolus.as_ref()) else {
        return Vec::new();
    };
    let unit = b.dose_unit.map(|u| u.to_string()).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(v) = b.soft_max {
        out.push(["Soft maximum".to_owned(), format::with_unit(v, &unit)]);
    }
    if let Some(v) = b.hard_max {
        out.push(["Hard maximum".to_owned(), format::with_unit(v, &unit)]);
    }
    if let Some(v) = b.max_share_of_remaining_percent {
        out.push([
            "Largest share of the container".to_owned(),
            format::with_unit(v, "%").replace(" %", "%"),
        ]);
    }
    if let Some(v) = b.min_duration_s {
        out.push(["Shortest time".to_owned(), format::with_unit(v, "s")]);
    }
    out
}

/// The soft limits passed: which, the value, the limit and by how much.
fn soft_limits(verdict: &Verdict) -> Vec<Value> {
    verdict
        .reasons
        .iter()
        .filter(|r| r.outcome == Outcome::SoftLimit)
        .map(|r| {
            json!({
                "limit": r.limit,
                "programmed": r.programmed,
                "limit_value": r.limit_value,
                "by": r.margin,
                "message": r.message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_on_every_stage_and_its_concentration_never_on_the_blind_one() {
        let programme: Programme = serde_json::from_str(
            r#"{"drug":"fentanyl","library_version":1,"requested_at":"2026-12-04T10:00:00Z",
            "container":{"concentration":"2500 micrograms in 50 mL","volume_loaded":"50 mL","volume_remaining":"50 mL"},
            "delivery":{"kind":"bolus","dose":"25 micrograms","pump_volume":"0.5 mL"}}"#,
        )
        .expect("a programme");
        let order = crate::ders::order::fentanyl_bolus_order("F-2002");
        let verdict = Verdict::from_reasons(Vec::new(), Vec::new());
        let blind = build(
            "pump-a",
            &[Need::Concentration {
                programmed: programme.container.concentration,
            }],
            &programme,
            None,
            &verdict,
            Some(&order),
        );
        assert_eq!(
            blind["order"],
            json!(["Order F-2002: fentaNYL", "Bolus 25 micrograms"])
        );
        assert!(!blind.to_string().contains("2,500"), "{blind}");
        let bolus = build(
            "pump-a",
            &[Need::Bolus {
                drug: "fentaNYL".into(),
                high_alert: true,
                rule: policy::BolusRule {
                    roles: vec![crate::library::Role::Doctor],
                    people: 1,
                },
            }],
            &programme,
            None,
            &verdict,
            Some(&order),
        );
        assert_eq!(
            bolus["order"][1],
            "Concentration 2,500 micrograms in 50 mL (50 micrograms/mL)"
        );
        let none = build("pump-a", &[], &programme, None, &verdict, None);
        assert!(none.get("order").is_none());
    }
}
