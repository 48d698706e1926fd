//! The gateway's clock, end to end: `pumpgwd` runs under libfaketime, whose
//! wall clock the test sets through a timestamp file while the monotonic
//! clocks stay real (as on a board whose clock NTP sets after boot). A step
//! of the wall clock changes no age, window or expiry: what was given still
//! counts in its window, an open confirmation does not lapse, the step is
//! logged and the pumps are sent `TIME_SYNC` again.

use std::path::PathBuf;

use pumpgw_tests::terminal::Terminal;
use pumpgw_tests::{Bench, NURSE, fentanyl_pump};

const OVERRIDE: &str = "Prescribed dose confirmed with prescriber";

/// Debian's libfaketime (package `faketime`, installed by `tests/run`).
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is installed (Debian package faketime; tests/run installs it)")
}

#[test]
fn a_wall_clock_step_changes_no_window_and_no_expiry() {
    let bench = Bench::new();
    let offset = bench.path().join("faketime");
    std::fs::write(&offset, "+0\n").expect("bench is writable");
    let lib = libfaketime().display().to_string();
    let wrapper = [
        "/usr/bin/env".to_owned(),
        format!("LD_PRELOAD={lib}"),
        format!("FAKETIME_TIMESTAMP_FILE={}", offset.display()),
        "FAKETIME_NO_CACHE=1".to_owned(),
        "FAKETIME_DONT_FAKE_MONOTONIC=1".to_owned(),
    ];
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut gw = bench.gateway_wrapped(&["p1", "p2", "p3"], "", &wrapper);
    let mut t = Terminal::open(&bench.terminal_socket(), "bed-12-screen");
    // p1 gives 400 micrograms of fentaNYL (8 mL at 400 micrograms/h, run
    // fast) and stays online.
    let given = fentanyl_pump(
        "SIM-A",
        "",
        &format!(
            "\n[[step]]\naction = \"infuse\"\nrate = \"400 micrograms/h\"\nvtbi = \"8 mL\"\nexpect = \"authorised\"\noverride_reason = \"{OVERRIDE}\"\n\n[[step]]\naction = \"wait_delivery\"\n"
        ),
    );
    let mut p1 = bench.sim("p1", &given, &["--speed", "600", "--stay"]);
    p1.played();
    gw.wait_for(&["pump=p1", "event=Completed"], 1, 20);
    // p2 asks for 50 micrograms/h; nobody but this test is at the
    // terminal, so its container's confirmation stays open.
    let asks = fentanyl_pump(
        "SIM-B",
        "",
        "\n[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nexpect = \"authorised\"\n",
    );
    let mut p2 = bench.sim_alone("p2", &asks, &["--stay"]);
    let card = t.confirmation("p2", "concentration", 30);
    // The wall clock jumps two hours ahead.
    std::fs::write(&offset, "+2h\n").expect("bench is writable");
    gw.wait_for(&["the wall clock stepped"], 1, 10);
    gw.wait_for(&["pump=p1", "TIME_SYNC again"], 1, 10);
    // The confirmation has not lapsed: its 120 s run on the monotonic clock.
    let r = t.confirm(&card, &[NURSE], Some("2500 micrograms in 50 mL"), None);
    assert_eq!(r["result"], "authorised", "{r}");
    p2.played();
    // The 400 micrograms given a moment ago are still in the hour: with
    // p2's 50 micrograms/h, a 60 microgram bolus would make 510.
    let bolus = fentanyl_pump(
        "SIM-C",
        "",
        "\n[[step]]\naction = \"bolus\"\ndose = \"60 micrograms\"\nduration = \"60 s\"\nexpect = \"denied\"\nexpect_code = \"CUMULATIVE_LIMIT\"\n",
    );
    let mut p3 = bench.sim_alone("p3", &bolus, &[]);
    assert!(p3.wait_exit(60).success(), "{}", p3.log_text());
    let denied = bench.exported("denied");
    let words = denied
        .iter()
        .flat_map(|d| d["reasons"].as_array().cloned().unwrap_or_default())
        .find(|r| r["code"] == "CUMULATIVE_LIMIT")
        .expect("a cumulative denial");
    let words = words["message"].as_str().unwrap_or_default();
    assert!(words.contains("400 micrograms given"), "{words}");
    // The step is in the log, once.
    let steps = bench.exported("clock_stepped");
    assert_eq!(steps.len(), 1, "{steps:#?}");
    let ms = steps[0]["step_ms"].as_i64().expect("step_ms");
    assert!((7_190_000..=7_210_000).contains(&ms), "{ms}");
    p1.kill();
    p2.kill();
    assert!(gw.terminate(15).success(), "{}", gw.log_text());
}
