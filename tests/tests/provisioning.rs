//! `pumpgwd check-config`: what a biomedical engineer runs before a start,
//! and what systemd runs before every start. A gateway that can start says
//! so; each reason it cannot is named with its key.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use pumpgw_tests::mqtt::{Pki, Validity};
use pumpgw_tests::{Bench, run};

/// `check-config --json` on `config`: exit code and findings.
fn check(config: &Path) -> (i32, serde_json::Value) {
    let (code, out, err) = run(&["check-config", &config.display().to_string(), "--json"]);
    let v = serde_json::from_str(&out).unwrap_or_else(|_| serde_json::json!({"stderr": err}));
    (code, v)
}

/// The finding about `key` at `level` whose message contains `words`.
fn finds(v: &serde_json::Value, level: &str, key: &str, words: &str) {
    let findings = v["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["level"] == level
            && f["key"] == key
            && f["message"].as_str().is_some_and(|m| m.contains(words))),
        "no {level} on {key} with {words:?}: {v:#}"
    );
}

/// A provisioned bench: pharmacy key, staff file, a port that exists.
fn provisioned(bench: &Bench, extra: &str) -> std::path::PathBuf {
    let key = bench.path().join("pharmacy.key");
    assert_eq!(
        run(&["library", "keygen", "--out", &key.display().to_string()]).0,
        0
    );
    std::fs::write(bench.path().join("p1"), "").expect("writable");
    let trusted = format!(
        "trusted_keys = [{:?}]\n{extra}",
        format!("{}.pub", key.display())
    );
    bench.gateway_config(&["p1"], &trusted)
}

#[test]
fn a_provisioned_gateway_can_start_and_says_what_it_found() {
    let bench = Bench::new();
    let config = provisioned(&bench, "");
    let (code, v) = check(&config);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["ok"], true);
    finds(&v, "note", "trusted_keys", "pharmacy key");
    finds(&v, "note", "[terminal] staff_file", "4 staff");
    finds(&v, "note", "[[port]] p1", "is there");
    // Words for people, too.
    let (code, text, _) = run(&["check-config", &config.display().to_string()]);
    assert_eq!(code, 0);
    assert!(
        text.contains("the gateway can start: 0 error(s), 0 warning(s)"),
        "{text}"
    );
}

#[test]
fn an_unplugged_pump_is_a_warning_not_a_refusal() {
    let bench = Bench::new();
    let config = provisioned(&bench, "");
    std::fs::remove_file(bench.path().join("p1")).expect("removable");
    let (code, v) = check(&config);
    assert_eq!(code, 0, "{v:#}");
    finds(&v, "warning", "[[port]] p1", "is the pump's cable in?");
}

#[test]
fn an_unknown_key_is_refused_with_the_file_and_line() {
    let bench = Bench::new();
    let config = provisioned(&bench, "\n[link]\nack_timeout = 500\n");
    let (code, _, err) = run(&["check-config", &config.display().to_string()]);
    assert_eq!(code, 78);
    assert!(
        err.contains("gateway.toml:") && err.contains("unknown field `ack_timeout`"),
        "{err}"
    );
}

#[test]
fn a_missing_or_broken_pharmacy_key_is_refused() {
    let bench = Bench::new();
    let config = provisioned(&bench, "");
    let public = bench.path().join("pharmacy.key.pub");
    std::fs::write(&public, "not a key").expect("writable");
    let (code, v) = check(&config);
    assert_eq!(code, 78, "{v:#}");
    finds(&v, "error", "trusted_keys", "pharmacy.key.pub");
    std::fs::remove_file(&public).expect("removable");
    let (code, v) = check(&config);
    assert_eq!(code, 78);
    finds(&v, "error", "trusted_keys", "No such file");
}

#[test]
fn an_mqtt_key_that_others_can_read_is_refused() {
    let bench = Bench::new();
    let pki = Pki::make(bench.path(), "t", Validity::Current, Validity::Current);
    let mqtt = format!(
        "[mqtt]\nbroker = \"mqtts://127.0.0.1:8883\"\nsite = \"st-test\"\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        pki.ca.display().to_string(),
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string()
    );
    let config = provisioned(&bench, &mqtt);
    let (code, v) = check(&config);
    assert_eq!(code, 0, "{v:#}");
    finds(&v, "note", "[mqtt]", "certificates and keys read");
    std::fs::set_permissions(&pki.client_key, std::fs::Permissions::from_mode(0o640))
        .expect("ours");
    let (code, v) = check(&config);
    assert_eq!(code, 78, "{v:#}");
    finds(
        &v,
        "error",
        "[mqtt]",
        "readable by group or others (mode 0640)",
    );
}

#[test]
fn a_damaged_staff_file_and_a_missing_socket_group_are_refused() {
    let bench = Bench::new();
    let config = provisioned(&bench, "");
    std::fs::write(bench.path().join("staff.json"), "{").expect("writable");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace(
        "[terminal]\n",
        "[terminal]\nsocket_group = \"no-such-group-pumpgw\"\n",
    );
    std::fs::write(&config, text).expect("writable");
    let (code, v) = check(&config);
    assert_eq!(code, 78, "{v:#}");
    finds(&v, "error", "[terminal] staff_file", "staff.json");
    finds(
        &v,
        "error",
        "[terminal] socket_group",
        "no group named no-such-group-pumpgw",
    );
}

#[test]
fn a_data_dir_that_is_a_file_is_refused() {
    let bench = Bench::new();
    let config = provisioned(&bench, "");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("data_dir = \".\"", "data_dir = \"p1\"");
    std::fs::write(&config, text).expect("writable");
    let (code, v) = check(&config);
    assert_eq!(code, 78, "{v:#}");
    finds(&v, "error", "data_dir", "is not a folder");
}
