//! `pumpgwd archive`: the fleet archive on the command line. Without a
//! subcommand it runs: subscribes to every gateway's events of a site and
//! keeps them (`pumpgw::archive`). `status` says what it holds and every
//! gap and break; `import` fills it from gateways' `events export` files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use pumpgw::archive::{self, Backend, Ingest, Key};

use crate::{EXIT_SOFTWARE, EXIT_USAGE};

/// Exit status of `archive` when the broker cannot be used.
const EXIT_UNAVAILABLE: u8 = 69;

/// The archive's default file.
const DEFAULT_DATABASE: &str = "archive.sqlite";

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ArchiveArgs {
    #[command(subcommand)]
    command: Option<ArchiveCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The site whose gateways to archive (`pumpgw/v1/<site>/+/events`).
    #[arg(long, required = true)]
    site: Option<String>,
    /// Where to keep it: an SQLite file (created if missing) or a
    /// `postgres://user:password@host/db` URL.
    #[arg(long, value_name = "FILE|URL", default_value = DEFAULT_DATABASE)]
    database: String,
    /// The MQTT client id; the broker keeps this session's messages while
    /// the archive is away (default `pumpgw-archive-<site>`).
    #[arg(long, value_name = "ID")]
    client_id: Option<String>,
    #[command(flatten)]
    broker: Option<crate::mqtt::BrokerArgs>,
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// What the archive holds: each gateway's records, last record, the
    /// ranges missing and every anomaly (gap, break, conflict, malformed).
    ///
    /// Exit status: 0 every chain whole; 1 gaps or anomalies; 70 the
    /// database cannot be read.
    Status {
        /// The archive (SQLite file or `postgres://` URL).
        #[arg(long, value_name = "FILE|URL", default_value = DEFAULT_DATABASE)]
        database: String,
        /// JSON for machines.
        #[arg(long)]
        json: bool,
    },
    /// Fill the archive from gateways' `pumpgwd events export` files (a
    /// gap, or the time before the archive ran), each record checked
    /// against its neighbours as if it had come over MQTT.
    ///
    /// Exit status: 0 every record kept or already there; 1 anomalies;
    /// 64 a file cannot be read; 70 the database failed.
    Import {
        /// Export files (JSON Lines, one record per line).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The site the gateways belong to.
        #[arg(long)]
        site: String,
        /// The archive (SQLite file or `postgres://` URL).
        #[arg(long, value_name = "FILE|URL", default_value = DEFAULT_DATABASE)]
        database: String,
    },
}

/// Runs `pumpgwd archive ...`.
pub(crate) fn main(args: ArchiveArgs) -> Result<u8, (u8, anyhow::Error)> {
    match args.command {
        Some(ArchiveCommand::Status { database, json }) => status(&database, json),
        Some(ArchiveCommand::Import {
            files,
            site,
            database,
        }) => import(&files, &site, &database),
        None => run(args.run),
    }
}

fn open(database: &str) -> Result<Box<dyn Backend>, (u8, anyhow::Error)> {
    archive::open(database).map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))
}

fn run(args: RunArgs) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (EXIT_USAGE, e);
    let site = args
        .site
        .ok_or_else(|| usage(anyhow!("--site is needed")))?;
    pumpgw::sync::topic::check_segment("--site", &site).map_err(|e| usage(anyhow!(e)))?;
    let broker = args
        .broker
        .ok_or_else(|| usage(anyhow!("--broker is needed")))?;
    let mut connection = broker.connection("archive")?;
    connection.client_id = args
        .client_id
        .unwrap_or_else(|| format!("pumpgw-archive-{site}"));
    crate::daemon::init_logging("info");
    let backend = open(&args.database)?;
    let rt = crate::daemon::runtime().map_err(|e| (EXIT_SOFTWARE, e))?;
    let totals = Arc::new(archive::subscriber::Totals::default());
    let result = rt.block_on({
        let totals = Arc::clone(&totals);
        async move {
            let signal = crate::daemon::shutdown_signal().map_err(|e| (EXIT_SOFTWARE, e))?;
            archive::subscriber::run(&connection, &site, backend, totals, signal)
                .await
                .map_err(|e| match e {
                    archive::subscriber::RunError::Settings(_) => {
                        (EXIT_UNAVAILABLE, anyhow::Error::new(e))
                    }
                    archive::subscriber::RunError::Archive(_) => {
                        (EXIT_SOFTWARE, anyhow::Error::new(e))
                    }
                })
        }
    });
    eprintln!(
        "pumpgwd archive: {} batch(es), {} record(s) kept, {} duplicate(s), {} anomaly(ies) this run",
        totals.batches.load(Ordering::Relaxed),
        totals.stored.load(Ordering::Relaxed),
        totals.duplicates.load(Ordering::Relaxed),
        totals.anomalies.load(Ordering::Relaxed)
    );
    result.map(|()| 0)
}

fn status(database: &str, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let mut db = open(database)?;
    let fail = |e: archive::ArchiveError| (EXIT_SOFTWARE, anyhow::Error::new(e));
    let summary = db.summary().map_err(fail)?;
    let anomalies = db.anomalies().map_err(fail)?;
    let mut gaps = BTreeMap::new();
    for s in &summary {
        let g = db.gaps(&s.key).map_err(fail)?;
        if !g.is_empty() {
            gaps.insert(format!("{}/{}", s.key.site, s.key.gateway), g);
        }
    }
    let whole = anomalies.is_empty() && gaps.is_empty();
    if json {
        let value = serde_json::json!({
            "database": db.describe(),
            "gateways": summary,
            "gaps": gaps.iter().map(|(k, v)| (k.clone(), v.iter().map(|(a, b)| serde_json::json!({"from": a, "to": b})).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>(),
            "anomalies": anomalies,
            "whole": whole,
        });
        println!("{value:#}");
        return Ok(u8::from(!whole));
    }
    println!("{}: {} gateway(s)", db.describe(), summary.len());
    for s in &summary {
        println!(
            "  {}/{}  {} record(s), last {} at {}{}{}",
            s.key.site,
            s.key.gateway,
            s.records,
            s.last_seq,
            if s.last_at.is_empty() {
                "-"
            } else {
                &s.last_at
            },
            if s.missing > 0 {
                format!(", {} missing", s.missing)
            } else {
                String::new()
            },
            if s.anomalies > 0 {
                format!(", {} anomaly(ies)", s.anomalies)
            } else {
                String::new()
            }
        );
    }
    for (gateway, ranges) in &gaps {
        for (from, to) in ranges {
            println!("GAP  {gateway}: records {from} to {to} missing");
        }
    }
    for a in &anomalies {
        println!(
            "{}  {}/{}{}: {} (noticed {})",
            a.kind.word().to_uppercase(),
            a.key.site,
            a.key.gateway,
            a.seq.map(|s| format!(" record {s}")).unwrap_or_default(),
            a.detail,
            a.noticed_at
        );
    }
    if whole {
        println!("Every chain is whole: no gap, no anomaly.");
    }
    Ok(u8::from(!whole))
}

/// Whose record a line of an export is, and where in its log.
#[derive(serde::Deserialize)]
struct Whose {
    gateway: String,
    seq: u64,
}

fn import(files: &[PathBuf], site: &str, database: &str) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (EXIT_USAGE, e);
    pumpgw::sync::topic::check_segment("--site", site).map_err(|e| usage(anyhow!(e)))?;
    // Every gateway's records, by sequence number. A number given twice
    // stays twice: the same bytes are a duplicate, other bytes a conflict.
    let mut logs: BTreeMap<String, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    let mut unreadable = 0usize;
    for f in files {
        let text = std::fs::read(f)
            .with_context(|| format!("cannot read {}", f.display()))
            .map_err(usage)?;
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Whose>(line) {
                Ok(w) => {
                    logs.entry(w.gateway)
                        .or_default()
                        .push((w.seq, line.to_vec()));
                }
                Err(_) => unreadable += 1,
            }
        }
    }
    let mut db = open(database)?;
    let fail = |e: archive::ArchiveError| (EXIT_SOFTWARE, anyhow::Error::new(e));
    let ingest = Ingest;
    let now = pumpgw::store::record::time_text(time::OffsetDateTime::now_utc());
    let mut anomalies = 0;
    for (gateway, records) in &mut logs {
        records.sort_by_key(|(seq, _)| *seq);
        let key = Key {
            site: site.to_owned(),
            gateway: gateway.clone(),
        };
        let all: Vec<&[u8]> = records.iter().map(|(_, r)| r.as_slice()).collect();
        let (mut stored, mut duplicates) = (0, 0);
        for chunk in all.chunks(1_000) {
            let out = ingest
                .records(db.as_mut(), &key, chunk, &now)
                .map_err(fail)?;
            stored += out.stored;
            duplicates += out.duplicates;
            for a in &out.anomalies {
                println!(
                    "{}  {site}/{gateway}{}: {}",
                    a.kind.word().to_uppercase(),
                    a.seq.map(|s| format!(" record {s}")).unwrap_or_default(),
                    a.detail
                );
            }
            anomalies += out.anomalies.len();
        }
        println!("{site}/{gateway}: {stored} record(s) kept, {duplicates} already there");
    }
    if unreadable > 0 {
        println!("{unreadable} line(s) were not records and were left out");
    }
    Ok(u8::from(anomalies > 0 || unreadable > 0))
}
