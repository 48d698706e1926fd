//! `pumpgwd events`: read the event log without changing it: the last
//! records, a filtered export in the open format, and the chain's
//! verification.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use pumpgw::gateway::Config;
use pumpgw::store::checkpoint;
use pumpgw::store::log::{self, Filter};
use pumpgw::store::{Event, Store, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Exit status: the database is damaged or unreadable (sysexits
/// `EX_DATAERR`).
pub(crate) const EXIT_DATA: u8 = 65;

/// Where the database is: from `--config` or `--data-dir`.
pub(crate) fn database(config: Option<&Path>, data_dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match (config, data_dir) {
        (Some(c), _) => Config::load(c)?.data_dir,
        (None, Some(d)) => d.to_path_buf(),
        (None, None) => PathBuf::from(crate::DEFAULT_DATA_DIR),
    };
    let file = Store::file_in(&dir);
    anyhow::ensure!(
        file.exists(),
        "no event log at {} (give the gateway's --config or --data-dir)",
        file.display()
    );
    Ok(file)
}

/// Opens a store read-only (the `events` commands and `status`).
pub(crate) fn open(file: &Path) -> Result<Store, (u8, anyhow::Error)> {
    Store::open_read_only(file).map_err(store_failure)
}

/// The exit status for a store that cannot be opened: 65 when the file is
/// damaged or too new, 70 for anything else.
pub(crate) fn store_failure(e: StoreError) -> (u8, anyhow::Error) {
    let code = match e {
        StoreError::Corrupt { .. } | StoreError::TooNew { .. } => EXIT_DATA,
        StoreError::Sqlite { .. } => crate::EXIT_SOFTWARE,
    };
    (code, anyhow::Error::new(e))
}

/// `events verify`: 0 when the chain holds and the checkpoints (those in
/// the log, and those in `checkpoints` kept elsewhere) match it; 1 when
/// not.
pub(crate) fn verify(
    file: &Path,
    checkpoints: Option<&Path>,
    key: Option<&str>,
) -> Result<u8, (u8, anyhow::Error)> {
    let store = open(file)?;
    let tty = std::io::stderr().is_terminal();
    let v = log::verify(&store, |n| {
        if tty {
            eprint!("\rverified {n} records...");
        }
    })
    .map_err(|e| (EXIT_DATA, anyhow::Error::new(e)))?;
    if tty {
        eprint!("\r");
    }
    let mut status = 0;
    match v.first_break {
        None => println!(
            "{}: the chain holds: {} records, every one linked to the one before.",
            file.display(),
            v.records
        ),
        Some(b) => {
            println!(
                "{}: the chain is BROKEN at record {}: {}. Records 1 to {} verify.",
                file.display(),
                b.seq,
                b.what,
                b.seq.saturating_sub(1)
            );
            status = 1;
        }
    }
    // The log's own checkpoints: a forged or stale one shows here, but an
    // attacker who can write the log can also rewrite these.
    let own = checkpoint::in_log(&store).map_err(|e| (EXIT_DATA, anyhow::Error::new(e)))?;
    let gateway = own.first().map(|h| h.gateway.clone());
    let mine = checkpoint::check(&store, None, &own, key)
        .map_err(|e| (EXIT_DATA, anyhow::Error::new(e)))?;
    status = status.max(report_checkpoints("in the log", &mine));
    match checkpoints {
        Some(path) => {
            let file = checkpoint::read_file(path)
                .map_err(|e| (crate::EXIT_USAGE, anyhow::Error::new(e)))?;
            if file.unreadable > 0 {
                println!(
                    "checkpoints {}: NOT AS SIGNED: {} checkpoint record(s) do not read as one (altered?).",
                    path.display(),
                    file.unreadable
                );
                status = 1;
            }
            let found = checkpoint::check(&store, gateway.as_deref(), &file.held, key)
                .map_err(|e| (EXIT_DATA, anyhow::Error::new(e)))?;
            if found.checked == 0 {
                println!(
                    "{}: no checkpoint of this gateway in it ({} other line(s)): nothing to check the log against.",
                    path.display(),
                    file.other_lines
                );
                status = 1;
            } else {
                status = status.max(report_checkpoints(&path.display().to_string(), &found));
            }
        }
        None => println!(
            "Without --checkpoints from elsewhere (the broker's copy, an earlier export), a log cut short or re-chained cannot be told from a whole one."
        ),
    }
    Ok(status)
}

fn report_checkpoints(source: &str, c: &checkpoint::Checked) -> u8 {
    if c.problems.is_empty() {
        match &c.newest {
            Some((seq, at)) => println!(
                "checkpoints {source}: {} checked, the newest signed at {at}: every record they attest, up to record {seq}, is in the log as signed.",
                c.checked
            ),
            None => println!("checkpoints {source}: none."),
        }
        0
    } else {
        for p in &c.problems {
            println!("checkpoints {source}: NOT AS SIGNED: {p}.");
        }
        1
    }
}

fn time_arg(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).with_context(|| {
        format!("{s:?} is not a time: write RFC 3339 with an offset, e.g. 2026-11-21T03:00:00Z")
    })
}

/// What `events export` was asked to export.
fn filter(
    since: Option<&str>,
    until: Option<&str>,
    pump: Option<String>,
    kind: Option<String>,
) -> Result<Filter, (u8, anyhow::Error)> {
    let usage = |e| (crate::EXIT_USAGE, e);
    Ok(Filter {
        since: since.map(time_arg).transpose().map_err(usage)?,
        until: until.map(time_arg).transpose().map_err(usage)?,
        pump,
        kind,
    })
}

/// `events export`: JSON lines on stdout.
pub(crate) fn export(
    file: &Path,
    since: Option<&str>,
    until: Option<&str>,
    pump: Option<String>,
    kind: Option<String>,
) -> Result<u8, (u8, anyhow::Error)> {
    let filter = filter(since, until, pump, kind)?;
    let store = open(file)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match log::export(&store, &filter, &mut out) {
        Ok(n) => {
            eprintln!("exported {n} records");
            Ok(0)
        }
        Err(log::ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err((crate::EXIT_SOFTWARE, anyhow::Error::new(e))),
    }
}

/// `events export --format fhir`: the records as one FHIR R4 Bundle.
pub(crate) fn export_fhir(
    file: &Path,
    since: Option<&str>,
    until: Option<&str>,
    pump: Option<String>,
) -> Result<u8, (u8, anyhow::Error)> {
    let filter = filter(since, until, pump, None)?;
    let store = open(file)?;
    let mut lines = Vec::new();
    let n = log::export(&store, &filter, &mut lines)
        .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    let mut export = pumpgw::ehr::fhir::Export::default();
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        // A record the chain holds is JSON; `events verify` reports one
        // that is not.
        if let Ok(record) = serde_json::from_slice::<serde_json::Value>(line) {
            export.add(&record);
        }
    }
    let (library_id, names) = crate::status::library_names(&store);
    let now = pumpgw::store::record::time_text(time::OffsetDateTime::now_utc());
    let bundle = export.bundle(&library_id, &|id| names.get(id).cloned(), &now);
    let out = serde_json::to_string_pretty(&bundle)
        .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    println!("{out}");
    eprintln!(
        "exported {n} records as a FHIR R4 Bundle of {} resources",
        bundle["entry"].as_array().map_or(0, Vec::len)
    );
    Ok(0)
}

/// `events tail`: the last records, one line each (or JSON lines).
pub(crate) fn tail(file: &Path, n: u64, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let store = open(file)?;
    let records = log::tail(&store, n).map_err(|e| (EXIT_DATA, anyhow::Error::new(e)))?;
    let mut out = std::io::stdout().lock();
    for r in records {
        let line = if json {
            String::from_utf8_lossy(&r.to_bytes()).into_owned()
        } else {
            format!(
                "{:>6} {} {:<8} {:<20} {}",
                r.seq,
                pumpgw::store::record::time_text(r.at),
                r.context.pump.as_deref().unwrap_or("-"),
                r.event.type_name(),
                summary(&r.event)
            )
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(0)
}

#[allow(
    clippy::too_many_lines,
    reason = "one arm per event type, read top to bottom"
)]
fn summary(e: &Event) -> String {
    match e {
        Event::GatewayStarted { software } => format!("pumpgwd {software}"),
        Event::GatewayStopped { reason } | Event::LinkDown { reason } => reason.clone(),
        Event::LinkUp {
            model,
            serial,
            pump_library_version,
            ..
        } => format!(
            "{model} {serial}, library {}",
            pump_library_version.map_or_else(|| "none".to_owned(), |v| format!("v{v}"))
        ),
        Event::ProgrammeRequested {
            request, programme, ..
        } => format!(
            "#{request} {}",
            programme
                .get("drug")
                .and_then(|d| d.as_str())
                .unwrap_or("?")
        ),
        Event::Verdict {
            request, outcome, ..
        } => format!("#{request} {outcome}"),
        Event::Authorised { request, .. } => format!("#{request}"),
        Event::Denied {
            request,
            outcome,
            reasons,
            ..
        } => format!(
            "#{request} {outcome}: {}",
            reasons.first().map_or("", |r| r.code.as_str())
        ),
        Event::Delivery {
            event,
            request,
            volume_infused,
            ..
        } => format!("#{request} {event}, {volume_infused}"),
        Event::AmountMismatch {
            request, message, ..
        } => format!("#{request} {message}"),
        Event::RecordConflict { message, .. } => message.clone(),
        Event::Checkpoint {
            reason,
            signed_seq,
            key,
            ..
        } => format!(
            "{reason}: records 1 to {signed_seq} signed by key {}",
            key.get(..16).unwrap_or(key)
        ),
        Event::ClockStepped { step_ms } => format!(
            "wall clock set {} by {} ms",
            if *step_ms < 0 { "back" } else { "forward" },
            pumpgw::format::count(step_ms.unsigned_abs())
        ),
        Event::Alarm {
            priority,
            text,
            active,
            ..
        } => format!(
            "{} {priority}: {text}",
            if *active { "raised" } else { "cleared" }
        ),
        Event::LibraryInstalledOnPump {
            version, matches, ..
        } => format!(
            "v{version}, {}",
            if *matches { "matches" } else { "DIFFERS" }
        ),
        Event::LibraryReceived {
            version,
            library_id,
            by,
            ..
        } => format!("{library_id} v{version} imported by {by}"),
        Event::LibraryPushed { version, hash } => {
            format!("v{version} offered ({})", hash.get(..16).unwrap_or(hash))
        }
        Event::LibraryVerified {
            version,
            key_id,
            signers,
        } => {
            if signers.is_empty() {
                format!("v{version} signed by key {key_id}")
            } else {
                let who: Vec<String> = signers
                    .iter()
                    .map(|s| format!("{} by {s}", s.role))
                    .collect();
                format!("v{version} {}", who.join(", "))
            }
        }
        Event::LibraryRefused { reason, by, .. } => format!("from {by}: {reason}"),
        Event::LibraryActivated {
            version,
            previous,
            by,
            reason,
        } => format!(
            "v{version} active (was {}), by {by}: {reason}",
            previous.map_or_else(|| "none".to_owned(), |p| format!("v{p}"))
        ),
        Event::PinChecked {
            staff_id,
            purpose,
            result,
            failures,
            locked_until,
            ..
        } => match locked_until {
            Some(until) => format!("{staff_id} for {purpose}: {result}, locked until {until}"),
            None if *failures > 0 => {
                format!("{staff_id} for {purpose}: {result} ({failures} in a row)")
            }
            None => format!("{staff_id} for {purpose}: {result}"),
        },
        Event::StaffChanged {
            action,
            staff_id,
            role,
            by,
        } => format!("{staff_id} ({role}) {action} by {by}"),
        Event::ConfirmationRequested { .. }
        | Event::Confirmed { .. }
        | Event::ConfirmationRefused { .. } => confirmation_summary(e),
        Event::OrderReceived {
            placer,
            sender,
            pump_serial,
            drug,
            rate,
            concentration,
            ..
        } => format!(
            "order {placer} from {sender}: {drug}, {}, {} (pump {pump_serial})",
            rate.as_deref().unwrap_or("no rate"),
            concentration.as_deref().unwrap_or("no concentration")
        ),
    }
}

/// The summary of a confirmation record.
fn confirmation_summary(e: &Event) -> String {
    match e {
        Event::ConfirmationRequested {
            request,
            confirmation,
            stage,
            ..
        } => format!("request {request}: {stage} confirmation #{confirmation} open"),
        Event::Confirmed {
            request,
            stage,
            by,
            reason,
            terminal,
            entered,
            ..
        } => format!(
            "request {request}: {stage} confirmed by {} at {terminal}{}{}",
            by.join(" and "),
            entered
                .as_ref()
                .map(|e| format!(": label {e}"))
                .unwrap_or_default(),
            reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        Event::ConfirmationRefused {
            request,
            code,
            message,
            closed,
            ..
        } => format!(
            "request {request}: {code}{}: {message}",
            if *closed { " (denied)" } else { "" }
        ),
        _ => String::new(),
    }
}
