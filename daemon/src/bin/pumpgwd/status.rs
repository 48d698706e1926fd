//! `pumpgwd status`: the one screen a biomedical engineer reads first on a
//! board. The daemon's last start, the active library, each configured pump
//! (link, serial, library match, last decision, alarms still raised), the
//! event log, and the broker connection and backlog, all as the daemon
//! recorded them in its store. It reads; it changes nothing.

use std::collections::HashMap;
use std::path::Path;

use anyhow::anyhow;
use pumpgw::store::library::PumpLibrary;
use pumpgw::store::summary::{self, PumpSummary};
use pumpgw::store::{Store, ehr_outbox, outbox};

use crate::EXIT_SOFTWARE;

type Failure = (u8, anyhow::Error);

fn failed(e: impl std::error::Error + Send + Sync + 'static) -> Failure {
    (EXIT_SOFTWARE, anyhow::Error::new(e))
}

/// One pump with its library, as shown.
struct Pump {
    summary: PumpSummary,
    library: Option<PumpLibrary>,
}

/// Shows it; 0 when the daemon is running (started, no orderly stop
/// since) and every configured pump is online with the active library, 1
/// otherwise (so a script can tell at a glance).
pub(crate) fn status(config_path: &Path, json: bool) -> Result<u8, Failure> {
    let config = pumpgw::gateway::Config::load(config_path)
        .map_err(|e| (crate::EXIT_CONFIG, anyhow::Error::new(e)))?;
    let file = Store::file_in(&config.data_dir);
    if !file.exists() {
        return Err((
            EXIT_SOFTWARE,
            anyhow!(
                "{} does not exist: the gateway has never run with this config",
                file.display()
            ),
        ));
    }
    let store = crate::events::open(&file)?;
    let head = outbox::head(&store).map_err(failed)?;
    let cursor = outbox::cursor(&store).map_err(failed)?;
    let link = outbox::link(&store).map_err(failed)?;
    let ehr = Ehr::read(&store)?;
    let libraries = pumpgw::store::library::pump_status(&store).map_err(failed)?;
    let run = summary::daemon(&store).map_err(failed)?;
    let names = drug_names(&store, &config.care_area);
    let mut pumps = Vec::new();
    for port in &config.ports {
        let name = port.display_name();
        let mut summary = summary::pump(&store, &name).map_err(failed)?;
        if let Some(d) = summary.last_decision.as_mut()
            && let Some(shown) = d.drug.as_ref().and_then(|id| names.get(id))
        {
            d.drug = Some(shown.clone());
        }
        pumps.push(Pump {
            summary,
            library: libraries.pumps.iter().find(|p| p.pump == name).cloned(),
        });
    }
    let healthy = run.started.is_some()
        && run.stopped.is_none()
        && pumps.iter().all(|p| {
            p.summary.link.as_ref().is_some_and(|l| l.online)
                && p.library.as_ref().is_some_and(|l| l.matches)
        });
    let backlog = head.saturating_sub(cursor.acked_seq);
    let active = libraries.active;
    if json {
        let out = serde_json::json!({
            "gateway": config.gateway_id,
            "care_area": config.care_area,
            "daemon": run,
            "library": active.as_ref().map(|(v, h)| serde_json::json!({"version": v, "sha256": h})),
            "pumps": pumps.iter().map(|p| serde_json::json!({
                "summary": p.summary,
                "library": p.library,
            })).collect::<Vec<_>>(),
            "events": head,
            "mqtt": config.mqtt.as_ref().map(|m| serde_json::json!({
                "broker": m.broker,
                "site": m.site,
                "connection": link,
                "acked_seq": cursor.acked_seq,
                "acked_at": cursor.acked_at,
                "backlog": backlog,
            })),
            "ehr": config.ehr.as_ref().and_then(|e| e.send_to).map(|to| ehr.json(to, head)),
        });
        say!("{out:#}");
        return Ok(u8::from(!healthy));
    }
    say!(
        "gateway    {} (care area {})",
        config.gateway_id,
        config.care_area
    );
    let daemon = match (&run.started, &run.stopped) {
        (_, Some((at, why))) => format!("STOPPED at {at} ({why})"),
        (Some(at), None) => format!("started {at}, no orderly stop since"),
        (None, None) => "never started with this data folder".to_owned(),
    };
    say!("daemon     {daemon}");
    let library = active.as_ref().map_or_else(
        || "NONE active: the gateway authorises nothing".to_owned(),
        |(v, h)| format!("version {v} active ({})", h.get(..16).unwrap_or(h)),
    );
    say!("library    {library}");
    let stopped = run.stopped.is_some();
    for (i, p) in pumps.iter().enumerate() {
        show_pump(if i == 0 { "pumps" } else { "" }, p, stopped);
    }
    say!("event log  {} records", pumpgw::format::count(head));
    if let Some(to) = config.ehr.as_ref().and_then(|e| e.send_to) {
        show_ehr(&to.to_string(), &ehr, head);
    }
    let Some(m) = &config.mqtt else {
        say!("broker     not configured ([mqtt] in the config): events stay on this gateway");
        return Ok(u8::from(!healthy));
    };
    show_broker(m, link.as_ref(), &cursor, backlog);
    Ok(u8::from(!healthy))
}

/// The broker lines: the connection as last recorded, the backlog and the
/// last acknowledged batch.
fn show_broker(
    m: &pumpgw::sync::MqttSettings,
    link: Option<&outbox::LinkRecord>,
    cursor: &outbox::Cursor,
    backlog: u64,
) {
    let broker = link.map_or_else(
        || format!("{} (site {}): never connected", m.broker, m.site),
        |l| {
            format!(
                "{} (site {}): {} since {}{}",
                l.broker,
                m.site,
                l.state,
                l.since,
                l.detail
                    .as_deref()
                    .map(|d| format!("\n           last error: {d}"))
                    .unwrap_or_default()
            )
        },
    );
    say!("broker     {broker}");
    say!(
        "backlog    {} records not yet acknowledged by the broker (acknowledged up to #{})",
        pumpgw::format::count(backlog),
        cursor.acked_seq
    );
    say!(
        "last batch {}",
        cursor.acked_at.as_deref().map_or_else(
            || "none acknowledged yet".to_owned(),
            |t| format!("acknowledged at {t}")
        )
    );
}

/// Documentation out, as the sender last recorded it.
struct Ehr {
    cursor: Option<ehr_outbox::Cursor>,
    link: Option<outbox::LinkRecord>,
}

impl Ehr {
    fn read(store: &Store) -> Result<Ehr, Failure> {
        Ok(Ehr {
            cursor: ehr_outbox::cursor(store).map_err(failed)?,
            link: ehr_outbox::link(store).map_err(failed)?,
        })
    }

    fn json(&self, to: std::net::SocketAddr, head: u64) -> serde_json::Value {
        let c = self.cursor.as_ref();
        serde_json::json!({
            "send_to": to.to_string(),
            "connection": self.link,
            "acked_seq": c.map(|c| c.acked_seq),
            "acked_at": c.and_then(|c| c.acked_at.clone()),
            "messages": c.map(|c| c.messages),
            "backlog": c.map(|c| head.saturating_sub(c.acked_seq)),
        })
    }
}

/// The EHR lines: the connection, and how far the EHR has acknowledged.
fn show_ehr(to: &str, ehr: &Ehr, head: u64) {
    let link = ehr.link.as_ref().map_or_else(
        || format!("{to}: never connected"),
        |l| {
            format!(
                "{to}: {} since {}{}",
                l.state,
                l.since,
                l.detail
                    .as_deref()
                    .map(|d| format!("\n           last error: {d}"))
                    .unwrap_or_default()
            )
        },
    );
    say!("EHR        {link}");
    match &ehr.cursor {
        None => say!(
            "EHR docs   not started: documentation begins with the records logged once the daemon starts with send_to"
        ),
        Some(c) => say!(
            "EHR docs   {} records not yet passed to the EHR (up to #{}); {} messages acknowledged{}",
            pumpgw::format::count(head.saturating_sub(c.acked_seq)),
            c.acked_seq,
            pumpgw::format::count(c.messages),
            c.acked_at
                .as_deref()
                .map(|t| format!(", last at {t}"))
                .unwrap_or_default()
        ),
    }
}

/// The active library's id, and every drug id's name as it shows it in
/// any care area (for exports that span care areas); empty when none.
pub(crate) fn library_names(store: &Store) -> (String, HashMap<String, String>) {
    let Ok(Some((_, bytes))) = pumpgw::store::library::active(store) else {
        return ("none".to_owned(), HashMap::new());
    };
    let Ok((library, _)) = pumpgw::library::parse(&bytes) else {
        return ("none".to_owned(), HashMap::new());
    };
    let names = library
        .care_areas
        .iter()
        .flat_map(|a| a.drugs.iter())
        .map(|d| (d.id.clone(), d.display_name.clone()))
        .collect();
    (library.library_id, names)
}

/// Drug ids to the names the active library shows (Tall Man lettering:
/// "fentaNYL"), for this care area; empty when no library is active.
fn drug_names(store: &Store, care_area: &str) -> HashMap<String, String> {
    let Ok(Some((_, bytes))) = pumpgw::store::library::active(store) else {
        return HashMap::new();
    };
    let Ok((library, _)) = pumpgw::library::parse(&bytes) else {
        return HashMap::new();
    };
    library
        .care_area(care_area)
        .map(|area| {
            area.drugs
                .iter()
                .map(|d| (d.id.clone(), d.display_name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A pump's lines: state, serial and library on the first; then its last
/// decision and the alarms still raised, indented under it.
fn show_pump(label: &str, p: &Pump, daemon_stopped: bool) {
    let s = &p.summary;
    let state = match &s.link {
        None => "never connected".to_owned(),
        // Its sessions ended with it, without a link_down.
        Some(l) if daemon_stopped => format!(
            "not known: the daemon is stopped (last: {} since {})",
            if l.online { "online" } else { "offline" },
            l.since
        ),
        Some(l) if l.online => format!("online since {}", l.since),
        Some(l) => format!(
            "OFFLINE since {}{}",
            l.since,
            l.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
    };
    let serial = s
        .serial
        .as_deref()
        .map(|x| format!(", serial {x}"))
        .unwrap_or_default();
    let library = match &p.library {
        Some(l) if l.matches => format!(
            ", library v{} matches",
            l.version.map_or_else(|| "?".to_owned(), |v| v.to_string())
        ),
        Some(l) => format!(
            ", library {} DOES NOT MATCH: denied until it does",
            l.version
                .map_or_else(|| "none".to_owned(), |v| format!("v{v}"))
        ),
        None => String::new(),
    };
    say!("{label:<10} {:<8} {state}{serial}{library}", s.pump);
    let pad = " ".repeat(20);
    if let Some(d) = &s.last_decision {
        let drug = d.drug.as_deref().unwrap_or("?");
        match &d.outcome {
            Some(outcome) if d.kind == "denied" => say!(
                "{pad}last: {drug} DENIED ({outcome}) at {}{}",
                d.at,
                d.reason
                    .as_deref()
                    .map(|r| format!("\n{pad}  {r}"))
                    .unwrap_or_default()
            ),
            _ => say!("{pad}last: {drug} {} at {}", d.kind, d.at),
        }
    }
    for a in &s.alarms {
        say!(
            "{pad}ALARM {} since {}: {}",
            a.priority.to_uppercase(),
            a.since,
            a.text
        );
    }
}
