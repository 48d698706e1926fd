//! The gateway's core task: it consumes every pump session's events through
//! one bounded channel, logs them (committed before anything is answered or
//! acknowledged), answers programme requests, and publishes a snapshot of
//! every pump for status views. Its time is the gateway's clock
//! ([`super::clock`]), which a wall-clock step does not move.
//!
//! Its parts: the dose ledger ([`ledger`]: tokens issued, amounts given, the
//! bed's exposure), the pumps' delivery and alarm events (`pump_events`),
//! the bedside confirmations (`bedside`: one board for every terminal,
//! so each confirmation is consumed exactly once), and each pump's open
//! orders from the EHR (`orders`).
//!
//! It owns all this state alone, so nothing here is locked.

mod bedside;
pub mod ledger;
mod orders;
mod pump_events;

pub use pump_events::{AMOUNT_MISMATCH, EVENT_REFUSED, RECORD_CONFLICT};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::authorise::{self, ConfirmedLoad, Next, Request};
use super::clock::Clock;
use super::view::{LinkState, PumpView, Snapshot, VerdictSummary};
use crate::library::ActiveLibrary;
use crate::link::LinkStats;
use crate::pump::event::ProgrammeAsk;
use crate::pump::{Decision, DenyReason, Envelope, GatewayInfo, PumpEvent, PumpId};
use crate::store::record::{LoggedReason, millis};
use crate::store::{Context, Event, Store, Writer};
use crate::terminal::command::Command;
use crate::terminal::confirm::Board;
pub use ledger::{HISTORY_KEPT, Ledger};
pub use orders::{ORDER_KEPT, Orders};

/// How often the store is asked which library is active (a `pumpgwd
/// library activate` in another process changes it).
const LIBRARY_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What the log remembers from before a restart.
#[derive(Debug, Default)]
pub struct Restored {
    /// The highest event record number logged per pump serial.
    pub last_record: HashMap<String, u64>,
    /// Tokens issued and amounts given, replayed from the log.
    pub ledger: Ledger,
    /// The pumps' open orders, replayed from the log.
    pub orders: Orders,
}

/// Where the active library comes from and where it goes.
pub struct Library {
    /// A read-only connection to the store (in a mutex only because the
    /// core is shared across await points; nothing else takes it).
    pub reader: std::sync::Mutex<Store>,
    /// Sessions and the core watch this.
    pub tx: watch::Sender<Option<Arc<ActiveLibrary>>>,
}

/// The store's active library, checked and usable here, or none (and why,
/// in the log): with none the gateway authorises nothing.
pub fn active_library(reader: &Store, care_area: &str) -> Option<Arc<ActiveLibrary>> {
    let found = match crate::store::library::active(reader) {
        Ok(found) => found,
        Err(e) => {
            error!(error = %e, "cannot read the active library: authorising nothing");
            return None;
        }
    };
    let Some((version, bytes)) = found else {
        warn!(
            "no active drug library: authorising nothing until one is imported and activated (pumpgwd library import, activate)"
        );
        return None;
    };
    match ActiveLibrary::from_bytes(bytes::Bytes::from(bytes)) {
        Ok((library, _warnings)) if library.library.care_area(care_area).is_some() => {
            info!(version, hash = %library.short_hash(), "drug library active");
            Some(library)
        }
        Ok(_) => {
            error!(
                version,
                care_area,
                "the active library has no entry for this care area: authorising nothing"
            );
            None
        }
        Err(e) => {
            error!(version, error = %e, "the active library does not load: authorising nothing");
            None
        }
    }
}

/// Event record numbers above this are refused (SQLite integers are signed
/// 64-bit; a pump with a sane counter never gets near it).
const MAX_RECORD: u64 = i64::MAX as u64;

/// The core's state.
pub struct Core {
    gateway: Arc<GatewayInfo>,
    library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
    validity: time::Duration,
    pumps: BTreeMap<PumpId, PumpView>,
    stats: HashMap<PumpId, Arc<LinkStats>>,
    /// Tokens issued and amounts given at this bed (cumulative limits).
    ledger: Ledger,
    /// Each pump's open orders from the EHR.
    orders: Orders,
    /// Last event record number seen per pump serial, to drop resent events.
    last_record: HashMap<String, u64>,
    view: watch::Sender<Snapshot>,
    rng: SystemRandom,
    writer: Writer,
    source: Library,
    /// Open confirmations, for every terminal.
    board: Board,
    /// The programmes behind them, by confirmation id.
    waiting: HashMap<u64, bedside::Waiting>,
    /// The container last confirmed on each pump.
    confirmed: HashMap<PumpId, ConfirmedLoad>,
    /// How many terminals are connected.
    terminals: watch::Receiver<usize>,
    /// The watchdog's view of this loop.
    beat: super::supervise::Beat,
    /// Time for every decision here (monotonic within the run).
    clock: Clock,
    /// Bumped when the wall clock stepped: the sessions send `TIME_SYNC`.
    time_sync: watch::Sender<u64>,
    /// Alarms the gateway raised so far (their ids).
    gateway_alarms: u32,
    /// Recently closed confirmations: id, pump, request.
    closed: std::collections::VecDeque<(u64, PumpId, u32)>,
    /// What became of the confirmations closed lately, for the terminals
    /// that still show them.
    notices: std::collections::VecDeque<crate::terminal::protocol::ClosedCard>,
    /// The gateway is stopping: nothing new is authorised.
    stopping: bool,
}

/// What the core talks to besides the pumps.
pub struct Wiring {
    /// Status views watch this.
    pub view: watch::Sender<Snapshot>,
    /// The event log.
    pub writer: Writer,
    /// How many bedside terminals are connected.
    pub terminals: watch::Receiver<usize>,
    /// Bumped at every turn of the loop, for the watchdog.
    pub beat: super::supervise::Beat,
    /// The clock decisions are timed by.
    pub clock: Clock,
    /// Sessions watch this to send `TIME_SYNC` after a clock step.
    pub time_sync: watch::Sender<u64>,
}

/// Where the bedside terminals are.
pub struct Terminals {
    /// How many are connected (the terminal service keeps it).
    pub connected: watch::Receiver<usize>,
    /// Their confirmations and declines.
    pub commands: mpsc::Receiver<Command>,
}

impl Terminals {
    /// No terminal service: nothing can be confirmed.
    pub fn none() -> Terminals {
        let (_, connected) = watch::channel(0);
        let (_, commands) = mpsc::channel(1);
        Terminals {
            connected,
            commands,
        }
    }
}

impl Core {
    /// A core for these pumps, logging through `writer`; `last_record` is
    /// the highest event record number already logged per pump serial.
    pub fn new(
        gateway: Arc<GatewayInfo>,
        validity: time::Duration,
        pumps: &[(PumpId, Arc<LinkStats>)],
        Wiring {
            view,
            writer,
            terminals,
            beat,
            clock,
            time_sync,
        }: Wiring,
        source: Library,
        restored: Restored,
    ) -> Self {
        let mut core = Core {
            gateway,
            library: source.tx.subscribe(),
            validity,
            pumps: pumps
                .iter()
                .map(|(id, _)| (id.clone(), PumpView::new(id.clone())))
                .collect(),
            stats: pumps.iter().cloned().collect(),
            ledger: restored.ledger,
            orders: restored.orders,
            last_record: restored.last_record,
            view,
            rng: SystemRandom::new(),
            writer,
            source,
            board: Board::new(validity),
            waiting: HashMap::new(),
            confirmed: HashMap::new(),
            terminals,
            closed: std::collections::VecDeque::new(),
            notices: std::collections::VecDeque::new(),
            gateway_alarms: 0,
            stopping: false,
            clock,
            time_sync,
            beat,
        };
        core.publish();
        core
    }

    /// Handles events until every sender is gone, then returns. When
    /// `stop` fires, open confirmations are withdrawn and new requests
    /// denied, while the sessions (stopping too) still tell their pumps.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Envelope>,
        mut commands: mpsc::Receiver<Command>,
        mut orders: mpsc::Receiver<crate::ehr::intake::OrderIn>,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
        let mut poll = tokio::time::interval(LIBRARY_POLL);
        let mut terminal_commands = true;
        let mut ehr_orders = true;
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.handle_queued(ev, &mut events).await,
                    None => break,
                },
                command = commands.recv(), if terminal_commands => match command {
                    Some(c) => self.command(c).await,
                    None => terminal_commands = false,
                },
                order = orders.recv(), if ehr_orders => match order {
                    Some(o) => self.take_order(o).await,
                    None => ehr_orders = false,
                },
                // Link counters change without events; refresh the view;
                // confirmations lapse.
                _ = tick.tick() => {
                    if let Some(step) = self.clock.step() {
                        self.clock_stepped(step).await;
                    }
                    self.expire_confirmations(self.clock.now()).await;
                }
                _ = poll.tick() => self.check_library(),
                () = stop.cancelled(), if !self.stopping => {
                    self.stopping = true;
                    info!("stopping: open confirmations withdrawn, new requests denied");
                    self.withdraw_all("the gateway is stopping", self.clock.now()).await;
                }
            }
            self.publish();
            self.beat.bump();
        }
        self.withdraw_all("the gateway is stopping", self.clock.now())
            .await;
        self.publish();
        info!("core stopped: every pump session has ended");
    }

    async fn handle(&mut self, Envelope { pump, event }: Envelope) {
        let now = self.clock.now();
        let active = self.library.borrow().clone();
        if !self.pumps.contains_key(&pump) {
            error!(pump = %pump, "event from a pump that is not configured");
            return;
        }
        match event {
            PumpEvent::Programme(ask) => self.programme(&pump, ask, active.as_deref(), now).await,
            PumpEvent::Delivery(d, committed) if d.record > MAX_RECORD => {
                error!(pump = %pump, record = d.record, "event record number out of range; not logged, not acknowledged");
                let _ = committed.send(false);
            }
            PumpEvent::EventRefused { detail } => self.event_refused(&pump, &detail),
            PumpEvent::Cancelled { request } => self.cancelled(&pump, request, now).await,
            PumpEvent::Alarm(a, committed) if a.record > MAX_RECORD => {
                error!(pump = %pump, record = a.record, "event record number out of range; not logged, not acknowledged");
                let _ = committed.send(false);
            }
            PumpEvent::Delivery(d, committed) => {
                let serial = self.serial(&pump);
                let event = Event::Delivery {
                    event: kind_name(&d.event),
                    request: d.request,
                    token: hex::encode(d.token),
                    pump_serial: serial.clone(),
                    pump_record: d.record,
                    pump_at: millis(d.at),
                    volume_infused: d.volume_infused.clone(),
                    amount_infused: d.amount_infused.clone(),
                };
                let Some(events) = self.unless_resent(&pump, &serial, d.record, event) else {
                    // Logged before (its ACK was lost): acknowledge it again.
                    let _ = committed.send(true);
                    return;
                };
                let ok = self.log(Some(&pump), events).await;
                if ok {
                    self.note_record(&serial, d.record);
                    self.delivery(&pump, d, now).await;
                }
                let _ = committed.send(ok);
            }
            PumpEvent::Alarm(a, committed) => {
                let serial = self.serial(&pump);
                let event = pump_events::alarm_record(&serial, &a);
                let Some(events) = self.unless_resent(&pump, &serial, a.record, event) else {
                    let _ = committed.send(true);
                    return;
                };
                let ok = self.log(Some(&pump), events).await;
                if ok {
                    self.note_record(&serial, a.record);
                    self.alarm(&pump, a);
                }
                let _ = committed.send(ok);
            }
            other => {
                let installed = matches!(other, PumpEvent::LibraryInstalled { .. });
                match &other {
                    PumpEvent::Online(_) => self.ledger.link_up(&pump, now),
                    PumpEvent::Offline { .. } => self.ledger.link_down(&pump),
                    _ => {}
                }
                if matches!(other, PumpEvent::Offline { .. } | PumpEvent::Online(_)) {
                    // A new session may be another pump, or the same one
                    // after a restart: nothing confirmed before carries over.
                    self.withdraw_pump(&pump, "the pump's link went down or started again", now)
                        .await;
                    self.confirmed.remove(&pump);
                }
                if let Some(event) = self.update(&pump, other, active.as_deref(), now) {
                    let logged = self.log(Some(&pump), vec![event]).await;
                    if installed
                        && !logged
                        && let Some(view) = self.pumps.get_mut(&pump)
                    {
                        // An install the log does not show is not trusted:
                        // the pump stays a mismatch, so nothing is authorised.
                        if let Some(id) = &mut view.identity {
                            id.library_hash = None;
                        }
                        view.library_match = Some(false);
                    }
                }
            }
        }
    }

    /// The wall clock stepped by `step` (wall minus the clock's time): every
    /// time held here moves with it, so ages, windows and expiries keep
    /// their length; the step is logged and every pump is sent `TIME_SYNC`.
    async fn clock_stepped(&mut self, step: time::Duration) {
        let ms = step.whole_milliseconds();
        let ms = i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX });
        warn!(
            step_ms = ms,
            "the wall clock stepped; durations are kept, the pumps are told the new time"
        );
        self.ledger.shift(step);
        self.board.shift(step);
        self.log(None, vec![Event::ClockStepped { step_ms: ms }])
            .await;
        self.time_sync.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Picks up a new activation: sessions then push it to every pump.
    fn check_library(&mut self) {
        let current = self
            .library
            .borrow()
            .as_ref()
            .map(|l| (l.version(), hex::encode(l.hash)));
        let Ok(reader) = self.source.reader.lock() else {
            error!("the library reader is poisoned; keeping the current library");
            return;
        };
        // Version and hash: a file swapped under the same version is seen.
        let stored = match crate::store::library::active_version(&reader) {
            Ok(found) => found,
            Err(e) => {
                warn!(error = %e, "cannot read the active library version");
                return;
            }
        };
        if stored != current {
            let next = active_library(&reader, &self.gateway.care_area);
            drop(reader);
            info!(
                from = ?current.map(|c| c.0),
                to = ?next.as_ref().map(|l| l.version()),
                "active library changed: pushing to every pump"
            );
            self.source.tx.send_replace(next);
        }
    }

    /// Link and status changes: the view first, then what to log.
    fn update(
        &mut self,
        pump: &PumpId,
        event: PumpEvent,
        active: Option<&ActiveLibrary>,
        now: OffsetDateTime,
    ) -> Option<Event> {
        let view = self.pumps.get_mut(pump)?;
        match event {
            PumpEvent::Connecting => view.set_link(LinkState::Connecting, now, None),
            PumpEvent::PortOpen => view.set_link(LinkState::PortOpen, now, None),
            PumpEvent::Offline { reason } => {
                let was_online = view.link == LinkState::Online;
                view.set_link(LinkState::Offline, now, Some(reason.clone()));
                view.status = None;
                return was_online.then_some(Event::LinkDown { reason });
            }
            PumpEvent::Online(identity) => {
                view.set_link(LinkState::Online, now, None);
                view.last_seen = Some(now);
                view.alarms.clear();
                let event = Event::LinkUp {
                    manufacturer: identity.manufacturer.clone(),
                    model: identity.model.clone(),
                    serial: identity.serial.clone(),
                    firmware: identity.firmware.clone(),
                    protocol: identity.protocol.clone(),
                    pump_library_version: identity.library_version,
                    pump_library_hash: identity.library_hash.map(hex::encode),
                };
                view.identity = Some(identity);
                view.library_match = matches(view, active);
                return Some(event);
            }
            PumpEvent::LibraryInstalled { version, hash } => {
                if let Some(id) = &mut view.identity {
                    id.library_version = Some(version);
                    id.library_hash = Some(hash);
                }
                view.library_match = matches(view, active);
                let ok = view.library_match == Some(true);
                info!(pump = %pump, version, hash = %hex::encode(&hash[..8]), matches = ok, "pump installed a library");
                return Some(Event::LibraryInstalledOnPump {
                    version,
                    hash: hex::encode(hash),
                    matches: ok,
                });
            }
            PumpEvent::Status(s) => {
                view.status = Some(s);
                view.last_seen = Some(now);
            }
            PumpEvent::LibraryOffered { version, hash } => {
                return Some(Event::LibraryPushed {
                    version,
                    hash: hex::encode(hash),
                });
            }
            PumpEvent::Programme(_)
            | PumpEvent::Cancelled { .. }
            | PumpEvent::Delivery(..)
            | PumpEvent::Alarm(..)
            | PumpEvent::EventRefused { .. } => {}
        }
        None
    }

    /// Who and where a record is about.
    fn context(&self, pump: Option<&PumpId>) -> Context {
        Context {
            gateway: self.gateway.gateway_id.clone(),
            pump: pump.map(ToString::to_string),
            care_area: self.gateway.care_area.clone(),
            library_version: self.library.borrow().as_ref().map(|l| l.version()),
        }
    }

    /// Commits events; false (and an error in the log) when it cannot.
    async fn log(&self, pump: Option<&PumpId>, events: Vec<Event>) -> bool {
        let context = self.context(pump);
        let batch = events.into_iter().map(|e| (context.clone(), e)).collect();
        match self.writer.append(batch).await {
            Ok(_) => true,
            Err(e) => {
                error!(pump = pump.map(ToString::to_string).unwrap_or_default(), error = %e, "EVENT NOT LOGGED");
                false
            }
        }
    }

    /// The decision on one request (before it is logged).
    fn answer_for(
        &self,
        ask_pump: &PumpId,
        ask: &ProgrammeAsk,
        identity: Option<&crate::pump::Identity>,
        active: Option<&ActiveLibrary>,
        history: &crate::ders::History,
        now: OffsetDateTime,
    ) -> authorise::Answer {
        let rng = &self.rng;
        // Cumulative windows run on the gateway's clock, like the history:
        // a pump whose clock is off cannot push doses out of the window.
        let programme = ask.programme.clone().map(|mut p| {
            p.requested_at = now;
            p
        });
        match ask.busy_with {
            _ if self.stopping => authorise::Answer {
                next: Next::Decided(Decision::Deny {
                    outcome: "unavailable".to_owned(),
                    reasons: vec![DenyReason {
                        code: authorise::codes::GATEWAY_UNAVAILABLE.to_owned(),
                        ihe: None,
                        message: "The gateway is stopping; ask again when it is back.".to_owned(),
                    }],
                }),
                verdict: None,
            },
            Some(earlier) => authorise::Answer {
                next: Next::Decided(Decision::Deny {
                    outcome: "unavailable".to_owned(),
                    reasons: vec![DenyReason {
                        code: authorise::codes::BUSY.to_owned(),
                        ihe: None,
                        message: format!(
                            "Request {earlier} is still being checked; send one request at a time."
                        ),
                    }],
                }),
                verdict: None,
            },
            None => authorise::decide(
                &Request {
                    library: active,
                    care_area: &self.gateway.care_area,
                    pump: identity,
                    programme: &programme,
                    history,
                    confirmed: self.confirmed.get(ask_pump),
                    order: programme
                        .as_ref()
                        .ok()
                        .and_then(|p| self.order_for(ask_pump, p)),
                },
                now,
                self.validity,
                || {
                    let mut t = [0u8; 16];
                    rng.fill(&mut t).ok().map(|()| t)
                },
            ),
        }
    }

    async fn programme(
        &mut self,
        pump: &PumpId,
        ask: ProgrammeAsk,
        active: Option<&ActiveLibrary>,
        now: OffsetDateTime,
    ) {
        let identity = self.pumps.get(pump).and_then(|v| v.identity.clone());
        let drug = ask
            .programme
            .as_ref()
            .map_or_else(|_| "?".to_owned(), |p| p.drug.clone());
        // Tokens never used lapse; they must not pile up.
        self.ledger.prune(now);
        let history =
            self.ledger
                .exposure(&drug, now, replacing(pump, ask.programme.as_ref().ok()));
        let answer = self.answer_for(pump, &ask, identity.as_ref(), active, &history, now);
        let mut decision = match answer.next {
            Next::Decided(decision) => decision,
            Next::Confirm(stages) => {
                match (&ask.programme, &answer.verdict, self.terminal_connected()) {
                    (Ok(programme), Some(verdict), true) => {
                        let waiting = bedside::Waiting {
                            pump: pump.clone(),
                            request: ask.request,
                            hash: ask.hash,
                            programme: programme.clone(),
                            verdict: verdict.clone(),
                            later: stages,
                            load: None,
                            library_hash: active.map_or([0; 32], |l| l.hash),
                            reply: ask.reply.clone(),
                        };
                        // The request and verdict go first; the stage's own
                        // record follows.
                        let mut events = decision_events(&ask, answer.verdict.as_ref(), None);
                        if self.log(Some(pump), std::mem::take(&mut events)).await {
                            match self.open_stage(waiting, now).await {
                                Ok(()) => {
                                    self.note_verdict(
                                        pump,
                                        ask.request,
                                        &drug,
                                        "awaiting confirmation".to_owned(),
                                        String::new(),
                                        now,
                                    );
                                    return;
                                }
                                Err((waiting, decision)) => {
                                    let event =
                                        decision_event(waiting.request, &waiting.hash, &decision);
                                    let decision = if self.log(Some(pump), vec![event]).await {
                                        decision
                                    } else {
                                        store_unavailable()
                                    };
                                    self.answer(
                                        pump,
                                        &ask,
                                        answer.verdict.as_ref(),
                                        &drug,
                                        decision,
                                        now,
                                    );
                                    return;
                                }
                            }
                        }
                        self.answer(
                            pump,
                            &ask,
                            answer.verdict.as_ref(),
                            &drug,
                            store_unavailable(),
                            now,
                        );
                        return;
                    }
                    _ => authorise::deny(
                        "unavailable",
                        authorise::codes::CONFIRMATION_UNAVAILABLE,
                        format!(
                            "This needs {} at the bedside terminal, and no terminal is connected.",
                            needs_words(&stages)
                        ),
                    ),
                }
            }
        };
        // Nothing reaches the pump before the request, the verdict and the
        // answer are on disk; if they cannot be, the answer is no.
        if !self
            .log(
                Some(pump),
                decision_events(&ask, answer.verdict.as_ref(), Some(&decision)),
            )
            .await
        {
            decision = store_unavailable();
        }
        self.answer(pump, &ask, answer.verdict.as_ref(), &drug, decision, now);
    }

    /// Sends a decision already logged, records the token it issues, and
    /// shows it.
    fn answer(
        &mut self,
        pump: &PumpId,
        ask: &ProgrammeAsk,
        verdict: Option<&crate::ders::Verdict>,
        drug: &str,
        decision: Decision,
        now: OffsetDateTime,
    ) {
        let (shown, first) = self.conclude(
            pump,
            (ask.request, ask.programme.as_ref().ok(), verdict),
            drug,
            &decision,
            now,
        );
        let outcome = verdict.map_or_else(
            || "not checked".to_owned(),
            |v| authorise::outcome_name(v.outcome),
        );
        info!(
            pump = %pump,
            drug = %drug,
            request = ask.request,
            programme_hash = %hex::encode(&ask.hash[..8]),
            verdict = %outcome,
            decision = %shown,
            reason = %first,
            "programme checked"
        );
        // A pump gone before the answer simply gets none.
        let _ = ask.reply.try_send(decision);
    }

    /// Records what a final decision issues (its token) and shows it on
    /// the pump's card; the decision and its first reason in words.
    fn conclude(
        &mut self,
        pump: &PumpId,
        (request, programme, verdict): (
            u32,
            Option<&crate::ders::Programme>,
            Option<&crate::ders::Verdict>,
        ),
        drug: &str,
        decision: &Decision,
        now: OffsetDateTime,
    ) -> (String, String) {
        let (shown, first) = match decision {
            Decision::Authorise { token, expires } => {
                if let Some(p) = programme {
                    self.order_used(p, verdict);
                }
                // Counted from now on: the next request at this bed sees it.
                if !programme.is_some_and(|p| {
                    self.ledger
                        .authorised(*token, pump, request, p, now, *expires)
                }) {
                    error!(pump = %pump, request, "an authorised programme cannot be counted for cumulative limits");
                }
                ("authorised".to_owned(), String::new())
            }
            Decision::Deny { outcome, reasons } => (
                format!("denied ({outcome})"),
                reasons
                    .first()
                    .map(|r| format!("{}: {}", r.code, r.message))
                    .unwrap_or_default(),
            ),
            Decision::Awaiting { .. } => ("awaiting confirmation".to_owned(), String::new()),
        };
        self.note_verdict(pump, request, drug, shown.clone(), first.clone(), now);
        (shown, first)
    }

    /// A drug's name in Tall Man lettering from the active library (its id
    /// when the library lacks it).
    fn display_name(&self, drug: &str) -> String {
        let library = self.library.borrow().clone();
        library
            .as_deref()
            .and_then(|l| l.library.care_area(&self.gateway.care_area))
            .and_then(|a| a.drug(drug))
            .map_or_else(|| drug.to_owned(), |d| d.display_name.clone())
    }

    /// Shows the last decision on a pump's card.
    fn note_verdict(
        &mut self,
        pump: &PumpId,
        request: u32,
        drug: &str,
        decision: String,
        reason: String,
        now: OffsetDateTime,
    ) {
        let shown = self.display_name(drug);
        if let Some(view) = self.pumps.get_mut(pump) {
            view.last_verdict = Some(VerdictSummary {
                at: now,
                request,
                drug: shown,
                decision,
                reason,
            });
        }
    }

    fn publish(&mut self) {
        let library = self.library.borrow().clone();
        for (id, view) in &mut self.pumps {
            if let Some(s) = self.stats.get(id) {
                view.link_counters = s.snapshot();
            }
            view.library_match = matches(view, library.as_deref());
            view.drug_name = view
                .status
                .as_ref()
                .and_then(|s| s.drug.as_deref())
                .and_then(|id| {
                    let l = library.as_deref()?;
                    let area = l.library.care_area(&self.gateway.care_area)?;
                    Some(area.drug(id)?.display_name.clone())
                });
        }
        let snapshot = Snapshot {
            gateway_id: self.gateway.gateway_id.clone(),
            care_area: self.gateway.care_area.clone(),
            library_version: library.as_ref().map(|l| l.version()),
            library_hash: library.as_ref().map(|l| l.short_hash()),
            library_sha256: library.as_ref().map(|l| hex::encode(l.hash)),
            pumps: self.pumps.values().cloned().collect(),
            confirmations: self
                .board
                .pending()
                .map(crate::terminal::protocol::confirmation_card)
                .collect(),
            closed: self.notices.iter().cloned().collect(),
            terminals: *self.terminals.borrow(),
        };
        self.view.send_replace(snapshot);
    }
}

fn matches(view: &PumpView, library: Option<&ActiveLibrary>) -> Option<bool> {
    let id = view.identity.as_ref()?;
    Some(library.is_some_and(|l| id.library_hash == Some(l.hash)))
}

/// The pump whose running infusion a programme would replace: its own, for
/// a new infusion (a pump runs one at a time); none for a bolus, which runs
/// beside it.
pub(super) fn replacing<'a>(
    pump: &'a PumpId,
    programme: Option<&crate::ders::Programme>,
) -> Option<&'a PumpId> {
    programme
        .is_some_and(|p| matches!(p.delivery, crate::ders::Delivery::Continuous { .. }))
        .then_some(pump)
}

/// The log's events for one programme request and its answer (none yet
/// when it waits for a confirmation).
fn decision_events(
    ask: &ProgrammeAsk,
    verdict: Option<&crate::ders::Verdict>,
    decision: Option<&Decision>,
) -> Vec<Event> {
    let mut events = vec![Event::ProgrammeRequested {
        request: ask.request,
        programme_hash: hex::encode(ask.hash),
        programme: ask.raw.clone(),
    }];
    if let Some(v) = verdict {
        events.push(Event::Verdict {
            request: ask.request,
            outcome: authorise::outcome_name(v.outcome),
            reasons: serde_json::to_value(&v.reasons).unwrap_or_default(),
            computed: v.computed.clone(),
            order: v.order.clone(),
        });
    }
    if let Some(d) = decision {
        events.push(decision_event(ask.request, &ask.hash, d));
    }
    events
}

/// The log's record of a final decision.
fn decision_event(request: u32, hash: &[u8; 32], decision: &Decision) -> Event {
    let programme_hash = hex::encode(hash);
    match decision {
        Decision::Authorise { token, expires } => Event::Authorised {
            request,
            programme_hash,
            token: hex::encode(token),
            expires: millis(*expires),
        },
        Decision::Deny { outcome, reasons } => Event::Denied {
            request,
            programme_hash,
            outcome: outcome.clone(),
            reasons: reasons
                .iter()
                .map(|r| LoggedReason {
                    code: r.code.clone(),
                    ihe: r.ihe,
                    message: r.message.clone(),
                })
                .collect(),
        },
        // Never final; logged as a denial if it ever were taken for one.
        Decision::Awaiting { message, .. } => Event::Denied {
            request,
            programme_hash,
            outcome: "unavailable".to_owned(),
            reasons: vec![LoggedReason {
                code: authorise::codes::CONFIRMATION_UNAVAILABLE.to_owned(),
                ihe: None,
                message: message.clone(),
            }],
        },
    }
}

fn store_unavailable() -> Decision {
    authorise::deny(
        "unavailable",
        authorise::codes::STORE_UNAVAILABLE,
        "The gateway cannot record this decision, so it authorises nothing.".to_owned(),
    )
}

/// What the stages ask for, in words.
fn needs_words(stages: &[Vec<crate::terminal::confirm::Need>]) -> String {
    use crate::terminal::confirm::Need;
    let words: Vec<String> = stages
        .iter()
        .flatten()
        .map(|n| match n {
            Need::Concentration { .. } => {
                "a nurse to confirm the new container's concentration".to_owned()
            }
            Need::Bolus { rule, .. } => crate::staff::policy::who_confirms(rule),
            Need::Override { .. } => "a soft-limit override with a reason".to_owned(),
        })
        .collect();
    words.join(" and ")
}

/// The snake-case name serde gives a unit variant.
fn kind_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
