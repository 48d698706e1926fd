//! `pumpgw-terminal`: the bedside touchscreen. It connects to the gateway
//! daemon's terminal socket and shows every pump and every confirmation
//! the daemon asks for. `SLINT_BACKEND` picks the display: winit on a
//! desktop, `linuxkms-software` on the board without X (`--features kms`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use pumpgw_terminal::{MainWindow, client, desk};
use slint::ComponentHandle as _;

#[derive(Parser)]
#[command(
    name = "pumpgw-terminal",
    version,
    about = "The pumpgw bedside touchscreen: pumps, alarms, and the confirmations the gateway asks for",
    after_help = "Exit status: 0 the window was closed; 70 the display could not be used."
)]
struct Cli {
    /// The gateway daemon's terminal socket (`[terminal] socket`).
    #[arg(long, value_name = "PATH", default_value = "/run/pumpgw/terminal.sock")]
    socket: PathBuf,
    /// A name for the gateway's logs.
    #[arg(long, default_value = "bedside-terminal")]
    name: String,
    /// A shell command run (not waited for) whenever a new confirmation
    /// is announced, e.g. the board's buzzer: `--sound-command 'aplay
    /// /usr/share/pumpgw/chime.wav'`.
    #[arg(long, value_name = "COMMAND")]
    sound_command: Option<String>,
    /// Render every screen with sample data to PNG files in DIR (800x480
    /// and 1280x800, software renderer, no display needed) and exit.
    #[arg(long, value_name = "DIR")]
    screenshots: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "pumpgw-terminal: error: {}",
                pumpgw::report::chain(e.as_ref())
            );
            ExitCode::from(70)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(dir) = &cli.screenshots {
        for file in pumpgw_terminal::shots::render_all(dir)? {
            println!("{}", file.display());
        }
        return Ok(());
    }
    let ui = MainWindow::new().context("cannot open the display (SLINT_BACKEND?)")?;
    let (tx, rx) = std::sync::mpsc::channel();
    desk::attach(&ui, tx);
    desk::with(|d| desk::set_sound(d, cli.sound_command.clone()));
    // The time left on each waiting confirmation counts down.
    let clock = slint::Timer::default();
    clock.start(
        slint::TimerMode::Repeated,
        std::time::Duration::from_secs(1),
        || desk::with(|d| desk::waiting_list(d)),
    );
    client::spawn(cli.socket, cli.name, ui.as_weak(), rx);
    ui.run().context("the display failed")?;
    Ok(())
}
