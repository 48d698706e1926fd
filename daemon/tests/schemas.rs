//! The published JSON Schemas agree with what the code reads: every example
//! validates and parses; a document the code refuses for its structure, the
//! schema refuses too.

use std::path::{Path, PathBuf};

use pumpgw::ders::{HistoryFile, Programme};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("daemon/ is in the repository")
        .to_path_buf()
}

fn load(rel: &str) -> Value {
    let bytes = std::fs::read(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn validator(rel: &str) -> jsonschema::Validator {
    jsonschema::draft202012::new(&load(rel)).expect("schema compiles")
}

fn examples(prefix: &str) -> Vec<(String, Value)> {
    let dir = root().join("config/examples");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("config/examples")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && Path::new(n).extension().is_some_and(|e| e == "json"))
        .map(|n| {
            let v = load(&format!("config/examples/{n}"));
            (n, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn programme_examples_validate_and_parse() {
    let schema = validator("config/schema/programme-v1.schema.json");
    let all = examples("programme-");
    assert!(all.len() >= 2);
    for (name, v) in all {
        let errors: Vec<String> = schema.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        serde_json::from_value::<Programme>(v).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn history_examples_validate_and_parse() {
    let schema = validator("config/schema/history-v1.schema.json");
    for (name, v) in examples("history-") {
        assert!(schema.is_valid(&v), "{name}");
        serde_json::from_value::<HistoryFile>(v).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn structural_errors_are_refused_by_both() {
    let schema = validator("config/schema/programme-v1.schema.json");
    let good = load("config/examples/programme-fentanyl-infusion.json");
    let mut unknown = good.clone();
    unknown["colour"] = json!("red");
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .expect("object")
        .remove("library_version");
    let mut bad_kind = good.clone();
    bad_kind["delivery"]["kind"] = json!("loading_dose");
    let mut extra_in_delivery = good;
    extra_in_delivery["delivery"]["dose"] = json!("25 micrograms");
    for (what, v) in [
        ("unknown field", unknown),
        ("missing field", missing),
        ("unknown delivery kind", bad_kind),
        ("bolus field in a continuous delivery", extra_in_delivery),
    ] {
        assert!(!schema.is_valid(&v), "schema accepted {what}");
        assert!(
            serde_json::from_value::<Programme>(v).is_err(),
            "code accepted {what}"
        );
    }
}
