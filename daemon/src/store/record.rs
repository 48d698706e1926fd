//! The event log's open format: one JSON object per event, hash-chained.
//!
//! A record's bytes are UTF-8 JSON with no insignificant whitespace and the
//! keys in the order of [`Record`]; they are stored, exported and hashed
//! exactly as written, so nobody ever has to re-canonicalise JSON to check
//! the chain. Each record carries the SHA-256 of the previous record's
//! bytes (`prev_hash`), so editing, deleting or reordering any record
//! breaks the chain at that point. The schema is
//! `config/schema/event-v1.schema.json`, the reference `docs/event-log.md`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The `format` of every record.
pub const FORMAT: &str = "pumpgw-event";
/// The format version this code writes.
pub const FORMAT_VERSION: u32 = 1;
/// `prev_hash` of the first record: 64 zeros.
pub const GENESIS: [u8; 32] = [0; 32];

/// One reason, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedReason {
    /// Stable code.
    pub code: String,
    /// IHE PCD PIV code, where one fits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ihe: Option<u16>,
    /// The sentence shown.
    pub message: String,
}

/// What happened. The `type` key names it; each type's keys follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The daemon started.
    GatewayStarted {
        /// Daemon version.
        software: String,
    },
    /// The daemon stopped in an orderly way.
    GatewayStopped {
        /// Why.
        reason: String,
    },
    /// A pump's link came up.
    LinkUp {
        /// Manufacturer.
        manufacturer: String,
        /// Model.
        model: String,
        /// Serial number.
        serial: String,
        /// Firmware.
        firmware: String,
        /// Protocol in use.
        protocol: String,
        /// Library version the pump reported.
        pump_library_version: Option<u64>,
        /// Hash of the pump's library, hex.
        pump_library_hash: Option<String>,
    },
    /// A pump's link went down.
    LinkDown {
        /// Why.
        reason: String,
    },
    /// A pump asked to deliver a programme.
    ProgrammeRequested {
        /// The pump's request id.
        request: u32,
        /// SHA-256 of the request as received, hex.
        programme_hash: String,
        /// The programme as received.
        programme: serde_json::Value,
    },
    /// The cross-check's verdict with every reason.
    Verdict {
        /// The pump's request id.
        request: u32,
        /// `pass`, `soft_limit`, `hard_limit` or `block`.
        outcome: String,
        /// Every reason with its numbers (code, IHE code, limit,
        /// programmed value, limit value, margin, message).
        reasons: serde_json::Value,
        /// What the gateway computed, name and value.
        computed: Vec<(String, String)>,
        /// The prescriber's order the programme was compared with (its
        /// placer number), when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
    },
    /// The gateway authorised a programme.
    Authorised {
        /// The pump's request id.
        request: u32,
        /// SHA-256 of the request, hex.
        programme_hash: String,
        /// The single-use token, hex.
        token: String,
        /// Start before this time.
        #[serde(with = "utc_millis")]
        expires: OffsetDateTime,
    },
    /// The gateway denied a programme.
    Denied {
        /// The pump's request id.
        request: u32,
        /// SHA-256 of the request, hex.
        programme_hash: String,
        /// `soft_limit`, `hard_limit`, `block` or `unavailable`.
        outcome: String,
        /// Every reason.
        reasons: Vec<LoggedReason>,
    },
    /// A delivery event reported by a pump.
    Delivery {
        /// `started`, `paused`, `resumed`, `stopped`, `completed`,
        /// `bolus_delivered`.
        event: String,
        /// The pump's request id.
        request: u32,
        /// The token, hex.
        token: String,
        /// The pump's serial number.
        pump_serial: String,
        /// The pump's event record number.
        pump_record: u64,
        /// When, by the pump's clock.
        #[serde(with = "utc_millis")]
        pump_at: OffsetDateTime,
        /// Volume given under the programme.
        volume_infused: String,
        /// Amount given under the programme.
        amount_infused: Option<String>,
    },
    /// The amount a pump says it gave disagrees with the volume it gave
    /// times the authorised concentration, beyond the cross-check's
    /// tolerance (the larger is counted; an alarm is raised on the pump's
    /// card).
    AmountMismatch {
        /// The pump's request id.
        request: u32,
        /// The token, hex.
        token: String,
        /// The volume the pump reported.
        volume_infused: String,
        /// The amount the pump reported.
        amount_infused: String,
        /// The volume times the authorised concentration, in words.
        computed: String,
        /// What the alarm says.
        message: String,
    },
    /// The gateway's wall clock was set (stepped) while it ran. Ages,
    /// windows and expiries keep their length (they are measured on the
    /// monotonic clock); from this record on, times follow the new wall
    /// clock, and every pump online is sent `TIME_SYNC`.
    ClockStepped {
        /// The step in milliseconds: positive forward, negative back.
        step_ms: i64,
    },
    /// The gateway signed the head of its log with its own key, so that a
    /// copy kept elsewhere (the broker's, an export) can later show the log
    /// was not cut short or re-chained (`store::checkpoint`).
    Checkpoint {
        /// Why now: `start`, `periodic` or `stop`.
        reason: String,
        /// The sequence number of the record signed (the head then).
        signed_seq: u64,
        /// That record's hash (SHA-256 of its bytes), hex.
        signed_hash: String,
        /// When it was signed (RFC 3339 UTC, milliseconds).
        signed_at: String,
        /// The gateway's checkpoint key (Ed25519 public key), hex.
        key: String,
        /// The Ed25519 signature of the signed text, hex.
        signature: String,
    },
    /// A pump sent an event under a record number already logged from it
    /// with other content (its counter went back). The event itself follows
    /// in the next record; an alarm is raised on the pump's card.
    RecordConflict {
        /// The pump's serial number.
        pump_serial: String,
        /// The record number used again.
        pump_record: u64,
        /// How many records already carry that number.
        logged: usize,
        /// What the alarm says.
        message: String,
    },
    /// An alarm raised or cleared by a pump.
    Alarm {
        /// The pump's alarm id.
        alarm: u32,
        /// `low`, `medium`, `high` (IEC 60601-1-8).
        priority: String,
        /// Machine code.
        condition: String,
        /// Words.
        text: String,
        /// Raised or cleared.
        active: bool,
        /// The pump's serial number.
        pump_serial: String,
        /// The pump's event record number.
        pump_record: u64,
        /// When, by the pump's clock.
        #[serde(with = "utc_millis")]
        pump_at: OffsetDateTime,
    },
    /// A signed library was imported (and archived).
    LibraryReceived {
        /// Its version.
        version: u64,
        /// Its id.
        library_id: String,
        /// SHA-256 of the file, hex.
        sha256: String,
        /// Who imported it.
        by: String,
    },
    /// Its signature, schema and lint passed.
    LibraryVerified {
        /// Its version.
        version: u64,
        /// The trusted key that proposed it.
        key_id: String,
        /// Every signature, proposal first, with its person (none in a
        /// format 1 signature, and in records written before format 2).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        signers: Vec<crate::library::signature::Signatory>,
    },
    /// A library was refused at import; the active one is untouched.
    LibraryRefused {
        /// SHA-256 of the file offered, hex.
        sha256: String,
        /// Why.
        reason: String,
        /// Who offered it.
        by: String,
    },
    /// A library became the active one.
    LibraryActivated {
        /// Its version.
        version: u64,
        /// The version it superseded.
        previous: Option<u64>,
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// The gateway offered its active library to a pump (a push began).
    LibraryPushed {
        /// Version offered.
        version: u64,
        /// SHA-256 of the file, hex.
        hash: String,
    },
    /// A PIN was entered at the terminal (every attempt, whatever came of
    /// it; never the PIN).
    PinChecked {
        /// The staff id given.
        staff_id: String,
        /// Their role, when the id is known.
        role: Option<String>,
        /// What it was for, e.g. "bolus confirmation".
        purpose: String,
        /// `accepted`, `wrong_pin`, `locked_out` or `unknown_staff`.
        result: String,
        /// Wrong PINs in a row so far (0 when accepted).
        failures: u32,
        /// Locked out until then.
        locked_until: Option<String>,
    },
    /// A programme waits for people at the bedside terminal (one record
    /// per stage: the concentration first, then the bolus or override).
    ConfirmationRequested {
        /// The pump's request id.
        request: u32,
        /// The confirmation's id on the terminals.
        confirmation: u64,
        /// `concentration`, `bolus`, `override` or `bolus_override`.
        stage: String,
        /// SHA-256 of the screen shown, hex.
        screen_hash: String,
        /// When it lapses.
        #[serde(with = "utc_millis")]
        expires: OffsetDateTime,
    },
    /// People confirmed a stage at the terminal (PINs accepted, roles
    /// allowed, the screen unchanged; for a container, its label equal to
    /// the programme).
    Confirmed {
        /// The pump's request id.
        request: u32,
        /// The confirmation's id.
        confirmation: u64,
        /// The stage confirmed.
        stage: String,
        /// Staff ids, in the order they signed.
        by: Vec<String>,
        /// The override reason, if any.
        reason: Option<String>,
        /// The terminal's name.
        terminal: String,
        /// For a container: the label as typed (it matched the programme),
        /// in words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entered: Option<String>,
    },
    /// A confirmation was not accepted, or ended without one.
    ConfirmationRefused {
        /// The pump's request id.
        request: u32,
        /// The confirmation's id.
        confirmation: u64,
        /// `CONCENTRATION_MISMATCH`, `NOT_ALLOWED`, `SCREEN_CHANGED`,
        /// `INCOMPLETE`, `CONFIRMATION_EXPIRED`, `DECLINED`,
        /// `CONFIRMATION_WITHDRAWN`, `NOT_OPEN` (an answer after it closed:
        /// a second use, or too late).
        code: String,
        /// Words.
        message: String,
        /// Whether the programme is denied by it (otherwise the
        /// confirmation stays open).
        closed: bool,
        /// Staff ids who signed, if any.
        by: Vec<String>,
        /// The terminal's name, if one was involved.
        terminal: Option<String>,
    },
    /// The staff file was changed (`pumpgwd staff ...`).
    StaffChanged {
        /// `added`, `removed` or `pin_set`.
        action: String,
        /// Whose entry.
        staff_id: String,
        /// Their role.
        role: String,
        /// Who changed it.
        by: String,
    },
    /// An infusion order from the EHR (IHE PCD-03) taken for one of this
    /// bed's pumps: read, its pump and drug checked, answered `AA`.
    /// Refused orders leave no record.
    OrderReceived {
        /// The order message's MSH-10.
        control_id: String,
        /// The sending application (MSH-3).
        sender: String,
        /// The placer's order number (ORC-2).
        placer: String,
        /// The pump's identifier as the order names it (OBX-18).
        pump_serial: String,
        /// The give code (RXG-4).
        drug_code: String,
        /// Its text (RXG-4).
        drug: String,
        /// The library's id of the drug it was matched to.
        drug_id: String,
        /// A bolus from the running infusion (ORC-1 `CH`).
        bolus: bool,
        /// The dose rate or flow rate, in the display rules' words.
        rate: Option<String>,
        /// A bolus's dose, in the display rules' words.
        dose: Option<String>,
        /// The concentration, in the display rules' words.
        concentration: Option<String>,
        /// The volume to be infused.
        vtbi: Option<String>,
        /// The weight the order is for.
        weight: Option<String>,
        /// SHA-256 of the message as received, hex.
        message_hash: String,
        /// The message as kept: as received, with the patient only by
        /// PID-3 (a restart reads the open orders back from it).
        message: String,
    },
    /// A pump reported the library it installed.
    LibraryInstalledOnPump {
        /// Version reported.
        version: u64,
        /// Hash reported, hex.
        hash: String,
        /// Whether it is the gateway's active library.
        matches: bool,
    },
}

impl Event {
    /// The `type` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::GatewayStarted { .. } => "gateway_started",
            Event::GatewayStopped { .. } => "gateway_stopped",
            Event::LinkUp { .. } => "link_up",
            Event::LinkDown { .. } => "link_down",
            Event::ProgrammeRequested { .. } => "programme_requested",
            Event::Verdict { .. } => "verdict",
            Event::Authorised { .. } => "authorised",
            Event::Denied { .. } => "denied",
            Event::Delivery { .. } => "delivery",
            Event::AmountMismatch { .. } => "amount_mismatch",
            Event::RecordConflict { .. } => "record_conflict",
            Event::ClockStepped { .. } => "clock_stepped",
            Event::Checkpoint { .. } => "checkpoint",
            Event::Alarm { .. } => "alarm",
            Event::LibraryInstalledOnPump { .. } => "library_installed_on_pump",
            Event::LibraryReceived { .. } => "library_received",
            Event::LibraryVerified { .. } => "library_verified",
            Event::LibraryRefused { .. } => "library_refused",
            Event::LibraryActivated { .. } => "library_activated",
            Event::LibraryPushed { .. } => "library_pushed",
            Event::PinChecked { .. } => "pin_checked",
            Event::StaffChanged { .. } => "staff_changed",
            Event::ConfirmationRequested { .. } => "confirmation_requested",
            Event::Confirmed { .. } => "confirmed",
            Event::ConfirmationRefused { .. } => "confirmation_refused",
            Event::OrderReceived { .. } => "order_received",
        }
    }
}

/// Where and under what an event happened: every record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Gateway id.
    pub gateway: String,
    /// Pump (port name), if the event is about one.
    pub pump: Option<String>,
    /// The gateway's care area.
    pub care_area: String,
    /// The active library version, if any.
    pub library_version: Option<u64>,
}

/// A whole record, in the order its keys are written. (Unknown keys are
/// the JSON Schema's to refuse: serde cannot with flattened parts.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version the record was written in.
    pub format_version: u32,
    /// Sequence number: 1, 2, 3... per gateway, never reused.
    pub seq: u64,
    /// When the gateway logged it (UTC, RFC 3339 with milliseconds).
    #[serde(with = "utc_millis")]
    pub at: OffsetDateTime,
    /// Where and under what.
    #[serde(flatten)]
    pub context: Context,
    /// Logged by a practice gateway (no patient); written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub practice: bool,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
    /// SHA-256 of the previous record's bytes, hex.
    pub prev_hash: String,
}

impl Record {
    /// The record's bytes: what is stored, exported and hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("records serialise: every key is a string")
    }
}

/// SHA-256 of a record's bytes.
pub fn hash(bytes: &[u8]) -> [u8; 32] {
    crate::link::sha256(bytes)
}

/// Times in records: UTC, RFC 3339 with exactly three decimals
/// (`2026-11-21T03:00:00.120Z`), so that they also sort as text.
pub const TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// A time as records write it.
pub fn time_text(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(TIME_FORMAT)
        .expect("every time from year 0 to 9999 formats")
}

pub(crate) mod utc_millis {
    //! serde for [`super::TIME_FORMAT`]; reading accepts any RFC 3339.
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(crate) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::time_text(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

/// A time rounded to milliseconds, as records carry it.
pub fn millis(t: OffsetDateTime) -> OffsetDateTime {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap_or(t)
}

/// A CBOR value (a programme as received) as JSON: text keys kept, byte
/// strings as hex, everything else as the same JSON type.
pub fn cbor_to_json(v: &ciborium::Value) -> serde_json::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    match v {
        C::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i).map_or_else(|_| J::String(i.to_string()), |n| J::Number(n.into()))
        }
        C::Bytes(b) => J::String(hex::encode(b)),
        C::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        C::Text(t) => J::String(t.clone()),
        C::Bool(b) => J::Bool(*b),
        C::Tag(_, inner) => cbor_to_json(inner),
        C::Array(a) => J::Array(a.iter().map(cbor_to_json).collect()),
        C::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        C::Text(t) => t.clone(),
                        other => cbor_to_json(other).to_string(),
                    };
                    (key, cbor_to_json(v))
                })
                .collect(),
        ),
        // Null, and anything a later CBOR crate adds.
        _ => J::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            seq: 1,
            at: time::macros::datetime!(2026-11-21 03:00:00.123 UTC),
            context: Context {
                gateway: "bed-12".to_owned(),
                pump: Some("pump-a".to_owned()),
                care_area: "adult-icu".to_owned(),
                library_version: Some(12),
            },
            practice: false,
            event: Event::LinkDown {
                reason: "the other end hung up".to_owned(),
            },
            prev_hash: hex::encode(GENESIS),
        }
    }

    #[test]
    fn a_practice_record_says_so_after_its_context_and_reads_back() {
        let mut r = record();
        r.practice = true;
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(
            text.contains(r#""library_version":12,"practice":true,"type":"link_down""#),
            "{text}"
        );
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let plain: Record = serde_json::from_slice(&record().to_bytes()).unwrap();
        assert!(!plain.practice);
    }

    #[test]
    fn bytes_are_compact_json_in_the_documented_order() {
        let text = String::from_utf8(record().to_bytes()).unwrap();
        assert_eq!(
            text,
            r#"{"format":"pumpgw-event","format_version":1,"seq":1,"at":"2026-11-21T03:00:00.123Z","gateway":"bed-12","pump":"pump-a","care_area":"adult-icu","library_version":12,"type":"link_down","reason":"the other end hung up","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#
        );
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record());
    }
}
