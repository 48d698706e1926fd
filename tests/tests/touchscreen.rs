//! The bedside touchscreen as a person meets it: the real
//! `pumpgw-terminal` window on a real X display (Xvfb), beside the real
//! demo gateway.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pumpgw_tests::binary;
use pumpgw_tests::display::Display;

#[test]
fn the_demo_starts_the_persons_pump_only_once_the_touchscreen_is_there() {
    let display = Display::start(800, 480);
    let mut demo = Command::new(binary("pumpgwd"))
        .args([
            "demo",
            "--pumps",
            "4",
            "--speed",
            "60",
            "--duration",
            "10",
            "--plain",
        ])
        .env("DISPLAY", &display.name)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the demo starts");
    let mut out = std::io::BufReader::new(demo.stdout.take().expect("stdout is piped"));
    // The header names the gateway's log, in a folder the demo removes
    // when it ends: read it while the demo runs.
    let mut header = String::new();
    let log = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("reads") > 0, "{header}");
        header.push_str(&line);
        if let Some(path) = line.strip_prefix("Gateway log: ") {
            break std::path::PathBuf::from(path.trim());
        }
    };
    let until = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains("pump link up") && l.contains("pump=pump-4"))
        {
            break text;
        }
        assert!(Instant::now() < until, "pump-4 never came online:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let at = |what: &dyn Fn(&str) -> bool| text.lines().position(what);
    let touchscreen =
        at(&|l| l.contains("terminal connected") && l.contains("terminal=demo-touchscreen"))
            .expect("the touchscreen connected before the person's pump came up");
    let pump =
        at(&|l| l.contains("pump link up") && l.contains("pump=pump-4")).expect("seen above");
    assert!(touchscreen < pump, "the touchscreen first:\n{text}");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    let status = demo.wait().expect("the demo ends");
    assert!(status.success(), "{status}: {header}{rest}");
    assert!(
        rest.contains("Touchscreen: running; pump-4 waits for you"),
        "{header}{rest}"
    );
    assert!(
        !rest
            .lines()
            .any(|l| l.starts_with("pump-4") && l.contains("UNAVAILABLE")),
        "pump-4's request is not denied for want of a terminal:\n{rest}"
    );
}
