//! IHE PCD-03 (Pump Infusion Verification, PIV): the prescriber's
//! infusion order as the EHR sends it, `RGV^O15`, read into exact
//! quantities. A message that cannot be read gives an [`OrderError`] that
//! names the segment and field, with its HL7 error code (table 0357), for
//! the error answer.
//!
//! Where each value is taken from (IHE PCD TF-2, PCD-03):
//! ORC-1 order control (`CH`: a bolus from an infusion already running),
//! ORC-2 placer order number, PID-3 patient, RXG-4 give code, RXG-5/7 the
//! volume to be infused, RXG-15/16 the dose or flow rate (or, for a
//! bolus, the dose: TF-2 "if the order specifies a dose amount"), RXG-17/18 the
//! strength and RXG-23/24 its volume (the concentration), RXR-1 the route,
//! the OBX coded `69986^MDC_DEV_PUMP_INFUS_VMD` the pump (its OBX-18), the
//! OBX coded `68063^MDC_ATTR_PT_WEIGHT` the weight.

use super::er7::{Field, Message, Segment};
use crate::ders::Give;
use crate::units::{
    Concentration, Volume, Weight, parse_amount, parse_dose, parse_rate, parse_volume, parse_weight,
};

/// IEEE 11073 code of an infusion pump's VMD: the OBX naming the pump.
pub const MDC_DEV_PUMP_INFUS_VMD: &str = "69986";
/// IEEE 11073 code of the patient's weight.
pub const MDC_ATTR_PT_WEIGHT: &str = "68063";

/// HL7 table 0357 codes used in answers.
pub mod hl7_error {
    /// Segments out of order, or one required missing.
    pub const SEGMENT_SEQUENCE: u16 = 100;
    /// A required field is empty.
    pub const REQUIRED_FIELD_MISSING: u16 = 101;
    /// A field's value cannot be read as its type.
    pub const DATA_TYPE: u16 = 102;
    /// A coded value is not one the receiver knows.
    pub const TABLE_VALUE_NOT_FOUND: u16 = 103;
    /// The message type is not supported.
    pub const UNSUPPORTED_MESSAGE_TYPE: u16 = 200;
    /// The HL7 version is not supported.
    pub const UNSUPPORTED_VERSION: u16 = 203;
}

/// Why an order cannot be read: where, the HL7 code, and words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{segment}-{field}: {message}")]
pub struct OrderError {
    /// The segment (`RXG`).
    pub segment: String,
    /// The field, from 1 (0: the segment as a whole).
    pub field: usize,
    /// HL7 table 0357 code ([`hl7_error`]).
    pub code: u16,
    /// What is wrong, in words.
    pub message: String,
}

fn error(segment: &str, field: usize, code: u16, message: impl Into<String>) -> OrderError {
    OrderError {
        segment: segment.to_owned(),
        field,
        code,
        message: message.into(),
    }
}

/// A coded value: its code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    /// The code (`1234`).
    pub code: String,
    /// Its text (`Dopamine`).
    pub text: String,
}

/// One infusion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// MSH-10: quoted in the answers.
    pub control_id: String,
    /// MSH-3: the sending application.
    pub sender: String,
    /// ORC-2: the placer's order number.
    pub placer: String,
    /// ORC-1 `CH`: a bolus from an infusion already running.
    pub bolus_from_infusion: bool,
    /// PID-3's first identifier.
    pub patient: String,
    /// RXG-4: what to give.
    pub drug: Coded,
    /// RXG-5 in RXG-7: the volume to be infused.
    pub vtbi: Option<Volume>,
    /// RXG-15 in RXG-16: the dose rate or flow rate, or a bolus's dose.
    pub give: Option<Give>,
    /// RXG-17/18 in RXG-23/24: the concentration.
    pub concentration: Option<Concentration>,
    /// RXR-1: the route (`IV`).
    pub route: String,
    /// OBX-18 of the pump's OBX: the pump's identifier.
    pub pump: String,
    /// The weight the order is for.
    pub weight: Option<Weight>,
}

impl Order {
    /// Reads an `RGV^O15` (HL7 v2.5 or v2.6).
    pub fn read(m: &Message) -> Result<Order, OrderError> {
        let msh = m
            .msh()
            .ok_or_else(|| error("MSH", 0, hl7_error::SEGMENT_SEQUENCE, "no MSH segment"))?;
        let kind = msh.field(9);
        if (kind.component(1), kind.component(2)) != ("RGV", "O15") {
            return Err(error(
                "MSH",
                9,
                hl7_error::UNSUPPORTED_MESSAGE_TYPE,
                format!(
                    "{}^{} is not taken here: an infusion order is RGV^O15",
                    kind.component(1),
                    kind.component(2)
                ),
            ));
        }
        let version = msh.value(12);
        if !(version.starts_with("2.5") || version.starts_with("2.6")) {
            return Err(error(
                "MSH",
                12,
                hl7_error::UNSUPPORTED_VERSION,
                format!("HL7 version {version:?}: PCD-03 is 2.5 (2.6 is also taken)"),
            ));
        }
        let control_id = required(msh, "MSH", 10)?.to_owned();
        in_order(m)?;
        let pid = segment(m, "PID")?;
        let orc = segment(m, "ORC")?;
        let rxg = segment(m, "RXG")?;
        let rxr = segment(m, "RXR")?;
        let drug = Coded {
            code: required(rxg, "RXG", 4)?.to_owned(),
            text: rxg.field(4).component(2).to_owned(),
        };
        Ok(Order {
            control_id,
            sender: msh.field(3).component(1).to_owned(),
            placer: required(orc, "ORC", 2)?.to_owned(),
            bolus_from_infusion: orc.value(1) == "CH",
            patient: required(pid, "PID", 3)?.to_owned(),
            drug,
            vtbi: quantity(rxg, "RXG", 5, 7, parse_volume)?,
            give: quantity(rxg, "RXG", 15, 16, give)?,
            concentration: concentration(rxg)?,
            route: required(rxr, "RXR", 1)?.to_owned(),
            pump: pump(m)?,
            weight: weight(m)?,
        })
    }

    /// The flow rate the order comes to, in mL/h, when it has a rate and
    /// a concentration (and the weight, for a rate per kg).
    pub fn flow_ml_per_h(&self) -> Option<crate::units::Exact> {
        let (Give::Rate(rate), conc) = (self.give?, self.concentration?) else {
            return None;
        };
        let kg = match self.weight {
            Some(w) => Some(w.kg().ok()?),
            None => None,
        };
        crate::ders::flows(rate, conc, kg)
            .ok()
            .flatten()
            .map(|(_, ml)| ml)
    }
}

/// The message as the log keeps it: the patient only by PID-3 (names,
/// dates of birth and addresses stay out of a log that leaves the bed),
/// everything else as received, so a restart reads the very same order.
pub fn minimised(m: &Message) -> String {
    let mut kept = m.clone();
    for s in &mut kept.segments {
        if s.name == "PID" {
            let id = s.field(3).clone();
            *s = Segment::new("PID");
            s.set(3, id);
        }
    }
    kept.to_er7()
}

/// A rate ("10 ug/kg/min") or, when the unit is an amount, a dose ("25 ug").
fn give(words: &str) -> Result<Give, crate::units::ParseError> {
    parse_rate(words)
        .map(Give::Rate)
        .or_else(|e| parse_dose(words).map(Give::Dose).map_err(|_| e))
}

/// The order RGV^O15 puts its segments in: PID, ORC, RXG, RXR, then the
/// OBX segments (each where present; a missing one is said later).
fn in_order(m: &Message) -> Result<(), OrderError> {
    const ORDER: [&str; 5] = ["PID", "ORC", "RXG", "RXR", "OBX"];
    let mut last: Option<(usize, &str)> = None;
    for s in &m.segments {
        let Some(rank) = ORDER.iter().position(|n| *n == s.name) else {
            continue;
        };
        if let Some((before, name)) = last
            && rank < before
        {
            return Err(error(
                &s.name,
                0,
                hl7_error::SEGMENT_SEQUENCE,
                format!(
                    "{} comes after {name}: RGV^O15 gives PID, ORC, RXG, RXR, then OBX",
                    s.name
                ),
            ));
        }
        last = Some((rank, ORDER[rank]));
    }
    Ok(())
}

fn segment<'a>(m: &'a Message, name: &str) -> Result<&'a Segment, OrderError> {
    m.segment(name).ok_or_else(|| {
        error(
            name,
            0,
            hl7_error::SEGMENT_SEQUENCE,
            format!("the {name} segment is required in RGV^O15"),
        )
    })
}

fn required<'a>(s: &'a Segment, name: &str, field: usize) -> Result<&'a str, OrderError> {
    let v = s.field(field).component(1);
    if v.trim().is_empty() {
        Err(error(
            name,
            field,
            hl7_error::REQUIRED_FIELD_MISSING,
            format!("{name}-{field} is required"),
        ))
    } else {
        Ok(v)
    }
}

/// A number field and its unit field as one quantity (none when the
/// number is empty).
fn quantity<T, E: std::fmt::Display>(
    s: &Segment,
    name: &str,
    number: usize,
    unit: usize,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Option<T>, OrderError> {
    let value = s.value(number).trim();
    if value.is_empty() {
        return Ok(None);
    }
    let unit_words = unit_of(s.field(unit)).ok_or_else(|| {
        error(
            name,
            unit,
            hl7_error::TABLE_VALUE_NOT_FOUND,
            format!(
                "{name}-{unit}: the unit {:?} is not one pumpgw knows (UCUM or IEEE 11073)",
                s.field(unit).component(1)
            ),
        )
    })?;
    parse(&format!("{value} {unit_words}"))
        .map(Some)
        .map_err(|e| {
            error(
                name,
                number,
                hl7_error::DATA_TYPE,
                format!("{name}-{number}: {value} {unit_words}: {e}"),
            )
        })
}

fn concentration(rxg: &Segment) -> Result<Option<Concentration>, OrderError> {
    let amount = quantity(rxg, "RXG", 17, 18, parse_amount)?;
    let volume = quantity(rxg, "RXG", 23, 24, parse_volume)?;
    match (amount, volume) {
        (None, None) => Ok(None),
        (Some((amount, unit)), Some(volume)) => amount
            .value_in(unit)
            .and_then(Result::ok)
            .and_then(|value| Concentration::new(value, unit, volume).ok())
            .map(Some)
            .ok_or_else(|| {
                error(
                    "RXG",
                    23,
                    hl7_error::DATA_TYPE,
                    "RXG-17/23: the strength and its volume do not make a concentration",
                )
            }),
        (Some(_), None) => Err(error(
            "RXG",
            23,
            hl7_error::REQUIRED_FIELD_MISSING,
            "RXG-23: a strength (RXG-17) needs the volume it is in",
        )),
        (None, Some(_)) => Err(error(
            "RXG",
            17,
            hl7_error::REQUIRED_FIELD_MISSING,
            "RXG-17: a strength volume (RXG-23) needs the strength",
        )),
    }
}

/// The OBX whose OBX-3 is `code`.
fn obx<'a>(m: &'a Message, code: &str) -> Option<&'a Segment> {
    m.all("OBX").find(|o| o.field(3).component(1) == code)
}

fn pump(m: &Message) -> Result<String, OrderError> {
    let o = obx(m, MDC_DEV_PUMP_INFUS_VMD).ok_or_else(|| {
        error(
            "OBX",
            3,
            hl7_error::SEGMENT_SEQUENCE,
            "no OBX names the pump (69986^MDC_DEV_PUMP_INFUS_VMD)",
        )
    })?;
    // OBX-18 is an entity identifier: the first part given names it.
    let id = o.field(18);
    (1..=4)
        .map(|c| id.component(c).trim())
        .find(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            error(
                "OBX",
                18,
                hl7_error::REQUIRED_FIELD_MISSING,
                "OBX-18: the pump's identifier is required",
            )
        })
}

fn weight(m: &Message) -> Result<Option<Weight>, OrderError> {
    match obx(m, MDC_ATTR_PT_WEIGHT) {
        Some(o) => quantity(o, "OBX", 5, 6, parse_weight),
        None => Ok(None),
    }
}

/// A unit field (CWE) in pumpgw's words: its UCUM code (in the first or
/// the alternate triplet) or a known IEEE 11073 unit code.
fn unit_of(f: &Field) -> Option<String> {
    let triplets = [(1, 2, 3), (4, 5, 6)];
    for (code, text, system) in triplets {
        let system = f.component(system);
        if system.eq_ignore_ascii_case("UCUM") {
            // Some senders put a number in the code and the UCUM in the
            // text; take whichever reads.
            for c in [f.component(code), f.component(text)] {
                if let Some(words) = ucum(c) {
                    return Some(words);
                }
            }
        }
        if system == "MDC"
            && let Some(words) = mdc(f.component(code))
        {
            return Some(words.to_owned());
        }
    }
    // No coding system given: a bare UCUM code.
    ucum(f.component(1))
}

/// UCUM to the words pumpgw's quantities are written in.
fn ucum(code: &str) -> Option<String> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    let words: Option<Vec<&str>> = code
        .split('/')
        .map(|part| match part {
            "ug" => Some("micrograms"),
            "ng" => Some("nanograms"),
            "mg" => Some("mg"),
            "g" => Some("g"),
            "[iU]" | "[IU]" | "U" => Some("units"),
            "mmol" => Some("mmol"),
            "mL" => Some("mL"),
            "L" => Some("L"),
            "kg" => Some("kg"),
            "h" => Some("h"),
            "min" => Some("min"),
            _ => None,
        })
        .collect();
    words.map(|w| w.join("/"))
}

/// IEEE 11073-10101 unit codes seen in PCD messages.
fn mdc(code: &str) -> Option<&'static str> {
    Some(match code.trim() {
        "263762" => "mL",
        "263890" => "mg",
        "263875" => "kg",
        "265266" => "mL/h",
        "265619" => "micrograms/kg/min",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Modelled on IHE PCD TF-2 (Rev 8.0) Appendix E.2, PCD-03 example 1
    /// (dopamine 10 micrograms/kg/min, 400 mg in 250 mL, 85 kg), written
    /// anew: see `docs/interop.md`.
    pub(crate) const DOPAMINE: &str =
        include_str!("../../../config/examples/ehr/dopamine-order.hl7");

    fn read(text: &str) -> Result<Order, OrderError> {
        Order::read(&Message::parse(text.as_bytes()).expect("an HL7 message"))
    }

    #[test]
    fn the_ihe_dopamine_order_is_read_and_its_rate_comes_to_31_875_ml_per_h() {
        let o = read(DOPAMINE).unwrap();
        assert_eq!(o.control_id, "1");
        assert_eq!(o.placer, "12345");
        assert!(!o.bolus_from_infusion);
        assert_eq!(o.patient, "98765");
        assert_eq!(o.drug.code, "1234");
        assert_eq!(o.drug.text, "Dopamine");
        assert_eq!(o.route, "IV");
        assert_eq!(o.pump, "A0001");
        let shown = |x: Option<String>| x.unwrap_or_default();
        assert_eq!(shown(o.vtbi.map(crate::format::volume)), "250 mL");
        assert_eq!(
            shown(o.concentration.map(crate::format::concentration)),
            "400 mg in 250 mL (1.6 mg/mL)"
        );
        assert_eq!(
            o.give,
            Some(Give::Rate(parse_rate("10 micrograms/kg/min").unwrap()))
        );
        assert_eq!(shown(o.weight.map(crate::format::weight)), "85 kg");
        // 10 micrograms/kg/min x 85 kg x 60 min / 1,600 micrograms/mL.
        let flow = o.flow_ml_per_h().expect("a rate, a strength, a weight");
        assert_eq!(
            flow,
            crate::units::parse_number("31.875").unwrap(),
            "exactly"
        );
        assert_eq!(crate::format::number(flow), "31.88", "as shown");
    }

    #[test]
    fn what_cannot_be_read_is_named_with_its_hl7_code() {
        let cases = [
            (
                DOPAMINE.replace("RGV^O15^RGV_O15", "ORU^R01^ORU_R01"),
                "MSH",
                9,
                200,
            ),
            (DOPAMINE.replace("|P|2.5|", "|P|2.3|"), "MSH", 12, 203),
            (
                DOPAMINE.replace("PID|||98765^^^IHE^PI", "PID|||"),
                "PID",
                3,
                101,
            ),
            (DOPAMINE.replace("RXR|IV||IVP|IV\n", ""), "RXR", 0, 100),
            (
                DOPAMINE.replace("||||||||10|", "||||||||ten|"),
                "RXG",
                15,
                102,
            ),
            (
                DOPAMINE.replace("ug/kg/min^ug/kg/min^UCUM^265619", "drops^drops^UCUM^1"),
                "RXG",
                16,
                103,
            ),
            (
                DOPAMINE.replace("|||||250|263762", "||||||263762"),
                "RXG",
                23,
                101,
            ),
            (
                DOPAMINE.replace(
                    "OBX|1||69986^MDC_DEV_PUMP_INFUS_VMD^MDC||||||||X|||||||^^A0001^PUMPVENDOR\n",
                    "",
                ),
                "OBX",
                3,
                100,
            ),
            (DOPAMINE.replace("^^A0001^PUMPVENDOR", ""), "OBX", 18, 101),
            // The give before the order control.
            (
                DOPAMINE
                    .replace("ORC|RE|12345|||||||||||||||||N0001\n", "")
                    .replace("RXR|IV||IVP|IV\n", "RXR|IV||IVP|IV\nORC|RE|12345\n"),
                "ORC",
                0,
                100,
            ),
            (
                DOPAMINE.replace("|RGV^O15^RGV_O15|1|", "|RGV^O15^RGV_O15||"),
                "MSH",
                10,
                101,
            ),
        ];
        for (text, segment, field, code) in cases {
            let e = read(&text).unwrap_err();
            assert_eq!(
                (e.segment.as_str(), e.field, e.code),
                (segment, field, code),
                "{e}"
            );
        }
    }

    #[test]
    fn a_bolus_from_a_running_infusion_is_said_by_orc_1_and_its_dose_by_rxg_15() {
        let o = read(&DOPAMINE.replace("ORC|RE|", "ORC|CH|")).unwrap();
        assert!(o.bolus_from_infusion);
        let o = read(&DOPAMINE.replace(
            "|10|ug/kg/min^ug/kg/min^UCUM^265619^MDC_DIM_MICRO_G_PER_KG_PER_MIN^MDC|",
            "|200|ug^ug^UCUM|",
        ))
        .unwrap();
        assert_eq!(
            o.give,
            Some(Give::Dose(parse_dose("200 micrograms").unwrap()))
        );
        assert_eq!(o.flow_ml_per_h(), None);
    }

    #[test]
    fn the_log_keeps_the_patient_only_by_pid_3_and_reads_the_same_order_back() {
        let m = Message::parse(DOPAMINE.as_bytes()).unwrap();
        let kept = minimised(&m);
        assert!(kept.contains("\rPID|||98765^^^IHE^PI\r"), "{kept:?}");
        assert!(
            !kept.contains("Doe") && !kept.contains("19660101"),
            "{kept:?}"
        );
        assert_eq!(read(&kept).unwrap(), read(DOPAMINE).unwrap());
    }
}
