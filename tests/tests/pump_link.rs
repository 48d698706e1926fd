//! The pump link end to end: the real `pumpgwd run` against real `pump-sim`
//! processes on pseudo-terminals.

use pumpgw_tests::{Bench, example_scenario, pumpgwd};

/// An hour of simulated time per real second.
const FAST: &[&str] = &["--speed", "3600"];

fn counter(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn an_authorised_infusion_runs_from_request_to_completion() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let mut sim = bench.sim("p1", &example_scenario("fentanyl-infusion"), FAST);
    let status = sim.wait_exit(30);
    assert!(status.success(), "{}", sim.log_text());
    assert!(
        sim.log_text()
            .contains("1 authorised, 0 denied, 1 delivered"),
        "{}",
        sim.log_text()
    );
    gw.wait_for(&["pump=p1", "event=Completed"], 1, 10);
    assert_eq!(gw.count(&["decision=authorised", "drug=fentanyl"]), 1);
    assert_eq!(gw.count(&["event=Started"]), 1);
    assert!(gw.count(&["pump installed a library", "matches=true"]) >= 1);
    assert!(gw.terminate(10).success());
}

#[test]
fn handshake_negotiates_a_common_version_or_refuses() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["v1", "v9"], "");
    let common = "[pump]\nserial = \"V1\"\nversions = [1, 2]\n[[step]]\naction = \"wait_online\"\n";
    let mut ok = bench.sim("v1", common, &[]);
    assert!(ok.wait_exit(15).success(), "{}", ok.log_text());
    assert!(ok.log_text().contains("1 handshake(s)"));
    // The highest both speak, with the gateway's window (section 5.5).
    assert_eq!(
        ok.count(&["link up", "version=2", "window=8"]),
        1,
        "{}",
        ok.log_text()
    );
    gw.wait_for(&["pump link up", "pump=v1", "serial=V1"], 1, 5);
    // A controller that speaks only version 1 gets version 1: stop and wait.
    let only_1 = "[pump]\nserial = \"V1\"\nversions = [1]\n[[step]]\naction = \"wait_online\"\n";
    let mut old = bench.sim("v1", only_1, &[]);
    assert!(old.wait_exit(15).success(), "{}", old.log_text());
    assert_eq!(
        old.count(&["link up", "version=1", "window=1"]),
        1,
        "{}",
        old.log_text()
    );

    let none = "[pump]\nserial = \"V9\"\nversions = [9]\n[[step]]\naction = \"wait_online\"\n";
    let mut refused = bench.sim("v9", none, &[]);
    gw.wait_for(&["no common protocol version", "pump=v9"], 1, 10);
    refused.wait_for(&["unsupported_version"], 1, 10);
    assert!(refused.terminate(10).success());
    assert!(
        refused.log_text().contains("0 handshake(s)"),
        "{}",
        refused.log_text()
    );
    assert_eq!(gw.count(&["pump link up", "pump=v9"]), 0);
    assert!(gw.terminate(10).success());
}

#[test]
fn hsib_wrong_concentration_boluses_are_denied_before_any_delivery() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1", "p2"], "");
    // The label says 2,500 micrograms in 50 mL; the programme says 25.
    let mut wrong = bench.sim(
        "p1",
        &example_scenario("fentanyl-wrong-concentration-bolus"),
        FAST,
    );
    // Right concentration, but the pump's own arithmetic claims the whole
    // syringe for 25 micrograms.
    let claims = "[pump]\nserial = \"P2\"\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\
        [[step]]\naction = \"wait_library\"\n\
        [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\
        [[step]]\naction = \"bolus\"\ndose = \"25 micrograms\"\nduration = \"60 s\"\npump_volume = \"50 mL\"\n\
        expect = \"denied\"\nexpect_code = \"PUMP_COMPUTATION_MISMATCH\"\n";
    let mut mismatch = bench.sim("p2", claims, FAST);
    for sim in [&mut wrong, &mut mismatch] {
        assert!(sim.wait_exit(20).success(), "{}", sim.log_text());
        assert!(
            sim.log_text()
                .contains("0 authorised, 1 denied, 0 delivered"),
            "{}",
            sim.log_text()
        );
    }
    gw.wait_for(
        &[
            "pump=p1",
            "decision=denied (block)",
            "CONCENTRATION_NOT_IN_LIBRARY",
        ],
        1,
        5,
    );
    gw.wait_for(&["pump=p2", "decision=denied"], 1, 5);
    assert_eq!(gw.count(&["delivery", "event="]), 0, "{}", gw.log_text());
    assert!(gw.terminate(10).success());
}

#[test]
fn a_cable_pulled_mid_infusion_loses_and_duplicates_nothing() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    // Propofol 2 mg/kg/h at 70 kg = 14 mL/h; 2 mL takes about 8.6 minutes,
    // 5 s at 100x. The cable is out for 4 s in the middle.
    let scenario = "[pump]\nserial = \"CABLE\"\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\
        [[step]]\naction = \"wait_library\"\n\
        [[step]]\naction = \"load\"\ndrug = \"propofol\"\nconcentration = \"500 mg in 50 mL\"\nvolume = \"50 mL\"\n\
        [[step]]\naction = \"infuse\"\nrate = \"2 mg/kg/h\"\nvtbi = \"2 mL\"\nexpect = \"authorised\"\n\
        [[step]]\naction = \"wait\"\nduration = \"1 min\"\n\
        [[step]]\naction = \"pause\"\n\
        [[step]]\naction = \"resume\"\n\
        [[step]]\naction = \"hang_up\"\nduration = \"4 s\"\n\
        [[step]]\naction = \"wait_delivery\"\n";
    let mut sim = bench.sim("p1", scenario, &["--speed", "100"]);
    sim.wait_for(&["hung up"], 1, 15);
    // Offline well within the 3 s supervision time: the hang-up is seen at once.
    gw.wait_for(&["pump=p1", "port lost"], 1, 3);
    gw.wait_for(&["pump link up", "pump=p1"], 2, 15);
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    assert!(
        sim.log_text().contains("2 handshake(s)"),
        "{}",
        sim.log_text()
    );
    gw.wait_for(&["event=Completed"], 1, 5);
    for event in ["Started", "Paused", "Resumed", "Completed"] {
        assert_eq!(
            gw.count(&["pump=p1", "delivery", &format!("event={event}")]),
            1,
            "{event}:\n{}",
            gw.log_text()
        );
    }
    assert!(gw.terminate(10).success());
}

#[test]
fn a_silent_pump_is_offline_within_the_supervision_time_and_comes_back() {
    let bench = Bench::new();
    let mut gw = bench.gateway(
        &["p1"],
        "[link]\nheartbeat_ms = 500\nsupervision_ms = 1500\n",
    );
    // The pump sends nothing at all for 2.5 s.
    let scenario = "[pump]\nserial = \"QUIET\"\n\
        [[step]]\naction = \"wait_online\"\n\
        [[step]]\naction = \"fault\"\nsilence_ms = 2500\n\
        [[step]]\naction = \"wait\"\nduration = \"4 s\"\n\
        [[step]]\naction = \"wait_online\"\n";
    let mut sim = bench.sim("p1", scenario, &[]);
    gw.wait_for(&["pump link down", "pump=p1", "nothing heard"], 1, 10);
    let down = gw
        .log_text()
        .lines()
        .find(|l| l.contains("pump link down"))
        .map(str::to_owned)
        .expect("seen above");
    // "nothing heard for 1.5xx s": no later than the supervision time plus one poll.
    assert!(down.contains("nothing heard for 1."), "{down}");
    gw.wait_for(&["pump link up", "pump=p1"], 2, 20);
    assert!(sim.wait_exit(20).success(), "{}", sim.log_text());
    assert!(gw.terminate(10).success());
}

#[test]
fn corrupted_duplicated_and_garbage_bytes_do_not_break_the_link() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let scenario = example_scenario("fentanyl-infusion").replace(
        "[[step]]\naction = \"wait_library\"",
        "[faults]\nseed = 42\ncorrupt_percent = 15\nduplicate_percent = 15\ngarbage_percent = 15\n\n\
         [[step]]\naction = \"fault\"\ngarbage = 300\n\n[[step]]\naction = \"wait_library\"",
    );
    assert!(scenario.contains("corrupt_percent"));
    let mut sim = bench.sim("p1", &scenario, FAST);
    assert!(sim.wait_exit(60).success(), "{}", sim.log_text());
    assert!(sim.log_text().contains("1 delivered"), "{}", sim.log_text());
    assert!(gw.terminate(10).success());
    let counters = gw
        .log_text()
        .lines()
        .find(|l| l.contains("link counters") && l.contains("pump=p1"))
        .map(str::to_owned)
        .expect("the gateway logs the link counters when a session ends");
    let rejected = counter(&counters, "crc_errors") + counter(&counters, "framing_errors");
    assert!(rejected > 0, "{counters}");
    assert!(counter(&counters, "duplicates") > 0, "{counters}");
    assert_eq!(gw.count(&["event=Completed"]), 1);
}

#[test]
fn a_dropped_frame_is_sent_again() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let scenario = example_scenario("fentanyl-infusion").replace(
        "[[step]]\naction = \"infuse\"",
        "[[step]]\naction = \"fault\"\ndrop_next = 1\n\n[[step]]\naction = \"infuse\"",
    );
    let mut sim = bench.sim("p1", &scenario, FAST);
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    let line = sim
        .log_text()
        .lines()
        .find(|l| l.contains("pump-sim: link:"))
        .map(str::to_owned)
        .expect("pump-sim prints its counters");
    assert!(counter(&line, "retransmissions") >= 1, "{line}");
    assert!(sim.log_text().contains("1 authorised"));
    assert!(gw.terminate(10).success());
}

#[test]
fn eight_pumps_on_eight_ports_at_once() {
    let bench = Bench::new();
    let ports: Vec<String> = (1..=8).map(|i| format!("p{i}")).collect();
    let names: Vec<&str> = ports.iter().map(String::as_str).collect();
    let mut gw = bench.gateway(&names, "");
    let scenario = example_scenario("fentanyl-infusion");
    let mut sims: Vec<_> = names
        .iter()
        .map(|p| {
            bench.sim(
                p,
                &scenario,
                &["--speed", "3600", "--serial", &format!("SER-{p}")],
            )
        })
        .collect();
    for sim in &mut sims {
        assert!(sim.wait_exit(60).success(), "{}", sim.log_text());
    }
    gw.wait_for(&["event=Completed"], 8, 10);
    for p in &names {
        assert_eq!(
            gw.count(&[&format!("pump={p} "), "event=Completed"]),
            1,
            "{p}"
        );
    }
    assert!(gw.terminate(10).success());
}

#[test]
fn sigterm_drains_the_sessions_and_exits_zero() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1", "p2", "absent"], "");
    let stay = "[pump]\nserial = \"S\"\n[[step]]\naction = \"wait_online\"\n";
    let _a = bench.sim("p1", stay, &["--stay", "--serial", "S1"]);
    let _b = bench.sim("p2", stay, &["--stay", "--serial", "S2"]);
    gw.wait_for(&["pump link up"], 2, 10);
    let status = gw.terminate(5);
    assert!(status.success(), "{status:?}\n{}", gw.log_text());
    let log = gw.log_text();
    assert!(log.contains("signal=\"SIGTERM\""), "{log}");
    assert_eq!(gw.count(&["link counters"]), 2, "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
}

#[test]
fn a_config_with_an_unknown_key_is_refused_with_its_line() {
    let bench = Bench::new();
    let path = bench.path().join("bad.toml");
    std::fs::write(
        &path,
        "gateway_id = \"b\"\ncare_area = \"adult-icu\"\ndata_dir = \".\"\n\n[[port]]\npath = \"/dev/null\"\nbaudrate = 9600\n",
    )
    .unwrap();
    let out = pumpgwd(&["run", "--config", &path.display().to_string()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:7:1: unknown field `baudrate`"),
        "{err}"
    );
}

#[test]
fn the_demo_shows_pumps_running_and_the_dangerous_bolus_denied() {
    let out = pumpgwd(&[
        "demo",
        "--pumps",
        "4",
        "--speed",
        "3600",
        "--duration",
        "8",
        "--plain",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("library v12"), "{text}");
    assert!(text.contains("authorised"), "{text}");
    assert!(text.contains("denied (block)"), "{text}");
    assert!(text.contains("CONCENTRATION_NOT_IN_LIBRARY"), "{text}");
    // The wrong noradrenaline strength, caught by the nurse's blind
    // re-entry of the label; the doctor-confirmed fentanyl bolus, given.
    assert!(text.contains("CONCENTRATION_MISMATCH"), "{text}");
    assert!(text.contains("pumpgw demo stopped."), "{text}");
    // The README's main command is this demo, and its sample shows the same table.
    let readme = std::fs::read_to_string(pumpgw_tests::repo_root().join("README.md")).unwrap();
    assert!(readme.contains("cargo run -q --bin pumpgwd -- demo\n"));
    let header = text
        .lines()
        .find(|l| l.starts_with("PUMP "))
        .expect("the table has a header");
    assert!(readme.contains(header), "README sample lacks {header:?}");
}

#[test]
fn pump_sim_plays_commands_typed_on_stdin() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let link = bench.path().join("p1").display().to_string();
    let pump_only = bench.path().join("pump.toml");
    std::fs::write(&pump_only, "[pump]\ncare_area = \"adult-icu\"\n").unwrap();
    let pump_only = pump_only.display().to_string();
    let commands = "\
wait_library
load drug = \"fentanyl\", concentration = \"2500 micrograms in 50 mL\", volume = \"50 mL\"
infuse rate = \"50 micrograms/h\", vtbi = \"0.5 mL\", expect = \"authorised\"
nonsense here
wait_delivery
";
    let mut sim = bench.spawn_with_input(
        "sim-interactive",
        "pump-sim",
        &[
            "--interactive",
            "--link",
            &link,
            "--speed",
            "3600",
            "--scenario",
            &pump_only,
            "--terminal",
            &bench.terminal_socket().display().to_string(),
            "--nurse",
            &format!("{}:{}", pumpgw_tests::NURSE.0, pumpgw_tests::NURSE.1),
        ],
        Some(commands),
    );
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    let log = sim.log_text();
    assert!(log.contains("unknown action `nonsense`"), "{log}");
    assert!(log.contains("1 authorised, 0 denied, 1 delivered"), "{log}");
    assert!(
        sim.out_text().starts_with("pump-sim: port "),
        "{}",
        sim.out_text()
    );
    gw.wait_for(&["event=Completed"], 1, 5);
    assert!(gw.terminate(10).success());
}

#[test]
fn ctrl_c_stops_the_demo_cleanly() {
    let bench = Bench::new();
    let mut demo = bench.spawn_with_input(
        "demo",
        "pumpgwd",
        &["demo", "--pumps", "2", "--plain"],
        None,
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !demo.out_text().contains("authorised") && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        demo.out_text().contains("authorised"),
        "{}",
        demo.out_text()
    );
    let status = Bench::interrupt(&mut demo, 10);
    assert!(status.success(), "{status:?}");
    assert!(demo.out_text().contains("pumpgw demo stopped."));
}

#[test]
fn a_pump_set_to_another_care_area_is_denied() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let scenario = example_scenario("fentanyl-infusion")
        .replace("care_area = \"adult-icu\"", "care_area = \"paed-icu\"")
        .replace(
            "expect = \"authorised\"",
            "expect = \"denied\"\nexpect_code = \"CARE_AREA_MISMATCH\"",
        )
        .replace("[[step]]\naction = \"wait_delivery\"\n", "");
    assert!(scenario.contains("paed-icu") && scenario.contains("CARE_AREA_MISMATCH"));
    let mut sim = bench.sim("p1", &scenario, FAST);
    assert!(sim.wait_exit(20).success(), "{}", sim.log_text());
    assert!(gw.terminate(10).success());
}

#[test]
fn pump_sim_fails_a_request_whose_link_drops_before_the_answer() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    // A terminal nobody answers at: the request waits for a nurse.
    let _terminal = pumpgw_tests::terminal::Terminal::open(&bench.terminal_socket(), "silent");
    let mut sim = bench.sim_alone(
        "p1",
        &pumpgw_tests::fentanyl_pump(
            "DROP-1",
            "",
            "\n[[step]]\naction = \"infuse\"\nrate = \"100 micrograms/h\"\nvtbi = \"5 mL\"\n",
        ),
        &[],
    );
    sim.wait_for(&["waiting for confirmation"], 1, 15);
    gw.kill();
    let status = sim.wait_exit(20);
    let said = sim.log_text();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains("request 1: the link went down before the answer; not delivering"),
        "{said}"
    );
}
