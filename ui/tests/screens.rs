//! The screens under Slint's testing backend: elements found by their
//! accessible labels, the keypad typed on, buttons pressed, and the lines
//! the terminal would send to the daemon checked.

use std::sync::mpsc::{Receiver, channel};

use i_slint_backend_testing::ElementHandle;
use pumpgw::terminal::protocol::{FromTerminal, ToTerminal};
use pumpgw_terminal::{Bedside, Gateway, MainWindow, Screen, desk};
use serde_json::json;
use slint::ComponentHandle as _;

fn terminal() -> (MainWindow, Receiver<FromTerminal>) {
    i_slint_backend_testing::init_no_event_loop();
    let ui = MainWindow::new().expect("the window builds");
    let (tx, rx) = channel();
    desk::attach(&ui, tx);
    (ui, rx)
}

/// A terminal on the 7-inch panel (800x480), connected, with `m` applied.
fn small_panel_with(m: ToTerminal) -> (MainWindow, Receiver<FromTerminal>) {
    let (ui, rx) = terminal();
    ui.window().set_size(slint::PhysicalSize::new(800, 480));
    ui.show().expect("the testing backend shows it");
    desk::with(|d| desk::connection(&ui, d, true, ""));
    desk::with(|d| desk::apply(&ui, d, m));
    (ui, rx)
}

fn apply(ui: &MainWindow, m: serde_json::Value) {
    let m: ToTerminal = serde_json::from_value(m).expect("a protocol message");
    desk::with(|d| desk::apply(ui, d, m));
}

fn find(ui: &MainWindow, label: &str) -> ElementHandle {
    ElementHandle::find_by_accessible_label(ui, label)
        .next()
        .unwrap_or_else(|| panic!("nothing labelled {label:?} on screen"))
}

fn press(ui: &MainWindow, label: &str) {
    find(ui, label).invoke_accessible_default_action();
}

fn type_keys(ui: &MainWindow, keys: &str) {
    for k in keys.chars() {
        press(ui, &k.to_string());
    }
}

/// A new confirmation is announced and the home screen stays; the person
/// opens the list from the banner and picks the row labelled `row`.
fn open_from_list(ui: &MainWindow, row: &str) {
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    press(ui, "1 confirmation waiting: see it");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Waiting);
    press(ui, row);
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Concentration);
}

/// A terminal on the bed with a new container's confirmation, opened by
/// the nurse from the list.
fn container_opened() -> (MainWindow, Receiver<FromTerminal>) {
    let (ui, rx) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, status());
    apply(&ui, concentration_card());
    open_from_list(&ui, "Pump p1: fentaNYL, concentration of a new container");
    (ui, rx)
}

fn status() -> serde_json::Value {
    json!({"type": "status", "at": "2026-11-22T03:00:00.000Z", "library": "version 12", "pumps": [
        {"pump": "p1", "link": "online", "offline_reason": null, "state": "infusing",
         "drug": "fentaNYL", "rate": "50 micrograms/h", "volume_remaining": "49.5 mL",
         "library_matches": true, "alarms": []},
        {"pump": "p2", "link": "online", "offline_reason": null, "state": "alarm",
         "drug": "noradrenaline", "rate": "0.1 micrograms/kg/min", "volume_remaining": "12 mL",
         "library_matches": false, "alarms": [{"priority": "high", "text": "Occlusion downstream"}]},
        {"pump": "p3", "link": "offline", "offline_reason": "no heartbeat for 3 s", "state": null,
         "drug": null, "rate": null, "volume_remaining": null, "library_matches": null, "alarms": []}
    ]})
}

fn concentration_card() -> serde_json::Value {
    json!({"type": "confirmations", "at": "2026-11-22T03:00:01.000Z", "open": [{
        "id": 7, "pump": "p1", "request": 3, "programme_hash": "ab".repeat(32),
        "needs": [{"kind": "concentration", "roles": ["nurse", "doctor"]}],
        "screen": {"stage": "concentration", "title": "Confirm the concentration of the new container",
                   "pump": "p1", "drug": "fentaNYL", "high_alert": true,
                   "facts": [["Waiting to start", "bolus"]],
                   "instruction": "Read the label and type what it says."},
        "screen_hash": "cd".repeat(32), "expires": "2026-11-22T03:02:01.000Z",
        "staff": [{"id": "n.okafor", "name": "Nkechi Okafor", "role": "nurse"},
                  {"id": "d.patel", "name": "Dev Patel", "role": "doctor"}]
    }]})
}

#[test]
fn without_the_daemon_the_whole_screen_says_so_and_then_shows_every_pump() {
    let (ui, _) = terminal();
    find(&ui, "No connection to the gateway");
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, status());
    for pump in ["Pump p1", "Pump p2", "Pump p3"] {
        find(&ui, pump);
    }
    // The most severe alarm across the top, in words.
    find(&ui, "high priority alarm: p2: Occlusion downstream");
    assert!(
        ElementHandle::find_by_accessible_label(&ui, "No connection to the gateway")
            .next()
            .is_none()
    );
    desk::with(|d| desk::connection(&ui, d, false, "connection refused"));
    find(&ui, "No connection to the gateway");
}

#[test]
fn the_nurse_types_the_label_blind_and_signs_with_a_pin_that_never_reaches_the_screen() {
    let (ui, rx) = container_opened();
    press(&ui, "Amount");
    type_keys(&ui, "2500");
    press(&ui, "micrograms");
    press(&ui, "in");
    type_keys(&ui, "50");
    press(&ui, "Nkechi Okafor");
    type_keys(&ui, "482916");
    let pin = find(&ui, "PIN").accessible_value().unwrap_or_default();
    assert!(
        !pin.contains('4') && pin.chars().count() == 6,
        "the PIN shows as dots: {pin}"
    );
    press(&ui, "Confirm");
    match rx
        .try_iter()
        .find(|l| !matches!(l, FromTerminal::Viewing { .. }))
        .expect("a line for the daemon")
    {
        FromTerminal::Confirm {
            id,
            screen_hash,
            signers,
            concentration,
            reason,
        } => {
            assert_eq!(id, 7);
            assert_eq!(screen_hash, "cd".repeat(32));
            assert_eq!(concentration.as_deref(), Some("2500 micrograms in 50 mL"));
            assert_eq!(signers.len(), 1);
            assert_eq!(signers[0].staff_id, "n.okafor");
            assert_eq!(signers[0].pin, "482916");
            assert_eq!(reason, None);
        }
        other => panic!("not a confirm: {other:?}"),
    }
}

#[test]
fn a_unit_chosen_for_one_container_is_not_chosen_for_the_next() {
    // Practice found it: "mg" tapped for a noradrenaline syringe stayed
    // selected for the next fentanyl one, typed as 2500 (micrograms).
    let (ui, rx) = container_opened();
    press(&ui, "mg");
    assert_eq!(ui.global::<Bedside>().get_unit(), "mg");
    press(&ui, "Later");
    let mut next = concentration_card();
    next["open"][0]["id"] = json!(8);
    apply(&ui, next);
    open_from_list(&ui, "Pump p1: fentaNYL, concentration of a new container");
    assert_eq!(ui.global::<Bedside>().get_unit(), "", "no unit chosen yet");
    // Confirm without a unit: nothing goes to the daemon; the person is
    // told to choose it, and goes back to the label as typed.
    press(&ui, "Amount");
    type_keys(&ui, "2500");
    press(&ui, "in");
    type_keys(&ui, "50");
    press(&ui, "Nkechi Okafor");
    type_keys(&ui, "482916");
    press(&ui, "Confirm");
    assert!(
        rx.try_iter()
            .all(|l| matches!(l, FromTerminal::Viewing { .. })),
        "nothing sent without a unit"
    );
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Result);
    assert_eq!(
        ui.global::<Bedside>().get_result_title(),
        "Choose the unit on the label"
    );
    press(&ui, "OK");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Concentration);
    assert_eq!(ui.global::<Bedside>().get_amount(), "2500");
}

#[test]
fn a_practice_gateway_says_so_and_which_case_is_on_and_at_the_end_opens_the_summary() {
    use pumpgw_terminal::sample;
    let (ui, _rx) = terminal();
    // The 10-inch panel: all four cases in view at once.
    ui.window().set_size(slint::PhysicalSize::new(1280, 800));
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply_message(&ui, sample::practice_welcome());
    apply_message(&ui, sample::status());
    find(&ui, "PRACTICE · no patient");
    apply_message(&ui, sample::practice(1));
    // While cases are played, the line is not a way off the pumps.
    press(
        &ui,
        "PRACTICE · no patient · case 2 of 4: a fentanyl bolus for pain",
    );
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    apply_message(&ui, sample::practice(4));
    press(&ui, "PRACTICE over: tap here to see what was caught");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Summary);
    for (case, outcome) in [
        ("1. a new noradrenaline syringe", "CAUGHT"),
        ("2. a fentanyl bolus for pain", "CAUGHT"),
        ("3. another fentanyl bolus", "GIVEN"),
        ("4. a morphine infusion", "OVERRIDDEN WITH A REASON"),
    ] {
        let row = find(&ui, &format!("{case}: {outcome}"));
        let said = row.accessible_description().unwrap_or_default();
        assert!(
            said.contains("By: ") && said.contains("Without the check: "),
            "{said}"
        );
    }
    press(&ui, "Back to the pumps");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    // Connected to a real gateway again: no practice line.
    apply_message(&ui, sample::welcome());
    assert!(
        ElementHandle::find_by_accessible_label(&ui, "PRACTICE · no patient")
            .next()
            .is_none()
    );
}

fn apply_message(ui: &MainWindow, m: ToTerminal) {
    desk::with(|d| desk::apply(ui, d, m));
}

#[test]
fn a_programme_stopped_at_a_hard_limit_says_so_on_its_card() {
    let (ui, _) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    desk::with(|d| desk::apply(&ui, d, pumpgw_terminal::sample::status()));
    find(
        &ui,
        "HARD LIMIT: not started. No override: programme it again.: Bolus dose 150 micrograms is over the HARD maximum of 100 micrograms by 50 micrograms, 1.5 times the limit.",
    );
}

#[test]
fn a_mismatch_shows_what_was_typed_and_what_was_programmed_side_by_side() {
    let (ui, _) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, concentration_card());
    apply(
        &ui,
        json!({"type": "result", "id": 7, "result": "refused", "closed": true,
               "message": "The concentration typed from the label is not the one programmed: do not start",
               "next": null,
               "entered": "2,500 micrograms in 50 mL (50 micrograms/mL)",
               "programmed": "500 micrograms in 50 mL (10 micrograms/mL)"}),
    );
    find(&ui, "DO NOT START: the label is not what was programmed");
    find(
        &ui,
        "Label typed: 2,500 micrograms in 50 mL (50 micrograms/mL)",
    );
    find(
        &ui,
        "Programmed on the pump: 500 micrograms in 50 mL (10 micrograms/mL)",
    );
    press(&ui, "OK");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
}

/// Drags a finger from `from` to `to` (logical pixels), as on a touch
/// panel.
fn drag(ui: &MainWindow, from: (f32, f32), to: (f32, f32)) {
    use slint::platform::{PointerEventButton, WindowEvent};
    let at = |(x, y): (f32, f32)| slint::LogicalPosition::new(x, y);
    let w = ui.window();
    w.dispatch_event(WindowEvent::PointerPressed {
        position: at(from),
        button: PointerEventButton::Left,
    });
    for step in 1..=10u8 {
        let f = f32::from(step) / 10.0;
        let p = (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f);
        i_slint_backend_testing::mock_elapsed_time(std::time::Duration::from_millis(16));
        w.dispatch_event(WindowEvent::PointerMoved { position: at(p) });
    }
    w.dispatch_event(WindowEvent::PointerReleased {
        position: at(to),
        button: PointerEventButton::Left,
    });
}

#[test]
fn every_name_keeps_a_full_size_target_on_the_small_panel_however_many_staff() {
    let (ui, _rx) = small_panel_with(pumpgw_terminal::sample::concentration());
    open_from_list(
        &ui,
        "Pump pump-3: fentaNYL, concentration of a new container",
    );
    // Two rows of names fit beside the keypad; the rest scroll.
    let first = [
        "Nkechi Okafor",
        "Aoife Byrne",
        "Tomasz Mensah",
        "Linh Nguyen",
    ];
    let last = ["Dev Patel", "Sam Wright", "Ruth Osei"];
    let boxes = targets(&ui, &first);
    assert!(
        ElementHandle::find_by_accessible_label(&ui, "Ruth Osei")
            .next()
            .is_none(),
        "out of sight before scrolling"
    );
    // A finger drags the names up; the others come into sight, full size.
    let (x, y) = (boxes[0].1 + 20.0, boxes[2].2 + 40.0);
    drag(&ui, (x, y), (x, y - 120.0));
    targets(&ui, &last);
    press(&ui, "Ruth Osei");
    assert_eq!(ui.global::<Bedside>().get_staff_id(), "r.osei");
}

/// Each named button is on screen, at least 52 px high (about 10 mm on a
/// 7-inch 800x480 panel) and wide enough for a whole name, and none
/// overlaps another; their boxes.
fn targets(ui: &MainWindow, names: &[&str]) -> Vec<(String, f32, f32, f32, f32)> {
    let boxes: Vec<_> = names
        .iter()
        .map(|name| {
            let e = find(ui, name);
            let (at, size) = (e.absolute_position(), e.size());
            assert!(
                size.height >= 52.0 && size.width >= 130.0,
                "{name}: {size:?}"
            );
            ((*name).to_owned(), at.x, at.y, size.width, size.height)
        })
        .collect();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart =
                a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1 || a.2 + a.4 <= b.2 || b.2 + b.4 <= a.2;
            assert!(apart, "{} and {} overlap: {a:?} {b:?}", a.0, b.0);
        }
    }
    boxes
}

/// Open confirmations: p1's concentration (id 7) and, when `bolus`, p2's
/// doctor's bolus after it (id 8), each lapsing `secs` from now.
fn open_list(bolus: bool, secs: i64) -> serde_json::Value {
    let expires = (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time formats");
    let mut m = concentration_card();
    m["open"][0]["expires"] = json!(expires);
    if bolus {
        let mut card = m["open"][0].clone();
        card["id"] = json!(8);
        card["pump"] = json!("p2");
        card["needs"] = json!([{"kind": "bolus", "roles": ["doctor"], "people": 1, "who": "a doctor's confirmation"}]);
        card["screen"]["pump"] = json!("p2");
        card["screen"]["drug"] = json!("morphine");
        card["screen"]["title"] = json!("Confirm the bolus");
        m["open"].as_array_mut().expect("a list").push(card);
    }
    m
}

#[test]
fn a_screen_in_use_stays_while_other_confirmations_come_and_go() {
    let (ui, _rx) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, status());
    // Home, being looked at: a confirmation arrives and home stays.
    apply(&ui, open_list(false, 120));
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    find(&ui, "1 confirmation waiting: see it");
    open_from_list(&ui, "Pump p1: fentaNYL, concentration of a new container");
    press(&ui, "Amount");
    type_keys(&ui, "25");
    // Another pump's confirmation comes and goes: the label being typed
    // stays on screen, as typed.
    apply(&ui, open_list(true, 120));
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Concentration);
    assert_eq!(
        ui.global::<Bedside>().get_title(),
        "Confirm the concentration of the new container"
    );
    assert_eq!(ui.global::<Bedside>().get_amount(), "25");
    apply(&ui, open_list(false, 120));
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Concentration);
    assert_eq!(ui.global::<Bedside>().get_amount(), "25");
}

#[test]
fn the_waiting_list_is_oldest_first_with_pump_drug_what_is_asked_and_the_time_left() {
    let (ui, _rx) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, status());
    apply(&ui, open_list(true, 100));
    press(&ui, "2 confirmations waiting: see the list");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Waiting);
    let first = find(&ui, "Pump p1: fentaNYL, concentration of a new container");
    let second = find(&ui, "Pump p2: morphine, bolus");
    assert!(
        first.absolute_position().y < second.absolute_position().y,
        "oldest first"
    );
    let left = second.accessible_description().unwrap_or_default();
    assert!(
        left == "1 min 40 s left" || left == "1 min 39 s left",
        "the time left: {left:?}"
    );
    // Back to the pumps, or pick one, and leave it for later.
    press(&ui, "Back to the pumps");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    press(&ui, "2 confirmations waiting: see the list");
    press(&ui, "Pump p1: fentaNYL, concentration of a new container");
    press(&ui, "Later");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    press(&ui, "2 confirmations waiting: see the list");
    press(&ui, "Pump p2: morphine, bolus");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Confirm);
    assert_eq!(ui.global::<Bedside>().get_title(), "Confirm the bolus");
}

#[test]
fn a_confirmation_closed_elsewhere_is_said_once_in_words_and_ok_goes_home() {
    let (ui, _rx) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, status());
    apply(&ui, open_list(true, 120));
    press(&ui, "2 confirmations waiting: see the list");
    press(&ui, "Pump p2: morphine, bolus");
    let said = "Pump p2 (morphine): confirmed at terminal bed-12-b by Dev Patel (doctor); the pump may start.";
    apply(
        &ui,
        json!({"type": "closed", "id": 8, "pump": "p2", "drug": "morphine",
               "outcome": "authorised", "message": said}),
    );
    apply(&ui, open_list(false, 120));
    let b = ui.global::<Bedside>();
    assert_eq!(b.get_screen(), Screen::Result);
    assert_eq!(b.get_result_title(), "Confirmed at another terminal");
    assert_eq!(b.get_result_message(), said);
    press(&ui, "OK");
    assert_eq!(b.get_screen(), Screen::Home);
    // No loop: the same state again leaves home alone, and the notice of
    // a confirmation not on screen here changes nothing.
    apply(&ui, open_list(false, 120));
    apply(
        &ui,
        json!({"type": "closed", "id": 7, "pump": "p1", "drug": "fentaNYL",
               "outcome": "expired", "message": "Pump p1 (fentaNYL): nobody confirmed in time; the pump will not start."}),
    );
    assert_eq!(b.get_screen(), Screen::Home);
}

#[test]
fn a_pin_is_typed_on_a_keypad_without_a_decimal_point() {
    let (ui, _rx) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, open_list(true, 120));
    press(&ui, "2 confirmations waiting: see the list");
    press(&ui, "Pump p1: fentaNYL, concentration of a new container");
    // The label's amount takes a decimal point...
    press(&ui, "Amount");
    find(&ui, ".");
    // ...a PIN does not.
    press(&ui, "Nkechi Okafor");
    assert!(
        ElementHandle::find_by_accessible_label(&ui, ".")
            .next()
            .is_none()
    );
    // Nor on a bolus, which only takes PINs.
    ui.global::<Gateway>().invoke_pick(8);
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Confirm);
    assert!(
        ElementHandle::find_by_accessible_label(&ui, ".")
            .next()
            .is_none()
    );
}

/// Eight pumps: p7 with a high alarm, p1 with a programme stopped at a
/// hard limit (a long reason), the rest infusing.
fn eight_pumps() -> serde_json::Value {
    let pumps: Vec<serde_json::Value> = (1..=8)
        .map(|n| {
            let mut p = json!({"pump": format!("p{n}"), "link": "online", "offline_reason": null,
                "state": "infusing", "drug": "propofol", "rate": "2 mg/kg/h",
                "volume_remaining": "31.4 mL", "library_matches": true, "alarms": []});
            if n == 7 {
                p["alarms"] = json!([{"priority": "high", "text": "Occlusion downstream"}]);
            }
            if n == 1 {
                p["last_decision"] = json!("denied (hard_limit)");
                p["last_reason"] = json!("BOLUS_DOSE_ABOVE_HARD_MAX: Bolus dose 150 micrograms is over the HARD maximum of 100 micrograms by 50 micrograms, 1.5 times the limit.");
            }
            p
        })
        .collect();
    json!({"type": "status", "at": "2026-11-22T03:00:00.000Z", "library": "version 12", "pumps": pumps})
}

#[test]
fn eight_pumps_on_either_panel_come_attention_first_whole_and_all_within_reach() {
    drop(terminal());
    for (w, h) in [(800u32, 480u32), (1280, 800)] {
        eight_pumps_on(w, h);
    }
}

fn eight_pumps_on(w: u32, h: u32) {
    // One testing platform per thread: a fresh window and desk.
    let ui = MainWindow::new().expect("the window builds");
    desk::with(|d| *d = desk::Desk::default());
    let (tx, _rx) = channel();
    desk::attach(&ui, tx);
    ui.window().set_size(slint::PhysicalSize::new(w, h));
    ui.show().expect("the testing backend shows it");
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, eight_pumps());
    // The alarm first, then the stopped programme.
    // In reading order: row by row, left to right.
    let before = |a: &str, b: &str| {
        let (a, b) = (
            find(&ui, a).absolute_position(),
            find(&ui, b).absolute_position(),
        );
        a.y < b.y - 1.0 || ((a.y - b.y).abs() <= 1.0 && a.x < b.x)
    };
    assert!(
        before("Pump p7", "Pump p2"),
        "{w}x{h}: the alarm comes first"
    );
    assert!(
        before("Pump p1", "Pump p3"),
        "{w}x{h}: then the stopped programme"
    );
    // The stopped programme's words sit whole inside its card.
    let card = find(&ui, "Pump p1");
    let stop = find(
        &ui,
        "HARD LIMIT: not started. No override: programme it again.: Bolus dose 150 micrograms is over the HARD maximum of 100 micrograms by 50 micrograms, 1.5 times the limit.",
    );
    let bottom = |e: &ElementHandle| e.absolute_position().y + e.size().height;
    assert!(bottom(&stop) <= bottom(&card), "the reason is not cut");
    // More is below, and says so (on the small panel); a finger drags
    // every pump into view.
    if h < 600 {
        find(&ui, "More pumps below: drag up");
    }
    for _ in 0..6 {
        if ElementHandle::find_by_accessible_label(&ui, "More pumps below: drag up")
            .next()
            .is_none()
        {
            break;
        }
        #[allow(clippy::cast_precision_loss, reason = "panel sizes")]
        let (x, y) = (w as f32 / 2.0, h as f32 - 80.0);
        drag(&ui, (x, y), (x, 150.0));
    }
    assert!(
        ElementHandle::find_by_accessible_label(&ui, "More pumps below: drag up")
            .next()
            .is_none(),
        "the end of the list is reached"
    );
    let last = find(&ui, "Pump p8");
    #[allow(clippy::cast_precision_loss, reason = "panel sizes")]
    let end = h as f32;
    assert!(
        bottom(&last) <= end,
        "{w}x{h}: the last pump is in view: {}",
        bottom(&last)
    );
}

#[test]
fn a_bolus_whose_facts_run_past_the_small_panel_says_more_is_below() {
    let (ui, _rx) = small_panel_with(pumpgw_terminal::sample::bolus());
    ui.global::<Gateway>().invoke_open_list();
    press(&ui, "Pump pump-3: fentaNYL, bolus");
    find(&ui, "More below: drag up");
    drag(&ui, (200.0, 400.0), (200.0, 100.0));
    assert!(
        ElementHandle::find_by_accessible_label(&ui, "More below: drag up")
            .next()
            .is_none(),
        "the last limit is in view"
    );
}

#[test]
fn the_prescription_is_on_the_bolus_screen_with_its_concentration() {
    let (ui, _rx) = small_panel_with(pumpgw_terminal::sample::bolus());
    ui.global::<Gateway>().invoke_open_list();
    press(&ui, "Pump pump-3: fentaNYL, bolus");
    find(&ui, "Prescribed: Order F-2002: fentaNYL");
    let order: Vec<String> = slint::Model::iter(&ui.global::<Bedside>().get_order())
        .map(|l| l.to_string())
        .collect();
    assert_eq!(
        order[1],
        "Concentration 2,500 micrograms in 50 mL (50 micrograms/mL)"
    );
}

#[test]
fn the_blind_screen_shows_the_prescription_without_its_concentration() {
    let (ui, _rx) = small_panel_with(pumpgw_terminal::sample::concentration());
    open_from_list(
        &ui,
        "Pump pump-3: fentaNYL, concentration of a new container",
    );
    let shown = ElementHandle::find_by_element_type_name(&ui, "Text")
        .filter_map(|t| t.accessible_label())
        .map(|l| l.to_string())
        .collect::<Vec<_>>();
    assert!(
        shown
            .iter()
            .any(|t| t == "Prescribed: Order F-2002: fentaNYL · Bolus 25 micrograms"),
        "{shown:?}"
    );
    assert!(!shown.iter().any(|t| t.contains("2,500")), "{shown:?}");
}

/// Every button on every screen, at both panel sizes: at least 48 px high
/// and wide (9 mm on the 7-inch panel), for a gloved finger.
type SetUp = fn(&MainWindow);

/// Every screen a person meets, with the sample data, as (name, screen,
/// how to get there).
fn every_screen() -> [(&'static str, Screen, SetUp); 8] {
    use pumpgw_terminal::sample;
    [
        ("practice home", Screen::Home, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::practice_welcome()));
            desk::with(|d| desk::apply(ui, d, sample::status()));
            desk::with(|d| desk::apply(ui, d, sample::practice(4)));
        }),
        ("practice summary", Screen::Summary, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::practice_welcome()));
            desk::with(|d| desk::apply(ui, d, sample::practice(4)));
            ui.global::<Gateway>().invoke_open_summary();
        }),
        ("home", Screen::Home, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::status()));
            desk::with(|d| desk::apply(ui, d, sample::concentration()));
        }),
        ("waiting list", Screen::Waiting, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::concentration()));
            ui.global::<Gateway>().invoke_open_list();
        }),
        ("concentration", Screen::Concentration, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::concentration()));
            ui.global::<Gateway>().invoke_pick(7);
        }),
        ("bolus", Screen::Confirm, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::bolus()));
            ui.global::<Gateway>().invoke_pick(8);
        }),
        ("soft limit", Screen::Confirm, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::soft_limit()));
            ui.global::<Gateway>().invoke_pick(9);
        }),
        ("result", Screen::Result, |ui| {
            desk::with(|d| desk::apply(ui, d, sample::bolus()));
            ui.global::<Gateway>().invoke_pick(8);
            desk::with(|d| desk::apply(ui, d, sample::authorised()));
        }),
    ]
}

/// Runs `check` on every screen at both panel sizes, each in a fresh
/// window: (window, screen name, width, height).
fn on_every_screen(check: impl Fn(&MainWindow, &str, u32, u32)) {
    drop(terminal());
    for (w, h) in [(800u32, 480u32), (1280, 800)] {
        for (name, screen, set_up) in every_screen() {
            // One testing platform per thread: a fresh window and desk.
            let ui = MainWindow::new().expect("the window builds");
            desk::with(|d| *d = desk::Desk::default());
            let (tx, _rx) = channel();
            desk::attach(&ui, tx);
            ui.window().set_size(slint::PhysicalSize::new(w, h));
            ui.show().expect("the testing backend shows it");
            desk::with(|d| desk::connection(&ui, d, true, ""));
            set_up(&ui);
            assert_eq!(ui.global::<Bedside>().get_screen(), screen, "{name}");
            check(&ui, name, w, h);
            ui.hide().expect("hides");
        }
    }
}

#[test]
fn every_button_on_every_screen_is_a_full_size_target_at_both_sizes() {
    use i_slint_backend_testing::{AccessibleRole, ElementQuery};
    on_every_screen(|ui, name, w, h| {
        let buttons = ElementQuery::from_root(ui)
            .match_descendants()
            .match_accessible_role(AccessibleRole::Button)
            .find_all();
        let mut checked = 0;
        for b in buttons {
            let label = b.accessible_label().unwrap_or_default();
            let (at, size) = (b.absolute_position(), b.size());
            #[allow(clippy::cast_precision_loss, reason = "panel sizes")]
            let on_screen = at.y >= 0.0 && at.y + size.height <= h as f32;
            if label.is_empty() || !on_screen {
                continue;
            }
            assert!(
                size.height >= 48.0 && size.width >= 48.0,
                "{name} at {w}x{h}: {label:?} is {size:?}"
            );
            checked += 1;
        }
        assert!(checked > 0, "{name} at {w}x{h}: no button found");
    });
}

#[test]
fn no_text_on_any_screen_runs_off_the_side_or_over_another_at_both_sizes() {
    use i_slint_backend_testing::{AccessibleRole, ElementQuery};
    #[allow(clippy::cast_precision_loss, reason = "panel sizes")]
    on_every_screen(|ui, name, w, h| {
        let (w, h) = (w as f32, h as f32);
        // Texts wholly on screen (a list scrolled past the fold shows the
        // rest when dragged, and says so); overlays that say "More ..."
        // sit over the list on purpose.
        let texts: Vec<(String, f32, f32, f32, f32)> = ElementQuery::from_root(ui)
            .match_descendants()
            .match_accessible_role(AccessibleRole::Text)
            .find_all()
            .into_iter()
            .filter_map(|t| {
                let label = t.accessible_label().unwrap_or_default().to_string();
                let (at, size) = (t.absolute_position(), t.size());
                let whole = at.y >= 0.0 && at.y + size.height <= h;
                (!label.trim().is_empty()
                    && !label.starts_with("More ")
                    && whole
                    && size.width > 0.0)
                    .then_some((label, at.x, at.y, size.width, size.height))
            })
            .collect();
        assert!(texts.len() > 2, "{name} at {w}x{h}: no text found");
        for (label, x, _, width, _) in &texts {
            assert!(
                *x >= -0.5 && x + width <= w + 0.5,
                "{name} at {w}x{h}: {label:?} runs off the side ({x} to {})",
                x + width
            );
        }
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                // A row described as a whole holds its texts: not an overlap.
                let holds = |o: &(String, f32, f32, f32, f32), i: &(String, f32, f32, f32, f32)| {
                    o.1 <= i.1 + 0.5
                        && o.2 <= i.2 + 0.5
                        && i.1 + i.3 <= o.1 + o.3 + 0.5
                        && i.2 + i.4 <= o.2 + o.4 + 0.5
                };
                let across = a.1.max(b.1) < (a.1 + a.3).min(b.1 + b.3) - 1.0;
                let down = a.2.max(b.2) < (a.2 + a.4).min(b.2 + b.4) - 1.0;
                assert!(
                    !(across && down) || holds(a, b) || holds(b, a),
                    "{name} at {w}x{h}: {a:?} and {b:?} overlap"
                );
            }
        }
    });
}

#[test]
fn the_terminal_says_which_confirmation_it_has_open_and_the_list_says_where_others_are() {
    let (ui, rx) = terminal();
    desk::with(|d| desk::connection(&ui, d, true, ""));
    apply(&ui, status());
    let mut card = concentration_card();
    card["open"][0]["open_at"] = json!(["bed-12-b"]);
    apply(&ui, card);
    assert!(
        rx.try_recv().is_err(),
        "nothing on screen yet: nothing to say"
    );
    press(&ui, "1 confirmation waiting: see it");
    let row = find(&ui, "Pump p1: fentaNYL, concentration of a new container");
    let said = row.accessible_description().unwrap_or_default();
    assert!(said.ends_with("; open at bed-12-b"), "{said}");
    row.invoke_accessible_default_action();
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Concentration);
    assert_eq!(
        rx.try_recv().expect("a line for the daemon"),
        FromTerminal::Viewing { id: Some(7) }
    );
    press(&ui, "Later");
    assert_eq!(ui.global::<Bedside>().get_screen(), Screen::Home);
    assert_eq!(
        rx.try_recv().expect("a line for the daemon"),
        FromTerminal::Viewing { id: None }
    );
    assert!(rx.try_recv().is_err(), "said once");
}
