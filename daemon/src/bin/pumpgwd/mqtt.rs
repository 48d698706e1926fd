//! The MQTT tools: `library publish` for pharmacy and `fleet status` for
//! biomedical engineers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use pumpgw::library::{self as lib, Severity, signature};
use pumpgw::sync::messages::{LIBRARY_MESSAGE, LibraryMessage};
use pumpgw::sync::settings::{BrokerAddress, Connection, TlsFiles};
use pumpgw::sync::{fleet, tools, topic};

use crate::{EXIT_SOFTWARE, EXIT_USAGE};

/// Exit status: the broker cannot be reached (sysexits `EX_UNAVAILABLE`).
pub(crate) const EXIT_UNAVAILABLE: u8 = 69;

/// How to reach the broker from the command line.
#[derive(clap::Args)]
pub(crate) struct BrokerArgs {
    /// The broker: `mqtt://HOST[:PORT]` (plain, 1883) or
    /// `mqtts://HOST[:PORT]` (TLS, 8883).
    #[arg(long, value_name = "URL")]
    broker: String,
    /// CA certificates (PEM) for an mqtts:// broker.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Client key for TLS (PEM, mode 0600); not the library signing key.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// User name.
    #[arg(long)]
    username: Option<String>,
    /// File holding the password (mode 0600).
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// Seconds the broker has to accept the connection and answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
}

impl BrokerArgs {
    pub(crate) fn connection(&self, role: &str) -> Result<Connection, (u8, anyhow::Error)> {
        let broker = BrokerAddress::parse(&self.broker)
            .map_err(|e| (EXIT_USAGE, anyhow!("--broker: {e}")))?;
        if broker.tls && self.ca.is_none() {
            return Err((EXIT_USAGE, anyhow!("an mqtts:// broker needs --ca")));
        }
        Ok(Connection {
            broker,
            client_id: format!("pumpgw-{role}-{}", std::process::id()),
            tls: TlsFiles {
                ca: self.ca.clone(),
                cert: self.cert.clone(),
                key: self.key.clone(),
            },
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            keep_alive: Duration::from_secs(30),
        })
    }
}

fn unavailable(e: tools::ToolError) -> (u8, anyhow::Error) {
    let code = match e {
        tools::ToolError::Settings(_) => EXIT_USAGE,
        _ => EXIT_UNAVAILABLE,
    };
    (code, anyhow::Error::new(e))
}

/// What `library publish` publishes.
pub(crate) struct Publish<'a> {
    pub(crate) file: &'a Path,
    pub(crate) signature: &'a Path,
    pub(crate) site: &'a str,
    pub(crate) care_area: Option<&'a str>,
    pub(crate) by: Option<String>,
    pub(crate) broker: &'a BrokerArgs,
}

/// `library publish`: 0 published, 1 refused before publishing.
pub(crate) fn publish(p: &Publish<'_>) -> Result<u8, (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (EXIT_USAGE, e);
    topic::check_segment("--site", p.site).map_err(|e| usage(anyhow!(e)))?;
    let area = p.care_area.unwrap_or(topic::ALL_AREAS);
    topic::check_segment("--care-area", area).map_err(|e| usage(anyhow!(e)))?;
    let bytes = std::fs::read(p.file)
        .with_context(|| format!("cannot read {}", p.file.display()))
        .map_err(usage)?;
    let sig_text = std::fs::read_to_string(p.signature)
        .with_context(|| format!("cannot read {}", p.signature.display()))
        .map_err(usage)?;
    let Ok(text) = String::from_utf8(bytes) else {
        eprintln!(
            "pumpgwd: {} is not UTF-8 text, so it is not a library file; nothing published",
            p.file.display()
        );
        return Ok(1);
    };
    // What a gateway would refuse is refused here, before it reaches a
    // retained topic.
    let library = match lib::parse(text.as_bytes()) {
        Ok((library, _)) => library,
        Err(lib::LoadError::Invalid(findings)) => {
            for f in findings.iter().filter(|f| f.severity == Severity::Error) {
                eprintln!("{f}");
            }
            eprintln!(
                "pumpgwd: {} has errors; nothing published",
                p.file.display()
            );
            return Ok(1);
        }
        Err(e) => return Err(usage(anyhow::Error::new(e))),
    };
    // Whole and by whom, checked against the keys it names; each gateway
    // decides with its own trusted keys and approvals.
    let key_id = match signature::inspect(text.as_bytes(), sig_text.as_bytes()) {
        Ok(signed) => {
            println!("{}: {}", p.signature.display(), signed.describe());
            if signed.approvers.is_empty() {
                eprintln!(
                    "pumpgwd: warning: nobody has approved it yet; gateways whose config needs approvals (the default is 1) will refuse it"
                );
            }
            signed.proposer.key_id
        }
        Err(e) => {
            eprintln!("pumpgwd: {}: {e}; nothing published", p.signature.display());
            return Ok(1);
        }
    };
    let message = LibraryMessage {
        format: LIBRARY_MESSAGE.to_owned(),
        format_version: 1,
        library: text,
        signature: serde_json::value::RawValue::from_string(sig_text.trim().to_owned())
            .map_err(|e| usage(anyhow::Error::new(e)))?,
        published_by: crate::pharmacy::who(p.by.clone()),
        published_at: pumpgw::store::record::time_text(time::OffsetDateTime::now_utc()),
    };
    let payload = serde_json::to_vec(&message).map_err(|e| (EXIT_SOFTWARE, e.into()))?;
    let topic = topic::library(p.site, area);
    let connection = p.broker.connection("publish")?;
    let rt = crate::daemon::runtime().map_err(|e| (EXIT_SOFTWARE, e))?;
    rt.block_on(tools::publish_once(
        &connection,
        &topic,
        payload,
        true,
        Duration::from_secs(p.broker.timeout),
    ))
    .map_err(unavailable)?;
    say!(
        "published library {} version {} (signed by key {key_id}) to {topic}, retained; gateways of {} import it when they next receive it.",
        library.library_id,
        library.version,
        if area == topic::ALL_AREAS {
            "every care area".to_owned()
        } else {
            format!("care area {area}")
        }
    );
    Ok(0)
}

/// `fleet status`.
pub(crate) fn fleet(
    broker: &BrokerArgs,
    site: Option<&str>,
    json: bool,
    wait: u64,
) -> Result<u8, (u8, anyhow::Error)> {
    if let Some(s) = site {
        topic::check_segment("--site", s).map_err(|e| (EXIT_USAGE, anyhow!(e)))?;
    }
    let connection = broker.connection("fleet")?;
    let rt = crate::daemon::runtime().map_err(|e| (EXIT_SOFTWARE, e))?;
    let messages = rt
        .block_on(tools::gather(
            &connection,
            &topic::status_filters(site),
            Duration::from_millis(700),
            Duration::from_secs(broker.timeout),
            Duration::from_secs(wait.max(1)),
        ))
        .map_err(unavailable)?;
    let fleet = fleet::assemble(&messages);
    for u in &fleet.unreadable {
        eprintln!("pumpgwd: warning: unreadable status {u}");
    }
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&fleet).map_err(|e| (EXIT_SOFTWARE, e.into()))?
        );
    } else if fleet.gateways.is_empty() {
        say!(
            "no gateway status retained on {}{}",
            connection.broker,
            site.map(|s| format!(" for site {s}")).unwrap_or_default()
        );
    } else {
        say!("{}", fleet::render(&fleet).trim_end());
    }
    Ok(0)
}
