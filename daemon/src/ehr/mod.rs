//! Hospital integration over HL7 v2 (IHE Patient Care Device, issue 17):
//! orders in (PCD-03), documentation out (PCD-01, PCD-10). So far:
//! [`er7`] reads and writes HL7 v2 messages, [`mllp`] frames them on TCP,
//! [`order`] reads a PCD-03 order into exact quantities, [`answer`]
//! builds the gateway's `ACK^O15` and `RRG^O16`, [`listener`] takes
//! orders on `[ehr] listen` and answers them, [`intake`] is what the
//! gateway's core checks before an order is open for its pump, [`tls`]
//! the listener's TLS with client certificates, [`document`] the log's
//! infusion events as PCD-10 and PCD-01 messages, [`sender`] sends them
//! to `[ehr] send_to` through the log's EHR outbox, [`fhir`] the log as a
//! FHIR R4 Bundle.
//! `docs/interop.md` says what is supported.

pub mod answer;
pub mod document;
pub mod er7;
pub mod fhir;
pub mod intake;
pub mod listener;
pub mod mllp;
pub mod order;
pub mod sender;
pub mod tls;
