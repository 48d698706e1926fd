//! Confirmations at the bedside terminal, end to end: the real gateway,
//! `pump-sim` on a pseudo-terminal, and this test as the terminal, typing
//! labels and PINs as a nurse and a doctor would.

use pumpgw_tests::terminal::Terminal;
use pumpgw_tests::{Bench, DOCTOR, DOCTOR_2, NURSE, PHARMACIST, Proc, import_and_activate, run};
use serde_json::{Value, json};

fn scenario(serial: &str, area: &str, steps: &str) -> String {
    format!(
        "[pump]\nserial = \"{serial}\"\ncare_area = \"{area}\"\npatient_weight = \"70 kg\"\n\n[[step]]\naction = \"wait_library\"\n{steps}"
    )
}

fn load(drug: &str, concentration: &str) -> String {
    load_left(drug, concentration, "50 mL")
}

/// A container with `volume` left in it.
fn load_left(drug: &str, concentration: &str, volume: &str) -> String {
    format!(
        "\n[[step]]\naction = \"load\"\ndrug = \"{drug}\"\nconcentration = \"{concentration}\"\nvolume = \"{volume}\"\n"
    )
}

fn bolus(dose: &str, expect: &str, code: Option<&str>) -> String {
    let code = code
        .map(|c| format!("expect_code = \"{c}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[[step]]\naction = \"bolus\"\ndose = \"{dose}\"\nduration = \"60 s\"\nexpect = \"{expect}\"\n{code}"
    )
}

/// `pump-sim` on the bed's port `p1` playing `steps` (after the library
/// arrives) at 60 times real time, nobody at its terminal but the test.
fn play(bench: &Bench, serial: &str, area: &str, steps: &str) -> Proc {
    bench.sim_alone("p1", &scenario(serial, area, steps), &["--speed", "60"])
}

/// A bed in adult critical care with this test at its terminal, and a pump
/// that loads a correct fentanyl syringe (2,500 micrograms in 50 mL) and
/// then plays `steps`.
struct Bed {
    bench: Bench,
    gw: Proc,
    t: Terminal,
    sim: Proc,
}

fn fentanyl_bed(serial: &str, extra: &str, steps: &str) -> Bed {
    fentanyl_bed_on(Bench::new(), serial, extra, steps)
}

/// [`fentanyl_bed`] on a bench prepared by the test.
fn fentanyl_bed_on(bench: Bench, serial: &str, extra: &str, steps: &str) -> Bed {
    let gw = bench.gateway(&["p1"], extra);
    let t = Terminal::open(&bench.terminal_socket(), "bed-12-screen");
    let sim = play(
        &bench,
        serial,
        "adult-icu",
        &(load("fentanyl", "2500 micrograms in 50 mL") + steps),
    );
    Bed { bench, gw, t, sim }
}

/// The nurse types the syringe's label; the bolus stage opens; its card.
fn container_confirmed(t: &mut Terminal) -> Value {
    let card = t.confirmation("p1", "concentration", 30);
    let r = t.confirm(&card, &[NURSE], Some("2500 micrograms in 50 mL"), None);
    assert_eq!(r["result"], "next_stage", "{r}");
    t.confirmation("p1", "bolus", 10)
}

/// The result's words contain `words`.
fn says(r: &Value, words: &str) {
    let message = r["message"].as_str().expect("a result has words");
    assert!(message.contains(words), "{words:?} not in {r}");
}

/// The pump played its scenario, every expectation met, with this summary
/// ("1 authorised, 0 denied, 1 delivered").
fn played(sim: &mut Proc, summary: &str) {
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    assert!(sim.log_text().contains(summary), "{}", sim.log_text());
}

/// A fentanyl infusion well inside the adult critical care limits.
const INFUSE: &str =
    "\n[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nexpect = \"authorised\"\n";

fn facts(card: &Value) -> Vec<(String, String)> {
    card["screen"]["facts"]
        .as_array()
        .expect("facts")
        .iter()
        .map(|f| {
            (
                f[0].as_str().expect("label").to_owned(),
                f[1].as_str().expect("value").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_fentanyl_syringe_programmed_with_the_wrong_concentration_is_caught_at_load() {
    // HSIB: the syringe holds 2,500 micrograms in 50 mL; the pump was set
    // to 500 micrograms in 50 mL, which the theatre library also allows, so
    // the cross-check passes and a 20 microgram bolus would give 100.
    let bench = Bench::new();
    let mut gw = bench.gateway_in("theatres", &["p1"], "");
    let mut t = Terminal::open(&bench.terminal_socket(), "theatre-3-screen");
    let mut sim = play(
        &bench,
        "SIM-HSIB-1",
        "theatres",
        &(load("fentanyl", "500 micrograms in 50 mL")
            + &bolus("20 micrograms", "denied", Some("CONCENTRATION_MISMATCH"))),
    );
    let card = t.confirmation("p1", "concentration", 30);
    // Blind: nothing on the screen gives the programmed value away.
    let screen = card["screen"].to_string();
    for leak in ["500", "microgram", "mL", "/h"] {
        assert!(
            !screen.contains(leak),
            "{leak:?} on a blind screen: {screen}"
        );
    }
    assert_eq!(card["screen"]["drug"], "fentaNYL");
    // Nor does the pump's card on the home screen, meanwhile.
    let status = t.status_until(|m| m["pumps"][0]["state"] == "awaiting_authorisation", 5);
    let pump = &status["pumps"][0];
    assert!(
        pump["volume_remaining"].is_null() && pump["rate"].is_null(),
        "{pump}"
    );
    assert_eq!(card["needs"][0]["roles"], json!(["nurse", "doctor"]));
    let r = t.confirm(&card, &[NURSE], Some("2500 micrograms in 50 mL"), None);
    assert_eq!(r["result"], "refused", "{r}");
    assert_eq!(r["closed"], true);
    assert_eq!(r["entered"], "2,500 micrograms in 50 mL (50 micrograms/mL)");
    assert_eq!(
        r["programmed"],
        "500 micrograms in 50 mL (10 micrograms/mL)"
    );
    says(&r, "do not start");

    played(&mut sim, "0 authorised, 1 denied, 0 delivered");
    assert!(gw.terminate(10).success());
    let refused = bench.exported("confirmation_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["code"], "CONCENTRATION_MISMATCH");
    assert_eq!(refused[0]["by"], json!([NURSE.0]));
    assert!(bench.exported("authorised").is_empty());
    assert_eq!(
        bench.exported("denied")[0]["reasons"][0]["code"],
        "CONCENTRATION_MISMATCH"
    );
}

#[test]
fn a_doctor_confirms_a_bolus_that_a_nurse_cannot_and_the_pump_gives_it_under_that_token() {
    let Bed {
        bench,
        mut gw,
        mut t,
        mut sim,
    } = fentanyl_bed(
        "SIM-BOLUS-1",
        "",
        &bolus("25 micrograms", "authorised", None),
    );
    // First the container, by the nurse, blind.
    let card = t.confirmation("p1", "concentration", 30);
    let r = t.confirm(&card, &[NURSE], Some("2,500 mcg in 50 mL"), None);
    assert_eq!(r["result"], "next_stage", "{r}");
    says(&r, "Nkechi Okafor");

    // Then the bolus: fentanyl is high-alert, so doctors only.
    let card = t.confirmation("p1", "bolus", 10);
    assert_eq!(card["id"], r["next"], "{card}");
    assert_eq!(card["needs"][0]["roles"], json!(["doctor"]));
    assert_eq!(card["screen"]["high_alert"], true);
    let facts = facts(&card);
    for (label, value) in [
        ("Dose", "25 micrograms"),
        ("Volume", "0.5 mL"),
        ("Share of the container", "1% of the 50 mL left"),
        (
            "Concentration",
            "2,500 micrograms in 50 mL (50 micrograms/mL)",
        ),
        ("Over", "1 min"),
    ] {
        assert!(
            facts.contains(&(label.to_owned(), value.to_owned())),
            "{label}: {value} not in {facts:?}"
        );
    }

    // A nurse's PIN cannot confirm it, nor a pharmacist's; it stays open.
    let r = t.confirm(&card, &[NURSE], None, None);
    assert_eq!(
        (r["result"].as_str(), r["closed"].as_bool()),
        (Some("refused"), Some(false)),
        "{r}"
    );
    assert!(
        r["message"].as_str().expect("words").contains("doctor"),
        "{r}"
    );
    let r = t.confirm(&card, &[PHARMACIST], None, None);
    assert_eq!(r["closed"], false, "{r}");
    // A confirmation of another screen is refused.
    let mut changed = card.clone();
    changed["screen_hash"] = json!("00".repeat(32));
    let r = t.confirm(&changed, &[DOCTOR], None, None);
    assert_eq!(r["result"], "refused", "{r}");
    says(&r, "screen has changed");

    let r = t.confirm(&card, &[DOCTOR], None, None);
    assert_eq!(r["result"], "authorised", "{r}");
    assert!(
        r["message"].as_str().expect("words").contains("Dev Patel"),
        "{r}"
    );
    // Used once: the same confirmation again is refused.
    let again = t.confirm(&card, &[DOCTOR], None, None);
    assert_eq!(again["result"], "refused", "{again}");
    says(&again, "no longer open");

    played(&mut sim, "1 authorised, 0 denied, 1 delivered");
    gw.wait_for(&["event=BolusDelivered"], 1, 5);
    assert!(gw.terminate(10).success());

    the_log_shows_who_confirmed_what(&bench);
}

/// One token, every delivery under it; each stage by its signer; each
/// refusal in the log.
fn the_log_shows_who_confirmed_what(bench: &Bench) {
    let authorised = bench.exported("authorised");
    assert_eq!(authorised.len(), 1);
    let deliveries = bench.exported("delivery");
    assert!(!deliveries.is_empty());
    for d in &deliveries {
        assert_eq!(
            d["token"], authorised[0]["token"],
            "delivered under the issued token"
        );
    }
    let confirmed = bench.exported("confirmed");
    let stages: Vec<(&str, &Value)> = confirmed
        .iter()
        .map(|c| (c["stage"].as_str().expect("stage"), &c["by"]))
        .collect();
    assert_eq!(
        stages,
        vec![
            ("concentration", &json!([NURSE.0])),
            ("bolus", &json!([DOCTOR.0]))
        ]
    );
    let refused: Vec<String> = bench
        .exported("confirmation_refused")
        .iter()
        .map(|r| r["code"].as_str().expect("code").to_owned())
        .collect();
    // The second use is logged too, against the same request.
    assert_eq!(
        refused,
        ["NOT_ALLOWED", "NOT_ALLOWED", "SCREEN_CHANGED", "NOT_OPEN"]
    );
}

#[test]
fn five_wrong_pins_lock_a_doctor_out_and_another_doctor_signs() {
    let Bed {
        bench,
        mut gw,
        mut t,
        mut sim,
    } = fentanyl_bed("SIM-PIN-1", "", &bolus("25 micrograms", "authorised", None));
    let card = container_confirmed(&mut t);
    for left in (1..=4).rev() {
        let r = t.confirm(&card, &[(DOCTOR.0, "250613")], None, None);
        let words = r["message"].as_str().expect("words").to_owned();
        assert!(words.contains(&format!("{left} more")), "{words}");
        assert_eq!(r["closed"], false);
    }
    let r = t.confirm(&card, &[(DOCTOR.0, "250613")], None, None);
    assert!(
        r["message"].as_str().expect("words").contains("locked out"),
        "{r}"
    );
    // The right PIN now is not even checked.
    let r = t.confirm(&card, &[DOCTOR], None, None);
    assert!(
        r["message"].as_str().expect("words").contains("locked out"),
        "{r}"
    );
    let r = t.confirm(&card, &[DOCTOR_2], None, None);
    assert_eq!(r["result"], "authorised", "{r}");
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    assert!(gw.terminate(10).success());
    let results: Vec<String> = bench
        .exported("pin_checked")
        .iter()
        .filter(|p| p["staff_id"] == DOCTOR.0)
        .map(|p| p["result"].as_str().expect("result").to_owned())
        .collect();
    assert_eq!(
        results,
        [
            "wrong_pin",
            "wrong_pin",
            "wrong_pin",
            "wrong_pin",
            "locked_out",
            "locked_out"
        ]
    );
}

#[test]
fn a_changed_programme_needs_its_own_confirmation_and_a_declined_one_is_denied() {
    let Bed {
        bench: _bench,
        mut gw,
        mut t,
        mut sim,
    } = fentanyl_bed(
        "SIM-CHANGE-1",
        "",
        &(bolus("25 micrograms", "authorised", None)
            + "\n[[step]]\naction = \"wait_delivery\"\n"
            + &bolus("40 micrograms", "denied", Some("DECLINED"))),
    );
    let first = container_confirmed(&mut t);
    assert_eq!(
        t.confirm(&first, &[DOCTOR], None, None)["result"],
        "authorised"
    );

    // The same syringe: the second bolus needs no new concentration, only
    // its own bolus confirmation. The first one's cannot stand in for it.
    let second = t.open_until(|o| o.iter().any(|c| c["id"] != first["id"]), 30)["open"][0].clone();
    assert_eq!(second["needs"][0]["kind"], "bolus", "{second}");
    assert_ne!(second["programme_hash"], first["programme_hash"]);
    assert!(facts(&second).contains(&("Dose".to_owned(), "40 micrograms".to_owned())));
    let r = t.confirm(&first, &[DOCTOR], None, None);
    assert_eq!(r["result"], "refused", "{r}");
    let mut replay = second.clone();
    replay["screen_hash"] = first["screen_hash"].clone();
    let r = t.confirm(&replay, &[DOCTOR], None, None);
    says(&r, "screen has changed");

    t.send(
        &json!({"type": "decline", "id": second["id"], "reason": "dose not prescribed"})
            .to_string(),
    );
    let r = t.result(&second["id"]);
    assert_eq!(r["result"], "declined", "{r}");
    played(&mut sim, "1 authorised, 1 denied, 1 delivered");
    assert!(gw.terminate(10).success());
}

#[test]
fn a_confirmation_nobody_gives_in_time_is_denied_and_cannot_be_given_late() {
    let Bed {
        bench: _bench,
        mut gw,
        mut t,
        mut sim,
    } = fentanyl_bed(
        "SIM-LATE-1",
        "[authorisation]\nvalidity_s = 10\n",
        &bolus("25 micrograms", "denied", Some("CONFIRMATION_EXPIRED")),
    );
    let card = t.confirmation("p1", "concentration", 30);
    // The pump was told to wait beyond its own 10 s answer time.
    assert!(sim.wait_exit(25).success(), "{}", sim.log_text());
    assert!(
        sim.log_text().contains("waiting for confirmation"),
        "{}",
        sim.log_text()
    );
    let r = t.confirm(&card, &[NURSE], Some("2500 micrograms in 50 mL"), None);
    assert_eq!(r["result"], "refused", "{r}");
    assert_eq!(r["closed"], true);
    assert!(gw.terminate(10).success());
}

#[test]
fn with_no_terminal_connected_a_programme_that_needs_a_person_is_denied() {
    let bench = Bench::new();
    let mut gw = bench.gateway(&["p1"], "");
    let mut sim = play(
        &bench,
        "SIM-ALONE-1",
        "adult-icu",
        &(load("fentanyl", "2500 micrograms in 50 mL")
            + "\n[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nexpect = \"denied\"\nexpect_code = \"CONFIRMATION_UNAVAILABLE\"\n"),
    );
    assert!(sim.wait_exit(30).success(), "{}", sim.log_text());
    assert!(
        sim.log_text().contains("no terminal is connected"),
        "{}",
        sim.log_text()
    );
    assert!(gw.terminate(10).success());
}

#[test]
fn the_hsib_boluses_at_a_concentration_no_library_lists_are_blocked_and_the_bed_says_why() {
    // The other two incidents: 0.5 and 1 microgram/mL programmed for a
    // 50 micrograms/mL syringe with 12 mL (600 micrograms) left, so 25 and
    // 50 micrograms mean 50 mL: the whole syringe. The cross-check blocks
    // them before anyone is asked to confirm.
    for (area, programmed, dose) in [
        ("adult-icu", "25 micrograms in 50 mL", "25 micrograms"),
        ("theatres", "50 micrograms in 50 mL", "50 micrograms"),
    ] {
        let bench = Bench::new();
        let mut gw = bench.gateway_in(area, &["p1"], "");
        let mut t = Terminal::open(&bench.terminal_socket(), "bed-screen");
        let mut sim = play(
            &bench,
            "SIM-HSIB-2",
            area,
            &(load_left("fentanyl", programmed, "12 mL")
                + &bolus(dose, "denied", Some("CONCENTRATION_NOT_IN_LIBRARY"))),
        );
        let status = t.status_until(|m| !m["pumps"][0]["last_decision"].is_null(), 30);
        let pump = &status["pumps"][0];
        assert_eq!(pump["last_decision"], "denied (block)", "{pump}");
        let reason = pump["last_reason"].as_str().expect("a block has a reason");
        assert!(
            reason.starts_with("CONCENTRATION_NOT_IN_LIBRARY")
                && reason.contains(&format!("{programmed} (")),
            "{reason}"
        );
        assert!(
            status["confirmations"].is_null(),
            "nobody is asked: {status}"
        );
        played(&mut sim, "0 authorised, 1 denied, 0 delivered");
        assert!(gw.terminate(10).success());
        // The engineer's one screen says the same, from the log.
        let cfg = bench.path().join("gateway.toml").display().to_string();
        let (_, screen, _) = run(&["status", "--config", &cfg]);
        assert!(
            screen.contains("last: fentaNYL DENIED (block) at ")
                && screen.contains("  CONCENTRATION_NOT_IN_LIBRARY: "),
            "{screen}"
        );
        assert!(bench.exported("confirmation_requested").is_empty());
        assert!(bench.exported("authorised").is_empty());
    }
}

#[test]
fn a_library_activated_while_a_bolus_waits_withdraws_it_and_no_token_is_made() {
    let bench = Bench::new();
    let key = bench.path().join("pharmacy.key");
    let k = key.display().to_string();
    assert_eq!(run(&["library", "keygen", "--out", &k]).0, 0);
    let trusted = pumpgw_tests::trusted_keys(&key);
    let Bed {
        bench,
        mut gw,
        mut t,
        mut sim,
    } = fentanyl_bed_on(
        bench,
        "SIM-LIB-1",
        &trusted,
        &bolus("25 micrograms", "denied", Some("LIBRARY_HASH_MISMATCH")),
    );
    let card = container_confirmed(&mut t);

    // The pharmacy's next library goes live while the doctor walks over:
    // the bolus was checked against the old one, so it cannot be given.
    import_and_activate(&bench.path().join("gateway.toml"), 13, &key, "new limits");

    t.open_until(|o| o.iter().all(|c| c["id"] != card["id"]), 5);
    let r = t.confirm(&card, &[DOCTOR], None, None);
    assert_eq!(
        (r["result"].as_str(), r["closed"].as_bool()),
        (Some("refused"), Some(true)),
        "{r}"
    );
    says(&r, "no longer open");

    played(&mut sim, "0 authorised, 1 denied, 0 delivered");
    assert!(gw.terminate(10).success());
    assert!(bench.exported("authorised").is_empty());
    let denied = bench.exported("denied");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["reasons"][0]["code"], "LIBRARY_HASH_MISMATCH");
    assert!(
        denied[0]["reasons"][0]["message"]
            .as_str()
            .expect("words")
            .contains("library changed"),
        "{denied:?}"
    );
}

#[test]
fn a_pump_that_restarts_while_its_bolus_waits_loses_it_and_its_syringe_is_confirmed_again() {
    let Bed {
        bench,
        mut gw,
        mut t,
        mut sim,
    } = fentanyl_bed(
        "SIM-RESTART-1",
        "",
        &(INFUSE.to_owned() + &bolus("25 micrograms", "authorised", None)),
    );
    // The infusion starts on the syringe the nurse confirmed...
    let card = t.confirmation("p1", "concentration", 30);
    let r = t.confirm(&card, &[NURSE], Some("2500 micrograms in 50 mL"), None);
    assert_eq!(r["result"], "authorised", "{r}");
    // ...so the bolus from it asks only for a doctor.
    let card = t.confirmation("p1", "bolus", 10);
    assert_eq!(card["needs"].as_array().map(Vec::len), Some(1), "{card}");

    // The pump is switched off and on (here: pump-sim killed and started
    // again on the same port) while the bolus waits for a doctor.
    sim.kill();
    t.open_until(|o| o.iter().all(|c| c["id"] != card["id"]), 10);
    let r = t.confirm(&card, &[DOCTOR], None, None);
    assert_eq!(r["result"], "refused", "{r}");
    says(&r, "no longer open");

    // After the restart, the container must be confirmed again: what the
    // nurse confirmed before may not be what is in the pump now.
    let mut sim = play(
        &bench,
        "SIM-RESTART-1",
        "adult-icu",
        &(load("fentanyl", "2500 micrograms in 50 mL")
            + &bolus("25 micrograms", "authorised", None)),
    );
    let card = container_confirmed(&mut t);
    let r = t.confirm(&card, &[DOCTOR], None, None);
    assert_eq!(r["result"], "authorised", "{r}");
    played(&mut sim, "1 authorised, 0 denied, 1 delivered");
    assert!(gw.terminate(10).success());

    let withdrawn: Vec<_> = bench
        .exported("denied")
        .into_iter()
        .filter(|d| d["reasons"][0]["code"] == "CONFIRMATION_WITHDRAWN")
        .collect();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    let confirmed = bench.exported("confirmed");
    let labels: Vec<&Value> = confirmed
        .iter()
        .filter(|c| c["stage"] == "concentration")
        .map(|c| &c["entered"])
        .collect();
    assert_eq!(
        labels,
        vec![&json!("2,500 micrograms in 50 mL (50 micrograms/mL)"); 2],
        "the syringe is confirmed once per session, its label logged: {confirmed:?}"
    );
}

#[test]
fn a_terminal_showing_a_confirmation_answered_elsewhere_is_told_once_what_became_of_it() {
    let Bed {
        bench,
        mut gw,
        t: mut here,
        mut sim,
    } = fentanyl_bed(
        "SIM-TWO-SCREENS",
        "",
        &bolus("25 micrograms", "denied", Some("DECLINED")),
    );
    let mut there = Terminal::open(&bench.terminal_socket(), "bed-12-b");
    // Both terminals list the container's confirmation; the nurse answers
    // at the other one.
    let card = here.confirmation("p1", "concentration", 30);
    let theirs = there.confirmation("p1", "concentration", 10);
    assert_eq!(card["id"], theirs["id"]);
    let r = there.confirm(&theirs, &[NURSE], Some("2500 micrograms in 50 mL"), None);
    assert_eq!(r["result"], "next_stage", "{r}");
    let closed = here.until("closed", |m| m["id"] == card["id"], 10);
    assert_eq!(closed["outcome"], "next_stage", "{closed}");
    assert_eq!(
        closed["message"],
        "Pump p1 (fentaNYL): this step was confirmed at terminal bed-12-b by Nkechi Okafor (nurse); the next confirmation is waiting."
    );
    // The bolus is declined over there: said here, in words.
    let bolus = here.confirmation("p1", "bolus", 10);
    let theirs = there.confirmation("p1", "bolus", 10);
    there.send(&json!({"type": "decline", "id": theirs["id"], "reason": "not now"}).to_string());
    // The terminal that answered gets its result, and no notice of its
    // own answer before the list without the bolus.
    let (mut answered, mut gone) = (false, false);
    while !(answered && gone) {
        let m = there.line().expect("connected");
        assert_ne!(m["type"], "closed", "{m}");
        answered |= m["type"] == "result" && m["result"] == "declined";
        gone |= m["type"] == "confirmations"
            && m["open"]
                .as_array()
                .is_some_and(|o| !o.iter().any(|c| c["id"] == theirs["id"]));
    }
    let closed = here.until("closed", |m| m["id"] == bolus["id"], 10);
    assert_eq!(closed["outcome"], "declined", "{closed}");
    assert_eq!(
        closed["message"],
        "Pump p1 (fentaNYL): declined at terminal bed-12-b; the pump will not start."
    );
    played(&mut sim, "0 authorised, 1 denied, 0 delivered");
    assert!(gw.terminate(10).success());
}

/// The confirmations lists `t` gets until one has `card` open at exactly
/// `at` (no key at all when nobody else has it open).
fn listed_open_at(t: &mut Terminal, card: &Value, at: &[&str]) {
    let wanted = if at.is_empty() {
        Value::Null
    } else {
        json!(at)
    };
    t.open_until(
        |o| {
            o.iter().any(|c| {
                c["id"] == card["id"] && c.get("open_at").cloned().unwrap_or_default() == wanted
            })
        },
        10,
    );
}

#[test]
fn a_confirmation_on_one_terminals_screen_is_listed_as_open_there_on_the_others() {
    let Bed {
        bench,
        mut gw,
        t: mut here,
        sim: _sim,
    } = fentanyl_bed(
        "SIM-VIEWING",
        "",
        &bolus("25 micrograms", "denied", Some("DECLINED")),
    );
    let mut there = Terminal::open(&bench.terminal_socket(), "bed-12-b");
    let card = here.confirmation("p1", "concentration", 30);
    there.confirmation("p1", "concentration", 10);
    // The nurse opens it here: the other terminal's list says so.
    here.send(&json!({"type": "viewing", "id": card["id"]}).to_string());
    listed_open_at(&mut there, &card, &["bed-12-screen"]);
    // This terminal is not told about itself.
    here.send(r#"{"type":"ping"}"#);
    loop {
        let m = here.line().expect("connected");
        assert!(
            m["open"]
                .as_array()
                .is_none_or(|o| o.iter().all(|c| c.get("open_at").is_none())),
            "{m}"
        );
        if m["type"] == "pong" {
            break;
        }
    }
    // She leaves it: no longer marked.
    here.send(r#"{"type":"viewing","id":null}"#);
    listed_open_at(&mut there, &card, &[]);
    // Opened again, then the terminal goes away: no longer marked.
    here.send(&json!({"type": "viewing", "id": card["id"]}).to_string());
    listed_open_at(&mut there, &card, &["bed-12-screen"]);
    drop(here);
    listed_open_at(&mut there, &card, &[]);
    assert!(gw.terminate(10).success());
}
