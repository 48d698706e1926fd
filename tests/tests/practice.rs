//! Practice mode as a person plays it: `pumpgwd demo --practice` with the
//! real `pumpgw-terminal` window on a real X display (Xvfb), every case
//! answered by pointer events (xdotool) where a finger would tap on the
//! 800x480 panel, followed through the touchscreen's log and the console,
//! and checked on screenshots (xwd) and in the gateway's event log.

use std::io::BufRead as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pumpgw_tests::display::Display;
use pumpgw_tests::pumpgwd;
use pumpgw_tests::touch::{Follow, at, demo};

const NURSE_PIN: &str = "482916";
const DOCTOR_PIN: &str = "719384";

/// The console, read as it comes.
struct Console(Arc<Mutex<String>>);

impl Console {
    fn follow(out: std::io::BufReader<std::process::ChildStdout>) -> Console {
        let text = Arc::new(Mutex::new(String::new()));
        let kept = text.clone();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let mut t = kept.lock().expect("no reader panics holding it");
                t.push_str(&line);
                t.push('\n');
            }
        });
        Console(text)
    }

    fn text(&self) -> String {
        self.0.lock().expect("no reader panics holding it").clone()
    }

    fn until(&self, needle: &str, secs: u64) {
        let until = Instant::now() + Duration::from_secs(secs);
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < until,
                "the console never said {needle:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The person at the touchscreen.
struct Person<'a> {
    display: &'a Display,
    screen: Follow,
}

impl Person<'_> {
    fn tap(&self, at: (u32, u32)) {
        self.display.tap(at.0, at.1);
    }

    fn keys(&self, digits: &str) {
        digits.chars().for_each(|d| self.tap(at::key(d)));
    }

    /// From home: the announcement (under the practice line), then the
    /// only confirmation waiting, which is `pump`'s.
    fn open(&mut self, pump: &str) {
        self.screen
            .until(&["waiting list", &format!("pumps={pump}")], 60);
        self.tap(at::BANNER_UNDER_ALARM);
        self.screen.until(&["screen=Waiting"], 5);
        self.tap(at::row(0));
        self.screen.until(&["screen=Concentration"], 5);
    }

    /// Types a label blind and signs as the nurse.
    fn label(&mut self, amount: &str, unit: (u32, u32), volume: &str) {
        self.tap(at::AMOUNT);
        self.keys(amount);
        self.tap(unit);
        self.tap(at::VOLUME);
        self.keys(volume);
        self.sign(NURSE_PIN);
    }

    fn sign(&self, pin: &str) {
        self.tap(at::FIRST_NAME);
        self.keys(pin);
        self.tap(at::CONFIRM);
    }

    /// OK on a result, to `then`.
    fn ok(&mut self, then: &str) {
        self.tap(at::OK);
        self.screen.until(&[then], 5);
    }
}

#[test]
fn a_person_plays_every_practice_case_by_touch_and_screen_and_console_say_what_was_caught() {
    let display = Display::start(800, 480);
    let (mut demo, out, header, data) = demo(
        &display,
        &["demo", "--practice", "--speed", "60"],
        "300",
        "Data folder: ",
    );
    let data = data
        .to_string_lossy()
        .trim_end_matches(" (removed at the end)")
        .to_owned();
    assert!(
        header.contains("PRACTICE: no patient") && header.contains("Nurse: Nkechi Okafor, PIN"),
        "{header}"
    );
    let console = Console::follow(out);
    let mut person = Person {
        display: &display,
        screen: Follow::new(std::path::Path::new(&data).join("touchscreen.log")),
    };

    // 1. The label says 16 mg in 50 mL; the pump was set for 4 mg.
    console.until("Case 1 of 4, on pump-1", 30);
    assert!(
        console
            .text()
            .contains("The syringe's label reads: noradrenaline 16 mg in 50"),
        "the brief gives the label, as a syringe would:\n{}",
        console.text()
    );
    assert!(
        !console.text().contains("4 mg"),
        "and never what was programmed:\n{}",
        console.text()
    );
    person.open("pump-1");
    person.label("16", at::MG, "50");
    person.screen.until(&["result=refused", "DO NOT START"], 10);
    person.ok("screen=Home");

    // 2. The HSIB bolus: stopped before anyone is asked.
    console.until("Case 2 is over", 60);
    assert!(
        !person.screen.within(&["waiting list", "pumps=pump-2"], 0),
        "nobody is asked for a concentration no syringe has"
    );

    // 3. The same bolus done right: the nurse, then the doctor.
    console.until("Case 3 of 4, on pump-3", 30);
    person.open("pump-3");
    person.label("2500", at::MICROGRAMS, "50");
    person.screen.until(&["result=next_stage"], 10);
    person.ok("screen=Confirm");
    person.sign(DOCTOR_PIN);
    person.screen.until(&["result=authorised"], 10);
    person.ok("screen=Home");

    // 4. Above a soft limit: a reason.
    console.until("Case 4 of 4, on pump-4", 30);
    person.open("pump-4");
    person.label("50", at::MG, "50");
    person.screen.until(&["result=next_stage"], 10);
    person.ok("screen=Confirm");
    person.tap(at::FIRST_REASON);
    person.sign(NURSE_PIN);
    person.screen.until(&["result=authorised"], 10);
    person.ok("screen=Home");

    // The console's summary, case by case.
    console.until("The summary is also on the touchscreen", 30);
    // Folded at 76 columns: read as running text.
    let said = console
        .text()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "1. a new noradrenaline syringe -- CAUGHT",
        "By: Nkechi Okafor (nurse), typing the label blind",
        "four times the prescribed dose",
        "2. a fentanyl bolus for pain -- CAUGHT",
        "By: the gateway's cross-check against the drug library, before anyone was asked",
        "the whole syringe, 2,500 micrograms of fentanyl",
        "3. another fentanyl bolus -- GIVEN",
        "By: Nkechi Okafor (nurse) and Dev Patel (doctor)",
        "4. a morphine infusion -- OVERRIDDEN WITH A REASON",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }

    // The screen's: the practice line opens it.
    person.tap(at::PRACTICE_LINE);
    person.screen.until(&["screen=Summary"], 5);
    // The first case's badge: the green of a catch (Theme.ok), once the
    // frame is drawn (the log says the screen a moment before).
    let until = Instant::now() + Duration::from_secs(3);
    while display
        .screenshot()
        .share((680, 70, 110, 30), [0x2e, 0x9d, 0x5b])
        <= 0.3
    {
        assert!(
            Instant::now() < until,
            "no CAUGHT badge where the first case's is"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    every_record_is_marked_practice(&data);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(demo.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("the demo is there");
    assert!(demo.wait().expect("the demo ends").success());
    console.until("pumpgw practice stopped.", 10);
}

/// Every record the practice gateway in `data` logged says practice.
fn every_record_is_marked_practice(data: &str) {
    let export = pumpgwd(&["events", "export", "--data-dir", data]);
    assert!(export.status.success());
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a record"))
        .collect();
    assert!(records.len() > 10, "{records:#?}");
    assert!(
        records.iter().all(|r| r["practice"] == true),
        "a record without the practice mark: {:#?}",
        records.iter().find(|r| r["practice"] != true)
    );
    assert!(
        records.iter().any(|r| r["type"] == "authorised"),
        "{records:#?}"
    );
}
