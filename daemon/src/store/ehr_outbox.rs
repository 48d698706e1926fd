//! The EHR outbox on the store (documentation out, `crate::ehr::sender`).
//! As for MQTT, the log itself is the outbox: what the EHR has not
//! acknowledged is every record after a durable cursor, which moves only
//! forward and only past a record whose messages the EHR acknowledged.
//! The cursor is made the first time the sender starts, at the log's head
//! then: documentation starts with what is logged from that moment, not
//! with a flood of the gateway's whole past. The connection's last known
//! state is kept for `pumpgwd status`.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::db::{Store, StoreError};
use super::outbox::{LinkRecord, Peer, read_link, write_link};
use super::record::time_text;

/// How far the EHR has acknowledged the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cursor {
    /// The last sequence number passed: its messages acknowledged, or it
    /// had none.
    pub acked_seq: u64,
    /// When it moved last.
    pub acked_at: Option<String>,
    /// Messages acknowledged so far.
    pub messages: u64,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The cursor, if the sender has ever started.
pub fn cursor(store: &Store) -> Result<Option<Cursor>, StoreError> {
    store
        .conn
        .query_row(
            "SELECT acked_seq, acked_at, messages FROM ehr_outbox WHERE id = 1",
            [],
            |r| {
                Ok(Cursor {
                    acked_seq: to_u64(r.get(0)?),
                    acked_at: r.get(1)?,
                    messages: to_u64(r.get(2)?),
                })
            },
        )
        .optional()
        .map_err(store.err())
}

/// The cursor, made at the log's head if the sender never started.
pub fn start(store: &Store) -> Result<Cursor, StoreError> {
    store
        .conn
        .execute(
            "INSERT OR IGNORE INTO ehr_outbox (id, acked_seq)
             SELECT 1, COALESCE(MAX(seq), 0) FROM events",
            [],
        )
        .map_err(store.err())?;
    cursor(store).map(|c| c.expect("made just now if it was not there"))
}

/// Moves the cursor forward to `seq`, counting `messages` more
/// acknowledged (never back: a lower `seq` is ignored). Whether it moved.
pub fn advance(
    store: &Store,
    seq: u64,
    messages: u64,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let messages = i64::try_from(messages).unwrap_or(i64::MAX);
    let n = store
        .conn
        .execute(
            "UPDATE ehr_outbox SET acked_seq = ?1, acked_at = ?2, messages = messages + ?3
             WHERE id = 1 AND acked_seq < ?1",
            params![seq, time_text(at), messages],
        )
        .map_err(store.err())?;
    Ok(n == 1)
}

/// Up to `limit` records after `after`, in order: sequence number, port
/// and the record.
pub fn after(
    store: &Store,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, Option<String>, serde_json::Value)>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = store
        .conn
        .prepare_cached("SELECT seq, pump, record FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(store.err())?;
    let mut rows = st.query(params![after, limit]).map_err(store.err())?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(store.err())? {
        let seq = to_u64(row.get(0).map_err(store.err())?);
        let pump: Option<String> = row.get(1).map_err(store.err())?;
        let bytes: Vec<u8> = row.get(2).map_err(store.err())?;
        // A record the chain holds is JSON; one that is not cannot be
        // documented (and `events verify` reports it).
        let record = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        out.push((seq, pump, record));
    }
    Ok(out)
}

/// The records up to `upto` (within `since`) that tell what later
/// deliveries were given under: orders, programmes, verdicts,
/// authorisations, and the denials and deliveries that let them go,
/// oldest first.
pub fn context(
    store: &Store,
    since: OffsetDateTime,
    upto: u64,
) -> Result<Vec<(Option<String>, serde_json::Value)>, StoreError> {
    let upto = i64::try_from(upto).unwrap_or(i64::MAX);
    let mut st = store
        .conn
        .prepare(
            "SELECT pump, record FROM events
             WHERE type IN ('order_received', 'programme_requested', 'verdict', 'authorised',
                            'denied', 'delivery')
               AND at >= ?1 AND seq <= ?2
             ORDER BY seq",
        )
        .map_err(store.err())?;
    let rows = st
        .query_map(params![time_text(since), upto], |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(store.err())?;
    let mut out = Vec::new();
    for row in rows {
        let (pump, bytes) = row.map_err(store.err())?;
        if let Ok(record) = serde_json::from_slice(&bytes) {
            out.push((pump, record));
        }
    }
    Ok(out)
}

/// Records the EHR connection's state.
pub fn set_link(
    store: &Store,
    destination: &str,
    state: &str,
    detail: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    write_link(store, Peer::Ehr, (destination, state, detail), at)
}

/// The EHR connection's state as last recorded (`broker` holds the
/// destination).
pub fn link(store: &Store) -> Result<Option<LinkRecord>, StoreError> {
    read_link(store, Peer::Ehr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::Log;
    use crate::store::{Context, Event};

    #[test]
    fn the_cursor_starts_at_the_head_once_and_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::new(Store::open(&Store::file_in(dir.path())).unwrap()).unwrap();
        let ctx = Context {
            gateway: "gw-1".into(),
            pump: Some("a".into()),
            care_area: "adult-icu".into(),
            library_version: Some(12),
        };
        let down = |r: &str| {
            (
                ctx.clone(),
                Event::LinkDown {
                    reason: r.to_owned(),
                },
            )
        };
        let now = OffsetDateTime::now_utc();
        log.append(vec![down("a"), down("b")], now).unwrap();
        let store = log.store();
        assert_eq!(cursor(store).unwrap(), None);
        let c = start(store).unwrap();
        assert_eq!((c.acked_seq, c.messages), (2, 0), "at the head");
        log.append(vec![down("c")], now).unwrap();
        let store = log.store();
        assert_eq!(start(store).unwrap().acked_seq, 2, "made once");
        let next = after(store, 2, 10).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].0, 3);
        assert_eq!(next[0].1.as_deref(), Some("a"));
        assert_eq!(next[0].2["reason"], "c");
        assert!(advance(store, 3, 2, now).unwrap());
        assert!(!advance(store, 1, 5, now).unwrap(), "never back");
        let c = cursor(store).unwrap().unwrap();
        assert_eq!((c.acked_seq, c.messages), (3, 2));
    }
}
