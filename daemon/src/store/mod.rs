//! The durable store: a SQLite database holding the tamper-evident event
//! log, the library archive with its audit trail, and the MQTT outbox
//! cursor.
//!
//! - [`record`]: the open record format and its hash chain;
//! - [`db`]: opening (WAL, `synchronous=FULL`, integrity check) and
//!   migrations;
//! - [`log`]: appending in batches, reading, verifying;
//! - [`library`]: the library archive, its states and audit trail;
//! - [`outbox`]: what the broker has acknowledged, and batches of what it
//!   has not;
//! - [`ehr_outbox`]: what the EHR has acknowledged of the log (documentation
//!   out), and its connection;
//! - [`summary`]: the daemon and each pump as the log tells them now
//!   (`pumpgwd status`);
//! - [`writer`]: the one writer thread, with group commit.

pub mod checkpoint;
pub mod db;
pub mod ehr_outbox;
pub mod library;
pub mod log;
pub mod outbox;
pub mod record;
pub mod summary;
pub mod writer;

pub use db::{Store, StoreError};
pub use record::{Context, Event, Record};
pub use writer::{WriteError, Writer};
