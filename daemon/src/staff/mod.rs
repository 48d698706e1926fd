//! Staff who confirm at the bedside terminal: the staff file with PINs as
//! PBKDF2 hashes ([`roster`], [`pin`]), who may confirm what ([`policy`]),
//! and PIN checks with their lockout and log ([`attempts`]).
//! `docs/staff.md` describes them for the people who run a gateway.

pub mod attempts;
pub mod pin;
pub mod policy;
pub mod roster;

pub use attempts::{Attempt, Lockout, PinOutcome, check_pin};
pub use roster::{Member, Roster, RosterError};
