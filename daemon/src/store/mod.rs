//! The durable store: a SQLite database holding the tamper-evident event
//! log (and, later, the library archive and its audit trail).
//!
//! - [`record`]: the open record format and its hash chain;
//! - [`db`]: opening (WAL, `synchronous=FULL`, integrity check) and
//!   migrations;
//! - [`log`]: appending in batches, reading, verifying.

pub mod db;
pub mod log;
pub mod record;

pub use db::{Store, StoreError};
pub use record::{Context, Event, Record};
