//! The fleet view for biomedical engineers: the retained gateway and pump
//! statuses of a site (or of every site), grouped by gateway, as a table of
//! one line per gateway and per pump, or as JSON.
//!
//! A pump's retained status is only as fresh as its gateway's connection:
//! under a gateway that is offline, the pump lines say "stale" instead of
//! repeating what was last true.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::messages::{GATEWAY_STATUS, GatewayStatus, LibraryRef, PUMP_STATUS, PumpStatus};

/// The column titles of [`render`].
pub const HEADER: &str = "SITE             GATEWAY/PUMP              ONLINE   SERIAL        LIBRARY  MATCHES  LAST SEEN             BACKLOG  NOTE";

/// One gateway and its pumps.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayEntry {
    /// Site.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
    /// Its retained status, if any was found.
    pub status: Option<GatewayStatus>,
    /// Its pumps' retained statuses, by pump name.
    pub pumps: Vec<PumpStatus>,
}

/// Every gateway found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Fleet {
    /// Gateways by site, then id.
    pub gateways: Vec<GatewayEntry>,
    /// Payloads that could not be read, with their topics.
    pub unreadable: Vec<String>,
}

/// Groups retained payloads (topic → payload) into gateways.
pub fn assemble(messages: &BTreeMap<String, Vec<u8>>) -> Fleet {
    let mut by: BTreeMap<(String, String), GatewayEntry> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (topic, payload) in messages {
        if payload.is_empty() {
            continue; // a cleared retained message
        }
        let format = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_str().map(str::to_owned)));
        match format.as_deref() {
            Some(GATEWAY_STATUS) => match serde_json::from_slice::<GatewayStatus>(payload) {
                Ok(s) => {
                    let (site, gw) = (s.site.clone(), s.gateway.clone());
                    entry(&mut by, &site, &gw).status = Some(s);
                }
                Err(err) => unreadable.push(format!("{topic}: {err}")),
            },
            Some(PUMP_STATUS) => match serde_json::from_slice::<PumpStatus>(payload) {
                Ok(p) => {
                    let (site, gw) = (p.site.clone(), p.gateway.clone());
                    entry(&mut by, &site, &gw).pumps.push(p);
                }
                Err(err) => unreadable.push(format!("{topic}: {err}")),
            },
            _ => unreadable.push(format!("{topic}: not a pumpgw status")),
        }
    }
    let mut gateways: Vec<GatewayEntry> = by.into_values().collect();
    for g in &mut gateways {
        g.pumps.sort_by(|a, b| a.pump.cmp(&b.pump));
    }
    Fleet {
        gateways,
        unreadable,
    }
}

fn entry<'a>(
    by: &'a mut BTreeMap<(String, String), GatewayEntry>,
    site: &str,
    gateway: &str,
) -> &'a mut GatewayEntry {
    by.entry((site.to_owned(), gateway.to_owned()))
        .or_insert_with(|| GatewayEntry {
            site: site.to_owned(),
            gateway: gateway.to_owned(),
            status: None,
            pumps: Vec::new(),
        })
}

fn version(l: Option<&LibraryRef>) -> String {
    l.and_then(|l| l.version)
        .map_or_else(|| "-".to_owned(), |v| format!("v{v}"))
}

/// `2026-11-21T10:00:00.123Z` → `2026-11-21 10:00:00Z`.
fn when(t: Option<&str>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| {
            let t = t.replacen('T', " ", 1);
            match t.split_once('.') {
                Some((s, _)) => format!("{s}Z"),
                None => t,
            }
        },
    )
}

/// The fleet as a table.
pub fn render(fleet: &Fleet) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push('\n');
    for g in &fleet.gateways {
        let online = g.status.as_ref().is_some_and(|s| s.online);
        let (state, note) = match &g.status {
            None => ("UNKNOWN", "no gateway status retained".to_owned()),
            Some(s) if s.online => ("online", String::new()),
            Some(s) => ("OFFLINE", s.reason.clone().unwrap_or_default()),
        };
        let s = g.status.as_ref();
        let _ = writeln!(
            out,
            "{:<16} {:<25} {:<8} {:<13} {:<8} {:<8} {:<21} {:<8} {}",
            g.site,
            g.gateway,
            state,
            "-",
            version(s.and_then(|s| s.library.as_ref())),
            "-",
            when(s.map(|s| s.at.as_str())),
            s.and_then(|s| s.backlog)
                .map_or_else(|| "-".to_owned(), |b| b.to_string()),
            note
        );
        for p in &g.pumps {
            let (state, mut note) = if !online {
                ("stale", "gateway not online: last known".to_owned())
            } else if p.link == "online" {
                ("online", String::new())
            } else {
                ("OFFLINE", p.offline_reason.clone().unwrap_or_default())
            };
            let matches = match p.library_matches {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            if p.library_matches == Some(false) && note.is_empty() {
                note = if p.gateway_library.is_none() {
                    "the gateway has no active library: nothing is authorised".to_owned()
                } else {
                    format!(
                        "pump runs {}, gateway {}",
                        match version(p.library.as_ref()).as_str() {
                            "-" => "no library".to_owned(),
                            v => v.to_owned(),
                        },
                        version(p.gateway_library.as_ref())
                    )
                };
            }
            let _ = writeln!(
                out,
                "{:<16} {:<25} {:<8} {:<13} {:<8} {:<8} {:<21} {:<8} {}",
                p.site,
                format!("{}/{}", p.gateway, p.pump),
                state,
                p.identity.as_ref().map_or("-", |i| i.serial.as_str()),
                version(p.library.as_ref()),
                matches,
                when(p.last_seen.as_deref()),
                "-",
                note
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::messages::{Identity, PumpIdentity};

    fn gateway(online: bool) -> GatewayStatus {
        let id = Identity {
            site: "st-elsewhere".into(),
            gateway: "icu-bed-12".into(),
            care_area: "adult-icu".into(),
            started_at: time::macros::datetime!(2026-11-21 10:00 UTC),
        };
        let mut s = if online {
            id.status(true, time::macros::datetime!(2026-11-21 10:05 UTC))
        } else {
            id.will(time::macros::datetime!(2026-11-21 10:00 UTC))
        };
        s.library = Some(LibraryRef {
            version: Some(13),
            sha256: None,
        });
        s.backlog = Some(0);
        s
    }

    fn pump(name: &str, matches: bool) -> PumpStatus {
        PumpStatus {
            format: PUMP_STATUS.into(),
            format_version: 1,
            site: "st-elsewhere".into(),
            gateway: "icu-bed-12".into(),
            pump: name.into(),
            link: "online".into(),
            since: None,
            offline_reason: None,
            identity: Some(PumpIdentity {
                manufacturer: "m".into(),
                model: "x".into(),
                serial: format!("SN-{name}"),
                firmware: "1".into(),
            }),
            state: Some("idle".into()),
            drug: None,
            library: Some(LibraryRef {
                version: Some(if matches { 13 } else { 12 }),
                sha256: None,
            }),
            library_matches: Some(matches),
            gateway_library: Some(LibraryRef {
                version: Some(13),
                sha256: None,
            }),
            alarms: vec![],
            last_seen: Some("2026-11-21T10:04:59.120Z".into()),
        }
    }

    fn messages(online: bool) -> BTreeMap<String, Vec<u8>> {
        let mut m = BTreeMap::new();
        m.insert(
            "pumpgw/v1/st-elsewhere/icu-bed-12/status".to_owned(),
            serde_json::to_vec(&gateway(online)).unwrap(),
        );
        for (n, ok) in [("pump-b", false), ("pump-a", true)] {
            m.insert(
                format!("pumpgw/v1/st-elsewhere/icu-bed-12/pumps/{n}/status"),
                serde_json::to_vec(&pump(n, ok)).unwrap(),
            );
        }
        m.insert("pumpgw/v1/x/y/status".to_owned(), b"junk".to_vec());
        m
    }

    #[test]
    fn one_line_per_gateway_and_pump_with_library_and_match() {
        let fleet = assemble(&messages(true));
        assert_eq!(fleet.gateways.len(), 1);
        assert_eq!(fleet.unreadable.len(), 1);
        let text = render(&fleet);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].contains("icu-bed-12 ") && lines[1].contains("online"),
            "{text}"
        );
        assert!(
            lines[2].contains("icu-bed-12/pump-a") && lines[2].contains(" yes "),
            "{text}"
        );
        assert!(lines[2].contains("2026-11-21 10:04:59Z"), "{text}");
        assert!(
            lines[3].contains("SN-pump-b") && lines[3].contains(" NO "),
            "{text}"
        );
        assert!(lines[3].contains("pump runs v12, gateway v13"), "{text}");
    }

    #[test]
    fn pumps_under_an_offline_gateway_are_stale() {
        let text = render(&assemble(&messages(false)));
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("OFFLINE") && lines[1].contains("Last Will"),
            "{text}"
        );
        assert!(lines[2].contains("stale"), "{text}");
    }
}
