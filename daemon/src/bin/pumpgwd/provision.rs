//! `pumpgwd provision`, `ports` and `check-config`: what a biomedical
//! engineer runs to bring a gateway up, and what systemd's `ExecStartPre=`
//! runs before every start. The plan and its checks are
//! `pumpgw::gateway::provision`; here are the questions, the broker probe,
//! the summary and the writing.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use pumpgw::gateway::Config;
use pumpgw::gateway::check::{self, Finding, Level};
use pumpgw::gateway::ports;
use pumpgw::gateway::provision::{self, Answers, MqttAnswers, Plan, PortAnswer};
use pumpgw::staff::{Member, Roster, attempts};
use pumpgw::store::log::Log;
use pumpgw::store::{Event, Store};
use pumpgw::sync::{identity, tools};

use crate::{EXIT_CONFIG, EXIT_SOFTWARE, EXIT_USAGE};

/// Prints every finding; 0 when the gateway can start, 78 when not.
pub(crate) fn check_config(file: &Path, json: bool) -> Result<u8, (u8, anyhow::Error)> {
    let config =
        Config::load(file).map_err(|e| (EXIT_CONFIG, anyhow!(pumpgw::report::chain(&e))))?;
    let findings = check::check(&config);
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    if json {
        let out = serde_json::json!({
            "file": file.display().to_string(),
            "gateway_id": config.gateway_id,
            "care_area": config.care_area,
            "ok": errors == 0,
            "findings": findings,
        });
        println!("{out:#}");
    } else {
        println!(
            "{}: gateway {} in {}, {} pump port(s)",
            file.display(),
            config.gateway_id,
            config.care_area,
            config.ports.len()
        );
        for f in &findings {
            println!("  {:<7} {}: {}", f.level.word(), f.key, f.message);
        }
        println!(
            "{}: {errors} error(s), {warnings} warning(s)",
            if errors == 0 {
                "the gateway can start"
            } else {
                "the gateway cannot start"
            }
        );
    }
    Ok(if errors == 0 { 0 } else { EXIT_CONFIG })
}

/// `pumpgwd provision`'s flags: any not given is asked for on a terminal.
#[derive(clap::Args)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "command-line switches, each read once"
)]
pub(crate) struct ProvisionArgs {
    /// Where to write the gateway config.
    #[arg(long, value_name = "FILE", default_value = "/etc/pumpgw/gateway.toml")]
    config: PathBuf,
    /// This gateway's id, e.g. ward7-bed12 (letters, digits, '-', '_', '.').
    #[arg(long, value_name = "ID")]
    gateway_id: Option<String>,
    /// The bed's care area: an id in the drug library, e.g. adult-icu.
    #[arg(long, value_name = "ID")]
    care_area: Option<String>,
    /// A pump's serial port, PATH or NAME=PATH; once per pump (names
    /// default to pump-a, pump-b...). See `pumpgwd ports`.
    #[arg(long = "port", value_name = "[NAME=]PATH")]
    ports: Vec<PortAnswer>,
    /// The MQTT broker, `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`
    /// (none: no MQTT sync).
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// The site (hospital) segment of the MQTT topics.
    #[arg(long, value_name = "ID", requires = "broker")]
    site: Option<String>,
    /// The CA certificate (PEM) that signs the broker's certificate.
    #[arg(long, value_name = "FILE", requires = "broker")]
    ca: Option<PathBuf>,
    /// This gateway's certificate (PEM), from the hospital PKI.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// A pharmacy public key (from `library keygen`) to trust; once per key.
    #[arg(long = "trusted-key", value_name = "FILE")]
    trusted_keys: Vec<PathBuf>,
    /// Approvals by other trusted keys a library needs besides its
    /// proposal (two-person approval: 1).
    #[arg(long, value_name = "N", default_value_t = 1)]
    approvals: u32,
    /// Where the gateway keeps its state.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The bedside terminal's socket.
    #[arg(long, value_name = "PATH", conflicts_with = "no_terminal")]
    terminal_socket: Option<PathBuf>,
    /// No bedside terminal (everything that needs a person is denied).
    #[arg(long)]
    no_terminal: bool,
    /// The group whose members may connect a terminal (default
    /// pumpgw-terminal where it exists).
    #[arg(long, value_name = "GROUP")]
    socket_group: Option<String>,
    /// A staff file to import (docs/staff.md); each person is logged.
    #[arg(long, value_name = "FILE")]
    staff: Option<PathBuf>,
    /// Who the copied key, the data folder and the staff file belong to
    /// (default: pumpgw when run as root and that user exists).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// Seconds to wait for the broker's answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    broker_timeout: u64,
    /// Never ask: take flags and defaults, and fail naming what is missing.
    #[arg(long)]
    non_interactive: bool,
    /// Check and show everything, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace an existing config, staff file or copied file (each old one
    /// is kept as .bak).
    #[arg(long)]
    force: bool,
}

type Failure = (u8, anyhow::Error);

fn usage(e: impl std::fmt::Display) -> Failure {
    (EXIT_USAGE, anyhow!("{e}"))
}

/// Reads answers from a person at a terminal.
struct Prompt {
    input: std::io::StdinLock<'static>,
}

impl Prompt {
    /// One line; an empty answer takes the default.
    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String, Failure> {
        let mut out = std::io::stdout();
        match default {
            Some(d) if !d.is_empty() => {
                let _ = write!(out, "{question} [{d}]: ");
            }
            _ => {
                let _ = write!(out, "{question}: ");
            }
        }
        let _ = out.flush();
        let mut line = String::new();
        let n = self
            .input
            .read_line(&mut line)
            .map_err(|e| usage(format!("cannot read the answer: {e}")))?;
        if n == 0 {
            return Err(usage("no answer (end of input); nothing was written"));
        }
        let line = line.trim();
        Ok(if line.is_empty() {
            default.unwrap_or_default().to_owned()
        } else {
            line.to_owned()
        })
    }

    /// Asks until the answer is not empty.
    fn require(&mut self, question: &str, default: Option<&str>) -> Result<String, Failure> {
        loop {
            let a = self.ask(question, default)?;
            if !a.is_empty() {
                return Ok(a);
            }
            say!("  (an answer is needed)");
        }
    }
}

/// The answers: flags first, then questions for what is missing (on a
/// terminal), then defaults.
fn answers(args: &ProvisionArgs, interactive: bool) -> Result<Answers, Failure> {
    let mut a = Answers {
        config: args.config.clone(),
        gateway_id: args.gateway_id.clone().unwrap_or_default(),
        care_area: args.care_area.clone().unwrap_or_default(),
        ports: args.ports.clone(),
        mqtt: args.broker.as_ref().map(|b| MqttAnswers {
            broker: b.clone(),
            site: args.site.clone().unwrap_or_default(),
            ca: args.ca.clone(),
            cert: args.cert.clone(),
            key: args.key.clone(),
        }),
        trusted_keys: args.trusted_keys.clone(),
        approvals: args.approvals,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_DATA_DIR)),
        terminal_socket: if args.no_terminal {
            None
        } else {
            Some(
                args.terminal_socket
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(provision::DEFAULT_SOCKET)),
            )
        },
        socket_group: args.socket_group.clone().or_else(|| {
            matches!(
                nix::unistd::Group::from_name(provision::DEFAULT_SOCKET_GROUP),
                Ok(Some(_))
            )
            .then(|| provision::DEFAULT_SOCKET_GROUP.to_owned())
        }),
        staff: args.staff.clone(),
        replace: args.force,
    };
    if a.terminal_socket.is_none() {
        a.socket_group = None;
    }
    if interactive {
        ask_missing(args, &mut a)?;
    }
    let mut missing = Vec::new();
    if a.gateway_id.is_empty() {
        missing.push("--gateway-id");
    }
    if a.care_area.is_empty() {
        missing.push("--care-area");
    }
    if a.ports.is_empty() {
        missing.push("--port");
    }
    if a.mqtt.as_ref().is_some_and(|m| m.site.is_empty()) {
        missing.push("--site");
    }
    if !missing.is_empty() {
        return Err(usage(format!(
            "{} needed (or run it on a terminal without --non-interactive to be asked); nothing was written",
            missing.join(", ")
        )));
    }
    Ok(a)
}

fn ask_missing(args: &ProvisionArgs, a: &mut Answers) -> Result<(), Failure> {
    let mut p = Prompt {
        input: std::io::stdin().lock(),
    };
    say!("Provisioning a pumpgw gateway: {}", a.config.display());
    say!("Press Enter to take the value in [brackets].\n");
    if args.gateway_id.is_none() {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok());
        a.gateway_id = p.require("Gateway id (e.g. ward7-bed12)", host.as_deref())?;
    }
    if args.care_area.is_none() {
        a.care_area = p.require(
            "Care area, as the drug library names it (e.g. adult-icu)",
            None,
        )?;
    }
    if args.ports.is_empty() {
        a.ports = ask_ports(&mut p)?;
    }
    if args.broker.is_none() {
        let b = p.ask(
            "MQTT broker, mqtt://host or mqtts://host (empty: none)",
            None,
        )?;
        if !b.is_empty() {
            a.mqtt = Some(MqttAnswers {
                broker: b,
                ..MqttAnswers::default()
            });
        }
    }
    if let Some(m) = &mut a.mqtt {
        if m.site.is_empty() {
            m.site = p.require("Site (hospital) in the MQTT topics", None)?;
        }
        if m.broker.starts_with("mqtts://") {
            if m.ca.is_none() {
                m.ca = Some(p.require("CA certificate file (PEM)", None)?.into());
            }
            if m.cert.is_none() {
                let c = p.ask("This gateway's certificate file (empty: none)", None)?;
                if !c.is_empty() {
                    m.cert = Some(c.into());
                    m.key = Some(p.require("Its key file", None)?.into());
                }
            }
        }
    }
    if args.trusted_keys.is_empty() {
        loop {
            let k = p.ask("Pharmacy public key file (empty: done)", None)?;
            if k.is_empty() {
                break;
            }
            a.trusted_keys.push(k.into());
        }
    }
    if args.data_dir.is_none() {
        a.data_dir = p
            .require("Data folder", Some(crate::DEFAULT_DATA_DIR))?
            .into();
    }
    if args.terminal_socket.is_none() && !args.no_terminal {
        let s = p.require(
            "Terminal socket (none: no bedside terminal)",
            Some(provision::DEFAULT_SOCKET),
        )?;
        a.terminal_socket = (s != "none").then(|| s.into());
        if a.terminal_socket.is_some() && args.socket_group.is_none() {
            let g = p.ask(
                "Group whose members may use the terminal socket (none: the daemon's own)",
                a.socket_group.as_deref().or(Some("none")),
            )?;
            a.socket_group = (g != "none").then_some(g);
        }
        if a.terminal_socket.is_none() {
            a.socket_group = None;
        }
    }
    if args.staff.is_none() {
        let s = p.ask("Staff file to import (empty: none)", None)?;
        a.staff = (!s.is_empty()).then(|| s.into());
    }
    say!();
    Ok(())
}

fn ask_ports(p: &mut Prompt) -> Result<Vec<PortAnswer>, Failure> {
    let found = ports::candidates();
    if found.is_empty() {
        say!("No serial ports found (is a pump adapter plugged in?).");
    } else {
        say!("Serial ports on this board:");
        for (i, c) in found.iter().enumerate() {
            say!("  {}  {}  ({})", i + 1, c.preferred().display(), c.kind);
        }
    }
    let mut chosen: Vec<PortAnswer> = Vec::new();
    loop {
        let next = found
            .iter()
            .position(|c| !chosen.iter().any(|p| p.path == c.preferred()))
            .map(|i| (i + 1).to_string());
        let default = if chosen.is_empty() {
            next.as_deref()
        } else {
            None
        };
        let q = format!(
            "Port of {} (a number above, a path, or NAME=PATH; empty: done)",
            provision::default_port_name(chosen.len())
        );
        let answer = p.ask(&q, default)?;
        if answer.is_empty() {
            if chosen.is_empty() {
                say!("  (at least one pump port is needed)");
                continue;
            }
            return Ok(chosen);
        }
        let port = match answer.parse::<usize>() {
            Ok(n) if (1..=found.len()).contains(&n) => PortAnswer {
                name: None,
                path: found[n - 1].preferred().to_path_buf(),
            },
            _ => match answer.parse::<PortAnswer>() {
                Ok(port) => port,
                Err(e) => {
                    say!("  ({e})");
                    continue;
                }
            },
        };
        chosen.push(port);
    }
}

/// Who the written secrets and state belong to.
fn owner(args: &ProvisionArgs) -> Result<Option<nix::unistd::User>, Failure> {
    let root = nix::unistd::Uid::effective().is_root();
    match &args.owner {
        Some(name) => match nix::unistd::User::from_name(name) {
            Ok(Some(u)) if root || u.uid == nix::unistd::Uid::effective() => Ok(Some(u)),
            Ok(Some(_)) => Err(usage(format!(
                "--owner {name}: only root may give files to another user (run it with sudo); nothing was written"
            ))),
            _ => Err(usage(format!(
                "--owner: no user named {name} on this machine; nothing was written"
            ))),
        },
        None if root => Ok(nix::unistd::User::from_name("pumpgw").ok().flatten()),
        None => Ok(None),
    }
}

/// `pumpgwd provision`: 0 written (or, with --dry-run, would be); 1 the
/// engineer said no; 64 usage; 78 a check failed and nothing was written.
pub(crate) fn provision(args: &ProvisionArgs) -> Result<u8, Failure> {
    let interactive = !args.non_interactive && std::io::stdin().is_terminal();
    let owner = owner(args)?;
    let a = answers(args, interactive)?;
    let now = time::OffsetDateTime::now_utc();
    let mut plan = provision::plan(&a, now);
    if nix::unistd::Uid::effective().is_root() && owner.is_none() {
        plan.findings.push(Finding {
            level: Level::Warning,
            key: "owner".to_owned(),
            message: "no user pumpgw on this machine: the key, the data folder and the staff file stay root's, and a daemon run as another user cannot read them (--owner USER)".to_owned(),
        });
    }
    if plan.errors() == 0
        && let Some(m) = &a.mqtt
    {
        probe(&mut plan, &a, m, args.broker_timeout);
    }
    show(&plan, &a, owner.as_ref());
    let errors = plan.errors();
    if errors > 0 {
        say!("\nprovisioning refused: {errors} error(s) above; nothing was written");
        return Ok(EXIT_CONFIG);
    }
    if args.dry_run {
        say!("\ndry run: nothing was written");
        return Ok(0);
    }
    if interactive {
        let mut p = Prompt {
            input: std::io::stdin().lock(),
        };
        let yes = p.ask("\nWrite these files?", Some("no"))?;
        if !matches!(yes.to_ascii_lowercase().as_str(), "y" | "yes") {
            say!("nothing was written");
            return Ok(1);
        }
    }
    let written = write(&plan, owner.as_ref()).map_err(|e| (EXIT_SOFTWARE, e))?;
    say!("\nWritten:");
    for w in &written {
        say!("  {w}");
    }
    say!(
        "\nNext: systemctl restart pumpgwd, then\n  pumpgwd status --config {}",
        plan.config_path.display()
    );
    Ok(0)
}

/// Asks the broker, with the files as given, whether it takes this
/// gateway; a failure is reported, not fatal (the broker may be down
/// today, and the gateway works without it).
fn probe(plan: &mut Plan, a: &Answers, m: &MqttAnswers, seconds: u64) {
    let mut settings = pumpgw::sync::MqttSettings::new(&m.broker, &m.site);
    settings.ca_file.clone_from(&m.ca);
    settings.cert_file.clone_from(&m.cert);
    // The key is read from a private copy, as the gateway will read its
    // own: on a stick it has whatever mode the stick's file system gives.
    let private = match m.key.as_deref().map(private_copy).transpose() {
        Ok(p) => p,
        Err(e) => {
            plan.findings.push(Finding {
                level: Level::Warning,
                key: "[mqtt] broker".to_owned(),
                message: format!("not asked: {e:#}"),
            });
            return;
        }
    };
    settings.key_file = private.as_ref().map(|f| f.path().to_path_buf());
    let started = std::time::Instant::now();
    let result = settings
        .connection(&a.gateway_id)
        .map_err(|e| pumpgw::report::chain(&e))
        .and_then(|c| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))?;
            rt.block_on(tools::probe(&c, Duration::from_secs(seconds)))
                .map_err(|e| pumpgw::report::chain(&e))
        });
    let finding = match result {
        Ok(()) => Finding {
            level: Level::Note,
            key: "[mqtt] broker".to_owned(),
            message: format!(
                "{} answered and accepted this gateway ({:.1} s)",
                m.broker,
                started.elapsed().as_secs_f64()
            ),
        },
        Err(e) => Finding {
            level: Level::Warning,
            key: "[mqtt] broker".to_owned(),
            message: format!(
                "{e}; provisioning goes on: the gateway works without the broker and keeps trying, its log waits in the outbox"
            ),
        },
    };
    plan.findings.push(finding);
}

/// A copy of a key in a temporary file of mode 0600, removed when dropped.
fn private_copy(key: &Path) -> Result<tempfile::NamedTempFile> {
    let bytes = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let mut f = tempfile::NamedTempFile::new().context("cannot make a temporary file")?;
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600))
        .context("cannot make the temporary key private")?;
    f.write_all(&bytes)
        .context("cannot write the temporary key")?;
    Ok(f)
}

fn show(plan: &Plan, a: &Answers, owner: Option<&nix::unistd::User>) {
    let site = a
        .mqtt
        .as_ref()
        .map(|m| format!(", site {}", m.site))
        .unwrap_or_default();
    say!("Gateway {}, care area {}{site}", a.gateway_id, a.care_area);
    say!("  config         {}", plan.config_path.display());
    if let Some(c) = &plan.config {
        say!("  data folder    {}", c.data_dir.display());
        for (i, p) in c.ports.iter().enumerate() {
            let label = if i == 0 { "pumps" } else { "" };
            say!("  {label:<14} {:<8} {}", p.display_name(), p.path.display());
        }
        let broker = c.mqtt.as_ref().map_or("none (no MQTT sync)", |m| &m.broker);
        say!("  broker         {broker}");
        for (i, k) in c.trusted_keys.iter().enumerate() {
            let label = if i == 0 { "pharmacy keys" } else { "" };
            say!("  {label:<14} {}", k.display());
        }
        let terminal = c.terminal.socket.as_ref().map_or_else(
            || "none".to_owned(),
            |s| {
                let group = c.terminal.socket_group.as_ref();
                format!(
                    "{}{}",
                    s.display(),
                    group.map(|g| format!(", group {g}")).unwrap_or_default()
                )
            },
        );
        say!("  terminal       {terminal}");
    }
    if let Some((from, r)) = &plan.staff {
        say!("  staff          {} from {}", r.staff.len(), from.display());
    }
    let me = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map_or_else(|| "this user".to_owned(), |u| u.name);
    say!(
        "  owner          {} (of the key, data folder and staff file)",
        owner.map_or(me, |u| u.name.clone())
    );
    say!("\nChecks:");
    for f in &plan.findings {
        say!("  {:<7} {}: {}", f.level.word(), f.key, f.message);
    }
    match &plan.identity {
        Some(id) => {
            say!("\nIdentity: {} (issued by {})", id.subject, id.issuer);
            say!(
                "  valid {} to {}",
                identity::date(id.not_before),
                identity::date(id.not_after)
            );
            say!("  SHA-256 fingerprint {}", id.fingerprint);
        }
        None if a.mqtt.is_some() => say!(
            "\nIdentity: no client certificate; the broker knows this gateway only by its client id pumpgw-{}",
            a.gateway_id
        ),
        None => say!("\nIdentity: none on the network (no MQTT sync)"),
    }
}

/// Writes a file whole or not at all: a temporary file beside it (mode
/// 0600 from the start), synced, given its mode and owner, then renamed
/// over. An existing one is first kept (see [`keep`]); returns where.
fn put(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<&nix::unistd::User>,
    stamp: &str,
) -> Result<Option<PathBuf>> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no folder", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let kept = keep(path, stamp)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    if let Some(u) = owner {
        chown(tmp.path(), u)?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(kept)
}

/// Keeps what is at `path` as `path.bak-STAMP`, every run its own name, so
/// a second `--force` does not lose the first original. A hard link made
/// under a temporary name and renamed into place: the original stays where
/// it is until it is replaced, and nothing planted at the backup's name
/// (a link to another file) is written through.
fn keep(path: &Path, stamp: &str) -> Result<Option<PathBuf>> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let bak = (0..10_000)
        .map(|n| {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".bak-{stamp}"));
            if n > 0 {
                name.push(format!("-{n}"));
            }
            PathBuf::from(name)
        })
        .find(|b| std::fs::symlink_metadata(b).is_err())
        .with_context(|| format!("10,000 backups of {} already", path.display()))?;
    let mut tmp = bak.clone().into_os_string();
    tmp.push(format!(".{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    std::fs::hard_link(path, &tmp)
        .and_then(|()| std::fs::rename(&tmp, &bak))
        .with_context(|| format!("cannot keep {} as {}", path.display(), bak.display()))?;
    Ok(Some(bak))
}

/// Gives a file to `u` without following a link (the folders given away
/// are the daemon's: a link planted there must not make root give away
/// what it points to).
fn chown(path: &Path, u: &nix::unistd::User) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(u.uid.as_raw()), Some(u.gid.as_raw()))
        .with_context(|| format!("cannot give {} to {}", path.display(), u.name))
}

/// Carries the plan out; returns what was written. The staff import goes
/// first: it is the step that can meet a damaged event log, and then the
/// config and keys are still as they were.
fn write(plan: &Plan, owner: Option<&nix::unistd::User>) -> Result<Vec<String>> {
    let config = plan
        .config
        .as_ref()
        .context("the config did not check out")?;
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut done = Vec::new();
    let note = |path: &Path, kept: Option<PathBuf>| match kept {
        Some(k) => format!("{} (the old one kept as {})", path.display(), k.display()),
        None => path.display().to_string(),
    };
    let data = &config.data_dir;
    if !data.is_dir() {
        std::fs::create_dir_all(data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o750))
            .with_context(|| format!("cannot set the mode of {}", data.display()))?;
        done.push(format!("{} (folder)", data.display()));
    }
    if let Some(u) = owner {
        chown(data, u)?;
    }
    if let Some((from, roster)) = &plan.staff {
        done.push(import_staff(config, from, roster, owner, &stamp)?);
    }
    for c in &plan.copies {
        let bytes =
            std::fs::read(&c.from).with_context(|| format!("cannot read {}", c.from.display()))?;
        if c.secret {
            let dir = c.to.parent().context("a secret has a folder")?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
            if let Some(u) = owner {
                chown(dir, u)?;
            }
        }
        let (mode, who) = if c.secret {
            (0o600, owner)
        } else {
            (0o644, None)
        };
        let kept = put(&c.to, &bytes, mode, who, &stamp)?;
        done.push(note(&c.to, kept));
    }
    let kept = put(&plan.config_path, plan.text.as_bytes(), 0o644, None, &stamp)?;
    done.push(note(&plan.config_path, kept));
    Ok(done)
}

/// Saves the roster as the gateway's staff file and logs each person added
/// or removed, as `staff add` and `staff remove` would.
fn import_staff(
    config: &pumpgw::gateway::Config,
    from: &Path,
    roster: &Roster,
    owner: Option<&nix::unistd::User>,
    stamp: &str,
) -> Result<String> {
    let dest = config.staff_file();
    let before = if dest.exists() {
        Roster::load(&dest).ok()
    } else {
        None
    };
    // Opened (and checked) before anything changes.
    let store_file = Store::file_in(&config.data_dir);
    let store = Store::open(&store_file)?;
    let kept = keep(&dest, stamp)?;
    roster.save(&dest)?;
    let context = pumpgw::store::Context {
        gateway: config.gateway_id.clone(),
        pump: None,
        care_area: config.care_area.clone(),
        library_version: pumpgw::store::library::active(&store)
            .ok()
            .flatten()
            .map(|(v, _)| v),
    };
    let by = format!(
        "{} (provision, from {})",
        crate::pharmacy::who(None),
        from.display()
    );
    let mut events = Vec::new();
    let old: Vec<Member> = before.map(|r| r.staff).unwrap_or_default();
    for m in &old {
        if !roster.staff.iter().any(|n| n.id == m.id) {
            events.push((context.clone(), changed("removed", m, &by)));
        }
    }
    for m in &roster.staff {
        if !old.iter().any(|o| o.id == m.id) {
            events.push((context.clone(), changed("added", m, &by)));
        }
    }
    let mut log = Log::new(store)?;
    log.append(events, time::OffsetDateTime::now_utc())?;
    drop(log);
    if let Some(u) = owner {
        let mut written = vec![dest.clone(), store_file.clone()];
        for suffix in ["-wal", "-shm"] {
            let mut f = store_file.clone().into_os_string();
            f.push(suffix);
            written.push(PathBuf::from(f));
        }
        for f in written.iter().filter(|f| f.exists()) {
            chown(f, u)?;
        }
    }
    let kept = kept
        .map(|k| format!(", the old one kept as {}", k.display()))
        .unwrap_or_default();
    Ok(format!(
        "{} ({} staff, each logged{kept})",
        dest.display(),
        roster.staff.len()
    ))
}

fn changed(action: &str, m: &Member, by: &str) -> Event {
    Event::StaffChanged {
        action: action.to_owned(),
        staff_id: m.id.clone(),
        role: attempts::role_text(m.role),
        by: by.to_owned(),
    }
}

/// `pumpgwd ports`: every serial device with what is known of it, and with
/// a config, where each of its ports stands. Never opens a port.
pub(crate) fn list_ports(config: Option<&Path>, json: bool) -> Result<u8, Failure> {
    let config = config
        .map(|c| Config::load(c).map_err(|e| (EXIT_CONFIG, anyhow!(pumpgw::report::chain(&e)))))
        .transpose()?;
    let found = ports::candidates();
    let configured_as = |device: &Path| -> Option<String> {
        let real = device.canonicalize().ok()?;
        config.as_ref()?.ports.iter().find_map(|p| {
            (p.path.canonicalize().ok().as_ref() == Some(&real)).then(|| p.display_name())
        })
    };
    if json {
        let out = serde_json::json!({
            "ports": found.iter().map(|c| serde_json::json!({
                "device": c.device,
                "by_id": c.by_id,
                "kind": c.kind.to_string(),
                "state": ports::presence(&c.device).to_string(),
                "configured_as": configured_as(&c.device),
            })).collect::<Vec<_>>(),
            "configured": config.as_ref().map(|c| c.ports.iter().map(|p| serde_json::json!({
                "name": p.display_name(),
                "path": p.path,
                "state": ports::presence(&p.path).to_string(),
            })).collect::<Vec<_>>()),
        });
        say!("{out:#}");
        return Ok(0);
    }
    if found.is_empty() {
        say!(
            "No serial ports found on this board. Plug the pump's USB adapter in; `dmesg` says what the kernel saw."
        );
    } else {
        say!("Serial ports on this board:");
        for c in &found {
            say!("  {}  {}", c.device.display(), c.kind);
            for l in &c.by_id {
                say!("      stable name {}", l.display());
            }
            say!("      {}", ports::presence(&c.device));
            if let Some(name) = configured_as(&c.device) {
                say!("      configured as {name}");
            }
        }
    }
    if let Some(c) = &config {
        say!("\nPorts in the config:");
        for p in &c.ports {
            say!(
                "  {:<8} {}  {}",
                p.display_name(),
                p.path.display(),
                ports::presence(&p.path)
            );
        }
    }
    Ok(0)
}
