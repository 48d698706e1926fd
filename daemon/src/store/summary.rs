//! What the event log says about the gateway now, for `pumpgwd status`:
//! whether the daemon last started or stopped, and per pump its link, its
//! serial, the last decision on one of its programmes and the alarms still
//! raised. Read-only; every answer is a few indexed queries.

use rusqlite::OptionalExtension as _;
use serde::Serialize;

use super::db::{Store, StoreError};

/// The daemon's last start and stop, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonRun {
    /// When it last started.
    pub started: Option<String>,
    /// When it last stopped in order, and why; none if it has not since
    /// it last started (running, or killed without a stop).
    pub stopped: Option<(String, String)>,
}

/// One pump, as its events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PumpSummary {
    /// Port name.
    pub pump: String,
    /// The link as last logged; none: never connected.
    pub link: Option<Link>,
    /// The serial number it last said HELLO with.
    pub serial: Option<String>,
    /// The last programme decided on.
    pub last_decision: Option<Decision>,
    /// Alarms raised since the link last came up and not cleared, highest
    /// priority first.
    pub alarms: Vec<RaisedAlarm>,
}

/// A link state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// Up or down.
    pub online: bool,
    /// Since when.
    pub since: String,
    /// Why it went down.
    pub reason: Option<String>,
}

/// A programme authorised or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// When.
    pub at: String,
    /// `authorised` or `denied`.
    pub kind: String,
    /// For a denial: `soft_limit`, `hard_limit`, `block` or `unavailable`.
    pub outcome: Option<String>,
    /// The drug of the programme, as the pump sent it.
    pub drug: Option<String>,
    /// For a denial: the first reason's code and words.
    pub reason: Option<String>,
}

/// An alarm still raised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaisedAlarm {
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// The words the pump sent.
    pub text: String,
    /// Since when.
    pub since: String,
}

fn sql(store: &Store) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    |source| StoreError::Sqlite {
        path: store.path.clone(),
        source,
    }
}

/// The daemon's last start and the stop after it, if any.
pub fn daemon(store: &Store) -> Result<DaemonRun, StoreError> {
    let err = sql(store);
    let last = |kind: &str| -> Result<Option<(i64, String, Option<String>)>, StoreError> {
        store
            .conn
            .query_row(
                "SELECT seq, at, json_extract(record, '$.reason') FROM events
                 WHERE type = ?1 ORDER BY seq DESC LIMIT 1",
                [kind],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(&err)
    };
    let started = last("gateway_started")?;
    let stopped = last("gateway_stopped")?;
    Ok(DaemonRun {
        stopped: match (&started, stopped) {
            (Some((s, ..)), Some((t, at, why))) if t > *s => Some((at, why.unwrap_or_default())),
            (None, Some((_, at, why))) => Some((at, why.unwrap_or_default())),
            _ => None,
        },
        started: started.map(|(_, at, _)| at),
    })
}

/// One pump's summary.
pub fn pump(store: &Store, pump: &str) -> Result<PumpSummary, StoreError> {
    let err = sql(store);
    // A session ends without a link_down when the daemon stops (and logs
    // nothing when it is killed): a link from before the daemon's last
    // start says nothing about now.
    let started: i64 = store
        .conn
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE type = 'gateway_started'",
            [],
            |r| r.get(0),
        )
        .map_err(&err)?;
    let link: Option<Link> = store
        .conn
        .query_row(
            "SELECT type, at, json_extract(record, '$.reason'), seq
             FROM events WHERE type IN ('link_up', 'link_down') AND pump = ?1
             ORDER BY seq DESC LIMIT 1",
            [pump],
            |r| {
                let kind: String = r.get(0)?;
                let seq: i64 = r.get(3)?;
                Ok(if seq < started {
                    Link {
                        online: false,
                        since: r.get(1)?,
                        reason: Some("not heard from since the daemon last started".to_owned()),
                    }
                } else {
                    Link {
                        online: kind == "link_up",
                        since: r.get(1)?,
                        reason: r.get(2)?,
                    }
                })
            },
        )
        .optional()
        .map_err(&err)?;
    let serial: Option<String> = store
        .conn
        .query_row(
            "SELECT json_extract(record, '$.serial') FROM events
             WHERE type = 'link_up' AND pump = ?1 ORDER BY seq DESC LIMIT 1",
            [pump],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?
        .flatten();
    let up_seq: i64 = store
        .conn
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE type = 'link_up' AND pump = ?1",
            [pump],
            |r| r.get(0),
        )
        .map_err(&err)?;
    let last_decision = store
        .conn
        .query_row(
            "SELECT d.at, d.type, json_extract(d.record, '$.outcome'),
                    json_extract(d.record, '$.reasons[0].code'),
                    json_extract(d.record, '$.reasons[0].message'),
                    (SELECT json_extract(p.record, '$.programme.drug') FROM events p
                      WHERE p.type = 'programme_requested' AND p.pump = d.pump AND p.seq < d.seq
                        AND json_extract(p.record, '$.request') = json_extract(d.record, '$.request')
                        AND json_extract(p.record, '$.programme_hash')
                            = json_extract(d.record, '$.programme_hash')
                      ORDER BY p.seq DESC LIMIT 1)
             FROM events d WHERE d.type IN ('authorised', 'denied') AND d.pump = ?1
             ORDER BY d.seq DESC LIMIT 1",
            [pump],
            |r| {
                let code: Option<String> = r.get(3)?;
                let message: Option<String> = r.get(4)?;
                Ok(Decision {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    outcome: r.get(2)?,
                    reason: code.map(|c| match message {
                        Some(m) => format!("{c}: {m}"),
                        None => c,
                    }),
                    drug: r.get(5)?,
                })
            },
        )
        .optional()
        .map_err(&err)?;
    Ok(PumpSummary {
        pump: pump.to_owned(),
        link,
        serial,
        last_decision,
        alarms: raised(store, pump, up_seq)?,
    })
}

/// Alarms raised after `after` and not cleared since.
fn raised(store: &Store, pump: &str, after: i64) -> Result<Vec<RaisedAlarm>, StoreError> {
    let err = sql(store);
    let mut st = store
        .conn
        .prepare(
            "SELECT json_extract(record, '$.alarm'), json_extract(record, '$.active'),
                    json_extract(record, '$.priority'), json_extract(record, '$.text'), at
             FROM events WHERE type = 'alarm' AND pump = ?1 AND seq > ?2 ORDER BY seq",
        )
        .map_err(&err)?;
    let mut rows = st.query(rusqlite::params![pump, after]).map_err(&err)?;
    let mut open: std::collections::BTreeMap<i64, RaisedAlarm> = std::collections::BTreeMap::new();
    while let Some(r) = rows.next().map_err(&err)? {
        let id: i64 = r.get(0).map_err(&err)?;
        let active: bool = r.get(1).map_err(&err)?;
        if active {
            open.insert(
                id,
                RaisedAlarm {
                    priority: r.get(2).map_err(&err)?,
                    text: r.get(3).map_err(&err)?,
                    since: r.get(4).map_err(&err)?,
                },
            );
        } else {
            open.remove(&id);
        }
    }
    let rank = |p: &str| match p {
        "high" => 0,
        "medium" => 1,
        _ => 2,
    };
    let mut out: Vec<RaisedAlarm> = open.into_values().collect();
    out.sort_by_key(|a| rank(&a.priority));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::Log;
    use crate::store::{Context, Event};

    fn ctx(pump: Option<&str>) -> Context {
        Context {
            gateway: "g".into(),
            pump: pump.map(str::to_owned),
            care_area: "adult-icu".into(),
            library_version: Some(12),
        }
    }

    fn alarm(id: u32, priority: &str, active: bool, record: u64) -> Event {
        Event::Alarm {
            alarm: id,
            priority: priority.into(),
            condition: "occlusion".into(),
            text: format!("alarm {id}"),
            active,
            pump_serial: "S1".into(),
            pump_record: record,
            pump_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_pump_reads_as_its_events_tell_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::file_in(dir.path())).unwrap();
        let mut log = Log::new(store).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let up = Event::LinkUp {
            manufacturer: "m".into(),
            model: "x".into(),
            serial: "S1".into(),
            firmware: "1".into(),
            protocol: "1".into(),
            pump_library_version: Some(12),
            pump_library_hash: None,
        };
        let p = Some("pump-a");
        log.append(
            vec![
                (
                    ctx(None),
                    Event::GatewayStarted {
                        software: "0.1.0".into(),
                    },
                ),
                (ctx(p), up),
                (ctx(p), alarm(1, "low", true, 1)),
                (ctx(p), alarm(2, "high", true, 2)),
                (ctx(p), alarm(1, "low", false, 3)),
                (ctx(p), alarm(3, "medium", true, 4)),
                (
                    ctx(p),
                    Event::ProgrammeRequested {
                        request: 7,
                        programme_hash: "h".into(),
                        programme: serde_json::json!({"drug": "fentanyl"}),
                    },
                ),
                (
                    ctx(p),
                    Event::Denied {
                        request: 7,
                        programme_hash: "h".into(),
                        outcome: "block".into(),
                        reasons: vec![crate::store::record::LoggedReason {
                            code: "CONCENTRATION_NOT_IN_LIBRARY".into(),
                            ihe: None,
                            message: "1 microgram/mL is not a library strength".into(),
                        }],
                    },
                ),
            ],
            now,
        )
        .unwrap();
        let store = log.store();
        let s = pump(store, "pump-a").unwrap();
        assert_eq!(s.serial.as_deref(), Some("S1"));
        assert!(s.link.as_ref().unwrap().online);
        let d = s.last_decision.unwrap();
        assert_eq!(d.kind, "denied");
        assert_eq!(d.outcome.as_deref(), Some("block"));
        assert_eq!(d.drug.as_deref(), Some("fentanyl"));
        assert!(
            d.reason
                .unwrap()
                .starts_with("CONCENTRATION_NOT_IN_LIBRARY: 1 microgram")
        );
        let alarms: Vec<&str> = s.alarms.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(alarms, ["alarm 2", "alarm 3"], "cleared gone, high first");
        let never = pump(store, "pump-b").unwrap();
        assert!(never.link.is_none() && never.last_decision.is_none());
        let run = daemon(store).unwrap();
        assert!(run.started.is_some() && run.stopped.is_none());

        // Restarted: until the pump says HELLO again, its link is not known.
        log.append(
            vec![(
                ctx(None),
                Event::GatewayStarted {
                    software: "0.1.0".into(),
                },
            )],
            now,
        )
        .unwrap();
        let s = pump(log.store(), "pump-a").unwrap();
        let link = s.link.unwrap();
        assert!(!link.online);
        assert_eq!(
            link.reason.as_deref(),
            Some("not heard from since the daemon last started")
        );
    }
}
