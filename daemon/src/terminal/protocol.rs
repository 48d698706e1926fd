//! The terminal protocol, version 1 (`docs/terminal-protocol.md`): JSON
//! lines over the gateway's Unix socket. This module owns the messages and
//! the pump cards a terminal draws, with every number already in words by
//! the shared formatting rules, so no terminal formats a dose itself.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::gateway::view::{LinkState, PumpView, Snapshot};
use crate::pump::event::PumpState;
use crate::store::record::time_text;

/// The protocol version this daemon speaks.
pub const VERSION: u32 = 1;
/// The longest line either side may send, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// What a terminal sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromTerminal {
    /// The first line: who the terminal is and the version it speaks.
    Hello {
        /// Protocol version.
        protocol: u32,
        /// A name for logs, e.g. "bed-12-screen".
        terminal: String,
    },
    /// Are you there? Answered with `pong`.
    Ping,
}

/// What the daemon sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToTerminal {
    /// The answer to `hello`.
    Welcome {
        /// Protocol version.
        protocol: u32,
        /// Gateway id.
        gateway: String,
        /// Care area.
        care_area: String,
    },
    /// Every pump, as it is now. Sent after `welcome` and whenever
    /// anything changes (at most 5 times a second).
    Status {
        /// When.
        at: String,
        /// The active library ("version 12"), or none.
        library: Option<String>,
        /// One card per pump, in port order.
        pumps: Vec<PumpCard>,
    },
    /// The answer to `ping`.
    Pong,
    /// Something the terminal sent was wrong; `fatal` closes the
    /// connection after this line.
    Error {
        /// Stable code: `BAD_LINE`, `UNKNOWN_MESSAGE`, `HELLO_FIRST`,
        /// `VERSION`, `TOO_MANY_TERMINALS`, `NOT_ALLOWED`, `TIMEOUT`.
        code: String,
        /// Words for the log and the screen.
        message: String,
        /// Whether the daemon closes the connection now.
        fatal: bool,
    },
}

/// An active alarm on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardAlarm {
    /// `high`, `medium` or `low` (IEC 60601-1-8): the colour.
    pub priority: String,
    /// Words.
    pub text: String,
}

/// One pump, as the home screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PumpCard {
    /// Port (bed position) name.
    pub pump: String,
    /// `connecting`, `port_open`, `online` or `offline`.
    pub link: String,
    /// Why offline, in words.
    pub offline_reason: Option<String>,
    /// `idle`, `awaiting_authorisation`, `infusing`, `bolus`, `paused`,
    /// `alarm`, while online.
    pub state: Option<String>,
    /// The drug in Tall Man lettering from the library, else the pump's id.
    pub drug: Option<String>,
    /// The rate as the pump runs it, e.g. "50 micrograms/h" or "2 mL/h".
    pub rate: Option<String>,
    /// Volume left in the container, e.g. "49.98 mL".
    pub volume_remaining: Option<String>,
    /// Whether the pump runs the gateway's library (null: not known yet).
    pub library_matches: Option<bool>,
    /// Active alarms, highest priority first.
    pub alarms: Vec<CardAlarm>,
}

/// The card of one pump.
pub fn card(p: &PumpView) -> PumpCard {
    let online = p.link == LinkState::Online;
    let status = p.status.as_ref().filter(|_| online);
    PumpCard {
        pump: p.name.to_string(),
        link: crate::format::name(&p.link),
        offline_reason: p.offline_reason.clone(),
        state: status.map(|s| crate::format::name(&s.state)),
        drug: p
            .drug_name
            .clone()
            .or_else(|| status.and_then(|s| s.drug.clone())),
        rate: status
            .filter(|s| s.state != PumpState::Idle)
            .and_then(|s| s.dose_rate.as_deref().or(s.flow_rate.as_deref()))
            .map(|r| {
                // The pump's text, shown by the display rules when it reads.
                crate::units::parse_rate(r).map_or_else(|_| r.to_owned(), crate::format::rate)
            }),
        volume_remaining: status.and_then(|s| s.volume_remaining.as_deref()).map(|v| {
            crate::units::parse_volume(v).map_or_else(|_| v.to_owned(), crate::format::volume)
        }),
        library_matches: p.library_match,
        alarms: p
            .alarms
            .iter()
            .map(|a| CardAlarm {
                priority: crate::format::name(&a.priority),
                text: a.text.clone(),
            })
            .collect(),
    }
}

/// The status message for a snapshot.
pub fn status(snapshot: &Snapshot, now: OffsetDateTime) -> ToTerminal {
    ToTerminal::Status {
        at: time_text(now),
        library: snapshot.library_version.map(|v| format!("version {v}")),
        pumps: snapshot.pumps.iter().map(card).collect(),
    }
}

/// An error line.
pub fn error(code: &str, message: impl Into<String>, fatal: bool) -> ToTerminal {
    ToTerminal::Error {
        code: code.to_owned(),
        message: message.into(),
        fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_json_lines() {
        let hello: FromTerminal =
            serde_json::from_str(r#"{"type":"hello","protocol":1,"terminal":"bed-12"}"#).unwrap();
        assert_eq!(
            hello,
            FromTerminal::Hello {
                protocol: 1,
                terminal: "bed-12".into()
            }
        );
        assert!(serde_json::from_str::<FromTerminal>(r#"{"type":"hello","protocol":1}"#).is_err());
        assert!(serde_json::from_str::<FromTerminal>(r#"{"type":"launch"}"#).is_err());
        let e = serde_json::to_string(&error("VERSION", "speak 1", true)).unwrap();
        assert_eq!(
            e,
            r#"{"type":"error","code":"VERSION","message":"speak 1","fatal":true}"#
        );
    }
}
