//! Pumps as the daemon sees them: one session task per serial port, a
//! protocol driver behind it, and driver-neutral events out of it.
//!
//! - [`session`]: open, serve, reopen with backoff; one task per port;
//! - [`pumplink`]: the driver for pumpgw's own protocol ([`crate::link`]);
//! - [`no_drain`]: port writes that never wait for the UART (`tcdrain`);
//! - [`event`]: what sessions report and how programme requests are
//!   answered, the boundary every consumer codes against.

pub mod event;
pub mod no_drain;
pub mod pumplink;
pub mod session;

pub use event::{Decision, DenyReason, Envelope, Identity, PumpEvent, PumpId};
pub use session::{Backoff, DriverKind, GatewayInfo, PortSpec, SessionContext, run_port};
