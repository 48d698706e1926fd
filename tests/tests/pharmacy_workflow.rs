//! Issue 18's "done when", in one story: a pharmacist edits the library in
//! a spreadsheet, sees the diff, proposes it; a second pharmacist approves
//! it; it goes over a real Mosquitto to a gateway, which activates it and
//! puts it on its pump; the ward uses it; the fleet archive keeps the
//! gateway's log; and the report says what happened, all with the real
//! binaries.

use std::time::{Duration, Instant};

use pumpgw_tests::mqtt::Broker;
use pumpgw_tests::{Bench, run};

/// Rewrites the `column` of every row of a CSV sheet where `matches` holds.
fn edit_sheet(
    text: &str,
    column: &str,
    value: &str,
    matches: impl Fn(&csv::StringRecord, &csv::StringRecord) -> bool,
) -> String {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("a header row").clone();
    let at = headers
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).expect("writable");
    for row in reader.records() {
        let row = row.expect("a row");
        let mut cells: Vec<String> = row.iter().map(str::to_owned).collect();
        if matches(&headers, &row) {
            value.clone_into(&mut cells[at]);
        }
        out.write_record(&cells).expect("writable");
    }
    String::from_utf8(out.into_inner().expect("flushed")).expect("UTF-8")
}

fn cell<'a>(headers: &csv::StringRecord, row: &'a csv::StringRecord, column: &str) -> &'a str {
    let at = headers.iter().position(|h| h == column).expect("a column");
    row.get(at).unwrap_or_default()
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one story from a spreadsheet to the month's report"
)]
fn from_a_spreadsheet_to_an_approved_library_on_every_pump_and_the_report_of_what_it_caught() {
    let broker = Broker::start();
    let bench = Bench::new();
    let d = bench.path();
    let p = |name: &str| d.join(name).display().to_string();
    for k in ["ann.key", "bob.key"] {
        assert_eq!(run(&["library", "keygen", "--out", &p(k)]).0, 0);
    }

    // The archive listens before the gateway says anything.
    let db = p("archive.sqlite");
    let archive = broker.archive(&bench, "st-test", &db, "archive");

    // A gateway trusting both pharmacists (default: one approval), its
    // pump waiting for version 13, then running fentanyl at 50
    // micrograms/h.
    let extra = format!(
        "trusted_keys = [{:?}, {:?}]\n[mqtt]\nbroker = {:?}\nsite = \"st-test\"\nstatus_interval_s = 1\n",
        p("ann.key.pub"),
        p("bob.key.pub"),
        broker.url()
    );
    let gw = bench.gateway(&["p1"], &extra);
    gw.wait_for(&["MQTT connected"], 1, 10);
    let scenario = "[pump]\nserial = \"WF-1\"\ncare_area = \"adult-icu\"\npatient_weight = \"70 kg\"\n\n\
        [[step]]\naction = \"wait_library\"\nversion = 13\n\n\
        [[step]]\naction = \"load\"\ndrug = \"fentanyl\"\nconcentration = \"2500 micrograms in 50 mL\"\nvolume = \"50 mL\"\n\n\
        [[step]]\naction = \"infuse\"\nrate = \"50 micrograms/h\"\nvtbi = \"1 mL\"\nexpect = \"authorised\"\n";
    let sim = bench.sim("p1", scenario, &[]);

    // 1. The spreadsheet: version 13, fentanyl's adult-icu soft maximum
    //    from 200 to 180 micrograms/h.
    let example = pumpgw_tests::repo_root().join(pumpgw_tests::EXAMPLE_LIBRARY);
    let ex = example.display().to_string();
    let (code, _, err) = run(&["library", "export", &ex, "--csv", "--out", &p("v12.csv")]);
    assert_eq!(code, 0, "{err}");
    let sheet = std::fs::read_to_string(p("v12.csv")).expect("written");
    let sheet = edit_sheet(&sheet, "version", "13", |_, _| true);
    let sheet = edit_sheet(&sheet, "continuous_soft_max", "180", |h, r| {
        cell(h, r, "care_area") == "adult-icu" && cell(h, r, "drug") == "fentanyl"
    });
    std::fs::write(p("v13.csv"), sheet).expect("writable");
    let (code, said, err) = run(&[
        "library",
        "import-csv",
        &p("v13.csv"),
        "--out",
        &p("v13.json"),
    ]);
    assert_eq!(code, 0, "{said}{err}");

    // 2. What changed, against the library in use.
    let (code, said, _) = run(&["library", "diff", &ex, &p("v13.json")]);
    assert_eq!(code, 1, "they differ: {said}");
    assert!(
        said.contains("continuous.soft_max: 200 micrograms/h -> 180 micrograms/h (-10%)"),
        "{said}"
    );

    // 3. Proposed by Ann, approved by Bob, published (once the pump runs
    //    version 12, the library in use).
    sim.wait_for(&["library installed", "version=12"], 1, 15);
    let lib = p("v13.json");
    let (code, _, err) = run(&[
        "library",
        "sign",
        &lib,
        "--key",
        &p("ann.key"),
        "--person",
        "Ann Pharmacist",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&[
        "library",
        "approve",
        &lib,
        "--key",
        &p("bob.key"),
        "--person",
        "Bob Pharmacist",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, said, err) = run(&[
        "library",
        "publish",
        &lib,
        "--signature",
        &format!("{lib}.sig"),
        "--site",
        "st-test",
        "--care-area",
        "adult-icu",
        "--broker",
        &broker.url(),
        "--by",
        "ann",
    ]);
    assert_eq!(code, 0, "{said}{err}");

    // 4. The gateway takes it and its pump runs it; the ward uses it.
    gw.wait_for(
        &["library received over MQTT is now active", "version=13"],
        1,
        15,
    );
    sim.wait_for(&["library installed", "version=13"], 1, 15);
    sim.wait_for(&["result=authorised"], 1, 30);
    let cfg = p("gateway.toml");
    let (_, said, _) = run(&["library", "show", "13", "--config", &cfg]);
    assert!(
        said.contains("by Ann Pharmacist (key ") && said.contains("by Bob Pharmacist (key "),
        "{said}"
    );
    let (code, said, _) = run(&["library", "status", "--config", &cfg]);
    assert_eq!(code, 0, "every pump on version 13: {said}");

    // 5. The archive has the gateway's whole log.
    let head = pumpgw_tests::mqtt::exported(&bench.path().join("gateway.toml")).len() as u64;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = run(&["archive", "status", "--database", &db, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        let kept = v["gateways"][0]["records"].as_u64().unwrap_or(0);
        if kept >= head {
            assert_eq!(v["whole"], true, "{v:#}");
            break;
        }
        assert!(
            Instant::now() < until,
            "the archive has {kept} of {head}: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 6. The report of the period, from the archive.
    let today = time::OffsetDateTime::now_utc().date();
    let from = (today - time::Duration::days(1)).to_string();
    let to = (today + time::Duration::days(1)).to_string();
    let (code, out, err) = run(&[
        "report",
        "--database",
        &db,
        "--from",
        &from,
        "--to",
        &to,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let f: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(f["programmes"]["infusions"], 1, "{f:#}");
    assert_eq!(f["under_library"]["percent"], "100.0");
    assert_eq!(f["alerts"]["total"], 0);
    let off = f["pumps_off_library"].as_array().expect("a list");
    assert!(
        off.iter().any(|p| p["pump"] == "p1" && p["episodes"] == 1),
        "p1 ran version 12 from the activation of 13 until it installed 13: {f:#}"
    );
    let html = p("report.html");
    let (code, said, err) = run(&[
        "report",
        "--database",
        &db,
        "--from",
        &from,
        "--to",
        &to,
        "--out",
        &html,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("1 programmes, 100.0% under the library"),
        "{said}"
    );
    drop(archive);
}
