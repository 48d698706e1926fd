//! Provisioning a gateway: `pumpgwd provision` from flags and on a
//! terminal, every check it makes before writing anything, the gateway then
//! started from what it wrote against `pump-sim` and Mosquitto; `pumpgwd
//! ports`; and `pumpgwd check-config`, what a biomedical engineer runs
//! before a start and systemd before every start. Each refusal is named
//! with its setting.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pumpgw_tests::mqtt::{Broker, Pki, Validity, free_port};
use pumpgw_tests::{Bench, import_and_activate, on_a_terminal, run};

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
    provisioned_again(bench, extra)
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

#[test]
fn check_config_warns_of_an_expired_certificate_and_refuses_a_key_of_another() {
    let bench = Bench::new();
    let old = Pki::make(bench.path(), "old", Validity::Current, Validity::Expired);
    let other = Pki::make(bench.path(), "other", Validity::Current, Validity::Current);
    let mqtt = |cert: &Path, key: &Path| {
        format!(
            "[mqtt]\nbroker = \"mqtts://127.0.0.1:8883\"\nsite = \"st-test\"\nca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
            old.ca.display().to_string(),
            cert.display().to_string(),
            key.display().to_string()
        )
    };
    // Expired: a warning, not a refusal: the bed keeps its gateway.
    let config = provisioned(&bench, &mqtt(&old.client_cert, &old.client_key));
    let (code, v) = check(&config);
    assert_eq!(code, 0, "{v:#}");
    finds(&v, "warning", "[mqtt] cert_file", "expired on");
    let config = provisioned_again(&bench, &mqtt(&other.client_cert, &old.client_key));
    let (code, v) = check(&config);
    assert_eq!(code, 78, "{v:#}");
    finds(
        &v,
        "error",
        "[mqtt] cert_file",
        "is not the key of the certificate",
    );
    let config = provisioned_again(&bench, &mqtt(&other.client_cert, &other.client_key));
    let (code, v) = check(&config);
    assert_eq!(code, 0, "{v:#}");
    finds(&v, "note", "[mqtt] cert_file", "SHA-256");
}

/// Writes the bench's config, trusting the bench's pharmacy key, with `extra`.
fn provisioned_again(bench: &Bench, extra: &str) -> PathBuf {
    let trusted = format!(
        "{}\n{extra}",
        pumpgw_tests::trusted_keys(&bench.path().join("pharmacy.key"))
    );
    bench.gateway_config(&["p1"], &trusted)
}

/// What an engineer brings on a stick: the pharmacy's public key (its
/// private half stays here to sign libraries, as the pharmacy's would), the
/// hospital CA, this gateway's certificate and key, and the staff list.
struct Stick {
    pharmacy_key: PathBuf,
    pki: Pki,
    staff: PathBuf,
}

impl Stick {
    fn new(bench: &Bench, client: Validity) -> Stick {
        let dir = bench.path().join("stick");
        std::fs::create_dir_all(&dir).expect("writable");
        let pharmacy_key = dir.join("pharmacy.key");
        if !pharmacy_key.exists() {
            let key = pharmacy_key.display().to_string();
            assert_eq!(run(&["library", "keygen", "--out", &key]).0, 0);
        }
        // The second pharmacist's key, whose approval every library needs.
        pumpgw_tests::approver_key(&pharmacy_key);
        let pki = Pki::make(&dir, "gw", Validity::Current, client);
        // A stick's file system has no modes: everything reads as 0644.
        std::fs::set_permissions(&pki.client_key, std::fs::Permissions::from_mode(0o644))
            .expect("ours");
        Stick {
            pharmacy_key,
            pki,
            staff: bench.staff_file(),
        }
    }

    fn public_key(&self) -> String {
        format!("{}.pub", self.pharmacy_key.display())
    }
}

/// The temporary root a gateway is provisioned into.
fn root(bench: &Bench) -> PathBuf {
    bench.path().join("root")
}

fn config_in(bench: &Bench) -> PathBuf {
    root(bench).join("etc/pumpgw/gateway.toml")
}

/// The flags of a full provisioning into the bench's root, over TLS to
/// `broker` (a URL), for one pump on `port`.
fn flags(bench: &Bench, stick: &Stick, broker: &str, port: &Path) -> Vec<String> {
    let r = root(bench);
    let p = |p: &Path| p.display().to_string();
    [
        "provision",
        "--non-interactive",
        "--broker-timeout",
        "5",
        "--config",
        &p(&config_in(bench)),
        "--gateway-id",
        "test-bed",
        "--care-area",
        "adult-icu",
        "--port",
        &p(port),
        "--broker",
        broker,
        "--site",
        "st-test",
        "--ca",
        &p(&stick.pki.ca),
        "--cert",
        &p(&stick.pki.client_cert),
        "--key",
        &p(&stick.pki.client_key),
        "--trusted-key",
        &stick.public_key(),
        "--trusted-key",
        &format!("{}-approver.pub", stick.pharmacy_key.display()),
        "--data-dir",
        &p(&r.join("var/lib/pumpgw")),
        "--terminal-socket",
        &p(&r.join("run/pumpgw/terminal.sock")),
        "--staff",
        &p(&stick.staff),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn provision(flags: &[String]) -> (i32, String, String) {
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    run(&args)
}

/// Replaces the value after `flag`.
fn with(mut flags: Vec<String>, flag: &str, value: &str) -> Vec<String> {
    let at = flags
        .iter()
        .position(|f| f == flag)
        .unwrap_or_else(|| panic!("{flag} is in the flags"));
    value.clone_into(&mut flags[at + 1]);
    flags
}

/// The certificate's SHA-256 fingerprint as OpenSSL prints it.
fn openssl_fingerprint(cert: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs (tests/run installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .split_once('=')
        .map(|(_, f)| f.to_owned())
        .expect("openssl prints NAME=FINGERPRINT")
}

fn wait_for_path(path: &Path) {
    let until = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `fleet status --json` once the gateway is online with pump F-p1 on the
/// active library.
fn in_the_fleet(url: &str, gateway: &pumpgw_tests::Proc) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, said, err) = run(&[
            "fleet", "status", "--broker", url, "--site", "st-test", "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&said).expect("JSON");
        let pump = &v["gateways"][0]["pumps"][0];
        if v["gateways"][0]["status"]["online"] == true
            && pump["identity"]["serial"] == "F-p1"
            && pump["library_matches"] == true
        {
            return v;
        }
        assert!(
            Instant::now() < until,
            "the gateway never showed in the fleet with its pump: {v:#}\n{}",
            gateway.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_gateway_provisioned_by_flags_runs_from_what_was_written() {
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    let broker = Broker::start_tls(&stick.pki);
    let sim = bench.sim_alone(
        "p1",
        "[pump]\nserial = \"F-p1\"\n\n[[step]]\naction = \"wait_online\"\n\n[[step]]\naction = \"wait\"\nduration = \"120 s\"\n",
        &[],
    );
    let port = bench.path().join("p1");
    wait_for_path(&port);

    let (code, said, err) = provision(&flags(&bench, &stick, &broker.tls_url(), &port));
    assert_eq!(code, 0, "{said}{err}");
    for words in [
        "Gateway test-bed, care area adult-icu, site st-test",
        "answered and accepted this gateway",
        "4 staff to import",
        &format!(
            "SHA-256 fingerprint {}",
            openssl_fingerprint(&stick.pki.client_cert)
        ),
        "Written:",
    ] {
        assert!(said.contains(words), "no {words:?} in:\n{said}");
    }
    let config = config_in(&bench);
    let key = root(&bench).join("etc/pumpgw/mqtt/test-bed.key");
    let mode = std::fs::metadata(&key)
        .expect("the key was copied")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the copied key is private");
    let cfg = config.display().to_string();
    let (code, checked, _) = run(&["check-config", &cfg]);
    assert_eq!(code, 0, "{checked}");

    // The pharmacy's library, then the gateway from the written config.
    import_and_activate(
        &config,
        12,
        &stick.pharmacy_key,
        "first library on this bed",
    );
    let mut gateway =
        bench.spawn_with_input("gateway", "pumpgwd", &["run", "--config", &cfg], None);
    let fleet = in_the_fleet(&broker.url(), &gateway);
    assert_eq!(fleet["gateways"][0]["status"]["library"]["version"], 12);

    // The staff were imported, each one logged as provisioning's.
    let data = root(&bench).join("var/lib/pumpgw").display().to_string();
    let out = pumpgw_tests::pumpgwd(&[
        "events",
        "export",
        "--data-dir",
        &data,
        "--type",
        "staff_changed",
    ]);
    let added: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(added.len(), 4, "{added:?}");
    assert!(
        added
            .iter()
            .all(|r| r["action"] == "added"
                && r["by"].as_str().is_some_and(|b| b.contains("provision"))),
        "{added:?}"
    );
    // The one screen: the pump online with its serial and the library.
    let (code, status, _) = run(&["status", "--config", &cfg]);
    assert_eq!(code, 0, "{status}");
    for words in [
        "gateway    test-bed (care area adult-icu)",
        "daemon     started ",
        "library    version 12 active",
        ", serial F-p1, library v12 matches",
    ] {
        assert!(status.contains(words), "no {words:?} in:\n{status}");
    }
    assert!(gateway.terminate(10).success());
    // Stopped: the screen says so, knows no pump's state now, and exits 1.
    let (code, status, _) = run(&["status", "--config", &cfg]);
    assert_eq!(code, 1, "{status}");
    assert!(status.contains("daemon     STOPPED at "), "{status}");
    assert!(
        status.contains("not known: the daemon is stopped (last: online since "),
        "{status}"
    );
    drop(sim);
}

/// Provisioning with `flags` is refused: exit 78, the setting `key` named
/// with `words`, and nothing written.
fn refused(bench: &Bench, flags: &[String], key: &str, words: &str) {
    let (code, said, err) = provision(flags);
    assert_eq!(code, 78, "{said}{err}");
    assert!(
        said.lines()
            .any(|l| l.contains("ERROR") && l.contains(&format!("{key}: ")) && l.contains(words)),
        "no error on {key} with {words:?}:\n{said}"
    );
    assert!(said.contains("nothing was written"), "{said}");
    assert!(!root(bench).exists(), "something was written for {key}");
}

#[test]
fn every_check_that_fails_names_its_setting_and_nothing_is_written() {
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    // No broker: these are refused before the broker is asked.
    let url = format!("mqtts://127.0.0.1:{}", free_port());
    let port = PathBuf::from("/dev/null");
    let good = flags(&bench, &stick, &url, &port);
    let file = |name: &str, text: &str| {
        let p = bench.path().join(name);
        std::fs::write(&p, text).expect("writable");
        p.display().to_string()
    };

    let nothing = bench.path().join("ttyUSB9").display().to_string();
    let expired = Pki::make(
        bench.path(),
        "expired",
        Validity::Current,
        Validity::Expired,
    );
    let expired_cert = expired.client_cert.display().to_string();
    let expired_key = expired.client_key.display().to_string();
    let mut unknown_group = good.clone();
    unknown_group.extend([
        "--socket-group".to_owned(),
        "no-such-group-pumpgw".to_owned(),
    ]);
    let cases: [(Vec<String>, &str, &str); 11] = [
        (
            with(good.clone(), "--port", &nothing),
            "[[port]] pump-a",
            "does not exist: plug the pump's adapter in",
        ),
        (
            with(good.clone(), "--port", &file("ttyUSB0", "")),
            "[[port]] pump-a",
            "is not a serial device",
        ),
        (
            with(
                good.clone(),
                "--trusted-key",
                &file("bad.pub", "not a key\n"),
            ),
            "trusted_keys",
            "not hex",
        ),
        (
            with(good.clone(), "--trusted-key", &nothing),
            "trusted_keys",
            "no such file",
        ),
        (
            with(
                good.clone(),
                "--ca",
                &file("ca.pem", "no certificate here\n"),
            ),
            "[mqtt] ca_file",
            "no CERTIFICATE",
        ),
        (
            with(
                with(good.clone(), "--cert", &expired_cert),
                "--key",
                &expired_key,
            ),
            "[mqtt] cert_file",
            "expired on",
        ),
        (
            with(good.clone(), "--key", &expired_key),
            "[mqtt] cert_file",
            "is not the key of the certificate",
        ),
        (
            with(good.clone(), "--staff", &file("staff-bad.json", "{")),
            "[terminal] staff_file",
            "staff-bad.json",
        ),
        (
            unknown_group,
            "[terminal] socket_group",
            "no group named no-such-group-pumpgw",
        ),
        (
            with(good.clone(), "--gateway-id", "bed 12"),
            "config",
            "gateway_id \"bed 12\" must be",
        ),
        (
            with(good.clone(), "--broker", "tcp://x"),
            "config",
            "must start with mqtt://",
        ),
    ];
    for (flags, key, words) in &cases {
        refused(&bench, flags, key, words);
    }
}

#[test]
fn two_names_for_one_file_or_one_device_are_refused() {
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    let url = format!("mqtts://127.0.0.1:{}", free_port());
    let good = flags(&bench, &stick, &url, Path::new("/dev/null"));
    let other = bench.path().join("other");
    std::fs::create_dir_all(&other).expect("writable");
    let same_name = other.join("pharmacy.key.pub");
    std::fs::copy(stick.public_key(), &same_name).expect("copied");
    let mut two_keys = good.clone();
    two_keys.extend(["--trusted-key".to_owned(), same_name.display().to_string()]);
    let alias = bench.path().join("pump-cable");
    std::os::unix::fs::symlink("/dev/null", &alias).expect("a link");
    let mut two_ports = good.clone();
    two_ports.extend(["--port".to_owned(), alias.display().to_string()]);
    refused(&bench, &two_keys, "trusted_keys", "would both be copied to");
    refused(
        &bench,
        &two_ports,
        "[[port]] pump-b",
        "is the same device as pump-a's",
    );
}

#[test]
fn missing_answers_are_named_as_a_usage_error() {
    let bench = Bench::new();
    let (code, said, err) = run(&[
        "provision",
        "--non-interactive",
        "--config",
        &config_in(&bench).display().to_string(),
    ]);
    assert_eq!(code, 64, "{said}{err}");
    assert!(
        err.contains("--gateway-id, --care-area, --port needed"),
        "{err}"
    );
    assert!(!root(&bench).exists());
}

#[test]
fn an_unreachable_broker_is_reported_not_fatal_and_a_config_is_replaced_only_with_force() {
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    let url = format!("mqtts://127.0.0.1:{}", free_port());
    let good = flags(&bench, &stick, &url, Path::new("/dev/null"));

    let mut dry = good.clone();
    dry.push("--dry-run".to_owned());
    let (code, said, err) = provision(&dry);
    assert_eq!(code, 0, "{said}{err}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("  warning [mqtt] broker: ")
                && l.contains("Connection refused")
                && l.contains("provisioning goes on")),
        "{said}"
    );
    assert!(said.contains("dry run: nothing was written"), "{said}");
    assert!(!root(&bench).exists());

    let (code, said, err) = provision(&good);
    assert_eq!(code, 0, "{said}{err}");
    let config = config_in(&bench);
    let first = std::fs::read_to_string(&config).expect("written");
    let (code, said, _) = provision(&with(good.clone(), "--care-area", "paediatric-icu"));
    assert_eq!(code, 78, "{said}");
    for key in ["config", "[terminal] staff_file"] {
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("  ERROR   {key}: "))
                    && l.contains("exists: --force replaces it")),
            "no refusal on {key}:\n{said}"
        );
    }
    assert_eq!(std::fs::read_to_string(&config).expect("kept"), first);

    // Forced twice: each original is kept under its own name.
    let mut force = with(good, "--care-area", "paediatric-icu");
    force.push("--force".to_owned());
    for _ in 0..2 {
        let (code, said, err) = provision(&force);
        assert_eq!(code, 0, "{said}{err}");
    }
    let now = std::fs::read_to_string(&config).expect("written");
    assert!(now.contains("care_area = \"paediatric-icu\""), "{now}");
    let dir = config.parent().expect("a folder");
    let mut kept: Vec<String> = std::fs::read_dir(dir)
        .expect("readable")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gateway.toml.bak-"))
        .collect();
    kept.sort();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let texts: Vec<String> = kept
        .iter()
        .map(|k| std::fs::read_to_string(dir.join(k)).expect("readable"))
        .collect();
    assert!(texts.contains(&first), "the first config is kept");
}

#[test]
fn relative_paths_are_written_absolute() {
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    std::fs::copy(stick.public_key(), bench.path().join("pharmacy.pub")).expect("copied");
    let out = std::process::Command::new(pumpgw_tests::binary("pumpgwd"))
        .current_dir(bench.path())
        .args([
            "provision",
            "--non-interactive",
            "--config",
            "root/gateway.toml",
            "--gateway-id",
            "test-bed",
            "--care-area",
            "adult-icu",
            "--port",
            "/dev/null",
            "--trusted-key",
            "pharmacy.pub",
            "--data-dir",
            "state",
            "--terminal-socket",
            "run/terminal.sock",
        ])
        .output()
        .expect("pumpgwd runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = std::fs::read_to_string(bench.path().join("root/gateway.toml")).expect("written");
    let abs = |p: &str| format!("{:?}", bench.path().join(p).display().to_string());
    for line in [
        format!("data_dir = {}", abs("state")),
        format!("trusted_keys = [{}]", abs("root/trusted/pharmacy.pub")),
        format!("socket = {}", abs("run/terminal.sock")),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    // Read from elsewhere, it is the same gateway.
    let cfg = bench.path().join("root/gateway.toml");
    let (code, v) = check(&cfg);
    assert_eq!(code, 0, "{v:#}");
    finds(
        &v,
        "note",
        "data_dir",
        &bench.path().join("state").display().to_string(),
    );
}

#[test]
fn on_a_terminal_provisioning_asks_with_defaults_and_writes_only_when_told() {
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    let config = config_in(&bench).display().to_string();
    let data = root(&bench).join("var/lib/pumpgw").display().to_string();
    let socket = root(&bench)
        .join("run/pumpgw/terminal.sock")
        .display()
        .to_string();
    let staff = stick.staff.display().to_string();
    let key = stick.public_key();
    let answers = [
        ("Gateway id", "ward7-bed12"),
        ("Care area", "adult-icu"),
        ("Port of pump-a", "left=/dev/null"),
        ("Port of pump-b", ""),
        ("MQTT broker", ""),
        ("Pharmacy public key file", key.as_str()),
        ("Pharmacy public key file", ""),
        ("Data folder [/var/lib/pumpgw]", data.as_str()),
        ("Terminal socket", socket.as_str()),
        ("Group whose members may use the terminal socket", ""),
        ("Staff file to import", staff.as_str()),
    ];
    let mut declined: Vec<(&str, &str)> = answers.to_vec();
    declined.push(("Write these files? [no]", ""));
    let (code, shown) = on_a_terminal(&["provision", "--config", &config], &declined);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("nothing was written"), "{shown}");
    assert!(!root(&bench).exists());

    let mut accepted: Vec<(&str, &str)> = answers.to_vec();
    accepted.push(("Write these files? [no]", "yes"));
    let (code, shown) = on_a_terminal(&["provision", "--config", &config], &accepted);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("Identity: none on the network (no MQTT sync)"),
        "{shown}"
    );
    let text = std::fs::read_to_string(config_in(&bench)).expect("written");
    for line in [
        "gateway_id = \"ward7-bed12\"",
        "name = \"left\"\npath = \"/dev/null\"",
        &format!("socket = {socket:?}"),
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    assert!(!text.contains("[mqtt]"), "{text}");
    assert!(Path::new(&data).join("staff.json").exists());
}

#[test]
fn ports_lists_devices_and_where_each_configured_port_stands() {
    let bench = Bench::new();
    let config = provisioned(&bench, "");
    let cfg = config.display().to_string();
    let (code, said, err) = run(&["ports", "--config", &cfg, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&said).expect("JSON");
    assert!(v["ports"].is_array(), "{v:#}");
    assert_eq!(v["configured"][0]["name"], "p1");
    assert_eq!(v["configured"][0]["state"], "not a device");
    std::fs::remove_file(bench.path().join("p1")).expect("removable");
    let (code, said, _) = run(&["ports", "--config", &cfg]);
    assert_eq!(code, 0);
    assert!(
        said.lines()
            .any(|l| l.contains("p1") && l.ends_with("not there")),
        "{said}"
    );
}

#[test]
fn the_key_data_and_staff_are_given_to_the_owner() {
    use std::os::unix::fs::MetadataExt as _;
    let bench = Bench::new();
    let stick = Stick::new(&bench, Validity::Current);
    let url = format!("mqtts://127.0.0.1:{}", free_port());
    let mut f = flags(&bench, &stick, &url, Path::new("/dev/null"));
    f.extend(["--owner".to_owned(), "nobody".to_owned()]);
    let nobody = nix::unistd::User::from_name("nobody")
        .expect("the user database reads")
        .expect("every Debian machine has nobody");
    let (code, said, err) = provision(&f);
    if !nix::unistd::Uid::effective().is_root() {
        // Only root may give files away: refused before anything is
        // written, with the reason.
        assert_eq!(code, 64, "{said}{err}");
        assert!(err.contains("only root may give files"), "{err}");
        assert!(!root(&bench).exists());
        return;
    }
    assert_eq!(code, 0, "{said}{err}");
    let r = root(&bench);
    for owned in [
        r.join("etc/pumpgw/mqtt"),
        r.join("etc/pumpgw/mqtt/test-bed.key"),
        r.join("var/lib/pumpgw"),
        r.join("var/lib/pumpgw/staff.json"),
        r.join("var/lib/pumpgw/pumpgw.sqlite"),
    ] {
        let meta = std::fs::metadata(&owned).expect("written");
        assert_eq!(meta.uid(), nobody.uid.as_raw(), "{}", owned.display());
    }
    let config = std::fs::metadata(config_in(&bench)).expect("written");
    assert_eq!(config.uid(), 0, "the config stays root's");
}

#[test]
fn a_folder_this_user_cannot_write_is_found_before_anything_is_written() {
    let bench = Bench::new();
    let locked = bench.path().join("locked");
    std::fs::create_dir(&locked).expect("writable");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("ours");
    let config = locked.join("etc/gateway.toml").display().to_string();
    let data = bench.path().join("data").display().to_string();
    let args = [
        "provision",
        "--non-interactive",
        "--config",
        &config,
        "--gateway-id",
        "test-bed",
        "--care-area",
        "adult-icu",
        "--port",
        "/dev/null",
        "--data-dir",
        &data,
    ];
    let (code, said, err) = if nix::unistd::Uid::effective().is_root() {
        // Root writes anywhere: ask as nobody, who may not write in the
        // folder, and may go through the bench only because it is opened.
        std::fs::set_permissions(bench.path(), std::fs::Permissions::from_mode(0o755))
            .expect("ours");
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(pumpgw_tests::binary("pumpgwd"))
            .args(args)
            .output()
            .expect("setpriv (util-linux) runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    } else {
        run(&args)
    };
    assert_eq!(code, 78, "{said}{err}");
    assert!(
        said.contains(&format!(
            "ERROR   config: cannot write in {} as this user",
            locked.display()
        )),
        "{said}"
    );
    assert!(!locked.join("etc").exists() && !Path::new(&data).exists());
}

/// `check-config` on `[ehr]`: TLS files read as the start reads them, and
/// a warning wherever orders or documentation would cross the network in
/// the clear; a TLS file that cannot be used stops the start.
#[test]
fn check_config_reads_the_ehr_tls_files_and_warns_of_plain_mllp_off_loopback() {
    let bench = Bench::new();
    let plain = provisioned(
        &bench,
        "\n[ehr]\nlisten = \"0.0.0.0:2575\"\nsend_to = \"10.20.0.15:2576\"\n",
    );
    let (code, v) = check(&plain);
    assert_eq!(code, 0, "{v:#}");
    finds(
        &v,
        "warning",
        "[ehr]",
        "plain MLLP, orders and answers in the clear",
    );
    finds(&v, "warning", "[ehr] send_to", "documentation in the clear");
    let pki = Pki::make(bench.path(), "ehr", Validity::Current, Validity::Current);
    let tls = format!(
        "\n[ehr]\nlisten = \"0.0.0.0:2575\"\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n\
         send_to = \"10.20.0.15:2576\"\nsend_ca_file = {:?}\nsend_cert_file = {:?}\nsend_key_file = {:?}\n",
        pki.server_cert, pki.server_key, pki.ca, pki.ca, pki.client_cert, pki.client_key
    );
    let config = provisioned_again(&bench, &tls);
    let (code, v) = check(&config);
    assert_eq!(code, 0, "{v:#}");
    finds(&v, "note", "[ehr]", "TLS with");
    finds(
        &v,
        "note",
        "[ehr] send_to",
        "TLS, the EHR's certificate checked",
    );
    // A CA file that is not one: an error, and the start would stop.
    std::fs::write(&pki.ca, "not a certificate\n").expect("writable");
    let (code, v) = check(&config);
    assert_eq!(code, 78, "{v:#}");
    finds(&v, "error", "[ehr]", "");
}
