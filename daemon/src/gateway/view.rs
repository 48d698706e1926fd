//! The gateway as status views see it: one snapshot of every pump, published
//! by the core on a `watch` channel, and its rendering as a text table for
//! the demo's live view.

use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use crate::link::LinkCounters;
use crate::pump::PumpId;
use crate::pump::event::{
    AlarmPriority, AlarmReport, DeliveryReport, Identity, PumpState, StatusReport,
};

/// The column titles of [`Snapshot::render`].
pub const HEADER: &str = "PUMP     LINK      STATE                    DRUG           RATE                   LIBRARY    LAST VERDICT";

/// Where a pump's link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Opening the port.
    Connecting,
    /// Port open, no HELLO yet.
    PortOpen,
    /// Handshake done, talking.
    Online,
    /// Lost: port gone, hang-up or silence.
    Offline,
}

/// The last programme checked on a pump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictSummary {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The pump's request id.
    pub request: u32,
    /// The drug's display name (its id if the library does not know it).
    pub drug: String,
    /// "authorised" or "denied (outcome)".
    pub decision: String,
    /// The first reason, with its code.
    pub reason: String,
}

/// One pump.
#[derive(Debug, Clone, Serialize)]
pub struct PumpView {
    /// Port name.
    pub name: PumpId,
    /// Link state.
    pub link: LinkState,
    /// Since when.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Why offline.
    pub offline_reason: Option<String>,
    /// Who the pump is.
    pub identity: Option<Identity>,
    /// Last status.
    pub status: Option<StatusReport>,
    /// The drug's display name (Tall Man) from the library, when known.
    pub drug_name: Option<String>,
    /// Whether it runs the gateway's library (unknown until it says).
    pub library_match: Option<bool>,
    /// Last programme checked.
    pub last_verdict: Option<VerdictSummary>,
    /// Last delivery event.
    pub last_delivery: Option<DeliveryReport>,
    /// Active alarms, highest priority first.
    pub alarms: Vec<AlarmReport>,
    /// Link counters.
    pub link_counters: LinkCounters,
    /// When the pump was last heard from (handshake or status).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
}

impl PumpView {
    pub(crate) fn new(name: PumpId) -> Self {
        PumpView {
            name,
            link: LinkState::Connecting,
            since: None,
            offline_reason: None,
            identity: None,
            status: None,
            drug_name: None,
            library_match: None,
            last_verdict: None,
            last_delivery: None,
            alarms: Vec::new(),
            link_counters: LinkCounters::default(),
            last_seen: None,
        }
    }

    pub(crate) fn set_link(
        &mut self,
        link: LinkState,
        now: OffsetDateTime,
        reason: Option<String>,
    ) {
        if self.link != link {
            self.since = Some(now);
        }
        self.link = link;
        if reason.is_some() || link == LinkState::Online {
            self.offline_reason = reason;
        }
    }
}

/// Every pump of the gateway.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// Gateway id.
    pub gateway_id: String,
    /// Care area.
    pub care_area: String,
    /// Active library version.
    pub library_version: Option<u64>,
    /// Start of the active library's SHA-256, in hex.
    pub library_hash: Option<String>,
    /// The active library's whole SHA-256, in hex.
    pub library_sha256: Option<String>,
    /// Pumps in port-name order.
    pub pumps: Vec<PumpView>,
    /// Confirmations open at the bedside terminal, oldest first.
    pub confirmations: Vec<crate::terminal::protocol::ConfirmationCard>,
    /// Confirmations closed lately, oldest first, for the terminals that
    /// still show them.
    #[serde(skip)]
    pub closed: Vec<crate::terminal::protocol::ClosedCard>,
    /// Bedside terminals connected now.
    #[serde(skip)]
    pub terminals: usize,
}

impl Snapshot {
    /// The snapshot as a text table, one block per pump.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let library = match (self.library_version, &self.library_hash) {
            (Some(v), Some(h)) => format!("library v{v} ({h})"),
            _ => "NO LIBRARY: authorising nothing".to_owned(),
        };
        let _ = writeln!(
            out,
            "gateway {} | care area {} | {library}",
            self.gateway_id, self.care_area
        );
        out.push_str(HEADER);
        out.push('\n');
        for p in &self.pumps {
            let link = match p.link {
                LinkState::Connecting => "opening",
                LinkState::PortOpen => "waiting",
                LinkState::Online => "online",
                LinkState::Offline => "OFFLINE",
            };
            let (state, drug, rate) = match &p.status {
                Some(s) => (
                    state_words(s),
                    p.drug_name
                        .clone()
                        .or_else(|| s.drug.clone())
                        .unwrap_or_else(|| "-".to_owned()),
                    s.dose_rate
                        .clone()
                        .or_else(|| s.flow_rate.clone())
                        .unwrap_or_else(|| "-".to_owned()),
                ),
                None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
            };
            let library = match p.library_match {
                Some(true) => "matches".to_owned(),
                Some(false) => p
                    .identity
                    .as_ref()
                    .and_then(|i| i.library_version)
                    .map_or_else(|| "MISSING".to_owned(), |v| format!("v{v} WRONG")),
                None => "-".to_owned(),
            };
            let verdict = p.last_verdict.as_ref().map_or_else(
                || "-".to_owned(),
                |v| format!("#{} {} {}", v.request, v.drug, v.decision),
            );
            let _ = writeln!(
                out,
                "{:<8} {:<9} {:<24} {:<14} {:<22} {:<10} {}",
                truncate(&p.name, 8),
                link,
                truncate(&state, 24),
                truncate(&drug, 14),
                truncate(&rate, 22),
                library,
                verdict
            );
            if let Some(v) = &p.last_verdict
                && !v.reason.is_empty()
            {
                let _ = writeln!(out, "         └ {}", truncate(&v.reason, 110));
            }
            for a in &p.alarms {
                let priority = match a.priority {
                    AlarmPriority::High => "HIGH",
                    AlarmPriority::Medium => "MEDIUM",
                    AlarmPriority::Low => "LOW",
                };
                let _ = writeln!(out, "         ! {priority} PRIORITY ALARM: {}", a.text);
            }
            if p.link == LinkState::Offline
                && let Some(r) = &p.offline_reason
            {
                let _ = writeln!(out, "         └ offline: {}", truncate(r, 100));
            }
        }
        out
    }
}

fn state_words(s: &StatusReport) -> String {
    let state = match s.state {
        PumpState::Idle => "idle",
        PumpState::AwaitingAuthorisation => "awaiting authorisation",
        PumpState::Infusing => "infusing",
        PumpState::Bolus => "bolus",
        PumpState::Paused => "paused",
        PumpState::Alarm => "ALARM",
    };
    // Pumps write plain decimals; people read them by the display rules.
    let shown = s.volume_remaining.as_deref().map(|v| {
        crate::units::parse_volume(v).map_or_else(|_| v.to_owned(), crate::format::volume)
    });
    match shown {
        Some(v) if s.state != PumpState::Idle => format!("{state}, {v} left"),
        _ => state.to_owned(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
