//! The offline tools: `library lint` for pharmacists and `ders check`, the
//! cross-check on a programme file; and writing a file whole or not at all.

use std::path::Path;

use anyhow::{Context, Result};
use pumpgw::ders::{self, HistoryFile, Outcome, Programme, Verdict};
use pumpgw::library::{self, Severity};

/// Writes a file whole or not at all: a temporary file beside it,
/// renamed over it.
pub(crate) fn write_whole(out: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("cannot write {}", out.display()))
}

pub(crate) fn lint(file: &Path, json: bool, events: &[std::path::PathBuf]) -> Result<u8> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut checked = library::check(&bytes);
    if !events.is_empty() {
        let mut programmed = library::evidence::Programmed::default();
        for f in events {
            let text = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            for line in text.split(|b| *b == b'\n') {
                programmed.record(line);
            }
        }
        if let Some(lib) = &checked.library {
            checked
                .findings
                .extend(library::evidence::lint(lib, &programmed));
        }
        if !json {
            println!(
                "{} programme(s) read from {} log file(s) for the standard doses",
                programmed.programmes,
                events.len()
            );
        }
    }
    let errors = checked
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = checked.findings.len() - errors;
    if json {
        let out = serde_json::json!({
            "file": file.display().to_string(),
            "errors": errors,
            "warnings": warnings,
            "findings": checked.findings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for f in &checked.findings {
            println!("{f}");
        }
        if let Some(lib) = &checked.library {
            println!(
                "{}: library {:?} version {}, {} care areas, {} drug entries: {errors} error(s), {warnings} warning(s)",
                file.display(),
                lib.library_id,
                lib.version,
                lib.care_areas.len(),
                lib.entry_count()
            );
        } else {
            println!(
                "{}: {errors} error(s), {warnings} warning(s)",
                file.display()
            );
        }
    }
    Ok(u8::from(errors > 0))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path_in = e.path().to_string();
        let at = if path_in == "." {
            "$".to_owned()
        } else {
            format!("$.{path_in}")
        };
        // The JSON path is exact; serde_json's own line and column point at
        // the end of a buffered value, so they are dropped rather than mislead.
        let inner = e.inner().to_string();
        let message = inner
            .rsplit_once(" at line ")
            .map_or(inner.as_str(), |(m, _)| m);
        let hint = if matches!(at.rsplit('.').next(), Some("at" | "requested_at")) {
            " (write the time as RFC 3339 with an offset, e.g. 2026-11-21T03:00:00Z)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "{what} {} is invalid at {at}: {message}{hint}",
            path.display()
        )
    })
}

pub(crate) fn ders_check(
    library_path: &Path,
    care_area: &str,
    program: &Path,
    history: Option<&Path>,
    json: bool,
) -> Result<u8> {
    let (library, _warnings) = library::load(library_path)
        .with_context(|| format!("drug library {} refused", library_path.display()))?;
    if library.care_area(care_area).is_none() {
        let known: Vec<&str> = library.care_areas.iter().map(|c| c.id.as_str()).collect();
        anyhow::bail!(
            "care area {care_area:?} is not in library version {}; known: {}",
            library.version,
            known.join(", ")
        );
    }
    let programme: Programme = read_json(program, "programme")?;
    let history = match history {
        Some(h) => read_json::<HistoryFile>(h, "history")?.for_drug(&programme.drug),
        None => ders::History::default(),
    };
    let verdict = ders::check(&library, care_area, &programme, &history);
    if json {
        println!("{}", serde_json::to_string_pretty(&json_verdict(&verdict))?);
    } else {
        print_verdict(&library, care_area, &programme, &verdict);
    }
    Ok(match verdict.outcome {
        Outcome::Pass => 0,
        Outcome::SoftLimit => 1,
        Outcome::HardLimit | Outcome::Block => 2,
    })
}

fn json_verdict(v: &Verdict) -> serde_json::Value {
    serde_json::json!({
        "format": "pumpgw-ders-verdict",
        "format_version": 1,
        "outcome": v.outcome,
        "reasons": v.reasons,
        "computed": v.computed.iter().map(|(k, val)| serde_json::json!({"name": k, "value": val})).collect::<Vec<_>>(),
    })
}

fn print_verdict(library: &library::Library, care_area: &str, p: &Programme, v: &Verdict) {
    let area = library.care_area(care_area);
    let drug = area
        .and_then(|a| a.drug(&p.drug))
        .map_or(p.drug.as_str(), |d| d.display_name.as_str());
    println!(
        "Drug library {} version {}, care area {}",
        library.library_id,
        library.version,
        area.map_or(care_area, |a| a.name.as_str())
    );
    println!("Drug: {drug}");
    for (k, val) in &v.computed {
        println!("  {k}: {val}");
    }
    println!("Verdict: {}", v.outcome.words());
    for r in &v.reasons {
        let ihe = r.ihe_code.map(|c| format!(", IHE {c}")).unwrap_or_default();
        println!(
            "  - [{}{ihe}] {}",
            serde_json::to_value(r.code)
                .ok()
                .and_then(|c| c.as_str().map(str::to_owned))
                .unwrap_or_default(),
            r.message
        );
    }
}
