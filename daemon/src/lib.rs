//! pumpgw: the bedside gateway between smart infusion pumps and the hospital.
//!
//! This crate holds the domain and the services of the daemon `pumpgwd`:
//!
//! - [`archive`]: the fleet archive: every gateway's log over MQTT, its
//!   hash chain checked as it is kept (SQLite or PostgreSQL);
//! - [`cqi`]: the CQI report: what the library caught over a period, as
//!   figures, JSON and a self-contained HTML page;
//! - [`units`]: clinical quantities with exact arithmetic and their parser;
//! - [`format`](mod@format): the one formatting module every surface uses;
//! - [`library`]: the signed drug-library format, its loader and its lint;
//! - [`ders`]: the independent dose-error-reduction cross-check;
//! - [`link`]: the pump link, pumpgw's serial protocol (`docs/protocol.md`);
//! - [`pump`]: one session task per serial port and its protocol driver;
//! - [`gateway`]: the daemon as a whole: config, core task, authorisation;
//! - [`store`]: the durable event log, library archive and MQTT outbox;
//! - [`sync`]: MQTT: the log to the broker, status, libraries from pharmacy;
//! - [`ehr`]: hospital integration over HL7 v2 (IHE PCD): the message layer;
//! - [`staff`]: the staff file, PINs, who may confirm what, lockouts;
//! - [`terminal`]: the terminal protocol, its Unix-socket service, the
//!   confirmation board and its screens;
//! - [`report`]: an error's message and causes, each said once;
//! - [`sim`]: a simulated pump controller (`pump-sim`, the demo, the tests).
//!
//! `docs/architecture.md` draws how they fit together; the touchscreen is
//! its own crate (`ui/`, `pumpgw-terminal`).

pub mod archive;
pub mod cqi;
pub mod ders;
pub mod ehr;
pub mod format;
pub mod gateway;
pub mod library;
pub mod link;
pub mod logging;
pub mod pump;
pub mod report;
pub mod sim;
pub mod staff;
pub mod store;
pub mod sync;
pub mod terminal;
pub mod units;
