//! The fleet archive under a hospital's load (issue 18): 200 simulated
//! gateways, each its own MQTT client (`mosquitto_pub`), publish their
//! hash-chained logs in batches of 100 records (a gateway's default) to one
//! real Mosquitto at once, as after a broker outage; the real
//! `pumpgwd archive` keeps them, checking every chain, in SQLite and then
//! in a real PostgreSQL server (its own fsync on), in the same run.
//!
//! Run: `cargo build --release --bins && cargo bench -p pumpgw-tests --bench
//! archive_ingest`. Timed: from the first batch published to the last
//! record committed, with the archive already connected. Under `cargo test`
//! 40 gateways of 500 records go into SQLite only, as a check that it still
//! works and does not stall (no timing claims).

#![allow(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52, turned into figures for display"
)]

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pumpgw::sim::fleet;
use pumpgw_tests::mqtt::Broker;
use pumpgw_tests::postgres::Postgres;
use pumpgw_tests::{Bench, peak_rss_kib};

const SITE: &str = "st-load";

struct Measured {
    seconds: f64,
    rss_kib: u64,
}

/// Every gateway's log as its batches (one JSON line each).
fn fleet_batches(gateways: u32, records: u64) -> Vec<(String, Vec<Vec<u8>>)> {
    (0..gateways)
        .map(|g| {
            let name = format!("bed-{g:03}");
            let log = fleet::plain_log(
                &name,
                records,
                time::macros::datetime!(2026-11-01 00:00 UTC),
            );
            let batches = fleet::batches(SITE, &name, &log, 1, 100);
            (name, batches)
        })
        .collect()
}

fn ingest(
    bench: &Bench,
    broker: &Broker,
    database: &str,
    fleet: &[(String, Vec<Vec<u8>>)],
    total: u64,
) -> Measured {
    let name = format!(
        "archive-{}",
        if database.starts_with("postgres") {
            "pg"
        } else {
            "sqlite"
        }
    );
    let mut archive = broker.archive(bench, SITE, database, &name);
    let mut db = pumpgw::archive::open(database).expect("the archive opens");
    let start = Instant::now();
    let mut publishers: Vec<_> = fleet
        .iter()
        .map(|(gateway, batches)| {
            let mut p = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1"])
                .args(["-i", &format!("{gateway}-{name}")])
                .args(["-t", &format!("pumpgw/v1/{SITE}/{gateway}/events"), "-l"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("mosquitto_pub runs");
            let mut stdin = p.stdin.take().expect("piped");
            let mut text = Vec::new();
            for b in batches {
                text.extend_from_slice(b);
                text.push(b'\n');
            }
            std::thread::spawn(move || {
                stdin
                    .write_all(&text)
                    .expect("mosquitto_pub reads its input");
            });
            p
        })
        .collect();
    // A liveness bound, not a speed claim: without a stall this takes
    // seconds even in a debug build.
    let until = start + Duration::from_secs(120);
    loop {
        let kept = db.count().expect("the archive reads");
        if kept >= total {
            break;
        }
        assert!(
            Instant::now() < until,
            "only {kept} of {total} kept: {}",
            archive.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let seconds = start.elapsed().as_secs_f64();
    for p in &mut publishers {
        assert!(p.wait().expect("mosquitto_pub ends").success());
    }
    let rss_kib = peak_rss_kib(archive.pid());
    assert!(archive.terminate(20).success(), "{}", archive.log_text());
    assert!(
        !archive.log_text().contains("archive anomaly"),
        "every chain whole: {}",
        archive.log_text()
    );
    assert_eq!(db.anomalies().expect("readable").len(), 0);
    assert_eq!(db.summary().expect("readable").len(), fleet.len());
    Measured { seconds, rss_kib }
}

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    // Untimed, still 200 batches at once: more than the archive's queues
    // hold, so a circular wait between reading the socket, the writer and
    // the acknowledgements would show as a stall.
    let (gateways, records) = if timed { (200, 500) } else { (40, 500) };
    let total = u64::from(gateways) * records;
    let fleet = fleet_batches(gateways, records);
    let broker = Broker::start();
    let bench = Bench::new();
    let sqlite = bench.path().join("archive.sqlite").display().to_string();
    let s = ingest(&bench, &broker, &sqlite, &fleet, total);
    let pg = timed.then(|| {
        let server = Postgres::start(true);
        let url = server.database("archive");
        let m = ingest(&bench, &broker, &url, &fleet, total);
        (server, m)
    });
    if timed {
        println!(
            "Fleet archive ingest: {gateways} gateways x {records} records = {total} records, batches of 100, one Mosquitto:"
        );
        let line = |what: &str, m: &Measured| {
            println!(
                "  {what}: {:.2} s, {:.0} records/s, archive peak RSS {:.1} MiB",
                m.seconds,
                total as f64 / m.seconds,
                m.rss_kib as f64 / 1024.0
            );
        };
        line("SQLite (WAL, synchronous=FULL)", &s);
        if let Some((_, m)) = &pg {
            line("PostgreSQL 15 (fsync on)", m);
        }
    }
}
