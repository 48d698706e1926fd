//! The durable store: a SQLite database holding the tamper-evident event
//! log (and, later, the library archive and its audit trail).
//!
//! - [`record`]: the open record format and its hash chain;
//! - [`db`]: opening (WAL, `synchronous=FULL`, integrity check) and
//!   migrations;
//! - [`log`]: appending in batches, reading, verifying;
//! - [`library`]: the library archive, its states and audit trail;
//! - [`writer`]: the one writer thread, with group commit.

pub mod db;
pub mod library;
pub mod log;
pub mod record;
pub mod writer;

pub use db::{Store, StoreError};
pub use record::{Context, Event, Record};
pub use writer::{WriteError, Writer};
