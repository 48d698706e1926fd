//! The CQI report (`pumpgwd report`): what the drug library caught over a
//! period, for the medication-safety team and the pharmacist revising it,
//! from the fleet archive or from gateways' exported logs.
//!
//! It owns: the figures and their definitions ([`figures`]; every one is
//! defined in `docs/report.md`), computed in one pass over the records in
//! each gateway's order, so a month of a hospital fits in little memory;
//! and the self-contained HTML page with inline SVG plots ([`html`]).

pub mod figures;
pub mod html;

pub use figures::{Figures, Scope, Tally};
