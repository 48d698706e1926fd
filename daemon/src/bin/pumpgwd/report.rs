//! `pumpgwd report`: the CQI report (`pumpgw::cqi`) from the fleet
//! archive or from gateways' exported logs, as HTML or JSON.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use pumpgw::cqi::{Figures, Scope, Tally};
use time::OffsetDateTime;

use crate::{EXIT_SOFTWARE, EXIT_USAGE};

/// What `report` was asked.
pub(crate) struct Request<'a> {
    pub(crate) events: &'a [PathBuf],
    pub(crate) database: Option<&'a str>,
    pub(crate) site: Option<String>,
    pub(crate) care_area: Option<String>,
    pub(crate) from: Option<&'a str>,
    pub(crate) to: Option<&'a str>,
    pub(crate) out: &'a Path,
    pub(crate) json: bool,
}

/// A date (`2026-11-01`, midnight UTC) or an RFC 3339 time.
fn when(what: &str, text: &str) -> anyhow::Result<OffsetDateTime> {
    let rfc = time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &rfc) {
        return Ok(t);
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| anyhow!("{what} {text:?} is neither a date (2026-11-01) nor an RFC 3339 time"))?;
    Ok(date.midnight().assume_utc())
}

/// Prints progress on a terminal every 100,000 records.
struct Progress {
    tty: bool,
    n: u64,
}

impl Progress {
    fn tick(&mut self) {
        self.n += 1;
        if self.tty && self.n.is_multiple_of(100_000) {
            eprint!("\rread {} records...", pumpgw::format::count(self.n));
        }
    }

    fn done(&self) {
        if self.tty && self.n >= 100_000 {
            eprintln!("\rread {} records.   ", pumpgw::format::count(self.n));
        }
    }
}

pub(crate) fn report(r: &Request<'_>) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (EXIT_USAGE, e);
    let to =
        r.to.map(|t| when("--to", t))
            .transpose()
            .map_err(usage)?
            .unwrap_or_else(OffsetDateTime::now_utc);
    let from = r
        .from
        .map(|t| when("--from", t))
        .transpose()
        .map_err(usage)?
        .unwrap_or(to - time::Duration::days(30));
    if from >= to {
        return Err(usage(anyhow!("--from must be before --to")));
    }
    if r.site.is_some() && r.database.is_none() {
        return Err(usage(anyhow!(
            "--site needs --database: exported files do not say their site"
        )));
    }
    let scope = Scope::new(from, to, r.site.clone(), r.care_area.clone());
    let mut tally = Tally::new(scope.clone());
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        n: 0,
    };
    let source = if let Some(database) = r.database {
        let mut db =
            pumpgw::archive::open(database).map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))?;
        let fail = |e: pumpgw::archive::ArchiveError| (EXIT_SOFTWARE, anyhow::Error::new(e));
        // The state the period starts in (who is who, which pump was on
        // which library), then the period.
        db.each_record(
            r.site.as_deref(),
            ("", &scope.from),
            Tally::STATE_TYPES,
            &mut |key, b| tally.learn_from(&key.site, b),
        )
        .map_err(fail)?;
        db.each_record(
            r.site.as_deref(),
            (&scope.from, &scope.to),
            &[],
            &mut |key, b| {
                progress.tick();
                tally.record_from(&key.site, b);
            },
        )
        .map_err(fail)?;
        db.describe()
    } else {
        for f in r.events {
            let file = std::fs::File::open(f)
                .with_context(|| format!("cannot read {}", f.display()))
                .map_err(usage)?;
            for line in std::io::BufReader::new(file).split(b'\n') {
                let line = line
                    .with_context(|| format!("cannot read {}", f.display()))
                    .map_err(usage)?;
                progress.tick();
                tally.record(&line);
            }
        }
        format!("{} exported log file(s)", r.events.len())
    };
    progress.done();
    let figures: Figures = tally.finish();
    if r.json {
        let text = serde_json::to_string_pretty(&figures)
            .map_err(|e| (EXIT_SOFTWARE, anyhow::Error::new(e)))?;
        println!("{text}");
        return Ok(0);
    }
    let generated = pumpgw::store::record::time_text(OffsetDateTime::now_utc());
    let page = pumpgw::cqi::html::page(&figures, &source, &generated);
    crate::tools::write_whole(r.out, page).map_err(|e| (EXIT_SOFTWARE, e))?;
    println!(
        "{}: {} programmes, {}% under the library, {} alerts per 100, {} overrides, {} hard-limit stops, {} concentrations caught ({} records from {source})",
        r.out.display(),
        pumpgw::format::count(figures.programmes.total),
        figures.under_library.percent,
        figures.alerts.per_100_programmes,
        pumpgw::format::count(figures.overrides),
        pumpgw::format::count(figures.alerts.hard_limit),
        pumpgw::format::count(figures.concentrations_caught.total),
        pumpgw::format::count(figures.records)
    );
    Ok(0)
}
