//! Confirmation-screen latency (issue 6): from a programme request leaving
//! a simulated pump to the blind concentration screen rendered by the
//! terminal's software renderer at 800x480, through the real `pumpgwd`
//! (cross-check, event log committed with fsync, confirmation board) and
//! its terminal socket, the person opening it from the list at once (a
//! new confirmation is announced, never opened by itself). Also the
//! terminal's peak RSS.
//!
//! Run (release binaries first: the bench drives the real daemon and
//! pump-sim):
//!
//! ```sh
//! cargo build --release --bins && cargo bench -p pumpgw-terminal --bench confirmation_screen
//! ```
//!
//! The request time is `pump-sim`'s own log timestamp for "programme
//! request sent"; the render time is taken here, on the same clock, after
//! the frame is drawn. In between: the pseudo-terminal, the daemon, the
//! socket, the terminal's message handling and one full software render.
//! (The real terminal hands each message from its socket thread to the UI
//! thread's event loop; here the socket is read on the rendering thread.)
//! Every screen is declined at once, so the pump goes on to its next
//! container.
//!
//! Under `cargo test` (no `--bench` argument) it runs 3 requests as a check
//! that it still works, without timing claims.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pumpgw::terminal::protocol::{FromTerminal, ToTerminal};
use pumpgw_terminal::{Bedside, Gateway, MainWindow, Screen, desk, shots};
use pumpgw_tests::Bench;
use slint::ComponentHandle as _;
use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};
use time::OffsetDateTime;

struct Headless(Rc<MinimalSoftwareWindow>);

impl Platform for Headless {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(self.0.clone())
    }
}

fn scenario(n: usize) -> String {
    let mut s = String::from(
        "[pump]\nserial = \"SIM-LAT\"\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n[[step]]\naction = \"wait_library\"\n",
    );
    for _ in 0..n {
        s.push_str(
            "\n[[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nexpect = \"denied\"\nexpect_code = \"DECLINED\"\n",
        );
    }
    s
}

/// `pump-sim`'s "programme request sent" times, by request id.
fn sent_times(log: &str) -> Vec<(u32, OffsetDateTime)> {
    log.lines()
        .filter(|l| l.contains("programme request sent"))
        .filter_map(|l| {
            let at = l.split_whitespace().next()?;
            let at =
                OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
            let request = l
                .split("request=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((request, at))
        })
        .collect()
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let n = if measuring { 30 } else { 3 };
    let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    slint::platform::set_platform(Box::new(Headless(window.clone())))
        .expect("the headless platform");
    let ui = MainWindow::new().expect("the screens build");
    let (tx, _rx) = std::sync::mpsc::channel();
    desk::attach(&ui, tx);
    window.set_size(slint::PhysicalSize::new(800, 480));
    ui.show().expect("shown");

    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let socket = bench.terminal_socket();
    let started = Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stream = UnixStream::connect(&socket).expect("the socket");
    let mut writer = stream.try_clone().expect("clonable");
    let mut reader = BufReader::new(stream);
    let line = |w: &mut UnixStream, m: &FromTerminal| {
        let mut text = serde_json::to_string(m).expect("serialises");
        text.push('\n');
        w.write_all(text.as_bytes()).expect("the daemon reads");
    };
    line(
        &mut writer,
        &FromTerminal::Hello {
            protocol: 1,
            terminal: "latency-bench".to_owned(),
        },
    );
    desk::with(|d| desk::connection(&ui, d, true, ""));
    let mut sim = bench.sim_alone("p1", &scenario(n), &["--speed", "3600"]);

    let mut rendered: Vec<(u32, OffsetDateTime)> = Vec::new();
    while rendered.len() < n {
        let mut text = String::new();
        assert!(
            reader.read_line(&mut text).expect("reads") > 0,
            "the daemon closed"
        );
        let message: ToTerminal = serde_json::from_str(&text).expect("a message");
        let card = match &message {
            ToTerminal::Confirmations { open, .. } => open.first().cloned(),
            _ => None,
        };
        desk::with(|d| desk::apply(&ui, d, message));
        if ui.global::<Bedside>().get_screen() == Screen::Result {
            // "Declined": OK, back home, ready for the next one.
            desk::with(|d| desk::dismiss(&ui, d));
        }
        let Some(card) = card else { continue };
        // Announced, never opened by itself: a person at the screen picks
        // it from the list at once.
        ui.global::<Gateway>()
            .invoke_pick(i32::try_from(card.id).expect("ids fit"));
        if ui.global::<Bedside>().get_screen() != Screen::Concentration {
            continue;
        }
        let _ = shots::render(&window, 800, 480);
        rendered.push((card.request, OffsetDateTime::now_utc()));
        line(
            &mut writer,
            &FromTerminal::Decline {
                id: card.id,
                reason: Some("latency bench".to_owned()),
            },
        );
    }
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    let sent = sent_times(&sim.log_text());
    let mut latencies: Vec<f64> = rendered
        .iter()
        .filter_map(|(request, at)| {
            let (_, sent) = sent.iter().find(|(r, _)| r == request)?;
            Some((*at - *sent).as_seconds_f64() * 1000.0)
        })
        .collect();
    assert_eq!(latencies.len(), n, "every request timed");
    latencies.sort_by(f64::total_cmp);
    let rss = pumpgw_tests::peak_rss_kib(std::process::id());
    println!(
        "confirmation screen: {n} requests, request sent -> blind concentration screen rendered (800x480, software):"
    );
    println!(
        "  min {:.1} ms, median {:.1} ms, max {:.1} ms",
        latencies[0],
        latencies[n / 2],
        latencies[n - 1]
    );
    println!(
        "  terminal peak RSS (this process: screens, software renderer, protocol): {}.{} MiB",
        rss / 1024,
        rss % 1024 * 10 / 1024
    );
    if !measuring {
        println!("  (test mode: {n} requests, not a measurement)");
    }
    assert!(gw.terminate(10).success());
}
