//! `pumpgwd provision`: from a biomedical engineer's answers to a plan —
//! the config text, the files to copy beside it, the staff file to import —
//! and every check on it, made before anything is written. The binary asks
//! the questions, probes the broker, prints the plan and carries it out.
//!
//! Certificates, keys and pharmacy keys are copied next to the config
//! (`mqtt/`, `trusted/`), so a gateway does not depend on a USB stick that
//! leaves with the engineer, and its key gets mode 0600 whatever the
//! stick's file system said.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::check::{Finding, Level};
use super::ports::{self, Presence};
use super::{Config, config::ConfigError};
use crate::library::signature;
use crate::staff::Roster;
use crate::sync::identity::{self, Identity};
use crate::sync::settings::{TlsFiles, client_config};

/// Where the terminal socket goes by default (systemd's `RuntimeDirectory=`).
pub const DEFAULT_SOCKET: &str = "/run/pumpgw/terminal.sock";
/// The terminal's group by default (made by the sysusers.d file).
pub const DEFAULT_SOCKET_GROUP: &str = "pumpgw-terminal";

/// What the engineer answered (or gave as flags).
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// Where the config goes.
    pub config: PathBuf,
    /// This gateway's id.
    pub gateway_id: String,
    /// The bed's care area (an id in the drug library).
    pub care_area: String,
    /// One per pump.
    pub ports: Vec<PortAnswer>,
    /// The broker; none: no MQTT sync.
    pub mqtt: Option<MqttAnswers>,
    /// Pharmacy public keys to trust.
    pub trusted_keys: Vec<PathBuf>,
    /// Approvals a library needs besides its proposal.
    pub approvals: u32,
    /// Where the gateway keeps its state.
    pub data_dir: PathBuf,
    /// The terminal socket; none: no bedside terminal.
    pub terminal_socket: Option<PathBuf>,
    /// The socket's group.
    pub socket_group: Option<String>,
    /// A staff file to import.
    pub staff: Option<PathBuf>,
    /// Replace an existing config, staff file or copied file (the old one
    /// is kept as `.bak`).
    pub replace: bool,
}

/// One pump's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAnswer {
    /// Its name in logs and status (default `pump-a`, `pump-b`...).
    pub name: Option<String>,
    /// The device.
    pub path: PathBuf,
}

impl std::str::FromStr for PortAnswer {
    type Err = String;

    /// `PATH` or `NAME=PATH`.
    fn from_str(s: &str) -> Result<PortAnswer, String> {
        let (name, path) = match s.split_once('=') {
            Some((n, p)) => (Some(n.trim().to_owned()), p.trim()),
            None => (None, s.trim()),
        };
        if path.is_empty() || name.as_deref() == Some("") {
            return Err(format!("{s:?}: give PATH or NAME=PATH"));
        }
        Ok(PortAnswer {
            name,
            path: PathBuf::from(path),
        })
    }
}

/// The broker part.
#[derive(Debug, Clone, Default)]
pub struct MqttAnswers {
    /// `mqtt://` or `mqtts://` address.
    pub broker: String,
    /// The site segment of every topic.
    pub site: String,
    /// The CA that signs the broker's certificate.
    pub ca: Option<PathBuf>,
    /// This gateway's certificate.
    pub cert: Option<PathBuf>,
    /// Its key.
    pub key: Option<PathBuf>,
}

/// The broker answers with the copied files' places.
type MqttFiles<'a> = (
    &'a MqttAnswers,
    Option<PathBuf>,
    Option<PathBuf>,
    Option<PathBuf>,
);

/// A file copied beside the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// From.
    pub from: PathBuf,
    /// To.
    pub to: PathBuf,
    /// A secret: written mode 0600.
    pub secret: bool,
    /// `to` exists with other content (kept as `.bak` when replaced).
    pub replaces: bool,
}

/// Everything provisioning will write, and what was found on the way.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config file.
    pub config_path: PathBuf,
    /// Its text.
    pub text: String,
    /// The config as the daemon will read it (none: it does not parse,
    /// and there is an error finding saying why).
    pub config: Option<Config>,
    /// Files to copy.
    pub copies: Vec<Copy>,
    /// The staff to import, and from where.
    pub staff: Option<(PathBuf, Roster)>,
    /// The gateway's certificate.
    pub identity: Option<Identity>,
    /// Every check's result, each with the setting it is about.
    pub findings: Vec<Finding>,
}

impl Plan {
    /// How many findings stop provisioning.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .count()
    }

    fn add(&mut self, level: Level, key: &str, message: String) {
        self.findings.push(Finding {
            level,
            key: key.to_owned(),
            message,
        });
    }
}

/// The port names used when none is given.
pub fn default_port_name(index: usize) -> String {
    let letter = u8::try_from(index % 26).expect("below 26");
    let mut name = format!("pump-{}", char::from(b'a' + letter));
    if index >= 26 {
        let _ = write!(name, "{}", index / 26);
    }
    name
}

/// Makes the plan and checks everything that can be checked without the
/// network. Nothing is written.
pub fn plan(answers: &Answers, now: OffsetDateTime) -> Plan {
    let a = &absolute(answers);
    let config_path = a.config.clone();
    let dir = config_path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut p = Plan {
        config_path: config_path.clone(),
        text: String::new(),
        config: None,
        copies: Vec::new(),
        staff: None,
        identity: None,
        findings: Vec::new(),
    };
    if config_path.exists() && !a.replace {
        p.add(
            Level::Error,
            "config",
            format!(
                "{} exists: --force replaces it (the old one is kept as {}.bak-TIME)",
                config_path.display(),
                config_path.display()
            ),
        );
    }

    let trusted: Vec<PathBuf> = a
        .trusted_keys
        .iter()
        .map(|k| {
            let to = dir.join("trusted").join(k.file_name().unwrap_or_default());
            p.copy(k, &to, false, a.replace, "trusted_keys");
            to
        })
        .collect();
    let mqtt = a.mqtt.as_ref().map(|m| {
        let mut place = |from: &Option<PathBuf>, name: &str, secret: bool, key: &str| {
            from.as_ref().map(|f| {
                let to = dir.join("mqtt").join(name);
                p.copy(f, &to, secret, a.replace, key);
                to
            })
        };
        let id = &a.gateway_id;
        let ca = place(&m.ca, "ca.pem", false, "[mqtt] ca_file");
        let cert = place(&m.cert, &format!("{id}.pem"), false, "[mqtt] cert_file");
        let key = place(&m.key, &format!("{id}.key"), true, "[mqtt] key_file");
        (m, ca, cert, key)
    });

    p.text = render(a, &config_path, &trusted, mqtt.as_ref(), now);
    match Config::parse(&p.text, &config_path.display().to_string()) {
        Ok(c) => p.config = Some(c),
        Err(e) => {
            let message = match e {
                ConfigError::Invalid { message, .. } | ConfigError::At { message, .. } => message,
                ConfigError::Io { .. } => e.to_string(),
            };
            p.add(Level::Error, "config", message);
        }
    }

    check_ports(&mut p, a);
    check_keys(&mut p, a);
    if let Some((m, ..)) = &mqtt {
        check_tls(&mut p, m, now);
    }
    check_data_and_terminal(&mut p, a);
    check_staff(&mut p, a);
    check_writable(&mut p, a);
    p
}

/// Every folder something will be written in can be written by whoever
/// runs this: found now, not halfway through writing.
fn check_writable(p: &mut Plan, a: &Answers) {
    let mut targets: Vec<(&str, PathBuf)> = vec![("config", p.config_path.clone())];
    targets.extend(p.copies.iter().map(|c| ("config", c.to.clone())));
    targets.push(("data_dir", a.data_dir.join("pumpgw.sqlite")));
    let mut said = std::collections::BTreeSet::new();
    for (key, file) in targets {
        // The nearest folder that exists is where the first write lands.
        let mut dir = file.parent().map(Path::to_path_buf);
        while let Some(d) = dir.clone() {
            if d.exists() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        let Some(dir) = dir else { continue };
        if nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_err()
            && said.insert(dir.clone())
        {
            p.add(
                Level::Error,
                key,
                format!(
                    "cannot write in {} as this user (run it with sudo?)",
                    dir.display()
                ),
            );
        }
    }
}

impl Plan {
    fn copy(&mut self, from: &Path, to: &Path, secret: bool, replace: bool, key: &str) {
        if !from.is_file() {
            self.add(
                Level::Error,
                key,
                format!("{}: no such file", from.display()),
            );
            return;
        }
        if from.canonicalize().ok() == to.canonicalize().ok() {
            // Already in place (provisioning again).
            return;
        }
        if let Some(other) = self.copies.iter().find(|c| c.to == to) {
            let message = format!(
                "{} and {} would both be copied to {}: rename one of them",
                other.from.display(),
                from.display(),
                to.display()
            );
            self.add(Level::Error, key, message);
            return;
        }
        let replaces = match (std::fs::read(from), std::fs::read(to)) {
            (Ok(new), Ok(old)) if new == old => return,
            (_, Ok(_)) => true,
            _ => false,
        };
        if replaces && !replace {
            self.add(
                Level::Error,
                key,
                format!(
                    "{} exists with other content: --force replaces it (the old one is kept as .bak-TIME)",
                    to.display()
                ),
            );
        }
        self.copies.push(Copy {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            secret,
            replaces,
        });
    }
}

/// The config file's text.
fn render(
    a: &Answers,
    config_path: &Path,
    trusted: &[PathBuf],
    mqtt: Option<&MqttFiles<'_>>,
    now: OffsetDateTime,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# pumpgw gateway config, written by `pumpgwd provision` on {}.",
        identity::date(now)
    );
    let _ = writeln!(
        t,
        "# Every key: docs/configuration.md. After an edit, run\n#   pumpgwd check-config {}\n",
        quote_path(config_path)
    );
    let _ = writeln!(t, "gateway_id = {}", quote(&a.gateway_id));
    let _ = writeln!(t, "care_area = {}", quote(&a.care_area));
    let _ = writeln!(t, "data_dir = {}", quote_path(&a.data_dir));
    let keys: Vec<String> = trusted.iter().map(|k| quote_path(k)).collect();
    let _ = writeln!(t, "trusted_keys = [{}]", keys.join(", "));
    let _ = writeln!(
        t,
        "# Signatures a library needs besides its proposal, each by another trusted key.\napprovals = {}",
        a.approvals
    );
    if let Some(socket) = &a.terminal_socket {
        let _ = writeln!(t, "\n[terminal]\nsocket = {}", quote_path(socket));
        if let Some(g) = &a.socket_group {
            let _ = writeln!(t, "socket_group = {}", quote(g));
        }
    }
    if let Some((m, ca, cert, key)) = mqtt {
        let _ = writeln!(t, "\n[mqtt]\nbroker = {}", quote(&m.broker));
        let _ = writeln!(t, "site = {}", quote(&m.site));
        for (k, v) in [("ca_file", ca), ("cert_file", cert), ("key_file", key)] {
            if let Some(v) = v {
                let _ = writeln!(t, "{k} = {}", quote_path(v));
            }
        }
    }
    for (i, port) in a.ports.iter().enumerate() {
        let name = port.name.clone().unwrap_or_else(|| default_port_name(i));
        let _ = writeln!(
            t,
            "\n[[port]]\nname = {}\npath = {}",
            quote(&name),
            quote_path(&port.path)
        );
    }
    t
}

fn check_ports(p: &mut Plan, a: &Answers) {
    if a.ports.is_empty() {
        return; // The config check said so.
    }
    let links = ports::by_id_links(Path::new(ports::BY_ID));
    let mut devices: Vec<(PathBuf, String)> = Vec::new();
    for (i, port) in a.ports.iter().enumerate() {
        let name = port.name.clone().unwrap_or_else(|| default_port_name(i));
        let key = format!("[[port]] {name}");
        // Two names for one adapter (ttyUSB0 and its by-id link): two
        // sessions fighting over one pump.
        if let Ok(device) = port.path.canonicalize() {
            if let Some((_, first)) = devices.iter().find(|(d, _)| *d == device) {
                p.add(
                    Level::Error,
                    &key,
                    format!(
                        "{} is the same device as {first}'s ({})",
                        port.path.display(),
                        device.display()
                    ),
                );
                continue;
            }
            devices.push((device, name.clone()));
        }
        match ports::presence(&port.path) {
            Presence::Missing => p.add(
                Level::Error,
                &key,
                format!(
                    "{} does not exist: plug the pump's adapter in, or pick one that `pumpgwd ports` lists",
                    port.path.display()
                ),
            ),
            Presence::NotADevice => p.add(
                Level::Error,
                &key,
                format!(
                    "{} is not a serial device (a file or folder)",
                    port.path.display()
                ),
            ),
            present @ Presence::Device { .. } => {
                let stable = port
                    .path
                    .canonicalize()
                    .ok()
                    .and_then(|c| links.get(&c))
                    .and_then(|l| l.first())
                    .filter(|_| !port.path.starts_with(ports::BY_ID));
                match stable {
                    Some(l) => p.add(
                        Level::Warning,
                        &key,
                        format!(
                            "{} ({present}) may change name when adapters are replugged: {} follows this adapter",
                            port.path.display(),
                            l.display()
                        ),
                    ),
                    None => p.add(
                        Level::Note,
                        &key,
                        format!("{} ({present})", port.path.display()),
                    ),
                }
            }
        }
    }
}

fn check_keys(p: &mut Plan, a: &Answers) {
    if a.trusted_keys.is_empty() {
        p.add(
            Level::Warning,
            "trusted_keys",
            "none: no drug library can be imported or received until one is added".to_owned(),
        );
    }
    for k in &a.trusted_keys {
        if !k.is_file() {
            continue; // Said by the copy.
        }
        match signature::read_public_key(k) {
            Ok(key) => p.add(
                Level::Note,
                "trusted_keys",
                format!("{}: pharmacy key {}", k.display(), signature::key_id(&key)),
            ),
            Err(e) => p.add(Level::Error, "trusted_keys", e.to_string()),
        }
    }
    let needed = usize::try_from(a.approvals)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    if !a.trusted_keys.is_empty() && a.trusted_keys.len() < needed {
        p.add(
            Level::Warning,
            "approvals",
            format!(
                "{}: a library needs {needed} signatures by different trusted keys, but only {} key(s) are given; no new library can be imported",
                a.approvals,
                a.trusted_keys.len()
            ),
        );
    }
}

fn check_tls(p: &mut Plan, m: &MqttAnswers, now: OffsetDateTime) {
    if let Some(ca) = m.ca.as_ref().filter(|c| c.is_file()) {
        let files = TlsFiles {
            ca: Some(ca.clone()),
            ..TlsFiles::default()
        };
        match client_config(&files) {
            Ok(_) => p.add(
                Level::Note,
                "[mqtt] ca_file",
                format!("{}: CA certificates read", ca.display()),
            ),
            Err(e) => p.add(Level::Error, "[mqtt] ca_file", crate::report::chain(&e)),
        }
    }
    match (&m.cert, &m.key) {
        (Some(cert), Some(key)) if cert.is_file() && key.is_file() => {
            match identity::read(cert, key, now) {
                Ok(id) => {
                    let days = id.days_left(now);
                    let (level, soon) = if days < identity::RENEW_WITHIN_DAYS {
                        (
                            Level::Warning,
                            format!(": {days} days left, ask the PKI team for the next one now"),
                        )
                    } else {
                        (Level::Note, String::new())
                    };
                    p.add(
                        level,
                        "[mqtt] cert_file",
                        format!(
                            "{} for {}, key matches, valid until {}{soon}",
                            cert.display(),
                            id.subject,
                            identity::date(id.not_after)
                        ),
                    );
                    p.identity = Some(id);
                }
                Err(e) => p.add(Level::Error, "[mqtt] cert_file", crate::report::chain(&e)),
            }
        }
        (None, None) if m.broker.starts_with("mqtts://") => p.add(
            Level::Warning,
            "[mqtt] cert_file",
            "no client certificate: the broker must admit this gateway some other way".to_owned(),
        ),
        _ => {}
    }
}

fn check_data_and_terminal(p: &mut Plan, a: &Answers) {
    let dir = &a.data_dir;
    if dir.exists() && !dir.is_dir() {
        p.add(
            Level::Error,
            "data_dir",
            format!("{} is not a folder", dir.display()),
        );
    } else if crate::store::Store::file_in(dir).exists() {
        // Opened now (read-only, checked), not first when importing staff.
        match crate::store::Store::open_read_only(&crate::store::Store::file_in(dir)) {
            Ok(_) => p.add(
                Level::Note,
                "data_dir",
                format!(
                    "{}: the event log there is kept and carries on",
                    dir.display()
                ),
            ),
            Err(e) => p.add(Level::Error, "data_dir", crate::report::chain(&e)),
        }
    }
    if a.terminal_socket.is_none() {
        p.add(
            Level::Warning,
            "[terminal] socket",
            "no bedside terminal: every programme that needs a person is denied".to_owned(),
        );
    }
    if let Some(group) = &a.socket_group
        && !matches!(nix::unistd::Group::from_name(group), Ok(Some(_)))
    {
        p.add(
            Level::Error,
            "[terminal] socket_group",
            format!("no group named {group} on this machine"),
        );
    }
}

fn check_staff(p: &mut Plan, a: &Answers) {
    let dest = p.config.as_ref().map(Config::staff_file);
    let Some(from) = &a.staff else {
        match dest.as_ref().map(|d| Roster::load(d)) {
            Some(Ok(r)) if !r.staff.is_empty() => p.add(
                Level::Note,
                "[terminal] staff_file",
                format!("{} staff already on this gateway, kept", r.staff.len()),
            ),
            _ => p.add(
                Level::Warning,
                "[terminal] staff_file",
                "no staff: nobody can confirm at the terminal until `pumpgwd staff add`".to_owned(),
            ),
        }
        return;
    };
    match Roster::load(from) {
        Ok(r) if r.staff.is_empty() => p.add(
            Level::Error,
            "[terminal] staff_file",
            format!("{}: no staff in it", from.display()),
        ),
        Ok(r) => {
            if let Some(d) = &dest
                && d.exists()
                && from.canonicalize().ok() != d.canonicalize().ok()
                && !a.replace
            {
                p.add(
                    Level::Error,
                    "[terminal] staff_file",
                    format!(
                        "{} exists: --force replaces it (the old one is kept as .bak-TIME; each change is logged)",
                        d.display()
                    ),
                );
            }
            p.add(
                Level::Note,
                "[terminal] staff_file",
                format!("{}: {} staff to import", from.display(), r.staff.len()),
            );
            p.staff = Some((from.clone(), r));
        }
        Err(e) => p.add(Level::Error, "[terminal] staff_file", e.to_string()),
    }
}

/// The answers with every path made absolute against the working folder:
/// the daemon reads relative paths against the config's folder, which is
/// not where the engineer typed them.
fn absolute(a: &Answers) -> Answers {
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let opt = |p: &Option<PathBuf>| p.as_ref().map(abs);
    Answers {
        config: abs(&a.config),
        ports: a
            .ports
            .iter()
            .map(|p| PortAnswer {
                name: p.name.clone(),
                path: abs(&p.path),
            })
            .collect(),
        mqtt: a.mqtt.as_ref().map(|m| MqttAnswers {
            ca: opt(&m.ca),
            cert: opt(&m.cert),
            key: opt(&m.key),
            ..m.clone()
        }),
        trusted_keys: a.trusted_keys.iter().map(abs).collect(),
        data_dir: abs(&a.data_dir),
        terminal_socket: opt(&a.terminal_socket),
        staff: opt(&a.staff),
        ..a.clone()
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_path(p: &Path) -> String {
    quote(&p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_survive_toml() {
        for s in [
            "plain",
            "with \"quotes\"",
            "back\\slash",
            "tab\there",
            "bell\u{7}",
        ] {
            let text = format!("v = {}", quote(s));
            let v: toml::Table = toml::from_str(&text).unwrap();
            assert_eq!(v["v"].as_str(), Some(s), "{text}");
        }
    }

    #[test]
    fn ports_read_path_or_name_and_path() {
        let p: PortAnswer = "/dev/ttyUSB0".parse().unwrap();
        assert_eq!(p.name, None);
        let p: PortAnswer = "left=/dev/serial/by-id/x".parse().unwrap();
        assert_eq!(p.name.as_deref(), Some("left"));
        assert_eq!(p.path, PathBuf::from("/dev/serial/by-id/x"));
        assert!("=/dev/x".parse::<PortAnswer>().is_err());
        assert!("a=".parse::<PortAnswer>().is_err());
    }

    #[test]
    fn default_names_go_a_to_z_then_on() {
        assert_eq!(default_port_name(0), "pump-a");
        assert_eq!(default_port_name(25), "pump-z");
        assert_eq!(default_port_name(26), "pump-a1");
    }

    #[test]
    fn a_good_plan_parses_as_the_daemon_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = Answers {
            config: dir.path().join("etc/gateway.toml"),
            gateway_id: "ward7-bed12".into(),
            care_area: "adult-icu".into(),
            ports: vec!["/dev/null".parse().unwrap()],
            data_dir: dir.path().join("state"),
            terminal_socket: Some(dir.path().join("run/terminal.sock")),
            ..Answers::default()
        };
        let p = plan(&a, OffsetDateTime::now_utc());
        assert_eq!(p.errors(), 0, "{:?}", p.findings);
        let c = p.config.unwrap();
        assert_eq!(c.ports[0].display_name(), "pump-a");
        assert_eq!(c.data_dir, dir.path().join("state"));
        assert!(c.mqtt.is_none());
        assert!(
            p.findings
                .iter()
                .any(|f| f.key == "trusted_keys" && f.level == Level::Warning)
        );
    }
}
