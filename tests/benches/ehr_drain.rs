//! The EHR outbox's drain rate (issue 17): a backlog of infusions in a
//! gateway's log (each a programme, its authorisation, a start and a
//! completion: two deliveries, four messages), drained by the real
//! `pumpgwd run` to a local MLLP receiver on loopback that acknowledges
//! each message as soon as it has read it (a few lines here, so the
//! receiver is not what is measured).
//!
//! Run: `cargo build --release --bins && cargo bench -p pumpgw-tests --bench
//! ehr_drain`. Timed: from starting the process to the last message
//! acknowledged (process start, opening the store and reading the
//! programmes included), and from the first message received to the last.
//! Under `cargo test` it drains 50 infusions as a check that it still
//! works (no timing claims).

#![allow(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52, turned into figures for display"
)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pumpgw::store::{Context, Event, Store, ehr_outbox, log::Log};
use pumpgw_tests::{Bench, peak_rss_kib};

/// `n` infusions of fentanyl on p1, as the core logs them.
fn prefill_infusions(data_dir: &Path, n: u32) {
    let mut log = Log::new(Store::open(&Store::file_in(data_dir)).expect("the store opens"))
        .expect("the log opens");
    let ctx = Context {
        gateway: "test-bed".to_owned(),
        pump: Some("p1".to_owned()),
        care_area: "adult-icu".to_owned(),
        library_version: Some(12),
    };
    let programme = serde_json::json!({
        "drug": "fentanyl", "library_version": 12, "requested_at": "2026-12-04T10:00:00Z",
        "patient_weight": "70 kg",
        "container": {"concentration": "2500 micrograms in 50 mL", "volume_loaded": "50 mL", "volume_remaining": "50 mL"},
        "delivery": {"kind": "continuous", "rate": "50 micrograms/h", "vtbi": "1 mL", "pump_flow_rate": "1 mL/h"}
    });
    let now = time::OffsetDateTime::now_utc();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(250) {
        let mut events = Vec::new();
        for &request in chunk {
            let hash = format!("{request:064x}");
            let token = format!("{request:032x}");
            let delivery = |event: &str, record: u64, infused: &str| Event::Delivery {
                event: event.to_owned(),
                request,
                token: token.clone(),
                pump_serial: "A0001".to_owned(),
                pump_record: record,
                pump_at: now,
                volume_infused: infused.to_owned(),
                amount_infused: None,
            };
            events.extend([
                Event::ProgrammeRequested {
                    request,
                    programme_hash: hash.clone(),
                    programme: programme.clone(),
                },
                Event::Authorised {
                    request,
                    programme_hash: hash.clone(),
                    token: token.clone(),
                    expires: now + time::Duration::minutes(2),
                },
                delivery("started", u64::from(request) * 2, "0 mL"),
                delivery("completed", u64::from(request) * 2 + 1, "1 mL"),
            ]);
        }
        log.append(events.into_iter().map(|e| (ctx.clone(), e)).collect(), now)
            .expect("the backlog is written");
    }
}

/// Accepts connections and acknowledges every message; counts them and
/// when the first came.
fn receiver(listener: &TcpListener, count: &AtomicU64, first: &Mutex<Option<Instant>>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(2).position(|w| w == [0x1C, 0x0D]) {
                let start = buf.iter().position(|b| *b == 0x0B).unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[start + 1..end]).into_owned();
                buf.drain(..end + 2);
                let control = text.split('|').nth(9).unwrap_or_default().to_owned();
                first
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert_with(Instant::now);
                let ack = format!(
                    "\x0bMSH|^~\\&|EHR|EHR|||20261204||ACK|A{control}|P|2.6\rMSA|AA|{control}\r\x1c\r"
                );
                if stream.write_all(ack.as_bytes()).is_err() {
                    break;
                }
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let infusions: u32 = if timed { 2_500 } else { 50 };
    let messages = u64::from(infusions) * 4;
    let bench = Bench::new();
    let library = std::fs::read(pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY))
        .expect("the example library");
    pumpgw::sim::library::install_library(bench.path(), "test-bed", "adult-icu", &library)
        .expect("the library installs");
    // The EHR's cursor before the backlog: all of it is to be sent.
    {
        let store = Store::open(&Store::file_in(bench.path())).expect("the store");
        ehr_outbox::start(&store).expect("the cursor");
    }
    prefill_infusions(bench.path(), infusions);
    let listener = TcpListener::bind("127.0.0.1:0").expect("loopback");
    let ehr = listener.local_addr().expect("bound");
    let listen = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback");
    let count = Arc::new(AtomicU64::new(0));
    let first = Arc::new(Mutex::new(None));
    {
        let (count, first) = (count.clone(), first.clone());
        std::thread::spawn(move || receiver(&listener, &count, &first));
    }
    let config = format!("[ehr]\nlisten = \"{listen}\"\nsend_to = \"{ehr}\"\n");
    let config_path = bench.gateway_config(&["p1"], &config).display().to_string();
    let start = Instant::now();
    let mut gw = bench.spawn_with_input(
        "gateway",
        "pumpgwd",
        &["run", "--config", &config_path],
        None,
    );
    let until = start + Duration::from_secs(600);
    while count.load(Ordering::SeqCst) < messages {
        assert!(Instant::now() < until, "not drained: {}", gw.log_text());
        std::thread::sleep(Duration::from_millis(1));
    }
    let total = start.elapsed();
    let drain = first
        .lock()
        .expect("not poisoned")
        .map_or(total, |f| f.elapsed());
    let rss = peak_rss_kib(gw.pid());
    assert!(gw.terminate(20).success(), "{}", gw.log_text());
    let s = Store::open_read_only(&Store::file_in(bench.path())).expect("the store");
    let cursor = ehr_outbox::cursor(&s).expect("readable").expect("made");
    assert_eq!(
        cursor.messages, messages,
        "every message counted as acknowledged"
    );
    if timed {
        println!(
            "EHR outbox drain, {infusions} infusions = {messages} messages (PCD-10 + PCD-01) to a local MLLP receiver:"
        );
        println!(
            "  from process start: {:.2} s, {:.0} messages/s",
            total.as_secs_f64(),
            messages as f64 / total.as_secs_f64()
        );
        println!(
            "  first to last message: {:.2} s, {:.0} messages/s",
            drain.as_secs_f64(),
            messages as f64 / drain.as_secs_f64()
        );
        println!("  pumpgwd peak RSS: {:.1} MiB", rss as f64 / 1024.0);
    }
}
