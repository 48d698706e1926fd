//! The driver for pumpgw's own serial protocol (`docs/protocol.md`): it
//! runs the gateway side of one link over an open port and turns messages
//! into [`PumpEvent`]s and decisions into AUTHORISATION or DENIAL frames.
//!
//! A controller that stops answering is reported offline but the port stays
//! open, waiting for its next HELLO; only a port error or hang-up ends
//! [`serve`], and the session then reopens the port.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::event::{
    AlarmReport, Decision, DeliveryReport, Envelope, Identity, ProgrammeAsk, PumpEvent,
    StatusReport,
};
use super::session::{Ended, SessionContext};
use crate::ders::Programme;
use crate::library::ActiveLibrary;
use crate::link::message::{
    self, Authorisation, AwaitingConfirmation, Denial, DenialReason, Hash, LibraryChunk,
    LibraryOffer, TimeSync, Welcome,
};
use crate::link::{
    Endpoint, LinkCodec, Message, MessageType, Received, SUPPORTED_VERSIONS, sha256,
};
use crate::store::record::cbor_to_json;

/// Bytes of library file per `LIBRARY_CHUNK`.
pub const LIBRARY_CHUNK_SIZE: u16 = 512;
/// Programme requests awaiting an answer before the link is taken down.
const MAX_PENDING: usize = 4;

/// How long an event may take to commit before it is left unacknowledged.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a stopping session waits for the answers to its pending
/// requests (the core denies them at the stop) to be sent and
/// acknowledged before it lets go of the port.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Library offers per session before giving up on a pump that keeps
/// installing something else (it stays denied and says so in status).
pub const MAX_OFFERS: u8 = 3;

struct Pending {
    request: u32,
    hash: Hash,
    reply: tokio::sync::mpsc::Receiver<Decision>,
    /// The controller withdrew it (CANCEL): it no longer counts for BUSY,
    /// and no `AWAITING_CONFIRMATION` is sent for it; its answer (logged by
    /// then) is still sent, and the controller ignores it.
    cancelled: bool,
}

struct Driver<'a> {
    ctx: &'a SessionContext,
    endpoint: Endpoint,
    online: Option<Identity>,
    /// Requests awaiting the core's answer, oldest first (each answered as
    /// soon as its answer comes, so a BUSY is not held behind a
    /// confirmation; at most [`MAX_PENDING`]).
    pending: std::collections::VecDeque<Pending>,
    /// Library offers made in this session.
    offers: u8,
    /// When to offer again after a pump installed something else.
    reoffer_at: Option<Instant>,
    /// An offer just made, to report to the core.
    offered: Option<(u64, Hash)>,
    /// Set when a message could not be queued: the link goes down.
    broken: Option<String>,
    /// When the next periodic `TIME_SYNC` is due (while online).
    next_sync: Option<Instant>,
    /// The pump's events being committed, oldest first: each is
    /// acknowledged when the core says it is on disk, while the session
    /// goes on reading (in version 2 the next events are already coming).
    settling: std::collections::VecDeque<Settling>,
}

/// A pump's event on its way to disk.
struct Settling {
    seq: u16,
    committed: oneshot::Receiver<bool>,
    /// Past this, it is left unacknowledged (the pump resends it).
    until: Instant,
}

/// How often `TIME_SYNC` is repeated while a pump is online, besides after
/// every WELCOME and after every step of the gateway's wall clock: a
/// controller's clock drifts, and expiry times are on the gateway's clock.
pub const TIME_SYNC_PERIOD: std::time::Duration = std::time::Duration::from_secs(600);

/// Serves one open port until it fails, hangs up, or `shutdown` fires.
pub async fn serve<S>(io: S, ctx: &SessionContext, shutdown: &CancellationToken) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Flushing must not wait for the UART: the daemon's tasks share a thread.
    let mut framed = Framed::new(
        super::no_drain::NoDrain(io),
        LinkCodec::new(ctx.stats.clone()),
    );
    // A lone delimiter ends whatever partial frame the controller's decoder
    // holds from before we opened the port.
    if let Err(e) = framed.get_mut().write_all(&[0]).await {
        return Ended::Disconnected(format!("cannot write to the port: {e}"));
    }
    let mut library = ctx.library.clone();
    let mut library_watch = true;
    let mut clock_steps = ctx.time_sync.clone();
    let mut clock_watch = true;
    // Set at the stop: the session keeps going until its pending requests
    // are answered (the core denies them) and the answers acknowledged, or
    // until this deadline, so the pump is told rather than left waiting.
    let mut stopping: Option<Instant> = None;
    let mut d = Driver::new(ctx);
    loop {
        let deadline = d.deadline(stopping);
        tokio::select! {
            () = shutdown.cancelled(), if stopping.is_none() => {
                stopping = Some(Instant::now() + STOP_GRACE);
            }
            read = framed.next() => match read {
                None => return Ended::Disconnected("the other end hung up".to_owned()),
                Some(Err(e)) => return Ended::Disconnected(format!("read failed: {e}")),
                Some(Ok(packet)) => {
                    let active = library.borrow().clone();
                    if d.received(packet, active.as_ref()).await.is_err() {
                        return Ended::Shutdown;
                    }
                }
            },
            (index, answer) = next_reply(&mut d.pending), if !d.pending.is_empty() => {
                d.reply(index, answer);
            }
            (index, ok) = next_commit(&mut d.settling), if !d.settling.is_empty() => {
                d.settled(index, ok);
            }
            changed = library.changed(), if library_watch => {
                if changed.is_err() {
                    library_watch = false;
                } else {
                    let active = library.borrow_and_update().clone();
                    d.library_changed(active.as_ref());
                }
            }
            changed = clock_steps.changed(), if clock_watch => {
                if changed.is_err() {
                    clock_watch = false;
                } else if d.online.is_some() {
                    info!(pump = %d.ctx.pump, "the gateway's clock stepped: TIME_SYNC again");
                    d.time_sync(Instant::now());
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                let active = library.borrow().clone();
                if d.timers(active.as_ref()).await.is_err() {
                    return Ended::Shutdown;
                }
            }
        }
        if let Some(reason) = d.broken.take()
            && d.link_down(reason).await.is_err()
        {
            return Ended::Shutdown;
        }
        if let Some((version, hash)) = d.offered.take()
            && d.emit(PumpEvent::LibraryOffered { version, hash })
                .await
                .is_err()
        {
            return Ended::Shutdown;
        }
        for frame in d.endpoint.take_outgoing() {
            if let Err(e) = framed.feed(&frame).await {
                return Ended::Disconnected(format!("write failed: {e}"));
            }
        }
        if let Err(e) = framed.flush().await {
            return Ended::Disconnected(format!("write failed: {e}"));
        }
        if stopping.is_some_and(|at| d.stopped(at)) {
            return Ended::Shutdown;
        }
    }
}

/// The first answer to come from the core for any pending request, with
/// the request's place in the queue.
fn next_reply(
    pending: &mut std::collections::VecDeque<Pending>,
) -> impl std::future::Future<Output = (usize, Option<Decision>)> + '_ {
    std::future::poll_fn(move |cx| {
        for (index, p) in pending.iter_mut().enumerate() {
            if let std::task::Poll::Ready(answer) = p.reply.poll_recv(cx) {
                return std::task::Poll::Ready((index, answer));
            }
        }
        std::task::Poll::Pending
    })
}

/// The first of the pump's events whose commit is decided, with its place
/// in the queue and whether it is on disk.
fn next_commit(
    settling: &mut std::collections::VecDeque<Settling>,
) -> impl std::future::Future<Output = (usize, bool)> + '_ {
    std::future::poll_fn(move |cx| {
        for (index, s) in settling.iter_mut().enumerate() {
            if let std::task::Poll::Ready(answer) = std::pin::Pin::new(&mut s.committed).poll(cx) {
                return std::task::Poll::Ready((index, answer == Ok(true)));
            }
        }
        std::task::Poll::Pending
    })
}

/// The session's consumer is gone: the daemon is shutting down.
struct Gone;

impl<'a> Driver<'a> {
    fn new(ctx: &'a SessionContext) -> Self {
        let mut endpoint = Endpoint::new(ctx.timing, ctx.stats.clone(), Instant::now());
        // "Acknowledged" means "on disk" for a pump's events (BRIEF section 3).
        endpoint.defer_acknowledgement(&[MessageType::Delivery, MessageType::Alarm]);
        Driver {
            ctx,
            endpoint,
            online: None,
            pending: std::collections::VecDeque::new(),
            offers: 0,
            reoffer_at: None,
            offered: None,
            broken: None,
            next_sync: None,
            settling: std::collections::VecDeque::new(),
        }
    }

    /// When the session must next wake with nothing read: the link's
    /// timers, a re-offer, a periodic `TIME_SYNC`, a commit taking too
    /// long, the end of the stop's grace.
    fn deadline(&self, stopping: Option<Instant>) -> Instant {
        [
            self.reoffer_at,
            self.next_sync,
            stopping,
            self.settling.front().map(|s| s.until),
        ]
        .into_iter()
        .flatten()
        .fold(self.endpoint.next_deadline(), Instant::min)
    }

    /// Stopping: whether the pump has been told everything (its answers
    /// sent and acknowledged), or the grace ending `at` is over.
    fn stopped(&self, at: Instant) -> bool {
        let told = self.pending.is_empty() && (self.online.is_none() || self.endpoint.is_idle());
        if !told && Instant::now() >= at {
            warn!(pump = %self.ctx.pump, pending = self.pending.len(), "stopping before the pump acknowledged every answer");
            return true;
        }
        told
    }

    /// The link is down (silence, no acknowledgement, a full queue): forget
    /// the session, keep the port, wait for a new HELLO.
    async fn link_down(&mut self, reason: String) -> Result<(), Gone> {
        self.endpoint.deactivate();
        self.pending.clear();
        self.next_sync = None;
        if self.online.take().is_some() {
            warn!(pump = %self.ctx.pump, state = "offline", reason = %reason, "pump link down");
            self.emit(PumpEvent::Offline { reason }).await?;
        }
        Ok(())
    }

    /// A frame from the controller: its message handled, or an event that
    /// cannot be read reported to the core (it alarms: the pump's later
    /// events wait behind it).
    async fn received(
        &mut self,
        packet: crate::link::Packet,
        library: Option<&std::sync::Arc<ActiveLibrary>>,
    ) -> Result<(), Gone> {
        match self.endpoint.receive(packet, Instant::now()) {
            Received::Message(m, payload) => self.handle(m, payload, library).await,
            Received::Refused(detail) => {
                warn!(pump = %self.ctx.pump, detail = %detail, "an event from the pump cannot be read: refused, not logged");
                self.emit(PumpEvent::EventRefused { detail }).await
            }
            Received::Handled => Ok(()),
        }
    }

    /// What is due: a periodic `TIME_SYNC`, a library offered again, the
    /// link's resends and supervision.
    async fn timers(
        &mut self,
        library: Option<&std::sync::Arc<ActiveLibrary>>,
    ) -> Result<(), Gone> {
        let now = Instant::now();
        while self.settling.front().is_some_and(|s| s.until <= now) {
            self.settled(0, false);
        }
        if self.next_sync.is_some_and(|at| at <= now) {
            self.time_sync(now);
        }
        if self.reoffer_at.is_some_and(|at| at <= now) {
            self.reoffer_at = None;
            self.offer_library(library);
        }
        if let Err(down) = self.endpoint.poll(now) {
            self.link_down(down.to_string()).await?;
        }
        Ok(())
    }

    /// Tells the controller the gateway's time, and when to tell it again.
    fn time_sync(&mut self, now: Instant) {
        self.send(Message::TimeSync(TimeSync { time_ms: now_ms() }));
        self.next_sync = Some(now + TIME_SYNC_PERIOD);
    }

    async fn emit(&self, event: PumpEvent) -> Result<(), Gone> {
        self.ctx
            .events
            .send(Envelope {
                pump: self.ctx.pump.clone(),
                event,
            })
            .await
            .map_err(|_| Gone)
    }

    fn send(&mut self, m: Message) {
        if let Err(e) = self.endpoint.send(m, Instant::now()) {
            // The controller is not keeping up: a lost answer must not go
            // unnoticed, so the link is taken down and the session restarts.
            warn!(pump = %self.ctx.pump, error = %e, "cannot queue a message; taking the link down");
            self.broken = Some(e.to_string());
        }
    }

    async fn handle(
        &mut self,
        m: Message,
        payload: Bytes,
        library: Option<&std::sync::Arc<ActiveLibrary>>,
    ) -> Result<(), Gone> {
        let now = Instant::now();
        if let Message::Hello(hello) = m {
            return self.handshake(hello, library).await;
        }
        if self.online.is_none() {
            // The endpoint passes nothing but HELLO before the handshake.
            return Ok(());
        }
        match m {
            Message::Ack | Message::Heartbeat => {}
            Message::Error(e) => {
                warn!(pump = %self.ctx.pump, code = %e.code, seq = e.seq, detail = %e.detail, "pump reports an error");
            }
            Message::Status(s) => {
                self.emit(PumpEvent::Status(StatusReport {
                    state: s.state,
                    drug: s.drug,
                    flow_rate: s.flow_rate,
                    dose_rate: s.dose_rate,
                    volume_infused: s.volume_infused,
                    volume_remaining: s.volume_remaining,
                    battery_percent: s.battery_percent,
                    on_mains: s.on_mains,
                }))
                .await?;
            }
            Message::ProgrammeRequest(req) => self.programme_request(req, &payload).await?,
            Message::Delivery(ev) => {
                let seq = self.endpoint.last_received();
                let (tx, rx) = oneshot::channel();
                self.emit(PumpEvent::Delivery(
                    DeliveryReport {
                        record: ev.record,
                        event: ev.event,
                        request: ev.request,
                        token: ev.token,
                        at: from_ms(ev.at_ms),
                        volume_infused: ev.volume_infused,
                        amount_infused: ev.amount_infused,
                    },
                    tx,
                ))
                .await?;
                self.settle(seq, rx, now);
            }
            Message::Alarm(a) => {
                let seq = self.endpoint.last_received();
                let (tx, rx) = oneshot::channel();
                self.emit(PumpEvent::Alarm(
                    AlarmReport {
                        record: a.record,
                        id: a.id,
                        priority: a.priority,
                        condition: a.condition,
                        text: a.text,
                        active: a.active,
                        at: from_ms(a.at_ms),
                    },
                    tx,
                ))
                .await?;
                self.settle(seq, rx, now);
            }
            Message::Cancel(c) => self.cancel(&c).await?,
            Message::LibraryRequest(r) => self.library_request(&r, library, now),
            Message::LibraryInstalled(l) => {
                if let Some(id) = &mut self.online {
                    id.library_version = Some(l.version);
                    id.library_hash = Some(l.hash);
                }
                self.emit(PumpEvent::LibraryInstalled {
                    version: l.version,
                    hash: l.hash,
                })
                .await?;
                // A pump that installed something else gets the offer again
                // after a growing pause (1 s, 2 s...), a few times; one that
                // never manages stays denied and says so in `library status`.
                if library.is_some_and(|lib| lib.hash != l.hash) && self.offers < MAX_OFFERS {
                    let pause = std::time::Duration::from_secs(1 << self.offers.saturating_sub(1));
                    warn!(pump = %self.ctx.pump, version = l.version, retry_in_s = pause.as_secs(), "pump installed another library than the active one; offering again");
                    self.reoffer_at = Some(now + pause);
                } else {
                    self.offer_library(library);
                }
            }
            other => self.endpoint.report(
                "unexpected",
                self.endpoint.last_received(),
                format!("{:?} is sent by gateways, not controllers", other.kind()),
                now,
            ),
        }
        Ok(())
    }

    /// The controller withdraws a request (CANCEL): it stops counting for
    /// BUSY at once, so that the controller's next request is not taken for
    /// a second one; the core closes its confirmation. Its answer is still
    /// sent when it comes (an answer already decided is logged, and what is
    /// logged is sent); the controller ignores it.
    async fn cancel(&mut self, c: &message::Cancel) -> Result<(), Gone> {
        let Some(p) = self
            .pending
            .iter_mut()
            .find(|p| p.request == c.request && p.hash == c.programme_hash && !p.cancelled)
        else {
            debug!(pump = %self.ctx.pump, request = c.request, "CANCEL for a request not pending (answered meanwhile?); nothing to do");
            return Ok(());
        };
        p.cancelled = true;
        info!(pump = %self.ctx.pump, request = c.request, "the pump withdrew its request");
        self.emit(PumpEvent::Cancelled { request: c.request }).await
    }

    async fn programme_request(
        &mut self,
        req: message::ProgrammeRequest,
        payload: &[u8],
    ) -> Result<(), Gone> {
        let hash = sha256(payload);
        if self.pending.len() >= MAX_PENDING {
            // A controller that floods requests without waiting is broken.
            self.broken = Some(format!(
                "more than {MAX_PENDING} programme requests unanswered"
            ));
            return Ok(());
        }
        // A second request while one is checked is denied BUSY by the core,
        // which logs it like any other answer.
        let busy_with = self
            .pending
            .iter()
            .rev()
            .find(|p| !p.cancelled)
            .map(|p| p.request);
        let programme = req
            .programme
            .deserialized::<Programme>()
            .map_err(|e| e.to_string());
        let (tx, rx) = tokio::sync::mpsc::channel(super::event::REPLY_SLOTS);
        self.pending.push_back(Pending {
            request: req.request,
            hash,
            reply: rx,
            cancelled: false,
        });
        self.emit(PumpEvent::Programme(ProgrammeAsk {
            request: req.request,
            hash,
            programme,
            raw: cbor_to_json(&req.programme),
            busy_with,
            reply: tx,
        }))
        .await?;
        Ok(())
    }

    /// Waits (without holding the session) for the core to say a pump's
    /// event is on disk, to acknowledge it then; if it is not, or the
    /// answer takes longer than [`COMMIT_WAIT`], the pump keeps it and
    /// resends.
    fn settle(&mut self, seq: u16, committed: oneshot::Receiver<bool>, now: Instant) {
        self.settling.push_back(Settling {
            seq,
            committed,
            until: now + COMMIT_WAIT,
        });
    }

    /// An event's commit is decided (or given up on): acknowledged or not.
    fn settled(&mut self, index: usize, ok: bool) {
        let Some(s) = self.settling.remove(index) else {
            return;
        };
        if !ok {
            warn!(pump = %self.ctx.pump, seq = s.seq, "event not committed; not acknowledged (the pump will resend)");
        }
        self.endpoint.acknowledge(s.seq, ok, Instant::now());
    }

    fn library_request(
        &mut self,
        r: &message::LibraryRequest,
        library: Option<&std::sync::Arc<ActiveLibrary>>,
        now: Instant,
    ) {
        match library {
            Some(lib) if lib.hash == r.hash => {
                let start = usize::try_from(r.offset).unwrap_or(usize::MAX);
                if start >= lib.bytes.len() {
                    self.endpoint.report(
                        "unexpected",
                        self.endpoint.last_received(),
                        format!(
                            "offset {} is not below the size ({} bytes)",
                            r.offset,
                            lib.bytes.len()
                        ),
                        now,
                    );
                } else {
                    let end = (start + usize::from(LIBRARY_CHUNK_SIZE)).min(lib.bytes.len());
                    self.send(Message::LibraryChunk(LibraryChunk {
                        hash: lib.hash,
                        offset: r.offset,
                        data: lib.bytes[start..end].to_vec(),
                    }));
                }
            }
            _ => self.endpoint.report(
                "unexpected",
                self.endpoint.last_received(),
                "no library with that hash is on offer".to_owned(),
                now,
            ),
        }
    }

    async fn handshake(
        &mut self,
        hello: message::Hello,
        library: Option<&std::sync::Arc<ActiveLibrary>>,
    ) -> Result<(), Gone> {
        let now = Instant::now();
        let Some(version) = hello
            .versions
            .iter()
            .copied()
            .filter(|v| SUPPORTED_VERSIONS.contains(v))
            .max()
        else {
            warn!(pump = %self.ctx.pump, offered = ?hello.versions, "no common protocol version");
            self.endpoint.report(
                "unsupported_version",
                self.endpoint.last_received(),
                format!(
                    "this gateway speaks protocol versions {SUPPORTED_VERSIONS:?}, the controller offered {:?}",
                    hello.versions
                ),
                now,
            );
            return Ok(());
        };
        // A new session: whatever was queued for the old one is void (an
        // authorisation must never reach a controller that restarted).
        self.endpoint.restart(now);
        self.pending.clear();
        self.offers = 0;
        self.reoffer_at = None;
        let timing = self.endpoint.timing();
        self.send(Message::Welcome(Welcome {
            version,
            gateway: self.ctx.gateway.gateway_id.clone(),
            care_area: self.ctx.gateway.care_area.clone(),
            library_version: library.map(|l| l.version()),
            library_hash: library.map(|l| l.hash),
            time_ms: now_ms(),
            heartbeat_ms: millis(timing.heartbeat),
            supervision_ms: millis(timing.supervision),
            window: (version >= 2).then_some(timing.window),
        }));
        // WELCOME goes out in version 1; what follows in the chosen one.
        self.endpoint.set_session(version, timing.window);
        self.time_sync(now);
        self.endpoint.activate(now);
        let identity = Identity {
            manufacturer: hello.manufacturer,
            model: hello.model,
            serial: hello.serial,
            firmware: hello.firmware,
            protocol: format!("pumpgw-link/{version}"),
            care_area: hello.care_area,
            library_version: hello.library_version,
            library_hash: hello.library_hash,
        };
        info!(
            pump = %self.ctx.pump,
            state = "online",
            serial = %identity.serial,
            model = %identity.model,
            library_version = ?identity.library_version,
            "pump link up"
        );
        self.online = Some(identity.clone());
        self.emit(PumpEvent::Online(identity)).await?;
        self.offer_library(library);
        Ok(())
    }

    /// A newly activated library gets offers of its own: the cap is per
    /// library, so a pump that failed the last one still gets this one
    /// (protocol.md section 5.4).
    fn library_changed(&mut self, library: Option<&std::sync::Arc<ActiveLibrary>>) {
        self.offers = 0;
        self.reoffer_at = None;
        self.offer_library(library);
    }

    fn offer_library(&mut self, library: Option<&std::sync::Arc<ActiveLibrary>>) {
        let (Some(id), Some(lib)) = (&self.online, library) else {
            return;
        };
        if id.library_hash == Some(lib.hash) {
            return;
        }
        if self.offers >= MAX_OFFERS {
            warn!(pump = %self.ctx.pump, offers = self.offers, "pump still not on the gateway's library; no more offers this session");
            return;
        }
        self.offers += 1;
        debug!(pump = %self.ctx.pump, version = lib.version(), "offering library");
        let size = u32::try_from(lib.bytes.len()).unwrap_or(u32::MAX);
        self.offered = Some((lib.version(), lib.hash));
        self.send(Message::LibraryOffer(LibraryOffer {
            version: lib.version(),
            hash: lib.hash,
            size,
            chunk_size: LIBRARY_CHUNK_SIZE,
        }));
    }

    /// The core's reply to a pending request: a notice that a person must
    /// confirm (the request stays pending), or the answer.
    fn reply(&mut self, index: usize, answer: Option<Decision>) {
        if let Some(Decision::Awaiting { until, message }) = answer {
            let Some(p) = self.pending.get(index).filter(|p| !p.cancelled) else {
                return;
            };
            let m = Message::AwaitingConfirmation(AwaitingConfirmation {
                request: p.request,
                programme_hash: p.hash,
                until_ms: to_ms(until),
                message,
            });
            self.send(m);
            return;
        }
        if let Some(p) = self.pending.remove(index) {
            self.answer(p.request, p.hash, answer);
        }
    }

    fn answer(&mut self, request: u32, hash: Hash, decision: Option<Decision>) {
        let m = match decision {
            Some(Decision::Authorise { token, expires }) => Message::Authorisation(Authorisation {
                request,
                programme_hash: hash,
                token,
                expires_ms: to_ms(expires),
            }),
            Some(Decision::Deny { outcome, reasons }) => Message::Denial(
                Denial {
                    request,
                    programme_hash: hash,
                    outcome,
                    reasons: reasons
                        .into_iter()
                        .map(|r| DenialReason {
                            code: r.code,
                            ihe: r.ihe,
                            message: r.message,
                        })
                        .collect(),
                }
                .fitted(),
            ),
            // No answer at all (the core dropped the request) is a denial.
            None | Some(Decision::Awaiting { .. }) => Message::Denial(Denial {
                request,
                programme_hash: hash,
                outcome: "unavailable".to_owned(),
                reasons: vec![DenialReason {
                    code: crate::gateway::authorise::codes::GATEWAY_UNAVAILABLE.to_owned(),
                    ihe: None,
                    message: "The gateway could not check this programme.".to_owned(),
                }],
            }),
        };
        self.send(m);
    }
}

fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    to_ms(OffsetDateTime::now_utc())
}

/// Milliseconds since the Unix epoch.
pub fn to_ms(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A time from milliseconds since the Unix epoch (the epoch itself if out of
/// range).
pub fn from_ms(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
