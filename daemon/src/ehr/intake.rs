//! Taking an order for this bed: what the listener hands the gateway's
//! core ([`OrderIn`]), and the checks that need only the library
//! ([`matched`]): the care area uses orders, the drug is in the library
//! (9010), and the order itself is within the library's rules, checked by
//! the cross-check's own rules as if the pump were programmed exactly as
//! ordered (a hard limit 9024, a concentration the library does not allow
//! 9018, no bolus for this drug 9039, ...). The pump (by serial number) is
//! the core's to find: it knows the bed's pumps.

use tokio::sync::oneshot;

use super::answer::Refusal;
use super::order::Order;
use crate::ders::{self, Delivery, Give, Ordered, Outcome, Programme};
use crate::library::{Library, OrderPolicy};
use crate::units::{Rate, RateUnit, Volume};

/// An order read off the wire, for the core to take or refuse.
#[derive(Debug)]
pub struct OrderIn {
    /// The order.
    pub order: Order,
    /// The message as the log keeps it ([`super::order::minimised`]).
    pub kept: String,
    /// SHA-256 of the message as received, hex.
    pub hash: String,
    /// `None` once the order is taken and logged; else why not.
    pub reply: oneshot::Sender<Option<Refusal>>,
}

fn refusal(location: Option<(&str, usize)>, piv: Option<(u16, &str)>, message: String) -> Refusal {
    Refusal {
        location: location.map(|(s, f)| (s.to_owned(), f)),
        hl7: 207,
        piv: piv.map(|(c, w)| (c, w.to_owned())),
        message,
    }
}

/// The order as the cross-check compares it, or why this bed cannot take
/// it.
pub fn matched(
    order: &Order,
    library: &Library,
    care_area: &str,
    now: time::OffsetDateTime,
) -> Result<Ordered, Refusal> {
    let Some(area) = library.care_area(care_area) else {
        return Err(refusal(
            None,
            Some((9021, "Care area or profile mismatch")),
            format!("the active drug library has no care area {care_area}"),
        ));
    };
    if area.orders == OrderPolicy::NotUsed {
        return Err(refusal(
            None,
            Some((9021, "Care area or profile mismatch")),
            format!(
                "care area {care_area} does not use orders (drug library version {}: orders not_used)",
                library.version
            ),
        ));
    }
    let code = order.drug.code.to_ascii_lowercase();
    let text = order.drug.text.to_ascii_lowercase();
    let Some(drug) = area
        .drugs
        .iter()
        .find(|d| d.id == code || d.id == text || d.generic_name.to_ascii_lowercase() == text)
    else {
        return Err(refusal(
            Some(("RXG", 4)),
            Some((9010, "Unable to match medication to drug library")),
            format!(
                "{} ({}) is not in the drug library for {care_area}",
                order.drug.text, order.drug.code
            ),
        ));
    };
    let ordered = Ordered {
        number: order.placer.clone(),
        drug: drug.id.clone(),
        drug_name: drug.display_name.clone(),
        bolus: order.bolus_from_infusion || matches!(order.give, Some(Give::Dose(_))),
        concentration: order.concentration,
        give: order.give,
        vtbi: order.vtbi,
        weight: order.weight,
    };
    if let Some(p) = as_programmed(&ordered, library.version, now) {
        let verdict = ders::check(library, care_area, &p, &ders::History::default());
        let first = verdict.reasons.iter().find(|r| {
            matches!(r.outcome, Outcome::Block | Outcome::HardLimit) && !pump_only(r.code)
        });
        if let Some(r) = first {
            let piv = r.ihe_code.map(|c| (c, piv_words(c)));
            return Err(refusal(Some(location(r.code)), piv, r.message.clone()));
        }
    }
    Ok(ordered)
}

/// The programme a pump would send for exactly this order (none without
/// a concentration or a rate or dose: nothing to check the limits with).
fn as_programmed(o: &Ordered, version: u64, now: time::OffsetDateTime) -> Option<Programme> {
    let conc = o.concentration?;
    let kg = o.weight.and_then(|w| w.kg().ok());
    let delivery = match o.give? {
        Give::Rate(rate) => {
            // The pump's own figure is taken as exact: the order has none.
            let ml_per_h = ders::flows(rate, conc, kg).ok().flatten()?.1;
            Delivery::Continuous {
                rate,
                vtbi: o.vtbi,
                pump_flow_rate: Rate {
                    value: ml_per_h,
                    unit: RateUnit::MillilitresPerHour,
                },
            }
        }
        Give::Dose(dose) => {
            let mut base = dose.value.mul_int(dose.unit.amount.base_factor()).ok()?;
            if dose.unit.per_kg {
                base = base.mul(kg?).ok()?;
            }
            let ml = base.div(conc.base_per_ml().ok()?).ok()?;
            Delivery::Bolus {
                dose,
                duration: None,
                pump_volume: Volume::from_ml(ml).ok()?,
            }
        }
    };
    Some(Programme {
        drug: o.drug.clone(),
        care_area: None,
        library_version: version,
        requested_at: now,
        patient_weight: o.weight,
        container: ders::Container {
            concentration: conc,
            // A full container of the ordered strength.
            volume_loaded: conc.volume(),
            volume_remaining: conc.volume(),
            load: None,
        },
        delivery,
    })
}

/// Rules about the pump's own state, not the order: what is left in its
/// container, its arithmetic, a bolus duration the order need not give,
/// the bed's history.
fn pump_only(code: ders::Code) -> bool {
    use ders::Code;
    matches!(
        code,
        Code::PumpComputationMismatch
            | Code::ContainerInconsistent
            | Code::BolusDurationMissing
            | Code::BolusExceedsContainer
            | Code::BolusShareOfContainer
            | Code::CumulativeLimit
            | Code::LibraryVersionMismatch
    )
}

/// Where in the order a rule's fault is.
fn location(code: ders::Code) -> (&'static str, usize) {
    use ders::Code;
    match code {
        Code::ConcentrationNotInLibrary
        | Code::NonStandardConcentration
        | Code::CustomConcentration => ("RXG", 17),
        Code::WeightMissing | Code::WeightOutOfRange => ("OBX", 5),
        Code::BolusNotAllowed => ("ORC", 1),
        Code::CareAreaMismatch => ("MSH", 6),
        Code::DrugNotInLibrary | Code::ContinuousNotConfigured => ("RXG", 4),
        _ => ("RXG", 15),
    }
}

/// The PIV table's words for a code (TF-2 Rev 8.0 and the 2020 draft).
pub fn piv_words(code: u16) -> &'static str {
    match code {
        9001 => "Unknown infuser or channel",
        9009 => "Dose/Rate Units do not match drug library",
        9010 => "Unable to match medication to drug library",
        9011 => "Patient weight mismatch",
        9018 => "Parameter does not match drug library",
        9019 => "Patient weight missing",
        9021 => "Care area or profile mismatch",
        9024 => "Drug library hard limit exceeded",
        9034 => "Not enough fluid or medication in container to deliver bolus",
        9037 => "Medication concentration does not match the currently programmed order",
        9039 => "Medication does not support bolus",
        _ => "Other error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> Library {
        crate::library::parse(include_bytes!("../../../config/drug-library.example.json"))
            .expect("the example library")
            .0
    }

    fn order(edit: impl Fn(String) -> String) -> Order {
        let text = edit(include_str!("../../../config/examples/ehr/fentanyl-order.hl7").to_owned());
        Order::read(&super::super::er7::Message::parse(text.as_bytes()).expect("HL7"))
            .expect("an order")
    }

    fn refused(o: &Order, area: &str) -> (Option<(String, usize)>, Option<u16>) {
        let now = time::OffsetDateTime::now_utc();
        let r = matched(o, &library(), area, now).expect_err("refused");
        (r.location, r.piv.map(|p| p.0))
    }

    #[test]
    fn an_order_within_the_library_is_taken_as_the_library_names_it() {
        let o = matched(
            &order(|t| t),
            &library(),
            "adult-icu",
            time::OffsetDateTime::now_utc(),
        )
        .expect("taken");
        assert_eq!(
            (o.drug.as_str(), o.drug_name.as_str()),
            ("fentanyl", "fentaNYL")
        );
        assert!(!o.bolus);
    }

    #[test]
    fn an_order_the_library_would_refuse_is_refused_with_its_piv_code_and_field() {
        let at = |s: &str, f| Some((s.to_owned(), f));
        // Over fentanyl's hard maximum (400 micrograms/h): 9024.
        assert_eq!(
            refused(
                &order(|t| t.replace("|50|ug/h^", "|500|ug/h^")),
                "adult-icu"
            ),
            (at("RXG", 15), Some(9024))
        );
        // A strength the library does not list: 9018.
        assert_eq!(
            refused(&order(|t| t.replace("|2500|ug^", "|25|ug^")), "adult-icu"),
            (at("RXG", 17), Some(9018))
        );
        // Not in the library: 9010.
        assert_eq!(
            refused(
                &order(|t| t.replace("fentanyl^Fentanyl", "x1^Unobtainium")),
                "adult-icu"
            ),
            (at("RXG", 4), Some(9010))
        );
        // A care area that does not use orders: 9021.
        assert_eq!(refused(&order(|t| t), "theatres"), (None, Some(9021)));
    }
}
