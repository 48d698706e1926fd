//! The gateway config file (TOML): what `pumpgwd run --config FILE` reads.
//!
//! Every key is documented in `docs/configuration.md`. Unknown keys and bad
//! values are refused with the file, line and column; relative paths are
//! taken from the config file's folder.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::link::Timing;
use crate::pump::{Backoff, DriverKind};

/// The whole config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This gateway's id (letters, digits, `-`, `_`, `.`).
    pub gateway_id: String,
    /// The care area of the bed (an id in the drug library).
    pub care_area: String,
    /// Where the gateway keeps its state.
    pub data_dir: PathBuf,
    /// Pharmacy public keys (files from `library keygen`) whose signatures
    /// this gateway accepts.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// How many approvals by other trusted keys (other people) a library
    /// needs besides its proposal before this gateway activates it; 0
    /// accepts a proposal alone, and format 1 single signatures.
    #[serde(default = "default_approvals")]
    pub approvals: u32,
    /// Link timers.
    #[serde(default)]
    pub link: LinkSettings,
    /// Authorisations.
    #[serde(default)]
    pub authorisation: AuthorisationSettings,
    /// Serial ports, one pump each.
    #[serde(rename = "port", default)]
    pub ports: Vec<PortConfig>,
    /// The MQTT broker (no section: no MQTT).
    #[serde(default)]
    pub mqtt: Option<crate::sync::MqttSettings>,
    /// The bedside terminal: staff and PINs.
    #[serde(default)]
    pub terminal: TerminalSettings,
    /// The hospital's EHR: infusion orders in (IHE PCD-03 over MLLP); no
    /// section, no listener.
    #[serde(default)]
    pub ehr: Option<EhrSettings>,
    /// A practice gateway, for training: no patient. Its data folder is
    /// marked for good, every record it logs says `"practice":true`, and
    /// its terminals say PRACTICE.
    #[serde(default)]
    pub practice: bool,
}

/// `[ehr]`: where the EHR sends infusion orders (IHE PCD-03, `RGV^O15`,
/// over MLLP on TCP; `docs/interop.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EhrSettings {
    /// The address and port to listen on (`"0.0.0.0:2575"`).
    pub listen: std::net::SocketAddr,
    /// The longest message taken, in bytes (1 KiB to 16 MiB).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// TLS: the gateway's certificate chain (PEM). With it (and the two
    /// below) the listener speaks only TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// TLS: the gateway's private key (PEM, not readable by others).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// TLS: the CA that signs the EHR's client certificates; a connection
    /// without a certificate it signed is refused at the handshake.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Documentation out: the EHR's MLLP receiver for PCD-10 and PCD-01
    /// (none: nothing is sent).
    #[serde(default)]
    pub send_to: Option<std::net::SocketAddr>,
    /// How long the EHR has to acknowledge a message, in seconds (1-300).
    #[serde(default = "default_ack_timeout_s")]
    pub ack_timeout_s: u64,
    /// TLS to `send_to`: the CA that signs the EHR's certificate (none:
    /// plain TCP).
    #[serde(default)]
    pub send_ca_file: Option<PathBuf>,
    /// The gateway's client certificate for `send_to` (PEM), when the EHR
    /// asks for one; with `send_key_file`.
    #[serde(default)]
    pub send_cert_file: Option<PathBuf>,
    /// Its private key (PEM, not readable by others).
    #[serde(default)]
    pub send_key_file: Option<PathBuf>,
    /// How often each online pump's status goes as PCD-01, in seconds
    /// (0: only with each delivery event; else 10 to 3600).
    #[serde(default = "default_status_every_s")]
    pub status_every_s: u64,
}

fn default_status_every_s() -> u64 {
    60
}

fn default_ack_timeout_s() -> u64 {
    10
}

impl EhrSettings {
    fn validate(&self) -> Result<(), String> {
        if !(1 << 10..=16 << 20).contains(&self.max_message_bytes) {
            return Err(format!(
                "[ehr] max_message_bytes {} is not between 1024 and 16777216",
                self.max_message_bytes
            ));
        }
        if self.status_every_s != 0 && !(10..=3600).contains(&self.status_every_s) {
            return Err(format!(
                "[ehr] status_every_s {} is neither 0 (off) nor between 10 and 3600",
                self.status_every_s
            ));
        }
        if self.send_cert_file.is_some() != self.send_key_file.is_some() {
            return Err("[ehr] send_cert_file and send_key_file go together".to_owned());
        }
        if self.send_cert_file.is_some() && self.send_ca_file.is_none() {
            return Err(
                "[ehr] a client certificate for send_to needs TLS: set send_ca_file".to_owned(),
            );
        }
        if !(1..=300).contains(&self.ack_timeout_s) {
            return Err(format!(
                "[ehr] ack_timeout_s {} is not between 1 and 300",
                self.ack_timeout_s
            ));
        }
        let given = [&self.cert_file, &self.key_file, &self.client_ca_file]
            .iter()
            .filter(|f| f.is_some())
            .count();
        if given != 0 && given != 3 {
            return Err(
                "[ehr] TLS needs all of cert_file, key_file and client_ca_file (the EHR must present a client certificate)".to_owned(),
            );
        }
        Ok(())
    }

    /// TLS to `send_to`, when configured: trust, and the client identity.
    pub fn send_tls(&self) -> Option<crate::sync::settings::TlsFiles> {
        Some(crate::sync::settings::TlsFiles {
            ca: Some(self.send_ca_file.clone()?),
            cert: self.send_cert_file.clone(),
            key: self.send_key_file.clone(),
        })
    }

    /// The three TLS files, when TLS is configured.
    pub fn tls(&self) -> Option<(&Path, &Path, &Path)> {
        Some((
            self.cert_file.as_deref()?,
            self.key_file.as_deref()?,
            self.client_ca_file.as_deref()?,
        ))
    }
}

/// Two-person approval unless a gateway's config says otherwise.
const fn default_approvals() -> u32 {
    1
}

fn default_max_message_bytes() -> usize {
    1 << 20
}

/// `[terminal]`: who may sign at the bedside terminal, and how PINs are
/// guarded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalSettings {
    /// The Unix socket terminals connect to (none: no terminal service).
    pub socket: Option<PathBuf>,
    /// The group given the socket (mode 0660); its members may connect.
    pub socket_group: Option<String>,
    /// Terminals served at once.
    pub max_terminals: u8,
    /// The staff file (default `staff.json` in `data_dir`).
    pub staff_file: Option<PathBuf>,
    /// Wrong PINs in a row that lock a person out.
    pub pin_attempts: u32,
    /// Seconds a lockout lasts.
    pub lockout_s: u32,
}

impl Default for TerminalSettings {
    fn default() -> Self {
        let l = crate::staff::Lockout::default();
        TerminalSettings {
            socket: None,
            socket_group: None,
            max_terminals: 4,
            staff_file: None,
            pin_attempts: l.after,
            lockout_s: u32::try_from(l.duration.whole_seconds()).expect("minutes fit"),
        }
    }
}

impl TerminalSettings {
    /// The lockout rule.
    pub fn lockout(&self) -> crate::staff::Lockout {
        crate::staff::Lockout {
            after: self.pin_attempts,
            duration: time::Duration::seconds(self.lockout_s.into()),
        }
    }
}

impl Config {
    /// Where the staff file is.
    pub fn staff_file(&self) -> PathBuf {
        self.terminal
            .staff_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("staff.json"))
    }
}

/// `[link]`: timers of the pump link.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkSettings {
    /// Resend an unacknowledged frame after this many milliseconds.
    pub ack_timeout_ms: u32,
    /// Resends before the link is down.
    pub max_retries: u8,
    /// Send a heartbeat after this much quiet.
    pub heartbeat_ms: u32,
    /// A pump silent this long is offline.
    pub supervision_ms: u32,
    /// First delay before reopening a lost port.
    pub reconnect_initial_ms: u32,
    /// Longest delay before reopening a lost port.
    pub reconnect_max_ms: u32,
    /// Frames each side may have unacknowledged with a pump that speaks
    /// protocol version 2.
    pub window: u16,
}

impl Default for LinkSettings {
    fn default() -> Self {
        let t = Timing::default();
        let b = Backoff::default();
        let ms = |d: Duration| u32::try_from(d.as_millis()).expect("defaults fit in u32");
        LinkSettings {
            ack_timeout_ms: ms(t.ack_timeout),
            max_retries: t.max_retries,
            heartbeat_ms: ms(t.heartbeat),
            supervision_ms: ms(t.supervision),
            reconnect_initial_ms: ms(b.initial),
            reconnect_max_ms: ms(b.max),
            window: t.window,
        }
    }
}

impl LinkSettings {
    /// As link timers.
    pub fn timing(&self) -> Timing {
        Timing {
            ack_timeout: Duration::from_millis(self.ack_timeout_ms.into()),
            max_retries: self.max_retries,
            heartbeat: Duration::from_millis(self.heartbeat_ms.into()),
            supervision: Duration::from_millis(self.supervision_ms.into()),
            window: self.window,
        }
    }

    /// As reconnect delays.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: Duration::from_millis(self.reconnect_initial_ms.into()),
            max: Duration::from_millis(self.reconnect_max_ms.into()),
        }
    }
}

/// `[authorisation]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorisationSettings {
    /// Seconds an authorisation stays valid for the pump to start.
    pub validity_s: u32,
}

impl Default for AuthorisationSettings {
    fn default() -> Self {
        AuthorisationSettings { validity_s: 120 }
    }
}

/// `[[port]]`: one serial port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Name in logs and status; defaults to the device's file name.
    #[serde(default)]
    pub name: Option<String>,
    /// Device path, e.g. `/dev/ttyUSB0` or a `/dev/serial/by-id/` link.
    pub path: PathBuf,
    /// Line speed in baud.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Protocol the pump speaks.
    #[serde(default)]
    pub driver: DriverKind,
}

fn default_baud() -> u32 {
    115_200
}

impl PortConfig {
    /// The port's name: the configured one or the device's file name.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            self.path.file_name().map_or_else(
                || self.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
    }
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Syntax, unknown key or bad value, with where.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and what to write.
        message: String,
    },
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        for k in &mut config.trusted_keys {
            *k = base.join(&*k);
        }
        for p in &mut config.ports {
            p.path = base.join(&p.path);
        }
        if let Some(m) = &mut config.mqtt {
            m.rebase(base);
        }
        for f in [&mut config.terminal.staff_file, &mut config.terminal.socket]
            .into_iter()
            .flatten()
        {
            *f = base.join(&*f);
        }
        Ok(config)
    }

    /// Parses and checks config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((1, 1), |span| line_column(text, span.start));
            ConfigError::At {
                path: origin.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// What `pumpgwd run` needs beyond a valid file: at least one
    /// `[[port]]`. (The command-line tools, `events`, `library`, `status`,
    /// take a config without ports, as on a workstation.)
    pub fn runnable(&self) -> Result<(), String> {
        if self.ports.is_empty() {
            return Err(
                "no [[port]]: add one per pump, e.g. [[port]] path = \"/dev/ttyUSB0\"".to_owned(),
            );
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !id_ok(&self.gateway_id) {
            return Err(format!(
                "gateway_id {:?} must be 1 to 64 letters, digits, '-', '_' or '.'",
                self.gateway_id
            ));
        }
        crate::sync::topic::check_segment("care_area", &self.care_area)?;
        if let Some(m) = &self.mqtt {
            m.validate(&self.gateway_id)?;
        }
        if let Some(e) = &self.ehr {
            e.validate()?;
        }
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for p in &self.ports {
            let name = p.display_name();
            if !id_ok(&name) {
                return Err(format!(
                    "port name {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
                ));
            }
            if !names.insert(name.clone()) {
                return Err(format!(
                    "two ports are named {name:?}; give each a distinct `name`"
                ));
            }
            if !paths.insert(p.path.clone()) {
                return Err(format!("port {} is listed twice", p.path.display()));
            }
            if !(1_200..=4_000_000).contains(&p.baud) {
                return Err(format!(
                    "port {name}: baud {} is not between 1200 and 4000000",
                    p.baud
                ));
            }
        }
        let l = &self.link;
        if l.heartbeat_ms == 0 || l.ack_timeout_ms == 0 || l.reconnect_initial_ms == 0 {
            return Err("[link] times must be above 0".to_owned());
        }
        if !(1..=crate::link::MAX_WINDOW).contains(&l.window) {
            return Err(format!(
                "[link] window ({}) must be between 1 and {} frames",
                l.window,
                crate::link::MAX_WINDOW
            ));
        }
        if l.supervision_ms < 2 * l.heartbeat_ms {
            return Err(format!(
                "[link] supervision_ms ({}) must be at least twice heartbeat_ms ({}), or one late heartbeat takes a pump offline",
                l.supervision_ms, l.heartbeat_ms
            ));
        }
        if l.reconnect_max_ms < l.reconnect_initial_ms {
            return Err(
                "[link] reconnect_max_ms must not be below reconnect_initial_ms".to_owned(),
            );
        }
        if !(1..=16).contains(&self.terminal.max_terminals) {
            return Err(format!(
                "[terminal] max_terminals ({}) must be between 1 and 16",
                self.terminal.max_terminals
            ));
        }
        if !(3..=10).contains(&self.terminal.pin_attempts) {
            return Err(format!(
                "[terminal] pin_attempts ({}) must be between 3 and 10",
                self.terminal.pin_attempts
            ));
        }
        if !(60..=86_400).contains(&self.terminal.lockout_s) {
            return Err(format!(
                "[terminal] lockout_s ({}) must be between 60 and 86400 seconds",
                self.terminal.lockout_s
            ));
        }
        if !(10..=600).contains(&self.authorisation.validity_s) {
            return Err(format!(
                "[authorisation] validity_s ({}) must be between 10 and 600 seconds",
                self.authorisation.validity_s
            ));
        }
        Ok(())
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |n| before.len() - n - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
gateway_id = "bed-12"
care_area = "adult-icu"
data_dir = "state"

[[port]]
path = "/dev/ttyUSB0"
"#;

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../../../config/gateway.example.toml");
        let c = Config::parse(text, "gateway.example.toml").unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[1].display_name(), "pump-b");
        assert_eq!(c.link.timing(), Timing::default());
        let m = c.mqtt.expect("the example has [mqtt]");
        assert_eq!(m.site, "st-elsewhere");
        assert_eq!(m.in_flight_batches, 16);
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::parse(GOOD, "gw.toml").unwrap();
        assert_eq!(c.ports[0].baud, 115_200);
        assert_eq!(c.ports[0].display_name(), "ttyUSB0");
        assert_eq!(c.link.timing(), Timing::default());
        assert_eq!(c.authorisation.validity_s, 120);
        assert_eq!(c.terminal.lockout(), crate::staff::Lockout::default());
        assert_eq!(c.staff_file(), PathBuf::from("state/staff.json"));
    }

    #[test]
    fn ehr_tls_takes_all_three_files_or_none() {
        let ehr = "\n[ehr]\nlisten = \"127.0.0.1:2575\"\n";
        let c = Config::parse(&format!("{GOOD}{ehr}"), "gw.toml").unwrap();
        assert_eq!(c.ehr.expect("[ehr]").tls(), None);
        let all = "cert_file = \"g.pem\"\nkey_file = \"g.key\"\nclient_ca_file = \"ca.pem\"\n";
        let c = Config::parse(&format!("{GOOD}{ehr}{all}"), "gw.toml").unwrap();
        assert!(c.ehr.expect("[ehr]").tls().is_some());
        let e = Config::parse(
            &format!("{GOOD}{ehr}cert_file = \"g.pem\"\nkey_file = \"g.key\"\n"),
            "gw.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("client_ca_file"), "{e}");
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("[[port]]\n", "[[port]]\nbaudrate = 9600\n");
        let e = Config::parse(&text, "gw.toml").unwrap_err().to_string();
        assert!(e.starts_with("gw.toml:7:1: "), "{e}");
        assert!(e.contains("baudrate"), "{e}");
    }

    #[test]
    fn bad_values_are_refused_with_what_to_write() {
        let e = Config::parse(&GOOD.replace("bed-12", "bed 12"), "gw.toml").unwrap_err();
        assert!(e.to_string().contains("letters, digits"), "{e}");
        let e = Config::parse(
            &format!("{GOOD}\n[link]\nheartbeat_ms = 2000\nsupervision_ms = 3000\n"),
            "gw.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("twice heartbeat_ms"), "{e}");
        for window in [0, 33] {
            let e = Config::parse(&format!("{GOOD}\n[link]\nwindow = {window}\n"), "gw.toml")
                .unwrap_err();
            assert!(e.to_string().contains("between 1 and 32"), "{e}");
        }
        let ok = Config::parse(&format!("{GOOD}\n[link]\nwindow = 1\n"), "gw.toml").unwrap();
        assert_eq!(ok.link.timing().window, 1);
        let e = Config::parse(
            &format!("{GOOD}\n[[port]]\npath = \"/dev/ttyUSB0\"\nname = \"b\"\n"),
            "gw.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        // Without ports the file is valid (for the tools), but not runnable.
        let portless = Config::parse(
            &GOOD.replace("[[port]]\npath = \"/dev/ttyUSB0\"\n", ""),
            "gw.toml",
        )
        .expect("a config without ports is valid for the tools");
        let e = portless.runnable().unwrap_err();
        assert!(e.contains("no [[port]]"), "{e}");
    }

    #[test]
    fn wrong_type_has_a_position() {
        let e = Config::parse(
            &GOOD.replace(
                "path = \"/dev/ttyUSB0\"",
                "path = \"/dev/ttyUSB0\"\nbaud = \"fast\"",
            ),
            "gw.toml",
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::At { line: 8, .. }), "{e}");
    }
}
