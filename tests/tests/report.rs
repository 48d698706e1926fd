//! The CQI report (`pumpgwd report`) end to end: a known month of two
//! gateways' logs (`pumpgw_tests::report_fixture`), every figure checked
//! exactly, the same from the exported files, from an SQLite archive and
//! from a real PostgreSQL server; the HTML opened in headless Chromium,
//! screenshot and printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use pumpgw_tests::postgres::Postgres;
use pumpgw_tests::report_fixture::{FROM, TO, month};
use pumpgw_tests::run;
use serde_json::{Value, json};

/// The month written as one export file per gateway.
fn exports(dir: &Path) -> Vec<String> {
    month()
        .into_iter()
        .map(|(gateway, records)| {
            let file = dir.join(format!("{gateway}.jsonl"));
            let mut text = Vec::new();
            for r in records {
                text.extend_from_slice(&r);
                text.push(b'\n');
            }
            std::fs::write(&file, text).expect("writable");
            file.display().to_string()
        })
        .collect()
}

/// Figures with the archive's `site` taken out of each pump row (exported
/// files do not say their site).
fn without_site(f: &Value) -> Value {
    let mut f = f.clone();
    if let Some(rows) = f["pumps_off_library"].as_array_mut() {
        for r in rows {
            if let Some(o) = r.as_object_mut() {
                o.remove("site");
            }
        }
    }
    f
}

fn figures(args: &[&str]) -> Value {
    let mut all = vec!["report", "--from", FROM, "--to", TO, "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "every figure of the month, then the same from both archives"
)]
fn every_figure_of_a_known_month_is_exact_from_files_and_from_both_archives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = exports(dir.path());
    let mut args = vec!["--events"];
    args.extend(files.iter().map(String::as_str));
    let f = figures(&args);

    assert_eq!(f["gateways"], 2);
    assert_eq!(
        f["programmes"],
        json!({"infusions": 47, "boluses": 6, "total": 53})
    );
    assert_eq!(
        f["under_library"],
        json!({"checked": 45, "total": 47, "percent": "95.7", "meets_ismp_95": true})
    );
    assert_eq!(
        f["alerts"],
        json!({"soft_limit": 9, "hard_limit": 3, "block": 2, "total": 14, "per_100_programmes": "26.4"})
    );
    assert_eq!(f["overrides"], 9);
    assert_eq!(
        f["overrides_by"],
        json!([
            {"drug": "noradrenaline", "care_area": "adult-icu", "limit": "DOSE_RATE_LIMIT soft_max", "role": "nurse", "reason": "clinical judgement", "count": 4},
            {"drug": "morphine", "care_area": "paed-icu", "limit": "DOSE_RATE_LIMIT soft_max", "role": "nurse", "reason": "clinical judgement", "count": 3},
            {"drug": "noradrenaline", "care_area": "adult-icu", "limit": "DOSE_RATE_LIMIT soft_max", "role": "doctor", "reason": "patient response", "count": 2},
        ])
    );
    assert_eq!(
        f["most_overridden"],
        json!([
            {"drug": "noradrenaline", "care_area": "adult-icu", "limit": "DOSE_RATE_LIMIT soft_max", "count": 6},
            {"drug": "morphine", "care_area": "paed-icu", "limit": "DOSE_RATE_LIMIT soft_max", "count": 3},
        ])
    );
    assert_eq!(
        f["hard_limit_stops"],
        json!([{"drug": "fentanyl", "care_area": "adult-icu", "limit": "DOSE_RATE_LIMIT hard_max", "count": 3}])
    );
    assert_eq!(
        f["concentrations_caught"],
        json!({"not_in_library": 2, "label_mismatch": 1, "order_mismatch": 0, "total": 3})
    );
    assert_eq!(
        f["boluses_confirmed"],
        json!({"confirmed": 6, "by_doctor": 5})
    );
    assert_eq!(
        f["pumps_off_library"],
        json!([
            {"gateway": "icu-1", "pump": "p2", "episodes": 1, "seconds": 9000},
            {"gateway": "picu-1", "pump": "p1", "episodes": 1, "seconds": 30},
        ])
    );
    assert_eq!(
        f["by_care_area"],
        json!([
            {"care_area": "adult-icu", "programmes": 39, "checked": 37, "alerts": 11, "overrides": 6},
            {"care_area": "paed-icu", "programmes": 14, "checked": 14, "alerts": 3, "overrides": 3},
        ])
    );
    let days = f["per_day"].as_array().expect("days");
    assert_eq!(days.len(), 30, "one row per day with a programme");
    assert_eq!(
        days[0],
        json!({"day": "2026-11-01", "infusions": 2, "boluses": 1, "alerts": 0})
    );
    assert_eq!(
        days[22],
        json!({"day": "2026-11-23", "infusions": 1, "boluses": 0, "alerts": 1})
    );
    // 31 October's programme (3 records) is outside: every other record in.
    let lines: usize = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .expect("readable")
                .lines()
                .count()
        })
        .sum();
    assert_eq!(
        f["records"],
        lines as u64 - 3 - 1,
        "and picu-1's link_up of 30 October"
    );

    // One care area.
    let picu = figures(&[&args[..], &["--care-area", "paed-icu"]].concat());
    assert_eq!(picu["programmes"]["total"], 14);
    assert_eq!(picu["overrides"], 3);
    assert_eq!(picu["under_library"]["percent"], "100.0");
    assert_eq!(picu["under_library"]["total"], 13, "infusions only");
    assert_eq!(
        picu["pumps_off_library"],
        json!([{"gateway": "picu-1", "pump": "p1", "episodes": 1, "seconds": 30}]),
        "only that care area's pumps"
    );

    // The same figures from an SQLite archive filled from those files...
    let sqlite = dir.path().join("archive.sqlite").display().to_string();
    let mut import = vec!["archive", "import"];
    import.extend(files.iter().map(String::as_str));
    let (code, out, err) =
        run(&[&import[..], &["--site", "st-test", "--database", &sqlite]].concat());
    assert_eq!(code, 0, "{out}{err}");
    let from_sqlite = figures(&["--database", &sqlite]);
    assert_eq!(
        without_site(&from_sqlite),
        f,
        "the archive gives the very same figures"
    );
    assert_eq!(from_sqlite["pumps_off_library"][0]["site"], "st-test");
    // ... and from a real PostgreSQL server.
    let pg = Postgres::start(false);
    let url = pg.database("archive");
    let (code, out, err) = run(&[&import[..], &["--site", "st-test", "--database", &url]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(without_site(&figures(&["--database", &url])), f);
    // The same gateway ids at a second site are other gateways.
    let (code, out, err) =
        run(&[&import[..], &["--site", "st-other", "--database", &url]].concat());
    assert_eq!(code, 0, "{out}{err}");
    let both = figures(&["--database", &url]);
    assert_eq!(both["gateways"], 4);
    assert_eq!(both["programmes"]["total"], 106);
    assert_eq!(both["pumps_off_library"].as_array().map(Vec::len), Some(4));
    let mut site = without_site(&figures(&["--database", &url, "--site", "st-test"]));
    assert_eq!(site["scope"]["site"], "st-test");
    site["scope"]["site"] = Value::Null;
    assert_eq!(site, f, "one site of two: the very same figures");
    assert_eq!(
        figures(&["--database", &url, "--site", "elsewhere"])["records"],
        0
    );
}

/// Debian's Chromium, headless, as root without its sandbox.
fn chromium() -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    c
}

#[test]
fn the_html_report_opens_in_a_real_browser_and_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = exports(dir.path());
    let html = dir.path().join("report.html");
    let h = html.display().to_string();
    let mut args = vec![
        "report", "--from", FROM, "--to", TO, "--out", &h, "--events",
    ];
    args.extend(files.iter().map(String::as_str));
    let (code, said, err) = run(&args);
    assert_eq!(code, 0, "{said}{err}");
    assert!(
        said.contains("53 programmes, 95.7% under the library, 26.4 alerts per 100, 9 overrides, 3 hard-limit stops, 3 concentrations caught"),
        "{said}"
    );
    let text = std::fs::read_to_string(&html).expect("written");
    assert!(!text.to_lowercase().contains("<script"), "no script");
    assert!(
        !text.contains("http://")
            || text
                .matches("http://")
                .all(|_| text.contains("xmlns=\"http://www.w3.org/2000/svg\"")),
        "nothing fetched"
    );
    for words in [
        "95.7%",
        "ISMP target 95%: met",
        "26.4",
        "noradrenaline",
        "DOSE_RATE_LIMIT soft_max",
        "clinical judgement",
        "2 h 30 min",
        "pumpgwd library replay",
    ] {
        assert!(text.contains(words), "no {words:?} in the page");
    }
    assert_eq!(text.matches("<svg").count(), 4, "four plots");

    // What the browser made of it: the plots are in its DOM.
    let dom = chromium()
        .args(["--dump-dom", &format!("file://{h}")])
        .output()
        .expect("chromium runs (tests/run installs it)");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg").count(), 4, "{dom}");
    assert!(dom.contains("Smart-pump safety report"));

    // A screenshot, and the page printed to PDF.
    let png = screenshot(&h, &dir.path().join("report.png"));
    let bytes = std::fs::read(&png).expect("the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 30_000,
        "a page with plots, not a blank: {} bytes",
        bytes.len()
    );
    let pdf = dir.path().join("report.pdf");
    let out = chromium()
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg("--no-pdf-header-footer")
        .arg(format!("file://{h}"))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pdf = std::fs::read(&pdf).expect("printed");
    assert!(pdf.starts_with(b"%PDF"));
    let pages = pdf.windows(10).filter(|w| w == b"/Type /Pag").count();
    assert!(pages >= 2, "an A4 report of a few pages: {pages}");
    // Kept for a look after the run.
    let keep = pumpgw_tests::repo_root().join("target/report-example.png");
    let _ = std::fs::copy(&png, keep);
}

fn screenshot(html: &str, png: &Path) -> PathBuf {
    let out = chromium()
        .args(["--window-size=1100,1900", "--hide-scrollbars"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{html}"))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    png.to_path_buf()
}
