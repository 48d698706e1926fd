//! pumpgw: the bedside gateway between smart infusion pumps and the hospital.
//!
//! This crate holds the domain and the services of the daemon `pumpgwd`:
//!
//! - [`units`]: clinical quantities with exact arithmetic and their parser;
//! - [`format`]: the one formatting module every surface uses;
//! - [`library`]: the signed drug-library format, its loader and its lint;
//! - [`ders`]: the independent dose-error-reduction cross-check.
//!
//! `docs/architecture.md` draws how they fit together with the parts still
//! to come (pump link, store, MQTT sync, terminal).

pub mod ders;
pub mod format;
pub mod gateway;
pub mod library;
pub mod link;
pub mod pump;
pub mod sim;
pub mod units;
