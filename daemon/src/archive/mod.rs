//! The fleet archive (`pumpgwd archive`): every gateway's event log, as it
//! arrives over MQTT, kept in one database for the medication-safety team
//! and the report.
//!
//! It owns: the archive's schema on its two backends ([`sqlite`], the
//! default, and [`postgres`] for a hospital with hundreds of gateways);
//! the verification of each gateway's hash chain record by record as it is
//! kept ([`ingest`]): a gap or a break is recorded as an anomaly and
//! reported, never stored silently; and the subscriber that takes batches
//! from the broker and acknowledges each only once it is committed
//! ([`subscriber`]).

pub mod backend;
pub mod ingest;
pub mod postgres;
pub mod sqlite;
pub mod subscriber;

pub use backend::{
    Anomaly, AnomalyKind, ArchiveError, Backend, GatewaySummary, Key, Link, NewRecord,
};
pub use ingest::{Ingest, Outcome};

/// Opens the archive `database` names: a `postgres://` or `postgresql://`
/// URL, or else the path of an SQLite file (created if missing). The
/// schema is brought up to date.
pub fn open(database: &str) -> Result<Box<dyn Backend>, ArchiveError> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        Ok(Box::new(postgres::Postgres::open(database)?))
    } else {
        Ok(Box::new(sqlite::Sqlite::open(std::path::Path::new(
            database,
        ))?))
    }
}
