//! Order to answer (issue 17): PCD-03 orders sent to the real `pumpgwd
//! run`'s `[ehr]` listener over MLLP on loopback, one after another on one
//! connection, as an interface engine sends them; the time from the last
//! byte of an order written to its `ACK^O15` and to its `RRG^O16` read
//! whole (the order read, its pump and drug checked, both answers
//! written). A simulated pump with the order's serial is on the bed.
//!
//! Run: `cargo build --release --bins && cargo bench -p pumpgw-tests --bench
//! ehr_order`. Under `cargo test` it sends 20 orders as a check that it
//! still works (no timing claims).

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "times and counts far below 2^52, turned into figures for display"
)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pumpgw_tests::{Bench, repo_root};

/// Reads one MLLP frame's message.
fn frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == [0x1C, 0x0D]) {
            let start = buf.iter().position(|b| *b == 0x0B).unwrap_or(0);
            let message = buf[start + 1..end].to_vec();
            buf.drain(..end + 2);
            return message;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("the gateway answers");
        assert!(n > 0, "the gateway closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn summary(name: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "  {name}: min {:.3} ms, median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(times[0]),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(times[times.len() - 1])
    );
}

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let orders = if timed { 1_000 } else { 20 };
    let bench = Bench::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback has a free port")
        .port();
    let mut gw = bench.gateway(&["p1"], &format!("[ehr]\nlisten = \"127.0.0.1:{port}\"\n"));
    let _pump = bench.sim(
        "p1",
        "[pump]\ncare_area = \"adult-icu\"\n\n[[step]]\naction = \"wait_library\"\n\n[[step]]\naction = \"wait\"\nduration = \"1 h\"\n",
        &["--serial", "A0001"],
    );
    gw.wait_for(&["pump link up", "pump=p1"], 1, 20);
    let order = std::fs::read_to_string(repo_root().join("config/examples/ehr/fentanyl-order.hl7"))
        .expect("the example order")
        .replace('\n', "\r");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the listener is up");
    stream.set_nodelay(true).expect("a TCP socket");
    let mut buf = Vec::new();
    let (mut to_ack, mut to_result) = (Vec::new(), Vec::new());
    let all = Instant::now();
    for i in 0..orders {
        let text = order.replacen("RGV_O15|2|", &format!("RGV_O15|B{i}|"), 1);
        let mut framed = vec![0x0B];
        framed.extend_from_slice(text.as_bytes());
        framed.extend_from_slice(&[0x1C, 0x0D]);
        stream.write_all(&framed).expect("the listener takes it");
        let sent = Instant::now();
        let ack = frame(&mut stream, &mut buf);
        to_ack.push(sent.elapsed());
        let result = frame(&mut stream, &mut buf);
        to_result.push(sent.elapsed());
        let (ack, result) = (
            String::from_utf8_lossy(&ack),
            String::from_utf8_lossy(&result),
        );
        assert!(ack.contains(&format!("MSA|CA|B{i}")), "{ack}");
        assert!(result.contains(&format!("MSA|AA|B{i}")), "{result}");
    }
    let total = all.elapsed();
    println!(
        "PCD-03 order to answer, {orders} orders one after another on one MLLP connection (loopback):"
    );
    summary("to ACK^O15", &mut to_ack);
    summary("to RRG^O16", &mut to_result);
    println!(
        "  {:.0} orders/s answered",
        f64::from(orders) / total.as_secs_f64()
    );
    if !timed {
        println!("  (test mode: {orders} orders, not a measurement)");
    }
    assert!(gw.terminate(10).success());
}
