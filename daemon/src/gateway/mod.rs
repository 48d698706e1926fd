//! The gateway daemon as a whole (`pumpgwd run`): config, the core task,
//! one session task per port, and an orderly shutdown.
//!
//! ```text
//!   port task ─┐  Envelope (mpsc, bounded)        Snapshot (watch)
//!   port task ─┼──────────────────────────▶ core ─────────────────▶ views
//!   port task ─┘ ◀── Decision (oneshot per programme request)
//!        ▲
//!        └── active library (watch)
//! ```
//!
//! Shutdown: the caller's future resolves (SIGTERM, SIGINT); the core
//! withdraws open confirmations and denies new requests; every session
//! sends its pump those answers, waits (briefly) for their acknowledgement
//! and returns; the last event sender is dropped; the core drains what is queued and returns; the stop is logged;
//! the MQTT sync publishes what it can in a bounded time and disconnects.

pub mod authorise;
pub mod check;
pub mod checkpoints;
pub mod clock;
pub mod config;
pub mod core;
pub mod instance;
pub mod ports;
pub mod provision;
pub mod supervise;
pub mod view;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{Config, ConfigError};
pub use view::Snapshot;

use crate::link::LinkStats;
use crate::pump::{GatewayInfo, PortSpec, PumpId, SessionContext, run_port};
use crate::store::log::{Log, last_pump_records};
use crate::store::{Context, Event, Store, StoreError, Writer};

/// Events queued between the sessions and the core.
pub const EVENT_QUEUE: usize = 256;

/// What the EHR side is given at start: its own store connection (for
/// documentation out), the active library, the bed's snapshot.
type EhrWiring<'a> = (
    Option<Store>,
    &'a watch::Receiver<Option<Arc<crate::library::ActiveLibrary>>>,
    &'a watch::Sender<Snapshot>,
);

/// Orders queued between the EHR listener and the core (each connection
/// waits for its answer, so this bounds the connections waiting).
const ORDER_QUEUE: usize = 32;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be made.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The event log cannot be opened (damaged, too new, unreadable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first record could not be written.
    #[error("cannot write to the event log: {0}")]
    Log(String),
    /// The `[mqtt]` section names files that cannot be used.
    #[error("[mqtt]: {0}")]
    Mqtt(#[from] crate::sync::settings::SettingsError),
    /// A trusted pharmacy key cannot be read.
    #[error("trusted_keys: {0}")]
    TrustedKey(#[from] crate::library::signature::SignatureError),
    /// The terminal socket cannot be made.
    #[error(transparent)]
    Terminal(#[from] crate::terminal::ServiceError),
    /// Another daemon runs on the same data folder.
    #[error("{0}")]
    InUse(String),
    /// The `[ehr]` listener cannot listen.
    #[error("[ehr] listen: {0}")]
    Ehr(String),
    /// The key that signs the log's checkpoints cannot be used.
    #[error(transparent)]
    Checkpoint(#[from] crate::store::checkpoint::CheckpointError),
}

/// Runs the gateway until `shutdown` resolves, publishing snapshots on
/// `view`.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    view: watch::Sender<Snapshot>,
) -> Result<(), StartError> {
    run_with(config, shutdown, view, None).await
}

/// [`run`], with practice mode's board (`pumpgwd demo --practice`) passed
/// to every bedside terminal as it changes.
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()>,
    view: watch::Sender<Snapshot>,
    board: Option<watch::Receiver<crate::terminal::protocol::PracticeBoard>>,
) -> Result<(), StartError> {
    // Held until `run` returns: one daemon per data folder.
    let _instance = instance::claim(&config.data_dir)?;
    let OpenLog {
        writer,
        thread: writer_thread,
        reader,
        restored,
        library,
        sync_stores,
        pin_store,
        checkpoint_reader,
        ehr_store,
    } = open_log(&config)?;
    // Before anything is logged: a key that cannot be used stops the start.
    let signer = crate::store::checkpoint::Signer::load_or_create(&config.data_dir)?;
    let started_at = time::OffsetDateTime::now_utc();
    let sync_setup = sync_setup(&config, sync_stores, started_at)?;
    let started_context = log_start(&writer, &config, library.as_deref()).await?;
    let (library_tx, library_rx) = watch::channel(library);
    let checkpoints = Checkpoints::spawn(checkpoints::Anchor {
        signer,
        reader: std::sync::Mutex::new(checkpoint_reader),
        context: started_context.clone(),
        library: library_rx.clone(),
        writer: writer.clone(),
    });
    let gateway = gateway_info(&config);
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let cancel = CancellationToken::new();
    let timing = config.link.timing();
    let backoff = config.link.backoff();

    // The bedside terminals and the EHR: stopped together, before the log.
    let services_cancel = CancellationToken::new();
    let (terminal, terminals) = start_terminal(&config, &view, pin_store, board, &services_cancel)?;
    let (ehr, orders_rx) = start_ehr(&config, (ehr_store, &library_rx, &view), &services_cancel)?;
    let sync_cancel = CancellationToken::new();
    let sync = sync_setup.map(|setup| spawn_sync(setup, &writer, &view, &sync_cancel));
    let ports = port_specs(&config);
    let beat = supervise::Beat::default();
    let (time_sync, time_sync_rx) = watch::channel(0u64);
    let core = core::Core::new(
        gateway.clone(),
        time::Duration::seconds(config.authorisation.validity_s.into()),
        &ports
            .iter()
            .map(|(p, s)| (p.name.clone(), s.clone()))
            .collect::<Vec<_>>(),
        core::Wiring {
            view,
            writer: writer.clone(),
            terminals: terminals.connected,
            beat: beat.clone(),
            clock: clock::Clock::system(),
            time_sync,
        },
        core::Library {
            reader: std::sync::Mutex::new(reader),
            tx: library_tx,
        },
        restored,
    );
    let core = tokio::spawn(core.run(events_rx, terminals.commands, orders_rx, cancel.clone()));

    let sessions = spawn_sessions(
        ports,
        &SessionContext {
            pump: Arc::from(""),
            gateway,
            events: events_tx,
            library: library_rx.clone(),
            timing,
            stats: Arc::default(),
            time_sync: time_sync_rx,
        },
        backoff,
        &cancel,
    );
    info!(gateway = %config.gateway_id, care_area = %config.care_area, pumps = config.ports.len(), "gateway running");
    supervise::ready(&ready_status(&config, &library_rx));
    main_loop(shutdown, supervise::Watchdog::new(beat)).await;
    supervise::stopping();
    info!("shutting down: closing pump sessions");
    cancel.cancel();
    services_cancel.cancel();
    checkpoints.stop.cancel();
    drain(sessions, core).await;
    join_logged(terminal, "the terminal service").await;
    join_logged(ehr, "the EHR listener").await;
    log_stop(&writer, started_context, checkpoints).await;
    // Last: the broker gets what it can of the final records, then DISCONNECT.
    sync_cancel.cancel();
    join_logged(sync, "the MQTT sync").await;
    drop(writer);
    if writer_thread.join().is_err() {
        warn!("the event log writer ended abnormally");
    }
    info!("stopped");
    Ok(())
}

/// Logs the stop, then signs it (before the broker gets the last records).
async fn log_stop(writer: &Writer, context: Context, checkpoints: Checkpoints) {
    let stopped = Event::GatewayStopped {
        reason: "shutdown requested".to_owned(),
    };
    if let Err(e) = writer.append(vec![(context, stopped)]).await {
        warn!(error = %e, "could not log the stop");
    }
    checkpoints.last().await;
}

/// One session task per port, each with `shared`'s context under its own
/// name and counters (`shared`'s own event sender is dropped with it).
fn spawn_sessions(
    ports: Vec<(PortSpec, Arc<LinkStats>)>,
    shared: &SessionContext,
    backoff: crate::pump::Backoff,
    cancel: &CancellationToken,
) -> JoinSet<()> {
    let mut sessions = JoinSet::new();
    for (spec, stats) in ports {
        let ctx = SessionContext {
            pump: spec.name.clone(),
            stats,
            ..shared.clone()
        };
        sessions.spawn(run_port(spec, ctx, backoff, cancel.clone()));
    }
    sessions
}

/// The checkpoint task and the two moments of the stop it waits for.
struct Checkpoints {
    task: tokio::task::JoinHandle<()>,
    /// No more periodic checkpoints.
    stop: CancellationToken,
    /// The stop is logged: sign it.
    last: CancellationToken,
}

impl Checkpoints {
    fn spawn(anchor: checkpoints::Anchor) -> Checkpoints {
        let (stop, last) = (CancellationToken::new(), CancellationToken::new());
        let task = tokio::spawn(anchor.run(stop.clone(), last.clone()));
        Checkpoints { task, stop, last }
    }

    /// Signs the stop and waits for it to be logged.
    async fn last(self) {
        self.stop.cancel();
        self.last.cancel();
        join_logged(Some(self.task), "the checkpoint task").await;
    }
}

/// Logs the start; returns the context the stop is logged under.
/// The one line `systemctl status` shows once the gateway is up.
fn ready_status(
    config: &Config,
    library: &watch::Receiver<Option<Arc<crate::library::ActiveLibrary>>>,
) -> String {
    format!(
        "running: {} pump port(s), library {}",
        config.ports.len(),
        library.borrow().as_ref().map_or_else(
            || "none active".to_owned(),
            |l| format!("version {}", l.version())
        )
    )
}

/// Waits for the stop, feeding systemd's watchdog meanwhile when it asked
/// for one, and only while the core turns.
async fn main_loop(shutdown: impl Future<Output = ()>, mut watchdog: supervise::Watchdog) {
    let Some(period) = supervise::watchdog_period() else {
        shutdown.await;
        return;
    };
    info!(
        every_ms = period.as_millis(),
        "feeding the systemd watchdog"
    );
    let mut feed = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    feed.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = feed.tick() => watchdog.check(),
        }
    }
}

async fn log_start(
    writer: &Writer,
    config: &Config,
    library: Option<&crate::library::ActiveLibrary>,
) -> Result<Context, StartError> {
    let context = Context {
        gateway: config.gateway_id.clone(),
        pump: None,
        care_area: config.care_area.clone(),
        library_version: library.map(crate::library::ActiveLibrary::version),
    };
    let started = Event::GatewayStarted {
        software: env!("CARGO_PKG_VERSION").to_owned(),
    };
    writer
        .append(vec![(context.clone(), started)])
        .await
        .map_err(|e| StartError::Log(e.to_string()))?;
    Ok(context)
}

/// Waits for a task, logging if it ended abnormally.
async fn join_logged(task: Option<tokio::task::JoinHandle<()>>, what: &str) {
    if let Some(t) = task
        && let Err(e) = t.await
    {
        warn!(error = %e, "{what} ended abnormally");
    }
}

/// Who the gateway is, as every session tells its pump.
fn gateway_info(config: &Config) -> Arc<GatewayInfo> {
    Arc::new(GatewayInfo {
        gateway_id: config.gateway_id.clone(),
        care_area: config.care_area.clone(),
    })
}

/// Listens for the EHR's orders (`[ehr]`; a port that cannot be had stops
/// the start, like any config error). The orders go to the core through
/// the receiver returned (closed when no listener is configured).
fn start_ehr(
    config: &Config,
    (ehr_store, library, view): EhrWiring<'_>,
    cancel: &CancellationToken,
) -> Result<
    (
        Option<tokio::task::JoinHandle<()>>,
        mpsc::Receiver<crate::ehr::intake::OrderIn>,
    ),
    StartError,
> {
    let (core, orders) = mpsc::channel(ORDER_QUEUE);
    let Some(settings) = &config.ehr else {
        return Ok((None, orders));
    };
    let fail = |e: std::io::Error| StartError::Ehr(format!("{}: {e}", settings.listen));
    let listener = std::net::TcpListener::bind(settings.listen).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(fail)?;
    let ehr = crate::ehr::listener::Ehr {
        gateway: config.gateway_id.clone(),
        care_area: config.care_area.clone(),
        core,
        max_message: settings.max_message_bytes,
        answers: Arc::default(),
    };
    let tls = match settings.tls() {
        Some((cert, key, ca)) => Some(
            crate::ehr::tls::acceptor(cert, key, ca)
                .map_err(|e| StartError::Ehr(format!("TLS: {e}")))?,
        ),
        None => None,
    };
    let serve = crate::ehr::listener::serve(listener, ehr, tls, cancel.clone());
    let send =
        ehr_sender(config, settings, (ehr_store, library, view))?.map(|s| s.run(cancel.clone()));
    let task = tokio::spawn(async move {
        match send {
            Some(send) => drop(tokio::join!(serve, send)),
            None => serve.await,
        }
    });
    Ok((Some(task), orders))
}

/// Documentation out, when `send_to` is configured (its TLS files read
/// now: a fault stops the start).
fn ehr_sender(
    config: &Config,
    settings: &config::EhrSettings,
    (store, library, view): EhrWiring<'_>,
) -> Result<Option<crate::ehr::sender::Sender>, StartError> {
    let (Some(destination), Some(store)) = (settings.send_to, store) else {
        return Ok(None);
    };
    let tls = match settings.send_tls() {
        Some(files) => Some(tokio_rustls::TlsConnector::from(Arc::new(
            crate::sync::settings::client_config(&files)
                .map_err(|e| StartError::Ehr(format!("send_to TLS: {e}")))?,
        ))),
        None => None,
    };
    Ok(Some(crate::ehr::sender::Sender {
        destination,
        origin: crate::ehr::document::Origin {
            gateway: config.gateway_id.clone(),
            care_area: config.care_area.clone(),
        },
        store: std::sync::Mutex::new(store),
        library: library.clone(),
        ack_timeout: std::time::Duration::from_secs(settings.ack_timeout_s),
        history: core::HISTORY_KEPT,
        view: view.subscribe(),
        status_every: (settings.status_every_s > 0)
            .then(|| std::time::Duration::from_secs(settings.status_every_s)),
        tls,
    }))
}

/// Binds the terminal socket (a failure stops the start, like any config
/// error) and starts serving it.
fn start_terminal(
    config: &Config,
    view: &watch::Sender<Snapshot>,
    pin_store: Option<Store>,
    board: Option<watch::Receiver<crate::terminal::protocol::PracticeBoard>>,
    cancel: &CancellationToken,
) -> Result<(Option<tokio::task::JoinHandle<()>>, core::Terminals), StartError> {
    let (Some(path), Some(pin_store)) = (&config.terminal.socket, pin_store) else {
        info!("no [terminal] socket: anything that needs a person's confirmation is denied");
        return Ok((None, core::Terminals::none()));
    };
    let service = crate::terminal::Service::bind(
        path,
        config.terminal.socket_group.as_deref(),
        usize::from(config.terminal.max_terminals),
        &config.gateway_id,
        &config.care_area,
    )?;
    let (commands, commands_rx) = mpsc::channel(crate::terminal::command::QUEUE);
    let (connected, connected_rx) = watch::channel(0);
    let desk = crate::terminal::service::Desk {
        commands,
        connected: Arc::new(connected),
        store: Arc::new(std::sync::Mutex::new(pin_store)),
        staff_file: config.staff_file(),
        lockout: config.terminal.lockout(),
        practice: config.practice,
        board,
        viewing: Arc::new(watch::channel(crate::terminal::service::Viewing::new()).0),
    };
    let task = tokio::spawn(service.run(view.subscribe(), desk, cancel.clone()));
    Ok((
        Some(task),
        core::Terminals {
            connected: connected_rx,
            commands: commands_rx,
        },
    ))
}

/// Waits for every session, then for the core (which ends once the last
/// session has dropped its sender).
async fn drain<T: 'static, U>(mut sessions: JoinSet<T>, core: tokio::task::JoinHandle<U>) {
    while let Some(done) = sessions.join_next().await {
        if let Err(e) = done {
            warn!(error = %e, "a pump session ended abnormally");
        }
    }
    if let Err(e) = core.await {
        warn!(error = %e, "the core ended abnormally");
    }
}

/// What the MQTT sync task is started with.
type SyncSetup = (
    crate::sync::Connection,
    crate::sync::MqttSettings,
    crate::sync::messages::Identity,
    Store,
    crate::sync::library::LibraryInbox,
);

fn spawn_sync(
    (connection, settings, identity, store, inbox): SyncSetup,
    writer: &Writer,
    view: &watch::Sender<Snapshot>,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    // The cursor may lag the broker after a power cut (its commit is not
    // waited for on disk): those records are sent again, which consumers
    // de-duplicate; nothing is skipped. Waiting would make every cursor save
    // a second fsync beside the event log's own.
    if let Err(e) = store.conn.pragma_update(None, "synchronous", "NORMAL") {
        tracing::warn!(error = %e, "the outbox connection keeps synchronous=FULL");
    }
    tokio::spawn(crate::sync::run(
        crate::sync::SyncContext {
            connection,
            settings,
            identity,
            store,
            committed: writer.committed(),
            recent: writer.recent(),
            view: view.subscribe(),
            inbox,
        },
        cancel.clone(),
    ))
}

/// Checks the `[mqtt]` files now (a TLS file that cannot be read stops the
/// start, like any config error) and opens the sync task's connections.
fn sync_setup(
    config: &Config,
    stores: Option<(Store, Store)>,
    started_at: time::OffsetDateTime,
) -> Result<Option<SyncSetup>, StartError> {
    let (Some(settings), Some((outbox, inbox_store))) = (config.mqtt.clone(), stores) else {
        info!("no [mqtt] section: the event log stays on this gateway");
        return Ok(None);
    };
    let connection = settings.connection(&config.gateway_id)?;
    connection.options(None)?;
    let trusted = config
        .trusted_keys
        .iter()
        .map(|k| crate::library::signature::read_public_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    if trusted.is_empty() {
        warn!("no trusted_keys: every library that arrives over MQTT will be refused");
    }
    let inbox = crate::sync::library::LibraryInbox::new(
        inbox_store,
        trusted,
        config.approvals,
        &config.gateway_id,
        &config.care_area,
    );
    let identity = crate::sync::messages::Identity {
        site: settings.site.clone(),
        gateway: config.gateway_id.clone(),
        care_area: config.care_area.clone(),
        started_at,
    };
    Ok(Some((connection, settings, identity, outbox, inbox)))
}

/// One session spec and its counters per configured port.
fn port_specs(config: &Config) -> Vec<(PortSpec, Arc<LinkStats>)> {
    config
        .ports
        .iter()
        .map(|p| {
            let spec = PortSpec {
                name: PumpId::from(p.display_name()),
                path: p.path.clone(),
                baud: p.baud,
                driver: p.driver,
            };
            (spec, Arc::new(LinkStats::default()))
        })
        .collect()
}

/// The event log, open.
struct OpenLog {
    writer: Writer,
    thread: std::thread::JoinHandle<()>,
    /// A read-only connection, for the active library.
    reader: Store,
    /// What the log remembers: the last event record per pump serial,
    /// the dose ledger, the open orders.
    restored: core::Restored,
    /// The active library, checked for this care area (none: authorise
    /// nothing).
    library: Option<Arc<crate::library::ActiveLibrary>>,
    /// Two more connections for the MQTT sync (outbox, library inbox),
    /// when it is configured.
    sync_stores: Option<(Store, Store)>,
    /// One more for PIN attempts at the terminal, when it is configured.
    pin_store: Option<Store>,
    /// A read-only one for checkpoints (the log's head).
    checkpoint_reader: Store,
    /// One more for the EHR outbox, when documentation goes out.
    ehr_store: Option<Store>,
}

/// Opens (or creates) the event log and starts its writer.
fn open_log(config: &Config) -> Result<OpenLog, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let store = Store::open(&Store::file_in(&config.data_dir))?;
    if config.practice {
        // Before the first record of this start: every record is marked.
        store.mark_practice()?;
    }
    if store.is_practice()? {
        warn!("practice gateway: no patient; every record is marked practice");
    }
    let log = Log::new(store)?;
    let last_record = last_pump_records(log.store())?;
    info!(events = log.last_seq(), file = %log.store().path.display(), "event log open");
    let reader = Store::open_another(log.store(), true)?;
    let checkpoint_reader = Store::open_another(log.store(), true)?;
    let sync_stores = match config.mqtt {
        Some(_) => Some((
            Store::open_another(log.store(), false)?,
            Store::open_another(log.store(), false)?,
        )),
        None => None,
    };
    let pin_store = match config.terminal.socket {
        Some(_) => Some(Store::open_another(log.store(), false)?),
        None => None,
    };
    let ehr_store = match config.ehr.as_ref().and_then(|e| e.send_to) {
        Some(_) => Some(Store::open_another(log.store(), false)?),
        None => None,
    };
    let (writer, thread) = Writer::spawn(log);
    let now = time::OffsetDateTime::now_utc();
    let records = crate::store::log::dose_records_since(&reader, now - core::HISTORY_KEPT)?;
    let library = core::active_library(&reader, &config.care_area);
    let orders = core::Orders::replay(
        &records,
        library.as_deref().map(|l| &l.library),
        &config.care_area,
    );
    let ledger = core::Ledger::replay(core::ledger::entries(records));
    info!(
        tokens = ledger.open_tokens(),
        drugs = ledger.drugs(),
        orders = orders.len(),
        "dose ledger restored from the log, with the open orders"
    );
    Ok(OpenLog {
        writer,
        thread,
        reader,
        restored: core::Restored {
            last_record,
            ledger,
            orders,
        },
        library,
        sync_stores,
        pin_store,
        checkpoint_reader,
        ehr_store,
    })
}
