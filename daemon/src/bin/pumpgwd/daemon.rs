//! `pumpgwd run`: logging, signals and the runtime around
//! [`pumpgw::gateway::run`].

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pumpgw::gateway::{self, Config, Snapshot};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::{EXIT_CONFIG, EXIT_SOFTWARE};

/// Another daemon runs on the same data folder (`EX_TEMPFAIL`).
const EXIT_IN_USE: u8 = 75;

/// Logs to the journal, with structured fields (`PUMP=`, `DRUG=`,
/// `VERDICT=`...), when systemd connected stderr to it (`JOURNAL_STREAM`);
/// otherwise to stderr as plain text. `RUST_LOG` overrides the level.
pub(crate) fn init_logging(default: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journal) => {
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(journal.with_syslog_identifier("pumpgwd".to_owned()))
                    .try_init();
                return;
            }
            Err(e) => eprintln!("pumpgwd: the journal cannot be reached ({e}): logging to stderr"),
        }
    }
    // A failed write must never panic a task: see `pumpgw::logging`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(pumpgw::logging::stderr)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Resolves on the first SIGTERM (systemd) or SIGINT (Ctrl-C).
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "stop requested"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "stop requested"),
        }
    })
}

/// A write past the file-size limit (`RLIMIT_FSIZE`) must fail like a full
/// disk (and be denied safely), not kill the daemon with SIGXFSZ: catching
/// the signal makes the write return EFBIG instead.
fn survive_file_size_limit() -> Result<()> {
    let kind = SignalKind::from_raw(nix::sys::signal::Signal::SIGXFSZ as i32);
    let mut xfsz = signal(kind).context("cannot watch SIGXFSZ")?;
    tokio::spawn(async move {
        while xfsz.recv().await.is_some() {
            tracing::error!("file size limit reached: the event log cannot grow");
        }
    });
    Ok(())
}

/// One thread for every task: the daemon's work is waiting on ports, the
/// disk and the broker, and on a multi-thread runtime the wake-ups between
/// workers cost more CPU per pump event than the work itself (measured:
/// 0.72 against 0.47 ms of CPU per event, and 830 against 1,540 events/s
/// in a burst, `tests/benches/event_latency.rs`). Blocking work (SQLite
/// commits, PIN hashing) has its own threads.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn main(config_path: &Path) -> ExitCode {
    init_logging("info");
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pumpgwd: error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = config.runnable() {
        eprintln!("pumpgwd: error: {}: {e}", config_path.display());
        return ExitCode::from(EXIT_CONFIG);
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("pumpgwd: error: {}", pumpgw::report::chain(e.as_ref()));
            ExitCode::from(code)
        }
    }
}

fn run(config: Config) -> Result<(), (u8, anyhow::Error)> {
    let rt = runtime().map_err(|e| (EXIT_SOFTWARE, e))?;
    rt.block_on(async {
        let shutdown = shutdown_signal().map_err(|e| (EXIT_SOFTWARE, e))?;
        survive_file_size_limit().map_err(|e| (EXIT_SOFTWARE, e))?;
        let (view, _) = watch::channel(Snapshot::default());
        gateway::run(config, shutdown, view).await.map_err(|e| {
            let code = match e {
                gateway::StartError::Store(_) => crate::events::EXIT_DATA,
                gateway::StartError::DataDir { .. } | gateway::StartError::Log(_) => EXIT_SOFTWARE,
                gateway::StartError::InUse(_) => EXIT_IN_USE,
                gateway::StartError::Checkpoint(_)
                | gateway::StartError::Mqtt(_)
                | gateway::StartError::TrustedKey(_)
                | gateway::StartError::Terminal(_)
                | gateway::StartError::Ehr(_) => EXIT_CONFIG,
            };
            (code, anyhow::Error::new(e))
        })
    })
}
