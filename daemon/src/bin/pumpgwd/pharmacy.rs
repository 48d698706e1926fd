//! `pumpgwd library keygen`, `sign`, `approve` and the archive commands
//! (`import`, `activate`, `list`, `show`, `audit`, `status`, `diff`,
//! `replay`, the spreadsheet): the pharmacy's side of configuration
//! control.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pumpgw::library::{self, Severity, signature};

/// Writes a new Ed25519 key (PKCS#8, mode 0600) and its public half.
pub(crate) fn keygen(out: &Path) -> Result<u8> {
    let public_path = public_path(out);
    for p in [out, public_path.as_path()] {
        if p.exists() {
            bail!("{} exists; refusing to overwrite a key", p.display());
        }
    }
    let (pkcs8, public) = signature::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    f.write_all(&pkcs8)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&public_path, format!("{}\n", hex::encode(&public)))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!(
        "key {}: private key {} (mode 0600: keep it off the network), public key {}",
        signature::key_id(&public),
        out.display(),
        public_path.display()
    );
    println!(
        "Give {} to every gateway that must trust this pharmacy.",
        public_path.display()
    );
    Ok(0)
}

/// Reads a private key, refusing one that others can read.
fn read_key(key: &Path) -> Result<Vec<u8>> {
    let mode = std::fs::metadata(key)
        .with_context(|| format!("cannot read {}", key.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}); run `chmod 600 {}` first",
            key.display(),
            mode & 0o777,
            key.display()
        );
    }
    std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))
}

/// The library's bytes and version, or `None` (errors printed) when the
/// lint finds errors: nobody signs those.
fn linted(file: &Path, doing: &str) -> Result<Option<(Vec<u8>, u64)>> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let checked = library::check(&bytes);
    let errors: Vec<_> = checked
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        for f in &errors {
            eprintln!("{f}");
        }
        eprintln!(
            "pumpgwd: {} has {} error(s); not {doing} (run `pumpgwd library lint`)",
            file.display(),
            errors.len()
        );
        return Ok(None);
    }
    let version = checked.library.as_ref().map_or(0, |l| l.version);
    Ok(Some((bytes, version)))
}

/// Now, as signatures write it.
fn now_text() -> String {
    pumpgw::store::record::time_text(time::OffsetDateTime::now_utc())
}

/// `library sign`: lints, then proposes a library with `person`'s
/// signature; writes FILE.sig (or `out`). Format 1 (`v1`) writes the old
/// single signature instead, for gateways not yet upgraded.
pub(crate) fn sign(
    file: &Path,
    key: &Path,
    person: Option<String>,
    out: Option<&Path>,
    v1: bool,
) -> Result<u8> {
    let pkcs8 = read_key(key)?;
    let Some((bytes, version)) = linted(file, "signed")? else {
        return Ok(1);
    };
    let out = out.map_or_else(|| signature_path(file), Path::to_path_buf);
    // Proposing again over a file that holds approvals would throw them
    // away without a word.
    if let Ok(existing) = std::fs::read(&out)
        && let Ok(signature::Parsed::V2(old)) = signature::parse(&existing)
        && old.signatures.len() > 1
    {
        bail!(
            "{} already holds {} approval(s); remove it first if the library is to be proposed again (its approvals are then lost)",
            out.display(),
            old.signatures.len() - 1
        );
    }
    let (text, sha, key_id) = if v1 {
        let sig = signature::sign_v1(&bytes, &pkcs8, key)?;
        let text = serde_json::to_string_pretty(&sig)? + "\n";
        (text, sig.library_sha256, sig.key_id)
    } else {
        let person = who(person);
        let sig = signature::propose(&bytes, &pkcs8, key, &person, &now_text())?;
        let text = serde_json::to_string_pretty(&sig)? + "\n";
        let key_id = sig.signatures[0].key_id.clone();
        (text, sig.library_sha256, key_id)
    };
    crate::tools::write_whole(&out, &text)?;
    println!(
        "signed {} (version {version}, SHA-256 {sha}) with key {key_id}: {}",
        file.display(),
        out.display()
    );
    if v1 {
        println!(
            "Format 1: one signature, no approvals; only gateways with approvals = 0 accept it."
        );
    } else {
        println!(
            "Proposed. Another pharmacist checks it (`pumpgwd library diff` against the active library) and approves it with:\n  pumpgwd library approve {} --key THEIR.key --signature {}",
            file.display(),
            out.display()
        );
    }
    Ok(0)
}

/// `library approve`: adds `person`'s approval to the signature file of a
/// proposed library, after checking the signatures already in it.
pub(crate) fn approve(
    file: &Path,
    key: &Path,
    person: Option<String>,
    sig_path: Option<&Path>,
) -> Result<u8> {
    let pkcs8 = read_key(key)?;
    let Some((bytes, version)) = linted(file, "approved")? else {
        return Ok(1);
    };
    let sig_path = sig_path.map_or_else(|| signature_path(file), Path::to_path_buf);
    let sig_bytes =
        std::fs::read(&sig_path).with_context(|| format!("cannot read {}", sig_path.display()))?;
    let mut sig = match signature::parse(&sig_bytes)? {
        signature::Parsed::V2(sig) => sig,
        signature::Parsed::V1(_) => bail!(
            "{} is a format 1 signature, which cannot hold an approval; propose the library again with `pumpgwd library sign`",
            sig_path.display()
        ),
    };
    let before = signature::inspect(&bytes, &sig_bytes)
        .with_context(|| format!("{} does not check out", sig_path.display()))?;
    signature::approve(&bytes, &mut sig, &pkcs8, key, &who(person), &now_text())?;
    let text = serde_json::to_string_pretty(&sig)? + "\n";
    let after = signature::inspect(&bytes, text.as_bytes())?;
    crate::tools::write_whole(&sig_path, &text)?;
    println!(
        "approved {} (version {version}, SHA-256 {}), {}: {}",
        file.display(),
        sig.library_sha256,
        after.describe(),
        sig_path.display()
    );
    println!(
        "It has {} approval(s) (before: {}); a gateway imports it when its config's approvals is at most that.",
        after.approvers.len(),
        before.approvers.len()
    );
    Ok(0)
}

fn public_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `FILE.sig`.
pub(crate) fn signature_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}

/// The gateway's store and identity, for the archive commands.
pub(crate) struct Gateway {
    pub(crate) config: pumpgw::gateway::Config,
    pub(crate) store: pumpgw::store::Store,
}

/// Opens the store named by a gateway config (creating it if needed).
pub(crate) fn open(config: &Path) -> Result<Gateway, (u8, anyhow::Error)> {
    let config = pumpgw::gateway::Config::load(config)
        .map_err(|e| (crate::EXIT_CONFIG, anyhow::Error::new(e)))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))
        .map_err(|e| (crate::EXIT_SOFTWARE, e))?;
    let store = pumpgw::store::Store::open(&pumpgw::store::Store::file_in(&config.data_dir))
        .map_err(crate::events::store_failure)?;
    Ok(Gateway { config, store })
}

impl Gateway {
    pub(crate) fn context(&self) -> pumpgw::store::Context {
        pumpgw::store::Context {
            gateway: self.config.gateway_id.clone(),
            pump: None,
            care_area: self.config.care_area.clone(),
            library_version: pumpgw::store::library::active(&self.store)
                .ok()
                .flatten()
                .map(|(v, _)| v),
        }
    }
}

/// Who is acting: `--by`, else the login name.
pub(crate) fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
}

/// `library import`: 0 verified and archived, 1 refused.
pub(crate) fn import(
    config: &Path,
    file: &Path,
    sig: &Path,
    by: Option<String>,
) -> Result<u8, (u8, anyhow::Error)> {
    let mut gw = open(config)?;
    let usage = |e: anyhow::Error| (crate::EXIT_USAGE, e);
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(usage)?;
    let signature = std::fs::read(sig)
        .with_context(|| format!("cannot read {}", sig.display()))
        .map_err(usage)?;
    let mut trusted = Vec::new();
    for k in &gw.config.trusted_keys {
        trusted.push(
            signature::read_public_key(k)
                .map_err(|e| (crate::EXIT_CONFIG, anyhow::Error::new(e)))?,
        );
    }
    let who = who(by);
    let context = gw.context();
    let trust = pumpgw::store::library::Trust {
        keys: &trusted,
        approvals: gw.config.approvals,
    };
    match pumpgw::store::library::import(&mut gw.store, &context, &bytes, &signature, trust, &who) {
        Ok(a) => {
            println!(
                "library {} version {} verified ({}) and archived; the active library is unchanged. Activate it with: pumpgwd library activate {} --config {}",
                a.library_id,
                a.version,
                a.signed.as_ref().map_or_else(
                    || format!("key {}", a.key_id),
                    pumpgw::library::signature::Signed::describe
                ),
                a.version,
                config.display()
            );
            print_change(&gw.store, a.version, "verified");
            Ok(0)
        }
        Err(e) => {
            let reason = e.to_string();
            if let pumpgw::store::library::LibraryError::Invalid(findings) = &e {
                for f in findings.iter().filter(|f| f.severity == Severity::Error) {
                    eprintln!("{f}");
                }
            }
            if let Err(log) =
                pumpgw::store::library::log_refusal(&mut gw.store, &context, &bytes, &reason, &who)
            {
                eprintln!("pumpgwd: warning: the refusal could not be logged: {log}");
            }
            eprintln!(
                "pumpgwd: {} refused: {reason}. The active library is unchanged.",
                file.display()
            );
            Ok(1)
        }
    }
}

/// `library activate`.
pub(crate) fn activate(
    config: &Path,
    version: u64,
    by: Option<String>,
    reason: &str,
) -> Result<u8, (u8, anyhow::Error)> {
    let mut gw = open(config)?;
    let context = gw.context();
    match pumpgw::store::library::activate(&mut gw.store, &context, version, &who(by), reason) {
        Ok(previous) => {
            println!(
                "version {version} is now the active library (it replaces {}); a running gateway pushes it to every pump.",
                previous.map_or_else(|| "none".to_owned(), |p| format!("version {p}"))
            );
            print_change(&gw.store, version, "active");
            Ok(0)
        }
        Err(e) => {
            eprintln!("pumpgwd: not activated: {e}");
            Ok(1)
        }
    }
}

/// What `version` changed against the library active before it, as the
/// audit trail kept it when it went `to` this state.
fn print_change(store: &pumpgw::store::Store, version: u64, to: &str) {
    let kept = pumpgw::store::library::audit(store)
        .ok()
        .and_then(|rows| {
            rows.into_iter()
                .rev()
                .find(|r| r.version == version && r.to == to)
        })
        .and_then(|r| r.diff)
        .and_then(|d| serde_json::from_str::<pumpgw::library::diff::Diff>(&d).ok());
    match kept {
        Some(d) => print!("Against the library active before:\n{}", d.text()),
        None => println!("No library was active before: nothing to compare with."),
    }
}

/// `library diff OLD NEW`.
pub(crate) fn diff(old: &Path, new: &Path, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let read = |p: &Path| {
        pumpgw::library::load(p)
            .map(|(l, _)| l)
            .map_err(|e| (crate::EXIT_USAGE, anyhow::Error::new(e)))
    };
    let d = pumpgw::library::diff::diff(&read(old)?, &read(new)?);
    if json {
        let out = serde_json::to_string_pretty(&d)
            .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?;
        println!("{out}");
    } else {
        print!("{}", d.text());
    }
    Ok(u8::from(!d.is_empty()))
}

/// `library export FILE --csv`.
pub(crate) fn export_csv(file: &Path, out: Option<&Path>) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (crate::EXIT_USAGE, e);
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(usage)?;
    let sheet = library::sheet::to_csv(&bytes).map_err(|e| usage(anyhow::Error::new(e)))?;
    match out {
        Some(path) => std::fs::write(path, &sheet)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(usage)?,
        None => print!("{sheet}"),
    }
    Ok(0)
}

/// `library import-csv FILE --out JSON`.
pub(crate) fn import_csv(file: &Path, out: &Path) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (crate::EXIT_USAGE, e);
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(usage)?;
    let json = match library::sheet::from_csv(&text) {
        Ok(json) => json,
        Err(e) => {
            eprintln!("pumpgwd: {}: {e}", file.display());
            return Ok(1);
        }
    };
    let checked = library::check(json.as_bytes());
    for f in &checked.findings {
        println!("{f}");
    }
    if !checked.is_clean() {
        eprintln!(
            "pumpgwd: {}: the library it makes has errors (above); nothing written",
            file.display()
        );
        return Ok(1);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .and_then(|mut f| f.write_all(json.as_bytes()))
        .with_context(|| format!("cannot write {} (it is never overwritten)", out.display()))
        .map_err(usage)?;
    println!(
        "{}: written from {}; lint without errors",
        out.display(),
        file.display()
    );
    Ok(0)
}

/// `library replay CANDIDATE --events FILE...`.
pub(crate) fn replay(
    candidate: &Path,
    events: &[PathBuf],
    json: bool,
) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (crate::EXIT_USAGE, e);
    let (library, _) =
        pumpgw::library::load(candidate).map_err(|e| (crate::EXIT_USAGE, anyhow::Error::new(e)))?;
    let mut records = Vec::new();
    for file in events {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))
            .map_err(usage)?;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            records.push(
                serde_json::from_str::<serde_json::Value>(line)
                    .with_context(|| format!("{}:{}: not a JSON record", file.display(), i + 1))
                    .map_err(usage)?,
            );
        }
    }
    let r = pumpgw::library::replay::replay(&records, &library);
    if json {
        let out = serde_json::to_string_pretty(&r)
            .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?;
        println!("{out}");
    } else {
        print!("{}", r.text());
    }
    Ok(if r.blocks_what_was_given() {
        2
    } else {
        u8::from(!r.changed.is_empty())
    })
}

/// `library list`.
pub(crate) fn list(config: &Path) -> Result<u8, (u8, anyhow::Error)> {
    let gw = open(config)?;
    let rows = pumpgw::store::library::list(&gw.store)
        .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    if rows.is_empty() {
        println!("no library imported yet: the gateway authorises nothing until one is active");
    }
    for a in rows {
        println!(
            "{:>6}  {:<10}  {}  {}  {}  {}",
            a.version,
            a.state,
            a.received_at,
            a.sha256.get(..16).unwrap_or(&a.sha256),
            a.library_id,
            signers(&a)
        );
    }
    Ok(0)
}

/// "proposed by A (key …), approved by B (key …)" for an archived row.
fn signers(a: &pumpgw::store::library::Archived) -> String {
    a.signed.as_ref().map_or_else(
        || format!("signed by key {}", a.key_id),
        pumpgw::library::signature::Signed::describe,
    )
}

/// `library show`: one version's facts and history; `--out` writes the
/// archived file (and its signature) byte for byte.
pub(crate) fn show(
    config: &Path,
    version: u64,
    out: Option<&Path>,
) -> Result<u8, (u8, anyhow::Error)> {
    let gw = open(config)?;
    let soft = |e: pumpgw::store::library::LibraryError| (1, anyhow::Error::new(e));
    let Some(a) = pumpgw::store::library::list(&gw.store)
        .map_err(soft)?
        .into_iter()
        .find(|a| a.version == version)
    else {
        return Err((
            1,
            anyhow::anyhow!("no library version {version} in the archive"),
        ));
    };
    println!(
        "library {} version {}: {}",
        a.library_id, a.version, a.state
    );
    println!("  SHA-256   {}", a.sha256);
    match &a.signed {
        Some(signed) => {
            for who in signed.all() {
                println!(
                    "  {:<8}  by {}{}",
                    who.role,
                    who,
                    who.signed_at
                        .as_deref()
                        .map_or_else(String::new, |t| format!(" at {t}"))
                );
            }
            if signed.format_version == 1 {
                println!("  (a format 1 signature: one signer, no approvals)");
            }
        }
        None => println!(
            "  signed by key {} (the archived signature no longer reads)",
            a.key_id
        ),
    }
    for row in pumpgw::store::library::audit(&gw.store)
        .map_err(soft)?
        .into_iter()
        .filter(|r| r.version == version)
    {
        println!(
            "  {}  {} -> {}  by {}: {}",
            row.at,
            row.from.as_deref().unwrap_or("-"),
            row.to,
            row.who,
            row.why
        );
    }
    if let Some(out) = out {
        let (file, sig) = pumpgw::store::library::file(&gw.store, version).map_err(soft)?;
        std::fs::write(out, file)
            .and_then(|()| std::fs::write(signature_path(out), sig))
            .with_context(|| format!("cannot write {}", out.display()))
            .map_err(|e| (crate::EXIT_SOFTWARE, e))?;
        println!(
            "  written to {} and {}",
            out.display(),
            signature_path(out).display()
        );
    }
    Ok(0)
}

/// `library audit`.
pub(crate) fn audit(config: &Path) -> Result<u8, (u8, anyhow::Error)> {
    let gw = open(config)?;
    for row in pumpgw::store::library::audit(&gw.store)
        .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?
    {
        println!(
            "{}  version {:>4}  {:<10} -> {:<10}  by {}: {}",
            row.at,
            row.version,
            row.from.as_deref().unwrap_or("-"),
            row.to,
            row.who,
            row.why
        );
        // What it changed against the library active then.
        if let Some(d) = row
            .diff
            .as_deref()
            .and_then(|d| serde_json::from_str::<pumpgw::library::diff::Diff>(d).ok())
        {
            for line in d.text().lines() {
                println!("      {line}");
            }
        }
    }
    Ok(0)
}

/// `library status`: per pump, the library it reported and whether it is
/// the active one. Exit 0 when every pump matches, 1 otherwise.
pub(crate) fn status(config: &Path, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let gw = open(config)?;
    let pumpgw::store::library::LibraryStatus { active, pumps } =
        pumpgw::store::library::pump_status(&gw.store)
            .map_err(|e| (crate::EXIT_SOFTWARE, anyhow::Error::new(e)))?;
    let all_match = !pumps.is_empty() && pumps.iter().all(|p| p.matches);
    if json {
        let out = serde_json::json!({
            "active_version": active.as_ref().map(|a| a.0),
            "active_sha256": active.as_ref().map(|a| a.1.clone()),
            "pumps": pumps,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| (crate::EXIT_SOFTWARE, e.into()))?
        );
    } else {
        match &active {
            Some((v, h)) => println!("active library: version {v} ({})", h.get(..16).unwrap_or(h)),
            None => println!("active library: NONE (the gateway authorises nothing)"),
        }
        if pumps.is_empty() {
            println!("no pump has connected yet");
        }
        for p in &pumps {
            println!(
                "{:<10} {:<8} {:<9} {:<17} since {}  {}",
                p.pump,
                p.link,
                p.version
                    .map_or_else(|| "none".to_owned(), |v| format!("v{v}")),
                p.hash.as_deref().map_or("-", |h| h.get(..16).unwrap_or(h)),
                p.since,
                if p.matches {
                    "matches"
                } else {
                    "DOES NOT MATCH: denied until it does"
                }
            );
        }
    }
    Ok(u8::from(!all_match))
}
