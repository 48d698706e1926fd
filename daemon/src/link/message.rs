//! The message catalogue of the pump link: one type byte and one CBOR map
//! per message (`docs/protocol.md` section 6).
//!
//! Maps use text keys. A receiver ignores keys it does not know (so a
//! version may gain optional fields) but refuses a message that lacks a
//! required key or has one of the wrong type. Quantities travel as text in
//! the same strict syntax as the drug library ("2500 micrograms in 50 mL"),
//! so the number and its unit can never be separated.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A SHA-256 digest.
pub type Hash = [u8; 32];
/// An authorisation token.
pub type Token = [u8; 16];

/// Type byte of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Acknowledges a sequenced frame.
    Ack = 0x01,
    /// Controller identity and what it supports.
    Hello = 0x02,
    /// Gateway identity and the chosen version.
    Welcome = 0x03,
    /// Sign of life.
    Heartbeat = 0x04,
    /// Something received could not be understood.
    Error = 0x05,
    /// Gateway's clock.
    TimeSync = 0x06,
    /// Controller state and progress.
    Status = 0x10,
    /// A programme the controller asks to deliver.
    ProgrammeRequest = 0x11,
    /// Go ahead, bound to one programme.
    Authorisation = 0x12,
    /// Do not deliver, with reasons.
    Denial = 0x13,
    /// Something happened to a delivery.
    Delivery = 0x14,
    /// An alarm raised or cleared.
    Alarm = 0x15,
    /// A person must confirm first: keep the request pending.
    AwaitingConfirmation = 0x16,
    /// The controller withdraws a pending request.
    Cancel = 0x17,
    /// A library is available.
    LibraryOffer = 0x20,
    /// The controller asks for a piece of the library.
    LibraryRequest = 0x21,
    /// A piece of the library.
    LibraryChunk = 0x22,
    /// What the controller installed.
    LibraryInstalled = 0x23,
}

impl MessageType {
    /// The type for a byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Self> {
        use MessageType as T;
        Some(match b {
            0x01 => T::Ack,
            0x02 => T::Hello,
            0x03 => T::Welcome,
            0x04 => T::Heartbeat,
            0x05 => T::Error,
            0x06 => T::TimeSync,
            0x10 => T::Status,
            0x11 => T::ProgrammeRequest,
            0x12 => T::Authorisation,
            0x13 => T::Denial,
            0x14 => T::Delivery,
            0x15 => T::Alarm,
            0x16 => T::AwaitingConfirmation,
            0x17 => T::Cancel,
            0x20 => T::LibraryOffer,
            0x21 => T::LibraryRequest,
            0x22 => T::LibraryChunk,
            0x23 => T::LibraryInstalled,
            _ => return None,
        })
    }

    /// Whether frames of this type carry a sequence number and must be
    /// acknowledged. ACK never is; ERROR is, so that it is not lost.
    pub fn is_sequenced(self) -> bool {
        self != MessageType::Ack
    }
}

/// HELLO: the controller introduces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the controller speaks.
    pub versions: Vec<u8>,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub firmware: String,
    /// Care area the pump is set to, if any.
    #[serde(default)]
    pub care_area: Option<String>,
    /// Drug-library version installed, if any.
    #[serde(default)]
    pub library_version: Option<u64>,
    /// SHA-256 of the installed library file, if any.
    #[serde(default, with = "opt_bytes32")]
    pub library_hash: Option<Hash>,
}

/// WELCOME: the gateway answers HELLO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The version both sides now speak.
    pub version: u8,
    /// Gateway id.
    pub gateway: String,
    /// The gateway's care area.
    pub care_area: String,
    /// The active library version, if the gateway has one.
    #[serde(default)]
    pub library_version: Option<u64>,
    /// SHA-256 of the active library file.
    #[serde(default, with = "opt_bytes32")]
    pub library_hash: Option<Hash>,
    /// Gateway time, milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
    /// How often each side must send something.
    pub heartbeat_ms: u32,
    /// Silence after which the other side is offline.
    pub supervision_ms: u32,
    /// Version 2: frames each side may have unacknowledged (absent in
    /// version 1, which is stop and wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u16>,
}

/// ERROR: a frame arrived intact but could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// Machine code (`unknown_type`, `unparseable`, `unsupported_version`,
    /// `unexpected`).
    pub code: String,
    /// Sequence number of the offending frame (0 if it had none).
    pub seq: u16,
    /// Words for the log.
    pub detail: String,
    /// Protocol versions the sender speaks (with `unsupported_version`).
    #[serde(default)]
    pub versions: Vec<u8>,
}

/// `TIME_SYNC`: the gateway's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSync {
    /// Milliseconds since the Unix epoch (UTC).
    pub time_ms: u64,
}

/// What a pump is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PumpState {
    /// Nothing loaded or programmed.
    Idle,
    /// A programme was sent; waiting for the gateway.
    AwaitingAuthorisation,
    /// A continuous infusion is running.
    Infusing,
    /// A bolus is running.
    Bolus,
    /// Delivery paused.
    Paused,
    /// Stopped by an alarm.
    Alarm,
}

/// STATUS: what the controller is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// State.
    pub state: PumpState,
    /// Drug id of the loaded container, if any.
    #[serde(default)]
    pub drug: Option<String>,
    /// Flow rate now ("5 mL/h").
    #[serde(default)]
    pub flow_rate: Option<String>,
    /// Dose rate now ("1 micrograms/kg/h").
    #[serde(default)]
    pub dose_rate: Option<String>,
    /// Volume infused since the container was loaded ("12.5 mL").
    #[serde(default)]
    pub volume_infused: Option<String>,
    /// Volume left in the container.
    #[serde(default)]
    pub volume_remaining: Option<String>,
    /// Battery charge, 0 to 100.
    pub battery_percent: u8,
    /// On mains power.
    pub on_mains: bool,
    /// Ids of the alarms active now.
    #[serde(default)]
    pub alarms: Vec<u32>,
}

/// `PROGRAMME_REQUEST`: the controller asks before it delivers.
///
/// `programme` is a map with the keys of `config/schema/programme-v1.schema.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgrammeRequest {
    /// Controller's id for this request, echoed in the answer.
    pub request: u32,
    /// The programme, with the controller's own computed values.
    pub programme: ciborium::Value,
}

/// AUTHORISATION: deliver exactly this programme, once, before expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorisation {
    /// The request answered.
    pub request: u32,
    /// SHA-256 of the request's payload bytes.
    #[serde(with = "serde_bytes")]
    pub programme_hash: Hash,
    /// Single-use token to quote in delivery events.
    #[serde(with = "serde_bytes")]
    pub token: Token,
    /// Start before this time (ms since the Unix epoch).
    pub expires_ms: u64,
}

/// `AWAITING_CONFIRMATION`: not an answer yet. A person must confirm at
/// the bedside terminal; the controller keeps the request pending (and
/// says so on its screen) until `until_ms`, then treats it as denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingConfirmation {
    /// The request it is about.
    pub request: u32,
    /// SHA-256 of the request's payload bytes.
    #[serde(with = "serde_bytes")]
    pub programme_hash: Hash,
    /// Wait for the answer until this time (ms since the Unix epoch).
    pub until_ms: u64,
    /// What is awaited, for the pump's screen.
    pub message: String,
}

/// `CANCEL`: the controller withdraws a request that is still pending
/// (waiting for a confirmation, say) without starting a new session; it
/// then treats the request as denied, and ignores any answer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The request withdrawn.
    pub request: u32,
    /// SHA-256 of the request's payload bytes.
    #[serde(with = "serde_bytes")]
    pub programme_hash: Hash,
}

/// One reason for a denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenialReason {
    /// Stable machine code (`docs/protocol.md` section 6.10).
    pub code: String,
    /// IHE PCD PIV error code, where one fits.
    #[serde(default)]
    pub ihe: Option<u16>,
    /// A sentence for the pump's screen.
    pub message: String,
}

/// DENIAL: do not deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The request answered.
    pub request: u32,
    /// SHA-256 of the request's payload bytes.
    #[serde(with = "serde_bytes")]
    pub programme_hash: Hash,
    /// `soft_limit`, `hard_limit`, `block` or `unavailable`.
    pub outcome: String,
    /// Every reason, most severe first.
    pub reasons: Vec<DenialReason>,
}

impl Denial {
    /// The denial made to fit one frame: reasons are left out from the
    /// least severe (the last) until it fits, the first is always kept, and
    /// a first reason whose words alone do not fit is cut, ending with "…".
    /// The event log keeps every reason in full.
    #[must_use]
    pub fn fitted(mut self) -> Denial {
        let size = |d: &Denial| {
            let mut out = Vec::new();
            ciborium::into_writer(d, &mut out)
                .expect("serialising plain structs into a Vec cannot fail");
            out.len()
        };
        let limit = crate::link::frame::MAX_PAYLOAD_LEN;
        while self.reasons.len() > 1 && size(&self) > limit {
            self.reasons.pop();
        }
        while size(&self) > limit {
            let Some(first) = self.reasons.first_mut() else {
                break;
            };
            let keep = first.message.chars().count().saturating_sub(16);
            if keep == 0 {
                first.message.clear();
                break;
            }
            first.message = first.message.chars().take(keep).collect::<String>() + "…";
        }
        self
    }
}

/// What happened to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryEventKind {
    /// Delivery began.
    Started,
    /// Paused by the user.
    Paused,
    /// Resumed after a pause.
    Resumed,
    /// Stopped before the end.
    Stopped,
    /// The volume to be infused was given.
    Completed,
    /// A bolus was given in full.
    BolusDelivered,
}

/// DELIVERY: an event of an authorised delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEvent {
    /// The controller's event record number (shared with ALARM): one more
    /// for each event, kept across reconnects and restarts, so the gateway
    /// can drop an event it already has.
    pub record: u64,
    /// What happened.
    pub event: DeliveryEventKind,
    /// The request it belongs to.
    pub request: u32,
    /// The authorisation token it runs under.
    #[serde(with = "serde_bytes")]
    pub token: Token,
    /// When it happened (ms since the Unix epoch, controller clock).
    pub at_ms: u64,
    /// Volume given under this programme so far ("12.5 mL"). Required, and
    /// it must read as a volume: the gateway computes what was given from
    /// it, so a DELIVERY without one is refused (`unparseable`).
    #[serde(deserialize_with = "volume_text")]
    pub volume_infused: String,
    /// Amount of drug given under this programme so far ("25 micrograms"),
    /// if the pump says; compared with the gateway's figure.
    #[serde(default, deserialize_with = "opt_amount_text")]
    pub amount_infused: Option<String>,
}

/// A volume in text that reads as one.
fn volume_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    crate::units::parse_volume(&s)
        .map_err(|e| serde::de::Error::custom(format!("volume_infused {s:?}: {e}")))?;
    Ok(s)
}

/// An optional amount in text that reads as one.
fn opt_amount_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    if let Some(s) = &s {
        crate::units::parse_amount(s)
            .map_err(|e| serde::de::Error::custom(format!("amount_infused {s:?}: {e}")))?;
    }
    Ok(s)
}

/// Alarm priority (IEC 60601-1-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmPriority {
    /// Low priority: operator awareness.
    Low,
    /// Medium priority: prompt response.
    Medium,
    /// High priority: immediate response.
    High,
}

/// ALARM: raised or cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// The controller's event record number (see [`DeliveryEvent::record`]).
    pub record: u64,
    /// Controller's id for this alarm, unique while it is active.
    pub id: u32,
    /// Priority.
    pub priority: AlarmPriority,
    /// Machine code (`occlusion_downstream`, `air_in_line`...).
    pub condition: String,
    /// Words for people.
    pub text: String,
    /// True when raised, false when cleared.
    pub active: bool,
    /// When (ms since the Unix epoch, controller clock).
    pub at_ms: u64,
}

/// `LIBRARY_OFFER`: the gateway has a library for the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryOffer {
    /// Library version.
    pub version: u64,
    /// SHA-256 of the whole file.
    #[serde(with = "serde_bytes")]
    pub hash: Hash,
    /// File size in bytes.
    pub size: u32,
    /// Chunk size the gateway will send.
    pub chunk_size: u16,
}

/// `LIBRARY_REQUEST`: send the chunk at this offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryRequest {
    /// The library asked for.
    #[serde(with = "serde_bytes")]
    pub hash: Hash,
    /// Byte offset.
    pub offset: u32,
}

/// `LIBRARY_CHUNK`: a piece of the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryChunk {
    /// The library this is a piece of.
    #[serde(with = "serde_bytes")]
    pub hash: Hash,
    /// Byte offset of `data`.
    pub offset: u32,
    /// The bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `LIBRARY_INSTALLED`: what the controller now runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LibraryInstalled {
    /// Library version.
    pub version: u64,
    /// SHA-256 the controller computed over the file it installed.
    #[serde(with = "serde_bytes")]
    pub hash: Hash,
}

/// Every message, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// ACK (no payload).
    Ack,
    /// HELLO.
    Hello(Hello),
    /// WELCOME.
    Welcome(Welcome),
    /// HEARTBEAT (no payload).
    Heartbeat,
    /// ERROR.
    Error(ErrorReport),
    /// `TIME_SYNC`.
    TimeSync(TimeSync),
    /// STATUS.
    Status(Status),
    /// `PROGRAMME_REQUEST`.
    ProgrammeRequest(ProgrammeRequest),
    /// AUTHORISATION.
    Authorisation(Authorisation),
    /// DENIAL.
    Denial(Denial),
    /// DELIVERY.
    Delivery(DeliveryEvent),
    /// ALARM.
    Alarm(Alarm),
    /// `AWAITING_CONFIRMATION`.
    AwaitingConfirmation(AwaitingConfirmation),
    /// CANCEL.
    Cancel(Cancel),
    /// `LIBRARY_OFFER`.
    LibraryOffer(LibraryOffer),
    /// `LIBRARY_REQUEST`.
    LibraryRequest(LibraryRequest),
    /// `LIBRARY_CHUNK`.
    LibraryChunk(LibraryChunk),
    /// `LIBRARY_INSTALLED`.
    LibraryInstalled(LibraryInstalled),
}

/// Why a payload is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The type byte is not in the catalogue.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The payload is not the CBOR map the type needs.
    #[error("{kind:?} payload does not parse: {detail}")]
    Unparseable {
        /// The message type.
        kind: MessageType,
        /// What the CBOR decoder said.
        detail: String,
    },
    /// A message that has no payload had one.
    #[error("{0:?} must have an empty payload")]
    UnexpectedPayload(MessageType),
}

impl Message {
    /// The type byte.
    pub fn kind(&self) -> MessageType {
        use MessageType as T;
        match self {
            Message::Ack => T::Ack,
            Message::Hello(_) => T::Hello,
            Message::Welcome(_) => T::Welcome,
            Message::Heartbeat => T::Heartbeat,
            Message::Error(_) => T::Error,
            Message::TimeSync(_) => T::TimeSync,
            Message::Status(_) => T::Status,
            Message::ProgrammeRequest(_) => T::ProgrammeRequest,
            Message::Authorisation(_) => T::Authorisation,
            Message::Denial(_) => T::Denial,
            Message::Delivery(_) => T::Delivery,
            Message::Alarm(_) => T::Alarm,
            Message::AwaitingConfirmation(_) => T::AwaitingConfirmation,
            Message::Cancel(_) => T::Cancel,
            Message::LibraryOffer(_) => T::LibraryOffer,
            Message::LibraryRequest(_) => T::LibraryRequest,
            Message::LibraryChunk(_) => T::LibraryChunk,
            Message::LibraryInstalled(_) => T::LibraryInstalled,
        }
    }

    /// The CBOR payload.
    pub fn payload(&self) -> Bytes {
        fn cbor<T: Serialize>(v: &T) -> Bytes {
            let mut out = Vec::new();
            ciborium::into_writer(v, &mut out)
                .expect("serialising plain structs into a Vec cannot fail");
            Bytes::from(out)
        }
        match self {
            Message::Ack | Message::Heartbeat => Bytes::new(),
            Message::Hello(m) => cbor(m),
            Message::Welcome(m) => cbor(m),
            Message::Error(m) => cbor(m),
            Message::TimeSync(m) => cbor(m),
            Message::Status(m) => cbor(m),
            Message::ProgrammeRequest(m) => cbor(m),
            Message::Authorisation(m) => cbor(m),
            Message::Denial(m) => cbor(m),
            Message::Delivery(m) => cbor(m),
            Message::Alarm(m) => cbor(m),
            Message::AwaitingConfirmation(m) => cbor(m),
            Message::Cancel(m) => cbor(m),
            Message::LibraryOffer(m) => cbor(m),
            Message::LibraryRequest(m) => cbor(m),
            Message::LibraryChunk(m) => cbor(m),
            Message::LibraryInstalled(m) => cbor(m),
        }
    }

    /// Decodes a payload of the given type byte.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Message, MessageError> {
        use MessageType as T;
        fn de<M: DeserializeOwned>(t: MessageType, payload: &[u8]) -> Result<M, MessageError> {
            ciborium::from_reader(payload).map_err(|e| MessageError::Unparseable {
                kind: t,
                detail: e.to_string(),
            })
        }
        let t = MessageType::from_byte(kind).ok_or(MessageError::UnknownType(kind))?;
        Ok(match t {
            T::Ack | T::Heartbeat => {
                if !payload.is_empty() {
                    return Err(MessageError::UnexpectedPayload(t));
                }
                if t == T::Ack {
                    Message::Ack
                } else {
                    Message::Heartbeat
                }
            }
            T::Hello => Message::Hello(de(t, payload)?),
            T::Welcome => Message::Welcome(de(t, payload)?),
            T::Error => Message::Error(de(t, payload)?),
            T::TimeSync => Message::TimeSync(de(t, payload)?),
            T::Status => Message::Status(de(t, payload)?),
            T::ProgrammeRequest => Message::ProgrammeRequest(de(t, payload)?),
            T::Authorisation => Message::Authorisation(de(t, payload)?),
            T::Denial => Message::Denial(de(t, payload)?),
            T::Delivery => Message::Delivery(de(t, payload)?),
            T::Alarm => Message::Alarm(de(t, payload)?),
            T::AwaitingConfirmation => Message::AwaitingConfirmation(de(t, payload)?),
            T::Cancel => Message::Cancel(de(t, payload)?),
            T::LibraryOffer => Message::LibraryOffer(de(t, payload)?),
            T::LibraryRequest => Message::LibraryRequest(de(t, payload)?),
            T::LibraryChunk => Message::LibraryChunk(de(t, payload)?),
            T::LibraryInstalled => Message::LibraryInstalled(de(t, payload)?),
        })
    }
}

/// SHA-256 of a byte string (programme payloads, library files).
pub fn sha256(bytes: &[u8]) -> Hash {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

mod opt_bytes32 {
    //! `Option<[u8; 32]>` as a CBOR byte string or null.
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option, reason = "serde's `with` calls it with &Option")]
    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_bytes(b),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<serde_bytes::ByteArray<32>>::deserialize(d)
            .map(|o| o.map(serde_bytes::ByteArray::into_array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_byte_round_trips() {
        for b in 0..=255u8 {
            if let Some(t) = MessageType::from_byte(b) {
                assert_eq!(t as u8, b);
            }
        }
    }

    #[test]
    fn unknown_keys_are_ignored_missing_ones_refused() {
        let mut with_extra = Vec::new();
        ciborium::into_writer(
            &ciborium::Value::Map(vec![
                ("time_ms".into(), 5u64.into()),
                ("future_field".into(), "x".into()),
            ]),
            &mut with_extra,
        )
        .unwrap();
        assert_eq!(
            Message::decode(0x06, &with_extra).unwrap(),
            Message::TimeSync(TimeSync { time_ms: 5 })
        );
        let mut empty_map = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(vec![]), &mut empty_map).unwrap();
        assert!(matches!(
            Message::decode(0x06, &empty_map),
            Err(MessageError::Unparseable { .. })
        ));
    }

    #[test]
    fn a_delivery_whose_volume_or_amount_does_not_read_is_refused() {
        let delivery = |volume: &str, amount: Option<&str>| {
            Message::Delivery(DeliveryEvent {
                record: 1,
                event: DeliveryEventKind::Completed,
                request: 1,
                token: [3; 16],
                at_ms: 1,
                volume_infused: volume.to_owned(),
                amount_infused: amount.map(str::to_owned),
            })
            .payload()
        };
        let kind = MessageType::Delivery as u8;
        assert!(Message::decode(kind, &delivery("12.5 mL", None)).is_ok());
        assert!(Message::decode(kind, &delivery("12.5 mL", Some("25 micrograms"))).is_ok());
        for (volume, amount) in [
            ("", None),
            ("lots", None),
            ("5 mg", None),
            ("1 mL", Some("2 mL")),
        ] {
            assert!(
                matches!(
                    Message::decode(kind, &delivery(volume, amount)),
                    Err(MessageError::Unparseable { .. })
                ),
                "{volume:?} {amount:?}"
            );
        }
    }

    #[test]
    fn a_denial_with_many_long_reasons_still_fits_one_frame() {
        let reason = |i: usize| DenialReason {
            code: format!("CODE_{i}"),
            ihe: Some(9024),
            message: "x".repeat(300),
        };
        let d = Denial {
            request: 7,
            programme_hash: [1; 32],
            outcome: "block".to_owned(),
            reasons: (0..10).map(reason).collect(),
        }
        .fitted();
        let m = Message::Denial(d.clone());
        assert!(m.payload().len() <= crate::link::frame::MAX_PAYLOAD_LEN);
        assert_eq!(d.reasons[0].code, "CODE_0", "the most severe is kept");
        assert!(d.reasons.len() >= 2);
        // One reason too long for a frame on its own is cut.
        let long = Denial {
            request: 7,
            programme_hash: [1; 32],
            outcome: "block".to_owned(),
            reasons: vec![DenialReason {
                code: "LONG".to_owned(),
                ihe: None,
                message: "é".repeat(2_000),
            }],
        }
        .fitted();
        assert!(
            Message::Denial(long.clone()).payload().len() <= crate::link::frame::MAX_PAYLOAD_LEN
        );
        assert!(long.reasons[0].message.ends_with('…'));
    }

    #[test]
    fn hashes_are_byte_strings() {
        let m = Message::LibraryInstalled(LibraryInstalled {
            version: 12,
            hash: [0xAA; 32],
        });
        let payload = m.payload();
        // 0x58 0x20 = byte string of 32 bytes.
        assert!(payload.windows(2).any(|w| w == [0x58, 0x20]));
        assert_eq!(Message::decode(0x23, &payload).unwrap(), m);
    }
}
