//! The MQTT outbox on the store. The event log itself is the outbox: what
//! the broker has not acknowledged is every record after a durable cursor,
//! so nothing is copied and nothing can be lost to a full queue. The cursor
//! only moves forward, and only to a record whose batch the broker
//! acknowledged (PUBACK). This module also keeps the broker connection's
//! last known state, for `pumpgwd status`.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Store, StoreError};
use super::record::time_text;

/// The `format` of an events batch on MQTT.
pub const BATCH_FORMAT: &str = "pumpgw-event-batch";
/// Its version.
pub const BATCH_FORMAT_VERSION: u32 = 1;

/// How far the broker has acknowledged the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cursor {
    /// The last sequence number the broker acknowledged (0: none yet).
    pub acked_seq: u64,
    /// When that acknowledgement was recorded.
    pub acked_at: Option<String>,
}

/// One batch of records, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Its first sequence number.
    pub first: u64,
    /// Its last sequence number.
    pub last: u64,
    /// The JSON payload (docs/mqtt.md, `schema/event-batch-v1`).
    pub payload: Vec<u8>,
}

/// Who the batches are from (in every payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Site.
    pub site: String,
    /// Gateway id.
    pub gateway: String,
}

/// Bounds on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records per batch at most.
    pub max_records: usize,
    /// Bytes of records per batch at most (a single larger record still
    /// goes alone).
    pub max_bytes: usize,
}

/// The broker connection as the daemon last recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkRecord {
    /// The broker's address.
    pub broker: String,
    /// `connected`, `disconnected` or `stopped`.
    pub state: String,
    /// Since when.
    pub since: String,
    /// Why (the last error), if anything.
    pub detail: Option<String>,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The cursor.
pub fn cursor(store: &Store) -> Result<Cursor, StoreError> {
    store
        .conn
        .query_row(
            "SELECT acked_seq, acked_at FROM mqtt_outbox WHERE id = 1",
            [],
            |r| {
                Ok(Cursor {
                    acked_seq: to_u64(r.get(0)?),
                    acked_at: r.get(1)?,
                })
            },
        )
        .map_err(store.err())
}

/// Moves the cursor forward to `seq` (never back: a lower value is
/// ignored). Returns whether it moved.
pub fn advance(store: &Store, seq: u64, at: OffsetDateTime) -> Result<bool, StoreError> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let n = store
        .conn
        .execute(
            "UPDATE mqtt_outbox SET acked_seq = ?1, acked_at = ?2 WHERE id = 1 AND acked_seq < ?1",
            params![seq, time_text(at)],
        )
        .map_err(store.err())?;
    Ok(n == 1)
}

/// The last sequence number in the log (0 when empty).
pub fn head(store: &Store) -> Result<u64, StoreError> {
    store
        .conn
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| {
            r.get::<_, i64>(0)
        })
        .map(to_u64)
        .map_err(store.err())
}

/// Up to `count` batches of the records after `after`, in order.
pub fn batches(
    store: &Store,
    origin: &Origin,
    after: u64,
    limits: BatchLimits,
    count: usize,
) -> Result<Vec<Batch>, StoreError> {
    let limit = i64::try_from(limits.max_records.saturating_mul(count)).unwrap_or(i64::MAX);
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut st = store
        .conn
        .prepare_cached("SELECT seq, record FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(store.err())?;
    let mut rows = st.query(params![after, limit]).map_err(store.err())?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(store.err())? {
        let seq = to_u64(row.get(0).map_err(store.err())?);
        let record: Vec<u8> = row.get(1).map_err(store.err())?;
        records.push((seq, record));
    }
    Ok(split(origin, records, limits, count))
}

/// The batches [`batches`] would read, made from the writer's last commit
/// when it holds the very next record after `after` (live traffic: no
/// read of the store); `None` when it does not (a backlog, or a record
/// another connection wrote): then read the store.
pub fn batches_from_memory(
    origin: &Origin,
    after: u64,
    recent: &crate::store::writer::Committed,
    limits: BatchLimits,
    count: usize,
) -> Option<Vec<Batch>> {
    let last = recent.first + recent.records.len() as u64;
    if recent.first == 0 || recent.first > after + 1 || last <= after + 1 {
        return None;
    }
    let skip = usize::try_from(after + 1 - recent.first).ok()?;
    let records = recent.records[skip..]
        .iter()
        .enumerate()
        .map(|(i, r)| (after + 1 + i as u64, r.clone()))
        .collect();
    Some(split(origin, records, limits, count))
}

/// Consecutive records cut into at most `count` batches within `limits`.
fn split(
    origin: &Origin,
    records: Vec<(u64, Vec<u8>)>,
    limits: BatchLimits,
    count: usize,
) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut current: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut bytes = 0;
    for (seq, record) in records {
        if !current.is_empty()
            && (current.len() >= limits.max_records || bytes + record.len() > limits.max_bytes)
        {
            out.push(encode(origin, &current));
            current.clear();
            bytes = 0;
            if out.len() == count {
                return out;
            }
        }
        bytes += record.len();
        current.push((seq, record));
    }
    if !current.is_empty() && out.len() < count {
        out.push(encode(origin, &current));
    }
    out
}

/// One batch's payload. The records go in exactly as stored (and hashed),
/// so a consumer can check the chain on what it receives.
pub fn encode(origin: &Origin, records: &[(u64, Vec<u8>)]) -> Batch {
    let first = records.first().map_or(0, |r| r.0);
    let last = records.last().map_or(0, |r| r.0);
    let size: usize = records.iter().map(|r| r.1.len() + 1).sum();
    let mut p = Vec::with_capacity(size + 200);
    let text = |s: &str| serde_json::to_string(s).expect("a string always serialises");
    p.extend_from_slice(
        format!(
            "{{\"format\":\"{BATCH_FORMAT}\",\"format_version\":{BATCH_FORMAT_VERSION},\"site\":{},\"gateway\":{},\"first_seq\":{first},\"last_seq\":{last},\"count\":{},\"records\":[",
            text(&origin.site),
            text(&origin.gateway),
            records.len()
        )
        .as_bytes(),
    );
    for (i, (_, r)) in records.iter().enumerate() {
        if i > 0 {
            p.push(b',');
        }
        p.extend_from_slice(r);
    }
    p.extend_from_slice(b"]}");
    Batch {
        first,
        last,
        payload: p,
    }
}

/// Records the broker connection's state.
pub fn set_link(
    store: &Store,
    broker: &str,
    state: &str,
    detail: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    write_link(store, Peer::Broker, (broker, state, detail), at)
}

/// The broker connection's state as last recorded (none if the daemon has
/// never tried).
pub fn link(store: &Store) -> Result<Option<LinkRecord>, StoreError> {
    read_link(store, Peer::Broker)
}

/// Whose connection a link record is: the broker's (`mqtt_link`) or the
/// EHR's (`ehr_link`); one row each, the same columns but the peer's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Peer {
    Broker,
    Ehr,
}

impl Peer {
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Peer::Broker => ("mqtt_link", "broker"),
            Peer::Ehr => ("ehr_link", "destination"),
        }
    }
}

/// Records a connection's state: peer, state, detail.
pub(crate) fn write_link(
    store: &Store,
    peer: Peer,
    (address, state, detail): (&str, &str, Option<&str>),
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let (table, column) = peer.table();
    store
        .conn
        .execute(
            &format!(
                "INSERT INTO {table} (id, {column}, state, since, detail) VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET {column} = ?1, state = ?2, since = ?3, detail = ?4"
            ),
            params![address, state, time_text(at), detail],
        )
        .map(drop)
        .map_err(store.err())
}

/// A connection's state as last recorded.
pub(crate) fn read_link(store: &Store, peer: Peer) -> Result<Option<LinkRecord>, StoreError> {
    let (table, column) = peer.table();
    store
        .conn
        .query_row(
            &format!("SELECT {column}, state, since, detail FROM {table} WHERE id = 1"),
            [],
            |r| {
                Ok(LinkRecord {
                    broker: r.get(0)?,
                    state: r.get(1)?,
                    since: r.get(2)?,
                    detail: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(store.err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::Log;
    use crate::store::{Context, Event};

    fn log_with(n: u32) -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new(Store::open(&Store::file_in(dir.path())).unwrap()).unwrap();
        let ctx = Context {
            gateway: "gw-1".into(),
            pump: Some("a".into()),
            care_area: "adult-icu".into(),
            library_version: Some(12),
        };
        let events = (0..n)
            .map(|i| {
                (
                    ctx.clone(),
                    Event::LinkDown {
                        reason: format!("r{i}"),
                    },
                )
            })
            .collect();
        log.append(events, OffsetDateTime::now_utc()).unwrap();
        (dir, log)
    }

    fn origin() -> Origin {
        Origin {
            site: "st-elsewhere".into(),
            gateway: "gw-1".into(),
        }
    }

    #[test]
    fn live_batches_from_the_last_commit_are_the_ones_the_store_gives() {
        use crate::store::writer::Committed;
        let (_d, log) = log_with(25);
        let limits = BatchLimits {
            max_records: 4,
            max_bytes: 1 << 20,
        };
        // The last commit held records 20 to 25.
        let recent = Committed {
            first: 20,
            records: (20..=25)
                .map(|seq: i64| {
                    log.store()
                        .conn
                        .query_row("SELECT record FROM events WHERE seq = ?1", [seq], |r| {
                            r.get(0)
                        })
                        .unwrap()
                })
                .collect(),
        };
        for after in 19..=24 {
            let memory = batches_from_memory(&origin(), after, &recent, limits, 3)
                .expect("the next record is in the last commit");
            let stored = batches(log.store(), &origin(), after, limits, 3).unwrap();
            let key = |b: &[Batch]| -> Vec<(u64, u64, Vec<u8>)> {
                b.iter()
                    .map(|b| (b.first, b.last, b.payload.clone()))
                    .collect()
            };
            assert_eq!(key(&memory), key(&stored), "after {after}");
        }
        // A gap before the commit, or nothing new in it: read the store.
        assert!(batches_from_memory(&origin(), 10, &recent, limits, 3).is_none());
        assert!(batches_from_memory(&origin(), 25, &recent, limits, 3).is_none());
        assert!(batches_from_memory(&origin(), 0, &Committed::default(), limits, 3).is_none());
    }

    #[test]
    fn batches_are_in_order_bounded_and_carry_the_stored_records() {
        let (_d, log) = log_with(25);
        let limits = BatchLimits {
            max_records: 10,
            max_bytes: 1 << 20,
        };
        let b = batches(log.store(), &origin(), 3, limits, 5).unwrap();
        let ranges: Vec<(u64, u64)> = b.iter().map(|b| (b.first, b.last)).collect();
        assert_eq!(ranges, vec![(4, 13), (14, 23), (24, 25)]);
        let v: serde_json::Value = serde_json::from_slice(&b[0].payload).unwrap();
        assert_eq!(v["format"], BATCH_FORMAT);
        assert_eq!(v["gateway"], "gw-1");
        assert_eq!(v["count"], 10);
        let stored: Vec<u8> = log
            .store()
            .conn
            .query_row("SELECT record FROM events WHERE seq = 4", [], |r| r.get(0))
            .unwrap();
        let first: serde_json::Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(v["records"][0], first);
        assert_eq!(v["records"][9]["seq"], 13);
        // Only as many batches as asked for.
        let two = batches(log.store(), &origin(), 0, limits, 2).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].last, 20);
    }

    #[test]
    fn the_byte_limit_splits_batches_but_never_drops_a_record() {
        let (_d, log) = log_with(6);
        let limits = BatchLimits {
            max_records: 100,
            max_bytes: 1,
        };
        let b = batches(log.store(), &origin(), 0, limits, 10).unwrap();
        assert_eq!(b.len(), 6);
        assert!(b.iter().zip(1..).all(|(b, s)| b.first == s && b.last == s));
    }

    #[test]
    fn the_cursor_only_moves_forward() {
        let (_d, log) = log_with(5);
        let s = log.store();
        assert_eq!(cursor(s).unwrap().acked_seq, 0);
        assert_eq!(head(s).unwrap(), 5);
        assert!(advance(s, 4, OffsetDateTime::now_utc()).unwrap());
        assert!(!advance(s, 2, OffsetDateTime::now_utc()).unwrap());
        let c = cursor(s).unwrap();
        assert_eq!(c.acked_seq, 4);
        assert!(c.acked_at.is_some());
    }

    #[test]
    fn the_link_state_is_kept() {
        let (_d, log) = log_with(1);
        let s = log.store();
        assert_eq!(link(s).unwrap(), None);
        set_link(
            s,
            "mqtt://b:1883",
            "disconnected",
            Some("refused"),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        set_link(
            s,
            "mqtt://b:1883",
            "connected",
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let l = link(s).unwrap().unwrap();
        assert_eq!(l.state, "connected");
        assert_eq!(l.detail, None);
    }
}
