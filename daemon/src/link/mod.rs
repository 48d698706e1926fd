//! The pump link: pumpgw's serial protocol between a gateway and a pump
//! controller, specified in `docs/protocol.md`.
//!
//! - [`frame`]: header, CRC-32C, COBS stuffing and the 0x00 delimiter;
//! - [`codec`]: the `tokio_util` codec over a byte stream, with counters;
//! - [`message`]: the message catalogue (CBOR payloads);
//! - [`endpoint`]: acknowledgement, retransmission, duplicates, heartbeats
//!   and supervision, without I/O.
//!
//! Both the gateway ([`crate::pump`]) and the simulator ([`crate::sim`]) use
//! these same pieces, so what the simulator proves about the wire holds for
//! the gateway.

pub mod codec;
pub mod endpoint;
pub mod frame;
pub mod message;

pub use codec::{LinkCodec, LinkCounters, LinkStats, Packet};
pub use endpoint::{
    Endpoint, LinkDown, MAX_WINDOW, PROTOCOL_VERSION, Received, SUPPORTED_VERSIONS, Timing,
    seq_after,
};
pub use frame::{Frame, Header};
pub use message::{Message, MessageType, sha256};
