//! The event log end to end: crash safety under SIGKILL, tamper detection,
//! a damaged database refused, a full disk failing safe.

use std::collections::HashMap;

use pumpgw_tests::{Bench, alarm_storm, example_scenario, pumpgwd};

#[test]
fn sigkill_loses_nothing_acknowledged_and_logs_nothing_twice() {
    let bench = Bench::new();
    let ports = ["p1", "p2"];
    let mut sims: Vec<_> = ports
        .iter()
        .map(|p| {
            let acks = bench.path().join(format!("{p}.acks")).display().to_string();
            bench.sim(
                p,
                &alarm_storm(&format!("K-{p}"), 150),
                &["--ack-log", &acks, "--answer-timeout", "30"],
            )
        })
        .collect();
    // Kill the gateway again and again while the pumps keep sending.
    for round in 0..5u64 {
        let mut gw = bench.gateway(&ports, "");
        std::thread::sleep(std::time::Duration::from_millis(800 + round * 250));
        gw.kill();
    }
    let mut gw = bench.gateway(&ports, "");
    for sim in &mut sims {
        // A simulator ends only when every event it made was acknowledged.
        assert!(sim.wait_exit(90).success(), "{}", sim.log_text());
    }
    assert!(gw.terminate(10).success());

    let dir = bench.path().display().to_string();
    let verify = pumpgwd(&["events", "verify", "--data-dir", &dir]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{said}");
    assert!(said.contains("the chain holds"), "{said}");

    let mut logged: HashMap<(String, u64), usize> = HashMap::new();
    for r in bench.exported("alarm") {
        let key = (
            r["pump_serial"].as_str().unwrap().to_owned(),
            r["pump_record"].as_u64().unwrap(),
        );
        *logged.entry(key).or_default() += 1;
    }
    let twice: Vec<_> = logged.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "logged more than once: {twice:?}");
    for p in ports {
        let acks = std::fs::read_to_string(bench.path().join(format!("{p}.acks"))).unwrap();
        let acked: Vec<u64> = acks.lines().map(|l| l.parse().unwrap()).collect();
        // 150 alarms raised and cleared: 300 events, each acknowledged.
        assert_eq!(acked.len(), 300, "{p}");
        for record in acked {
            assert!(
                logged.contains_key(&(format!("K-{p}"), record)),
                "{p}: record {record} was acknowledged but is not in the log"
            );
        }
    }
    assert_eq!(logged.len(), 600);
}

#[test]
fn events_verify_finds_an_edited_record_and_says_where() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let mut sim = bench.sim(
        "p1",
        &example_scenario("fentanyl-wrong-concentration-bolus"),
        &["--speed", "3600"],
    );
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    assert!(gw.terminate(10).success());
    let dir = bench.path().display().to_string();
    let ok = pumpgwd(&["events", "verify", "--data-dir", &dir]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let denied = bench.exported("denied");
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied[0]["reasons"][0]["code"],
        "CONCENTRATION_NOT_IN_LIBRARY"
    );
    let seq = denied[0]["seq"].as_i64().unwrap();

    // Someone with access to the file turns the block into a pass.
    let conn = rusqlite::Connection::open(bench.path().join("pumpgw.sqlite")).unwrap();
    let record: Vec<u8> = conn
        .query_row("SELECT record FROM events WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .unwrap();
    let edited = String::from_utf8(record)
        .unwrap()
        .replace("\"outcome\":\"block\"", "\"outcome\":\"pass\"");
    conn.execute(
        "UPDATE events SET record = ?1 WHERE seq = ?2",
        rusqlite::params![edited.as_bytes(), seq],
    )
    .unwrap();
    drop(conn);
    let broken = pumpgwd(&["events", "verify", "--data-dir", &dir]);
    let said = String::from_utf8_lossy(&broken.stdout);
    assert_eq!(broken.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("BROKEN at record {seq}")), "{said}");
}

#[test]
fn a_damaged_database_is_refused_at_start_and_left_untouched() {
    let bench = Bench::new();
    let db = bench.path().join("pumpgw.sqlite");
    let junk: Vec<u8> = (0..16_384u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(&db, &junk).unwrap();
    let config = bench.gateway_config(&["p1"], "").display().to_string();
    let mut gw = bench.spawn_with_input("gateway", "pumpgwd", &["run", "--config", &config], None);
    let status = gw.wait_exit(10);
    assert_eq!(status.code(), Some(65), "{}", gw.log_text());
    let log = gw.log_text();
    assert!(log.contains("is damaged"), "{log}");
    assert!(log.contains("has not been changed"), "{log}");
    assert_eq!(std::fs::read(&db).unwrap(), junk);
}

#[test]
fn a_log_that_cannot_be_written_denies_everything_and_says_so() {
    let bench = Bench::new();
    let library =
        std::fs::read(pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY)).unwrap();
    pumpgw::sim::library::install_library(bench.path(), "test-bed", "adult-icu", &library).unwrap();
    let config = bench.gateway_config(&["p1"], "").display().to_string();
    let pumpgwd_bin = pumpgw_tests::binary("pumpgwd").display().to_string();
    // The file-size limit stands in for a full disk: the log stops growing
    // after a few commits.
    let mut gw = bench.spawn_program(
        "gateway",
        std::path::Path::new("prlimit"),
        &["--fsize=200000", &pumpgwd_bin, "run", "--config", &config],
        None,
    );
    let mut scenario = example_scenario("fentanyl-infusion");
    scenario.truncate(scenario.find("[[step]]\naction = \"infuse\"").unwrap());
    for _ in 0..40 {
        scenario.push_str(
            "[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nvtbi = \"1 mL\"\n\n",
        );
    }
    let mut sim = bench.sim(
        "p1",
        &scenario,
        &["--speed", "3600", "--answer-timeout", "5"],
    );
    sim.wait_for(&["code=STORE_UNAVAILABLE"], 1, 30);
    gw.wait_for(&["EVENT NOT LOGGED"], 1, 5);
    // Still running, and stops cleanly.
    assert!(gw.terminate(10).success(), "{}", gw.log_text());
    sim.kill();
    let dir = bench.path().display().to_string();
    let verify = pumpgwd(&["events", "verify", "--data-dir", &dir]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // Nothing was authorised without its record: every authorisation the
    // pump got is in the log.
    let authorised = bench.exported("authorised").len();
    let sim_said = sim.log_text();
    let got = sim_said.matches("authorised; starting").count();
    assert_eq!(got, authorised, "{sim_said}");
    assert!(
        authorised >= 1,
        "the log worked until it filled: {sim_said}"
    );
}

#[test]
fn cumulative_limits_remember_what_was_given_across_a_restart() {
    let bench = Bench::new();
    let pump = "[pump]\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
                [[step]]\naction = \"wait_library\"\n\n\
                [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n";
    // 400 micrograms given (8 mL at 200 micrograms/h, two hours at 3600x).
    let first = format!(
        "{pump}[[step]]\naction = \"infuse\"\nrate = \"200 micrograms/h\"\nvtbi = \"8 mL\"\nexpect = \"authorised\"\n\n\
         [[step]]\naction = \"wait_delivery\"\n"
    );
    let mut gw = bench.gateway(&["p1"], "");
    let mut sim = bench.sim("p1", &first, &["--speed", "3600", "--serial", "C1"]);
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    gw.wait_for(&["event=Completed"], 1, 5);
    assert!(gw.terminate(10).success());

    // After a restart, 150 more would make 550 in the hour: over 500.
    let second = format!(
        "{pump}[[step]]\naction = \"bolus\"\ndose = \"150 micrograms\"\nduration = \"10 min\"\n\
         expect = \"denied\"\nexpect_code = \"CUMULATIVE_LIMIT\"\n"
    );
    let mut gw = bench.gateway(&["p1"], "");
    let mut sim = bench.sim("p1", &second, &["--speed", "3600", "--serial", "C1"]);
    assert!(
        sim.wait_exit(30).success(),
        "{}\n{}",
        sim.log_text(),
        gw.log_text()
    );
    assert!(gw.terminate(10).success());
}

#[test]
fn two_pumps_claiming_one_serial_do_not_hide_each_others_events() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1", "p2"], "");
    let mut sims: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|p| bench.sim(p, &alarm_storm("SAME", 10), &[]))
        .collect();
    for sim in &mut sims {
        assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    }
    assert!(gw.terminate(10).success());
    let alarms = bench.exported("alarm");
    for p in ["p1", "p2"] {
        let n = alarms.iter().filter(|r| r["pump"] == p).count();
        assert_eq!(n, 20, "{p}: 10 alarms raised and cleared");
    }
}

/// A small tmpfs mounted for one test (root only: tests/run on CI runs as
/// root), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test mounts a small tmpfs to fill: run it as root (CI does)"
        );
        std::fs::create_dir_all(at).expect("the bench is writable");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a tmpfs at {}", at.display());
        SmallDisk(at.to_owned())
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("the filler starts");
        let chunk = vec![0x55u8; 64 * 1024];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_under_the_log_and_its_stderr_file_is_survived_and_recovered_from() {
    let bench = Bench::new();
    let disk = SmallDisk::mount(&bench.path().join("disk"), "24m");
    let library =
        std::fs::read(pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY)).unwrap();
    pumpgw::sim::library::install_library(&disk.0, "test-bed", "adult-icu", &library).unwrap();
    // No terminal: every programme is denied CONFIRMATION_UNAVAILABLE while
    // the log takes the denial, STORE_UNAVAILABLE while it cannot.
    let config = bench.gateway_config(&["p1"], "[terminal]\n");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "data_dir = \".\"",
        &format!("data_dir = {:?}", disk.0.display().to_string()),
    );
    std::fs::write(&config, text).unwrap();
    // The daemon's stderr goes to a file on the same small disk.
    let stderr = disk.0.join("pumpgwd.log").display().to_string();
    let pumpgwd_bin = pumpgw_tests::binary("pumpgwd").display().to_string();
    let mut gw = bench.spawn_program(
        "gateway",
        std::path::Path::new("sh"),
        &[
            "-c",
            "exec \"$0\" run --config \"$1\" 2>>\"$2\"",
            &pumpgwd_bin,
            &config.display().to_string(),
            &stderr,
        ],
        None,
    );
    let mut scenario = example_scenario("fentanyl-infusion");
    scenario.truncate(scenario.find("[[step]]\naction = \"infuse\"").unwrap());
    for _ in 0..600 {
        scenario.push_str(
            "[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nvtbi = \"1 mL\"\n\n\
             [[step]]\naction = \"wait\"\nduration = \"0.1 s\"\n\n",
        );
    }
    let mut sim = bench.sim_alone("p1", &scenario, &["--answer-timeout", "5"]);
    sim.wait_for(&["code=CONFIRMATION_UNAVAILABLE"], 1, 30);
    let filler = disk.fill();
    // Long enough for the daemon's stderr file to need a new page too.
    sim.wait_for(&["code=STORE_UNAVAILABLE"], 20, 30);
    let before = sim.count(&["code=CONFIRMATION_UNAVAILABLE"]);
    std::fs::remove_file(&filler).expect("the filler goes");
    // Space is back: the log takes decisions again.
    sim.wait_for(&["code=CONFIRMATION_UNAVAILABLE"], before + 3, 30);
    let said = sim.log_text();
    assert!(
        !said.contains("GATEWAY_UNAVAILABLE"),
        "the core never went away: {said}"
    );
    sim.kill();
    assert!(gw.terminate(10).success());
    let verify = pumpgwd(&[
        "events",
        "verify",
        "--data-dir",
        &disk.0.display().to_string(),
    ]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_second_daemon_on_the_same_data_folder_is_refused_and_touches_nothing() {
    let bench = Bench::new();
    let mut first = bench.gateway(&["p1"], "");
    first.wait_for(&["gateway running"], 1, 10);
    let config = bench.path().join("gateway.toml").display().to_string();
    let mut second =
        bench.spawn_with_input("second", "pumpgwd", &["run", "--config", &config], None);
    let status = second.wait_exit(10);
    let said = second.log_text();
    assert_eq!(status.code(), Some(75), "{said}");
    assert!(
        said.contains("is in use by another pumpgwd (process "),
        "{said}"
    );
    assert!(said.contains(&first.pid().to_string()), "{said}");
    // The first still serves its terminal socket and is the only one in
    // the log.
    let _terminal = pumpgw_tests::terminal::Terminal::open(&bench.terminal_socket(), "check");
    assert!(first.terminate(10).success());
    assert_eq!(bench.exported("gateway_started").len(), 1);
    assert_eq!(bench.exported("gateway_stopped").len(), 1);
}
