//! Pump-link benchmarks (`cargo bench -p pumpgw-daemon --bench link`):
//!
//! - `codec/*`: encoding and decoding typical frames, reported as bytes/s;
//!   divide by 11,520 bytes/s (115200 baud, 8N1) for the margin over the
//!   line rate;
//! - `end_to_end/programme_request`: the real gateway (`gateway::run`) on
//!   a pseudo-terminal; the time from the last byte of a programme request
//!   written to the PTY to the whole AUTHORISATION frame read back (an upper
//!   bound on the time to its first byte). Compare with one 300-byte frame's
//!   transmission time at 115200 baud, 26 ms.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{SinkExt, StreamExt};
use pumpgw::gateway::{self, Config, Snapshot};
use pumpgw::link::message::{Hello, ProgrammeRequest, PumpState, Status};
use pumpgw::link::{Endpoint, Frame, Header, LinkCodec, Message, Received, Timing, sha256};
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::codec::{Decoder, Encoder, Framed};

const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/drug-library.example.json"
);

fn status() -> Message {
    Message::Status(Status {
        state: PumpState::Infusing,
        drug: Some("fentanyl".to_owned()),
        flow_rate: Some("1.4 mL/h".to_owned()),
        dose_rate: Some("1 micrograms/kg/h".to_owned()),
        volume_infused: Some("12.5 mL".to_owned()),
        volume_remaining: Some("37.5 mL".to_owned()),
        battery_percent: 87,
        on_mains: true,
        alarms: vec![],
    })
}

fn programme(request: u32) -> Message {
    let t = |s: &str| ciborium::Value::Text(s.to_owned());
    Message::ProgrammeRequest(ProgrammeRequest {
        request,
        programme: ciborium::Value::Map(vec![
            (t("drug"), t("fentanyl")),
            (t("library_version"), ciborium::Value::Integer(12.into())),
            (t("requested_at"), t("2026-11-21T03:00:00Z")),
            (t("care_area"), t("adult-icu")),
            (t("patient_weight"), t("70 kg")),
            (
                t("container"),
                ciborium::Value::Map(vec![
                    (t("concentration"), t("2500 micrograms in 50 mL")),
                    (t("volume_loaded"), t("50 mL")),
                    (t("volume_remaining"), t("50 mL")),
                    (t("load"), ciborium::Value::Integer(1.into())),
                ]),
            ),
            (
                t("delivery"),
                ciborium::Value::Map(vec![
                    (t("kind"), t("continuous")),
                    (t("rate"), t("50 micrograms/h")),
                    (t("pump_flow_rate"), t("1 mL/h")),
                ]),
            ),
        ]),
    })
}

fn frame(m: &Message) -> Frame {
    Frame {
        header: Header {
            version: 1,
            kind: m.kind() as u8,
            seq: 42,
            ack: 41,
        },
        payload: m.payload(),
    }
}

fn codec(c: &mut Criterion) {
    for (name, m) in [("status", status()), ("programme_request", programme(1))] {
        let f = frame(&m);
        let wire = f.to_wire().expect("fits");
        let mut g = c.benchmark_group(format!("codec/{name}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("encode", |b| {
            let mut codec = LinkCodec::default();
            let mut buf = BytesMut::with_capacity(2048);
            b.iter(|| {
                buf.clear();
                codec.encode(black_box(&f), &mut buf).expect("encodes");
            });
        });
        g.bench_function("decode", |b| {
            let mut codec = LinkCodec::default();
            b.iter(|| {
                let mut buf = BytesMut::from(black_box(&wire[..]));
                black_box(codec.decode(&mut buf).expect("decodes"));
            });
        });
        g.finish();
    }
}

/// A controller on the PTY master, handshaken with the gateway.
struct Controller {
    framed: Framed<SerialStream, LinkCodec>,
    endpoint: Endpoint,
    _slave: SerialStream,
}

impl Controller {
    async fn flush(&mut self) {
        for f in self.endpoint.take_outgoing() {
            self.framed.feed(&f).await.expect("PTY writes");
        }
        self.framed.flush().await.expect("PTY flushes");
    }

    /// Reads until a message matching `want` arrives, answering ACKs.
    async fn until(&mut self, want: impl Fn(&Message) -> bool) -> Message {
        loop {
            let p = self.framed.next().await.expect("open").expect("reads");
            if let Received::Message(m, _) = self.endpoint.receive(p, tokio::time::Instant::now()) {
                self.flush().await;
                if want(&m) {
                    return m;
                }
            } else {
                self.flush().await;
            }
        }
    }
}

fn end_to_end(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("pump");
    // The PTY's async file descriptors register with the runtime.
    let _enter = rt.enter();
    let (master, slave) = SerialStream::pair().expect("a PTY pair");
    std::os::unix::fs::symlink(slave.name().expect("slave has a name"), &link).expect("link");
    let socket = dir.path().join("terminal.sock");
    let config = Config::parse(
        &format!(
            "gateway_id = \"bench\"\ncare_area = \"adult-icu\"\ndata_dir = {:?}\n[terminal]\nsocket = {:?}\n[[port]]\nname = \"p\"\npath = {:?}\n",
            dir.path().display().to_string(),
            socket.display().to_string(),
            link.display().to_string()
        ),
        "bench",
    )
    .expect("config");
    let mut staff = pumpgw::staff::Roster::default();
    staff
        .add(
            "n.bench",
            "Bench Nurse",
            pumpgw::library::Role::Nurse,
            "482916",
        )
        .expect("a valid nurse");
    staff.save(&config.staff_file()).expect("staff file");
    let library = std::fs::read(LIBRARY).expect("library");
    pumpgw::sim::library::install_library(dir.path(), "bench", "adult-icu", &library)
        .expect("the example library installs");
    let stop = tokio_util::sync::CancellationToken::new();
    let (view, _) = tokio::sync::watch::channel(Snapshot::default());
    let stopping = stop.clone();
    let gw = rt.spawn(gateway::run(
        config,
        async move { stopping.cancelled().await },
        view,
    ));
    let mut pump = rt.block_on(async {
        let mut pump = Controller {
            framed: Framed::new(master, LinkCodec::new(Arc::default())),
            endpoint: Endpoint::new(
                Timing::default(),
                Arc::default(),
                tokio::time::Instant::now(),
            ),
            _slave: slave,
        };
        let hello = Message::Hello(Hello {
            versions: vec![1],
            manufacturer: "bench".to_owned(),
            model: "bench".to_owned(),
            serial: "B1".to_owned(),
            firmware: "1".to_owned(),
            care_area: Some("adult-icu".to_owned()),
            library_version: Some(12),
            library_hash: Some(sha256(&library)),
        });
        pump.endpoint
            .send(hello, tokio::time::Instant::now())
            .expect("queue");
        pump.flush().await;
        pump.until(|m| matches!(m, Message::Welcome(_))).await;
        pump.endpoint.activate(tokio::time::Instant::now());
        // The syringe (load 1) is confirmed once, at the terminal; from
        // then on its programmes need nobody, which is what is timed.
        confirm_load(&mut pump, &socket).await;
        pump
    });
    let mut request = 1;
    c.bench_function("end_to_end/programme_request", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    request += 1;
                    pump.endpoint
                        .send(programme(request), tokio::time::Instant::now())
                        .expect("queue");
                    pump.flush().await;
                    let sent = Instant::now();
                    let answer = pump
                        .until(|m| matches!(m, Message::Authorisation(_) | Message::Denial(_)))
                        .await;
                    total += sent.elapsed();
                    assert!(matches!(answer, Message::Authorisation(_)), "{answer:?}");
                }
                total
            })
        });
    });
    stop.cancel();
    rt.block_on(gw).expect("gateway task").expect("gateway ran");
}

/// Request 1: the nurse types the label at the terminal; the pump gets its
/// authorisation.
async fn confirm_load(pump: &mut Controller, socket: &std::path::Path) {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("the terminal socket");
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    write
        .write_all(b"{\"type\":\"hello\",\"protocol\":1,\"terminal\":\"bench\"}\n")
        .await
        .expect("hello");
    // Welcomed means counted as connected: only then can a programme wait
    // for a person rather than be denied for want of a terminal.
    let welcome = lines.next_line().await.expect("reads").expect("open");
    assert!(welcome.contains("\"welcome\""), "{welcome}");
    pump.endpoint
        .send(programme(1), tokio::time::Instant::now())
        .expect("queue");
    pump.flush().await;
    let waiting = pump
        .until(|m| {
            matches!(
                m,
                Message::AwaitingConfirmation(_) | Message::Authorisation(_) | Message::Denial(_)
            )
        })
        .await;
    assert!(
        matches!(waiting, Message::AwaitingConfirmation(_)),
        "{waiting:?}"
    );
    let card = loop {
        let line = lines.next_line().await.expect("reads").expect("open");
        let m: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        if m["type"] == "confirmations" && m["open"][0].is_object() {
            break m["open"][0].clone();
        }
    };
    let confirm = serde_json::json!({
        "type": "confirm", "id": card["id"], "screen_hash": card["screen_hash"],
        "signers": [{"staff_id": "n.bench", "pin": "482916"}],
        "concentration": "2500 micrograms in 50 mL",
    });
    write
        .write_all(format!("{confirm}\n").as_bytes())
        .await
        .expect("confirm");
    let answer = pump
        .until(|m| matches!(m, Message::Authorisation(_) | Message::Denial(_)))
        .await;
    assert!(matches!(answer, Message::Authorisation(_)), "{answer:?}");
}

criterion_group!(benches, codec, end_to_end);
criterion_main!(benches);
