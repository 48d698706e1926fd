//! Reading a drug library: JSON syntax, the published JSON Schema, then the
//! typed model. Every problem becomes a [`Finding`] with the JSON path it was
//! found at, so the pharmacist sees all of them at once rather than one per
//! attempt.

use std::path::Path;
use std::sync::LazyLock;

use serde_json::Value;

use super::lint::{Finding, Severity, lint_model};
use super::model::Library;

/// The published schema of format version 1, built into the binary so the
/// gateway checks exactly what the repository documents.
pub const SCHEMA_V1_JSON: &str = include_str!("../../../config/schema/drug-library-v1.schema.json");
/// The published schema of format version 2 (the current one).
pub const SCHEMA_JSON: &str = include_str!("../../../config/schema/drug-library-v2.schema.json");

fn validator(schema: &str) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(schema).expect("the embedded schema is valid JSON (unit test)");
    jsonschema::draft202012::new(&schema).expect("the embedded schema compiles (unit test)")
}

static VALIDATOR_V1: LazyLock<jsonschema::Validator> = LazyLock::new(|| validator(SCHEMA_V1_JSON));
static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| validator(SCHEMA_JSON));

/// Why a library could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The library has errors (syntax, schema or lint); all are listed.
    #[error("the drug library has {} error(s); first: {}", .0.iter().filter(|f| f.severity == Severity::Error).count(), first_error(.0))]
    Invalid(Vec<Finding>),
}

fn first_error(findings: &[Finding]) -> String {
    findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .map_or_else(String::new, ToString::to_string)
}

/// Everything known about a library file: its findings and, when it could be
/// read into the model, the library itself.
#[derive(Debug)]
pub struct Checked {
    /// The library, if syntax and schema allowed reading it.
    pub library: Option<Library>,
    /// Every finding, errors first, in document order.
    pub findings: Vec<Finding>,
}

impl Checked {
    /// True when no finding is an error.
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

/// Check library bytes: syntax, schema, model, lint.
pub fn check(bytes: &[u8]) -> Checked {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Checked {
                library: None,
                findings: vec![Finding::error(
                    "json-syntax",
                    "$",
                    format!(
                        "not valid JSON at line {}, column {}: {e}",
                        e.line(),
                        e.column()
                    ),
                )],
            };
        }
    };
    let mut findings = schema_findings(&value);
    if !findings.is_empty() {
        return Checked {
            library: None,
            findings,
        };
    }
    let library: Library = match serde_path_to_error::deserialize(&value) {
        Ok(l) => l,
        Err(e) => {
            let path = json_path_from_serde(&e.path().to_string());
            findings.push(Finding::error("schema", &path, e.inner().to_string()));
            return Checked {
                library: None,
                findings,
            };
        }
    };
    findings.extend(lint_model(&library));
    findings.sort_by_key(|f| f.severity != Severity::Error);
    Checked {
        library: Some(library),
        findings,
    }
}

/// Load a library for use: refused if any finding is an error. Warnings are
/// returned with it.
pub fn parse(bytes: &[u8]) -> Result<(Library, Vec<Finding>), LoadError> {
    let checked = check(bytes);
    match checked.library {
        Some(library) if checked.is_clean() => Ok((library, checked.findings)),
        _ => Err(LoadError::Invalid(checked.findings)),
    }
}

/// Read and [`parse`] a library file.
pub fn load(path: &Path) -> Result<(Library, Vec<Finding>), LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&bytes)
}

/// Findings from the JSON Schema alone.
pub fn schema_findings(value: &Value) -> Vec<Finding> {
    // A file says its format version; version 1 files are still read (as
    // libraries that do not use orders), anything else against version 2.
    let validator = if value.get("format_version").and_then(Value::as_u64) == Some(1) {
        &*VALIDATOR_V1
    } else {
        &*VALIDATOR
    };
    validator
        .iter_errors(value)
        .map(|e| {
            Finding::error(
                "schema",
                &json_path_from_pointer(e.instance_path().as_str()),
                friendly(&e),
            )
        })
        .collect()
}

/// Schema messages a pharmacist can act on: say what to write, not which
/// regular expression failed.
fn friendly(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind;
    let value = e.instance().to_string();
    match e.kind() {
        ValidationErrorKind::Pattern { pattern } if pattern.starts_with("^(0|[1-9]") => format!(
            "{value} is not a plain decimal: write digits with an optional point, such as 2500 or 0.5 (no thousands separators, a leading zero, at most 9 decimals)"
        ),
        ValidationErrorKind::Pattern { pattern } if pattern.contains("(/kg)?/(min|h)") => format!(
            "{value} is not a dose unit: write an amount unit (nanograms, micrograms, mg, g, units, mmol), optionally /kg, then /min or /h (e.g. micrograms/kg/min), or mL/h"
        ),
        ValidationErrorKind::Pattern { pattern } if pattern.contains("(/kg)?$") => format!(
            "{value} is not a bolus dose unit: write an amount unit (nanograms, micrograms, mg, g, units, mmol), optionally followed by /kg"
        ),
        ValidationErrorKind::Enum { options } => format!(
            "{value} is not allowed here; write one of: {}",
            options
                .as_array()
                .map(|o| o
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ),
        _ => e.to_string(),
    }
}

/// `/care_areas/0/drugs/1` to `$.care_areas[0].drugs[1]`.
pub fn json_path_from_pointer(pointer: &str) -> String {
    let mut out = String::from("$");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

fn json_path_from_serde(path: &str) -> String {
    if path == "." || path.is_empty() {
        "$".to_owned()
    } else {
        format!("$.{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schemas_compile() {
        assert!(VALIDATOR_V1.is_valid(&serde_json::json!({
            "format": "pumpgw-drug-library", "format_version": 1,
            "library_id": "x", "name": "x", "version": 1,
            "created_at": "2026-01-01T00:00:00Z", "author": "x",
            "care_areas": [{"id": "a", "name": "A", "drugs": [{
                "id": "d", "generic_name": "d", "display_name": "d",
                "concentrations": [{"amount": "1", "unit": "mg", "volume_ml": "1"}]
            }]}]
        })));
        assert!(VALIDATOR.is_valid(&serde_json::json!({
            "format": "pumpgw-drug-library", "format_version": 2,
            "library_id": "x", "name": "x", "version": 1,
            "created_at": "2026-01-01T00:00:00Z", "author": "x",
            "care_areas": [{"id": "a", "name": "A", "orders": "optional", "drugs": [{
                "id": "d", "generic_name": "d", "display_name": "d",
                "concentrations": [{"amount": "1", "unit": "mg", "volume_ml": "1"}]
            }]}]
        })));
    }

    #[test]
    fn pointers_become_json_paths() {
        assert_eq!(
            json_path_from_pointer("/care_areas/0/drugs/12/bolus"),
            "$.care_areas[0].drugs[12].bolus"
        );
        assert_eq!(json_path_from_pointer(""), "$");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let c = check(b"{\n  \"format\": \n}");
        assert!(!c.is_clean());
        assert!(
            c.findings[0].message.contains("line 3"),
            "{}",
            c.findings[0]
        );
    }
}
