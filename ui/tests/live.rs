//! The terminal end to end, through its own screens: the real `pumpgwd`
//! and `pump-sim`, the terminal's real socket client, and Slint's testing
//! backend with its event loop; a nurse opens the confirmation from the
//! list, types the HSIB syringe's label on the keypad and the screen says
//! DO NOT START. (Its own process: one
//! event loop per process.)

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use i_slint_backend_testing::ElementHandle;
use pumpgw_terminal::{Bedside, MainWindow, Screen, client, desk};
use pumpgw_tests::{Bench, NURSE};
use slint::{ComponentHandle as _, Weak};

/// Runs `f` on the UI thread and returns its result.
fn on_ui<R: Send + 'static>(
    ui: &Weak<MainWindow>,
    f: impl FnOnce(&MainWindow) -> R + Send + 'static,
) -> R {
    let (tx, rx) = channel();
    let weak = ui.clone();
    slint::invoke_from_event_loop(move || {
        let ui = weak.upgrade().expect("the window lives");
        let _ = tx.send(f(&ui));
    })
    .expect("the event loop runs");
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the UI thread answers")
}

fn press(ui: &Weak<MainWindow>, label: &'static str) {
    on_ui(ui, move |ui| {
        ElementHandle::find_by_accessible_label(ui, label)
            .next()
            .unwrap_or_else(|| panic!("nothing labelled {label:?}"))
            .invoke_accessible_default_action();
    });
}

fn wait_for_screen(ui: &Weak<MainWindow>, screen: Screen, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while on_ui(ui, |ui| ui.global::<Bedside>().get_screen()) != screen {
        assert!(Instant::now() < until, "no {screen:?} screen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_label(ui: &Weak<MainWindow>, label: &'static str, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    while on_ui(ui, move |ui| {
        ElementHandle::find_by_accessible_label(ui, label)
            .next()
            .is_none()
    }) {
        assert!(Instant::now() < until, "nothing labelled {label:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_nurse_catches_the_wrong_fentanyl_concentration_on_the_touchscreen() {
    i_slint_backend_testing::init_integration_test_with_system_time();
    let bench = Bench::new();
    let mut gw = bench.gateway_in("theatres", &["p1"], "");
    let ui = MainWindow::new().expect("the window builds");
    let (tx, rx) = channel();
    desk::attach(&ui, tx);
    client::spawn(
        bench.terminal_socket(),
        "theatre-3-screen".to_owned(),
        ui.as_weak(),
        rx,
    );
    ui.show().expect("shown");
    let scenario = "[pump]\nserial = \"SIM-LIVE\"\ncare_area = \"theatres\"\npatient_weight = \"70 kg\"\n\n[[step]]\naction = \"wait_library\"\n\n[[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n[[step]]\naction = \"bolus\"\ndose = \"25 micrograms\"\nduration = \"60 s\"\nexpect = \"denied\"\nexpect_code = \"CONCENTRATION_MISMATCH\"\n";
    // The terminal is there before the pump asks (with none, the gateway
    // would deny at once).
    gw.wait_for(&["terminal connected", "terminal=theatre-3-screen"], 1, 10);
    let mut sim = bench.sim_alone("p1", scenario, &["--speed", "60"]);

    let weak = ui.as_weak();
    let nurse = std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // The confirmation is announced on the home screen, which
            // stays; the nurse opens it from the list.
            wait_for_label(&weak, "1 confirmation waiting: see it", 30);
            assert_eq!(
                on_ui(&weak, |ui| ui.global::<Bedside>().get_screen()),
                Screen::Home
            );
            press(&weak, "1 confirmation waiting: see it");
            press(&weak, "Pump p1: fentaNYL, concentration of a new container");
            wait_for_screen(&weak, Screen::Concentration, 5);
            press(&weak, "Amount");
            for k in [
                "2",
                "5",
                "0",
                "0",
                "micrograms",
                "in",
                "5",
                "0",
                "Nkechi Okafor",
            ] {
                press(&weak, k);
            }
            for digit in NURSE.1.split("").filter(|d| !d.is_empty()) {
                press(&weak, digit);
            }
            press(&weak, "Confirm");
            wait_for_screen(&weak, Screen::Result, 15);
            on_ui(&weak, |ui| {
                let b = ui.global::<Bedside>();
                (
                    b.get_result_title().to_string(),
                    b.get_entered().to_string(),
                    b.get_programmed().to_string(),
                )
            })
        }));
        let _ = slint::invoke_from_event_loop(|| {
            let _ = slint::quit_event_loop();
        });
        result
    });
    slint::run_event_loop_until_quit().expect("the event loop runs");
    let (title, entered, programmed) = match nurse.join().expect("the nurse thread ends") {
        Ok(shown) => shown,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert_eq!(title, "DO NOT START: the label is not what was programmed");
    assert_eq!(entered, "2,500 micrograms in 50 mL (50 micrograms/mL)");
    assert_eq!(programmed, "500 micrograms in 50 mL (10 micrograms/mL)");
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    assert!(
        sim.log_text()
            .contains("0 authorised, 1 denied, 0 delivered"),
        "{}",
        sim.log_text()
    );
    assert!(gw.terminate(10).success());
}
