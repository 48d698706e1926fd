//! The drug library: its format (version 2; version 1 still read), loading with JSON-path errors,
//! the lint a pharmacist runs before signing, and what changed between
//! two versions (`diff`), and what a candidate would have decided about
//! logged programmes (`replay`), and the library as a spreadsheet (`sheet`).
//!
//! `signature` holds pharmacy signing and verification; import,
//! activation and the audit trail come next.

mod active;
mod consistency;
pub mod diff;
pub mod evidence;
mod lint;
mod load;
mod model;
pub mod replay;
pub mod sheet;
pub mod signature;

pub use active::ActiveLibrary;
pub use lint::{Finding, Severity, lint_model};
pub use load::{
    Checked, LoadError, SCHEMA_JSON, SCHEMA_V1_JSON, check, json_path_from_pointer, load, parse,
    schema_findings,
};
pub use model::{
    BolusLimits, CareArea, ContinuousLimits, CumulativeLimit, CustomConcentration, Drug,
    FORMAT_NAME, FORMAT_VERSION, FORMAT_VERSIONS_READ, Library, LibraryConcentration,
    MAX_WINDOW_MINUTES, OrderPolicy, Policy, Range, Role,
};
