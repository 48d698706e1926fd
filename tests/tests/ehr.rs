//! Hospital integration, checked from outside: `pumpgwd ehr order` reads
//! PCD-03 orders as the gateway does, and the ACK^O15 and RRG^O16 it
//! answers are validated by hl7apy (strict, HL7 v2.5 structures) and
//! python-hl7, which the project did not write (`tests/validate/`).

use std::process::Command;

use pumpgw_tests::mqtt::{Pki, Validity};
use pumpgw_tests::{Bench, pumpgwd, repo_root, validators_python};
use serde_json::Value;

const ORDER: &str = "config/examples/ehr/dopamine-order.hl7";

/// The answers `pumpgwd ehr order --answer` printed, each checked by the
/// validators; what they read of each.
fn validated(stdout: &str) -> Vec<Value> {
    let messages: Vec<&str> = stdout.split("\nMSH").skip(1).map(str::trim).collect();
    assert_eq!(messages.len(), 2, "ACK^O15 and RRG^O16 in:\n{stdout}");
    check_all(&messages, stdout)
}

/// Each message (its text after "MSH") checked by the validators; what
/// they read of each.
fn check_all(messages: &[&str], context: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = dir.path().join(format!("answer-{i}.hl7"));
            std::fs::write(&path, format!("MSH{m}\n")).expect("the folder is writable");
            path
        })
        .collect();
    let out = Command::new(validators_python())
        .arg(repo_root().join("tests/validate/hl7_messages.py"))
        .args(&files)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}\n{context}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per message"))
        .collect()
}

fn order(file: &str) -> (i32, String) {
    let out = pumpgwd(&["ehr", "order", file, "--answer", "--gateway", "bed-12"]);
    (
        out.status.code().expect("an exit status"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_ihe_dopamine_order_is_read_exactly_and_the_answers_pass_the_validators() {
    let (code, said) = order(ORDER);
    assert_eq!(code, 0, "{said}");
    for line in [
        "drug: Dopamine (1234)",
        "rate: 10 micrograms/kg/min = 31.88 mL/h",
        "concentration: 400 mg in 250 mL (1.6 mg/mL)",
        "to be infused: 250 mL",
        "weight: 85 kg",
        "pump: A0001",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    let read = validated(&said);
    assert_eq!(read[0]["type"], "ACK^O15^ACK");
    assert_eq!(read[0]["msa_1"], "CA");
    assert_eq!(read[0]["msa_2"], "1", "the order's control id");
    assert_eq!(read[1]["type"], "RRG^O16^RRG_O16");
    assert_eq!(read[1]["msa_1"], "AA");
}

#[test]
fn a_malformed_order_is_refused_precisely_and_the_refusal_passes_the_validators() {
    let text = std::fs::read_to_string(repo_root().join(ORDER)).expect("the example");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cases = [
        // No OBX names the pump.
        (
            text.lines()
                .filter(|l| !l.contains("69986"))
                .collect::<Vec<_>>()
                .join("\n"),
            "OBX^1^3",
            "100^Segment sequence error^HL70357",
        ),
        // A rate that is not a number.
        (
            text.replace("||||||||10|", "||||||||ten|"),
            "RXG^1^15",
            "102^Data type error^HL70357",
        ),
        // Not the order message.
        (
            text.replace("RGV^O15^RGV_O15", "ORU^R01^ORU_R01"),
            "MSH^1^9",
            "200^Unsupported message type^HL70357",
        ),
        // A version PCD-03 is not.
        (
            text.replace("|P|2.5|", "|P|2.3|"),
            "MSH^1^12",
            "203^Unsupported version id^HL70357",
        ),
    ];
    for (i, (message, location, hl7)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("order-{i}.hl7"));
        std::fs::write(&file, message).expect("the folder is writable");
        let (code, said) = order(&file.display().to_string());
        assert_eq!(code, 2, "{said}");
        let read = validated(&said);
        assert_eq!(read[1]["msa_1"], "AE", "{said}");
        assert_eq!(read[1]["err_2"], location, "{said}");
        assert_eq!(read[1]["err_3"], hl7, "{said}");
    }
    // Not HL7 at all: said, and nothing to answer to.
    let file = dir.path().join("not-hl7.txt");
    std::fs::write(&file, "hello\n").expect("the folder is writable");
    let (code, said) = order(&file.display().to_string());
    assert_eq!(code, 2);
    assert!(
        said.contains("not an HL7 v2 message: the message does not start with an MSH segment"),
        "{said}"
    );
}

/// A pump on the bed that only takes the library and waits.
const IDLE_PUMP: &str = "[pump]\ncare_area = \"adult-icu\"\n\n[[step]]\naction = \"wait_library\"\n\n[[step]]\naction = \"wait\"\nduration = \"10 min\"\n";

/// A gateway with `extra` in its config and, on its port p1, a simulated
/// pump of serial A0001 (the fixtures' pump) playing `scenario` (with
/// `args`), its link up.
fn bed(
    bench: &Bench,
    extra: &str,
    scenario: &str,
    args: &[&str],
) -> (pumpgw_tests::Proc, pumpgw_tests::Proc) {
    let gw = bench.gateway(&["p1"], extra);
    let mut all = vec!["--serial", "A0001"];
    all.extend_from_slice(args);
    let pump = bench.sim("p1", scenario, &all);
    gw.wait_for(&["pump link up", "pump=p1"], 1, 20);
    (gw, pump)
}

/// A free port on loopback, for the gateway's `[ehr] listen`.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback has a free port")
        .port()
}

/// Sends `files` to the listener at `port` as an EHR would (Python
/// sockets), `want` answers for each; the answers' texts after "MSH".
fn send(port: u16, want: usize, files: &[&std::path::Path]) -> Vec<String> {
    let (code, out) = send_with(&[], port, want, files);
    assert_eq!(code, Some(0), "{out}");
    answers_in(&out)
}

/// The answers' texts after "MSH" in what `mllp_send.py` printed.
fn answers_in(out: &str) -> Vec<String> {
    out.split("\n\n")
        .filter_map(|m| m.trim().strip_prefix("MSH").map(str::to_owned))
        .collect()
}

fn os(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(std::ffi::OsString::as_os_str).collect()
}

/// `mllp_send.py` with options before the address: its exit code and
/// what it printed (stdout, then stderr).
fn send_with(
    options: &[&std::ffi::OsStr],
    port: u16,
    want: usize,
    files: &[&std::path::Path],
) -> (Option<i32>, String) {
    let out = Command::new(validators_python())
        .arg(repo_root().join("tests/validate/mllp_send.py"))
        .args(options)
        .args(["127.0.0.1", &port.to_string(), &want.to_string()])
        .args(files)
        .output()
        .expect("python runs");
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_gateway_answers_orders_over_mllp_and_every_answer_passes_the_validators() {
    let bench = Bench::new();
    let port = free_port();
    // The pump the orders name: serial A0001 on this bed.
    let (mut gw, _pump) = bed(
        &bench,
        &format!("[ehr]\nlisten = \"127.0.0.1:{port}\"\n"),
        IDLE_PUMP,
        &[],
    );
    let dir = tempfile::tempdir().expect("a temporary folder");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("the folder is writable");
        path
    };
    let fentanyl = repo_root().join("config/examples/ehr/fentanyl-order.hl7");
    let dopamine = repo_root().join(ORDER);
    let text = std::fs::read_to_string(&fentanyl).expect("the example");
    let elsewhere = write("elsewhere.hl7", text.replace("^^A0001^", "^^Z9999^"));
    let answers = send(port, 2, &[&fentanyl, &dopamine, &elsewhere]);
    assert_eq!(answers.len(), 6, "{answers:#?}");
    let texts: Vec<&str> = answers.iter().map(String::as_str).collect();
    let read = check_all(&texts, &answers.join("\n\n"));
    // Each order: ACK^O15 at once (CA, its control id), then RRG^O16.
    for (ack, id) in [(0, "2"), (2, "1"), (4, "2")] {
        assert_eq!(read[ack]["type"], "ACK^O15^ACK");
        assert_eq!(
            (read[ack]["msa_1"].as_str(), read[ack]["msa_2"].as_str()),
            (Some("CA"), Some(id))
        );
        assert_eq!(read[ack + 1]["type"], "RRG^O16^RRG_O16");
    }
    // The fentanyl order for this bed's pump is accepted.
    assert_eq!(read[1]["msa_1"], "AA", "{:#?}", answers[1]);
    // Dopamine is not in the library: 9010, as in IHE's own RRG^O16 sample.
    assert_eq!(read[3]["msa_1"], "AE");
    assert_eq!(read[3]["err_2"], "RXG^1^4");
    assert_eq!(
        read[3]["err_5"],
        "9010^Unable to match medication to drug library"
    );
    // A pump that is not this bed's.
    assert_eq!(read[5]["msa_1"], "AE");
    assert_eq!(read[5]["err_2"], "OBX^1^18");
    assert!(
        answers[5].contains("no pump Z9999 at gateway"),
        "{}",
        answers[5]
    );
    // Not HL7 at all: refused on receipt, precisely, and the gateway goes on.
    let junk = write("junk.hl7", "hello".to_owned());
    let refused = send(port, 1, &[&junk]);
    assert!(
        refused[0].contains("MSA|CR|")
            && refused[0].contains("the message does not start with an MSH segment"),
        "{refused:#?}"
    );
    // A 10 MiB message: refused before it is all read, the connection
    // closed; the next connection is answered as before.
    let huge = write(
        "huge.hl7",
        format!("{}NTE|1||{}\n", text, "x".repeat(10 << 20)),
    );
    let refused = send(port, 1, &[&huge]);
    assert!(
        refused[0].contains("MSA|CR|") && refused[0].contains("longer than 1048576 bytes"),
        "{refused:#?}"
    );
    let again = send(port, 2, &[&fentanyl]);
    assert!(again[1].contains("MSA|AA|2"), "{again:#?}");
    gw.wait_for(&["EHR order", "verdict=\"refused\""], 2, 5);
    // Each order answered AA is in the log, before its answer; the
    // refused ones left nothing.
    let logged = bench.exported("order_received");
    assert_eq!(logged.len(), 2, "{logged:#?}");
    for r in &logged {
        assert_eq!(r["pump"], "p1");
        assert_eq!(r["placer"], "F-2001");
        assert_eq!(r["pump_serial"], "A0001");
        assert_eq!(r["drug"], "Fentanyl");
        assert_eq!(r["rate"], "50 micrograms/h");
        assert_eq!(
            r["concentration"],
            "2,500 micrograms in 50 mL (50 micrograms/mL)"
        );
    }
    assert!(gw.terminate(10).success());
}

/// The order-aware cross-check end to end: the EHR orders fentanyl 50
/// micrograms/h for pump A0001; the pump is programmed at 100 micrograms/h
/// (inside every library limit) and is denied, naming the order and both
/// rates; programmed as ordered, the check passes against the order and
/// the new syringe's label goes to the nurse (the simulator's bedside
/// confirms it) and the infusion is authorised.
#[test]
fn a_programme_that_differs_from_its_order_is_blocked_naming_the_order_and_the_field() {
    let bench = Bench::new();
    let port = free_port();
    let (mut gw, _pump) = bed(
        &bench,
        &format!("[ehr]\nlisten = \"127.0.0.1:{port}\"\n"),
        "[pump]\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
         [[step]]\naction = \"wait_library\"\n\n\
         [[step]]\naction = \"wait\"\nduration = \"6 s\"\n\n\
         [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n\
         [[step]]\naction = \"infuse\"\nrate = \"100 micrograms/h\"\nvtbi = \"50 mL\"\nexpect = \"denied\"\n\n\
         [[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nvtbi = \"50 mL\"\n\n\
         [[step]]\naction = \"wait\"\nduration = \"10 min\"\n",
        &[],
    );
    let fentanyl = repo_root().join("config/examples/ehr/fentanyl-order.hl7");
    let answers = send(port, 2, &[&fentanyl]);
    assert!(answers[1].contains("MSA|AA|2"), "{answers:#?}");
    gw.wait_for(&["programme checked", "pump=p1", "request=1"], 1, 30);
    gw.wait_for(&["pump=p1", "request=2", "decision=authorised"], 1, 30);
    let verdicts = bench.exported("verdict");
    assert_eq!(verdicts.len(), 2, "{verdicts:#?}");
    // Differs from the order: blocked, the reason naming the field, what
    // was ordered and what was programmed.
    let first = &verdicts[0];
    assert_eq!(first["order"], "F-2001");
    assert_eq!(first["outcome"], "block");
    let reason = first["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["code"] == "ORDER_MISMATCH"))
        .unwrap_or_else(|| panic!("an order reason: {first:#}"));
    assert_eq!(reason["limit"], "order.rate");
    assert_eq!(reason["limit_value"], "50 micrograms/h");
    assert_eq!(reason["programmed"], "100 micrograms/h");
    assert!(
        reason["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Order F-2001 is for 50 micrograms/h")),
        "{reason:#}"
    );
    let denied = bench.exported("denied");
    assert!(
        denied[0]["reasons"][0]["code"] == "ORDER_MISMATCH",
        "the pump is told why: {denied:#?}"
    );
    // As ordered: nothing against it.
    let second = &verdicts[1];
    assert_eq!(second["order"], "F-2001");
    assert_eq!(second["outcome"], "pass", "{second:#}");
    gw.wait_for(&["pump=p1", "delivery", "Started"], 1, 20);
    fhir_documents_the_ordered_infusion(&bench);
    assert!(gw.terminate(10).success());
}

/// `events export --format fhir`, validated by fhir.resources (R4B) and
/// the invariants that apply: the infusion given as ordered is a
/// `MedicationAdministration` under the order, for the order's patient, on
/// the pump's `Device`, with the nurse's confirmation in its `Provenance`.
fn fhir_documents_the_ordered_infusion(bench: &Bench) {
    let out = pumpgwd(&[
        "events",
        "export",
        "--data-dir",
        &bench.path().display().to_string(),
        "--format",
        "fhir",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = bench.path().join("bundle.json");
    std::fs::write(&file, &out.stdout).expect("the bench is writable");
    let checked = Command::new(validators_python())
        .arg(repo_root().join("tests/validate/fhir_bundle.py"))
        .arg(&file)
        .output()
        .expect("python runs");
    assert!(
        checked.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&checked.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let read: Value = serde_json::from_slice(&checked.stdout).expect("one JSON line");
    assert_eq!(read["type"], "collection");
    assert_eq!(
        read["counts"]["Device"], 2,
        "the pump and the gateway: {read:#}"
    );
    let ma = &read["administrations"][0];
    assert_eq!(ma["status"], "in-progress");
    assert_eq!(ma["medicationCodeableConcept"]["text"], "fentaNYL");
    assert_eq!(ma["subject"]["identifier"]["value"], "98765");
    assert_eq!(ma["request"]["identifier"]["value"], "F-2001");
    assert_eq!(ma["device"][0]["reference"], "Device/pump-A0001");
    assert_eq!(ma["dosage"]["rateQuantity"]["value"], 50);
    assert_eq!(ma["dosage"]["rateQuantity"]["code"], "ug/h");
    assert_eq!(ma["extension"][0]["valueCode"], "pass");
    let agents = read["provenance"][0]["agent"].as_array().expect("agents");
    assert!(
        agents
            .iter()
            .any(|a| a["type"]["coding"][0]["code"] == "verifier"
                && a["type"]["text"] == "confirmed concentration"),
        "{agents:#?}"
    );
}

/// With TLS, only an EHR with a client certificate the configured CA
/// signed is answered; one without, or one not speaking TLS, is turned
/// away at the door and the gateway goes on.
#[test]
fn with_tls_only_an_ehr_with_a_client_certificate_is_answered() {
    let bench = Bench::new();
    let port = free_port();
    let pki = Pki::make(bench.path(), "ehr", Validity::Current, Validity::Current);
    let (mut gw, _pump) = bed(
        &bench,
        &format!(
            "[ehr]\nlisten = \"127.0.0.1:{port}\"\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n",
            pki.server_cert, pki.server_key, pki.ca
        ),
        IDLE_PUMP,
        &[],
    );
    gw.wait_for(&["EHR listener (MLLP) up", "tls=true"], 1, 5);
    let fentanyl = repo_root().join("config/examples/ehr/fentanyl-order.hl7");
    let tls = |cert: &std::path::Path, key: &std::path::Path| {
        vec![
            std::ffi::OsString::from("--tls"),
            pki.ca.clone().into_os_string(),
            cert.as_os_str().to_owned(),
            key.as_os_str().to_owned(),
        ]
    };
    let with_cert = tls(&pki.client_cert, &pki.client_key);
    let (code, out) = send_with(&os(&with_cert), port, 2, &[&fentanyl]);
    assert_eq!(code, Some(0), "{out}");
    let answers = answers_in(&out);
    assert!(answers[1].contains("MSA|AA|2"), "{out}");
    check_all(
        &answers.iter().map(String::as_str).collect::<Vec<_>>(),
        &out,
    );
    // No client certificate: refused at the handshake.
    let dash = std::path::Path::new("-");
    let (code, out) = send_with(&os(&tls(dash, dash)), port, 2, &[&fentanyl]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("TLS refused"), "{out}");
    gw.wait_for(&["EHR TLS handshake refused"], 1, 5);
    // Plain MLLP on the TLS port: no answer, nothing taken.
    let (_, out) = send_with(&[], port, 2, &[&fentanyl]);
    assert!(answers_in(&out).is_empty(), "{out}");
    // The gateway goes on: the certified EHR is answered again.
    let (code, out) = send_with(&os(&with_cert), port, 2, &[&fentanyl]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("MSA|AA|2"), "{out}");
    assert_eq!(bench.exported("order_received").len(), 2);
    assert!(gw.terminate(10).success());
}

/// A test EHR's MLLP receiver (Python sockets): every message it
/// acknowledged is a JSON line in `received`.
fn ehr_receiver(bench: &Bench, port: u16, received: &std::path::Path) -> pumpgw_tests::Proc {
    ehr_receiver_with(bench, port, received, &[])
}

/// [`ehr_receiver`] with more arguments (`--tls CERT KEY CA`).
fn ehr_receiver_with(
    bench: &Bench,
    port: u16,
    received: &std::path::Path,
    more: &[&str],
) -> pumpgw_tests::Proc {
    let script = repo_root().join("tests/validate/mllp_receive.py");
    let mut args = vec![
        script.display().to_string(),
        port.to_string(),
        received.display().to_string(),
    ];
    args.extend(more.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let p = bench.spawn_program(&format!("ehr-{port}"), &validators_python(), &args, None);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.out_text().contains("listening") {
        assert!(std::time::Instant::now() < until, "{}", p.log_text());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    p
}

/// What the test EHR acknowledged, in order: control id, type, text.
fn acknowledged(received: &std::path::Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(received)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("control"), s("type"), s("text"))
        })
        .collect()
}

/// A fentanyl syringe and two infusions of 1 mL at 1 mL/h, 8 h apart: at
/// 3,600 simulated seconds a second, each takes 1 s.
fn two_infusions() -> String {
    let infusion = "[[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nvtbi = \"1 mL\"\nexpect = \"authorised\"\n\n[[step]]\naction = \"wait_delivery\"\n\n";
    format!(
        "[pump]\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
         [[step]]\naction = \"wait_library\"\n\n\
         [[step]]\naction = \"wait\"\nduration = \"3 h\"\n\n\
         [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n\
         {infusion}[[step]]\naction = \"wait\"\nduration = \"8 h\"\n\n{infusion}\
         [[step]]\naction = \"wait\"\nduration = \"1000 h\"\n"
    )
}

/// The first infusion's four messages, as the validators read them.
fn first_infusion_documented(first: &[(String, String, String)]) {
    let kinds: Vec<&str> = first.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ORU^R42^ORU_R01",
            "ORU^R01^ORU_R01",
            "ORU^R42^ORU_R01",
            "ORU^R01^ORU_R01"
        ]
    );
    let texts: Vec<String> = first
        .iter()
        .map(|m| m.2.strip_prefix("MSH").expect("a message").to_owned())
        .collect();
    let read = check_all(
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
        &texts.join("\n\n"),
    );
    assert_eq!(read[0]["version"], "2.6");
    assert_eq!(read[0]["obr_2"], "F-2001^PCD-03");
    assert_eq!(read[0]["obr_4"], "fentanyl^fentaNYL");
    assert_eq!(read[0]["pid_3"], "98765^^^IHE^PI");
    let obx = |m: &Value, code: &str| -> Value {
        m["obx"]
            .as_array()
            .and_then(|o| {
                o.iter()
                    .find(|o| o["code"].as_str().is_some_and(|c| c.contains(code)))
            })
            .cloned()
            .unwrap_or_else(|| panic!("{code} in {m:#}"))
    };
    assert_eq!(
        obx(&read[0], "MDC_ATTR_EVT_COND")["value"],
        "197288^MDC_EVT_PUMP_DELIV_START^MDC"
    );
    assert_eq!(
        obx(&read[2], "MDC_ATTR_EVT_COND")["value"],
        "0^MDC_EVT_PUMP_DELIV_COMP^MDC"
    );
    assert_eq!(obx(&read[0], "157784^MDC_FLOW_FLUID_PUMP")["value"], "1");
    assert_eq!(obx(&read[0], "184517^")["value"], "12");
    assert_eq!(obx(&read[0], "184516^")["value"], "adult-icu");
    assert_eq!(obx(&read[2], "157993^")["value"], "1");
}

/// Documentation out end to end: each infusion event is sent as PCD-10
/// `ORU^R42` with the pump's PCD-01 status, both validated by hl7apy and
/// python-hl7, in the log's order, the order's number and patient
/// included; with the EHR down and the gateway killed twice meanwhile,
/// every message still arrives, in order, once the EHR is back.
#[test]
fn infusion_events_are_documented_in_order_through_an_ehr_outage_and_two_kills() {
    let bench = Bench::new();
    let (listen, ehr_port) = (free_port(), free_port());
    let received = bench.path().join("ehr-received.jsonl");
    let mut ehr = ehr_receiver(&bench, ehr_port, &received);
    let extra = format!(
        "[ehr]\nlisten = \"127.0.0.1:{listen}\"\nsend_to = \"127.0.0.1:{ehr_port}\"\nack_timeout_s = 2\n"
    );
    let (mut gw, _pump) = bed(&bench, &extra, &two_infusions(), &["--speed", "3600"]);
    // The fixture's order, for 1 mL to be infused.
    let order = bench.path().join("order-1-ml.hl7");
    let text = std::fs::read_to_string(repo_root().join("config/examples/ehr/fentanyl-order.hl7"))
        .expect("the fixture");
    std::fs::write(
        &order,
        text.replace("fentanyl^Fentanyl|50|", "fentanyl^Fentanyl|1|"),
    )
    .expect("the bench is writable");
    assert!(send(listen, 2, &[&order])[1].contains("MSA|AA|2"));
    // The first infusion: started and completed, each as R42 then R01.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while acknowledged(&received).len() < 4 {
        assert!(
            std::time::Instant::now() < until,
            "{:#?}\n{}",
            acknowledged(&received),
            gw.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    first_infusion_documented(&acknowledged(&received));
    // The EHR goes down; the second infusion is logged meanwhile, and the
    // gateway is killed twice (no orderly stop) before the EHR is back.
    ehr.kill();
    gw.wait_for(&["pump=p1", "event=Completed"], 2, 40);
    for _ in 0..2 {
        gw.kill();
        gw = bench.gateway(&["p1"], &extra);
        gw.wait_for(&["EHR documentation (PCD-01, PCD-10) from the log"], 1, 20);
    }
    let _ehr = ehr_receiver(&bench, ehr_port, &received);
    let deliveries = bench.exported("delivery");
    let expected: Vec<String> = deliveries
        .iter()
        .flat_map(|d| {
            let seq = d["seq"].as_u64().expect("a seq");
            [format!("test-bed-{seq}-1"), format!("test-bed-{seq}-2")]
        })
        .collect();
    assert_eq!(expected.len(), 8, "{deliveries:#?}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let mut got: Vec<String> = acknowledged(&received).into_iter().map(|m| m.0).collect();
        // At least once: the one in flight at a kill may come twice, next
        // to itself; never out of order, never missing.
        got.dedup();
        if got.len() >= expected.len() {
            assert_eq!(got, expected);
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "{got:#?}\n{}",
            gw.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let all: Vec<String> = acknowledged(&received)
        .iter()
        .map(|m| m.2.strip_prefix("MSH").expect("a message").to_owned())
        .collect();
    check_all(&all.iter().map(String::as_str).collect::<Vec<_>>(), "all");
    // `pumpgwd status` says where documentation stands.
    let status = pumpgwd(&[
        "status",
        "--config",
        &bench.path().join("gateway.toml").display().to_string(),
    ]);
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(said.contains("EHR"), "{said}");
    assert!(gw.terminate(10).success());
}

/// `pumpgwd demo --ehr`: the simulated EHR's orders are taken; the pump
/// programmed as ordered runs, the one at twice the order is blocked
/// naming it, then runs once reprogrammed; each infusion's events come
/// back to the EHR.
#[test]
fn the_ehr_demo_shows_an_order_matched_and_one_mismatched() {
    let out = pumpgwd(&["demo", "--ehr", "--speed", "600", "--duration", "30"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "EHR → order F-1001 for SIM-0001: fentanyl 50 micrograms/h, 2,500 micrograms in 50 mL: AA",
        "EHR → order F-1002 for SIM-0002: fentanyl 50 micrograms/h, 2,500 micrograms in 50 mL: AA",
        "ORDER_MISMATCH: Order F-1002 is for 50 micrograms/h, but the pump is programmed at 100 micrograms/h.",
        "EHR ← PCD-10 MDC_EVT_PUMP_DELIV_START: fentaNYL on pump SIM-0001, order F-1001",
        "EHR ← PCD-10 MDC_EVT_PUMP_DELIV_START: fentaNYL on pump SIM-0002, order F-1002",
        "EHR ← PCD-10 MDC_EVT_PUMP_DELIV_COMP: fentaNYL on pump SIM-0001, order F-1001",
        "EHR ← PCD-01 status: fentaNYL on pump SIM-0002, order F-1002",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
}

/// The issue's own case, end to end: the EHR orders a fentanyl bolus of 25
/// micrograms from a 2,500 micrograms in 50 mL syringe; the pump is
/// loaded with a syringe programmed as 25 micrograms in 50 mL (the HSIB
/// whole-syringe bolus) and is blocked, naming the order and both
/// concentrations (PIV 9037); with the right syringe the nurse confirms the
/// label, the doctor the bolus, it is given, and the EHR receives its
/// PCD-10 events under the order, for the order's patient.
#[test]
fn the_hsib_bolus_is_blocked_by_its_order_and_the_right_one_is_given_and_documented() {
    let bench = Bench::new();
    let (listen, ehr_port) = (free_port(), free_port());
    let received = bench.path().join("ehr-received.jsonl");
    let _ehr = ehr_receiver(&bench, ehr_port, &received);
    let bolus = |expect: &str| {
        format!(
            "[[step]]\naction = \"bolus\"\ndose = \"25 micrograms\"\nduration = \"60 s\"\nexpect = \"{expect}\"\n\n"
        )
    };
    let load = |concentration: &str| {
        format!(
            "[[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"{concentration}\"\nvolume = \"50 mL\"\n\n"
        )
    };
    let scenario = format!(
        "[pump]\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
         [[step]]\naction = \"wait_library\"\n\n\
         [[step]]\naction = \"wait\"\nduration = \"3 h\"\n\n\
         {}{}{}{}[[step]]\naction = \"wait\"\nduration = \"1000 h\"\n",
        load("25 micrograms in 50 mL"),
        bolus("denied"),
        load("2500 micrograms in 50 mL"),
        bolus("authorised"),
    );
    let (mut gw, _pump) = bed(
        &bench,
        &format!("[ehr]\nlisten = \"127.0.0.1:{listen}\"\nsend_to = \"127.0.0.1:{ehr_port}\"\n"),
        &scenario,
        &["--speed", "3600"],
    );
    // A bolus from the running infusion (ORC-1 CH), 25 micrograms.
    let order = bench.path().join("bolus-order.hl7");
    let text = std::fs::read_to_string(repo_root().join("config/examples/ehr/fentanyl-order.hl7"))
        .expect("the fixture")
        .replace("ORC|RE|F-2001|", "ORC|CH|F-2002|")
        .replace("fentanyl^Fentanyl|50|", "fentanyl^Fentanyl||")
        .replace("|50|ug/h^ug/h^UCUM|", "|25|ug^ug^UCUM|");
    std::fs::write(&order, text).expect("the bench is writable");
    let answers = send(listen, 2, &[&order]);
    assert!(answers[1].contains("MSA|AA|2"), "{answers:#?}");
    gw.wait_for(&["pump=p1", "request=2", "decision=authorised"], 1, 40);
    let verdicts = bench.exported("verdict");
    let first = &verdicts[0];
    assert_eq!(first["order"], "F-2002");
    let reasons = first["reasons"].as_array().expect("reasons");
    let against = reasons
        .iter()
        .find(|r| r["code"] == "ORDER_MISMATCH")
        .unwrap_or_else(|| panic!("{first:#}"));
    assert_eq!(against["limit"], "order.concentration");
    assert_eq!(against["ihe_code"], 9037);
    assert_eq!(
        against["limit_value"],
        "2,500 micrograms in 50 mL (50 micrograms/mL)"
    );
    assert_eq!(
        against["programmed"],
        "25 micrograms in 50 mL (0.5 micrograms/mL)"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r["code"] == "CONCENTRATION_NOT_IN_LIBRARY")
    );
    assert_eq!(verdicts[1]["outcome"], "pass", "{:#}", verdicts[1]);
    // The nurse's label and the doctor's bolus, then given.
    let confirmed = bench.exported("confirmed");
    let stages: Vec<&str> = confirmed
        .iter()
        .filter_map(|c| c["stage"].as_str())
        .collect();
    assert_eq!(stages, ["concentration", "bolus"], "{confirmed:#?}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let documented = loop {
        let got = acknowledged(&received);
        if got.iter().any(|m| m.2.contains("MDC_EVT_PUMP_DELIV_COMP")) {
            break got;
        }
        assert!(
            std::time::Instant::now() < until,
            "{got:#?}\n{}",
            gw.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let r42: Vec<&(String, String, String)> = documented
        .iter()
        .filter(|m| m.1 == "ORU^R42^ORU_R01")
        .collect();
    for m in &r42 {
        assert!(m.2.contains("\rOBR|1|F-2002^PCD-03|"), "{}", m.2);
        assert!(m.2.contains("\rPID|||98765^^^IHE^PI||"), "{}", m.2);
        assert!(
            m.2.contains("|^pump-program-delivery-mode-bolus|"),
            "{}",
            m.2
        );
    }
    assert!(gw.terminate(10).success());
}

/// Malformed orders on the wire, each refused with a precise HL7 error
/// (the segment and field, the table 0357 code), every answer passing the
/// validators; nothing of them is kept, and the gateway takes the next
/// good order.
#[test]
fn malformed_orders_on_the_wire_are_refused_precisely_and_leave_nothing() {
    let bench = Bench::new();
    let port = free_port();
    let (mut gw, _pump) = bed(
        &bench,
        &format!("[ehr]\nlisten = \"127.0.0.1:{port}\"\n"),
        IDLE_PUMP,
        &[],
    );
    let good = repo_root().join("config/examples/ehr/fentanyl-order.hl7");
    let text = std::fs::read_to_string(&good).expect("the fixture");
    let orc = "ORC|RE|F-2001|||||||||||||||||N0001\n";
    let cases = [
        // The order control after the give: segments out of order.
        (
            text.replace(orc, "")
                .replace("RXR|IV||IVP|IV\n", &format!("RXR|IV||IVP|IV\n{orc}")),
            ("CA", "AE"),
            "ORC^1",
            "100",
        ),
        // No control id (MSH-10).
        (
            text.replace("|RGV^O15^RGV_O15|2|", "|RGV^O15^RGV_O15||"),
            ("CA", "AE"),
            "MSH^1^10",
            "101",
        ),
    ];
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (i, (message, (ack, result), location, hl7)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.hl7"));
        std::fs::write(&file, message).expect("writable");
        let answers = send(port, 2, &[&file]);
        let texts: Vec<&str> = answers.iter().map(String::as_str).collect();
        let read = check_all(&texts, &answers.join("\n\n"));
        assert_eq!(read[0]["msa_1"], ack, "{answers:#?}");
        assert_eq!(read[1]["msa_1"], result, "{answers:#?}");
        assert!(
            read[1]["err_2"]
                .as_str()
                .is_some_and(|e| e.starts_with(location)),
            "{location}: {answers:#?}"
        );
        assert!(
            read[1]["err_3"]
                .as_str()
                .is_some_and(|e| e.starts_with(hl7)),
            "{hl7}: {answers:#?}"
        );
    }
    // Encoding characters that cannot separate anything (one repeated):
    // refused on receipt.
    let file = dir.path().join("bad-separators.hl7");
    std::fs::write(&file, text.replacen("MSH|^~\\&|", "MSH|^^\\&|", 1)).expect("writable");
    let answers = send(port, 1, &[&file]);
    let read = check_all(&[answers[0].as_str()], &answers[0]);
    assert_eq!(read[0]["msa_1"], "CR", "{answers:#?}");
    assert!(
        answers[0].contains("MSH-2 encoding characters are not usable"),
        "{answers:#?}"
    );
    // Nothing kept of any of them; the next good order is taken.
    assert!(bench.exported("order_received").is_empty());
    assert!(send(port, 2, &[&good])[1].contains("MSA|AA|2"));
    assert_eq!(bench.exported("order_received").len(), 1);
    assert!(gw.terminate(10).success());
}

/// Documentation out over TLS: the EHR's certificate checked against
/// `send_ca_file`, the gateway's client certificate presented; the EHR
/// (Python's ssl, requiring a client certificate) receives the messages,
/// and, every `status_every_s`, each online pump's status (PCD-01).
#[test]
fn documentation_goes_over_tls_with_the_gateways_client_certificate() {
    let bench = Bench::new();
    let (listen, ehr_port) = (free_port(), free_port());
    let pki = Pki::make(bench.path(), "doc", Validity::Current, Validity::Current);
    let received = bench.path().join("ehr-received.jsonl");
    let s = |p: &std::path::Path| p.display().to_string();
    let ehr = ehr_receiver_with(
        &bench,
        ehr_port,
        &received,
        &[
            "--tls",
            &s(&pki.server_cert),
            &s(&pki.server_key),
            &s(&pki.ca),
        ],
    );
    let (mut gw, _pump) = bed(
        &bench,
        &format!(
            "[ehr]\nlisten = \"127.0.0.1:{listen}\"\nsend_to = \"127.0.0.1:{ehr_port}\"\nsend_ca_file = {:?}\nsend_cert_file = {:?}\nsend_key_file = {:?}\nstatus_every_s = 10\n",
            pki.ca, pki.client_cert, pki.client_key
        ),
        &two_infusions(),
        &["--speed", "3600"],
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while acknowledged(&received).len() < 4 {
        assert!(
            std::time::Instant::now() < until,
            "{:#?}\n{}\n{}",
            acknowledged(&received),
            gw.log_text(),
            ehr.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ehr.log_text().contains("TLS client:"), "{}", ehr.log_text());
    assert!(
        !ehr.log_text().contains("TLS refused"),
        "{}",
        ehr.log_text()
    );
    // The periodic status: PCD-01, not from the log (control id P1...).
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let periodic = loop {
        if let Some(m) = acknowledged(&received)
            .into_iter()
            .find(|m| m.0 == "test-bed-P1")
        {
            break m;
        }
        assert!(std::time::Instant::now() < until, "{}", gw.log_text());
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(periodic.1, "ORU^R01^ORU_R01");
    let text = periodic
        .2
        .strip_prefix("MSH")
        .expect("a message")
        .to_owned();
    let read = check_all(&[text.as_str()], &text);
    let codes: Vec<&str> = read[0]["obx"]
        .as_array()
        .map(|o| o.iter().filter_map(|o| o["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        codes.contains(&"184519^MDC_PUMP_INFUSING_STATUS^MDC"),
        "{read:#?}"
    );
    assert!(text.contains("|A0001^PUMPGW"), "{text}");
    assert!(gw.terminate(10).success());
}
