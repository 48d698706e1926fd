//! What sessions tell the rest of the daemon, whatever protocol the pump
//! speaks: identity, link state, status, programme requests (with a reply
//! slot), delivery events, alarms and the library a pump runs.
//!
//! These types are the driver boundary: a new pump protocol adds a driver
//! that produces them, and nothing downstream changes.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::ders::Programme;

pub use crate::link::message::{AlarmPriority, PumpState};

/// SHA-256.
pub type Hash = [u8; 32];

/// The name of a port in the gateway config; one pump per port.
pub type PumpId = Arc<str>;

/// Who the pump controller says it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub firmware: String,
    /// Protocol (driver and version) in use, e.g. `pumpgw-link/1`.
    pub protocol: String,
    /// Care area the pump is set to.
    pub care_area: Option<String>,
    /// Library version installed.
    pub library_version: Option<u64>,
    /// SHA-256 of the installed library file.
    #[serde(serialize_with = "opt_hex")]
    pub library_hash: Option<Hash>,
}

/// What the pump is doing now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusReport {
    /// State.
    pub state: PumpState,
    /// Drug id of the loaded container.
    pub drug: Option<String>,
    /// Flow rate now, as the pump wrote it.
    pub flow_rate: Option<String>,
    /// Dose rate now.
    pub dose_rate: Option<String>,
    /// Volume infused since loading.
    pub volume_infused: Option<String>,
    /// Volume left.
    pub volume_remaining: Option<String>,
    /// Battery charge in percent.
    pub battery_percent: u8,
    /// On mains power.
    pub on_mains: bool,
}

/// A programme the pump wants to deliver, and where the answer goes.
#[derive(Debug)]
pub struct ProgrammeAsk {
    /// The pump's id for the request.
    pub request: u32,
    /// SHA-256 of the request exactly as received.
    pub hash: Hash,
    /// The programme, or why it could not be read.
    pub programme: Result<Programme, String>,
    /// The programme as received, for the event log.
    pub raw: serde_json::Value,
    /// Set when the pump sent this while that earlier request was still
    /// being checked: it is denied `BUSY` (and logged).
    pub busy_with: Option<u32>,
    /// The answers: at most [`MAX_AWAITING`] `Awaiting` notices, then one
    /// final decision. Dropping it without a final decision denies the
    /// programme.
    pub reply: tokio::sync::mpsc::Sender<Decision>,
}

/// Room in a request's reply channel: the `Awaiting` notices (one per
/// confirmation stage) and the final decision.
pub const REPLY_SLOTS: usize = MAX_AWAITING + 1;
/// Most `Awaiting` notices for one request (concentration, then bolus or
/// override).
pub const MAX_AWAITING: usize = 3;

/// The gateway's answer to a programme request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not an answer yet: a person must confirm at the terminal. The pump
    /// keeps waiting until `until`; a final decision follows.
    Awaiting {
        /// Wait for the final decision until then.
        until: OffsetDateTime,
        /// What is awaited, for the pump's screen.
        message: String,
    },
    /// Deliver exactly this programme, once, before `expires`.
    Authorise {
        /// Single-use token.
        token: [u8; 16],
        /// When the authorisation lapses.
        expires: OffsetDateTime,
    },
    /// Do not deliver.
    Deny {
        /// `soft_limit`, `hard_limit`, `block` or `unavailable`.
        outcome: String,
        /// Every reason, most severe first.
        reasons: Vec<DenyReason>,
    },
}

/// One reason for a denial.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DenyReason {
    /// Stable machine code.
    pub code: String,
    /// IHE PCD PIV code where one fits.
    pub ihe: Option<u16>,
    /// Words for the pump's screen.
    pub message: String,
}

pub use crate::link::message::DeliveryEventKind;

/// Something that happened to an authorised delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    /// The pump's event record number.
    pub record: u64,
    /// What happened.
    pub event: DeliveryEventKind,
    /// The request it belongs to.
    pub request: u32,
    /// The authorisation token it runs under.
    #[serde(serialize_with = "hex16")]
    pub token: [u8; 16],
    /// When, by the pump's clock.
    pub at: OffsetDateTime,
    /// Volume given under this programme.
    pub volume_infused: String,
    /// Amount given under this programme, if the pump says.
    pub amount_infused: Option<String>,
}

/// An alarm raised or cleared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlarmReport {
    /// The pump's event record number.
    pub record: u64,
    /// The pump's id for the alarm.
    pub id: u32,
    /// IEC 60601-1-8 priority.
    pub priority: AlarmPriority,
    /// Machine code.
    pub condition: String,
    /// Words.
    pub text: String,
    /// Raised (true) or cleared.
    pub active: bool,
    /// When, by the pump's clock.
    pub at: OffsetDateTime,
}

/// An event from one pump's session.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "events are moved once through a bounded channel; boxing would only add allocations"
)]
pub enum PumpEvent {
    /// Trying to open the port.
    Connecting,
    /// The port is open; waiting for the pump to introduce itself.
    PortOpen,
    /// Handshake done.
    Online(Identity),
    /// Link lost (port gone, hang-up, silence, no acknowledgement).
    Offline {
        /// Why.
        reason: String,
    },
    /// Status.
    Status(StatusReport),
    /// A programme to check and answer.
    Programme(ProgrammeAsk),
    /// A delivery event, and where to say whether it was committed (the
    /// pump is acknowledged only then).
    Delivery(DeliveryReport, Committed),
    /// An alarm, likewise.
    Alarm(AlarmReport, Committed),
    /// The pump sent an event (DELIVERY or ALARM) that cannot be read: it
    /// was refused and the pump keeps it, so its later events wait too.
    EventRefused {
        /// Why, for people.
        detail: String,
    },
    /// The pump withdrew a pending request (CANCEL): whatever confirmation
    /// it waits for is closed, and nothing is sent to the pump about it.
    Cancelled {
        /// The request withdrawn.
        request: u32,
    },
    /// The gateway offered its library to the pump (a push began).
    LibraryOffered {
        /// Version.
        version: u64,
        /// SHA-256 of the file.
        hash: Hash,
    },
    /// The pump reports the library it now runs.
    LibraryInstalled {
        /// Version.
        version: u64,
        /// SHA-256 it computed over what it installed.
        hash: Hash,
    },
}

/// Told `true` once an event is on disk, `false` if it could not be.
pub type Committed = oneshot::Sender<bool>;

/// A pump event with the pump it came from.
#[derive(Debug)]
pub struct Envelope {
    /// Which pump (port).
    pub pump: PumpId,
    /// What happened.
    pub event: PumpEvent,
}

#[allow(clippy::ref_option, reason = "serde's `serialize_with` passes &Option")]
fn opt_hex<S: serde::Serializer>(v: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(h) => s.serialize_str(&hex::encode(h)),
        None => s.serialize_none(),
    }
}

fn hex16<S: serde::Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}
