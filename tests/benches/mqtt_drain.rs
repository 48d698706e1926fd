//! Drain benchmark (issue 5): a backlog of 100,000 event records in a
//! gateway's log, drained by the real `pumpgwd run` to a real Mosquitto on
//! loopback, against `mosquitto_pub` publishing the very same payloads at
//! QoS 1 from a file (`-l`), on the same machine in the same run.
//!
//! Run (release binaries first: the bench drives the real daemon):
//!
//! ```text
//! cargo build --release --bins && cargo bench -p pumpgw-tests --bench mqtt_drain
//! ```
//!
//! What is timed:
//! - pumpgwd: from starting the process to the outbox cursor on disk
//!   reaching the head of the log (every batch acknowledged by the broker,
//!   and that saved), polled every millisecond. Process start, opening the
//!   store and connecting are included. Also the drain alone: from "MQTT
//!   connected" appearing in its log to the same point.
//! - `mosquitto_pub`: from starting the process to its exit (it exits once
//!   every message is acknowledged). Process start and connecting are
//!   included.
//!
//! The daemon's peak RSS is its `VmHWM` from /proc after the drain.
//!
//! Under `cargo test` (no `--bench` argument) it runs once on 2,000 records
//! as a check that it still works, without timing claims.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use pumpgw::store::outbox::{self, BatchLimits, Origin};
use pumpgw::store::{Store, StoreError};
use pumpgw_tests::mqtt::Broker;
use pumpgw_tests::{Bench, peak_rss_kib};

fn cursor_and_head(file: &Path) -> Result<(u64, u64), StoreError> {
    let s = Store::open_read_only(file)?;
    Ok((outbox::cursor(&s)?.acked_seq, outbox::head(&s)?))
}

/// The payloads the gateway will publish, one per line.
fn payload_file(bench: &Bench, batch: usize) -> (std::path::PathBuf, usize, u64) {
    let store = Store::open_read_only(&Store::file_in(bench.path())).expect("the store");
    let origin = Origin {
        site: "bench".to_owned(),
        gateway: "test-bed".to_owned(),
    };
    let limits = BatchLimits {
        max_records: batch,
        max_bytes: 256 * 1024,
    };
    let path = bench.path().join("payloads.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("writable"));
    let (mut after, mut batches, mut bytes) = (0, 0, 0u64);
    loop {
        let b = outbox::batches(&store, &origin, after, limits, 64).expect("batches");
        if b.is_empty() {
            break;
        }
        for x in &b {
            assert!(!x.payload.contains(&b'\n'), "one payload per line");
            out.write_all(&x.payload).expect("writable");
            out.write_all(b"\n").expect("writable");
            bytes += x.payload.len() as u64;
            after = x.last;
            batches += 1;
        }
    }
    out.flush().expect("writable");
    (path, batches, bytes)
}

fn mosquitto_pub(broker: &Broker, payloads: &Path) -> Duration {
    let start = Instant::now();
    let status = broker
        .publisher()
        .args(["-t", "pumpgw/v1/bench/mosquitto-pub/events", "-l"])
        .stdin(std::fs::File::open(payloads).expect("the payloads"))
        .stdout(Stdio::null())
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success(), "mosquitto_pub failed");
    start.elapsed()
}

#[allow(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52, turned into figures for display"
)]
fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let events: u64 = if timed { 100_000 } else { 2_000 };
    let batch = 100;
    let bench = Bench::new();
    pumpgw_tests::prefill(bench.path(), events);
    let (payloads, batches, bytes) = payload_file(&bench, batch);
    let broker = Broker::start();

    let pub_time = mosquitto_pub(&broker, &payloads);

    let config = format!(
        "[mqtt]\nbroker = {:?}\nsite = \"bench\"\nbatch_max_events = {batch}\n",
        broker.url()
    );
    let file = Store::file_in(bench.path());
    // The library is installed and the config written before the clock starts.
    let library = std::fs::read(pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY))
        .expect("the example library");
    pumpgw::sim::library::install_library(bench.path(), "test-bed", "adult-icu", &library)
        .expect("the library installs");
    let config_path = bench.gateway_config(&["p1"], &config).display().to_string();
    let start = Instant::now();
    let mut gw = bench.spawn_with_input(
        "gateway",
        "pumpgwd",
        &["run", "--config", &config_path],
        None,
    );
    let mut connected: Option<Instant> = None;
    loop {
        if connected.is_none() && gw.count(&["MQTT connected"]) > 0 {
            connected = Some(Instant::now());
        }
        if let Ok((acked, head)) = cursor_and_head(&file)
            && acked >= head
            && head > events
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the drain did not finish:\n{}",
            gw.log_text()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let gw_time = start.elapsed();
    let drain_time = connected.map_or(gw_time, |c| c.elapsed());
    let rss = peak_rss_kib(gw.pid());
    assert!(gw.terminate(10).success());

    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    println!(
        "drain of {events} events ({batches} batches of up to {batch}, {:.1} MiB) to Mosquitto on loopback",
        bytes as f64 / 1_048_576.0
    );
    println!(
        "  pumpgwd run:    {:>7.3} s  {:>9.0} events/s  from process start; peak RSS {:.1} MiB",
        gw_time.as_secs_f64(),
        rate(gw_time),
        rss as f64 / 1024.0
    );
    println!(
        "    of which drain {:>6.3} s  {:>9.0} events/s  from MQTT connected to the cursor at the head",
        drain_time.as_secs_f64(),
        rate(drain_time),
    );
    println!(
        "  mosquitto_pub:  {:>7.3} s  {:>9.0} events/s  (same payloads, QoS 1, -l)",
        pub_time.as_secs_f64(),
        rate(pub_time)
    );
    println!(
        "  ratio (pumpgwd / mosquitto_pub, events/s): {:.2} whole process, {:.2} drain only",
        rate(gw_time) / rate(pub_time),
        rate(drain_time) / rate(pub_time)
    );
    if !timed {
        println!("  (test mode: 2,000 events, not a measurement)");
    }
}
