//! `pumpgwd demo`: the real gateway, on the built-in example library, with
//! simulated pumps on pseudo-terminals playing the example scenarios,
//! simulated staff at its bedside terminal socket (a nurse and a doctor who
//! confirm what the scenarios say), and a live status view. Nothing is
//! written outside a temporary folder, which is removed at the end.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use pumpgw::gateway::config::{AuthorisationSettings, LinkSettings, PortConfig};
use pumpgw::gateway::{self, Config, Snapshot};
use pumpgw::pump::DriverKind;
use pumpgw::sim::{self, Options, Port, scenario::Scenario};
use pumpgw::sync::MqttSettings;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::EXIT_SOFTWARE;
use crate::daemon::{runtime, shutdown_signal};

const LIBRARY: &str = include_str!("../../../../config/drug-library.example.json");

/// The example scenarios, in the order pumps get them.
const SCENARIOS: &[(&str, &str)] = &[
    (
        "fentanyl-infusion",
        include_str!("../../../../config/examples/scenarios/fentanyl-infusion.toml"),
    ),
    (
        "fentanyl-wrong-concentration-bolus",
        include_str!(
            "../../../../config/examples/scenarios/fentanyl-wrong-concentration-bolus.toml"
        ),
    ),
    (
        "noradrenaline-wrong-strength-at-load",
        include_str!(
            "../../../../config/examples/scenarios/noradrenaline-wrong-strength-at-load.toml"
        ),
    ),
    (
        "fentanyl-bolus-needs-doctor",
        include_str!("../../../../config/examples/scenarios/fentanyl-bolus-needs-doctor.toml"),
    ),
    (
        "noradrenaline-alarm-and-rate-change",
        include_str!(
            "../../../../config/examples/scenarios/noradrenaline-alarm-and-rate-change.toml"
        ),
    ),
    (
        "propofol-noisy-link",
        include_str!("../../../../config/examples/scenarios/propofol-noisy-link.toml"),
    ),
];

/// The demo's staff: (id, name, role, PIN).
pub(crate) const STAFF: &[(&str, &str, pumpgw::library::Role, &str)] = &[
    (
        "n.okafor",
        "Nkechi Okafor",
        pumpgw::library::Role::Nurse,
        "482916",
    ),
    (
        "d.patel",
        "Dev Patel",
        pumpgw::library::Role::Doctor,
        "719384",
    ),
];

/// What `pumpgwd demo` was asked for.
pub(crate) struct DemoOptions {
    pub(crate) pumps: u8,
    pub(crate) speed: u32,
    pub(crate) duration: Option<u64>,
    pub(crate) plain: bool,
    pub(crate) broker: Option<String>,
    /// Start the touchscreen where there is a display.
    pub(crate) terminal: bool,
}

/// The pump whose confirmations are left to a person at the touchscreen
/// (the doctor-confirmed fentanyl bolus), when the touchscreen runs.
const FOR_A_PERSON: usize = 3;

/// The touchscreen binary next to this one, when there is a display to
/// show it on.
pub(crate) fn touchscreen() -> Result<std::path::PathBuf, String> {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !display {
        return Err("no display (DISPLAY or WAYLAND_DISPLAY)".to_owned());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let terminal = exe.with_file_name("pumpgw-terminal");
    if terminal.is_file() {
        Ok(terminal)
    } else {
        Err(format!(
            "{} is not built (cargo build -p pumpgw-terminal)",
            terminal.display()
        ))
    }
}

pub(crate) fn main(options: DemoOptions) -> ExitCode {
    exit_of(run(options))
}

/// The demo's exit status, its error said.
pub(crate) fn exit_of(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pumpgwd demo: error: {}", pumpgw::report::chain(e.as_ref()));
            ExitCode::from(EXIT_SOFTWARE)
        }
    }
}

fn run(options: DemoOptions) -> Result<()> {
    let DemoOptions {
        pumps,
        speed,
        duration,
        plain,
        broker,
        terminal,
    } = options;
    let dir = tempfile::Builder::new()
        .prefix("pumpgw-demo-")
        .tempdir()
        .context("cannot make a temporary folder")?;
    let log_path = log_to(dir.path())?;

    let config = demo_config(dir.path(), "demo-bed-1", pumps, broker)?;
    let bedside = demo_staff(&config)?;
    let screen = if terminal {
        touchscreen()
    } else {
        Err("--no-terminal".to_owned())
    };
    let live = !plain && std::io::stdout().is_terminal();

    let rt = runtime()?;
    rt.block_on(async move {
        let signal = shutdown_signal()?;
        let stop = CancellationToken::new();
        let mut sims = tokio::task::JoinSet::new();
        // One bedside terminal for the bed, as at a real bedside.
        let staff = sim::bedside::spawn(bedside.clone(), "demo-bed-1".to_owned(), stop.clone());
        // The person's pump starts once the touchscreen is there, or its
        // first request would be denied for want of a terminal.
        let mut for_the_person = None;
        for (i, port) in config.ports.iter().enumerate() {
            let (name, text) = SCENARIOS[i % SCENARIOS.len()];
            let mut scenario = Scenario::parse(text, name).context("built-in scenario")?;
            scenario.pump.serial = format!("SIM-{:04}", i + 1);
            let opts = Options {
                speed,
                stay: true,
                repeat: true,
                name: format!("{} ({name})", port.display_name()),
                // With the touchscreen up, one pump waits for you.
                bedside: (screen.is_err() || i != FOR_A_PERSON).then(|| staff.clone()),
                ..Options::default()
            };
            let link = Port::Pty {
                link: Some(port.path.clone()),
            };
            if screen.is_ok() && i == FOR_A_PERSON {
                for_the_person = Some((scenario, link, opts));
                continue;
            }
            sims.spawn(sim::run(scenario, link, opts, None, stop.clone(), |_| {}));
        }
        let (view_tx, mut view) = watch::channel(Snapshot::default());
        let gateway_stop = stop.clone();
        let gateway = tokio::spawn(gateway::run(
            config,
            async move { gateway_stop.cancelled().await },
            view_tx,
        ));
        let mut touch = screen.and_then(|program| start_touchscreen(&program, &bedside.socket));
        if let Some((scenario, link, mut opts)) = for_the_person {
            if !touchscreen_in(&mut view, touch.is_ok()).await {
                // No touchscreen after all: the simulated staff answer it.
                opts.bedside = Some(staff.clone());
            }
            sims.spawn(sim::run(scenario, link, opts, None, stop.clone(), |_| {}));
        }
        let header = header(
            pumps,
            speed,
            &log_path,
            &bedside.socket,
            touch.as_ref().map(|_| ()),
        );
        if !live {
            println!("{header}");
        }
        let deadline = duration.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        show(&mut view, &header, live, deadline, signal).await;
        stop.cancel();
        if let Ok(child) = &mut touch {
            let _ = child.kill();
            let _ = child.wait();
        }
        gateway
            .await
            .context("the gateway task failed")?
            .context("the gateway did not start")?;
        while sims.join_next().await.is_some() {}
        println!("\npumpgw demo stopped.");
        anyhow::Ok(())
    })?;
    drop(dir);
    Ok(())
}

/// Waits until the touchscreen has connected beside the simulated staff's
/// terminal (at most 15 s), so that the person's pump, started then,
/// finds someone to ask; false when there is no touchscreen to wait for.
async fn touchscreen_in(view: &mut watch::Receiver<Snapshot>, started: bool) -> bool {
    if !started {
        return false;
    }
    let both =
        tokio::time::timeout(Duration::from_secs(15), view.wait_for(|v| v.terminals >= 2)).await;
    if !matches!(both, Ok(Ok(_))) {
        eprintln!("pumpgw demo: the touchscreen has not connected yet; your pump starts anyway");
    }
    true
}

/// Shows the bed until the signal or the deadline: redrawn in place on a
/// terminal, printed when it changes otherwise.
async fn show(
    view: &mut watch::Receiver<Snapshot>,
    header: &str,
    live: bool,
    deadline: Option<tokio::time::Instant>,
    signal: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(signal);
    let mut every = tokio::time::interval(Duration::from_millis(if live { 500 } else { 1000 }));
    let mut last = String::new();
    loop {
        tokio::select! {
            () = &mut signal => break,
            () = sleep_until(deadline) => break,
            _ = every.tick() => {
                let text = view.borrow_and_update().render();
                let mut out = std::io::stdout().lock();
                if live {
                    // Home the cursor and clear: a redraw, not a scroll.
                    let _ = write!(out, "\x1b[H\x1b[2J{header}\n{text}");
                } else if text != last {
                    let _ = writeln!(out, "{text}");
                }
                let _ = out.flush();
                last = text;
            }
        }
    }
}

/// The example library and one port per simulated pump, in `dir`.
pub(crate) fn demo_config(
    dir: &std::path::Path,
    gateway_id: &str,
    pumps: u8,
    broker: Option<String>,
) -> Result<Config> {
    pumpgw::sim::library::install_library(dir, gateway_id, "adult-icu", LIBRARY.as_bytes())
        .context("cannot install the example library")?;
    let ports: Vec<PortConfig> = (1..=pumps)
        .map(|i| PortConfig {
            name: Some(format!("pump-{i}")),
            path: dir.join(format!("pump-{i}")),
            baud: 115_200,
            driver: DriverKind::PumpgwLink,
        })
        .collect();
    let config = Config {
        gateway_id: gateway_id.to_owned(),
        care_area: "adult-icu".to_owned(),
        data_dir: dir.to_path_buf(),
        trusted_keys: Vec::new(),
        approvals: 1,
        link: LinkSettings::default(),
        authorisation: AuthorisationSettings::default(),
        ports,
        mqtt: broker.map(|b| MqttSettings::new(&b, "demo")),
        terminal: pumpgw::gateway::config::TerminalSettings {
            socket: Some(dir.join("terminal.sock")),
            ..pumpgw::gateway::config::TerminalSettings::default()
        },
        ehr: None,
        practice: false,
    };
    if let Some(m) = &config.mqtt {
        m.validate(&config.gateway_id)
            .map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
    }
    Ok(config)
}

/// Sends the gateway's log to `gateway.log` in `dir`; returns its path.
pub(crate) fn log_to(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let log_path = dir.join("gateway.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(pumpgw::logging::Lossy(log)))
        .log_internal_errors(false)
        .try_init();
    Ok(log_path)
}

/// Starts the touchscreen on the demo's socket.
pub(crate) fn start_touchscreen(
    program: &std::path::Path,
    socket: &std::path::Path,
) -> Result<std::process::Child, String> {
    // Its log (what it showed, and when) beside the gateway's.
    let log = socket.with_file_name("touchscreen.log");
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    std::process::Command::new(program)
        .arg("--socket")
        .arg(socket)
        .args(["--name", "demo-touchscreen"])
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))
}

/// What the demo prints first: the log, the socket, the staff, the
/// touchscreen.
fn header(
    pumps: u8,
    speed: u32,
    log: &std::path::Path,
    socket: &std::path::Path,
    touch: Result<(), &String>,
) -> String {
    let staff = STAFF
        .iter()
        .map(|(id, _, _, pin)| format!("{id} PIN {pin}"))
        .collect::<Vec<_>>()
        .join(", ");
    let screen = match touch {
        Ok(()) => format!(
            "Touchscreen: running; pump-{pump} waits for you to confirm there (simulated staff confirm the rest).\n\
             Touchscreen log: {}\n\
             Your part, at the touchscreen (pump-{pump}: a new fentanyl syringe, then a bolus):\n\
             \x20 1. Tap the blue banner (\"1 confirmation waiting\"), then pump-{pump} in the list.\n\
             \x20 2. As the nurse, type the syringe's label blind: Amount 2500, tap micrograms, in 50 (mL);\n\
             \x20    tap {nurse}, type PIN {nurse_pin}, tap Confirm.\n\
             \x20 3. Tap OK. As the doctor, for the 25 microgram bolus: tap {doctor}, PIN {doctor_pin}, Confirm.\n\
             \x20 Try a wrong label (500 micrograms) to see the pump stopped: DO NOT START.",
            socket.with_file_name("touchscreen.log").display(),
            pump = FOR_A_PERSON + 1,
            nurse = STAFF[0].1,
            nurse_pin = STAFF[0].3,
            doctor = STAFF[1].1,
            doctor_pin = STAFF[1].3,
        ),
        Err(why) => {
            format!("Touchscreen: not started ({why}); simulated staff confirm at the socket.")
        }
    };
    format!(
        "pumpgw demo: {pumps} simulated pumps at {speed}x speed. Ctrl-C stops.\nGateway log: {}\nTerminal socket: {} (staff: {staff})\n{screen}\n",
        log.display(),
        socket.display(),
    )
}

/// Writes the demo's staff file; the simulated staff at the terminal.
pub(crate) fn demo_staff(config: &Config) -> Result<sim::bedside::Bedside> {
    let mut roster = pumpgw::staff::Roster::default();
    let mut bedside = sim::bedside::Bedside {
        socket: config
            .terminal
            .socket
            .clone()
            .context("the demo has a terminal socket")?,
        ..sim::bedside::Bedside::default()
    };
    for (id, name, role, pin) in STAFF {
        roster
            .add(id, name, *role, pin)
            .with_context(|| format!("demo staff {id}"))?;
        let who = sim::bedside::Staff {
            id: (*id).to_owned(),
            pin: (*pin).to_owned(),
        };
        match role {
            pumpgw::library::Role::Doctor => bedside.doctors.push(who),
            _ => bedside.nurses.push(who),
        }
    }
    roster
        .save(&config.staff_file())
        .context("cannot write the demo's staff file")?;
    Ok(bedside)
}

pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
