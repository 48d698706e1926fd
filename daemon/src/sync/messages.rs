//! The JSON payloads on MQTT other than event batches (those are built by
//! `store::outbox`): gateway status, pump status and the signed-library
//! message. Each has a `format` and `format_version` and a JSON Schema in
//! `config/schema/`; docs/mqtt.md describes them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::gateway::view::{LinkState, PumpView, Snapshot};
use crate::store::record::time_text;

/// `format` of the gateway status.
pub const GATEWAY_STATUS: &str = "pumpgw-gateway-status";
/// `format` of a pump status.
pub const PUMP_STATUS: &str = "pumpgw-pump-status";
/// `format` of a library message.
pub const LIBRARY_MESSAGE: &str = "pumpgw-library-message";

/// A library by version and file hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryRef {
    /// Version.
    pub version: Option<u64>,
    /// SHA-256 of the file, hex (full).
    pub sha256: Option<String>,
}

/// The gateway's retained status (and, with `online: false`, its Last
/// Will).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayStatus {
    /// [`GATEWAY_STATUS`].
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// Site.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
    /// Care area.
    pub care_area: String,
    /// Connected and running.
    pub online: bool,
    /// Why offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// pumpgw version.
    pub software: String,
    /// When the daemon started.
    pub started_at: String,
    /// When this was written (in the Last Will: when the connection it
    /// covers was made).
    pub at: String,
    /// Seconds since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// Event records not yet acknowledged by the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// The last sequence number the broker acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_seq: Option<u64>,
    /// When the last batch was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<String>,
    /// The active library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<LibraryRef>,
    /// Pumps configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pumps: Option<u32>,
}

/// Who the gateway is, for status payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Site.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
    /// Care area.
    pub care_area: String,
    /// When the daemon started.
    pub started_at: OffsetDateTime,
}

impl Identity {
    /// A status with only the identity filled in.
    pub fn status(&self, online: bool, at: OffsetDateTime) -> GatewayStatus {
        GatewayStatus {
            format: GATEWAY_STATUS.to_owned(),
            format_version: 1,
            site: self.site.clone(),
            gateway: self.gateway.clone(),
            care_area: self.care_area.clone(),
            online,
            reason: None,
            software: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: time_text(self.started_at),
            at: time_text(at),
            uptime_s: None,
            backlog: None,
            acked_seq: None,
            acked_at: None,
            library: None,
            pumps: None,
        }
    }

    /// The Last Will: offline, connection lost.
    pub fn will(&self, connected_at: OffsetDateTime) -> GatewayStatus {
        let mut s = self.status(false, connected_at);
        s.reason = Some("connection lost (Last Will)".to_owned());
        s
    }
}

/// The identity a pump gave at its handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpIdentity {
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// Firmware version.
    pub firmware: String,
}

/// An active alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpAlarm {
    /// `high`, `medium` or `low` (IEC 60601-1-8).
    pub priority: String,
    /// Words.
    pub text: String,
}

/// One pump's retained status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpStatus {
    /// [`PUMP_STATUS`].
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// Site.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
    /// The port (bed position) name: the topic's pump level.
    pub pump: String,
    /// `connecting`, `port_open`, `online` or `offline`.
    pub link: String,
    /// Since when, if known.
    pub since: Option<String>,
    /// Why offline.
    pub offline_reason: Option<String>,
    /// Who the pump said it is (absent until its first handshake).
    pub identity: Option<PumpIdentity>,
    /// What it is doing (`idle`, `infusing`, ...), while online.
    pub state: Option<String>,
    /// The drug loaded: the library's display name (Tall Man), else the
    /// pump's drug id.
    pub drug: Option<String>,
    /// The library the pump runs.
    pub library: Option<LibraryRef>,
    /// Whether that is the gateway's active library (null: unknown).
    pub library_matches: Option<bool>,
    /// The gateway's active library.
    pub gateway_library: Option<LibraryRef>,
    /// Active alarms, highest priority first.
    pub alarms: Vec<PumpAlarm>,
    /// When the pump was last heard from.
    pub last_seen: Option<String>,
}

/// The status of one pump in a snapshot.
pub fn pump_status(site: &str, snapshot: &Snapshot, p: &PumpView) -> PumpStatus {
    let online = p.link == LinkState::Online;
    PumpStatus {
        format: PUMP_STATUS.to_owned(),
        format_version: 1,
        site: site.to_owned(),
        gateway: snapshot.gateway_id.clone(),
        pump: p.name.to_string(),
        link: crate::format::name(&p.link),
        since: p.since.map(time_text),
        offline_reason: p.offline_reason.clone(),
        identity: p.identity.as_ref().map(|i| PumpIdentity {
            manufacturer: i.manufacturer.clone(),
            model: i.model.clone(),
            serial: i.serial.clone(),
            firmware: i.firmware.clone(),
        }),
        state: p
            .status
            .as_ref()
            .filter(|_| online)
            .map(|s| crate::format::name(&s.state)),
        drug: p
            .drug_name
            .clone()
            .or_else(|| p.status.as_ref().and_then(|s| s.drug.clone())),
        library: p.identity.as_ref().map(|i| LibraryRef {
            version: i.library_version,
            sha256: i.library_hash.map(hex::encode),
        }),
        library_matches: p.library_match,
        gateway_library: snapshot.library_version.map(|v| LibraryRef {
            version: Some(v),
            sha256: snapshot.library_sha256.clone(),
        }),
        alarms: p
            .alarms
            .iter()
            .map(|a| PumpAlarm {
                priority: crate::format::name(&a.priority),
                text: a.text.clone(),
            })
            .collect(),
        last_seen: p.last_seen.map(time_text),
    }
}

/// A signed library on its retained topic.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryMessage {
    /// [`LIBRARY_MESSAGE`].
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// The library file, exactly as signed (it is JSON, hence UTF-8 text).
    pub library: String,
    /// The signature file (from `pumpgwd library sign`), exactly as
    /// written.
    pub signature: Box<RawValue>,
    /// Who published it.
    pub published_by: String,
    /// When.
    pub published_at: String,
}

/// A library message that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not the JSON described in docs/mqtt.md.
    #[error("not a library message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Another format or version.
    #[error("library message format {0:?} version {1} is not one this gateway reads")]
    Format(String, u32),
}

impl LibraryMessage {
    /// Reads and checks a payload.
    pub fn parse(payload: &[u8]) -> Result<LibraryMessage, MessageError> {
        let m: LibraryMessage = serde_json::from_slice(payload)?;
        if m.format != LIBRARY_MESSAGE || m.format_version != 1 {
            return Err(MessageError::Format(m.format, m.format_version));
        }
        Ok(m)
    }
}
