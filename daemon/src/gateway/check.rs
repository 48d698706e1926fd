//! Checks a gateway config without running it (`pumpgwd check-config`,
//! and `ExecStartPre=` in the systemd unit): everything the daemon would
//! refuse at start is an error; what it can live with (a pump unplugged, no
//! trusted key) is a warning. Each finding names the key it is about.

use std::path::Path;

use super::Config;
use crate::library::signature;
use crate::staff::Roster;
use crate::sync::identity::{self, IdentityError};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth knowing; the gateway starts.
    Note,
    /// The gateway starts, but something will not work until fixed.
    Warning,
    /// The gateway will not start.
    Error,
}

impl Level {
    /// The word printed before a finding.
    pub fn word(self) -> &'static str {
        match self {
            Level::Note => "ok",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        }
    }
}

/// One thing found, about one key of the config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// The key (`[mqtt] key_file`, `[[port]] pump-a`...).
    pub key: String,
    /// What, in words, with what to do.
    pub message: String,
}

/// Checks a loaded config's files and surroundings. (Syntax, unknown keys
/// and values were checked by [`Config::load`].)
pub fn check(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |level, key: &str, message: String| {
        out.push(Finding {
            level,
            key: key.to_owned(),
            message,
        });
    };
    data_dir(config, &mut add);
    if let Err(e) = config.runnable() {
        add(Level::Error, "[[port]]", e);
    }
    if config.trusted_keys.is_empty() {
        add(
            Level::Warning,
            "trusted_keys",
            "none: no drug library can be imported or received".to_owned(),
        );
    }
    for k in &config.trusted_keys {
        match signature::read_public_key(k) {
            Ok(key) => add(
                Level::Note,
                "trusted_keys",
                format!("{}: pharmacy key {}", k.display(), signature::key_id(&key)),
            ),
            Err(e) => add(Level::Error, "trusted_keys", e.to_string()),
        }
    }
    approvals(config, &mut add);
    for p in &config.ports {
        let key = format!("[[port]] {}", p.name.as_deref().unwrap_or("(unnamed)"));
        if p.path.exists() {
            add(Level::Note, &key, format!("{} is there", p.path.display()));
        } else {
            add(
                Level::Warning,
                &key,
                format!(
                    "{} does not exist now: the gateway keeps trying to open it (is the pump's cable in?)",
                    p.path.display()
                ),
            );
        }
    }
    if let Some(m) = &config.mqtt {
        match m
            .connection(&config.gateway_id)
            .and_then(|c| c.options(None).map(|_| ()))
        {
            Ok(()) => add(
                Level::Note,
                "[mqtt]",
                format!("{} (site {}): certificates and keys read", m.broker, m.site),
            ),
            Err(e) => add(Level::Error, "[mqtt]", crate::report::chain(&e)),
        }
        if let (Some(cert), Some(key)) = (&m.cert_file, &m.key_file) {
            certificate(cert, key, &mut add);
        }
    }
    if let Some(e) = &config.ehr {
        ehr(e, &mut add);
    }
    terminal(config, &mut add);
    out
}

/// The EHR listener and documentation out: their TLS files read as the
/// start reads them (a fault stops the start), or a warning that orders
/// or documentation cross the network in the clear.
fn ehr(e: &super::config::EhrSettings, add: &mut impl FnMut(Level, &str, String)) {
    if let Some(to) = e.send_to {
        match e.send_tls() {
            Some(files) => match crate::sync::settings::client_config(&files) {
                Ok(_) => add(
                    Level::Note,
                    "[ehr] send_to",
                    format!("{to}: TLS, the EHR's certificate checked against its CA"),
                ),
                Err(err) => add(Level::Error, "[ehr] send_to", crate::report::chain(&err)),
            },
            None if to.ip().is_loopback() => add(
                Level::Note,
                "[ehr] send_to",
                format!("{to}: plain MLLP on loopback"),
            ),
            None => add(
                Level::Warning,
                "[ehr] send_to",
                format!("{to}: plain MLLP, documentation in the clear; set send_ca_file for TLS"),
            ),
        }
    }
    match e.tls() {
        Some((cert, key, ca)) => match crate::ehr::tls::acceptor(cert, key, ca) {
            Ok(_) => add(
                Level::Note,
                "[ehr]",
                format!(
                    "{}: TLS with {}; EHR client certificates signed by {}",
                    e.listen,
                    cert.display(),
                    ca.display()
                ),
            ),
            Err(err) => add(Level::Error, "[ehr]", crate::report::chain(&err)),
        },
        None if e.listen.ip().is_loopback() => add(
            Level::Note,
            "[ehr]",
            format!("{}: plain MLLP on loopback", e.listen),
        ),
        None => add(
            Level::Warning,
            "[ehr]",
            format!(
                "{}: plain MLLP, orders and answers in the clear; set cert_file, key_file and client_ca_file for TLS",
                e.listen
            ),
        ),
    }
}

/// The gateway's certificate: its key (an error: the config is wrong), its
/// dates (a warning: time passes, clocks drift) and a warning a month before
/// it runs out (the broker refuses an expired one).
fn certificate(cert: &Path, key: &Path, add: &mut impl FnMut(Level, &str, String)) {
    let now = time::OffsetDateTime::now_utc();
    match identity::read(cert, key, now) {
        Ok(id) if id.days_left(now) < identity::RENEW_WITHIN_DAYS => add(
            Level::Warning,
            "[mqtt] cert_file",
            format!(
                "{} expires on {} ({} days): ask the PKI team for the next one now",
                cert.display(),
                identity::date(id.not_after),
                id.days_left(now)
            ),
        ),
        Ok(id) => add(
            Level::Note,
            "[mqtt] cert_file",
            format!(
                "{} for {}, valid until {}, SHA-256 {}",
                cert.display(),
                id.subject,
                identity::date(id.not_after),
                id.fingerprint
            ),
        ),
        // Out of its dates (or the board's clock is wrong after a boot):
        // the broker will refuse it, but the bed must keep its gateway.
        // MQTT is not needed to authorise or log, so the start goes on.
        Err(e @ (IdentityError::Expired { .. } | IdentityError::NotYetValid { .. })) => add(
            Level::Warning,
            "[mqtt] cert_file",
            format!(
                "{}; the gateway starts and works without the broker, its log waits",
                crate::report::chain(&e)
            ),
        ),
        Err(e) => add(Level::Error, "[mqtt] cert_file", crate::report::chain(&e)),
    }
}

fn data_dir(config: &Config, add: &mut impl FnMut(Level, &str, String)) {
    let dir = &config.data_dir;
    if dir.is_dir() {
        add(
            Level::Note,
            "data_dir",
            format!("{} is there", dir.display()),
        );
    } else if dir.exists() {
        add(
            Level::Error,
            "data_dir",
            format!("{} is not a folder", dir.display()),
        );
    } else {
        add(
            Level::Warning,
            "data_dir",
            format!(
                "{} does not exist yet: the daemon makes it (systemd's StateDirectory= does under the unit)",
                dir.display()
            ),
        );
    }
}

fn terminal(config: &Config, add: &mut impl FnMut(Level, &str, String)) {
    let t = &config.terminal;
    if t.socket.is_none() {
        add(
            Level::Warning,
            "[terminal] socket",
            "no bedside terminal: every programme that needs a person is denied".to_owned(),
        );
        return;
    }
    if let Some(group) = &t.socket_group {
        match nix::unistd::Group::from_name(group) {
            Ok(Some(_)) => {}
            Ok(None) => add(
                Level::Error,
                "[terminal] socket_group",
                format!("no group named {group} on this machine"),
            ),
            Err(e) => add(
                Level::Error,
                "[terminal] socket_group",
                format!("{group}: {e}"),
            ),
        }
    }
    let staff = config.staff_file();
    staff_file(&staff, add);
}

fn staff_file(path: &Path, add: &mut impl FnMut(Level, &str, String)) {
    if !path.exists() {
        add(
            Level::Warning,
            "[terminal] staff_file",
            format!(
                "{} does not exist: nobody can confirm at the terminal (pumpgwd staff add)",
                path.display()
            ),
        );
        return;
    }
    match Roster::load(path) {
        Ok(r) if r.staff.is_empty() => add(
            Level::Warning,
            "[terminal] staff_file",
            format!("{}: no staff: nobody can confirm", path.display()),
        ),
        Ok(r) => add(
            Level::Note,
            "[terminal] staff_file",
            format!("{}: {} staff", path.display(), r.staff.len()),
        ),
        Err(e) => add(Level::Error, "[terminal] staff_file", e.to_string()),
    }
}
/// Whether the keys trusted can ever make up a proposal and `approvals`
/// approvals (each by another key).
fn approvals(config: &Config, add: &mut impl FnMut(Level, &str, String)) {
    let needed = usize::try_from(config.approvals)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let keys = config.trusted_keys.len();
    if config.approvals == 0 {
        add(
            Level::Warning,
            "approvals",
            "0: a library proposed by one pharmacist is activated without a second one's approval"
                .to_owned(),
        );
    } else if !config.trusted_keys.is_empty() && keys < needed {
        add(
            Level::Warning,
            "approvals",
            format!(
                "{}: a library needs {needed} signatures by different trusted keys (a proposal and {} approval(s)), but only {keys} key(s) are trusted; no new library can be imported",
                config.approvals, config.approvals
            ),
        );
    } else {
        add(
            Level::Note,
            "approvals",
            format!(
                "{}: a library needs a proposal and {} approval(s), by different trusted keys",
                config.approvals, config.approvals
            ),
        );
    }
}
