//! The MQTT client task: one broker connection at a time, a fresh rumqttc
//! client and event loop for each, and a capped exponential backoff with
//! jitter after every failure.
//!
//! ```text
//!  event log ──(committed seq, watch)──┐
//!  core ───────(Snapshot, watch)───────┤
//!                                      ▼
//!   rumqttc EventLoop ──(mpsc 64)──▶ session ──try_publish──▶ AsyncClient (channel 64)
//!        (driver task)                 │  ▲
//!                                      │  └── batches read from the store (blocking pool)
//!                                      ├──▶ outbox cursor, link state (store)
//!                                      └──▶ library inbox (blocking pool) ──▶ archive, active library
//! ```
//!
//! A fresh event loop per connection means nothing stale is replayed: what
//! the broker did not acknowledge is read again from the log after the
//! durable cursor. The driver task owns the event loop and stops at its
//! first error, so the session never polls a failed loop in a tight circle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Incoming, Outgoing, QoS};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::library::{self, LibraryInbox, Outcome};
use super::messages::{self, GatewayStatus, Identity, LibraryRef, PumpStatus};
use super::settings::{Connection, MqttSettings};
use super::topic::Topics;
use super::window::Window;
use crate::gateway::Snapshot;
use crate::store::outbox::{self, Batch, BatchLimits, Origin};
use crate::store::{Store, StoreError};

/// Requests queued to rumqttc; our window keeps well below it.
const CLIENT_CHANNEL: usize = 64;
/// How long the cursor may lag the acknowledgements in memory: what a
/// crash can make the broker receive twice (one commit per interval keeps
/// fsyncs off the drain's critical path).
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pump statuses go out this long after a change, the changes meanwhile
/// together: a pump streaming events would otherwise cost a retained
/// publish (and its acknowledgement) per event.
const PUMPS_EVERY: Duration = Duration::from_millis(100);
/// How often the log is looked at for records written by other processes
/// (`pumpgwd library ...`), which the writer's watch does not see.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a clean stop waits for outstanding acknowledgements.
const GOODBYE: Duration = Duration::from_secs(2);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);

/// Everything the client task needs.
pub struct SyncContext {
    /// How to connect.
    pub connection: Connection,
    /// Batching, window, intervals, backoff.
    pub settings: MqttSettings,
    /// Who this gateway is.
    pub identity: Identity,
    /// Read-write connection for the outbox cursor and link state.
    pub store: Store,
    /// The last committed sequence number.
    pub committed: watch::Receiver<u64>,
    /// The records of the writer's last commit: live records are published
    /// from here, without reading the store back.
    pub recent: watch::Receiver<Arc<crate::store::writer::Committed>>,
    /// Pump snapshots from the core.
    pub view: watch::Receiver<Snapshot>,
    /// Where libraries from MQTT go.
    pub inbox: LibraryInbox,
}

/// Capped exponential backoff with jitter: each delay is drawn from the
/// upper half of a window that doubles up to the cap, so a fleet that lost
/// its broker together does not return in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, never above `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The next delay.
    pub fn delay(&mut self) -> Duration {
        let window = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = window / 2;
        let ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(fastrand::u64(0..=ms))
    }

    /// Back to the first delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// How a session ended.
enum End {
    Shutdown,
    Lost {
        reason: String,
        lasted: Duration,
        /// The connection died of an incoming message over the size limit
        /// (its size): one on a library topic, since nothing else is
        /// subscribed.
        oversize: Option<usize>,
    },
}

struct Shared {
    store: Arc<Mutex<Store>>,
    inbox: Arc<Mutex<LibraryInbox>>,
    origin: Origin,
    topics: Topics,
    limits: BatchLimits,
    /// The writer's last commit.
    recent: watch::Receiver<Arc<crate::store::writer::Committed>>,
    /// Acknowledged, in memory (may be ahead of the store by `FLUSH_EVERY`).
    acked: u64,
    /// What the store holds.
    flushed: u64,
    acked_at: Option<String>,
    broker: String,
}

impl Shared {
    fn new(
        store: Store,
        inbox: LibraryInbox,
        recent: watch::Receiver<Arc<crate::store::writer::Committed>>,
        identity: &Identity,
        settings: &MqttSettings,
        connection: &Connection,
    ) -> Shared {
        let cursor = outbox::cursor(&store).unwrap_or_else(|e| {
            error!(error = %e, "the outbox cursor cannot be read; starting from the beginning");
            outbox::Cursor {
                acked_seq: 0,
                acked_at: None,
            }
        });
        Shared {
            store: Arc::new(Mutex::new(store)),
            inbox: Arc::new(Mutex::new(inbox)),
            origin: Origin {
                site: identity.site.clone(),
                gateway: identity.gateway.clone(),
            },
            topics: Topics::new(&identity.site, &identity.gateway),
            limits: BatchLimits {
                max_records: usize::try_from(settings.batch_max_events).unwrap_or(100),
                max_bytes: 256 * 1024,
            },
            recent,
            acked: cursor.acked_seq,
            flushed: cursor.acked_seq,
            acked_at: cursor.acked_at,
            broker: connection.broker.to_string(),
        }
    }
}

/// Runs until `shutdown` is cancelled: connects, publishes, reconnects.
pub async fn run(ctx: SyncContext, shutdown: CancellationToken) {
    let SyncContext {
        connection,
        settings,
        identity,
        store,
        mut committed,
        recent,
        mut view,
        inbox,
    } = ctx;
    let mut shared = Shared::new(store, inbox, recent, &identity, &settings, &connection);
    let mut backoff = Backoff::new(
        Duration::from_millis(settings.reconnect_initial_ms.into()),
        Duration::from_millis(settings.reconnect_max_ms.into()),
    );
    info!(broker = %shared.broker, acked = shared.acked, "MQTT sync starting");
    let mut attempt: u32 = 0;
    // Set when a message too large to read arrived on a library topic: the
    // topics stay unsubscribed until then, so the event feed goes on.
    let mut libraries_paused_until: Option<Instant> = None;
    loop {
        let libraries_paused = libraries_paused_until.filter(|at| Instant::now() < *at);
        let connected_at = OffsetDateTime::now_utc();
        let will =
            serde_json::to_vec(&identity.will(connected_at)).expect("a status always serialises");
        let end = match connection.options(Some(rumqttc::LastWill::new(
            shared.topics.status(),
            will,
            QoS::AtLeastOnce,
            true,
        ))) {
            Ok(options) => {
                let mut session = Session {
                    shared: &mut shared,
                    settings: &settings,
                    identity: &identity,
                    committed: &mut committed,
                    view: &mut view,
                    published: std::collections::HashMap::new(),
                    library: None,
                    drain: None,
                    libraries_paused,
                };
                session.serve(options, &shutdown).await
            }
            Err(e) => End::Lost {
                reason: format!("cannot set up the connection: {e}"),
                lasted: Duration::ZERO,
                oversize: None,
            },
        };
        flush(&mut shared).await;
        match end {
            End::Shutdown => break,
            End::Lost {
                reason,
                lasted,
                oversize,
            } => {
                if let Some(size) = oversize {
                    let pause = Duration::from_secs(settings.library_pause_s.into());
                    libraries_paused_until = Some(refuse_oversize(&shared, size, pause).await);
                }
                // An oversized message is not the broker's fault: reconnect
                // at once, without the library topics.
                if lasted >= STABLE || oversize.is_some() {
                    backoff.reset();
                    attempt = 0;
                }
                attempt += 1;
                let delay = backoff.delay();
                let backlog = outbox_backlog(&shared).await;
                warn!(
                    broker = %shared.broker,
                    error = %reason,
                    attempt,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    backlog,
                    "MQTT connection failed; retrying with backoff"
                );
                set_link(&shared, "disconnected", Some(&reason)).await;
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    set_link(&shared, "stopped", None).await;
    info!(broker = %shared.broker, acked = shared.acked, "MQTT sync stopped");
}

/// Refuses (and logs, once per run) a message too large to read on a
/// library topic; returns until when the topics are left alone.
async fn refuse_oversize(shared: &Shared, size: usize, pause: Duration) -> Instant {
    let inbox = shared.inbox.clone();
    let refused = tokio::task::spawn_blocking(move || {
        inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .oversize(size, pause)
    })
    .await;
    if let Err(e) = refused {
        error!(error = %e, "the refusal of an oversized library message failed");
    }
    Instant::now() + pause
}

/// The error and every cause under it, once each, with a hint for the
/// usual mistakes.
pub fn describe(e: &ConnectionError) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    let text = parts.join(": ");
    let hint = if let ConnectionError::ConnectionRefused(code) = e {
        match code {
            rumqttc::ConnectReturnCode::BadUserNamePassword
            | rumqttc::ConnectReturnCode::NotAuthorized => {
                " (the broker did not accept this gateway's user name, password or certificate: check username and password_file, and the broker's ACL)"
            }
            rumqttc::ConnectReturnCode::BadClientId => {
                " (the broker refused the client id: check client_id)"
            }
            _ => " (the broker is up but not taking connections)",
        }
    } else if text.contains("UnknownIssuer") {
        " (the broker's certificate is not signed by the CA in ca_file)"
    } else if text.contains("UnknownCA") || text.contains("UnknownCa") {
        // The broker's alert: it is the gateway's certificate it does not
        // trust, not the other way round.
        " (the broker does not trust the CA that signed this gateway's cert_file: give the broker that CA, or use a certificate from the broker's CA)"
    } else if text.contains("xpired") {
        " (a certificate has expired: check the dates of the broker's certificate and of this gateway's cert_file)"
    } else if text.contains("NotValidForName") {
        " (the broker's certificate does not name the host in the broker address)"
    } else if text.contains("CertificateRequired") || text.contains("BadCertificate") {
        " (the broker did not accept this gateway's client certificate)"
    } else if text.contains("os error 111") {
        " (is the broker running, and are the address and port right?)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let guard = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    })
    .await
    .unwrap_or_else(|e| {
        Err(StoreError::Sqlite {
            path: "outbox".into(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })
    })
}

async fn flush(shared: &mut Shared) {
    if shared.acked <= shared.flushed {
        return;
    }
    let seq = shared.acked;
    let now = OffsetDateTime::now_utc();
    match blocking(&shared.store, move |s| outbox::advance(s, seq, now)).await {
        Ok(_) => {
            shared.flushed = seq;
            shared.acked_at = Some(crate::store::record::time_text(now));
        }
        Err(e) => {
            warn!(error = %e, acked = seq, "the outbox cursor could not be saved; those records will be sent again");
        }
    }
}

async fn set_link(shared: &Shared, state: &'static str, detail: Option<&str>) {
    let broker = shared.broker.clone();
    let detail = detail.map(str::to_owned);
    let now = OffsetDateTime::now_utc();
    if let Err(e) = blocking(&shared.store, move |s| {
        outbox::set_link(s, &broker, state, detail.as_deref(), now)
    })
    .await
    {
        warn!(error = %e, "the broker connection state could not be recorded");
    }
}

async fn outbox_backlog(shared: &Shared) -> u64 {
    let acked = shared.acked;
    blocking(&shared.store, outbox::head)
        .await
        .map_or(0, |h| h.saturating_sub(acked))
}

/// One connection.
struct Session<'a> {
    shared: &'a mut Shared,
    settings: &'a MqttSettings,
    identity: &'a Identity,
    committed: &'a mut watch::Receiver<u64>,
    view: &'a mut watch::Receiver<Snapshot>,
    /// Pump statuses as last published (without `last_seen`).
    published: std::collections::HashMap<String, PumpStatus>,
    /// The active library's hash in the gateway status last published.
    library: Option<String>,
    /// Since when, and from which record, the backlog has been draining.
    drain: Option<(Instant, u64)>,
    /// Until when the library topics are left alone (an oversized message
    /// waits there); subscribed at `ConnAck` when not, and at this time
    /// during a connection that lasts.
    libraries_paused: Option<Instant>,
}

/// Sleeps until `at`, or for ever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn drive(mut eventloop: EventLoop, tx: mpsc::Sender<Result<Event, ConnectionError>>) {
    loop {
        let r = eventloop.poll().await;
        let failed = r.is_err();
        if tx.send(r).await.is_err() || failed {
            return;
        }
    }
}

impl Session<'_> {
    async fn serve(&mut self, options: rumqttc::MqttOptions, shutdown: &CancellationToken) -> End {
        let started = Instant::now();
        let (client, mut eventloop) = AsyncClient::new(options, CLIENT_CHANNEL);
        // Small messages (a batch of one live record, a PUBACK) go out at
        // once rather than waiting for Nagle's algorithm to fill a packet.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (tx, mut events) = mpsc::channel(64);
        let driver = tokio::spawn(drive(eventloop, tx));
        let _abort = AbortOnDrop(driver);
        let capacity = usize::from(self.settings.in_flight_batches);
        let mut window = Window::new(self.shared.acked, capacity);
        let mut connected = false;
        let status_every = Duration::from_secs(self.settings.status_interval_s.into());
        // The first status goes out at ConnAck, not at the first tick.
        let mut status_tick = tokio::time::interval_at(Instant::now() + status_every, status_every);
        let mut poll_tick = tokio::time::interval_at(Instant::now() + POLL_EVERY, POLL_EVERY);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A watch whose sender is gone (the core or the writer has ended)
        // answers `changed()` at once, forever: stop asking it.
        let mut view_open = true;
        let mut committed_open = true;
        let mut flush_at: Option<Instant> = None;
        let mut pumps_at: Option<Instant> = None;
        let lost = |reason: String| End::Lost {
            reason,
            lasted: started.elapsed(),
            oversize: None,
        };
        loop {
            // Not `biased`: during a long drain the events branch is nearly
            // always ready, and status and polling must still get turns.
            tokio::select! {
                () = shutdown.cancelled() => {
                    if connected {
                        if pumps_at.is_some() {
                            self.publish_pumps(&client, &mut window, false);
                        }
                        self.goodbye(&client, &mut events, &mut window).await;
                    }
                    return End::Shutdown;
                }
                event = events.recv() => match event {
                    None => return lost("the MQTT event loop ended".to_owned()),
                    Some(Err(e)) => {
                        return End::Lost {
                            reason: describe(&e),
                            lasted: started.elapsed(),
                            oversize: library::oversize(&e),
                        };
                    }
                    Some(Ok(event)) => {
                        match self.on_event(event, &client, &mut window, &mut connected).await {
                            Ok(moved) => {
                                if moved && flush_at.is_none() {
                                    flush_at = Some(Instant::now() + FLUSH_EVERY);
                                }
                                // Under a steady stream of events the timer
                                // arm below may wait its turn: check here too.
                                if flush_at.is_some_and(|at| Instant::now() >= at) {
                                    flush_at = None;
                                    flush(self.shared).await;
                                }
                            }
                            Err(reason) => return lost(reason),
                        }
                    }
                },
                () = sleep_until(flush_at) => {
                    flush_at = None;
                    flush(self.shared).await;
                }
                changed = self.committed.changed(), if connected && committed_open => {
                    committed_open = changed.is_ok();
                    if committed_open && *self.committed.borrow() > window.sent_up_to() {
                        self.fill(&client, &mut window).await;
                    }
                }
                changed = self.view.changed(), if connected && view_open => {
                    view_open = changed.is_ok();
                    if view_open {
                        let library = self.view.borrow().library_sha256.clone();
                        pumps_at.get_or_insert_with(|| Instant::now() + PUMPS_EVERY);
                        if library != self.library {
                            // A new active library: say so now, not at the next tick.
                            self.publish_gateway(&client, &mut window).await;
                        }
                    }
                }
                () = sleep_until(self.libraries_paused), if connected => {
                    // The pause is over: try the library topics again (an
                    // oversized message still there ends this connection,
                    // and the next one leaves them alone again).
                    self.libraries_paused = None;
                    if let Err(reason) = self.subscribe_libraries(&client) {
                        return lost(reason);
                    }
                }
                () = sleep_until(pumps_at) => {
                    pumps_at = None;
                    self.publish_pumps(&client, &mut window, false);
                }
                _ = poll_tick.tick(), if connected => self.fill(&client, &mut window).await,
                _ = status_tick.tick(), if connected => {
                    self.publish_gateway(&client, &mut window).await;
                    self.publish_pumps(&client, &mut window, true);
                }
            }
        }
    }

    /// Handles one event; `Ok(true)` when the cursor moved in memory.
    async fn on_event(
        &mut self,
        event: Event,
        client: &AsyncClient,
        window: &mut Window,
        connected: &mut bool,
    ) -> Result<bool, String> {
        match event {
            Event::Incoming(Incoming::ConnAck(ack)) => {
                if ack.code != rumqttc::ConnectReturnCode::Success {
                    return Err(format!("the broker refused the connection: {:?}", ack.code));
                }
                *connected = true;
                info!(broker = %self.shared.broker, acked = window.acked(), "MQTT connected");
                self.drain = Some((Instant::now(), window.acked()));
                set_link(self.shared, "connected", None).await;
                // A clean session forgets subscriptions: subscribe after
                // every ConnAck (unless paused by an oversized message).
                if self.libraries_paused.is_none() {
                    self.subscribe_libraries(client)?;
                } else {
                    debug!(
                        "library topics not subscribed this time: an oversized message waits there"
                    );
                }
                self.publish_gateway(client, window).await;
                self.published.clear();
                self.publish_pumps(client, window, true);
                self.fill(client, window).await;
                if window.in_flight() == 0 {
                    self.drain = None; // nothing was waiting
                }
                Ok(false)
            }
            Event::Incoming(Incoming::SubAck(ack)) => {
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    error!(broker = %self.shared.broker, "the broker refused a subscription to the library topics: libraries will not arrive over MQTT (check the broker's ACL)");
                }
                Ok(false)
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                window.numbered(pkid);
                Ok(false)
            }
            Event::Incoming(Incoming::PubAck(ack)) => match window.acknowledged(ack.pkid) {
                Ok(Some(acked)) => {
                    debug!(acked, "batch acknowledged");
                    self.shared.acked = acked;
                    self.fill(client, window).await;
                    if window.in_flight() == 0 {
                        // Caught up. The cursor is saved by the timer, not
                        // here: under live traffic this point comes after
                        // every PUBACK, and a commit each time would collide
                        // with the event log's writer.
                        if let Some((since, from)) = self.drain.take()
                            && acked > from
                        {
                            let seconds = since.elapsed().as_secs_f64();
                            info!(
                                records = acked - from,
                                seconds, "MQTT backlog delivered; live records follow"
                            );
                        }
                    }
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(e) => {
                    warn!(error = %e, "ignoring an unexpected acknowledgement");
                    Ok(false)
                }
            },
            Event::Incoming(Incoming::Publish(p)) => {
                self.on_library(&p.topic, p.payload.to_vec()).await;
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn subscribe_libraries(&self, client: &AsyncClient) -> Result<(), String> {
        let filters = self
            .shared
            .topics
            .libraries(&self.identity.care_area)
            .map(|t| rumqttc::SubscribeFilter::new(t, QoS::AtLeastOnce));
        client
            .try_subscribe_many(filters)
            .map_err(|e| format!("cannot subscribe to the library topics: {e}"))
    }

    /// Imports inline: libraries arrive a few times a year and an import
    /// takes milliseconds, against a keep-alive of seconds; awaiting it
    /// keeps imports in arrival order with nothing queued in memory.
    async fn on_library(&mut self, topic: &str, payload: Vec<u8>) {
        let inbox = self.shared.inbox.clone();
        let t = topic.to_owned();
        let outcome = tokio::task::spawn_blocking(move || {
            inbox
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .receive(&t, &payload)
        })
        .await;
        match outcome {
            Ok(Outcome::Activated { version, previous }) => {
                info!(topic, version, previous = ?previous, "library received over MQTT is now active");
            }
            Ok(Outcome::Refused(reason)) => {
                warn!(topic, reason = %reason, "library received over MQTT refused");
            }
            Ok(Outcome::Known | Outcome::Cleared) => {
                debug!(topic, "library message: nothing to do");
            }
            Err(e) => error!(topic, error = %e, "the library import failed"),
        }
    }

    /// Publishes as many batches as the window allows.
    async fn fill(&mut self, client: &AsyncClient, window: &mut Window) {
        let free = window.free();
        if free == 0 {
            return;
        }
        let after = window.sent_up_to();
        let origin = self.shared.origin.clone();
        let limits = self.shared.limits;
        let recent = self.shared.recent.borrow().clone();
        let batches: Vec<Batch> =
            if let Some(b) = outbox::batches_from_memory(&origin, after, &recent, limits, free) {
                b
            } else {
                match blocking(&self.shared.store, move |s| {
                    outbox::batches(s, &origin, after, limits, free)
                })
                .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        error!(error = %e, "cannot read the outbox; retrying");
                        return;
                    }
                }
            };
        let topic = self.shared.topics.events();
        for b in batches {
            match client.try_publish(topic.clone(), QoS::AtLeastOnce, false, b.payload) {
                Ok(()) => window.batch_sent(b.first, b.last),
                Err(e) => {
                    debug!(error = %e, "the MQTT client queue is full; the batch waits");
                    return;
                }
            }
        }
    }

    async fn gateway_status(&self) -> GatewayStatus {
        let now = OffsetDateTime::now_utc();
        let mut s = self.identity.status(true, now);
        let snapshot = self.view.borrow().clone();
        s.uptime_s = u64::try_from((now - self.identity.started_at).whole_seconds()).ok();
        s.backlog = Some(outbox_backlog(self.shared).await);
        s.acked_seq = Some(self.shared.acked);
        s.acked_at.clone_from(&self.shared.acked_at);
        s.library = snapshot.library_version.map(|v| LibraryRef {
            version: Some(v),
            sha256: snapshot.library_sha256.clone(),
        });
        s.pumps = u32::try_from(snapshot.pumps.len()).ok();
        s
    }

    async fn publish_gateway(&mut self, client: &AsyncClient, window: &mut Window) {
        let status = self.gateway_status().await;
        self.library = status.library.as_ref().and_then(|l| l.sha256.clone());
        Self::publish_retained(client, window, self.shared.topics.status(), &status);
    }

    fn publish_retained<T: serde::Serialize>(
        client: &AsyncClient,
        window: &mut Window,
        topic: String,
        payload: &T,
    ) -> bool {
        let bytes = serde_json::to_vec(payload).expect("a status always serialises");
        match client.try_publish(topic, QoS::AtLeastOnce, true, bytes) {
            Ok(()) => {
                window.other_sent();
                true
            }
            Err(e) => {
                debug!(error = %e, "the MQTT client queue is full; the status waits");
                false
            }
        }
    }

    /// Publishes pump statuses that changed (all of them when `refresh`).
    fn publish_pumps(&mut self, client: &AsyncClient, window: &mut Window, refresh: bool) {
        let snapshot = self.view.borrow_and_update().clone();
        for p in &snapshot.pumps {
            let status = messages::pump_status(&self.identity.site, &snapshot, p);
            let mut compare = status.clone();
            compare.last_seen = None;
            if !refresh && self.published.get(&status.pump) == Some(&compare) {
                continue;
            }
            let topic = self.shared.topics.pump_status(&status.pump);
            if Self::publish_retained(client, window, topic, &status) {
                self.published.insert(status.pump.clone(), compare);
            }
        }
    }

    /// A clean stop: the last records, an offline status, the outstanding
    /// acknowledgements (for a bounded time), then DISCONNECT.
    async fn goodbye(
        &mut self,
        client: &AsyncClient,
        events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
        window: &mut Window,
    ) {
        let deadline = Instant::now() + GOODBYE;
        // Every record up to the stop (and its checkpoint), as far as the
        // window lets through in the time given: with a full window, one
        // fill is not enough.
        loop {
            self.fill(client, window).await;
            if window.idle() {
                break;
            }
            self.settle(events, window, deadline).await;
            if Instant::now() >= deadline {
                break;
            }
        }
        let mut status = self.gateway_status().await;
        status.online = false;
        status.reason = Some("stopped".to_owned());
        let said_offline =
            Self::publish_retained(client, window, self.shared.topics.status(), &status);
        self.settle(events, window, deadline).await;
        if !window.idle() {
            warn!(
                in_flight = window.in_flight(),
                "stopping with publishes unacknowledged; unacknowledged records will be sent again at the next start"
            );
        }
        if !said_offline {
            // Without DISCONNECT the broker publishes the Last Will, so
            // the retained status does not go on saying "online".
            warn!("the offline status could not be queued; leaving it to the Last Will");
            return;
        }
        if client.try_disconnect().is_ok() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while let Ok(Some(Ok(e))) = tokio::time::timeout_at(deadline, events.recv()).await {
                if matches!(e, Event::Outgoing(Outgoing::Disconnect)) {
                    break;
                }
            }
        }
        info!(broker = %self.shared.broker, acked = self.shared.acked, "MQTT disconnected cleanly");
    }
}

impl Session<'_> {
    /// Takes acknowledgements until nothing is outstanding or `deadline`.
    async fn settle(
        &mut self,
        events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
        window: &mut Window,
        deadline: Instant,
    ) {
        while !window.idle() {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(Ok(Event::Outgoing(Outgoing::Publish(pkid))))) => window.numbered(pkid),
                Ok(Some(Ok(Event::Incoming(Incoming::PubAck(ack))))) => {
                    if let Ok(Some(acked)) = window.acknowledged(ack.pkid) {
                        self.shared.acked = acked;
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) | Err(_) => return,
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let windows = [100u64, 200, 400, 800, 1000, 1000];
        for w in windows {
            let d = b.delay();
            assert!(
                d >= Duration::from_millis(w / 2) && d <= Duration::from_millis(w),
                "{d:?} outside [{}, {w}] ms",
                w / 2
            );
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(100));
    }
}
