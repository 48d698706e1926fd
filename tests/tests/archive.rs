//! The fleet archive (`pumpgwd archive`) end to end: a real gateway and
//! simulated gateways' streams through a real Mosquitto into an SQLite
//! archive and into a real PostgreSQL server; gaps, breaks and conflicts
//! reported; an archive killed and restarted loses nothing; a gap filled
//! from a gateway's export.

use std::path::Path;
use std::time::{Duration, Instant};

use pumpgw::sim::fleet;
use pumpgw_tests::mqtt::Broker;
use pumpgw_tests::postgres::Postgres;
use pumpgw_tests::{Bench, run};

const SITE: &str = "st-test";

/// A simulated gateway's log of `n` records.
fn log(gateway: &str, n: u64) -> Vec<Vec<u8>> {
    fleet::plain_log(gateway, n, time::macros::datetime!(2026-11-01 08:00 UTC))
}

/// Publishes records `first..` of `gateway` as its batches of 10, QoS 1.
fn publish(broker: &Broker, dir: &Path, gateway: &str, records: &[Vec<u8>], first: u64) {
    for (i, b) in fleet::batches(SITE, gateway, records, first, 10)
        .iter()
        .enumerate()
    {
        let file = dir.join(format!("{gateway}-{first}-{i}.json"));
        std::fs::write(&file, b).expect("writable");
        let status = broker
            .publisher()
            .args(["-t", &format!("pumpgw/v1/{SITE}/{gateway}/events"), "-f"])
            .arg(&file)
            .status()
            .expect("mosquitto_pub runs");
        assert!(status.success());
    }
}

/// `archive status --json` once `gateway` has `records` records kept.
fn status_when(database: &str, gateway: &str, records: u64) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, err) = run(&["archive", "status", "--database", database, "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        let kept = v["gateways"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["key"]["gateway"] == gateway))
            .map_or(0, |g| g["records"].as_u64().unwrap_or(0));
        if kept >= records {
            return v;
        }
        assert!(
            Instant::now() < until,
            "{gateway} never reached {records} records: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A gateway's records in the SQLite archive, in order.
fn kept(file: &Path, gateway: &str) -> Vec<Vec<u8>> {
    let db = rusqlite::Connection::open(file).expect("the archive opens");
    let mut st = db
        .prepare("SELECT record FROM records WHERE gateway = ?1 ORDER BY seq")
        .expect("SQL");
    st.query_map([gateway], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one story: a fleet archived, a gap, a break, a kill, a fill"
)]
fn a_sites_gateways_are_archived_whole_and_every_gap_and_break_is_reported() {
    let broker = Broker::start();
    let bench = Bench::new();
    let db_file = bench.path().join("archive.sqlite");
    let db = db_file.display().to_string();
    let mut a = broker.archive(&bench, SITE, &db, "archive");

    // A real gateway: its log arrives byte for byte.
    let mut gw = bench.gateway(
        &["p1"],
        &format!(
            "[mqtt]\nbroker = {:?}\nsite = \"{SITE}\"\nstatus_interval_s = 1\n",
            broker.url()
        ),
    );
    gw.wait_for(&["MQTT connected"], 1, 10);
    assert!(gw.terminate(10).success());
    let exported = pumpgw_tests::mqtt::exported(&bench.path().join("gateway.toml"));
    let n = exported.len() as u64;
    status_when(&db, "test-bed", n);
    let export = run(&[
        "events",
        "export",
        "--config",
        &bench.path().join("gateway.toml").display().to_string(),
    ])
    .1;
    let lines: Vec<Vec<u8>> = export.lines().map(|l| l.as_bytes().to_vec()).collect();
    assert_eq!(kept(&db_file, "test-bed"), lines, "byte for byte, in order");

    // A simulated gateway whose records 11 to 15 never reach the broker.
    let sim1 = log("sim-1", 30);
    publish(&broker, bench.path(), "sim-1", &sim1[..10], 1);
    publish(&broker, bench.path(), "sim-1", &sim1[15..], 16);
    status_when(&db, "sim-1", 25);
    a.wait_for(&["archive anomaly", "gateway=sim-1", "kind=\"gap\""], 1, 5);
    // Record 20 again, edited: a conflict; an edited 31 and the true 32
    // after it: a break at 32 (the archive cannot tell which one lies; it
    // says where the chain stops holding).
    let sim1_more = log("sim-1", 32);
    let mut edited20 = String::from_utf8(sim1[19].clone()).unwrap();
    edited20 = edited20.replace("simulated", "SIMULATED");
    assert_ne!(edited20.as_bytes(), sim1[19].as_slice());
    publish(&broker, bench.path(), "sim-1", &[edited20.into_bytes()], 20);
    let mut edited31 = String::from_utf8(sim1_more[30].clone()).unwrap();
    edited31 = edited31.replace("gateway_started", "gateway_stopped\",\"reason\":\"x");
    publish(
        &broker,
        bench.path(),
        "sim-1",
        &[edited31.into_bytes(), sim1_more[31].clone()],
        31,
    );
    a.wait_for(
        &["archive anomaly", "gateway=sim-1", "kind=\"break\""],
        1,
        10,
    );
    a.wait_for(
        &["archive anomaly", "gateway=sim-1", "kind=\"conflict\""],
        1,
        10,
    );
    let (code, said, err) = run(&["archive", "status", "--database", &db]);
    assert_eq!(code, 1, "anomalies exit 1: {said}{err}");
    for words in [
        "GAP  st-test/sim-1: records 11 to 15 missing",
        "GAP  st-test/sim-1 record 11: records 11 to 15 were not received",
        "CONFLICT  st-test/sim-1 record 20: record 20 arrived again with other bytes",
        "BREAK  st-test/sim-1 record 32: record 32's prev_hash is not the hash of record 31",
    ] {
        assert!(said.contains(words), "no {words:?} in:\n{said}");
    }
    assert!(
        said.contains("st-test/test-bed  ") && !said.contains("test-bed record"),
        "the real gateway's chain is whole: {said}"
    );

    // Killed, then its gateways go on publishing: the broker keeps them for
    // the archive's session, and nothing is lost or doubled.
    a.kill();
    let sim2 = log("sim-2", 60);
    publish(&broker, bench.path(), "sim-2", &sim2, 1);
    let a2 = broker.archive(&bench, SITE, &db, "archive-2");
    let v = status_when(&db, "sim-2", 60);
    let sim2_row = v["gateways"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["key"]["gateway"] == "sim-2"))
        .cloned()
        .expect("sim-2 is archived");
    assert_eq!(sim2_row["last_seq"], 60);
    assert_eq!(sim2_row["missing"], 0);
    assert_eq!(sim2_row["anomalies"], 0);
    assert_eq!(kept(&db_file, "sim-2"), sim2);

    // The gap filled from the gateway's own export.
    let fill = bench.path().join("sim-1-export.jsonl");
    let mut text = Vec::new();
    for r in &sim1[10..15] {
        text.extend_from_slice(r);
        text.push(b'\n');
    }
    std::fs::write(&fill, text).expect("writable");
    // A second file with record 14 again, edited: a conflict, not a
    // silent choice between the two.
    let other = bench.path().join("sim-1-other.jsonl");
    let edited14 = String::from_utf8(sim1[13].clone())
        .unwrap()
        .replace("simulated", "SIMULATED");
    assert_ne!(edited14.as_bytes(), sim1[13].as_slice());
    std::fs::write(&other, format!("{edited14}\n")).expect("writable");
    let (code, said, err) = run(&[
        "archive",
        "import",
        &fill.display().to_string(),
        &other.display().to_string(),
        "--site",
        SITE,
        "--database",
        &db,
    ]);
    assert_eq!(code, 1, "a conflict: {said}{err}");
    assert!(
        said.contains("st-test/sim-1: 5 record(s) kept, 0 already there"),
        "{said}"
    );
    assert!(said.contains("CONFLICT  st-test/sim-1 record 14"), "{said}");
    let (_, said, _) = run(&["archive", "status", "--database", &db]);
    assert!(
        !said.contains("GAP  st-test/sim-1: records 11 to 15 missing"),
        "{said}"
    );
    assert_eq!(kept(&db_file, "sim-1")[..30], sim1[..]);
    drop(a2);
}

#[test]
fn a_real_postgresql_server_holds_the_archive_with_the_same_checks() {
    let pg = Postgres::start(false);
    let url = pg.database("archive");
    let broker = Broker::start();
    let bench = Bench::new();
    // The schema is made at first open and is at version 1.
    let (code, said, err) = run(&["archive", "status", "--database", &url]);
    assert_eq!(code, 0, "{said}{err}");
    assert!(
        said.contains("PostgreSQL postgres://pumpgw@127.0.0.1:"),
        "{said}"
    );
    assert_eq!(
        pg.sql("archive", "SELECT version FROM archive_schema")
            .trim(),
        "1"
    );

    let a = broker.archive(&bench, SITE, &url, "archive");
    let sims: Vec<(String, Vec<Vec<u8>>)> = (1..=5)
        .map(|i| {
            let g = format!("pg-{i}");
            let l = log(&g, 40);
            (g, l)
        })
        .collect();
    for (g, l) in &sims {
        publish(&broker, bench.path(), g, &l[..20], 1);
        publish(&broker, bench.path(), g, &l[25..], 26);
    }
    for (g, _) in &sims {
        status_when(&url, g, 35);
    }
    assert_eq!(
        pg.sql("archive", "SELECT COUNT(*) FROM records").trim(),
        "175"
    );
    // Byte for byte as the gateways hashed them.
    let first = pg.sql(
        "archive",
        "SELECT encode(record, 'escape') FROM records WHERE gateway = 'pg-3' AND seq = 7",
    );
    assert_eq!(first.trim_end().as_bytes(), sims[2].1[6].as_slice());
    let (code, said, _) = run(&["archive", "status", "--database", &url]);
    assert_eq!(code, 1);
    assert!(
        said.contains("GAP  st-test/pg-4: records 21 to 25 missing"),
        "{said}"
    );
    drop(a);

    // Filled from an export file, checked against both neighbours.
    let fill = bench.path().join("fill.jsonl");
    let mut text = Vec::new();
    for (_, l) in &sims {
        for r in &l[20..25] {
            text.extend_from_slice(r);
            text.push(b'\n');
        }
    }
    std::fs::write(&fill, text).expect("writable");
    let f = fill.display().to_string();
    let (code, said, err) = run(&["archive", "import", &f, "--site", SITE, "--database", &url]);
    assert_eq!(code, 0, "{said}{err}");
    assert_eq!(
        pg.sql("archive", "SELECT COUNT(*) FROM records").trim(),
        "200"
    );
    let (_, said, _) = run(&["archive", "status", "--database", &url]);
    assert!(!said.contains("records 21 to 25 missing"), "{said}");
    // Imported twice: all already there.
    let (code, said, _) = run(&["archive", "import", &f, "--site", SITE, "--database", &url]);
    assert_eq!(code, 0);
    assert!(said.contains("0 record(s) kept, 5 already there"), "{said}");
}
