//! The bedside terminal's side of the daemon: the versioned terminal
//! protocol ([`protocol`], `docs/terminal-protocol.md`), the Unix-socket
//! service that speaks it ([`service`]), the confirmations a person gives
//! there ([`confirm`]: bound to the programme and the screen, once, in
//! time), the screens they see ([`screen`]) and the commands the service
//! passes to the core ([`command`]).

pub mod command;
pub mod confirm;
pub mod protocol;
pub mod screen;
pub mod service;

pub use service::{Service, ServiceError};
