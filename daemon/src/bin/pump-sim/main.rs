//! `pump-sim`: a simulated pump controller speaking the pump link, for
//! bench-testing a gateway (`docs/pump-sim.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use pumpgw::link::Timing;
use pumpgw::sim::scenario::{Scenario, Step};
use pumpgw::sim::{self, Options, Port};
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 64;
const EXIT_SOFTWARE: u8 = 70;

const COMMANDS: &str = "\
Commands (an action, then key = \"value\" settings separated by commas):
  load drug = \"fentanyl\", concentration = \"2500 micrograms in 50 mL\", volume = \"50 mL\"
  infuse rate = \"50 micrograms/h\", vtbi = \"1 mL\"
  bolus dose = \"25 micrograms\", duration = \"60 s\"
  pause | resume | stop | clear_alarms | wait_delivery | wait_online
  wait duration = \"30 s\"
  alarm condition = \"air_in_line\", priority = \"high\", text = \"Air in line\"
  fault drop_next = 1 | corrupt_next = 1 | duplicate_next = 1 | garbage = 64 | delay_next_ms = 800
  hang_up duration = \"2 s\"
  help
End with Ctrl-D.";

#[derive(Parser)]
#[command(
    name = "pump-sim",
    version,
    about = "A simulated infusion-pump controller that speaks the pumpgw pump link",
    long_about = "A simulated infusion-pump controller that speaks the pumpgw pump link.\n\nBy default it opens a pseudo-terminal and prints its path (`pump-sim: port /dev/pts/N`): point a gateway's [[port]] at that path, or at --link. It plays a scenario file (docs/pump-sim.md; examples in config/examples/scenarios/) and/or commands typed on stdin (--interactive).",
    after_help = "Exit status: 0 scenario played, every expectation met; 1 an expectation failed; 64 usage or scenario error; 70 the port could not be opened."
)]
struct Cli {
    /// Scenario file (TOML).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Use this serial device instead of a new pseudo-terminal.
    #[arg(long, value_name = "PATH", conflicts_with = "link")]
    device: Option<PathBuf>,
    /// Line speed for --device.
    #[arg(long, default_value_t = 115_200, requires = "device")]
    baud: u32,
    /// Keep a symlink at PATH to the pseudo-terminal, across hang-ups.
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
    /// Simulated seconds per real second (delivery, waits, alarm clearing).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3600))]
    speed: u32,
    /// Read commands from stdin after the scenario (see `help`).
    #[arg(long)]
    interactive: bool,
    /// Keep running when the scenario is over (until SIGTERM or Ctrl-C).
    #[arg(long)]
    stay: bool,
    /// Play the scenario again and again.
    #[arg(long)]
    repeat: bool,
    /// Serial number to report (overrides the scenario's).
    #[arg(long)]
    serial: Option<String>,
    /// Seconds to wait for the gateway's answer to a programme.
    #[arg(long, default_value_t = 10)]
    answer_timeout: u64,
    /// Append the record number of each event the gateway acknowledged to
    /// FILE, one per line.
    #[arg(long, value_name = "FILE")]
    ack_log: Option<PathBuf>,
    /// Play the staff at the gateway's bedside terminal too: connect to its
    /// socket and confirm this pump's programmes as the scenario says (the
    /// nurse types each container's `label`).
    #[arg(long, value_name = "SOCKET")]
    terminal: Option<PathBuf>,
    /// A nurse at the bedside, as ID:PIN, staff id and PIN (from the gateway's staff
    /// file). Repeat for more.
    #[arg(long, value_name = "ID:PIN", requires = "terminal")]
    nurse: Vec<sim::bedside::Staff>,
    /// A doctor at the bedside, as ID:PIN. Repeat for more (a
    /// two-person bolus needs two).
    #[arg(long, value_name = "ID:PIN", requires = "terminal")]
    doctor: Vec<sim::bedside::Staff>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(pumpgw::logging::stderr)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let mut scenario = match load(&cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pump-sim: error: {}", pumpgw::report::chain(e.as_ref()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Some(serial) = &cli.serial {
        scenario.pump.serial.clone_from(serial);
    }
    match run(&cli, scenario) {
        Ok(report) => {
            eprintln!(
                "pump-sim: {} authorised, {} denied, {} delivered, {} handshake(s), {} failure(s)",
                report.authorised,
                report.denied,
                report.completed,
                report.handshakes,
                report.failures.len()
            );
            let c = report.counters;
            eprintln!(
                "pump-sim: link: frames_in={} frames_out={} crc_errors={} framing_errors={} duplicates={} retransmissions={}",
                c.frames_in,
                c.frames_out,
                c.crc_errors,
                c.framing_errors,
                c.duplicates,
                c.retransmissions
            );
            for f in &report.failures {
                eprintln!("pump-sim: FAILED: {f}");
            }
            if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Err(e) => {
            eprintln!("pump-sim: error: {}", pumpgw::report::chain(e.as_ref()));
            ExitCode::from(EXIT_SOFTWARE)
        }
    }
}

fn load(cli: &Cli) -> Result<Scenario> {
    match &cli.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(Scenario::parse(&text, &path.display().to_string())?)
        }
        None if cli.interactive => Ok(Scenario::default()),
        None => anyhow::bail!("give --scenario FILE, --interactive, or both"),
    }
}

fn run(cli: &Cli, scenario: Scenario) -> Result<sim::Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let stop = CancellationToken::new();
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let on_signal = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            on_signal.cancel();
        });
        let commands = cli.interactive.then(|| {
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(read_commands(tx));
            rx
        });
        let port = match &cli.device {
            Some(path) => Port::Device {
                path: path.clone(),
                baud: cli.baud,
            },
            None => Port::Pty {
                link: cli.link.clone(),
            },
        };
        let opts = Options {
            speed: cli.speed,
            timing: Timing::default(),
            stay: cli.stay,
            repeat: cli.repeat,
            answer_timeout: std::time::Duration::from_secs(cli.answer_timeout),
            name: scenario.pump.serial.clone(),
            ack_log: cli.ack_log.clone(),
            bedside: cli.terminal.clone().map(|socket| {
                let staff = sim::bedside::Bedside {
                    socket,
                    nurses: cli.nurse.clone(),
                    doctors: cli.doctor.clone(),
                };
                sim::bedside::spawn(staff, scenario.pump.serial.clone(), stop.child_token())
            }),
        };
        let report = sim::run(scenario, port, opts, commands, stop, |path| {
            println!("pump-sim: port {path}");
        })
        .await?;
        anyhow::Ok(report)
    })
}

async fn read_commands(tx: mpsc::Sender<Step>) {
    eprintln!("{COMMANDS}");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "help" {
            eprintln!("{COMMANDS}");
            continue;
        }
        match Step::parse_command(line) {
            Ok(step) => {
                if tx.send(step).await.is_err() {
                    return;
                }
            }
            Err(e) => eprintln!("pump-sim: {e} (type `help`)"),
        }
    }
}
