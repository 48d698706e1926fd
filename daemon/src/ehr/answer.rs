//! The gateway's answers to a PCD-03 order: `ACK^O15`, the accept
//! acknowledgment sent at once (the message was taken, or could not be),
//! and `RRG^O16`, the application's result (the order accepted, or refused
//! with its HL7 error code and, where one fits, the IHE PIV error code in
//! ERR-5). Built as [`Message`]s, written by [`Message::to_er7`].

use time::OffsetDateTime;

use super::er7::{Field, Message, Segment, Separators};
use super::order::OrderError;

/// The PCD-03 profile, as MSH-21 names it.
pub const PIV_PROFILE: [&str; 4] = [
    "IHE_PCD_PIV_001",
    "IHE PCD",
    "1.3.6.1.4.1.19376.1.6.1.3.1",
    "ISO",
];

/// Who answers and when.
#[derive(Debug, Clone)]
pub struct Answering {
    /// MSH-3: this gateway's id.
    pub application: String,
    /// MSH-4: its care area, as the facility part.
    pub facility: String,
    /// MSH-10 of the answer.
    pub control_id: String,
    /// MSH-7.
    pub at: OffsetDateTime,
}

/// Why an order is refused, for ERR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// ERR-2: the segment and field at fault, when one is.
    pub location: Option<(String, usize)>,
    /// ERR-3: HL7 table 0357 (207: application internal error, for a
    /// refusal on the application's own grounds).
    pub hl7: u16,
    /// ERR-5: the IHE PIV code (9001–9044) and its words, where one fits.
    pub piv: Option<(u16, String)>,
    /// ERR-8: what is wrong, in words.
    pub message: String,
}

impl From<&OrderError> for Refusal {
    fn from(e: &OrderError) -> Refusal {
        Refusal {
            location: Some((e.segment.clone(), e.field)),
            hl7: e.code,
            piv: None,
            message: e.message.clone(),
        }
    }
}

/// The words of HL7 table 0357 codes.
fn hl7_text(code: u16) -> &'static str {
    match code {
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        203 => "Unsupported version id",
        _ => "Application internal error",
    }
}

/// `ACK^O15`: the order was taken (`CA`), or could not be (`CR`, with
/// the reason). `order` is what was received, as far as it could be read.
pub fn accept(order: &Message, us: &Answering, refused: Option<&Refusal>) -> Message {
    answer(order, us, ["ACK", "O15", "ACK"], ("CA", "CR"), refused)
}

/// `RRG^O16`: the order accepted (`AA`) or refused (`AE`, with ERR).
pub fn result(order: &Message, us: &Answering, refused: Option<&Refusal>) -> Message {
    answer(order, us, ["RRG", "O16", "RRG_O16"], ("AA", "AE"), refused)
}

/// MSH, MSA with the first code when taken and the second when refused,
/// and ERR when refused.
fn answer(
    order: &Message,
    us: &Answering,
    kind: [&str; 3],
    (taken, refusal): (&str, &str),
    refused: Option<&Refusal>,
) -> Message {
    let mut segments = vec![header(order, us, kind)];
    segments.push(msa(if refused.is_some() { refusal } else { taken }, order));
    segments.extend(refused.map(err));
    Message {
        separators: Separators::default(),
        segments,
    }
}

fn header(order: &Message, us: &Answering, kind: [&str; 3]) -> Segment {
    let theirs = order.msh();
    let field = |n: usize| theirs.map(|m| m.field(n).clone()).unwrap_or_default();
    let mut msh = Segment::new("MSH");
    let at = us.at.to_offset(time::UtcOffset::UTC);
    let stamp = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    msh.set(1, Field::text("|"))
        .set(2, Field::text("^~\\&"))
        .set(3, Field::text(us.application.clone()))
        .set(4, Field::text(us.facility.clone()))
        // Back to whoever sent the order.
        .set(5, field(3))
        .set(6, field(4))
        .set(7, Field::text(stamp))
        .set(9, Field::components(&kind))
        .set(10, Field::text(us.control_id.clone()))
        .set(11, Field::text("P"))
        .set(12, Field::text("2.5"))
        // Answers are not themselves acknowledged.
        .set(15, Field::text("NE"))
        .set(16, Field::text("NE"))
        .set(18, Field::text("UNICODE UTF-8"))
        .set(21, Field::components(&PIV_PROFILE));
    msh
}

/// MSA-2 when the message had no control id (MSH-10) to quote: HL7
/// requires MSA-2, and the refusal says what is missing.
pub const NO_CONTROL_ID: &str = "UNKNOWN";

fn msa(code: &str, order: &Message) -> Segment {
    let control = order
        .msh()
        .map(|m| m.value(10))
        .filter(|c| !c.trim().is_empty())
        .unwrap_or(NO_CONTROL_ID);
    let mut msa = Segment::new("MSA");
    msa.set(1, Field::text(code)).set(2, Field::text(control));
    msa
}

fn err(r: &Refusal) -> Segment {
    let mut err = Segment::new("ERR");
    if let Some((segment, field)) = &r.location {
        // ERL: segment ID ^ segment sequence ^ field position.
        let position = if *field == 0 {
            String::new()
        } else {
            field.to_string()
        };
        err.set(2, Field::components(&[segment.as_str(), "1", &position]));
    }
    err.set(
        3,
        Field::components(&[&r.hl7.to_string(), hl7_text(r.hl7), "HL70357"]),
    )
    .set(4, Field::text("E"));
    if let Some((code, words)) = &r.piv {
        err.set(5, Field::components(&[&code.to_string(), words.as_str()]));
    }
    err.set(8, Field::text(r.message.clone()));
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Answering {
        Answering {
            application: "bed-12".into(),
            facility: "adult-icu".into(),
            control_id: "PGW1".into(),
            at: time::macros::datetime!(2026-12-04 10:30:00 UTC),
        }
    }

    fn order() -> Message {
        Message::parse(include_bytes!(
            "../../../config/examples/ehr/dopamine-order.hl7"
        ))
        .expect("the example order reads")
    }

    #[test]
    fn an_order_taken_is_acknowledged_and_accepted() {
        let ack = accept(&order(), &us(), None).to_er7();
        assert_eq!(
            ack,
            "MSH|^~\\&|bed-12|adult-icu|IOP^1234560000000001^EUI-64|IOP|20261204103000+0000||ACK^O15^ACK|PGW1|P|2.5|||NE|NE||UNICODE UTF-8|||IHE_PCD_PIV_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.3.1^ISO\rMSA|CA|1\r"
        );
        let rrg = result(&order(), &us(), None).to_er7();
        assert!(rrg.contains("|RRG^O16^RRG_O16|PGW1|"), "{rrg}");
        assert!(rrg.ends_with("\rMSA|AA|1\r"), "{rrg}");
    }

    #[test]
    fn an_answer_to_a_message_without_a_control_id_still_has_msa_2() {
        let mut m = order();
        m.segments[0].set(10, Field::text(""));
        let r = Refusal {
            location: Some(("MSH".into(), 10)),
            hl7: 101,
            piv: None,
            message: "MSH-10 is required".into(),
        };
        let rrg = result(&m, &us(), Some(&r)).to_er7();
        assert!(rrg.contains("\rMSA|AE|UNKNOWN\r"), "{rrg}");
        let ack = accept(&empty_message(), &us(), Some(&r)).to_er7();
        assert!(ack.contains("\rMSA|CR|UNKNOWN\r"), "{ack}");
    }

    fn empty_message() -> Message {
        Message {
            separators: Separators::default(),
            segments: Vec::new(),
        }
    }

    #[test]
    fn a_refusal_names_where_the_hl7_code_the_piv_code_and_why() {
        let r = Refusal {
            location: Some(("RXG".into(), 4)),
            hl7: 207,
            piv: Some((9010, "Unable to match medication to drug library".into())),
            message: "Dopamine (1234) is not in the drug library for adult-icu".into(),
        };
        let rrg = result(&order(), &us(), Some(&r)).to_er7();
        assert!(
            rrg.ends_with("\rMSA|AE|1\rERR||RXG^1^4|207^Application internal error^HL70357|E|9010^Unable to match medication to drug library|||Dopamine (1234) is not in the drug library for adult-icu\r"),
            "{rrg}"
        );
        let e = OrderError {
            segment: "MSH".into(),
            field: 9,
            code: 200,
            message: "ORU^R01 is not taken here".into(),
        };
        let ack = accept(&order(), &us(), Some(&Refusal::from(&e))).to_er7();
        assert!(
            ack.ends_with("\rMSA|CR|1\rERR||MSH^1^9|200^Unsupported message type^HL70357|E||||ORU\\S\\R01 is not taken here\r"),
            "{ack}"
        );
    }
}
