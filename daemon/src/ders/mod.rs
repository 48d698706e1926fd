//! The independent dose-error-reduction cross-check (DERS).
//!
//! `programme` is the question (what the pump wants to give, with its own
//! arithmetic, and what was given recently), `check` recomputes and compares,
//! `verdict` is the answer with every reason. The rules are in `docs/ders.md`.

mod check;
mod programme;
mod verdict;

pub use check::{FLOW_TOLERANCE_UL_PER_H, TOLERANCE_PERCENT, VOLUME_TOLERANCE_UL, check};
pub use programme::{Container, Delivered, Delivery, History, HistoryFile, Programme};
pub use verdict::{Code, Outcome, Reason, Verdict};
