//! The bedside terminal's side of the daemon: the versioned terminal
//! protocol ([`protocol`], `docs/terminal-protocol.md`) and the Unix-socket
//! service that speaks it ([`service`]). Confirmations (blind
//! concentration re-entry, bolus PINs, overrides) come next; until then a
//! programme that needs a person is denied `CONFIRMATION_UNAVAILABLE`.

pub mod protocol;
pub mod service;

pub use service::{Service, ServiceError};
