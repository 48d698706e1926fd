//! The bedside terminal's side of the daemon: the versioned terminal
//! protocol ([`protocol`], `docs/terminal-protocol.md`) and the Unix-socket
//! service that speaks it ([`service`]), and the confirmations a person
//! gives there ([`confirm`], bound to the programme and the screen, once,
//! in time). Confirmations are not wired to the socket and the pump link
//! yet; until they are, a programme that needs a person is denied
//! `CONFIRMATION_UNAVAILABLE`.

pub mod confirm;
pub mod protocol;
pub mod service;

pub use service::{Service, ServiceError};
