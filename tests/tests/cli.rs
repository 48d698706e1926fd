//! `pumpgwd` as a pharmacist and a script use it: lint exit codes and JSON,
//! usage errors, unreadable input.

use pumpgw_tests::{EXAMPLE_LIBRARY, ders_check, pumpgwd, write_json};

#[test]
fn lint_of_the_example_library_is_clean() {
    let out = pumpgwd(&["library", "lint", EXAMPLE_LIBRARY]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 error(s), 0 warning(s)"), "{text}");
}

#[test]
fn lint_reports_errors_with_paths_and_exit_1() {
    let mut lib: serde_json::Value = serde_json::from_slice(
        &std::fs::read(pumpgw_tests::repo_root().join(EXAMPLE_LIBRARY)).expect("example"),
    )
    .expect("JSON");
    lib["care_areas"][0]["drugs"][0]["continuous"]["soft_max"] = "450".into();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write_json(dir.path(), "bad.json", &lib);
    let out = pumpgwd(&["library", "lint", &file, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("lint JSON");
    assert_eq!(v["errors"], 1);
    assert_eq!(v["findings"][0]["code"], "soft-outside-hard");
    assert_eq!(
        v["findings"][0]["path"],
        "$.care_areas[0].drugs[0].continuous.soft_max"
    );
    // The same library is refused by ders check, with exit 64.
    let out = pumpgwd(&[
        "ders",
        "check",
        "--library",
        &file,
        "--care-area",
        "adult-icu",
        "--program",
        "config/examples/programme-fentanyl-infusion.json",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("soft_max"));
}

#[test]
fn usage_and_input_errors_exit_64_with_a_precise_message() {
    let out = pumpgwd(&["ders", "check", "--library", EXAMPLE_LIBRARY]);
    assert_eq!(out.status.code(), Some(64));
    let out = ders_check(
        "maternity",
        "config/examples/programme-fentanyl-infusion.json",
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("known: adult-icu, paed-icu, theatres"));
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = serde_json::json!({
        "drug": "fentanyl", "library_version": 12, "requested_at": "2026-11-21T03:00:00Z",
        "container": {"concentration": "2,500 mcg in 50 mL", "volume_loaded": "50 mL", "volume_remaining": ".5 mL"},
        "delivery": {"kind": "continuous", "rate": "100 micrograms/h", "pump_flow_rate": "2 mL/h"}
    });
    let file = write_json(dir.path(), "p.json", &bad);
    let out = ders_check("adult-icu", &file, &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("$.container.volume_remaining"), "{err}");
    assert!(err.contains("leading zero"), "{err}");
    let mut late = bad.clone();
    late["container"]["volume_remaining"] = "50 mL".into();
    late["container"]["concentration"] = "2,500 micrograms in 50 mL".into();
    late["requested_at"] = "2026-11-21 03:00".into();
    let file = write_json(dir.path(), "late.json", &late);
    let out = ders_check("adult-icu", &file, &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("$.requested_at"), "{err}");
    assert!(err.contains("RFC 3339 with an offset"), "{err}");
    assert!(!err.contains(" at line "), "{err}");
    let out = pumpgwd(&["library", "lint", "/nonexistent/library.json"]);
    assert_eq!(out.status.code(), Some(64));
    // The cause is said once, though the error chain carries it twice.
    let out = pumpgwd(&[
        "ders",
        "check",
        "--library",
        "/nonexistent/library.json",
        "--care-area",
        "adult-icu",
        "--program",
        "config/examples/programme-fentanyl-infusion.json",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "pumpgwd: error: drug library /nonexistent/library.json refused: cannot read /nonexistent/library.json: No such file or directory (os error 2)"
    );
}

#[test]
fn help_reads_well_and_exits_0() {
    let out = pumpgwd(&["ders", "check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--care-area"));
    assert!(text.contains("0 pass, 1 soft limit"));
}

#[test]
fn examples_give_their_documented_verdicts() {
    for (file, code) in [
        ("config/examples/programme-fentanyl-infusion.json", 0),
        (
            "config/examples/programme-fentanyl-bolus-empties-syringe.json",
            2,
        ),
    ] {
        let out = ders_check(
            "adult-icu",
            file,
            &["--history", "config/examples/history-fentanyl.json"],
        );
        assert_eq!(out.status.code(), Some(code), "{file}");
    }
}

#[test]
fn the_readme_shows_what_ders_check_prints() {
    let out = ders_check(
        "adult-icu",
        "config/examples/programme-fentanyl-bolus-empties-syringe.json",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let printed = String::from_utf8_lossy(&out.stdout);
    let readme =
        std::fs::read_to_string(pumpgw_tests::repo_root().join("README.md")).expect("README.md");
    // The example sits in a list item, indented by two spaces.
    let readme: Vec<&str> = readme
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect();
    assert!(
        readme.join("\n").contains(printed.trim()),
        "README.md is out of date; the command now prints:\n{printed}"
    );
}

#[test]
fn a_pharmacist_makes_a_key_and_signs_a_library() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pharmacy.key");
    let key_arg = key.display().to_string();
    let out = pumpgw_tests::pumpgwd(&["library", "keygen", "--out", &key_arg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("mode 0600"), "{said}");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let public = std::fs::read_to_string(dir.path().join("pharmacy.key.pub")).unwrap();
    assert_eq!(public.trim().len(), 64);
    // Never overwritten.
    let again = pumpgw_tests::pumpgwd(&["library", "keygen", "--out", &key_arg]);
    assert_eq!(again.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    let library = dir.path().join("library.json");
    std::fs::copy(
        pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY),
        &library,
    )
    .unwrap();
    let lib_arg = library.display().to_string();
    let out = pumpgw_tests::pumpgwd(&["library", "sign", &lib_arg, "--key", &key_arg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("library.json.sig")).unwrap())
            .unwrap();
    assert_eq!(sig["format"], "pumpgw-library-signature");
    assert_eq!(sig["format_version"], 2);
    assert_eq!(sig["signatures"][0]["role"], "proposed");
    assert_eq!(
        sig["signatures"][0]["public_key"].as_str().unwrap(),
        public.trim()
    );

    // A key others can read is refused; so is a library with lint errors.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = pumpgw_tests::pumpgwd(&["library", "sign", &lib_arg, "--key", &key_arg]);
    assert_eq!(loose.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&loose.stderr).contains("chmod 600"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&library, "{\"format\": \"pumpgw-drug-library\"}").unwrap();
    let bad = pumpgw_tests::pumpgwd(&["library", "sign", &lib_arg, "--key", &key_arg]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not signed"));
}

#[test]
fn ders_check_counts_infusions_running_and_boluses_pending_from_the_history_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bolus = |dose: &str, volume: &str| {
        serde_json::json!({
            "drug": "fentanyl", "library_version": 12, "requested_at": "2026-11-21T03:00:00Z",
            "patient_weight": "70 kg",
            "container": {"concentration": "2,500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "40 mL"},
            "delivery": {"kind": "bolus", "dose": dose, "duration": "60 s", "pump_volume": volume}
        })
    };
    let history = ["--history", "config/examples/history-fentanyl-running.json"];
    // 50 given, 300 running on p2, 25 pending on p1: with 50 more, 425.
    let file = write_json(dir.path(), "ok.json", &bolus("50 micrograms", "1 mL"));
    let out = ders_check("adult-icu", &file, &history);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Over the 500 microgram hour only with what runs and what is pending
    // (a 100 microgram bolus is a soft limit alone): the reason says so.
    let with = serde_json::json!({"deliveries": [
        {"drug": "fentanyl", "at": "2026-11-21T02:40:00Z", "amount": "100 micrograms"}
    ], "running": [
        {"drug": "fentanyl", "since": "2026-11-21T02:30:00Z", "rate": "300 micrograms/h", "source": "p2"}
    ], "pending": [
        {"drug": "fentanyl", "amount": "25 micrograms", "source": "p1"}
    ]});
    let h = write_json(dir.path(), "h.json", &with);
    let file = write_json(dir.path(), "over.json", &bolus("100 micrograms", "2 mL"));
    let out = ders_check("adult-icu", &file, &["--json", "--history", &h]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let cumulative = v["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["code"] == "CUMULATIVE_LIMIT"))
        .expect("a cumulative reason");
    let m = cumulative["message"].as_str().unwrap_or_default();
    assert!(m.contains("525 micrograms"), "{m}");
    assert!(
        m.contains("300 micrograms running or authorised on p2"),
        "{m}"
    );
    assert!(
        m.contains("25 micrograms in boluses authorised and not yet given on p1"),
        "{m}"
    );
}
