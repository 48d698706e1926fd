//! The archive in an SQLite file: the default, for a site with a few
//! gateways or for one pharmacist's copy. WAL and full synchronous
//! commits: a batch is acknowledged to the broker only once committed, so
//! a commit must survive a power cut.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::backend::{
    Anomaly, AnomalyKind, ArchiveError, Backend, GatewaySummary, Key, Link, NewRecord, hash32,
    to_i64, to_u64,
};

/// Migrations, in order; `user_version` counts those applied.
const MIGRATIONS: &[&str] = &["CREATE TABLE records (
        site       TEXT    NOT NULL,
        gateway    TEXT    NOT NULL,
        seq        INTEGER NOT NULL,
        at         TEXT    NOT NULL,
        type       TEXT    NOT NULL,
        care_area  TEXT    NOT NULL,
        pump       TEXT,
        hash       BLOB    NOT NULL,
        prev_hash  BLOB    NOT NULL,
        record     BLOB    NOT NULL,
        PRIMARY KEY (site, gateway, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX records_at ON records(at);
    CREATE TABLE anomalies (
        id          INTEGER PRIMARY KEY,
        site        TEXT NOT NULL,
        gateway     TEXT NOT NULL,
        seq         INTEGER,
        kind        TEXT NOT NULL,
        detail      TEXT NOT NULL,
        noticed_at  TEXT NOT NULL,
        record      BLOB
    ) STRICT;"];

/// An SQLite archive.
#[derive(Debug)]
pub struct Sqlite {
    conn: Connection,
    path: String,
}

impl Sqlite {
    /// Opens (or creates) the archive file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Sqlite, ArchiveError> {
        let name = path.display().to_string();
        let err = |source| ArchiveError::Sqlite {
            path: name.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(ArchiveError::TooNew(name, version, known));
        }
        for (i, m) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(m).map_err(err)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(Sqlite { conn, path: name })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> ArchiveError + '_ {
        |source| ArchiveError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

impl Backend for Sqlite {
    fn describe(&self) -> String {
        format!("SQLite {}", self.path)
    }

    fn heads(&mut self) -> Result<Vec<(Key, u64, [u8; 32])>, ArchiveError> {
        let err = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT r.site, r.gateway, r.seq, r.hash FROM records r
                 JOIN (SELECT site, gateway, MAX(seq) AS seq FROM records GROUP BY site, gateway) m
                 ON r.site = m.site AND r.gateway = m.gateway AND r.seq = m.seq",
            )
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    Key {
                        site: r.get(0)?,
                        gateway: r.get(1)?,
                    },
                    to_u64(r.get(2)?),
                    hash32(&r.get::<_, Vec<u8>>(3)?),
                ))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn head(&mut self, key: &Key) -> Result<Option<(u64, [u8; 32])>, ArchiveError> {
        let err = self.err();
        self.conn
            .prepare_cached(
                "SELECT seq, hash FROM records WHERE site = ?1 AND gateway = ?2 ORDER BY seq DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![key.site, key.gateway], |r| {
                    Ok((to_u64(r.get(0)?), hash32(&r.get::<_, Vec<u8>>(1)?)))
                })
                .optional()
            })
            .map_err(err)
    }

    fn link(&mut self, key: &Key, seq: u64) -> Result<Option<Link>, ArchiveError> {
        let err = self.err();
        self.conn
            .prepare_cached(
                "SELECT hash, prev_hash FROM records WHERE site = ?1 AND gateway = ?2 AND seq = ?3",
            )
            .and_then(|mut st| {
                st.query_row(params![key.site, key.gateway, to_i64(seq)], |r| {
                    Ok(Link {
                        hash: hash32(&r.get::<_, Vec<u8>>(0)?),
                        prev_hash: hash32(&r.get::<_, Vec<u8>>(1)?),
                    })
                })
                .optional()
            })
            .map_err(err)
    }

    fn write(&mut self, records: &[NewRecord], anomalies: &[Anomaly]) -> Result<(), ArchiveError> {
        let path = self.path.clone();
        let err = |source| ArchiveError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO records (site, gateway, seq, at, type, care_area, pump, hash, prev_hash, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(err)?;
            for r in records {
                st.execute(params![
                    r.key.site,
                    r.key.gateway,
                    to_i64(r.seq),
                    r.at,
                    r.kind,
                    r.care_area,
                    r.pump,
                    &r.link.hash[..],
                    &r.link.prev_hash[..],
                    r.bytes
                ])
                .map_err(err)?;
            }
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO anomalies (site, gateway, seq, kind, detail, noticed_at, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            for a in anomalies {
                st.execute(params![
                    a.key.site,
                    a.key.gateway,
                    a.seq.map(to_i64),
                    a.kind.word(),
                    a.detail,
                    a.noticed_at,
                    a.bytes
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn summary(&mut self) -> Result<Vec<GatewaySummary>, ArchiveError> {
        let err = self.err();
        let mut st = self.conn.prepare(super::backend::SUMMARY).map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                let records = to_u64(r.get(2)?);
                let last_seq = to_u64(r.get(3)?);
                Ok(GatewaySummary {
                    key: Key {
                        site: r.get(0)?,
                        gateway: r.get(1)?,
                    },
                    records,
                    last_seq,
                    last_at: r.get(4)?,
                    missing: last_seq.saturating_sub(records),
                    anomalies: to_u64(r.get(5)?),
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn gaps(&mut self, key: &Key) -> Result<Vec<(u64, u64)>, ArchiveError> {
        let err = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT CAST(1 AS BIGINT), MIN(seq) - 1 FROM records
                   WHERE site = ?1 AND gateway = ?2 HAVING MIN(seq) > 1
                 UNION ALL
                 SELECT seq + 1, next - 1 FROM
                   (SELECT seq, LEAD(seq) OVER (ORDER BY seq) AS next FROM records
                     WHERE site = ?1 AND gateway = ?2) AS s
                   WHERE next > seq + 1
                 ORDER BY 1",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![key.site, key.gateway], |r| {
                Ok((to_u64(r.get(0)?), to_u64(r.get(1)?)))
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn anomalies(&mut self) -> Result<Vec<Anomaly>, ArchiveError> {
        let err = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT site, gateway, seq, kind, detail, noticed_at FROM anomalies ORDER BY id",
            )
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                Ok(Anomaly {
                    key: Key {
                        site: r.get(0)?,
                        gateway: r.get(1)?,
                    },
                    seq: r.get::<_, Option<i64>>(2)?.map(to_u64),
                    kind: AnomalyKind::from_word(&r.get::<_, String>(3)?)
                        .unwrap_or(AnomalyKind::Malformed),
                    detail: r.get(4)?,
                    noticed_at: r.get(5)?,
                    bytes: None,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }

    fn count(&mut self) -> Result<u64, ArchiveError> {
        let err = self.err();
        self.conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
            .map(to_u64)
            .map_err(err)
    }

    fn each_record(
        &mut self,
        site: Option<&str>,
        (from, to): (&str, &str),
        only: &[&str],
        visit: &mut dyn FnMut(&Key, &[u8]),
    ) -> Result<(), ArchiveError> {
        let err = self.err();
        let mut st = self
            .conn
            .prepare(
                "SELECT site, gateway, record FROM records
                 WHERE (?1 IS NULL OR site = ?1) AND at >= ?2 AND at < ?3
                   AND (?4 IS NULL OR type IN (SELECT value FROM json_each(?4)))
                 ORDER BY site, gateway, seq",
            )
            .map_err(&err)?;
        // The types as a JSON array, for json_each (none: every type).
        let only =
            (!only.is_empty()).then(|| serde_json::to_string(only).expect("strings serialise"));
        let mut rows = st.query(params![site, from, to, only]).map_err(&err)?;
        let mut key = Key {
            site: String::new(),
            gateway: String::new(),
        };
        while let Some(r) = rows.next().map_err(&err)? {
            let s: String = r.get(0).map_err(&err)?;
            let g: String = r.get(1).map_err(&err)?;
            if s != key.site || g != key.gateway {
                key = Key {
                    site: s,
                    gateway: g,
                };
            }
            let bytes = r.get_ref(2).map_err(&err)?;
            let bytes = bytes.as_blob().map_err(|e| err(e.into()))?;
            visit(&key, bytes);
        }
        Ok(())
    }
}
