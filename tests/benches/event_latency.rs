//! Event latency and throughput, side by side (issue 15): ALARM frames
//! written on a pseudo-terminal by a controller built from the spec
//! (`tests/src/controller.rs`) reach a QoS 1 `mosquitto_sub` on loopback,
//!
//! - through the real `pumpgwd run` (check, commit to disk, acknowledge,
//!   publish the committed record), and
//! - through Node-RED 4 (serial in, split at 0x00, MQTT out at QoS 1; no
//!   check, no disk), when it is installed in `target/node-red`
//!   (`tests/measure/side-by-side` installs it from npm and runs this).
//!
//! Each side: 2,000 events paced every 2 ms (latency from the write of the
//! frame to `mosquitto_sub`'s own receipt time, `-F %U`), then a burst of
//! 20,000 as fast as the link takes them (events per second from the first
//! write to the last receipt; CPU time of the process per event from
//! /proc; its peak RSS). pumpgw acknowledges each event once it is on
//! disk: in protocol version 1 its controller waits for each ACK (stop and
//! wait), in version 2 it keeps WELCOME's window of frames in flight, so
//! one commit covers several events; both are measured. Node-RED
//! acknowledges nothing, so its controller only paces.
//!
//! Run: `cargo build --release --bins && cargo bench -p pumpgw-tests --bench
//! event_latency`. Under `cargo test` it runs once, small, without
//! Node-RED, as a check that it still works (no timing claims).

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "times and counts far below 2^52, turned into figures for display"
)]

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pumpgw::link::Message;
use pumpgw::link::message::{Alarm, AlarmPriority};
use pumpgw_tests::controller::{Controller, paper_unstuff};
use pumpgw_tests::mqtt::Broker;
use pumpgw_tests::{Bench, peak_rss_kib};

/// Nanoseconds since the Unix epoch, now.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos()
}

fn alarm(record: u64) -> Message {
    Message::Alarm(Alarm {
        record,
        id: 1,
        priority: AlarmPriority::Low,
        condition: "bench".to_owned(),
        text: format!("bench {record}"),
        active: record % 2 == 1,
        at_ms: u64::try_from(now_ns() / 1_000_000).expect("ms fit in u64"),
    })
}

/// CPU time (user + system) a process has used so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command: state is field 0, utime 11, stime 12.
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(100);
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// `mosquitto_sub` at QoS 1 printing its receipt time and the payload.
struct Sub {
    child: Child,
    out: PathBuf,
}

impl Sub {
    fn start(broker: &Broker, topic: &str, format: &str, out: PathBuf) -> Sub {
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-q", "1"])
            .args(["-t", topic, "-F", format])
            .stdout(std::fs::File::create(&out).expect("writable"))
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub runs");
        std::thread::sleep(Duration::from_millis(300));
        Sub { child, out }
    }

    /// Each line's receipt time (ns) and the rest.
    fn lines(&self) -> Vec<(u128, String)> {
        let f = std::fs::File::open(&self.out).expect("readable");
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                let (ts, rest) = l.split_once(' ')?;
                let (s, ns) = ts.split_once('.')?;
                let t = s.parse::<u128>().ok()? * 1_000_000_000 + ns.parse::<u128>().ok()?;
                Some((t, rest.to_owned()))
            })
            .collect()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The figures of one side.
#[derive(Default)]
struct Figures {
    /// From the write of the frame to its ACK (on disk), for a side that
    /// acknowledges.
    acked_p50_ms: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    burst_per_s: f64,
    cpu_ms_per_event: f64,
    rss_mib: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Waits until `received` holds `n` records or `secs` pass.
fn wait_for(received: impl Fn() -> usize, n: usize, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while received() < n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `n` alarms from `first`, paced `every` (none: as fast as the
/// link takes them), each waiting for its ACK when `acked` is given (which
/// collects the times to it, in ms); returns the write times by record.
fn play(
    c: &mut Controller,
    first: u64,
    n: u64,
    every: Option<Duration>,
    mut acked: Option<&mut Vec<f64>>,
) -> Vec<(u64, u128)> {
    let start = Instant::now();
    let mut sent = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 0..n {
        if let Some(every) = every {
            let at = start + every * u32::try_from(i).expect("counts fit u32");
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let record = first + i;
        let t = now_ns();
        if let Some(acked) = acked.as_mut() {
            c.send(&alarm(record));
            acked.push((now_ns() - t) as f64 / 1e6);
        } else {
            c.send_unacknowledged(&alarm(record));
        }
        sent.push((record, t));
    }
    sent
}

fn figures(
    sent_paced: &[(u64, u128)],
    sent_burst: &[(u64, u128)],
    received: &std::collections::HashMap<u64, u128>,
    cpu_burst: Duration,
    rss_kib: u64,
) -> Figures {
    let mut lat: Vec<f64> = sent_paced
        .iter()
        .filter_map(|(r, t)| received.get(r).map(|g| (*g as f64 - *t as f64) / 1e6))
        .collect();
    lat.sort_by(f64::total_cmp);
    let first = sent_burst.first().map_or(0, |s| s.1);
    let last = sent_burst
        .iter()
        .filter_map(|(r, _)| received.get(r))
        .max()
        .copied()
        .unwrap_or(first);
    let secs = (last.saturating_sub(first)) as f64 / 1e9;
    assert_eq!(
        lat.len(),
        sent_paced.len(),
        "every paced event reached the subscriber"
    );
    Figures {
        acked_p50_ms: None,
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        burst_per_s: sent_burst.len() as f64 / secs,
        cpu_ms_per_event: cpu_burst.as_secs_f64() * 1e3 / sent_burst.len() as f64,
        rss_mib: rss_kib as f64 / 1024.0,
    }
}

fn pumpgw_side(broker: &Broker, version: u8, paced: u64, burst: u64) -> Figures {
    let bench = Bench::new();
    let sub = Sub::start(
        broker,
        "pumpgw/v1/+/+/events",
        "%U %p",
        bench.path().join("sub.txt"),
    );
    let mut c = Controller::plug(&bench.path().join("p1")).speaking(&[version]);
    let mut gw = bench.gateway(
        &["p1"],
        &format!("[mqtt]\nbroker = {:?}\nsite = \"bench\"\n", broker.url()),
    );
    gw.wait_for(&["MQTT connected"], 1, 10);
    c.hello("BENCH-1");
    assert_eq!(
        c.session().0,
        version,
        "the gateway speaks version {version}"
    );
    let received = || {
        let mut got = std::collections::HashMap::new();
        for (t, payload) in sub.lines() {
            let Ok(batch) = serde_json::from_str::<serde_json::Value>(&payload) else {
                continue;
            };
            for r in batch["records"].as_array().into_iter().flatten() {
                if r["type"] == "alarm"
                    && let Some(n) = r["pump_record"].as_u64()
                {
                    got.entry(n).or_insert(t);
                }
            }
        }
        got
    };
    let mut acked = Vec::new();
    let sent_paced = play(
        &mut c,
        1,
        paced,
        Some(Duration::from_millis(2)),
        Some(&mut acked),
    );
    wait_for(|| received().len(), usize::try_from(paced).unwrap_or(0), 30);
    let before = cpu(gw.pid());
    let t0 = now_ns();
    c.send_all((paced + 1..=paced + burst).map(alarm));
    let sent_burst: Vec<(u64, u128)> = (paced + 1..=paced + burst).map(|r| (r, t0)).collect();
    let total = usize::try_from(paced + burst).unwrap_or(0);
    wait_for(|| received().len(), total, 120);
    let used = cpu(gw.pid()).saturating_sub(before);
    let rss = peak_rss_kib(gw.pid());
    let got = received();
    assert!(gw.terminate(10).success());
    acked.sort_by(f64::total_cmp);
    Figures {
        acked_p50_ms: Some(percentile(&acked, 0.5)),
        ..figures(&sent_paced, &sent_burst, &got, used, rss)
    }
}

fn node_red_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NODE_RED_DIR").map_or_else(
        || pumpgw_tests::repo_root().join("target/node-red"),
        PathBuf::from,
    );
    dir.join("node_modules/node-red/red.js")
        .exists()
        .then_some(dir)
}

fn node_red_side(dir: &Path, broker: &Broker, paced: u64, burst: u64) -> Figures {
    let bench = Bench::new();
    let sub = Sub::start(
        broker,
        "nodered/events",
        "%U %x",
        bench.path().join("sub.txt"),
    );
    let mut c = Controller::plug(&bench.path().join("p1"));
    let port = pumpgw_tests::mqtt::free_port();
    let flow = serde_json::json!([
        {"id": "serial", "type": "serial-port", "serialport": bench.path().join("p1").display().to_string(),
         "serialbaud": "115200", "databits": "8", "parity": "none", "stopbits": "1",
         "waitfor": "", "dtr": "none", "rts": "none", "cts": "none", "dsr": "none",
         "newline": "0x00", "bin": "bin", "out": "char", "addchar": "", "responsetimeout": "10000"},
        {"id": "broker", "type": "mqtt-broker", "broker": "127.0.0.1", "port": broker.port.to_string(),
         "clientid": "nodered-bench", "protocolVersion": "4", "keepalive": "60", "cleansession": true},
        {"id": "tab", "type": "tab", "label": "bench"},
        {"id": "in", "type": "serial in", "z": "tab", "serial": "serial", "wires": [["out"]]},
        {"id": "out", "type": "mqtt out", "z": "tab", "topic": "nodered/events", "qos": "1",
         "retain": "false", "broker": "broker", "wires": []}
    ]);
    let flows = bench.path().join("flows.json");
    std::fs::write(&flows, flow.to_string()).expect("writable");
    let log = bench.path().join("node-red.log");
    let mut red = Command::new("node")
        .arg(dir.join("node_modules/node-red/red.js"))
        .args([
            "--userDir",
            &bench.path().display().to_string(),
            "-p",
            &port.to_string(),
        ])
        .arg(&flows)
        .current_dir(dir)
        .stdout(std::fs::File::create(&log).expect("writable"))
        .stderr(Stdio::null())
        .spawn()
        .expect("node runs");
    let until = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Connected to broker")
    {
        assert!(
            Instant::now() < until,
            "Node-RED did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let received = || {
        let mut got = std::collections::HashMap::new();
        for (t, hex) in sub.lines() {
            let Ok(mut bytes) = hex::decode(hex.trim()) else {
                continue;
            };
            // Node-RED keeps the delimiter it split on.
            while bytes.last() == Some(&0) {
                bytes.pop();
            }
            let Some(frame) =
                paper_unstuff(&bytes).and_then(|raw| pumpgw::link::Frame::from_raw(&raw).ok())
            else {
                continue;
            };
            if let Ok(Message::Alarm(a)) = Message::decode(frame.header.kind, &frame.payload) {
                got.entry(a.record).or_insert(t);
            }
        }
        got
    };
    let sent_paced = play(&mut c, 1, paced, Some(Duration::from_millis(2)), None);
    wait_for(|| received().len(), usize::try_from(paced).unwrap_or(0), 30);
    let before = cpu(red.id());
    let sent_burst = play(&mut c, paced + 1, burst, None, None);
    let total = usize::try_from(paced + burst).unwrap_or(0);
    wait_for(|| received().len(), total, 120);
    let used = cpu(red.id()).saturating_sub(before);
    let rss = peak_rss_kib(red.id());
    let got = received();
    let _ = red.kill();
    let _ = red.wait();
    figures(&sent_paced, &sent_burst, &got, used, rss)
}

/// Lets the disk finish writing what the last side left (its log of
/// 22,000 events, deleted but still being written back), so that the next
/// side's fsyncs do not queue behind it: each side starts on a quiet disk.
fn settle() {
    nix::unistd::sync();
    std::thread::sleep(Duration::from_secs(2));
}

fn print(name: &str, f: &Figures) {
    if let Some(acked) = f.acked_p50_ms {
        println!("  {name:<10} on disk (ACK at the controller) p50 {acked:>6.2} ms");
    }
    println!(
        "  {name:<10} p50 {:>6.2} ms  p99 {:>6.2} ms  burst {:>7.0} events/s  CPU {:>5.3} ms/event  peak RSS {:>6.1} MiB",
        f.p50_ms, f.p99_ms, f.burst_per_s, f.cpu_ms_per_event, f.rss_mib
    );
}

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let (paced, burst) = if timed { (2_000, 20_000) } else { (200, 1_000) };
    let broker = Broker::start();
    settle();
    let stop_and_wait = pumpgw_side(&broker, 1, paced, burst);
    settle();
    let ours = pumpgw_side(&broker, 2, paced, burst);
    println!(
        "ALARM frames on a pseudo-terminal to a QoS 1 mosquitto_sub on loopback: {paced} paced at 2 ms, then a burst of {burst}"
    );
    print("pumpgw v1", &stop_and_wait);
    print("pumpgw v2", &ours);
    match (timed, node_red_dir()) {
        (true, Some(dir)) => {
            settle();
            let theirs = node_red_side(&dir, &broker, paced, burst);
            print("Node-RED", &theirs);
            println!(
                "  pumpgw v2 / Node-RED: p50 {:.2}x  p99 {:.2}x  burst {:.3}x  CPU {:.1}x  RSS {:.2}x",
                ours.p50_ms / theirs.p50_ms,
                ours.p99_ms / theirs.p99_ms,
                ours.burst_per_s / theirs.burst_per_s,
                ours.cpu_ms_per_event / theirs.cpu_ms_per_event,
                ours.rss_mib / theirs.rss_mib
            );
        }
        (true, None) => println!(
            "  Node-RED: not installed in target/node-red (tests/measure/side-by-side installs it)"
        ),
        (false, _) => println!("  (test mode: small counts, not a measurement)"),
    }
    let _ = std::io::stdout().flush();
}
