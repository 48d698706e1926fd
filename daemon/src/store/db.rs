//! Opening the gateway's database: integrity first, then WAL and full
//! synchronous commits, then migrations.
//!
//! A database that fails its integrity check, or that a newer pumpgw wrote,
//! is refused and left exactly as it was: nothing is written to it before
//! the checks pass, and nothing is ever "repaired".

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// Migrations, in order; `user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: the event log.
    "CREATE TABLE events (
        seq    INTEGER PRIMARY KEY,
        at     TEXT    NOT NULL,
        type   TEXT    NOT NULL,
        pump   TEXT,
        record BLOB    NOT NULL,
        hash   BLOB    NOT NULL
    ) STRICT;
    CREATE INDEX events_at ON events(at);",
    // 2: the library archive and its audit trail.
    "CREATE TABLE libraries (
        version     INTEGER PRIMARY KEY,
        library_id  TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        file        BLOB NOT NULL,
        signature   BLOB NOT NULL,
        key_id      TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('received', 'verified', 'active', 'superseded')),
        received_at TEXT NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX libraries_one_active ON libraries(state) WHERE state = 'active';
    CREATE TABLE library_audit (
        id         INTEGER PRIMARY KEY,
        at         TEXT NOT NULL,
        version    INTEGER NOT NULL REFERENCES libraries(version),
        from_state TEXT,
        to_state   TEXT NOT NULL,
        who        TEXT NOT NULL,
        why        TEXT NOT NULL
    ) STRICT;",
    // 3: per-type lookups (library status per pump).
    "CREATE INDEX events_type ON events(type, pump, seq);",
    // 4: the MQTT outbox cursor and the broker connection as last seen.
    "CREATE TABLE mqtt_outbox (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        acked_seq INTEGER NOT NULL,
        acked_at  TEXT
    ) STRICT;
    INSERT INTO mqtt_outbox (id, acked_seq) VALUES (1, 0);
    CREATE TABLE mqtt_link (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        broker TEXT NOT NULL,
        state  TEXT NOT NULL,
        since  TEXT NOT NULL,
        detail TEXT
    ) STRICT;",
    // 5: wrong PINs in a row and lockouts, per staff id.
    "CREATE TABLE pin_attempts (
        staff_id     TEXT PRIMARY KEY,
        failures     INTEGER NOT NULL,
        locked_until TEXT
    ) STRICT;",
    // 6: a pump's events by serial and record number: the core looks one up
    // when a pump resends (de-duplication), on its only async thread.
    "CREATE INDEX events_pump_record ON events(
        json_extract(record, '$.pump_serial'),
        CAST(json_extract(record, '$.pump_record') AS INTEGER)
    ) WHERE type IN ('delivery', 'alarm');",
    // 7: a practice data folder (one row, for good): every record appended
    // to it is marked practice, whoever appends it.
    "CREATE TABLE practice (
        id    INTEGER PRIMARY KEY CHECK (id = 1),
        since TEXT NOT NULL
    ) STRICT;",
    // 8: the EHR outbox (documentation out, IHE PCD-01 and PCD-10): how far
    // the EHR has acknowledged the log (no row until the sender first
    // starts), and its connection as last seen.
    "CREATE TABLE ehr_outbox (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        acked_seq INTEGER NOT NULL,
        acked_at  TEXT,
        messages  INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE ehr_link (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        destination TEXT NOT NULL,
        state       TEXT NOT NULL,
        since       TEXT NOT NULL,
        detail      TEXT
    ) STRICT;",
    // 9: what changed against the active library, kept with the audit
    // rows of an import (verified) and an activation (JSON, `library::diff`).
    "ALTER TABLE library_audit ADD COLUMN diff TEXT;",
];

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file fails its integrity check (or is not a database).
    #[error(
        "{path} is damaged ({detail}); it has not been changed. Keep it for investigation, restore a backup or move it aside, then start again"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A newer pumpgw wrote it.
    #[error(
        "{path} has schema version {found}, newer than this pumpgw knows ({known}); it has not been changed"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// Any other SQLite error (disk full, I/O error, locked...).
    #[error("database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
}

/// An open, checked, migrated store.
#[derive(Debug)]
pub struct Store {
    /// The connection.
    pub conn: Connection,
    /// The file.
    pub path: PathBuf,
}

impl Store {
    /// The database file inside a data directory.
    pub fn file_in(data_dir: &Path) -> PathBuf {
        data_dir.join("pumpgw.sqlite")
    }

    /// Opens (creating if absent) for reading and writing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )
    }

    /// Opens an existing store read-only (for `events` commands that must
    /// not change anything).
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    /// Another connection to a store this process has just opened with
    /// [`Store::open`] (checked and migrated): the integrity check, a full
    /// read of the file, is not repeated for every connection.
    pub fn open_another(opened: &Store, read_only: bool) -> Result<Store, StoreError> {
        let path = &opened.path;
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        tune(&conn).map_err(sql)?;
        Ok(Store {
            conn,
            path: path.clone(),
        })
    }

    /// Marks this data folder as a practice one, for good (see
    /// [`Store::is_practice`]).
    pub fn mark_practice(&self) -> Result<(), StoreError> {
        let now = crate::store::record::time_text(time::OffsetDateTime::now_utc());
        self.conn
            .execute(
                "INSERT OR IGNORE INTO practice (id, since) VALUES (1, ?1)",
                [now],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Whether this data folder is a practice one: its records are marked.
    pub fn is_practice(&self) -> Result<bool, StoreError> {
        is_practice(&self.conn).map_err(self.err())
    }

    /// The error of a statement on this store.
    pub fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Store, StoreError> {
        let sql = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        // Read-only checks first: a damaged file must stay as it is.
        let check: Result<Vec<String>, rusqlite::Error> = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
        match check {
            Ok(rows) if rows == ["ok"] => {}
            Ok(rows) => return Err(corrupt(rows.join("; "))),
            Err(e) => return Err(corrupt(e.to_string())),
        }
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| corrupt(e.to_string()))?;
        let known = i64::try_from(MIGRATIONS.len()).expect("a handful of migrations");
        if version > known {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                known,
            });
        }
        if flags.contains(OpenFlags::SQLITE_OPEN_READ_ONLY) {
            return Ok(Store {
                conn,
                path: path.to_path_buf(),
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        tune(&conn).map_err(sql)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate(version)?;
        Ok(store)
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        for (i, step) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(from).unwrap_or(0))
        {
            let tx = self.conn.transaction().map_err(sql)?;
            tx.execute_batch(step).map_err(sql)?;
            let version = i64::try_from(i + 1).expect("a handful of migrations");
            tx.pragma_update(None, "user_version", version)
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }
}

/// Settings every connection needs (they are per connection, not per file).
fn tune(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Every commit reaches the disk before it is acknowledged to anyone.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
}

/// Whether the data folder behind `conn` is a practice one.
pub(crate) fn is_practice(conn: &Connection) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM practice)")?
        .query_row([], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_store_is_migrated_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::file_in(dir.path());
        drop(Store::open(&path).unwrap());
        let s = Store::open(&path).unwrap();
        let v: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 9);
        let mode: String = s
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_damaged_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::file_in(dir.path());
        let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &junk).unwrap();
        let e = Store::open(&path).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("has not been changed"));
        assert_eq!(std::fs::read(&path).unwrap(), junk);
        assert!(!dir.path().join("pumpgw.sqlite-wal").exists());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::file_in(dir.path());
        let s = Store::open(&path).unwrap();
        s.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(s);
        let e = Store::open(&path).unwrap_err();
        assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    }
}
