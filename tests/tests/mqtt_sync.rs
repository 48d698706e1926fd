//! MQTT sync end to end, against a real Mosquitto on loopback: the event
//! log delivered in order and whole through broker outages and SIGKILL,
//! mutual TLS and its refusals, libraries from the pharmacy's retained
//! topic, the fleet view, and the Last Will.

use std::path::Path;
use std::time::Duration;

use pumpgw_tests::mqtt::{Broker, Pki, Validity, exported};
use pumpgw_tests::{Bench, alarm_storm, example_scenario, library, prefill, pumpgwd, run};

/// Gateway config lines for a broker, with fast status and reconnects.
fn mqtt(url: &str, extra: &str) -> String {
    format!(
        "[mqtt]\nbroker = {url:?}\nsite = \"st-test\"\nstatus_interval_s = 1\nreconnect_initial_ms = 200\nreconnect_max_ms = 1000\n{extra}\n"
    )
}

fn config(bench: &Bench) -> std::path::PathBuf {
    bench.path().join("gateway.toml")
}

/// The records a subscriber got, first copies only, against the log.
fn assert_delivered_whole(
    received: &pumpgw_tests::mqtt::Received,
    log: &[serde_json::Value],
) -> usize {
    let (high, duplicates) = received.check_in_order();
    assert_eq!(high, log.len() as u64, "every record reached the broker");
    let mut seen = std::collections::HashSet::new();
    let first: Vec<&serde_json::Value> = received
        .records
        .iter()
        .filter(|r| seen.insert(r["seq"].as_u64()))
        .collect();
    for (got, want) in first.iter().zip(log) {
        assert_eq!(*got, want, "the record on MQTT is the record in the log");
    }
    duplicates
}

/// A gateway on `broker` runs one fentanyl infusion from start to end and
/// stops cleanly; returns it (stopped) and its log as exported.
fn one_infusion(bench: &Bench, broker: &Broker) -> (pumpgw_tests::Proc, Vec<serde_json::Value>) {
    let mut gw = bench.gateway(&["p1"], &mqtt(&broker.url(), ""));
    let mut sim = bench.sim(
        "p1",
        &example_scenario("fentanyl-infusion"),
        &["--speed", "3600"],
    );
    assert!(sim.wait_exit(60).success(), "{}", sim.log_text());
    gw.wait_for(&["MQTT connected"], 1, 10);
    assert!(gw.terminate(15).success());
    let log = exported(&config(bench));
    (gw, log)
}

#[test]
fn the_event_log_reaches_the_broker_in_order_and_unchanged() {
    let broker = Broker::start();
    let sub = broker.subscribe("events-1", "pumpgw/v1/+/+/events");
    let bench = Bench::new();
    let (gw, log) = one_infusion(&bench, &broker);
    gw.wait_for(&["MQTT disconnected cleanly"], 1, 1);
    assert!(log.len() > 10, "a whole infusion logs more than 10 records");
    let received = sub.wait_for_seq(log.len() as u64, 10);
    assert_eq!(
        assert_delivered_whole(&received, &log),
        0,
        "no crash, no duplicate"
    );
    let types: Vec<_> = received.records.iter().map(|r| r["type"].clone()).collect();
    assert_eq!(
        types[types.len() - 2..],
        ["gateway_stopped", "checkpoint"],
        "even the stop record and its checkpoint went out before DISCONNECT"
    );
    // DISCONNECT was sent: the retained status is the gateway's own
    // "stopped", not the Last Will the broker would otherwise publish.
    std::thread::sleep(Duration::from_millis(300));
    let (code, said, err) = run(&[
        "fleet",
        "status",
        "--broker",
        &broker.url(),
        "--site",
        "st-test",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let fleet: serde_json::Value = serde_json::from_str(&said).expect("JSON");
    assert_eq!(fleet["gateways"][0]["status"]["online"], false, "{said}");
    assert_eq!(
        fleet["gateways"][0]["status"]["reason"], "stopped",
        "{said}"
    );
    // `status` shows the stop, the connection, the empty backlog and the
    // last batch; it exits 1: with the gateway stopped, no pump is online.
    let (code, said, err) = run(&["status", "--config", &config(&bench).display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(said.contains("daemon     STOPPED at"), "{said}");
    assert!(said.contains("stopped since"), "{said}");
    assert!(said.contains("backlog    0 records"), "{said}");
    assert!(said.contains("last batch acknowledged at"), "{said}");
}

/// The issue's "done when", shortened: the broker away while pumps keep
/// working, the gateway killed twice, the broker back: every record
/// arrives, in order.
#[test]
fn a_broker_outage_under_load_loses_nothing_and_keeps_the_order() {
    let mut broker = Broker::start();
    let sub = broker.subscribe("events-2", "pumpgw/v1/+/+/events");
    let bench = Bench::new();
    let ports = ["p1", "p2"];
    let mut gw = bench.gateway(&ports, &mqtt(&broker.url(), "batch_max_events = 10"));
    let mut sims: Vec<_> = ports
        .iter()
        .map(|p| {
            bench.sim(
                p,
                &alarm_storm(&format!("L-{p}"), 120),
                &["--answer-timeout", "30"],
            )
        })
        .collect();
    gw.wait_for(&["MQTT connected"], 1, 10);
    sub.wait_for_seq(20, 15);
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    let failures = gw.count(&["MQTT connection failed; retrying with backoff"]);
    assert!(
        failures >= 2,
        "retried while the broker was down:\n{}",
        gw.log_text()
    );
    // Backoff, not a tight loop: 3 s at 200 ms doubling to 1 s is a handful.
    assert!(
        failures <= 8,
        "{failures} attempts in 3 s:\n{}",
        gw.log_text()
    );
    for line in gw.log_text().lines().filter(|l| l.contains("retry_in_ms=")) {
        let ms: u64 = line
            .split("retry_in_ms=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("a delay in ms");
        assert!(
            (100..=1000).contains(&ms),
            "delay {ms} ms out of bounds: {line}"
        );
    }
    // The gateway killed twice while the broker is away, the pumps going on.
    for _ in 0..2 {
        gw.kill();
        gw = bench.gateway(&ports, &mqtt(&broker.url(), "batch_max_events = 10"));
        gw.wait_for(&["MQTT connection failed"], 1, 10);
        std::thread::sleep(Duration::from_millis(700));
    }
    broker.restart();
    for sim in &mut sims {
        assert!(sim.wait_exit(60).success(), "{}", sim.log_text());
    }
    gw.wait_for(&["MQTT connected"], 1, 10);
    assert!(gw.terminate(15).success());
    let log = exported(&config(&bench));
    assert!(log.len() > 400, "the storm logged {} records", log.len());
    let received = sub.wait_for_seq(log.len() as u64, 20);
    assert_delivered_whole(&received, &log);
}

#[test]
fn a_gateway_killed_mid_drain_delivers_the_rest_after_restart() {
    let broker = Broker::start();
    let sub = broker.subscribe("events-3", "pumpgw/v1/+/+/events");
    let bench = Bench::new();
    prefill(bench.path(), 60_000);
    // Small batches, one at a time: a drain slow enough to be caught.
    let extra = mqtt(
        &broker.url(),
        "batch_max_events = 10\nin_flight_batches = 1",
    );
    let mut gw = bench.gateway(&["p1"], &extra);
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while sub.highest() < 20_000 {
        assert!(
            std::time::Instant::now() < until,
            "the drain stalled:\n{}",
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    gw.kill();
    let at_kill = sub.highest();
    assert!(at_kill < 60_000, "the kill came mid-drain (at #{at_kill})");
    let mut gw = bench.gateway(&["p1"], &extra);
    gw.wait_for(&["MQTT connected"], 1, 10);
    let head = u64::try_from(exported(&config(&bench)).len()).expect("fits");
    sub.wait_for_seq(head, 60);
    assert!(gw.terminate(15).success());
    let log = exported(&config(&bench));
    let received = sub.wait_for_seq(log.len() as u64, 10);
    let duplicates = assert_delivered_whole(&received, &log);
    eprintln!(
        "killed at #{at_kill} of {}; {duplicates} duplicates after the restart",
        log.len()
    );
    // Only what was in flight, or acknowledged in the last 50 ms before the
    // kill and not yet saved, comes twice: the cursor was saved as it went.
    assert!(
        duplicates < 2_000,
        "{duplicates} duplicates of {at_kill}: the cursor was not kept as it went"
    );
}

/// `[mqtt]` for a TLS broker, trusting `ca`, with `pki`'s client
/// certificate and key.
fn tls(url: &str, ca: &Path, pki: &Pki) -> String {
    mqtt(
        url,
        &format!(
            "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}",
            ca.display().to_string(),
            pki.client_cert.display().to_string(),
            pki.client_key.display().to_string()
        ),
    )
}

/// Starts a gateway with `config` that must never connect: its log shows
/// `n` failures carrying every one of `needles`, retried with backoff.
fn refused_with(config: &str, needles: &[&str], n: usize) {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], config);
    gw.wait_for(needles, n, 15);
    assert_eq!(gw.count(&["MQTT connected"]), 0);
    for l in gw
        .log_text()
        .lines()
        .filter(|l| l.contains("MQTT connection failed"))
        .take(2)
    {
        eprintln!("{l}");
    }
    gw.kill();
}

#[test]
fn mutual_tls_works_and_a_wrong_ca_or_expired_certificate_is_refused_with_backoff() {
    let certs = tempfile::tempdir().expect("a folder");
    let good = Pki::make(certs.path(), "good", Validity::Current, Validity::Current);
    let broker = Broker::start_tls(&good);
    let sub = broker.subscribe("events-4", "pumpgw/v1/+/+/events");

    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], &tls(&broker.tls_url(), &good.ca, &good));
    gw.wait_for(&["MQTT connected"], 1, 10);
    sub.wait_for_seq(1, 10);
    assert!(gw.terminate(10).success());

    // The broker's certificate is not signed by the CA the gateway trusts.
    let other = Pki::make(certs.path(), "other", Validity::Current, Validity::Current);
    refused_with(
        &tls(&broker.tls_url(), &other.ca, &good),
        &[
            "MQTT connection failed",
            "UnknownIssuer",
            "not signed by the CA in ca_file",
        ],
        3,
    );

    // The gateway's certificate is signed by a CA the broker does not
    // trust: the broker's alert, with its own hint.
    refused_with(
        &tls(&broker.tls_url(), &good.ca, &other),
        &[
            "MQTT connection failed",
            "UnknownCA",
            "the broker does not trust the CA that signed this gateway's cert_file",
        ],
        2,
    );

    // The gateway's own certificate has expired: the broker refuses it.
    refused_when_expired(
        certs.path(),
        "stale-client",
        (Validity::Current, Validity::Expired),
        &["MQTT connection failed", "xpired"],
    );
    // The broker's certificate has expired: the gateway refuses it.
    refused_when_expired(
        certs.path(),
        "stale-server",
        (Validity::Expired, Validity::Current),
        &["MQTT connection failed", "xpired", "check the dates"],
    );
}

/// A broker and gateway whose certificates are made with these validities
/// (broker's, gateway's): the connection is refused, saying `needles`.
fn refused_when_expired(
    certs: &std::path::Path,
    name: &str,
    (server, client): (Validity, Validity),
    needles: &[&str],
) {
    let pki = Pki::make(certs, name, server, client);
    let broker = Broker::start_tls(&pki);
    refused_with(&tls(&broker.tls_url(), &pki.ca, &pki), needles, 2);
}

/// `fleet status --json` once the gateway and both pumps show `version`.
fn fleet_on_version(url: &str, version: u64) -> serde_json::Value {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (code, said, err) = run(&[
            "fleet", "status", "--broker", url, "--site", "st-test", "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&said).expect("JSON");
        let pumps = v["gateways"][0]["pumps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if v["gateways"][0]["status"]["library"]["version"] == version
            && pumps.len() == 2
            && pumps
                .iter()
                .all(|p| p["library"]["version"] == version && p["library_matches"] == true)
        {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "fleet never showed v{version} everywhere: {said}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A library message for version 14, signed, then its fentanyl cumulative
/// limit raised tenfold.
fn tampered_message(dir: &Path, key: &str) -> String {
    let file14 = dir.join("v14.json");
    std::fs::write(&file14, library(14)).expect("writable");
    let f14 = file14.display().to_string();
    assert_eq!(run(&["library", "sign", &f14, "--key", key]).0, 0);
    let sig14 = std::fs::read_to_string(format!("{f14}.sig")).expect("signed");
    let tampered_text = library(14).replacen(
        "\"cumulative\": {\"max\": \"500\"",
        "\"cumulative\": {\"max\": \"5000\"",
        1,
    );
    assert_ne!(
        tampered_text,
        library(14),
        "the tampering changed something"
    );
    serde_json::json!({
        "format": "pumpgw-library-message",
        "format_version": 1,
        "library": tampered_text,
        "signature": serde_json::from_str::<serde_json::Value>(&sig14).expect("JSON"),
        "published_by": "mallory",
        "published_at": "2026-11-21T00:00:00.000Z",
    })
    .to_string()
}

/// Signs library `version` with the pharmacy key at `key` and publishes it
/// for adult-icu with `pumpgwd library publish`; returns what it said.
fn publish_signed(bench: &Bench, broker: &Broker, key: &str, version: u64) -> String {
    let file = bench.path().join(format!("v{version}.json"));
    std::fs::write(&file, library(version)).expect("writable");
    let f = file.display().to_string();
    let (code, said, err) = run(&[
        "library",
        "sign",
        &f,
        "--key",
        key,
        "--person",
        "Pat Proposer",
    ]);
    assert_eq!(code, 0, "{said}{err}");
    assert!(said.contains("pumpgwd library approve"), "{said}");
    // A second pharmacist approves it: the gateways need one approval.
    let approver = pumpgw_tests::approver_key(Path::new(key));
    let (code, said, err) = run(&[
        "library",
        "approve",
        &f,
        "--key",
        &approver.display().to_string(),
        "--person",
        "Alex Approver",
    ]);
    assert_eq!(code, 0, "{said}{err}");
    assert!(said.contains("It has 1 approval(s)"), "{said}");
    let sig = format!("{f}.sig");
    let url = broker.url();
    let (code, said, err) = run(&[
        "library",
        "publish",
        &f,
        "--signature",
        &sig,
        "--site",
        "st-test",
        "--care-area",
        "adult-icu",
        "--broker",
        &url,
        "--by",
        "pharmacist-a",
    ]);
    assert_eq!(code, 0, "{said}{err}");
    said
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one story: publish, import, push, fleet view, tampering"
)]
fn a_library_published_on_its_topic_reaches_every_pump_and_the_fleet_view_says_so() {
    let broker = Broker::start();
    let bench = Bench::new();
    let key = bench.path().join("pharmacy.key");
    let k = key.display().to_string();
    assert_eq!(run(&["library", "keygen", "--out", &k]).0, 0);
    let trusted = format!("{}\n", pumpgw_tests::trusted_keys(&key));
    let mut gw = bench.gateway(
        &["p1", "p2"],
        &format!("{trusted}{}", mqtt(&broker.url(), "")),
    );
    let waits = "[pump]\ncare_area = \"adult-icu\"\n\n[[step]]\naction = \"wait_library\"\nversion = 12\n\n\
                 [[step]]\naction = \"wait_library\"\nversion = 13\n\n[[step]]\naction = \"wait\"\nduration = \"600 s\"\n";
    let _sims: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|p| bench.sim(p, waits, &["--serial", &format!("F-{p}")]))
        .collect();
    gw.wait_for(&["MQTT connected"], 1, 10);
    gw.wait_for(
        &["pump installed a library", "version=12", "matches=true"],
        2,
        15,
    );

    let said = publish_signed(&bench, &broker, &k, 13);
    let url = broker.url();
    assert!(
        said.contains("version 13") && said.contains("pumpgw/v1/st-test/library/adult-icu"),
        "{said}"
    );
    assert!(
        said.contains("proposed by Pat Proposer (key ")
            && said.contains("approved by Alex Approver (key "),
        "{said}"
    );

    gw.wait_for(
        &["library received over MQTT is now active", "version=13"],
        1,
        10,
    );
    gw.wait_for(
        &["pump installed a library", "version=13", "matches=true"],
        2,
        15,
    );
    let cfg = config(&bench).display().to_string();
    let (_, events, _) = run(&["events", "export", "--config", &cfg]);
    for kind in [
        "library_received",
        "library_verified",
        "library_activated",
        "library_pushed",
    ] {
        assert!(
            events.lines().any(
                |l| l.contains(&format!("\"type\":\"{kind}\"")) && l.contains("\"version\":13")
            ),
            "{kind} for version 13 is in the log"
        );
    }
    assert!(events.contains("pharmacist-a via MQTT pumpgw/v1/st-test/library/adult-icu"));

    // The fleet view: the gateway and both pumps on version 13, matching.
    let v = fleet_on_version(&url, 13);
    assert_eq!(v["gateways"][0]["status"]["library"]["version"], 13);
    assert_eq!(v["gateways"][0]["pumps"][0]["identity"]["serial"], "F-p1");
    let (_, table, _) = run(&["fleet", "status", "--broker", &url]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "header, gateway, two pumps:\n{table}");
    assert!(
        lines[2].contains("test-bed/p1")
            && lines[2].contains("F-p1")
            && lines[2].contains("v13")
            && lines[2].contains(" yes "),
        "{table}"
    );

    // A tampered library on the topic: refused, version 13 stays active.
    let tampered = tampered_message(bench.path(), &k);
    let status = broker
        .publisher()
        .args(["-r", "-t", "pumpgw/v1/st-test/library/all", "-m", &tampered])
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
    gw.wait_for(
        &[
            "library received over MQTT refused",
            "signature is for another file",
        ],
        1,
        10,
    );
    let (_, said, _) = run(&["status", "--config", &cfg]);
    assert!(said.contains("library    version 13 active"), "{said}");
    assert!(said.contains("connected since"), "{said}");
    assert!(gw.terminate(10).success());
}

#[test]
fn the_last_will_marks_a_killed_gateway_offline_in_the_fleet_view() {
    let broker = Broker::start();
    let sub = broker.subscribe("status-6", "pumpgw/v1/st-test/+/status");
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], &mqtt(&broker.url(), ""));
    gw.wait_for(&["MQTT connected"], 1, 10);
    let online = |s: &pumpgw_tests::mqtt::Subscriber, want: bool| {
        s.lines().iter().rev().find_map(|l| {
            let (_, p) = l.split_once(' ')?;
            let v: serde_json::Value = serde_json::from_str(p).ok()?;
            (v["online"] == want).then_some(v)
        })
    };
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while online(&sub, true).is_none() {
        assert!(std::time::Instant::now() < until, "no online status");
        std::thread::sleep(Duration::from_millis(50));
    }
    gw.kill();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let will = loop {
        if let Some(v) = online(&sub, false) {
            break v;
        }
        assert!(
            std::time::Instant::now() < until,
            "the Last Will was not published"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(will["reason"], "connection lost (Last Will)");
    let (code, table, err) = run(&[
        "fleet",
        "status",
        "--broker",
        &broker.url(),
        "--site",
        "st-test",
    ]);
    assert_eq!(code, 0, "{err}");
    let gateway_line = table.lines().nth(1).unwrap_or_default();
    assert!(
        gateway_line.contains("OFFLINE") && gateway_line.contains("Last Will"),
        "{table}"
    );
    assert!(
        table.lines().nth(2).unwrap_or_default().contains("stale"),
        "{table}"
    );
}

#[test]
fn a_user_name_and_password_from_a_file_are_used_and_a_wrong_one_refused() {
    let broker = Broker::start_with_password("icu-bed-12", "s3cret horse");
    let bench = Bench::new();
    let secret = bench.path().join("mqtt.password");
    let write = |text: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(&secret, text).expect("writable");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("ours");
    };
    write("s3cret horse\n");
    let login = format!(
        "username = \"icu-bed-12\"\npassword_file = {:?}",
        secret.display().to_string()
    );
    let mut gw = bench.gateway(&["p1"], &mqtt(&broker.url(), &login));
    gw.wait_for(&["MQTT connected"], 1, 10);
    assert!(gw.terminate(10).success());

    write("wrong\n");
    let mut gw = bench.gateway(&["p1"], &mqtt(&broker.url(), &login));
    gw.wait_for(
        &[
            "MQTT connection failed",
            "NotAuthorized",
            "check username and password_file",
        ],
        2,
        10,
    );
    assert_eq!(gw.count(&["MQTT connected"]), 0);
    gw.kill();

    // A password file others can read stops the start.
    std::fs::set_permissions(
        &secret,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
    )
    .expect("ours");
    let (code, _, err) = run(&["run", "--config", &config(&bench).display().to_string()]);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("mqtt.password") && err.contains("mode 0644"),
        "{err}"
    );
}

#[test]
fn the_tools_say_what_is_wrong_before_touching_the_broker() {
    let bench = Bench::new();
    let file = bench.path().join("lib.json");
    std::fs::write(&file, library(13)).expect("writable");
    let f = file.display().to_string();
    let key = bench.path().join("k");
    let k = key.display().to_string();
    assert_eq!(run(&["library", "keygen", "--out", &k]).0, 0);
    assert_eq!(run(&["library", "sign", &f, "--key", &k]).0, 0);
    let sig = format!("{f}.sig");
    // A wildcard in a topic level.
    let (code, _, err) = run(&[
        "library",
        "publish",
        &f,
        "--signature",
        &sig,
        "--site",
        "a/#",
        "--all",
        "--broker",
        "mqtt://127.0.0.1:1",
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("'/'") || err.contains("'#'"), "{err}");
    // A signature of another file.
    std::fs::write(&file, library(14)).expect("writable");
    let (code, _, err) = run(&[
        "library",
        "publish",
        &f,
        "--signature",
        &sig,
        "--site",
        "s",
        "--all",
        "--broker",
        "mqtt://127.0.0.1:1",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("another file") && err.contains("nothing published"),
        "{err}"
    );
    // Nobody listening.
    let port = pumpgw_tests::mqtt::free_port().to_string();
    let url = format!("mqtt://127.0.0.1:{port}");
    let (code, _, err) = run(&["fleet", "status", "--broker", &url, "--timeout", "3"]);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("is the broker running"), "{err}");
    // A bad broker address in the config: refused with the key.
    let cfg = bench.gateway_config(&["p1"], "[mqtt]\nbroker = \"http://x\"\nsite = \"s\"\n");
    let (code, _, err) = run(&["run", "--config", &cfg.display().to_string()]);
    assert_eq!(code, 78, "{err}");
    assert!(
        err.contains("[mqtt] broker") && err.contains("mqtt://"),
        "{err}"
    );
}

#[test]
fn an_oversized_retained_library_message_is_refused_once_and_the_event_feed_goes_on() {
    let broker = Broker::start();
    let bench = Bench::new();
    // 8 MiB, twice the limit, left retained where every gateway subscribes.
    let big = bench.path().join("big.json");
    std::fs::write(&big, vec![b'x'; 8 * 1024 * 1024]).expect("bench is writable");
    let status = broker
        .publisher()
        .args(["-r", "-t", "pumpgw/v1/st-test/library/all", "-f"])
        .arg(&big)
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
    let sub = broker.subscribe("events-oversize", "pumpgw/v1/+/+/events");
    let (gw, log) = one_infusion(&bench, &broker);
    let received = sub.wait_for_seq(log.len() as u64, 10);
    assert_delivered_whole(&received, &log);
    let refused: Vec<_> = log
        .iter()
        .filter(|r| r["type"] == "library_refused")
        .collect();
    assert_eq!(refused.len(), 1, "refused and logged once: {refused:#?}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("over the 4 MiB limit") && r.contains("not read")),
        "{}",
        refused[0]
    );
    // One reconnection to leave the topic, not one every half second.
    let connected = gw.count(&["MQTT connected"]);
    assert!(connected <= 3, "connected {connected} times");
}

#[test]
fn after_the_pause_the_library_topics_are_tried_again_within_the_same_connection() {
    let broker = Broker::start();
    let bench = Bench::new();
    let key = bench.path().join("pharmacy.key");
    let k = key.display().to_string();
    assert_eq!(run(&["library", "keygen", "--out", &k]).0, 0);
    let big = bench.path().join("big.json");
    std::fs::write(&big, vec![b'x'; 8 * 1024 * 1024]).expect("bench is writable");
    let all = "pumpgw/v1/st-test/library/all";
    let retained = |args: &[&str]| {
        let status = broker
            .publisher()
            .args(["-r", "-t", all])
            .args(args)
            .status()
            .expect("mosquitto_pub runs");
        assert!(status.success());
    };
    retained(&["-f", &big.display().to_string()]);
    let trusted = format!("{}\n", pumpgw_tests::trusted_keys(&key));
    let gw = bench.gateway(
        &["p1"],
        &format!("{trusted}{}", mqtt(&broker.url(), "library_pause_s = 3")),
    );
    gw.wait_for(
        &[
            "library from MQTT refused",
            "over the 4 MiB limit",
            "3 s at a time",
        ],
        1,
        10,
    );
    gw.wait_for(&["MQTT connected"], 2, 10);
    // While the topics are left alone, the message is cleared and a good
    // library published: the gateway finds it when it tries them again,
    // without a new connection.
    retained(&["-n"]);
    publish_signed(&bench, &broker, &k, 13);
    gw.wait_for(
        &["library received over MQTT is now active", "version=13"],
        1,
        15,
    );
    assert_eq!(
        gw.count(&["MQTT connected"]),
        2,
        "subscribed again within the connection: {}",
        gw.log_text()
    );
}

/// Rewrites the log in `data_dir` as someone who can write the database
/// would: record `at` changed, and every hash after it re-computed, so the
/// chain still holds.
fn rechain(data_dir: &Path, at: u64) {
    use pumpgw::store::record::{Record, hash};
    let db = rusqlite::Connection::open(data_dir.join("pumpgw.sqlite")).expect("the log opens");
    let rows: Vec<(i64, Vec<u8>)> = db
        .prepare("SELECT seq, record FROM events ORDER BY seq")
        .expect("the bench's log reads and writes")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("the bench's log reads and writes")
        .collect::<Result<_, _>>()
        .expect("the bench's log reads and writes");
    let mut prev: Option<[u8; 32]> = None;
    for (seq, bytes) in rows {
        let mut record: Record =
            serde_json::from_slice(&bytes).expect("the bench's log reads and writes");
        let seq = u64::try_from(seq).expect("the bench's log reads and writes");
        if seq < at {
            prev = Some(hash(&bytes));
            continue;
        }
        if seq == at {
            "somewhere-else".clone_into(&mut record.context.care_area);
        }
        record.prev_hash = hex::encode(prev.expect("not the first record"));
        let new = record.to_bytes();
        let h = hash(&new);
        db.execute(
            "UPDATE events SET record = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![
                new,
                h.to_vec(),
                i64::try_from(seq).expect("the bench's log reads and writes")
            ],
        )
        .expect("the bench's log reads and writes");
        prev = Some(h);
    }
}

#[test]
fn checkpoints_on_the_broker_show_a_log_cut_short_or_re_chained() {
    let broker = Broker::start();
    let sub = broker.subscribe("events-checkpoints", "pumpgw/v1/+/+/events");
    let bench = Bench::new();
    let (_, log) = one_infusion(&bench, &broker);
    sub.wait_for_seq(log.len() as u64, 10);
    let checkpoints: Vec<_> = log.iter().filter(|r| r["type"] == "checkpoint").collect();
    assert_eq!(
        checkpoints
            .iter()
            .map(|r| r["reason"].clone())
            .collect::<Vec<_>>(),
        ["start", "stop"],
        "signed at start and at stop"
    );
    let last = log.last().expect("records");
    assert_eq!(last["type"], "checkpoint");
    assert_eq!(last["signed_seq"], log.len() - 1, "the stop is signed");
    let key = checkpoints[0]["key"].as_str().unwrap().to_owned();

    // What the hospital's consumer kept: the batches, as received.
    let copy = bench.path().join("broker-copy.txt");
    std::fs::write(&copy, sub.lines().join("\n")).unwrap();
    let dir = bench.path().display().to_string();
    let copy_arg = copy.display().to_string();
    let verify = |with_copy: bool| {
        let mut args = vec!["events", "verify", "--data-dir", &dir];
        if with_copy {
            args.extend(["--checkpoints", &copy_arg, "--key", &key]);
        }
        let out = pumpgwd(&args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, said) = verify(true);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("is in the log as signed"), "{said}");

    // Re-chained: the chain alone holds, the broker's checkpoints do not.
    rusqlite::Connection::open(bench.path().join("pumpgw.sqlite"))
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let pristine = bench.path().join("pristine.sqlite");
    std::fs::copy(bench.path().join("pumpgw.sqlite"), &pristine).unwrap();
    rechain(bench.path(), 5);
    let (code, said) = verify(false);
    assert!(said.contains("the chain holds"), "{said}");
    let (code_with, said_with) = verify(true);
    assert_eq!(code_with, Some(1), "{said_with}");
    assert!(
        said_with.contains("is not the record signed at"),
        "{said_with}"
    );
    let _ = code;

    // Cut short: the last records deleted.
    std::fs::copy(&pristine, bench.path().join("pumpgw.sqlite")).unwrap();
    let keep = log.len() - 4;
    rusqlite::Connection::open(bench.path().join("pumpgw.sqlite"))
        .unwrap()
        .execute(
            "DELETE FROM events WHERE seq > ?1",
            [i64::try_from(keep).unwrap()],
        )
        .unwrap();
    let (code, said) = verify(false);
    assert_eq!(code, Some(0), "the chain alone cannot tell: {said}");
    let (code, said) = verify(true);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("the log ends at record {keep}")) && said.contains("were cut off"),
        "{said}"
    );
}
