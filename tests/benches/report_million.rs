//! The CQI report's time for one million events (issue 18): the known
//! month of `report_fixture` copied over many pairs of gateways until the
//! logs hold a million records, then `pumpgwd report` (release build) over
//! them, from the exported files and from an SQLite fleet archive.
//!
//! Run: `cargo build --release --bins && cargo bench -p pumpgw-tests --bench
//! report_million`. Timed: the whole `pumpgwd report --json` process
//! (reading, figures, output); its peak RSS. Under `cargo test` ten
//! copies, as a check that the figures scale exactly (no timing claims).

#![allow(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52, turned into figures for display"
)]

use std::io::Write as _;
use std::process::Command;
use std::time::Instant;

use pumpgw_tests::report_fixture::{FROM, TO, month_of};

/// Runs `pumpgwd report` with `args`; its figures, seconds and peak RSS
/// (KiB, read from /proc while it runs).
fn timed_report(args: &[&str]) -> (serde_json::Value, f64, u64) {
    let start = Instant::now();
    let child = Command::new(pumpgw_tests::binary("pumpgwd"))
        .args(["report", "--from", FROM, "--to", TO, "--json"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pumpgwd runs");
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        loop {
            let now = pumpgw_tests::peak_rss_kib(pid);
            if now == 0 {
                return peak;
            }
            peak = peak.max(now);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let out = child.wait_with_output().expect("pumpgwd ends");
    let seconds = start.elapsed().as_secs_f64();
    let rss = sampler.join().expect("the sampler ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures = serde_json::from_slice(&out.stdout).expect("JSON");
    (figures, seconds, rss)
}

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("fleet.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("writable"));
    let target: u64 = if timed { 1_000_000 } else { 2_000 };
    let (mut records, mut copies) = (0u64, 0u64);
    while records < target {
        for (_, log) in month_of(&format!("icu-{copies}"), &format!("picu-{copies}")) {
            for r in log {
                out.write_all(&r).expect("writable");
                out.write_all(b"\n").expect("writable");
                records += 1;
            }
        }
        copies += 1;
    }
    drop(out);
    let f = file.display().to_string();
    let (figures, seconds, rss) = timed_report(&["--events", &f]);
    // Each copy is the known month: the figures scale exactly.
    assert_eq!(figures["programmes"]["total"], 53 * copies);
    assert_eq!(figures["overrides"], 9 * copies);
    assert_eq!(figures["under_library"]["percent"], "95.7");
    let archive = dir.path().join("archive.sqlite").display().to_string();
    let start = Instant::now();
    let (code, said, err) = pumpgw_tests::run(&[
        "archive",
        "import",
        &f,
        "--site",
        "st-load",
        "--database",
        &archive,
    ]);
    assert_eq!(code, 0, "{said}{err}");
    let import = start.elapsed().as_secs_f64();
    let (from_archive, archive_seconds, _) = timed_report(&["--database", &archive]);
    assert_eq!(
        from_archive["programmes"], figures["programmes"],
        "the archive gives the same figures"
    );
    assert_eq!(from_archive["overrides_by"], figures["overrides_by"]);
    if timed {
        println!(
            "CQI report over {records} records ({copies} copies of the known month, {} gateways):",
            copies * 2
        );
        println!(
            "  from the exported file: {seconds:.2} s ({:.0} records/s), peak RSS {:.1} MiB",
            records as f64 / seconds,
            rss as f64 / 1024.0
        );
        println!(
            "  from the SQLite archive: {archive_seconds:.2} s ({:.0} records/s)",
            records as f64 / archive_seconds
        );
        println!(
            "  (archive import of the file first: {import:.1} s, {:.0} records/s)",
            records as f64 / import
        );
    }
}
