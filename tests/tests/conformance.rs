//! What a controller written from `docs/protocol.md` sees of the gateway,
//! checked with the tests' own controller (`tests/src/controller.rs`, its
//! own COBS and acknowledgements): answers within the controller's answer
//! timeout, CANCEL, the pumps told at a stop, and version 2's window.

use std::time::{Duration, Instant};

use pumpgw::link::Message;
use pumpgw::link::message::Cancel;
use pumpgw_tests::Bench;
use pumpgw_tests::controller::{Controller, fentanyl_infusion};
use pumpgw_tests::terminal::Terminal;

/// The controller's answer timeout (`docs/protocol.md` section 6.8).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

fn denial_for(request: u32) -> impl Fn(&Message) -> bool {
    move |m| matches!(m, Message::Denial(d) if d.request == request)
}

fn awaiting_for(request: u32) -> impl Fn(&Message) -> bool {
    move |m| matches!(m, Message::AwaitingConfirmation(a) if a.request == request)
}

fn answered(request: u32) -> impl Fn(&Message) -> bool {
    move |m| match m {
        Message::Denial(d) => d.request == request,
        Message::Authorisation(a) => a.request == request,
        _ => false,
    }
}

/// A gateway with its terminal connected (so programmes wait for a nurse)
/// and the test's controller online on port p1.
fn bed() -> (Bench, pumpgw_tests::Proc, Terminal, Controller) {
    let bench = Bench::new();
    let mut controller = Controller::plug(&bench.path().join("p1"));
    let gateway = bench.gateway(&["p1"], "");
    let terminal = Terminal::open(&bench.terminal_socket(), "bedside");
    controller.hello("SPEC-1");
    (bench, gateway, terminal, controller)
}

#[test]
fn busy_is_answered_at_once_while_another_request_waits_and_cancel_withdraws_it() {
    let (bench, _gateway, _terminal, mut c) = bed();
    let first = c.request(1, &fentanyl_infusion(1, "100 micrograms/h", "2 mL/h"));
    let notice = c.expect(awaiting_for(1), 5);
    let Message::AwaitingConfirmation(a) = &notice.message else {
        unreachable!()
    };
    assert_eq!(a.programme_hash, first);

    // A second request while the first waits for the nurse: BUSY, and in
    // time for the controller to see it (it gives up at 10 s), not when the
    // first is answered (up to the confirmation's 120 s).
    let sent = Instant::now();
    c.request(2, &fentanyl_infusion(1, "50 micrograms/h", "1 mL/h"));
    let busy = c.expect(denial_for(2), ANSWER_TIMEOUT.as_secs());
    assert!(
        busy.at.duration_since(sent) < ANSWER_TIMEOUT,
        "BUSY came after {:?}",
        busy.at.duration_since(sent)
    );
    let Message::Denial(d) = &busy.message else {
        unreachable!()
    };
    assert_eq!(d.reasons[0].code, "BUSY", "{d:?}");
    assert!(
        c.collect(answered(1), 0).is_empty(),
        "the first is still waiting"
    );

    // The controller withdraws the first without a new HELLO; its next
    // request is then not BUSY but waits for the nurse in turn.
    c.send(&Message::Cancel(Cancel {
        request: 1,
        programme_hash: first,
    }));
    c.request(3, &fentanyl_infusion(1, "100 micrograms/h", "2 mL/h"));
    c.expect(awaiting_for(3), 5);
    // What was logged is sent: the withdrawal, which the controller ignores
    // (it no longer waits for request 1).
    let Message::Denial(d) = c.expect(denial_for(1), 5).message else {
        unreachable!()
    };
    assert_eq!(d.reasons[0].code, "CONFIRMATION_WITHDRAWN", "{d:?}");
    let denied = bench.exported("denied");
    let first_denied = denied
        .iter()
        .find(|r| r["request"] == 1)
        .unwrap_or_else(|| panic!("request 1's denial is logged: {denied:#?}"));
    assert_eq!(
        first_denied["reasons"][0]["code"], "CONFIRMATION_WITHDRAWN",
        "{first_denied}"
    );
    assert!(
        first_denied["reasons"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("withdrew")),
        "{first_denied}"
    );
}

#[test]
fn a_stop_tells_the_pump_that_its_waiting_request_is_withdrawn() {
    let (bench, mut gateway, _terminal, mut c) = bed();
    c.request(1, &fentanyl_infusion(1, "100 micrograms/h", "2 mL/h"));
    c.expect(awaiting_for(1), 5);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(gateway.pid()).expect("pids fit"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("the gateway runs");
    let told = c.expect(denial_for(1), 5);
    let Message::Denial(d) = &told.message else {
        unreachable!()
    };
    assert_eq!(d.reasons[0].code, "CONFIRMATION_WITHDRAWN", "{d:?}");
    assert!(d.reasons[0].message.contains("stopping"), "{d:?}");
    assert!(gateway.wait_exit(10).success());
    let denied = bench.exported("denied");
    assert!(
        denied.iter().any(|r| r["request"] == 1),
        "the withdrawal is logged as sent: {denied:#?}"
    );
}

fn alarm(record: u64, id: u32, condition: &str) -> Message {
    Message::Alarm(pumpgw::link::message::Alarm {
        record,
        id,
        priority: pumpgw::link::message::AlarmPriority::High,
        condition: condition.to_owned(),
        text: format!("{condition} ({record})"),
        active: true,
        at_ms: 1_796_000_000_000 + record,
    })
}

#[test]
fn a_pump_moved_to_another_port_is_known_by_its_serial_and_nothing_is_dropped() {
    let bench = Bench::new();
    let mut on_p1 = Controller::plug(&bench.path().join("p1"));
    let mut on_p2 = Controller::plug(&bench.path().join("p2"));
    let gateway = bench.gateway(&["p1", "p2"], "");
    on_p1.hello("SPEC-MOVED");
    on_p1.send(&alarm(10, 1, "occlusion_downstream"));
    // The cable is moved to the other port before the pump saw the ACK:
    // it resends the same event there after its new handshake.
    drop(on_p1);
    gateway.wait_for(&["pump=p1", "pump link down"], 1, 10);
    on_p2.hello("SPEC-MOVED");
    on_p2.send(&alarm(10, 1, "occlusion_downstream"));
    // An event numbered below the last one and never logged (the pump
    // skipped it before): logged, never dropped (section 6.11).
    on_p2.send(&alarm(7, 2, "air_in_line"));
    let alarms = bench.exported("alarm");
    let numbers: Vec<_> = alarms.iter().map(|r| r["pump_record"].clone()).collect();
    assert_eq!(numbers, [10, 7], "{alarms:#?}");
    assert_eq!(alarms[0]["pump"], "p1");
    assert_eq!(alarms[1]["pump"], "p2");
    assert!(
        bench.exported("record_conflict").is_empty(),
        "a resend is not a conflict"
    );
}

#[test]
fn two_pumps_online_under_one_serial_each_have_their_events_logged_however_alike() {
    // Two controllers claim one serial (a cloned configuration) and send
    // the very same event: neither is a resend of the other's.
    let bench = Bench::new();
    let mut on_p1 = Controller::plug(&bench.path().join("p1"));
    let mut on_p2 = Controller::plug(&bench.path().join("p2"));
    let _gateway = bench.gateway(&["p1", "p2"], "");
    on_p1.hello("SPEC-TWIN");
    on_p2.hello("SPEC-TWIN");
    on_p1.send(&alarm(10, 1, "occlusion_downstream"));
    on_p2.send(&alarm(10, 1, "occlusion_downstream"));
    let alarms = bench.exported("alarm");
    let ports: Vec<_> = alarms.iter().map(|r| r["pump"].clone()).collect();
    assert_eq!(ports, ["p1", "p2"], "{alarms:#?}");
    // A resend on the same port is still one record.
    on_p2.send(&alarm(10, 1, "occlusion_downstream"));
    assert_eq!(bench.exported("alarm").len(), 2);
}

#[test]
fn a_pump_on_another_file_of_the_same_version_is_told_the_hashes() {
    let bench = Bench::new();
    let mut c = Controller::plug(&bench.path().join("p1"));
    let _gateway = bench.gateway(&["p1"], "[terminal]\n");
    c.hello_with("SPEC-HASH", Some((12, [0x42; 32])));
    c.request(1, &fentanyl_infusion(1, "100 micrograms/h", "2 mL/h"));
    let Message::Denial(d) = c.expect(denial_for(1), 5).message else {
        unreachable!()
    };
    assert_eq!(d.reasons[0].code, "LIBRARY_HASH_MISMATCH");
    let said = &d.reasons[0].message;
    assert!(
        said.contains("a library version 12 file that differs from the gateway's")
            && said.contains("4242424242424242 on the pump"),
        "{said}"
    );
    assert!(
        !said.contains("not the gateway's library version 12"),
        "{said}"
    );
}

#[test]
fn version_2_takes_a_window_of_events_in_order_and_the_resends_fill_a_lost_frame() {
    let bench = Bench::new();
    let mut c = Controller::plug(&bench.path().join("p1")).speaking(&[1, 2]);
    let gateway = bench.gateway(&["p1"], "[link]\nwindow = 4\n");
    c.hello("SPEC-WINDOW");
    assert_eq!(c.session(), (2, 4), "WELCOME chose version 2, window 4");
    let frames: Vec<(u16, Vec<u8>)> = (1..=4)
        .map(|r| c.frame_for(&alarm(r, 1, "occlusion_downstream")))
        .collect();
    // The second frame is lost on the line: the gateway takes the first,
    // and drops the two behind the gap unacknowledged.
    for f in [&frames[0], &frames[2], &frames[3]] {
        c.write(&f.1);
    }
    assert_eq!(c.acks_within(Duration::from_millis(700)), [frames[0].0]);
    // The resends, in order, fill the gap.
    for f in &frames[1..] {
        c.write(&f.1);
    }
    let mut acked = c.acks_within(Duration::from_millis(700));
    acked.sort_unstable();
    assert_eq!(acked, [frames[1].0, frames[2].0, frames[3].0]);
    // A burst through the window: every event acknowledged, logged once.
    c.send_all((5..=300).map(|r| alarm(r, 1, "occlusion_downstream")));
    let alarms = bench.exported("alarm");
    let numbers: Vec<u64> = alarms
        .iter()
        .map(|r| r["pump_record"].as_u64().expect("a record number"))
        .collect();
    assert_eq!(
        numbers,
        (1..=300).collect::<Vec<u64>>(),
        "in order, each once"
    );
    drop(gateway);
}
