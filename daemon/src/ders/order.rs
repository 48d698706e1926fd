//! The order-aware part of the cross-check: a programme against the
//! prescriber's order for its pump (from the EHR, IHE PCD-03), field by
//! field, each within [`ORDER_TOLERANCE_PERCENT`] (the concentration and
//! the drug exactly). Whether a care area asks for an order at all is the
//! library's `orders` (`docs/ders.md` §"Against the order").
//!
//! The order arrives as HL7 (`crate::ehr::order`); here it is only the
//! values prescribed, already matched to the library's drug id, so the
//! rules do not depend on how it came.

use super::check::flows;
use super::programme::{Delivery, Programme};
use super::verdict::{Code, Outcome, Reason};
use crate::format;
use crate::library::OrderPolicy;
use crate::units::{ArithmeticError, Concentration, Dose, Exact, Rate, Volume, Weight};

/// How far a programmed rate, dose, volume to be infused or weight may be
/// from the order, relative to the order: 1%, the pump-arithmetic
/// tolerance (a pump showing 31.9 mL/h for an order that comes to
/// 31.875 mL/h matches). The drug and the concentration must match
/// exactly: they are read off a label, never rounded.
pub const ORDER_TOLERANCE_PERCENT: i128 = 1;

type Calc<T> = Result<T, ArithmeticError>;

/// What the order says to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Give {
    /// A continuous dose rate or flow rate.
    Rate(Rate),
    /// One dose (a bolus).
    Dose(Dose),
}

/// A prescriber's order as the cross-check compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    /// The order's number (the placer's), named in every reason.
    pub number: String,
    /// The library's id of the drug ordered.
    pub drug: String,
    /// Its name as the library shows it (Tall Man lettering).
    pub drug_name: String,
    /// A bolus order (given from an infusion already running).
    pub bolus: bool,
    /// The concentration ordered.
    pub concentration: Option<Concentration>,
    /// The rate or dose ordered.
    pub give: Option<Give>,
    /// The volume to be infused.
    pub vtbi: Option<Volume>,
    /// The weight the order was written for.
    pub weight: Option<Weight>,
}

impl Ordered {
    /// The order's lines as the bedside sees them: what, how strong, how
    /// much, for what weight.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("Order {}: {}", self.number, self.drug_name)];
        if let Some(c) = self.concentration {
            lines.push(format!("Concentration {}", format::concentration(c)));
        }
        match self.give {
            Some(Give::Rate(r)) => lines.push(format!("Rate {}", format::rate(r))),
            Some(Give::Dose(d)) => lines.push(format!("Bolus {}", format::dose(d))),
            None => {}
        }
        if let Some(v) = self.vtbi {
            lines.push(format!("Volume to be infused {}", format::volume(v)));
        }
        if let Some(w) = self.weight {
            lines.push(format!("Weight {}", format::weight(w)));
        }
        lines
    }
}

/// The reasons a programme fails its order (none when it matches, when
/// the care area does not use orders, or when orders are optional and
/// there is none). `drug_name` is the library's display name of the
/// programme's drug.
pub fn against_order(
    policy: OrderPolicy,
    p: &Programme,
    order: Option<&Ordered>,
    drug_name: &str,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if let Err(e) = run(policy, p, order, drug_name, &mut reasons) {
        reasons.push(Reason::new(
            Outcome::Block,
            Code::ArithmeticError,
            format!("The gateway could not compare this programme with its order exactly ({e}); it is blocked."),
        ));
    }
    reasons
}

fn run(
    policy: OrderPolicy,
    programme: &Programme,
    order: Option<&Ordered>,
    drug_name: &str,
    reasons: &mut Vec<Reason>,
) -> Calc<()> {
    let what = kind_words(programme);
    let order = match (policy, order) {
        (OrderPolicy::NotUsed, _) | (OrderPolicy::Optional, None) => return Ok(()),
        (OrderPolicy::Required, None) => {
            reasons.push(Reason::new(
                Outcome::Block,
                Code::OrderMissing,
                format!(
                    "This care area gives nothing without the prescriber's order, and the pump has no open {what} order. Ask for the order to be sent from the EHR."
                ),
            ));
            return Ok(());
        }
        (_, Some(order)) => order,
    };
    let number = &order.number;
    if programme.drug != order.drug {
        reasons.push(mismatch(
            "drug",
            order.drug_name.clone(),
            drug_name.to_owned(),
            &format!(
                "Order {number} is for {}, but the pump is programmed with {drug_name}.",
                order.drug_name
            ),
        ));
        return Ok(());
    }
    if let Some(ordered) = order.concentration {
        let programmed = programme.container.concentration;
        if ordered.amount() != programmed.amount() || ordered.volume() != programmed.volume() {
            let (ordered, programmed) = (
                format::concentration(ordered),
                format::concentration(programmed),
            );
            let mut reason = mismatch(
                "concentration",
                ordered.clone(),
                programmed.clone(),
                &format!(
                    "Order {number} is for {drug_name} {ordered}, but the pump is programmed with {programmed}."
                ),
            );
            // PIV 9037: "medication concentration does not match the
            // currently programmed order".
            reason.ihe_code = Some(9037);
            reasons.push(reason);
        }
    }
    if let (Some(ordered), Some(programmed)) = (order.weight, programme.patient_weight)
        && outside(programmed.kg()?, ordered.kg()?)?
    {
        let (ordered, programmed) = (format::weight(ordered), format::weight(programmed));
        reasons.push(mismatch(
            "weight",
            ordered.clone(),
            programmed.clone(),
            &format!(
                "Order {number} was written for a patient of {ordered}, but the pump has {programmed}."
            ),
        ));
    }
    compare_give(programme, order, reasons)
}

fn kind_words(programme: &Programme) -> &'static str {
    match programme.delivery {
        Delivery::Bolus { .. } => "bolus",
        Delivery::Continuous { .. } => "infusion",
    }
}

/// One difference from the order: `limit` names the field, `limit_value`
/// is what was ordered.
fn mismatch(field: &str, ordered: String, programmed: String, words: &str) -> Reason {
    Reason::new(
        Outcome::Block,
        Code::OrderMismatch,
        format!("{words} Reprogramme the pump to match the order, or have the order changed."),
    )
    .comparing(programmed, ordered)
    .about(format!("order.{field}"))
}

fn kg(w: Option<Weight>) -> Calc<Option<Exact>> {
    w.map(Weight::kg).transpose()
}

/// The rate or dose, and the volume to be infused.
fn compare_give(programme: &Programme, order: &Ordered, reasons: &mut Vec<Reason>) -> Calc<()> {
    let number = &order.number;
    match (programme.delivery, order.give) {
        (Delivery::Continuous { rate, vtbi, .. }, Some(Give::Rate(ordered))) => {
            // Each side in its own concentration and weight: a difference
            // in those is its own reason.
            let programmed_flow = flows(
                rate,
                programme.container.concentration,
                kg(programme.patient_weight)?,
            )?;
            let ordered_flow = flows(
                ordered,
                order
                    .concentration
                    .unwrap_or(programme.container.concentration),
                kg(order.weight.or(programme.patient_weight))?,
            )?;
            let differs = match (rate.convert(ordered.unit), programmed_flow, ordered_flow) {
                (Some(v), _, _) => outside(v?, ordered.value)?,
                (None, Some((ours, _)), Some((theirs, _))) => outside(ours, theirs)?,
                // Not comparable at all (mL/h against a dose without a
                // concentration, or per kg without a weight).
                _ => true,
            };
            if differs {
                let (ordered, programmed) = (format::rate(ordered), format::rate(rate));
                reasons.push(mismatch(
                    "rate",
                    ordered.clone(),
                    programmed.clone(),
                    &format!(
                        "Order {number} is for {ordered}, but the pump is programmed at {programmed}."
                    ),
                ));
            }
            if let Some(ordered) = order.vtbi {
                let differs = match vtbi {
                    Some(programmed) => outside(programmed.microlitres(), ordered.microlitres())?,
                    None => true,
                };
                if differs {
                    let ordered = format::volume(ordered);
                    let programmed = vtbi.map_or_else(|| "none set".to_owned(), format::volume);
                    reasons.push(mismatch(
                        "vtbi",
                        ordered.clone(),
                        programmed.clone(),
                        &format!(
                            "Order {number} is for {ordered} to be infused, but the pump's volume to be infused is {programmed}."
                        ),
                    ));
                }
            }
        }
        (Delivery::Bolus { dose, .. }, Some(Give::Dose(ordered))) => {
            let differs = match dose.convert(ordered.unit) {
                Some(v) => outside(v?, ordered.value)?,
                None => match (
                    absolute(dose, kg(programme.patient_weight)?)?,
                    absolute(ordered, kg(order.weight.or(programme.patient_weight))?)?,
                ) {
                    (Some(ours), Some(theirs)) => outside(ours, theirs)?,
                    _ => true,
                },
            };
            if differs {
                let (ordered, programmed) = (format::dose(ordered), format::dose(dose));
                reasons.push(mismatch(
                    "dose",
                    ordered.clone(),
                    programmed.clone(),
                    &format!(
                        "Order {number} is for a bolus of {ordered}, but the pump is programmed to give {programmed}."
                    ),
                ));
            }
        }
        (_, None) => {}
        (_, Some(give)) => {
            let what = kind_words(programme);
            let ordered = match give {
                Give::Rate(r) => format!("an infusion at {}", format::rate(r)),
                Give::Dose(d) => format!("a bolus of {}", format::dose(d)),
            };
            reasons.push(mismatch(
                "kind",
                ordered.clone(),
                format!("a {what}"),
                &format!(
                    "Order {number} is for {ordered}, but the pump is programmed for a {what}."
                ),
            ));
        }
    }
    Ok(())
}

/// A dose as an absolute amount in base units (`None`: per kg without a
/// weight).
fn absolute(d: Dose, kg: Option<Exact>) -> Calc<Option<Exact>> {
    let base = d.value.mul_int(d.unit.amount.base_factor())?;
    Ok(match (d.unit.per_kg, kg) {
        (false, _) => Some(base),
        (true, Some(kg)) => Some(base.mul(kg)?),
        (true, None) => None,
    })
}

/// True when `programmed` is more than [`ORDER_TOLERANCE_PERCENT`] of
/// `ordered` away from it. Exactly on the tolerance is a match.
fn outside(programmed: Exact, ordered: Exact) -> Calc<bool> {
    let diff = programmed.sub(ordered)?.abs()?;
    Ok(diff.mul_int(100)? > ordered.abs()?.mul_int(ORDER_TOLERANCE_PERCENT)?)
}

/// The order the tests check against: a fentanyl bolus of 25 micrograms
/// from a 2,500 micrograms in 50 mL syringe (the HSIB case).
#[cfg(test)]
pub(crate) fn fentanyl_bolus_order(number: &str) -> Ordered {
    Ordered {
        number: number.into(),
        drug: "fentanyl".into(),
        drug_name: "fentaNYL".into(),
        bolus: true,
        concentration: Some(
            crate::units::parse_concentration("2500 micrograms in 50 mL").expect("a concentration"),
        ),
        give: Some(Give::Dose(
            crate::units::parse_dose("25 micrograms").expect("a dose"),
        )),
        vtbi: None,
        weight: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{parse_concentration, parse_rate, parse_volume, parse_weight};

    fn programme(json: &str) -> Programme {
        serde_json::from_str(json).expect("a programme")
    }

    fn fentanyl_bolus(conc: &str, dose: &str) -> Programme {
        programme(&format!(
            r#"{{"drug":"fentanyl","library_version":1,"requested_at":"2026-12-04T10:00:00Z",
            "container":{{"concentration":"{conc}","volume_loaded":"50 mL","volume_remaining":"50 mL"}},
            "delivery":{{"kind":"bolus","dose":"{dose}","pump_volume":"0.5 mL"}}}}"#
        ))
    }

    fn infusion(rate: &str, vtbi: Option<&str>, weight: Option<&str>) -> Programme {
        let vtbi = vtbi
            .map(|v| format!(r#","vtbi":"{v}""#))
            .unwrap_or_default();
        let weight = weight
            .map(|w| format!(r#""patient_weight":"{w}","#))
            .unwrap_or_default();
        programme(&format!(
            r#"{{"drug":"dopamine","library_version":1,"requested_at":"2026-12-04T10:00:00Z",{weight}
            "container":{{"concentration":"400 mg in 250 mL","volume_loaded":"250 mL","volume_remaining":"250 mL"}},
            "delivery":{{"kind":"continuous","rate":"{rate}","pump_flow_rate":"31.875 mL/h"{vtbi}}}}}"#
        ))
    }

    fn bolus_order() -> Ordered {
        fentanyl_bolus_order("F-2001")
    }

    /// The IHE PCD-03 dopamine order.
    fn dopamine_order() -> Ordered {
        Ordered {
            number: "12345".into(),
            drug: "dopamine".into(),
            drug_name: "DOPamine".into(),
            bolus: false,
            concentration: Some(parse_concentration("400 mg in 250 mL").expect("a concentration")),
            give: Some(Give::Rate(
                parse_rate("10 micrograms/kg/min").expect("a dose rate"),
            )),
            vtbi: Some(parse_volume("250 mL").expect("a volume")),
            weight: Some(parse_weight("85 kg").expect("a weight")),
        }
    }

    fn fields(reasons: &[Reason]) -> Vec<String> {
        reasons
            .iter()
            .map(|r| r.limit.clone().unwrap_or_else(|| format!("{:?}", r.code)))
            .collect()
    }

    #[test]
    fn the_hsib_syringe_is_blocked_by_its_order_naming_both_concentrations() {
        let p = fentanyl_bolus("25 micrograms in 50 mL", "25 micrograms");
        let r = against_order(OrderPolicy::Optional, &p, Some(&bolus_order()), "fentaNYL");
        assert_eq!(fields(&r), ["order.concentration"]);
        assert_eq!(r[0].outcome, Outcome::Block);
        assert_eq!(r[0].code, Code::OrderMismatch);
        assert_eq!(r[0].ihe_code, Some(9037));
        assert_eq!(
            r[0].limit_value.as_deref(),
            Some("2,500 micrograms in 50 mL (50 micrograms/mL)")
        );
        assert_eq!(
            r[0].programmed.as_deref(),
            Some("25 micrograms in 50 mL (0.5 micrograms/mL)")
        );
        assert!(r[0].message.starts_with("Order F-2001 is for fentaNYL 2,500 micrograms in 50 mL (50 micrograms/mL), but the pump is programmed with 25 micrograms in 50 mL"), "{}", r[0].message);
    }

    #[test]
    fn the_right_programme_matches_its_order_in_any_unit() {
        let o = bolus_order();
        for (conc, dose) in [
            ("2500 micrograms in 50 mL", "25 micrograms"),
            ("2.5 mg in 50 mL", "0.025 mg"),
            // Within 1% of the dose.
            ("2500 micrograms in 50 mL", "25.25 micrograms"),
        ] {
            let r = against_order(
                OrderPolicy::Required,
                &fentanyl_bolus(conc, dose),
                Some(&o),
                "fentaNYL",
            );
            assert!(r.is_empty(), "{conc} {dose}: {r:?}");
        }
        let r = against_order(
            OrderPolicy::Required,
            &fentanyl_bolus("2500 micrograms in 50 mL", "25.26 micrograms"),
            Some(&o),
            "fentaNYL",
        );
        assert_eq!(fields(&r), ["order.dose"]);
    }

    #[test]
    fn the_ihe_dopamine_order_matches_its_dose_rate_or_its_flow_rate_within_one_percent() {
        let o = dopamine_order();
        for rate in [
            "10 micrograms/kg/min",
            "0.01 mg/kg/min",
            "31.875 mL/h",
            "31.9 mL/h",
        ] {
            let r = against_order(
                OrderPolicy::Required,
                &infusion(rate, Some("250 mL"), Some("85 kg")),
                Some(&o),
                "DOPamine",
            );
            assert!(r.is_empty(), "{rate}: {r:?}");
        }
        let r = against_order(
            OrderPolicy::Required,
            &infusion("33 mL/h", None, Some("86 kg")),
            Some(&o),
            "DOPamine",
        );
        assert_eq!(fields(&r), ["order.weight", "order.rate", "order.vtbi"]);
        assert!(r.iter().all(|r| r.outcome == Outcome::Block));
        assert_eq!(r[2].programmed.as_deref(), Some("none set"));
    }

    #[test]
    fn the_care_areas_policy_decides_what_no_order_means() {
        let p = fentanyl_bolus("2500 micrograms in 50 mL", "25 micrograms");
        assert!(against_order(OrderPolicy::Optional, &p, None, "fentaNYL").is_empty());
        assert!(against_order(OrderPolicy::NotUsed, &p, None, "fentaNYL").is_empty());
        // Not used: an order is not even looked at.
        let mut other = bolus_order();
        other.drug = "morphine".into();
        other.drug_name = "morphine".into();
        assert!(against_order(OrderPolicy::NotUsed, &p, Some(&other), "fentaNYL").is_empty());
        let r = against_order(OrderPolicy::Required, &p, None, "fentaNYL");
        assert_eq!(fields(&r), ["OrderMissing"]);
        assert!(
            r[0].message.contains("no open bolus order"),
            "{}",
            r[0].message
        );
        let r = against_order(OrderPolicy::Optional, &p, Some(&other), "fentaNYL");
        assert_eq!(fields(&r), ["order.drug"]);
        assert!(
            r[0].message.starts_with(
                "Order F-2001 is for morphine, but the pump is programmed with fentaNYL."
            ),
            "{}",
            r[0].message
        );
    }

    #[test]
    fn the_order_is_shown_in_the_display_rules_words() {
        assert_eq!(
            dopamine_order().lines(),
            [
                "Order 12345: DOPamine",
                "Concentration 400 mg in 250 mL (1.6 mg/mL)",
                "Rate 10 micrograms/kg/min",
                "Volume to be infused 250 mL",
                "Weight 85 kg"
            ]
        );
    }

    #[test]
    fn an_infusion_programme_against_a_bolus_order_is_a_mismatch_of_kind() {
        let mut o = bolus_order();
        o.drug = "dopamine".into();
        o.concentration = None;
        let r = against_order(
            OrderPolicy::Required,
            &infusion("31.875 mL/h", None, Some("85 kg")),
            Some(&o),
            "DOPamine",
        );
        assert_eq!(fields(&r), ["order.kind"]);
    }
}
