//! Configuration control of the drug library through the CLI: signed
//! import, activation, no rollback, refusals that leave the active library
//! untouched, the archive and the audit trail.

use pumpgw_tests::{import_and_activate, library, run, write_signed};

/// A pharmacy key and a gateway config in `d` that trusts it.
fn pharmacy_and_gateway(d: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = d.join("pharmacy.key");
    assert_eq!(
        run(&["library", "keygen", "--out", &key.display().to_string()]).0,
        0
    );
    let config = d.join("gateway.toml");
    std::fs::write(
        &config,
        "gateway_id = \"bed-1\"\ncare_area = \"adult-icu\"\ndata_dir = \"state\"\n\
         trusted_keys = [\"pharmacy.key.pub\", \"pharmacy.key-approver.pub\"]\n\n[[port]]\npath = \"/dev/null\"\n",
    )
    .expect("writable");
    (key, config)
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one story, import to audit, step by step"
)]
fn import_activate_and_every_refusal_leaves_the_active_library_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, config) = pharmacy_and_gateway(d);
    let rogue = d.join("rogue.key");
    assert_eq!(
        run(&["library", "keygen", "--out", &rogue.display().to_string()]).0,
        0
    );
    let cfg = config.display().to_string();
    let import = |file: &str, sig: &str| {
        run(&[
            "library",
            "import",
            file,
            "--signature",
            sig,
            "--config",
            &cfg,
            "--by",
            "pharmacist",
        ])
    };

    let (v12, s12) = write_signed(d, "v12.json", &library(12), &key);
    let (code, said, _) = import(&v12, &s12);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("version 12 verified"), "{said}");
    let (code, said, _) = run(&["library", "list", "--config", &cfg]);
    assert_eq!(code, 0);
    assert!(
        said.contains("verified"),
        "import does not activate: {said}"
    );
    let (code, said, err) = run(&[
        "library", "activate", "12", "--config", &cfg, "--by", "biomed", "--reason", "go live",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("version 12 is now the active library"),
        "{said}"
    );

    // Refusals, each with its reason, none touching version 12.
    let (v11, s11) = write_signed(d, "v11.json", &library(11), &key);
    let (code, _, err) = import(&v11, &s11);
    assert_eq!(code, 1);
    assert!(
        err.contains("not higher than the active version 12: no rollback"),
        "{err}"
    );
    let (code, _, err) = import(&v12, &s12);
    assert_eq!(code, 1);
    assert!(err.contains("no rollback"), "{err}");

    let (v13, s13) = write_signed(d, "v13.json", &library(13), &key);
    let tampered = d.join("v13-tampered.json");
    std::fs::write(
        &tampered,
        library(13).replace("Adult critical care", "Adult critical carE"),
    )
    .unwrap();
    let (code, _, err) = import(&tampered.display().to_string(), &s13);
    assert_eq!(code, 1);
    assert!(err.contains("signature is for another file"), "{err}");

    let (r13, rs13) = write_signed(d, "rogue13.json", &library(13), &rogue);
    let (code, _, err) = import(&r13, &rs13);
    assert_eq!(code, 1);
    assert!(err.contains("does not trust"), "{err}");

    let bad_schema = library(14).replacen("\"care_areas\"", "\"care_areaz\"", 1);
    let (b14, bs14) = write_signed(d, "bad14.json", &bad_schema, &key);
    let (code, _, err) = import(&b14, &bs14);
    assert_eq!(code, 1);
    assert!(err.contains("error(s)"), "{err}");

    let lint_fails = library(15).replacen("\"hard_max\": \"400\"", "\"hard_max\": \"100\"", 1);
    assert_ne!(
        lint_fails,
        library(15),
        "the example has a fentanyl hard_max of 400"
    );
    let (l15, ls15) = write_signed(d, "lint15.json", &lint_fails, &key);
    let (code, _, err) = import(&l15, &ls15);
    assert_eq!(code, 1, "{err}");

    let (code, said, _) = run(&["library", "list", "--config", &cfg]);
    assert_eq!(code, 0);
    assert!(said.contains("    12  active"), "{said}");
    assert!(
        !said.contains("    13"),
        "nothing refused is archived: {said}"
    );

    // The good one goes through, and 12 is superseded for good.
    assert_eq!(import(&v13, &s13).0, 0);
    assert_eq!(
        run(&[
            "library", "activate", "13", "--config", &cfg, "--reason", "update"
        ])
        .0,
        0
    );
    let (code, _, err) = run(&[
        "library", "activate", "12", "--config", &cfg, "--reason", "back",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("version 12 is superseded"), "{err}");

    let out = d.join("archived-12.json");
    let (code, said, _) = run(&[
        "library",
        "show",
        "12",
        "--config",
        &cfg,
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(code, 0);
    assert!(
        said.contains("verified -> active  by biomed: go live"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        library(12),
        "archived byte for byte"
    );

    let (_, trail, _) = run(&["library", "audit", "--config", &cfg]);
    // Seven changes of state, each a row; the kept diffs are indented
    // under theirs.
    let rows = trail.lines().filter(|l| !l.starts_with(' ')).count();
    assert_eq!(rows, 7, "{trail}");

    let data = d.join("state").display().to_string();
    let (code, said, _) = run(&["events", "verify", "--data-dir", &data]);
    assert_eq!(code, 0, "{said}");
    let (_, refused, _) = run(&[
        "events",
        "export",
        "--data-dir",
        &data,
        "--type",
        "library_refused",
    ]);
    assert_eq!(
        refused.lines().count(),
        6,
        "every refusal is an event: {refused}"
    );
}

#[test]
fn a_new_activation_is_pushed_to_every_connected_pump() {
    let bench = pumpgw_tests::Bench::new();
    let key = bench.path().join("pharmacy.key");
    assert_eq!(
        run(&["library", "keygen", "--out", &key.display().to_string()]).0,
        0
    );
    let trusted = pumpgw_tests::trusted_keys(&key);
    let mut gw = bench.gateway(&["p1", "p2"], &trusted);
    let waits = "[pump]\ncare_area = \"adult-icu\"\n\n[[step]]\naction = \"wait_library\"\nversion = 12\n\n\
                 [[step]]\naction = \"wait_library\"\nversion = 13\n";
    let mut sims: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|p| bench.sim(p, waits, &["--serial", &format!("S-{p}")]))
        .collect();
    gw.wait_for(
        &["pump installed a library", "version=12", "matches=true"],
        2,
        15,
    );

    let cfg = bench.path().join("gateway.toml");
    import_and_activate(&cfg, 13, &key, "test");

    for sim in &mut sims {
        assert!(sim.wait_exit(20).success(), "{}", sim.log_text());
    }
    gw.wait_for(&["active library changed"], 1, 5);
    gw.wait_for(
        &["pump installed a library", "version=13", "matches=true"],
        2,
        5,
    );
    assert!(gw.terminate(10).success());
    let (_, installed, _) = run(&[
        "events",
        "export",
        "--data-dir",
        &bench.path().display().to_string(),
        "--type",
        "library_installed_on_pump",
    ]);
    assert_eq!(
        installed
            .lines()
            .filter(|l| l.contains("\"version\":13"))
            .count(),
        2,
        "{installed}"
    );
}

#[test]
fn the_library_reaches_eight_pumps_or_the_gateway_says_which_it_did_not() {
    let bench = pumpgw_tests::Bench::new();
    let names: Vec<String> = (1..=8).map(|i| format!("p{i}")).collect();
    let ports: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut gw = bench.gateway(&ports, "");
    let normal = "[pump]\ncare_area = \"adult-icu\"\n\n[[step]]\naction = \"wait_library\"\n";
    // p7 stores libraries wrongly; p8 loses its cable mid-transfer.
    let broken = "[pump]\ncare_area = \"adult-icu\"\ncorrupt_library = true\n\n\
                  [[step]]\naction = \"wait_online\"\n\n[[step]]\naction = \"wait\"\nduration = \"6 s\"\n";
    let unplugged = "[pump]\ncare_area = \"adult-icu\"\nhang_up_during_transfer = \"1 s\"\n\n\
                     [[step]]\naction = \"wait_library\"\n";
    let mut sims: Vec<_> = ports
        .iter()
        .map(|p| {
            let scenario = match *p {
                "p7" => broken,
                "p8" => unplugged,
                _ => normal,
            };
            bench.sim(p, scenario, &["--serial", &format!("S-{p}")])
        })
        .collect();
    for sim in &mut sims {
        assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    }
    let p8 = sims[7].log_text();
    assert!(p8.contains("pulling the cable mid-transfer"), "{p8}");
    assert!(p8.contains("2 handshake(s)"), "{p8}");
    gw.wait_for(&["pump=p7", "no more offers this session"], 1, 5);
    assert_eq!(
        gw.count(&["pump=p7", "offering again"]),
        2,
        "{}",
        gw.log_text()
    );

    let cfg = bench.path().join("gateway.toml").display().to_string();
    let (code, said, _) = run(&["library", "status", "--config", &cfg]);
    assert_eq!(code, 1, "not every pump matches: {said}");
    assert_eq!(said.matches("  matches").count(), 7, "{said}");
    let p7 = said
        .lines()
        .find(|l| l.starts_with("p7 "))
        .unwrap_or_default();
    assert!(p7.contains("DOES NOT MATCH"), "{said}");
    assert!(gw.terminate(10).success());
    // Every push is an event: 8 first offers, p7's 2 retries, p8's offer
    // after it came back.
    let data = bench.path().display().to_string();
    let (_, pushed, _) = run(&[
        "events",
        "export",
        "--data-dir",
        &data,
        "--type",
        "library_pushed",
    ]);
    assert_eq!(pushed.lines().count(), 11, "{pushed}");
}

#[test]
fn with_no_active_library_the_gateway_runs_and_authorises_nothing() {
    let bench = pumpgw_tests::Bench::new();
    let config = bench.gateway_config(&["p1"], "").display().to_string();
    let mut gw = bench.spawn_with_input("gateway", "pumpgwd", &["run", "--config", &config], None);
    let scenario = "[pump]\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
                    [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n\
                    [[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nexpect = \"denied\"\nexpect_code = \"NO_LIBRARY\"\n";
    let mut sim = bench.sim("p1", scenario, &[]);
    assert!(sim.wait_exit(20).success(), "{}", sim.log_text());
    gw.wait_for(&["no active drug library: authorising nothing"], 1, 5);
    assert!(gw.terminate(10).success());
}

#[test]
fn a_new_activation_is_offered_even_to_a_pump_that_used_up_its_offers() {
    let bench = pumpgw_tests::Bench::new();
    let key = bench.path().join("pharmacy.key");
    assert_eq!(
        run(&["library", "keygen", "--out", &key.display().to_string()]).0,
        0
    );
    let trusted = pumpgw_tests::trusted_keys(&key);
    let mut gw = bench.gateway(&["p1"], &trusted);
    let broken = "[pump]\ncare_area = \"adult-icu\"\ncorrupt_library = true\n\n\
                  [[step]]\naction = \"wait_online\"\n\n[[step]]\naction = \"wait\"\nduration = \"12 s\"\n";
    let mut sim = bench.sim("p1", broken, &["--serial", "S-broken"]);
    gw.wait_for(&["pump=p1", "no more offers this session"], 1, 10);
    // The pharmacy activates version 13: the pump is offered it, three
    // times again, in the same session.
    import_and_activate(&bench.path().join("gateway.toml"), 13, &key, "test");
    gw.wait_for(&["pump=p1", "no more offers this session"], 2, 15);
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    let said = sim.log_text();
    assert_eq!(
        said.matches("library offered; fetching").count(),
        6,
        "three offers of each version: {said}"
    );
    assert!(gw.terminate(10).success());
}

#[test]
fn the_tools_take_a_config_without_ports_and_only_run_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("pharmacy.key");
    assert_eq!(
        run(&["library", "keygen", "--out", &key.display().to_string()]).0,
        0
    );
    let config = d.join("workstation.toml");
    std::fs::write(
        &config,
        "gateway_id = \"bench\"\ncare_area = \"adult-icu\"\ndata_dir = \"state\"\n\
         trusted_keys = [\"pharmacy.key.pub\", \"pharmacy.key-approver.pub\"]\n",
    )
    .unwrap();
    import_and_activate(&config, 12, &key, "workstation copy");
    let cfg = config.display().to_string();
    let (code, said, err) = run(&["events", "tail", "--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("library_activated"), "{said}");
    let (code, _, err) = run(&["run", "--config", &cfg]);
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("no [[port]]: add one per pump"), "{err}");
}

/// `library diff` between two versions, and the same diff printed by
/// `import` and `activate` and kept in the audit trail: the pharmacist sees
/// each limit that moved, old -> new with its relative change.
#[test]
fn the_diff_is_shown_at_import_and_activation_and_kept_in_the_audit() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    let (key, config) = pharmacy_and_gateway(d);
    let cfg = config.display().to_string();
    let v13_text = library(13).replacen("\"hard_max\": \"400\"", "\"hard_max\": \"400000\"", 1);
    assert_ne!(
        v13_text,
        library(13),
        "the example has a fentanyl hard_max of 400"
    );
    let (v12, s12) = write_signed(d, "v12.json", &library(12), &key);
    let (v13, s13) = write_signed(d, "v13.json", &v13_text, &key);
    // Without a gateway: the two files.
    let (code, said, err) = run(&["library", "diff", &v12, &v13]);
    assert_eq!(code, 1, "differences: {said}{err}");
    let change = "continuous.hard_max: 400 micrograms/h -> 400,000 micrograms/h (x1,000)";
    assert!(said.contains("Drug library version 12 -> 13"), "{said}");
    assert!(said.contains("~ changed: fentaNYL (fentanyl)"), "{said}");
    assert!(said.contains(change), "{said}");
    let (code, json, _) = run(&["library", "diff", &v12, &v13, "--json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        v["care_areas"][0]["drugs"][0]["changes"][0]["relative"],
        "x1,000"
    );
    assert_eq!(run(&["library", "diff", &v12, &v12]).0, 0, "no differences");
    // On the gateway: 12 active, then 13 imported and activated.
    let step = |args: &[&str]| {
        let (code, said, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {said}{err}");
        said
    };
    let imported = step(&[
        "library",
        "import",
        &v12,
        "--signature",
        &s12,
        "--config",
        &cfg,
    ]);
    assert!(
        imported.contains("No library was active before"),
        "{imported}"
    );
    step(&[
        "library", "activate", "12", "--config", &cfg, "--reason", "go live",
    ]);
    let imported = step(&[
        "library",
        "import",
        &v13,
        "--signature",
        &s13,
        "--config",
        &cfg,
    ]);
    assert!(imported.contains(change), "{imported}");
    let activated = step(&[
        "library", "activate", "13", "--config", &cfg, "--reason", "update",
    ]);
    assert!(activated.contains(change), "{activated}");
    let audit = step(&["library", "audit", "--config", &cfg]);
    assert_eq!(
        audit.matches(change).count(),
        2,
        "verified and active: {audit}"
    );
}

/// The what-if replay on a real gateway's exported log: a fentanyl
/// infusion given at 50 micrograms/h; a candidate library whose hard
/// maximum is 40 micrograms/h would have stopped it, and says so by drug,
/// care area and limit (exit 2); the library in use changes nothing.
#[test]
fn the_replay_of_a_real_log_says_what_a_candidate_would_have_stopped() {
    let bench = pumpgw_tests::Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let scenario = std::fs::read_to_string(
        pumpgw_tests::repo_root().join("config/examples/scenarios/fentanyl-infusion.toml"),
    )
    .expect("the example scenario");
    let mut pump = bench.sim("p1", &scenario, &["--speed", "3600"]);
    assert!(pump.wait_exit(60).success(), "{}", pump.log_text());
    assert!(gw.terminate(10).success());
    let data = bench.path().display().to_string();
    let (code, log, err) = run(&["events", "export", "--data-dir", &data]);
    assert_eq!(code, 0, "{err}");
    let events = bench.path().join("export.jsonl");
    std::fs::write(&events, log).expect("writable");
    let events = events.display().to_string();
    let current = pumpgw_tests::repo_root()
        .join(pumpgw_tests::EXAMPLE_LIBRARY)
        .display()
        .to_string();
    let (code, said, err) = run(&["library", "replay", &current, "--events", &events]);
    assert_eq!(code, 0, "{said}{err}");
    assert!(said.contains("0 decision(s) would change"), "{said}");
    let candidate = bench.path().join("candidate.json");
    std::fs::write(
        &candidate,
        library(13)
            .replacen("\"soft_max\": \"200\"", "\"soft_max\": \"30\"", 1)
            .replacen("\"hard_max\": \"400\"", "\"hard_max\": \"40\"", 1),
    )
    .expect("writable");
    let candidate = candidate.display().to_string();
    let (code, said, err) = run(&["library", "replay", &candidate, "--events", &events]);
    assert_eq!(code, 2, "{said}{err}");
    assert!(said.contains("pass -> hard_limit: 1"), "{said}");
    assert!(
        said.contains("fentanyl in adult-icu, DOSE_RATE_LIMIT hard_max: 1"),
        "{said}"
    );
    assert!(said.contains("(it was given)"), "{said}");
    let (code, json, _) = run(&[
        "library", "replay", &candidate, "--events", &events, "--json",
    ]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["changed"][0]["now"], "hard_limit");
}

/// The spreadsheet round trip through the CLI: the example out as CSV, back
/// as JSON that lints clean and means the same library, and round again
/// byte for byte; a sheet edited wrongly is refused naming the row and
/// the column, and nothing is written.
#[test]
fn a_library_goes_to_a_spreadsheet_and_back_byte_for_byte() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    let example = pumpgw_tests::repo_root()
        .join(pumpgw_tests::EXAMPLE_LIBRARY)
        .display()
        .to_string();
    let step = |args: &[&str]| {
        let (code, said, err) = run(args);
        assert_eq!(code, 0, "{args:?}: {said}{err}");
        said
    };
    step(&[
        "library",
        "export",
        &example,
        "--csv",
        "--out",
        &p("one.csv"),
    ]);
    let sheet = std::fs::read_to_string(p("one.csv")).expect("written");
    assert!(
        sheet.starts_with("library_id,library_name,version,"),
        "{sheet}"
    );
    assert!(
        sheet.contains(",fentanyl,fentanyl,fentaNYL,true,"),
        "{sheet}"
    );
    step(&[
        "library",
        "import-csv",
        &p("one.csv"),
        "--out",
        &p("one.json"),
    ]);
    // The same library as the example: no differences.
    assert_eq!(run(&["library", "diff", &example, &p("one.json")]).0, 0);
    step(&[
        "library",
        "export",
        &p("one.json"),
        "--csv",
        "--out",
        &p("two.csv"),
    ]);
    step(&[
        "library",
        "import-csv",
        &p("two.csv"),
        "--out",
        &p("two.json"),
    ]);
    assert_eq!(
        std::fs::read(p("one.json")).expect("written"),
        std::fs::read(p("two.json")).expect("written"),
        "byte for byte"
    );
    // Never over an existing file.
    assert_eq!(
        run(&[
            "library",
            "import-csv",
            &p("two.csv"),
            "--out",
            &p("one.json")
        ])
        .0,
        64
    );
    // A number that is not one: the row and the column.
    let bad = sheet.replacen(",true,", ",yes,", 1);
    std::fs::write(p("bad.csv"), bad).expect("writable");
    let (code, _, err) = run(&[
        "library",
        "import-csv",
        &p("bad.csv"),
        "--out",
        &p("bad.json"),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("row 2, column high_alert: \"yes\" is neither true nor false"),
        "{err}"
    );
    assert!(!d.join("bad.json").exists(), "nothing written");
}

/// Writes `library(version)` as `d/name` and returns its path.
fn draft(d: &std::path::Path, name: &str, version: u64) -> String {
    let file = d.join(name);
    std::fs::write(&file, library(version)).expect("writable");
    file.display().to_string()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one story: proposed, refused, approved, imported, shown; the old format"
)]
fn a_library_needs_a_second_pharmacists_approval_before_a_gateway_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = |name: &str| {
        let k = d.join(name).display().to_string();
        assert_eq!(run(&["library", "keygen", "--out", &k]).0, 0);
        k
    };
    let (ann, bob) = (key("ann.key"), key("bob.key"));
    let config = d.join("gateway.toml");
    std::fs::write(
        &config,
        "gateway_id = \"bed-1\"\ncare_area = \"adult-icu\"\ndata_dir = \"state\"\n\
         trusted_keys = [\"ann.key.pub\", \"bob.key.pub\"]\n",
    )
    .expect("writable");
    let cfg = config.display().to_string();
    let import = |file: &str| {
        run(&[
            "library",
            "import",
            file,
            "--signature",
            &format!("{file}.sig"),
            "--config",
            &cfg,
        ])
    };
    let v12 = draft(d, "v12.json", 12);

    // Proposed by Ann: not enough for a gateway with the default approvals.
    let (code, said, err) = run(&[
        "library",
        "sign",
        &v12,
        "--key",
        &ann,
        "--person",
        "Ann Pharmacist",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("Proposed."), "{said}");
    let (code, _, err) = import(&v12);
    assert_eq!(code, 1);
    assert!(
        err.contains("needs 1 approval(s) by other trusted pharmacists and has 0")
            && err.contains("proposed by Ann Pharmacist (key "),
        "{err}"
    );

    // Ann cannot approve her own proposal, under her key or another name.
    let (code, _, err) = run(&[
        "library",
        "approve",
        &v12,
        "--key",
        &ann,
        "--person",
        "A. Pharmacist",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("signs twice"), "{err}");
    // Nor can Bob approve a file changed since Ann proposed it.
    let changed = d.join("v12-changed.json");
    std::fs::write(
        &changed,
        library(12).replacen("\"hard_max\": \"400\"", "\"hard_max\": \"4000\"", 1),
    )
    .unwrap();
    let (code, _, err) = run(&[
        "library",
        "approve",
        &changed.display().to_string(),
        "--key",
        &bob,
        "--signature",
        &format!("{v12}.sig"),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("for another file"), "{err}");

    // Bob approves; the gateway takes it and says who did what.
    let (code, said, err) = run(&[
        "library",
        "approve",
        &v12,
        "--key",
        &bob,
        "--person",
        "Bob Pharmacist",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("proposed by Ann Pharmacist") && said.contains("approved by Bob Pharmacist"),
        "{said}"
    );
    // Proposing it again would throw Bob's approval away: refused.
    let (code, _, err) = run(&["library", "sign", &v12, "--key", &ann]);
    assert_ne!(code, 0);
    assert!(err.contains("already holds 1 approval(s)"), "{err}");
    let (code, said, err) = import(&v12);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("verified (proposed by Ann Pharmacist (key ")
            && said.contains("approved by Bob Pharmacist (key "),
        "{said}"
    );
    let (code, said, err) = run(&["library", "show", "12", "--config", &cfg]);
    assert_eq!(code, 0, "{err}");
    let line = |role: &str, who: &str| {
        said.lines()
            .any(|l| l.trim_start().starts_with(role) && l.contains(&format!("by {who} (key ")))
    };
    assert!(
        line("proposed", "Ann Pharmacist") && line("approved", "Bob Pharmacist"),
        "{said}"
    );
    let (_, said, _) = run(&["library", "list", "--config", &cfg]);
    assert!(said.contains("approved by Bob Pharmacist"), "{said}");
    let (_, said, _) = run(&["library", "audit", "--config", &cfg]);
    assert!(
        said.contains("proposed by Ann Pharmacist") && said.contains("approved by Bob Pharmacist"),
        "{said}"
    );
    let (_, said, _) = run(&["events", "tail", "--config", &cfg]);
    assert!(
        said.contains("v12 proposed by Ann Pharmacist")
            && said.contains("approved by Bob Pharmacist"),
        "{said}"
    );

    // The old single signature: refused where approvals are needed, taken
    // where the config says approvals = 0.
    let v13 = draft(d, "v13.json", 13);
    let (code, said, err) = run(&["library", "sign", &v13, "--key", &ann, "--format-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("only gateways with approvals = 0"), "{said}");
    let (code, _, err) = import(&v13);
    assert_eq!(code, 1);
    assert!(err.contains("needs 1 approval(s)"), "{err}");
    let (code, _, err) = run(&["library", "approve", &v13, "--key", &bob]);
    assert_ne!(code, 0);
    assert!(err.contains("format 1 signature"), "{err}");
    std::fs::write(
        &config,
        "gateway_id = \"bed-1\"\ncare_area = \"adult-icu\"\ndata_dir = \"state\"\n\
         trusted_keys = [\"ann.key.pub\", \"bob.key.pub\"]\napprovals = 0\n",
    )
    .unwrap();
    let (code, said, err) = import(&v13);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("not approved by anyone else"), "{said}");

    // A gateway that needs more approvals than it trusts keys is told so.
    std::fs::write(
        &config,
        "gateway_id = \"bed-1\"\ncare_area = \"adult-icu\"\ndata_dir = \"state\"\n\
         trusted_keys = [\"ann.key.pub\", \"bob.key.pub\"]\napprovals = 2\n",
    )
    .unwrap();
    let (_, said, err) = run(&["check-config", &cfg]);
    assert!(
        format!("{said}{err}")
            .contains("only 2 key(s) are trusted; no new library can be imported"),
        "{said}{err}"
    );
}

#[test]
fn the_lint_finds_a_soft_limit_on_a_dose_the_wards_give_every_day() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bed-12.jsonl");
    // Fentanyl in adult-icu, soft maximum 200 micrograms/h: run at 200
    // five times (and at 50 fifteen times) this month.
    let mut text = String::new();
    for (rate, n) in [("200 micrograms/h", 5), ("50 micrograms/h", 15)] {
        for _ in 0..n {
            text.push_str(
                &serde_json::json!({
                    "type": "programme_requested", "care_area": "adult-icu",
                    "programme": {"drug": "fentanyl", "delivery": {"kind": "continuous", "rate": rate}}
                })
                .to_string(),
            );
            text.push('\n');
        }
    }
    std::fs::write(&log, text).unwrap();
    let example = pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY);
    let lib = example.display().to_string();
    let l = log.display().to_string();
    let (code, said, err) = run(&["library", "lint", &lib, "--events", &l]);
    assert_eq!(code, 0, "a warning, not an error: {said}{err}");
    assert!(
        said.contains("20 programme(s) read from 1 log file(s)"),
        "{said}"
    );
    assert!(
        said.contains("soft-limit-at-standard-dose")
            && said.contains("fentaNYL continuous soft_max 200 micrograms/h is within a rounding step (1 microgram/h) of 200 micrograms/h, a dose programmed 5 times (25.0% of its 20 continuous programmes in adult-icu"),
        "{said}"
    );
    let (_, json, _) = run(&["library", "lint", &lib, "--events", &l, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let found: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "soft-limit-at-standard-dose")
        .collect();
    assert_eq!(found.len(), 1, "{json}");
    assert_eq!(
        found[0]["path"],
        "$.care_areas[0].drugs[0].continuous.soft_max"
    );
    // Without the logs, the example is clean.
    let (_, said, _) = run(&["library", "lint", &lib]);
    assert!(!said.contains("soft-limit-at-standard-dose"), "{said}");
}
