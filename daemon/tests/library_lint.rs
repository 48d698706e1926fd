//! Each lint rule: break the example library one way and expect exactly that
//! finding, with its code and JSON path.

use pumpgw::library::{self, Severity};
use serde_json::{Value, json};

fn example() -> Value {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/drug-library.example.json"
    ))
    .expect("example library");
    serde_json::from_slice(&bytes).expect("example is JSON")
}

/// adult-icu fentanyl
fn fentanyl(v: &mut Value) -> &mut Value {
    &mut v["care_areas"][0]["drugs"][0]
}

fn findings(v: &Value) -> Vec<(Severity, String, String)> {
    let c = library::check(&serde_json::to_vec(v).expect("serialises"));
    c.findings
        .into_iter()
        .map(|f| (f.severity, f.code.to_owned(), f.path))
        .collect()
}

fn expect_error(v: &Value, code: &str, path: &str) {
    let f = findings(v);
    assert!(
        f.iter()
            .any(|(s, c, p)| *s == Severity::Error && c == code && p == path),
        "expected error {code} at {path}, got {f:?}"
    );
    assert!(library::parse(&serde_json::to_vec(v).expect("serialises")).is_err());
}

const F: &str = "$.care_areas[0].drugs[0]";

#[test]
fn the_example_library_is_clean() {
    assert_eq!(findings(&example()), vec![]);
}

#[test]
fn schema_errors_name_the_path() {
    let mut v = example();
    fentanyl(&mut v)["bolus"]["hard_max"] = json!(100);
    expect_error(&v, "schema", &format!("{F}.bolus.hard_max"));
    let mut v = example();
    fentanyl(&mut v)["colour"] = json!("red");
    expect_error(&v, "schema", F);
    let mut v = example();
    fentanyl(&mut v)["continuous"]["dose_unit"] = json!("mcg/h");
    expect_error(&v, "schema", &format!("{F}.continuous.dose_unit"));
    let mut v = example();
    fentanyl(&mut v)["concentrations"][0]["amount"] = json!("2,500");
    expect_error(&v, "schema", &format!("{F}.concentrations[0].amount"));
}

#[test]
fn soft_outside_hard_and_min_above_max() {
    let mut v = example();
    fentanyl(&mut v)["continuous"]["soft_max"] = json!("450");
    expect_error(&v, "soft-outside-hard", &format!("{F}.continuous.soft_max"));
    let mut v = example();
    fentanyl(&mut v)["bolus"]["soft_max"] = json!("100.000000001");
    expect_error(&v, "soft-outside-hard", &format!("{F}.bolus.soft_max"));
    let mut v = example();
    v["care_areas"][0]["patient_weight_kg"]["min"] = json!("300");
    expect_error(&v, "min-above-max", "$.care_areas[0].patient_weight_kg.min");
    // On the limit is fine: soft max equal to hard max.
    let mut v = example();
    fentanyl(&mut v)["continuous"]["soft_max"] = json!("400");
    assert_eq!(findings(&v), vec![]);
}

#[test]
fn unit_mismatches() {
    let mut v = example();
    fentanyl(&mut v)["continuous"]["dose_unit"] = json!("units/h");
    expect_error(&v, "unit-mismatch", &format!("{F}.continuous.dose_unit"));
    let mut v = example();
    fentanyl(&mut v)["bolus"]["dose_unit"] = json!("mmol");
    expect_error(&v, "unit-mismatch", &format!("{F}.bolus.dose_unit"));
    let mut v = example();
    fentanyl(&mut v)["cumulative"]["unit"] = json!("units");
    expect_error(&v, "unit-mismatch", &format!("{F}.cumulative.unit"));
}

#[test]
fn duplicates() {
    let mut v = example();
    let copy = fentanyl(&mut v).clone();
    v["care_areas"][0]["drugs"]
        .as_array_mut()
        .expect("drugs")
        .push(copy);
    let f = findings(&v);
    assert!(f.iter().any(|(_, c, _)| c == "duplicate-id"), "{f:?}");
    assert!(f.iter().any(|(_, c, _)| c == "duplicate-name"), "{f:?}");
    let mut v = example();
    v["care_areas"][1]["id"] = json!("adult-icu");
    expect_error(&v, "duplicate-id", "$.care_areas[1].id");
}

#[test]
fn high_alert_drugs_need_hard_limits() {
    let mut v = example();
    fentanyl(&mut v)["continuous"]
        .as_object_mut()
        .expect("object")
        .remove("hard_max");
    expect_error(
        &v,
        "high-alert-unlimited",
        &format!("{F}.continuous.hard_max"),
    );
    let mut v = example();
    fentanyl(&mut v)["bolus"]
        .as_object_mut()
        .expect("object")
        .remove("hard_max");
    expect_error(&v, "high-alert-unlimited", &format!("{F}.bolus.hard_max"));
    let mut v = example();
    let b = fentanyl(&mut v)["bolus"].as_object_mut().expect("object");
    b.remove("max_share_of_remaining_percent");
    expect_error(
        &v,
        "high-alert-unlimited",
        &format!("{F}.bolus.max_share_of_remaining_percent"),
    );
}

#[test]
fn concentration_outside_its_own_range_and_tall_man() {
    let mut v = example();
    // paed-icu morphine has a custom range 0.01-1 mg/mL; list 100 mg in 50 mL.
    let morphine = &mut v["care_areas"][1]["drugs"][1];
    assert_eq!(morphine["id"], "morphine");
    morphine["concentrations"][0]["amount"] = json!("100");
    expect_error(
        &v,
        "concentration-outside-range",
        "$.care_areas[1].drugs[1].concentrations[0]",
    );
    let mut v = example();
    fentanyl(&mut v)["display_name"] = json!("fentaNIL");
    expect_error(&v, "tall-man-mismatch", &format!("{F}.display_name"));
}

#[test]
fn share_over_100_percent_and_warnings() {
    let mut v = example();
    fentanyl(&mut v)["bolus"]["max_share_of_remaining_percent"] = json!("150");
    expect_error(
        &v,
        "share-over-100",
        &format!("{F}.bolus.max_share_of_remaining_percent"),
    );
    let mut v = example();
    fentanyl(&mut v)["bolus"]
        .as_object_mut()
        .expect("object")
        .remove("min_duration_s");
    let f = findings(&v);
    assert_eq!(
        f,
        vec![(
            Severity::Warning,
            "bolus-rate-unlimited".to_owned(),
            format!("{F}.bolus")
        )]
    );
    // Warnings do not refuse the library.
    assert!(library::parse(&serde_json::to_vec(&v).expect("serialises")).is_ok());
}

#[test]
fn schema_messages_say_what_to_write() {
    let mut v = example();
    fentanyl(&mut v)["concentrations"][0]["amount"] = json!("2,500");
    fentanyl(&mut v)["concentrations"][0]["unit"] = json!("mcg");
    fentanyl(&mut v)["continuous"]["dose_unit"] = json!("mcg/h");
    let c = library::check(&serde_json::to_vec(&v).expect("serialises"));
    let messages: Vec<&str> = c.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].contains("no thousands separators"),
        "{messages:?}"
    );
    assert!(messages[1].contains("\"micrograms\""), "{messages:?}");
    assert!(
        messages[2].contains("e.g. micrograms/kg/min"),
        "{messages:?}"
    );
    assert!(messages.iter().all(|m| !m.contains('^')), "{messages:?}");
}

#[test]
fn only_roles_that_confirm_at_the_bedside_may_override_a_soft_limit() {
    for (i, role) in [(1, "pharmacist"), (1, "biomedical_engineer")] {
        let mut v = example();
        v["policy"]["soft_override_roles"] = json!(["nurse", role]);
        expect_error(
            &v,
            "override-role-not-at-bedside",
            &format!("$.policy.soft_override_roles[{i}]"),
        );
    }
    let mut v = example();
    v["policy"]["soft_override_roles"] = json!(["doctor"]);
    assert_eq!(findings(&v), vec![]);
}

#[test]
fn a_cumulative_window_longer_than_the_history_kept_is_refused() {
    // The schema refuses it in a file; the lint refuses it in a model built
    // any other way, so no window is ever longer than what the gateway keeps.
    let mut v = example();
    fentanyl(&mut v)["cumulative"]["window_minutes"] = json!(10_081);
    expect_error(&v, "schema", &format!("{F}.cumulative.window_minutes"));
    let mut v = example();
    fentanyl(&mut v)["cumulative"]["window_minutes"] = json!(10_080);
    assert_eq!(findings(&v), vec![]);
    let bytes = serde_json::to_vec(&example()).expect("serialises");
    let (mut model, _) = library::parse(&bytes).expect("clean");
    let cumulative = model.care_areas[0].drugs[0]
        .cumulative
        .as_mut()
        .expect("adult fentanyl has a cumulative limit");
    cumulative.window_minutes = 10_081;
    let f = library::lint_model(&model);
    assert!(
        f.iter().any(|f| f.code == "window-out-of-range"
            && f.path == "$.care_areas[0].drugs[0].cumulative.window_minutes"),
        "{f:?}"
    );
}

#[test]
fn version_2_says_per_care_area_whether_orders_are_used() {
    let l = library::parse(&serde_json::to_vec(&example()).expect("serialises"))
        .expect("the example reads")
        .0;
    let policy = |id: &str| l.care_area(id).expect("in the example").orders;
    assert_eq!(policy("adult-icu"), library::OrderPolicy::Optional);
    assert_eq!(policy("theatres"), library::OrderPolicy::NotUsed);
    // Version 2 needs it said in every care area, in the schema's words.
    let mut v = example();
    v["care_areas"][1]
        .as_object_mut()
        .expect("a care area")
        .remove("orders");
    expect_error(&v, "schema", "$.care_areas[1]");
    let mut v = example();
    v["care_areas"][0]["orders"] = json!("sometimes");
    expect_error(&v, "schema", "$.care_areas[0].orders");
}

#[test]
fn a_version_1_library_still_reads_with_orders_not_used_and_a_warning_to_migrate() {
    let mut v = example();
    v["format_version"] = json!(1);
    for area in v["care_areas"].as_array_mut().expect("care areas") {
        area.as_object_mut().expect("a care area").remove("orders");
    }
    let (l, warnings) =
        library::parse(&serde_json::to_vec(&v).expect("serialises")).expect("version 1 reads");
    assert!(
        l.care_areas
            .iter()
            .all(|a| a.orders == library::OrderPolicy::NotUsed)
    );
    assert_eq!(
        warnings
            .iter()
            .map(|f| (f.code, f.path.as_str()))
            .collect::<Vec<_>>(),
        vec![("format-version-1", "$.format_version")]
    );
    // Version 1 never had the field: it is refused there, not ignored.
    v["care_areas"][0]["orders"] = json!("required");
    expect_error(&v, "schema", "$.care_areas[0]");
    // A version this build does not know is refused.
    let mut v = example();
    v["format_version"] = json!(3);
    expect_error(&v, "schema", "$.format_version");
}
