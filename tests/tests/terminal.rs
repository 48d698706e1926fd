//! The terminal service end to end: the real gateway's Unix socket, a
//! client speaking the terminal protocol, a simulated pump behind it.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::time::{Duration, Instant};

use pumpgw_tests::terminal::Terminal;
use pumpgw_tests::{Bench, example_scenario};
use serde_json::json;

#[test]
fn a_terminal_says_hello_and_sees_each_pump_in_words() {
    let bench = Bench::new();
    let socket = bench.path().join("terminal.sock");
    let extra = format!("[terminal]\nsocket = {:?}\n", socket.display().to_string());
    let mut gw = bench.gateway(&["pump-a"], &extra);
    gw.wait_for(&["terminal service listening"], 1, 10);
    let meta = std::fs::metadata(&socket).expect("the socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    let mut t = Terminal::connect(&socket);
    t.send(&json!({"type": "hello", "protocol": 1, "terminal": "bed-12-screen"}).to_string());
    let welcome = t.line().expect("welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["gateway"], "test-bed");
    assert_eq!(welcome["care_area"], "adult-icu");
    let first = t.line().expect("a status at once");
    assert_eq!(first["type"], "status", "{first}");
    assert_eq!(first["library"], "version 12");
    assert_eq!(first["pumps"][0]["pump"], "pump-a");

    // The simulated nurse confirms the syringe's concentration at this
    // same socket (a second terminal).
    let nurse = format!("{}:{}", pumpgw_tests::NURSE.0, pumpgw_tests::NURSE.1);
    let socket_text = socket.display().to_string();
    let _sim = bench.sim(
        "pump-a",
        &example_scenario("fentanyl-infusion"),
        &[
            "--speed",
            "60",
            "--stay",
            "--terminal",
            &socket_text,
            "--nurse",
            &nurse,
        ],
    );
    let infusing = t.status_until(
        |m| m["pumps"][0]["state"] == "infusing" && m["pumps"][0]["volume_remaining"].is_string(),
        30,
    );
    let card = &infusing["pumps"][0];
    assert_eq!(
        card["drug"], "fentaNYL",
        "Tall Man from the library: {card}"
    );
    assert_eq!(card["link"], "online");
    assert_eq!(card["library_matches"], true);
    let rate = card["rate"].as_str().expect("a rate");
    assert!(
        rate.contains("micrograms") && !rate.contains("mcg"),
        "{rate}"
    );
    assert!(
        card["volume_remaining"]
            .as_str()
            .expect("text")
            .ends_with(" mL"),
        "{card}"
    );

    // Only news: no two statuses in a row show the same cards.
    let mut previous = infusing.clone();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let m = t.line().expect("connected");
        if m["type"] == "status" {
            assert!(
                m["pumps"] != previous["pumps"] || m["library"] != previous["library"],
                "a status with nothing new: {m}"
            );
            previous = m;
        }
    }

    // A line it does not know: an error, and the connection stays.
    t.send("{\"type\":\"launch\"}");
    let e = t.next_other();
    assert_eq!(e["code"], "UNKNOWN_MESSAGE", "{e}");
    assert_eq!(e["fatal"], false);
    t.send("{\"type\":\"ping\"}");
    let until = Instant::now() + Duration::from_secs(5);
    while t.line().expect("still connected")["type"] != "pong" {
        assert!(Instant::now() < until, "no pong");
    }
    gw.wait_for(&["terminal connected", "terminal=bed-12-screen"], 1, 1);

    // A clean stop closes the terminal and removes the socket.
    assert!(gw.terminate(10).success());
    while t.line().is_some() {}
    assert!(!socket.exists(), "the socket is removed at a clean stop");
}

#[test]
fn a_terminal_that_does_not_say_hello_properly_is_told_why_and_closed() {
    let bench = Bench::new();
    let socket = bench.path().join("terminal.sock");
    let extra = format!(
        "[terminal]\nsocket = {:?}\nmax_terminals = 1\n",
        socket.display().to_string()
    );
    let mut gw = bench.gateway(&["pump-a"], &extra);
    gw.wait_for(&["terminal service listening"], 1, 10);

    let mut t = Terminal::connect(&socket);
    t.send(&json!({"type": "hello", "protocol": 2, "terminal": "future"}).to_string());
    let e = t.line().expect("an error line");
    assert_eq!(e["code"], "VERSION", "{e}");
    assert_eq!(e["fatal"], true);
    assert!(t.line().is_none(), "closed");

    let mut t = Terminal::connect(&socket);
    t.send("{\"type\":\"ping\"}");
    assert_eq!(t.line().expect("an error line")["code"], "HELLO_FIRST");
    assert!(t.line().is_none(), "closed");

    // One terminal allowed: the second is refused while the first stays.
    let mut first = Terminal::connect(&socket);
    first.send(&json!({"type": "hello", "protocol": 1, "terminal": "one"}).to_string());
    assert_eq!(first.line().expect("welcome")["type"], "welcome");
    let mut second = Terminal::connect(&socket);
    second.send(&json!({"type": "hello", "protocol": 1, "terminal": "two"}).to_string());
    assert_eq!(
        second.line().expect("an error line")["code"],
        "TOO_MANY_TERMINALS"
    );
    assert_eq!(first.status_until(|_| true, 5)["type"], "status");
    gw.kill();
}

#[test]
fn something_else_at_the_socket_path_is_left_alone_and_stops_the_start() {
    let bench = Bench::new();
    let socket = bench.path().join("terminal.sock");
    std::fs::write(&socket, "not a socket").expect("writable");
    let extra = format!("[terminal]\nsocket = {:?}\n", socket.display().to_string());
    let mut gw = bench.gateway(&["pump-a"], &extra);
    let status = gw.wait_exit(10);
    assert_eq!(status.code(), Some(78), "{}", gw.log_text());
    assert!(
        gw.log_text().contains("is not a socket; it was left alone"),
        "{}",
        gw.log_text()
    );
    assert_eq!(
        std::fs::read_to_string(&socket).expect("still there"),
        "not a socket"
    );
}
