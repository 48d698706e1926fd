//! What the terminal service asks the core about open confirmations (the
//! core owns the board, so a confirmation is consumed exactly once whatever
//! the number of terminals) and what the core answers.

use tokio::sync::oneshot;

use super::confirm::Refused;
use crate::staff::roster::Member;
use crate::units::Concentration;

/// Commands queued from the terminal service to the core.
pub const QUEUE: usize = 16;

/// One request from a terminal, PINs already checked.
#[derive(Debug)]
pub enum Command {
    /// People confirm what the screen showed.
    Confirm {
        /// The confirmation's id.
        id: u64,
        /// The hash of the screen they saw.
        screen_hash: [u8; 32],
        /// Who signed, in order, each PIN accepted.
        signers: Vec<Member>,
        /// The label typed, for a container.
        concentration: Option<Concentration>,
        /// The reason chosen, for an override.
        reason: Option<String>,
        /// The terminal's name, for the log.
        terminal: String,
        /// The core's answer.
        done: oneshot::Sender<Outcome>,
    },
    /// A person declines: the programme is denied.
    Decline {
        /// The confirmation's id.
        id: u64,
        /// Why, if they said.
        reason: Option<String>,
        /// The terminal's name, for the log.
        terminal: String,
        /// The core's answer.
        done: oneshot::Sender<Outcome>,
    },
}

/// What came of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is confirmed: the pump has its token.
    Authorised,
    /// This stage is confirmed; the next one is open under this id.
    NextStage(u64),
    /// Not accepted (see [`Refused::closes`]).
    Refused(Refused),
    /// Declined: the pump is told no.
    Declined,
    /// Not accepted, and nothing was changed, because the decision could
    /// not be logged.
    NotLogged,
    /// Confirmed, but the programme is denied all the same (the pump's
    /// session ended, or the library changed): why, in words.
    Closed(String),
}
