//! The independent dose-error-reduction cross-check (DERS).
//!
//! `programme` is the question (what the pump wants to give, with its own
//! arithmetic), `exposure` what the bed has had, has running and was
//! promised (for cumulative limits), `check` recomputes and compares,
//! `order` compares with the prescriber's order,
//! `verdict` is the answer with every reason. The rules are in `docs/ders.md`.

mod check;
pub mod exposure;
pub mod order;
mod programme;
mod verdict;

pub use check::{TOLERANCE_PERCENT, check, exposure_request, flows};
pub use exposure::{Delivered, History, Pending, Running};
pub use order::{Give, ORDER_TOLERANCE_PERCENT, Ordered, against_order};
pub use programme::{Container, Delivery, HistoryFile, Programme};
pub use verdict::{Code, Outcome, Reason, Verdict};
