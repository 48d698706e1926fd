//! How to reach the broker: the `[mqtt]` section of the gateway config, the
//! broker address, TLS (rustls on ring: a CA file, and a client certificate
//! and key for mutual TLS) and credentials, turned into rumqttc options.
//! The command-line tools (`library publish`, `fleet status`) build the same
//! [`Connection`] from their flags.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::topic;

/// Largest packet the gateway sends or accepts (a library message is the
/// largest: a whole library file and its signature).
pub const MAX_PACKET: usize = 4 * 1024 * 1024;

/// `[mqtt]`: the broker and how the gateway uses it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSettings {
    /// `mqtt://host[:port]` (plain, port 1883) or `mqtts://host[:port]`
    /// (TLS, port 8883).
    pub broker: String,
    /// The site (hospital) segment of every topic.
    pub site: String,
    /// MQTT client id (default `pumpgw-<gateway_id>`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// CA certificates (PEM) that sign the broker's certificate; required
    /// for `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The gateway's client certificate chain (PEM), for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM, PKCS#8, SEC1 or PKCS#1; mode 0600).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// User name, if the broker asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (first line; mode 0600).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Keep-alive in seconds: a dead connection is noticed within 1.5 times
    /// this.
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u16,
    /// Seconds between refreshes of the retained status topics.
    #[serde(default = "default_status_interval")]
    pub status_interval_s: u32,
    /// Event records per batch at most.
    #[serde(default = "default_batch")]
    pub batch_max_events: u32,
    /// Batches published and not yet acknowledged, at most.
    #[serde(default = "default_in_flight")]
    pub in_flight_batches: u16,
    /// First delay before reconnecting after an error.
    #[serde(default = "default_reconnect_initial")]
    pub reconnect_initial_ms: u32,
    /// Longest delay before reconnecting.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u32,
    /// Seconds the library topics are left alone after a message too large
    /// to read arrived on one.
    #[serde(default = "default_library_pause")]
    pub library_pause_s: u32,
}

fn default_keep_alive() -> u16 {
    30
}
fn default_status_interval() -> u32 {
    30
}
fn default_batch() -> u32 {
    100
}
fn default_in_flight() -> u16 {
    16
}
fn default_reconnect_initial() -> u32 {
    500
}
fn default_reconnect_max() -> u32 {
    60_000
}
fn default_library_pause() -> u32 {
    u32::try_from(super::library::OVERSIZE_PAUSE.as_secs()).expect("10 minutes fit in u32")
}

impl MqttSettings {
    /// Plain settings with every default, for a broker and site.
    pub fn new(broker: &str, site: &str) -> MqttSettings {
        MqttSettings {
            broker: broker.to_owned(),
            site: site.to_owned(),
            client_id: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password_file: None,
            keep_alive_s: default_keep_alive(),
            status_interval_s: default_status_interval(),
            batch_max_events: default_batch(),
            in_flight_batches: default_in_flight(),
            reconnect_initial_ms: default_reconnect_initial(),
            reconnect_max_ms: default_reconnect_max(),
            library_pause_s: default_library_pause(),
        }
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, gateway_id: &str) -> Result<(), String> {
        BrokerAddress::parse(&self.broker).map_err(|e| format!("[mqtt] broker: {e}"))?;
        topic::check_segment("[mqtt] site", &self.site)?;
        if let Some(id) = &self.client_id
            && (id.is_empty() || id.len() > 128)
        {
            return Err("[mqtt] client_id must be 1 to 128 characters".to_owned());
        }
        if gateway_id == topic::LIBRARY {
            return Err(format!(
                "gateway_id {gateway_id:?} is reserved on MQTT (pumpgw/v1/<site>/library/...)"
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("[mqtt] cert_file and key_file go together (mutual TLS)".to_owned());
        }
        let tls = BrokerAddress::parse(&self.broker).is_ok_and(|b| b.tls);
        if tls && self.ca_file.is_none() {
            return Err("[mqtt] an mqtts:// broker needs ca_file (the CA that signs the broker's certificate)".to_owned());
        }
        if !tls && (self.ca_file.is_some() || self.cert_file.is_some()) {
            return Err(
                "[mqtt] ca_file, cert_file and key_file need an mqtts:// broker".to_owned(),
            );
        }
        if self.password_file.is_some() && self.username.is_none() {
            return Err("[mqtt] password_file needs username".to_owned());
        }
        if !(5..=3600).contains(&self.keep_alive_s) {
            return Err("[mqtt] keep_alive_s must be between 5 and 3600".to_owned());
        }
        if !(1..=3600).contains(&self.status_interval_s) {
            return Err("[mqtt] status_interval_s must be between 1 and 3600".to_owned());
        }
        if !(1..=1000).contains(&self.batch_max_events) {
            return Err("[mqtt] batch_max_events must be between 1 and 1000".to_owned());
        }
        if !(1..=64).contains(&self.in_flight_batches) {
            return Err("[mqtt] in_flight_batches must be between 1 and 64".to_owned());
        }
        if !(1..=86_400).contains(&self.library_pause_s) {
            return Err("[mqtt] library_pause_s must be between 1 and 86400".to_owned());
        }
        if self.reconnect_initial_ms < 100 || self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err(
                "[mqtt] reconnect_initial_ms must be at least 100 and reconnect_max_ms not below it"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Makes relative paths relative to the config file's folder.
    pub fn rebase(&mut self, base: &Path) {
        for p in [
            &mut self.ca_file,
            &mut self.cert_file,
            &mut self.key_file,
            &mut self.password_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
    }

    /// The connection these settings describe.
    pub fn connection(&self, gateway_id: &str) -> Result<Connection, SettingsError> {
        Ok(Connection {
            broker: BrokerAddress::parse(&self.broker).map_err(SettingsError::Broker)?,
            client_id: self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("pumpgw-{gateway_id}")),
            tls: TlsFiles {
                ca: self.ca_file.clone(),
                cert: self.cert_file.clone(),
                key: self.key_file.clone(),
            },
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            keep_alive: Duration::from_secs(self.keep_alive_s.into()),
        })
    }
}

/// Why a connection cannot be set up (before any network traffic).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The broker address does not parse.
    #[error("broker address: {0}")]
    Broker(String),
    /// A file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file holds nothing usable.
    #[error("{path}: {detail}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A secret is readable by others.
    #[error(
        "{path} is readable by group or others (mode {mode:04o}); a secret must be mode 0600 or 0400 (chmod 600 {path})"
    )]
    Exposed {
        /// The file.
        path: String,
        /// Its mode.
        mode: u32,
    },
    /// rustls refused the certificates or key.
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// TLS or not.
    pub tls: bool,
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl BrokerAddress {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (an IPv6
    /// address in brackets).
    pub fn parse(url: &str) -> Result<BrokerAddress, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "{url:?} must start with mqtt:// (plain) or mqtts:// (TLS)"
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: an IPv6 address needs its closing ]"))?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return Err(format!("{url:?}: no usable host name"));
        }
        let port =
            match port {
                None => default_port,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("{url:?}: port {p:?} is not a number from 1 to 65535")
                })?,
            };
        Ok(BrokerAddress {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The TLS files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate chain.
    pub cert: Option<PathBuf>,
    /// Client key.
    pub key: Option<PathBuf>,
}

/// Everything needed to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The broker.
    pub broker: BrokerAddress,
    /// Client id.
    pub client_id: String,
    /// TLS files (used for `mqtts://`).
    pub tls: TlsFiles,
    /// User name.
    pub username: Option<String>,
    /// Password file.
    pub password_file: Option<PathBuf>,
    /// Keep-alive.
    pub keep_alive: Duration,
}

impl Connection {
    /// rumqttc options: a clean session (the outbox, not the broker,
    /// remembers what is unacknowledged), the keep-alive, the Last Will if
    /// any, TLS and credentials. Files are read now, so a renewed
    /// certificate is picked up at the next connection.
    pub fn options(&self, will: Option<LastWill>) -> Result<MqttOptions, SettingsError> {
        let mut o = MqttOptions::new(&self.client_id, &self.broker.host, self.broker.port);
        o.set_keep_alive(self.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            // Our own window bounds what is in flight; this only must not
            // be the tighter bound.
            .set_inflight(100);
        if let Some(w) = will {
            o.set_last_will(w);
        }
        if let Some(user) = &self.username {
            let password = match &self.password_file {
                Some(p) => read_secret(p)?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                None => String::new(),
            };
            o.set_credentials(user, password);
        }
        if self.broker.tls {
            let config = client_config(&self.tls)?;
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(config),
            )));
        }
        Ok(o)
    }
}

fn read_secret(path: &Path) -> Result<String, SettingsError> {
    check_private(path)?;
    std::fs::read_to_string(path).map_err(|source| SettingsError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Refuses a secret that group or others can read.
pub fn check_private(path: &Path) -> Result<(), SettingsError> {
    let meta = std::fs::metadata(path).map_err(|source| SettingsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SettingsError::Exposed {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

fn pem(path: &Path, detail: &str) -> SettingsError {
    SettingsError::Pem {
        path: path.display().to_string(),
        detail: detail.to_owned(),
    }
}

/// A PEM reading error, named with its file.
pub(crate) fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> SettingsError {
    match e {
        rustls::pki_types::pem::Error::Io(source) => SettingsError::Io {
            path: path.display().to_string(),
            source,
        },
        other => pem(path, &other.to_string()),
    }
}

/// Every certificate in a PEM file, in order; at least one.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SettingsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(pem(path, "no CERTIFICATE block"));
    }
    Ok(chain)
}

/// A rustls client config on ring: trust only the given CA; present the
/// client certificate if one is given.
pub fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, SettingsError> {
    let ca = files
        .ca
        .as_deref()
        .ok_or_else(|| pem(Path::new("ca_file"), "a TLS broker needs a CA file"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(ca)? {
        roots.add(cert).map_err(SettingsError::Tls)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certificates(cert)?;
            check_private(key)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
            Ok(builder.with_client_auth_cert(chain, key_der)?)
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_parse_with_default_ports() {
        let b = BrokerAddress::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!((b.tls, b.host.as_str(), b.port), (false, "127.0.0.1", 1883));
        let b = BrokerAddress::parse("mqtts://broker.example:9883/").unwrap();
        assert_eq!(
            (b.tls, b.host.as_str(), b.port),
            (true, "broker.example", 9883)
        );
        let b = BrokerAddress::parse("mqtts://[::1]").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 8883));
        assert_eq!(b.to_string(), "mqtts://[::1]:8883");
        for bad in [
            "tcp://x",
            "mqtt://",
            "mqtt://x:0",
            "mqtt://x:70000",
            "mqtt://u@x",
            "mqtt://[::1",
        ] {
            assert!(BrokerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    fn settings() -> MqttSettings {
        let s: MqttSettings =
            toml::from_str("broker = \"mqtt://127.0.0.1:1883\"\nsite = \"st-elsewhere\"").unwrap();
        assert_eq!(
            s,
            MqttSettings::new("mqtt://127.0.0.1:1883", "st-elsewhere")
        );
        s
    }

    #[test]
    fn defaults_are_sane_and_validated() {
        let s = settings();
        assert_eq!(s.keep_alive_s, 30);
        assert_eq!(s.batch_max_events, 100);
        assert!(s.validate("bed-1").is_ok());
        assert_eq!(s.connection("bed-1").unwrap().client_id, "pumpgw-bed-1");
        let mut t = s.clone();
        t.site = "a/b".into();
        assert!(t.validate("bed-1").unwrap_err().contains("site"));
        let mut t = s.clone();
        t.broker = "mqtts://b".into();
        assert!(t.validate("bed-1").unwrap_err().contains("ca_file"));
        let mut t = s.clone();
        t.cert_file = Some("c.pem".into());
        assert!(t.validate("bed-1").unwrap_err().contains("together"));
        assert!(s.validate("library").unwrap_err().contains("reserved"));
    }

    #[test]
    fn an_exposed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_private(&key).unwrap_err().to_string();
        assert!(e.contains("mode 0644"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private(&key).is_ok());
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let e = client_config(&TlsFiles {
            ca: Some(ca),
            ..TlsFiles::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("no CERTIFICATE"), "{e}");
    }
}
