//! What the archive keeps, independent of the database: a record as kept,
//! an anomaly, a gateway's summary, and the [`Backend`] each database
//! implements. The SQL of each is in its own module.

use serde::Serialize;

/// One gateway's log: its site and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Key {
    /// The site (topic level).
    pub site: String,
    /// The gateway id.
    pub gateway: String,
}

/// What the chain needs to know of a kept record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// SHA-256 of its bytes.
    pub hash: [u8; 32],
    /// Its `prev_hash`.
    pub prev_hash: [u8; 32],
}

/// A record to keep, byte for byte as the gateway hashed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Whose.
    pub key: Key,
    /// Its sequence number.
    pub seq: u64,
    /// Its time (RFC 3339 UTC, as in the record).
    pub at: String,
    /// Its type.
    pub kind: String,
    /// Its care area.
    pub care_area: String,
    /// Its pump, if any.
    pub pump: Option<String>,
    /// Hash and previous hash.
    pub link: Link,
    /// The record's bytes.
    pub bytes: Vec<u8>,
}

/// What kind of anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Records before this one were never received.
    Gap,
    /// The record does not chain to its neighbour: not kept.
    Break,
    /// A record already kept arrived again with other bytes: not kept.
    Conflict,
    /// Not a record, or a batch that does not read: not kept.
    Malformed,
}

impl AnomalyKind {
    /// The word kept in the database and shown.
    pub fn word(self) -> &'static str {
        match self {
            AnomalyKind::Gap => "gap",
            AnomalyKind::Break => "break",
            AnomalyKind::Conflict => "conflict",
            AnomalyKind::Malformed => "malformed",
        }
    }

    /// The kind a word names.
    pub fn from_word(word: &str) -> Option<AnomalyKind> {
        [
            AnomalyKind::Gap,
            AnomalyKind::Break,
            AnomalyKind::Conflict,
            AnomalyKind::Malformed,
        ]
        .into_iter()
        .find(|k| k.word() == word)
    }
}

/// Something the archive noticed and did not store silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// Whose log.
    pub key: Key,
    /// The record it is about (for a gap: the first one missing).
    pub seq: Option<u64>,
    /// What.
    pub kind: AnomalyKind,
    /// In words.
    pub detail: String,
    /// When the archive noticed (RFC 3339 UTC).
    pub noticed_at: String,
    /// The bytes not kept (a break, a conflict, a malformed record).
    #[serde(skip)]
    pub bytes: Option<Vec<u8>>,
}

/// One gateway's log in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewaySummary {
    /// Whose.
    pub key: Key,
    /// Records kept.
    pub records: u64,
    /// The highest sequence number kept.
    pub last_seq: u64,
    /// Its time.
    pub last_at: String,
    /// Sequence numbers from 1 to `last_seq` not kept.
    pub missing: u64,
    /// Anomalies recorded.
    pub anomalies: u64,
}

/// Why the archive cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed.
    #[error("PostgreSQL {target}: {source}")]
    Postgres {
        /// Where (the URL without its password).
        target: String,
        /// Why.
        source: ::postgres::Error,
    },
    /// The archive was made by a newer pumpgw.
    #[error("{0}: the archive's schema version {1} is newer than this pumpgw knows ({2})")]
    TooNew(String, i64, i64),
}

/// A database the archive keeps records in. Implementations run on the
/// archive's writer thread; every method is one statement or one
/// transaction.
pub trait Backend: Send {
    /// The database, for messages (no password).
    fn describe(&self) -> String;
    /// Every gateway's highest sequence number kept and its hash.
    fn heads(&mut self) -> Result<Vec<(Key, u64, [u8; 32])>, ArchiveError>;
    /// `key`'s highest sequence number kept and its hash, if any.
    fn head(&mut self, key: &Key) -> Result<Option<(u64, [u8; 32])>, ArchiveError>;
    /// The kept record `seq` of `key`, if any.
    fn link(&mut self, key: &Key, seq: u64) -> Result<Option<Link>, ArchiveError>;
    /// Keeps records and anomalies, all or nothing.
    fn write(&mut self, records: &[NewRecord], anomalies: &[Anomaly]) -> Result<(), ArchiveError>;
    /// Every gateway's summary, by site and gateway.
    fn summary(&mut self) -> Result<Vec<GatewaySummary>, ArchiveError>;
    /// The ranges of sequence numbers missing below `key`'s highest.
    fn gaps(&mut self, key: &Key) -> Result<Vec<(u64, u64)>, ArchiveError>;
    /// The anomalies, oldest first.
    fn anomalies(&mut self) -> Result<Vec<Anomaly>, ArchiveError>;
    /// Records kept in all, cheaply.
    fn count(&mut self) -> Result<u64, ArchiveError>;
    /// Calls `visit` with each kept record's bytes of `site` (all if none)
    /// whose time is in `[from, to)` (text comparison of RFC 3339 UTC
    /// times) and, unless `only` is empty, of one of its types, by gateway
    /// then sequence number.
    fn each_record(
        &mut self,
        site: Option<&str>,
        period: (&str, &str),
        only: &[&str],
        visit: &mut dyn FnMut(&Key, &[u8]),
    ) -> Result<(), ArchiveError>;
}

/// A 32-byte hash read back from a database (zeros if it is not 32 bytes,
/// which no longer matches anything).
pub(super) fn hash32(v: &[u8]) -> [u8; 32] {
    let mut h = [0u8; 32];
    if v.len() == 32 {
        h.copy_from_slice(v);
    }
    h
}

/// A sequence number as the databases store it (signed 64 bits).
pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count or sequence number back (never negative).
pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Every gateway's summary: the same SQL on both databases (no
/// parameters): site, gateway, records, last sequence number, its time,
/// anomalies.
pub(super) const SUMMARY: &str = "SELECT g.site, g.gateway, COALESCE(r.n, 0), COALESCE(r.last, 0),
    COALESCE((SELECT at FROM records x WHERE x.site = g.site AND x.gateway = g.gateway AND x.seq = r.last), ''),
    (SELECT COUNT(*) FROM anomalies a WHERE a.site = g.site AND a.gateway = g.gateway)
    FROM (SELECT site, gateway FROM records UNION SELECT site, gateway FROM anomalies) g
    LEFT JOIN (SELECT site, gateway, COUNT(*) AS n, MAX(seq) AS last FROM records GROUP BY site, gateway) r
      ON r.site = g.site AND r.gateway = g.gateway
    ORDER BY g.site, g.gateway";
