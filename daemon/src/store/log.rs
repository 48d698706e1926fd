//! The event log on the store: appending batches in one transaction each
//! (group commit), and reading it back: tail, filtered export, and the walk
//! that verifies the hash chain.

use std::io::Write;

use rusqlite::params;
use time::OffsetDateTime;

use super::db::{Store, StoreError};
use super::record::{
    Context, Event, FORMAT, FORMAT_VERSION, GENESIS, Record, hash, millis, time_text,
};

/// Appends to the log; knows the chain's head.
#[derive(Debug)]
pub struct Log {
    store: Store,
    last_seq: u64,
}

impl Log {
    /// Takes over a store and finds the head of its chain.
    pub fn new(store: Store) -> Result<Log, StoreError> {
        let (last_seq, _) = head(&store.conn).map_err(|source| StoreError::Sqlite {
            path: store.path.clone(),
            source,
        })?;
        Ok(Log { store, last_seq })
    }

    /// The last sequence number written (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends events in one transaction: all are durable when this
    /// returns `Ok`, none are when it returns `Err`.
    pub fn append(
        &mut self,
        events: Vec<(Context, Event)>,
        at: OffsetDateTime,
    ) -> Result<Vec<Record>, StoreError> {
        let path = self.store.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        // IMMEDIATE: the head is read under the write lock, so another
        // writer (a `pumpgwd library` command) cannot slip in between.
        let tx = self
            .store
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let written = append_in(&tx, events, at).map_err(sql)?;
        tx.commit().map_err(sql)?;
        if let Some(last) = written.last() {
            self.last_seq = last.seq;
        }
        Ok(written)
    }
}

/// The chain's head: the last sequence number and its record's hash
/// (0 and [`GENESIS`] when the log is empty).
pub(crate) fn head(conn: &rusqlite::Connection) -> Result<(u64, [u8; 32]), rusqlite::Error> {
    // Cached: the writer reads the head at every commit.
    let row = conn
        .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    Ok(match row {
        Some((seq, h)) => {
            let mut last = [0; 32];
            if h.len() == 32 {
                last.copy_from_slice(&h);
            }
            (u64::try_from(seq).unwrap_or(0), last)
        }
        None => (0, GENESIS),
    })
}

/// Appends events inside the caller's transaction (which should hold the
/// write lock), chaining from the log's current head.
pub fn append_in(
    tx: &rusqlite::Transaction<'_>,
    events: Vec<(Context, Event)>,
    at: OffsetDateTime,
) -> Result<Vec<Record>, rusqlite::Error> {
    let (mut seq, mut prev) = head(tx)?;
    let practice = super::db::is_practice(tx)?;
    let at = millis(at);
    let at_text = time_text(at);
    let mut written = Vec::with_capacity(events.len());
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (seq, at, type, pump, record, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (context, event) in events {
        seq += 1;
        let record = Record {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            seq,
            at,
            context,
            practice,
            event,
            prev_hash: hex::encode(prev),
        };
        let bytes = record.to_bytes();
        let h = hash(&bytes);
        insert.execute(params![
            i64::try_from(seq).unwrap_or(i64::MAX),
            at_text,
            record.event.type_name(),
            record.context.pump,
            bytes,
            h.to_vec(),
        ])?;
        prev = h;
        written.push(record);
    }
    Ok(written)
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first sequence number at which it does not hold.
    pub seq: u64,
    /// What is wrong there.
    pub what: String,
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// The first break, if any.
    pub first_break: Option<Break>,
}

/// Walks the whole chain in order; `progress` is called every 10,000
/// records with the count so far.
pub fn verify(store: &Store, mut progress: impl FnMut(u64)) -> Result<Verified, StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: store.path.clone(),
        source,
    };
    let mut st = store
        .conn
        .prepare("SELECT seq, record, hash FROM events ORDER BY seq")
        .map_err(sql)?;
    let mut rows = st.query([]).map_err(sql)?;
    let mut expected_seq = 1u64;
    let mut prev = GENESIS;
    let mut records = 0u64;
    let broken = |seq: u64, what: String, records| Verified {
        records,
        first_break: Some(Break { seq, what }),
    };
    while let Some(row) = rows.next().map_err(sql)? {
        let row_seq: i64 = row.get(0).map_err(sql)?;
        let bytes: Vec<u8> = row.get(1).map_err(sql)?;
        let stored: Vec<u8> = row.get(2).map_err(sql)?;
        let row_seq = u64::try_from(row_seq).unwrap_or(0);
        if row_seq != expected_seq {
            return Ok(broken(
                expected_seq,
                format!("record {expected_seq} is missing (next present is {row_seq})"),
                records,
            ));
        }
        let h = hash(&bytes);
        if stored != h {
            return Ok(broken(
                row_seq,
                "the record's bytes do not match its stored hash (edited)".to_owned(),
                records,
            ));
        }
        let record: Record = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return Ok(broken(row_seq, format!("not a valid record: {e}"), records));
            }
        };
        if record.seq != row_seq {
            return Ok(broken(
                row_seq,
                format!("the record says seq {} (moved)", record.seq),
                records,
            ));
        }
        if record.prev_hash != hex::encode(prev) {
            return Ok(broken(
                row_seq,
                "prev_hash is not the previous record's hash (a record before it was edited, deleted or moved)"
                    .to_owned(),
                records,
            ));
        }
        prev = h;
        expected_seq += 1;
        records += 1;
        if records.is_multiple_of(10_000) {
            progress(records);
        }
    }
    Ok(Verified {
        records,
        first_break: None,
    })
}

/// The highest event record number logged per pump serial, so that an
/// event a pump sends again after a gateway restart is not logged twice.
pub fn last_pump_records(
    store: &Store,
) -> Result<std::collections::HashMap<String, u64>, StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: store.path.clone(),
        source,
    };
    let mut st = store
        .conn
        .prepare(
            "SELECT json_extract(record, '$.pump_serial'),
                    MAX(CAST(json_extract(record, '$.pump_record') AS INTEGER))
             FROM events WHERE type IN ('delivery', 'alarm') AND pump IS NOT NULL
             GROUP BY json_extract(record, '$.pump_serial')",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sql)?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let (serial, record) = row.map_err(sql)?;
        out.insert(serial, u64::try_from(record).unwrap_or(0));
    }
    Ok(out)
}

/// The query of [`pump_event_records`]: it matches the expression index
/// `events_pump_record` (migration 6) exactly, so it is a lookup.
const PUMP_EVENT_RECORDS: &str = "SELECT record FROM events
   WHERE type IN ('delivery', 'alarm')
     AND json_extract(record, '$.pump_serial') = ?1
     AND CAST(json_extract(record, '$.pump_record') AS INTEGER) = ?2";

/// The records of this pump's events (serial, record number, on any port)
/// in the log, as JSON: none, the one it sent before, or (a controller
/// whose counter went back) others.
pub fn pump_event_records(
    store: &Store,
    serial: &str,
    record: u64,
) -> Result<Vec<serde_json::Value>, StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: store.path.clone(),
        source,
    };
    let mut st = store.conn.prepare_cached(PUMP_EVENT_RECORDS).map_err(sql)?;
    let rows = st
        .query_map(params![serial, i64::try_from(record).unwrap_or(-1)], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        if let Ok(v) = serde_json::from_slice(&row.map_err(sql)?) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The records a bed's dose ledger is rebuilt from at start (programme
/// requests, authorisations, delivery events, and the starts and clock
/// steps that date them, logged since `since`),
/// oldest first, each as (pump, when logged, the whole record as JSON).
/// What they count is decided by `gateway::core::ledger`, not here.
pub fn dose_records_since(
    store: &Store,
    since: OffsetDateTime,
) -> Result<Vec<(Option<String>, OffsetDateTime, serde_json::Value)>, StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: store.path.clone(),
        source,
    };
    let mut st = store
        .conn
        .prepare(
            "SELECT pump, at, record FROM events
             WHERE type IN ('programme_requested', 'authorised', 'delivery',
                            'gateway_started', 'clock_stepped') AND at >= ?1
             ORDER BY seq",
        )
        .map_err(sql)?;
    let rows = st
        .query_map([time_text(since)], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (pump, at, record) = row.map_err(sql)?;
        let at = OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
            .unwrap_or(since);
        // A record the chain holds is JSON; one that is not is skipped here
        // and reported by `events verify`.
        if let Ok(record) = serde_json::from_slice(&record) {
            out.push((pump, at, record));
        }
    }
    Ok(out)
}

/// Which records to export.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
    /// One pump.
    pub pump: Option<String>,
    /// One type.
    pub kind: Option<String>,
}

/// Writes matching records as JSON lines, oldest first, one row in memory
/// at a time. Returns how many were written.
pub fn export(store: &Store, filter: &Filter, out: &mut impl Write) -> Result<u64, ExportError> {
    let sql = |source| {
        ExportError::Store(StoreError::Sqlite {
            path: store.path.clone(),
            source,
        })
    };
    let fmt = |t: Option<OffsetDateTime>| t.map(|t| time_text(millis(t)));
    // Times are stored in one fixed-width UTC form: they sort as text.
    let mut st = store
        .conn
        .prepare(
            "SELECT record FROM events
             WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2)
               AND (?3 IS NULL OR pump = ?3) AND (?4 IS NULL OR type = ?4)
             ORDER BY seq",
        )
        .map_err(sql)?;
    let mut rows = st
        .query(params![
            fmt(filter.since),
            fmt(filter.until),
            filter.pump,
            filter.kind
        ])
        .map_err(sql)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(sql)? {
        let bytes: Vec<u8> = row.get(0).map_err(sql)?;
        out.write_all(&bytes).map_err(ExportError::Write)?;
        out.write_all(b"\n").map_err(ExportError::Write)?;
        n += 1;
    }
    out.flush().map_err(ExportError::Write)?;
    Ok(n)
}

/// The last `n` records, oldest first.
pub fn tail(store: &Store, n: u64) -> Result<Vec<Record>, StoreError> {
    let sql = |source| StoreError::Sqlite {
        path: store.path.clone(),
        source,
    };
    let mut st = store
        .conn
        .prepare("SELECT record FROM (SELECT seq, record FROM events ORDER BY seq DESC LIMIT ?1) ORDER BY seq")
        .map_err(sql)?;
    let rows = st
        .query_map([i64::try_from(n).unwrap_or(i64::MAX)], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for bytes in rows {
        let bytes = bytes.map_err(sql)?;
        if let Ok(r) = serde_json::from_slice(&bytes) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Writing the output failed (a closed pipe, a full disk).
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pump: &str) -> Context {
        Context {
            gateway: "bed-12".to_owned(),
            pump: Some(pump.to_owned()),
            care_area: "adult-icu".to_owned(),
            library_version: Some(12),
        }
    }

    fn down(n: u32) -> Event {
        Event::LinkDown {
            reason: format!("test {n}"),
        }
    }

    fn filled(n: u32) -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::file_in(dir.path())).unwrap();
        let mut log = Log::new(store).unwrap();
        for i in 0..n {
            let pump = if i % 2 == 0 { "a" } else { "b" };
            log.append(vec![(ctx(pump), down(i))], OffsetDateTime::now_utc())
                .unwrap();
        }
        (dir, log)
    }

    #[test]
    fn a_resent_event_is_looked_up_by_its_index_not_a_scan() {
        let (_dir, log) = filled(3);
        let plan: Vec<String> = log
            .store()
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {PUMP_EVENT_RECORDS}"))
            .unwrap()
            .query_map(params!["SN-1", 7], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|l| l.contains("events_pump_record")),
            "{plan:?}"
        );
        assert!(
            pump_event_records(log.store(), "SN-1", 7)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn once_a_folder_is_practice_every_record_from_every_connection_says_so() {
        let (dir, mut log) = filled(2);
        log.store().mark_practice().unwrap();
        log.append(vec![(ctx("a"), down(9))], OffsetDateTime::now_utc())
            .unwrap();
        // Another writer (a `pumpgwd library` command) on its own connection.
        let mut other = Store::open(&Store::file_in(dir.path())).unwrap();
        let tx = other.conn.transaction().unwrap();
        append_in(&tx, vec![(ctx("b"), down(10))], OffsetDateTime::now_utc()).unwrap();
        tx.commit().unwrap();
        let practice: Vec<bool> = {
            let mut st = log
                .store()
                .conn
                .prepare("SELECT record FROM events ORDER BY seq")
                .unwrap();
            st.query_map([], |r| r.get::<_, Vec<u8>>(0))
                .unwrap()
                .map(|b| {
                    serde_json::from_slice::<Record>(&b.unwrap())
                        .unwrap()
                        .practice
                })
                .collect()
        };
        assert_eq!(practice, [false, false, true, true]);
        // Marking twice changes nothing; the chain still holds.
        log.store().mark_practice().unwrap();
        assert_eq!(verify(log.store(), |_| {}).unwrap().first_break, None);
    }

    #[test]
    fn the_chain_holds_and_resumes_after_reopening() {
        let (dir, log) = filled(5);
        drop(log);
        let mut log = Log::new(Store::open(&Store::file_in(dir.path())).unwrap()).unwrap();
        assert_eq!(log.last_seq(), 5);
        log.append(
            vec![(ctx("a"), down(9)), (ctx("b"), down(10))],
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let v = verify(log.store(), |_| {}).unwrap();
        assert_eq!(
            v,
            Verified {
                records: 7,
                first_break: None
            }
        );
    }

    #[test]
    fn an_edit_a_deletion_and_a_reorder_are_found_where_they_are() {
        let (_d, log) = filled(6);
        let c = &log.store().conn;
        // Edit record 3's bytes (and even its stored hash).
        let bytes: Vec<u8> = c
            .query_row("SELECT record FROM events WHERE seq = 3", [], |r| r.get(0))
            .unwrap();
        let edited = String::from_utf8(bytes)
            .unwrap()
            .replace("test 2", "test X");
        c.execute(
            "UPDATE events SET record = ?1, hash = ?2 WHERE seq = 3",
            params![edited.as_bytes(), hash(edited.as_bytes()).to_vec()],
        )
        .unwrap();
        let v = verify(log.store(), |_| {}).unwrap();
        assert_eq!(
            v.first_break.unwrap().seq,
            4,
            "record 4 no longer points at 3"
        );

        let (_d, log) = filled(6);
        log.store()
            .conn
            .execute("DELETE FROM events WHERE seq = 2", [])
            .unwrap();
        let b = verify(log.store(), |_| {}).unwrap().first_break.unwrap();
        assert_eq!(b.seq, 2);
        assert!(b.what.contains("missing"), "{}", b.what);

        let (_d, log) = filled(6);
        let c = &log.store().conn;
        c.execute_batch(
            "UPDATE events SET seq = -1 WHERE seq = 4; UPDATE events SET seq = 4 WHERE seq = 5; UPDATE events SET seq = 5 WHERE seq = -1;",
        )
        .unwrap();
        let b = verify(log.store(), |_| {}).unwrap().first_break.unwrap();
        assert_eq!(b.seq, 4);
        assert!(b.what.contains("moved"), "{}", b.what);
    }

    #[test]
    fn export_filters_and_writes_the_stored_bytes() {
        let (_d, log) = filled(4);
        let mut out = Vec::new();
        let n = export(
            log.store(),
            &Filter {
                pump: Some("b".to_owned()),
                ..Filter::default()
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 2);
        let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
        let first: Record = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first.seq, 2);
        let stored: Vec<u8> = log
            .store()
            .conn
            .query_row("SELECT record FROM events WHERE seq = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(lines[0].as_bytes(), &stored[..]);
        assert_eq!(
            tail(log.store(), 2)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
    }
}
