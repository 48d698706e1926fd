//! The bedside touchscreen as a person meets it: the real
//! `pumpgw-terminal` window on a real X display (Xvfb), beside the real
//! demo gateway, driven by real pointer events (xdotool) at the places a
//! finger would tap on the 800x480 panel, followed through the
//! touchscreen's own log (each screen it shows) and checked on
//! screenshots (xwd).

use std::time::{Duration, Instant};

use pumpgw_tests::display::Display;
use pumpgw_tests::touch::{Follow, at, demo};

/// The demo as the person meets it: four pumps at 60 times speed.
const DEMO: [&str; 6] = ["demo", "--pumps", "4", "--speed", "60", "--plain"];

#[test]
fn the_demo_starts_the_persons_pump_only_once_the_touchscreen_is_there() {
    let display = Display::start(800, 480);
    let (mut demo, mut out, header, log) = demo(&display, &DEMO, "10", "Gateway log: ");
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
    // What the person is to do, step by step, as the test above does it.
    for step in [
        "1. Tap the blue banner",
        "Amount 2500, tap micrograms, in 50 (mL)",
        "tap Nkechi Okafor, type PIN 482916",
        "tap Dev Patel, PIN 719384, Confirm",
    ] {
        assert!(rest.contains(step), "{step:?} not in:\n{rest}");
    }
    assert!(
        !rest
            .lines()
            .any(|l| l.starts_with("pump-4") && l.contains("UNAVAILABLE")),
        "pump-4's request is not denied for want of a terminal:\n{rest}"
    );
}

#[test]
fn a_nurse_then_a_doctor_confirm_pump_4_in_the_demo_by_touch() {
    let display = Display::start(800, 480);
    let (mut demo, mut out, _, log) = demo(&display, &DEMO, "120", "Touchscreen log: ");
    // The rest of the demo's output is read away so that it never blocks.
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        rest
    });
    let mut screen = Follow::new(log);
    let tap = |(x, y): (u32, u32)| display.tap(x, y);
    // Pump 4 asks; the home screen announces it.
    screen.until(&["waiting list", "pump-4"], 30);
    // Home, while it is looked at: pump 4's and other confirmations come
    // and go, and nothing opens by itself (no screen since the start).
    let mark = 0;
    screen.until(&["waiting list"], 30);
    screen.until(&["waiting list"], 30);
    let meanwhile = screen.since(mark);
    assert!(
        !meanwhile.iter().any(|l| l.contains("screen screen=")),
        "home was taken away: {meanwhile:#?}"
    );
    // The banner sits under the bed's alarm banner when there is one.
    tap(at::BANNER_NO_ALARM);
    if !screen.within(&["screen=Waiting"], 2) {
        tap(at::BANNER_UNDER_ALARM);
        screen.until(&["screen=Waiting"], 2);
    }
    // Pump 4's row in the list as it is when the finger comes down (the
    // simulated staff's confirmations come and go meanwhile).
    let mut opened = false;
    for _ in 0..5 {
        let row = screen
            .latest("waiting list")
            .rsplit("pumps=")
            .next()
            .and_then(|pumps| pumps.trim().split(',').position(|p| p == "pump-4"));
        if let Some(row) = row {
            tap(at::row(row));
            if screen.within(&["screen=Concentration"], 2) {
                opened = true;
                break;
            }
        }
    }
    assert!(opened, "pump-4's confirmation never opened from the list");
    // Other pumps' confirmations come and go (the simulated staff answer
    // them at their own terminal); the screen in use stays.
    let mark = screen.seen;
    screen.until(&["waiting list"], 30);
    screen.until(&["waiting list"], 30);
    let meanwhile = screen.since(mark);
    assert!(
        !meanwhile.iter().any(|l| l.contains("screen screen=")),
        "the screen changed under the finger: {meanwhile:#?}"
    );
    // The nurse types the syringe's label, taps her name, her PIN.
    tap(at::AMOUNT);
    "2500".chars().for_each(|d| tap(at::key(d)));
    tap(at::MICROGRAMS);
    tap(at::VOLUME);
    "50".chars().for_each(|d| tap(at::key(d)));
    tap(at::FIRST_NAME);
    "482916".chars().for_each(|d| tap(at::key(d)));
    tap(at::CONFIRM);
    screen.until(&["result=next_stage", "Concentration confirmed"], 10);
    // What the screen shows: the green of a confirmation.
    assert!(green_within(&display, 3), "not the green result");
    // OK: the doctor's bolus, the person's own next stage, opens.
    tap(at::OK);
    screen.until(&["screen=Confirm"], 10);
    tap(at::FIRST_NAME);
    "719384".chars().for_each(|d| tap(at::key(d)));
    tap(at::CONFIRM);
    screen.until(&["result=authorised", "the pump may start"], 10);
    assert!(green_within(&display, 3), "not the green result");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(demo.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("the demo is there");
    assert!(demo.wait().expect("the demo ends").success());
    let rest = reader.join().expect("the reader ends");
    assert!(rest.contains("pumpgw demo stopped."), "{rest}");
}

#[test]
fn every_pump_of_eight_is_reached_by_dragging_the_home_list_on_the_small_panel() {
    let display = Display::start(800, 480);
    let eight = ["demo", "--pumps", "8", "--speed", "60", "--plain"];
    let (mut demo, mut out, _, log) = demo(&display, &eight, "60", "Touchscreen log: ");
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut rest);
        rest
    });
    let mut screen = Follow::new(log);
    // The bed is on screen (its first waiting list came with it).
    screen.until(&["waiting list"], 30);
    std::thread::sleep(Duration::from_secs(2));
    let before = display.screenshot();
    // A finger drags the list up, as often as it takes, until the last
    // pump's card is in view.
    let mut drags = 0;
    while !screen.within(&["home list moved", "end_in_view=true"], 1) {
        drags += 1;
        assert!(drags <= 6, "the end of the list never came into view");
        display.drag((400, 440), (400, 160));
    }
    assert!(
        drags >= 1,
        "the end was in view before any drag: not 8 pumps' worth"
    );
    let after = display.screenshot();
    // Below the header and the banners the list has moved.
    assert!(
        after.changed(&before, (0, 160, 800, 320)) > 0.2,
        "the cards did not move"
    );
    let meanwhile = screen.since(0);
    assert!(
        !meanwhile.iter().any(|l| l.contains("screen screen=")),
        "a drag opened something: {meanwhile:#?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(demo.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("the demo is there");
    assert!(demo.wait().expect("the demo ends").success());
    drop(reader.join());
}

/// Whether the screen shows the green of a confirmation within `secs`
/// (the touchscreen logs a result as it takes it, a moment before the
/// frame is drawn).
fn green_within(display: &Display, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if display
            .screenshot()
            .share((0, 0, 800, 120), [0x0f, 0x33, 0x20])
            > 0.5
        {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
