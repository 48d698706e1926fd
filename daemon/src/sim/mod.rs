//! `pump-sim`: a pump controller in software, for tests, the demo and
//! biomedical engineers bench-testing a gateway (`docs/pump-sim.md`).
//!
//! It speaks the pump link as a controller would (HELLO, STATUS, programme
//! requests, delivery events, alarms, library transfer), delivers over
//! (optionally accelerated) time, plays scenario steps and injects faults.
//! It opens its own pseudo-terminal (the gateway opens the other end) or a
//! real serial device.
//!
//! - [`scenario`]: the scenario file format and interactive commands;
//! - [`delivery`]: the pump's own arithmetic and delivery over time;
//! - [`faults`]: what happens to the bytes on their way out;
//! - [`library`]: a bench library, signed and activated, for the demo and
//!   tests;
//! - [`ehr`]: a simulated EHR, on both sides of a gateway's `[ehr]`;
//! - [`fleet`]: simulated gateways' logs and batches, for the fleet archive.

pub mod bedside;
pub mod delivery;
pub mod ehr;
pub mod faults;
pub mod fleet;
pub mod library;
pub mod practice;
pub mod scenario;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use ciborium::Value;
use futures_util::StreamExt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::delivery::{Running, amount_text, bolus_ml, flow_ml_per_h, ml_text, volume_ul};
use self::faults::Faults;
use self::scenario::{Expect, PumpSpec, Scenario, Step};
use crate::format::plain;
use crate::link::message::{
    self, Alarm, AlarmPriority, DeliveryEvent, DeliveryEventKind, Hash, Hello, LibraryInstalled,
    LibraryRequest, ProgrammeRequest, PumpState, Status,
};
use crate::link::{Endpoint, LinkCodec, LinkStats, Message, Received, Timing, sha256};
use crate::pump::pumplink::now_ms;
use crate::units::{
    Concentration, Exact, parse_concentration, parse_dose, parse_duration, parse_rate,
    parse_volume, parse_weight,
};

/// Where the simulated pump is plugged in.
#[derive(Debug, Clone)]
pub enum Port {
    /// A new pseudo-terminal; with `link`, a symlink to its device that
    /// stays the same across hang-ups.
    Pty {
        /// Symlink to maintain.
        link: Option<PathBuf>,
    },
    /// A real serial device.
    Device {
        /// Device path.
        path: PathBuf,
        /// Line speed.
        baud: u32,
    },
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Simulated seconds per real second.
    pub speed: u32,
    /// Link timers until the gateway's WELCOME sets its own.
    pub timing: Timing,
    /// Keep running when the scenario is over.
    pub stay: bool,
    /// Play the scenario again, five seconds after it ends.
    pub repeat: bool,
    /// How long to wait for an answer to a programme request (real time).
    pub answer_timeout: Duration,
    /// A name for the logs.
    pub name: String,
    /// Append the record number of every event the gateway acknowledged
    /// to this file, one per line (for tests that prove none is lost).
    pub ack_log: Option<PathBuf>,
    /// Simulated staff at the gateway's bedside terminal (started with
    /// [`bedside::spawn`]), who confirm this pump's programmes as the
    /// scenario says (none: someone at a real terminal must, or nobody
    /// does).
    pub bedside: Option<bedside::Handle>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            speed: 1,
            timing: Timing::default(),
            stay: false,
            repeat: false,
            answer_timeout: Duration::from_secs(10),
            name: "pump-sim".to_owned(),
            ack_log: None,
            bedside: None,
        }
    }
}

/// What happened in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Expectations not met and steps that could not be played.
    pub failures: Vec<String>,
    /// Programmes authorised.
    pub authorised: u32,
    /// Programmes denied.
    pub denied: u32,
    /// Deliveries that ran to their end.
    pub completed: u32,
    /// Times the link came up.
    pub handshakes: u32,
    /// The link's counters at the end.
    pub counters: crate::link::LinkCounters,
}

/// Why the simulator could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The port could not be opened.
    #[error("cannot open {what}: {source}")]
    Port {
        /// Which port.
        what: String,
        /// Why.
        source: tokio_serial::Error,
    },
    /// The symlink could not be made.
    #[error("cannot link {link} to the pseudo-terminal: {source}")]
    Link {
        /// The link path.
        link: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How long a controller waits for WELCOME after its HELLO was
/// acknowledged (`docs/protocol.md` section 5.4).
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(2);

enum Leave {
    HangUp(Duration),
    Done,
    Shutdown,
    PortError(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wait {
    Nothing,
    Online,
    Library(Option<u64>),
    Until(Instant),
    Answer(Instant),
    Delivery,
    /// The simulated staff's terminal connection, up to a deadline.
    Bedside(Instant),
}

struct Container {
    drug: String,
    conc: Concentration,
    conc_text: String,
    /// What the label says (what staff type at the terminal).
    label: String,
    /// The load count sent with every programme from this container.
    load: u32,
    loaded_ul: Exact,
    remaining_ul: Exact,
}

struct Pending {
    request: u32,
    hash: Hash,
    plan: Running,
    expect: Option<Expect>,
    expect_code: Option<String>,
    /// The override reason the step gives, for simulated staff.
    override_reason: Option<String>,
}

struct Transfer {
    version: u64,
    hash: Hash,
    size: usize,
    data: Vec<u8>,
}

struct ActiveAlarm {
    alarm: Alarm,
    clear_at: Option<Instant>,
}

struct Sim {
    spec: PumpSpec,
    /// Whether "scenario played" was said.
    played: bool,
    opts: Options,
    faults: Faults,
    script: Vec<Step>,
    steps: VecDeque<Step>,
    commands: Option<mpsc::Receiver<Step>>,
    wait: Wait,
    online: bool,
    hello_due: Option<Instant>,
    endpoint: Endpoint,
    library: Option<(u64, Hash)>,
    transfer: Option<Transfer>,
    container: Option<Container>,
    running: Option<Running>,
    pending: Option<Pending>,
    next_request: u32,
    record: u64,
    outbox: VecDeque<Message>,
    alarms: Vec<ActiveAlarm>,
    next_alarm: u32,
    report: Report,
    last_tick: Instant,
    last_status: Instant,
    step_number: usize,
    /// A hang-up asked for by a fault outside the steps.
    hang_up_now: Option<Duration>,
    /// Containers loaded so far.
    loads: u32,
    /// The override reason of the step being played.
    override_next: Option<String>,
    /// Set while a programme step waits for the simulated staff.
    bedside_wait: Option<Instant>,
    /// Simulated staff at the terminal, if any.
    bedside: Option<bedside::Handle>,
}

/// Runs a scenario until it is over (or, with `stay`, until `shutdown`).
/// `commands` feeds more steps (interactive mode); `on_port` is told the
/// device path each time the port is (re)opened.
pub async fn run(
    scenario: Scenario,
    port: Port,
    opts: Options,
    commands: Option<mpsc::Receiver<Step>>,
    shutdown: CancellationToken,
    mut on_port: impl FnMut(&str),
) -> Result<Report, SimError> {
    let mut sim = Sim::new(scenario, opts, commands);
    sim.bedside.clone_from(&sim.opts.bedside);
    loop {
        let leave = match &port {
            Port::Pty { link } => {
                let (master, slave) = SerialStream::pair().map_err(|source| SimError::Port {
                    what: "a pseudo-terminal".to_owned(),
                    source,
                })?;
                let device = slave.name().unwrap_or_default();
                let shown = match link {
                    Some(link) => {
                        relink(link, &device).map_err(|source| SimError::Link {
                            link: link.display().to_string(),
                            source,
                        })?;
                        link.display().to_string()
                    }
                    None => device.clone(),
                };
                on_port(&shown);
                info!(pump = %sim.opts.name, device = %device, port = %shown, "pseudo-terminal open");
                // `slave` stays open while we run: with no slave open, reads
                // on the master fail and the gateway could not reopen it.
                let leave = sim.connection(master, &shutdown).await;
                drop(slave);
                if let Some(link) = link {
                    let _ = std::fs::remove_file(link);
                }
                leave
            }
            Port::Device { path, baud } => {
                let stream = tokio_serial::new(path.to_string_lossy(), *baud)
                    .open_native_async()
                    .map_err(|source| SimError::Port {
                        what: path.display().to_string(),
                        source,
                    })?;
                on_port(&path.display().to_string());
                sim.connection(stream, &shutdown).await
            }
        };
        match leave {
            Leave::Done | Leave::Shutdown => {
                sim.report.counters = sim.endpoint.stats().snapshot();
                return Ok(sim.report);
            }
            Leave::PortError(e) => {
                warn!(pump = %sim.opts.name, error = %e, "port failed; reopening in 1 s");
                sim.link_lost();
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(sim.report),
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Leave::HangUp(d) => {
                info!(pump = %sim.opts.name, away_ms = d.as_millis(), "hung up (cable pulled)");
                sim.link_lost();
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(sim.report),
                    () = tokio::time::sleep(d) => {}
                }
                // Time away still counts for the delivery.
            }
        }
    }
}

fn relink(link: &std::path::Path, device: &str) -> std::io::Result<()> {
    match std::fs::remove_file(link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::symlink(device, link)
}

impl Sim {
    fn new(scenario: Scenario, opts: Options, commands: Option<mpsc::Receiver<Step>>) -> Sim {
        let now = Instant::now();
        let library = scenario.pump.library_version.map(|v| {
            (
                v,
                sha256(format!("pump-sim made-up library v{v}").as_bytes()),
            )
        });
        Sim {
            faults: Faults::new(scenario.faults),
            script: scenario.steps.clone(),
            steps: scenario.steps.into(),
            commands,
            wait: Wait::Nothing,
            online: false,
            hello_due: None,
            endpoint: {
                let mut e = Endpoint::new(opts.timing, std::sync::Arc::default(), now);
                if opts.ack_log.is_some() {
                    e.track_acknowledged();
                }
                e
            },
            library,
            transfer: None,
            container: None,
            running: None,
            pending: None,
            next_request: 1,
            // A real controller keeps this counter in non-volatile memory; the
            // clock stands in for that, so a restarted simulator's events are
            // never taken for ones the gateway already has.
            record: scenario.pump.first_record.unwrap_or_else(now_ms),
            outbox: VecDeque::new(),
            alarms: Vec::new(),
            next_alarm: 1,
            report: Report::default(),
            last_tick: now,
            last_status: now,
            step_number: 0,
            hang_up_now: None,
            loads: 0,
            override_next: None,
            bedside: None,
            bedside_wait: None,
            spec: scenario.pump,
            played: false,
            opts,
        }
    }

    async fn connection<S>(&mut self, io: S, shutdown: &CancellationToken) -> Leave
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (reader, mut writer) = tokio::io::split(io);
        let mut frames = FramedRead::new(reader, LinkCodec::new(self.endpoint.stats().clone()));
        self.online = false;
        self.hello_due = Some(Instant::now());
        // End any partial frame at the gateway.
        if let Err(e) = writer.write_all(&[0]).await {
            return Leave::PortError(e.to_string());
        }
        loop {
            let now = Instant::now();
            if let Some(due) = self.hello_due
                && due <= now
            {
                self.hello_due = None;
                self.send_hello(now);
            }
            self.tick(now);
            if let Some(away) = self.hang_up_now.take() {
                let _ = self.flush(&mut writer).await;
                return Leave::HangUp(away);
            }
            if let Some(leave) = self.advance_steps(now) {
                let _ = self.flush(&mut writer).await;
                return leave;
            }
            // Events fill the window (one at a time in version 1).
            while self.online && self.endpoint.has_room() {
                let Some(m) = self.outbox.pop_front() else {
                    break;
                };
                self.send(m);
            }
            if let Err(e) = self.flush(&mut writer).await {
                return Leave::PortError(e.to_string());
            }
            let mut deadline = self
                .endpoint
                .next_deadline()
                .min(now + Duration::from_millis(100));
            if let Some(due) = self.hello_due {
                deadline = deadline.min(due);
            }
            tokio::select! {
                () = shutdown.cancelled() => return Leave::Shutdown,
                read = frames.next() => match read {
                    None => return Leave::PortError("the port closed".to_owned()),
                    Some(Err(e)) => return Leave::PortError(e.to_string()),
                    Some(Ok(packet)) => {
                        if let Received::Message(m, _) = self.endpoint.receive(packet, Instant::now()) {
                            self.handle(m);
                        }
                        self.note_acknowledged();
                    }
                },
                step = recv(&mut self.commands), if self.commands.is_some() => match step {
                    Some(step) => self.steps.push_back(step),
                    None => self.commands = None,
                },
                () = tokio::time::sleep_until(deadline) => {
                    if let Err(down) = self.endpoint.poll(Instant::now()) {
                        if self.online {
                            warn!(pump = %self.opts.name, reason = %down, "link down; saying HELLO again");
                        } else {
                            debug!(pump = %self.opts.name, reason = %down, "no WELCOME yet; saying HELLO again");
                        }
                        self.link_lost();
                        self.hello_due = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
            }
        }
    }

    fn note_acknowledged(&mut self) {
        let done = self.endpoint.take_acknowledged();
        let Some(path) = &self.opts.ack_log else {
            return;
        };
        let records = done
            .iter()
            .filter_map(|m| match m {
                Message::Delivery(d) => Some(d.record),
                Message::Alarm(a) => Some(a.record),
                _ => None,
            })
            .fold(String::new(), |mut out, r| {
                let _ = writeln!(out, "{r}");
                out
            });
        if records.is_empty() {
            return;
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, records.as_bytes()));
        if let Err(e) = written {
            warn!(pump = %self.opts.name, error = %e, "cannot write the acknowledgement log");
        }
    }

    /// Keeps unacknowledged events for the next link; the rest is void.
    fn link_lost(&mut self) {
        self.online = false;
        let unacked = self.endpoint.deactivate();
        self.keep_events(unacked);
        // The request is denied for the pump (section 5.3), but no answer
        // came: like an answer timeout, that fails the expectation.
        if let Some(p) = self.pending.take() {
            self.fail(format!(
                "request {}: the link went down before the answer; not delivering",
                p.request
            ));
        }
    }

    /// Puts unacknowledged delivery and alarm events back at the front of
    /// the outbox, in order; anything else from a lost session is void.
    fn keep_events(&mut self, unacked: Vec<Message>) {
        for m in unacked.into_iter().rev() {
            if matches!(m, Message::Delivery(_) | Message::Alarm(_)) {
                self.outbox.push_front(m);
            }
        }
    }

    fn send_hello(&mut self, now: Instant) {
        let unacked = self.endpoint.restart(now);
        self.keep_events(unacked);
        self.endpoint.set_timing(self.opts.timing);
        // No WELCOME in time (the HELLO may have been taken as a duplicate
        // by a gateway that still remembers our last number): say HELLO
        // again, with the next number.
        self.hello_due = Some(now + WELCOME_TIMEOUT);
        let hello = Message::Hello(Hello {
            versions: self.spec.versions.clone(),
            manufacturer: self.spec.manufacturer.clone(),
            model: self.spec.model.clone(),
            serial: self.spec.serial.clone(),
            firmware: self.spec.firmware.clone(),
            care_area: self.spec.care_area.clone(),
            library_version: self.library.map(|l| l.0),
            library_hash: self.library.map(|l| l.1),
        });
        let _ = self.endpoint.send(hello, now);
    }

    fn send(&mut self, m: Message) {
        if let Err(e) = self.endpoint.send(m, Instant::now()) {
            warn!(pump = %self.opts.name, error = %e, "send queue full");
        }
    }

    /// Delivery and alarm events survive link loss: they wait in the outbox.
    fn event(&mut self, m: Message) {
        self.outbox.push_back(m);
    }

    fn next_record(&mut self) -> u64 {
        self.record += 1;
        self.record
    }

    async fn flush<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        let frames = self.endpoint.take_outgoing();
        if frames.is_empty() && self.faults.garbage_next == 0 {
            return Ok(());
        }
        if frames.is_empty() {
            let n = std::mem::take(&mut self.faults.garbage_next);
            let g = self.faults.garbage(n);
            w.write_all(&g).await?;
        }
        for f in frames {
            let Ok(wire) = f.to_wire() else { continue };
            let shaped = self.faults.shape(&wire, f.header.seq != 0);
            if !shaped.applied.is_empty() {
                info!(pump = %self.opts.name, faults = ?shaped.applied, kind = f.header.kind, seq = f.header.seq, "fault injected");
            }
            if !shaped.delay.is_zero() {
                tokio::time::sleep(shaped.delay).await;
            }
            w.write_all(&shaped.bytes).await?;
            let stats = self.endpoint.stats();
            LinkStats::bump(&stats.frames_out);
        }
        w.flush().await
    }

    fn handle(&mut self, m: Message) {
        match m {
            Message::Welcome(w) => {
                if !self.online {
                    self.report.handshakes += 1;
                }
                self.online = true;
                self.hello_due = None;
                let mut timing = self.endpoint.timing();
                timing.heartbeat = Duration::from_millis(w.heartbeat_ms.into());
                timing.supervision = Duration::from_millis(w.supervision_ms.into());
                self.endpoint.set_timing(timing);
                self.endpoint.set_session(
                    w.version,
                    w.window.unwrap_or(1).min(self.opts.timing.window),
                );
                self.endpoint.activate(Instant::now());
                info!(pump = %self.opts.name, gateway = %w.gateway, library_version = ?w.library_version, version = w.version, window = self.endpoint.window(), "link up");
                self.status();
            }
            Message::Authorisation(a) => self.authorised(&a),
            Message::AwaitingConfirmation(a) => self.awaiting(&a),
            Message::Denial(d) => self.denied(&d),
            Message::LibraryOffer(o) => self.library_offer(&o),
            Message::LibraryChunk(c) => self.library_chunk(&c),
            Message::Error(e) => {
                warn!(pump = %self.opts.name, code = %e.code, seq = e.seq, "gateway reports: {}", e.detail);
            }
            Message::TimeSync(_) | Message::Ack | Message::Heartbeat => {}
            other => {
                let kind = other.kind();
                let seq = self.endpoint.last_received();
                self.endpoint.report(
                    "unexpected",
                    seq,
                    format!("{kind:?} is sent by controllers, not gateways"),
                    Instant::now(),
                );
            }
        }
    }

    fn authorised(&mut self, a: &message::Authorisation) {
        let Some(p) = self.pending.take_if(|p| p.request == a.request) else {
            warn!(pump = %self.opts.name, request = a.request, "authorisation for no pending request; ignored");
            return;
        };
        if a.programme_hash != p.hash {
            self.fail(format!(
                "request {}: authorisation bound to another programme; not delivering",
                p.request
            ));
            return;
        }
        if now_ms() >= a.expires_ms {
            self.fail(format!(
                "request {}: authorisation already expired; not delivering",
                p.request
            ));
            return;
        }
        self.report.authorised += 1;
        info!(pump = %self.opts.name, request = p.request, "authorised; starting");
        if p.expect == Some(Expect::Denied) {
            self.fail(format!(
                "request {}: expected a denial, got an authorisation",
                p.request
            ));
        }
        let mut running = p.plan;
        running.token = a.token;
        self.running = Some(running);
        self.delivery_event(DeliveryEventKind::Started);
        self.status();
    }

    /// The gateway asks people first: wait for its answer until the time
    /// it gives, and let the simulated staff (if any) answer.
    fn awaiting(&mut self, a: &message::AwaitingConfirmation) {
        let Some(p) = self.pending.as_ref().filter(|p| p.request == a.request) else {
            return;
        };
        if a.programme_hash != p.hash {
            warn!(pump = %self.opts.name, request = a.request, "awaiting-confirmation notice for another programme; ignored");
            return;
        }
        let left = Duration::from_millis(a.until_ms.saturating_sub(now_ms()));
        // A little beyond the gateway's time, for the answer to travel.
        self.wait = Wait::Answer(Instant::now() + left + Duration::from_secs(1));
        info!(pump = %self.opts.name, request = a.request, "waiting for confirmation: {}", a.message);
        if let (Some(b), Some(c)) = (&self.bedside, &self.container) {
            let job = bedside::Job {
                programme_hash: p.hash,
                label: c.label.clone(),
                override_reason: p.override_reason.clone(),
            };
            if b.jobs.try_send(job).is_err() {
                warn!(pump = %self.opts.name, "the simulated bedside is not taking work");
            }
        }
        self.status();
    }

    fn denied(&mut self, d: &message::Denial) {
        let Some(p) = self.pending.take_if(|p| p.request == d.request) else {
            return;
        };
        self.report.denied += 1;
        for r in &d.reasons {
            info!(pump = %self.opts.name, request = d.request, code = %r.code, "denied: {}", r.message);
        }
        if p.expect == Some(Expect::Authorised) {
            self.fail(format!(
                "request {}: expected an authorisation, got a denial ({})",
                d.request,
                d.reasons.first().map_or("", |r| r.code.as_str())
            ));
        }
        if let Some(code) = &p.expect_code
            && !d.reasons.iter().any(|r| &r.code == code)
        {
            self.fail(format!(
                "request {}: denial does not give {code}",
                d.request
            ));
        }
        self.status();
    }

    fn library_offer(&mut self, o: &message::LibraryOffer) {
        if self.library.is_some_and(|l| l.1 == o.hash) {
            self.send(Message::LibraryInstalled(LibraryInstalled {
                version: o.version,
                hash: o.hash,
            }));
            return;
        }
        let offset = match &self.transfer {
            Some(t) if t.hash == o.hash => t.data.len(),
            _ => {
                self.transfer = Some(Transfer {
                    version: o.version,
                    hash: o.hash,
                    size: o.size as usize,
                    data: Vec::with_capacity(o.size as usize),
                });
                0
            }
        };
        info!(pump = %self.opts.name, version = o.version, size = o.size, offset, "library offered; fetching");
        self.send(Message::LibraryRequest(LibraryRequest {
            hash: o.hash,
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
        }));
    }

    fn library_chunk(&mut self, c: &message::LibraryChunk) {
        let Some(t) = &mut self.transfer else { return };
        if t.hash != c.hash {
            return;
        }
        if c.offset as usize != t.data.len() {
            // Not the piece asked for: ask again for the one we need.
            let again = LibraryRequest {
                hash: t.hash,
                offset: u32::try_from(t.data.len()).unwrap_or(u32::MAX),
            };
            self.send(Message::LibraryRequest(again));
            return;
        }
        t.data.extend_from_slice(&c.data);
        if let Some(away) = self.spec.hang_up_during_transfer.take() {
            match parse_duration(&away)
                .map_err(|e| e.to_string())
                .and_then(|d| d.millis().scaled_round(0).map_err(|e| e.to_string()))
            {
                Ok(ms) => {
                    info!(pump = %self.opts.name, received = t.data.len(), "pulling the cable mid-transfer");
                    self.hang_up_now = Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                }
                Err(e) => self.fail(format!("hang_up_during_transfer: {e}")),
            }
            return;
        }
        if t.data.len() < t.size && !c.data.is_empty() {
            let next = LibraryRequest {
                hash: t.hash,
                offset: u32::try_from(t.data.len()).unwrap_or(u32::MAX),
            };
            self.send(Message::LibraryRequest(next));
            return;
        }
        let t = self.transfer.take().expect("checked above");
        let got = sha256(&t.data);
        if got == t.hash && t.data.len() == t.size {
            let got = if self.spec.corrupt_library {
                warn!(pump = %self.opts.name, "installing the library wrongly (corrupt_library)");
                sha256(&[&t.data[..], b"corrupted"].concat())
            } else {
                got
            };
            info!(pump = %self.opts.name, version = t.version, "library installed");
            self.library = Some((t.version, got));
            self.send(Message::LibraryInstalled(LibraryInstalled {
                version: t.version,
                hash: got,
            }));
        } else {
            warn!(pump = %self.opts.name, "library transfer does not match its hash; starting again from 0");
            let again = LibraryRequest {
                hash: t.hash,
                offset: 0,
            };
            self.transfer = Some(Transfer {
                data: Vec::with_capacity(t.size),
                ..t
            });
            self.send(Message::LibraryRequest(again));
        }
    }

    fn raise_alarm(
        &mut self,
        condition: String,
        priority: AlarmPriority,
        text: String,
        clear_after: Option<&str>,
        now: Instant,
    ) {
        let n = self.step_number;
        let clear_at = match clear_after.map(|t| self.sim_duration(t)) {
            Some(Ok(d)) => Some(now + d),
            Some(Err(e)) => {
                self.fail(format!("step {n} (alarm): {e}"));
                None
            }
            None => None,
        };
        let alarm = Alarm {
            record: self.next_record(),
            id: self.next_alarm,
            priority,
            condition,
            text,
            active: true,
            at_ms: now_ms(),
        };
        self.next_alarm += 1;
        self.event(Message::Alarm(alarm.clone()));
        self.alarms.push(ActiveAlarm { alarm, clear_at });
        self.status();
    }

    fn pause(&mut self, pause: bool) {
        if let Some(r) = &mut self.running
            && r.paused != pause
        {
            r.paused = pause;
            let kind = if pause {
                DeliveryEventKind::Paused
            } else {
                DeliveryEventKind::Resumed
            };
            self.delivery_event(kind);
            self.status();
        }
    }

    fn schedule_faults(
        &mut self,
        counts: [u32; 4],
        delay_next_ms: u32,
        silence_ms: u32,
        now: Instant,
    ) {
        let [drop_next, corrupt_next, duplicate_next, garbage] = counts;
        if silence_ms > 0 {
            self.faults.silent_until = Some(now + Duration::from_millis(silence_ms.into()));
        }
        self.faults.drop_next += drop_next;
        self.faults.corrupt_next += corrupt_next;
        self.faults.duplicate_next += duplicate_next;
        self.faults.delay_next = Duration::from_millis(delay_next_ms.into());
        self.faults.garbage_next += garbage;
    }

    fn load(&mut self, drug: String, concentration: String, label: Option<String>, volume: &str) {
        let n = self.step_number;
        match (parse_concentration(&concentration), parse_volume(volume)) {
            (Ok(conc), Ok(vol)) => {
                self.running = None;
                self.loads = self.loads.wrapping_add(1).max(1);
                self.container = Some(Container {
                    drug,
                    conc,
                    label: label.unwrap_or_else(|| concentration.clone()),
                    load: self.loads,
                    conc_text: concentration,
                    loaded_ul: volume_ul(vol),
                    remaining_ul: volume_ul(vol),
                });
                self.status();
            }
            (Err(e), _) | (_, Err(e)) => self.fail(format!("step {n} (load): {e}")),
        }
    }

    /// Whether programmes may go: no simulated staff, or they are at
    /// their terminal.
    fn bedside_ready(&self) -> bool {
        self.bedside.as_ref().is_none_or(|b| *b.up.borrow())
    }

    fn fail(&mut self, what: String) {
        warn!(pump = %self.opts.name, "{what}");
        self.report.failures.push(what);
    }

    fn tick(&mut self, now: Instant) {
        let real_ms = u64::try_from(now.duration_since(self.last_tick).as_millis()).unwrap_or(0);
        self.last_tick = now;
        let sim_ms = real_ms.saturating_mul(u64::from(self.opts.speed));
        if let (Some(r), Some(c)) = (&mut self.running, &mut self.container) {
            let given = r.advance(sim_ms, c.remaining_ul);
            c.remaining_ul = c.remaining_ul.sub(given).unwrap_or(Exact::ZERO);
            if r.finished(c.remaining_ul) {
                let kind = if r.bolus {
                    DeliveryEventKind::BolusDelivered
                } else {
                    DeliveryEventKind::Completed
                };
                self.delivery_event(kind);
                self.running = None;
                self.report.completed += 1;
                self.status();
            }
        }
        let due: Vec<usize> = self
            .alarms
            .iter()
            .enumerate()
            .filter(|(_, a)| a.clear_at.is_some_and(|t| t <= now))
            .map(|(i, _)| i)
            .collect();
        for i in due.into_iter().rev() {
            let a = self.alarms.remove(i);
            self.clear_alarm(a.alarm);
        }
        if self.online && now.duration_since(self.last_status) >= Duration::from_secs(1) {
            self.status();
        }
    }

    fn status(&mut self) {
        self.last_status = Instant::now();
        if !self.online {
            return;
        }
        let state = if self
            .alarms
            .iter()
            .any(|a| a.alarm.priority == AlarmPriority::High)
        {
            PumpState::Alarm
        } else if self.pending.is_some() {
            PumpState::AwaitingAuthorisation
        } else {
            match &self.running {
                Some(r) if r.paused => PumpState::Paused,
                Some(r) if r.bolus => PumpState::Bolus,
                Some(_) => PumpState::Infusing,
                None => PumpState::Idle,
            }
        };
        let c = self.container.as_ref();
        let s = Status {
            state,
            drug: c.map(|c| c.drug.clone()),
            flow_rate: self
                .running
                .as_ref()
                .map(|r| format!("{} mL/h", plain(r.flow_ml_per_h, 3))),
            dose_rate: self.running.as_ref().and_then(|r| r.dose_rate.clone()),
            volume_infused: c
                .map(|c| ml_text(c.loaded_ul.sub(c.remaining_ul).unwrap_or(Exact::ZERO))),
            volume_remaining: c.map(|c| ml_text(c.remaining_ul)),
            battery_percent: self.spec.battery_percent,
            on_mains: true,
            alarms: self.alarms.iter().map(|a| a.alarm.id).collect(),
        };
        self.send(Message::Status(s));
    }

    fn delivery_event(&mut self, event: DeliveryEventKind) {
        let (Some(r), Some(c)) = (&self.running, &self.container) else {
            return;
        };
        let m = DeliveryEvent {
            record: 0,
            event,
            request: r.request,
            token: r.token,
            at_ms: now_ms(),
            volume_infused: if self.spec.unreadable_volume {
                "some mL".to_owned()
            } else {
                ml_text(r.given_ul)
            },
            amount_infused: match self.spec.amount_infused {
                scenario::AmountReport::Given => Some(amount_text(r.given_ul, c.conc)),
                scenario::AmountReport::Omitted => None,
                scenario::AmountReport::Half => Some(amount_text(
                    r.given_ul.div_int(2).unwrap_or(r.given_ul),
                    c.conc,
                )),
            },
        };
        let record = self.next_record();
        self.event(Message::Delivery(DeliveryEvent { record, ..m }));
    }

    fn clear_alarm(&mut self, mut alarm: Alarm) {
        alarm.active = false;
        alarm.at_ms = now_ms();
        alarm.record = self.next_record();
        self.event(Message::Alarm(alarm));
        self.status();
    }

    fn wait_done(&mut self, now: Instant) -> bool {
        match self.wait {
            Wait::Nothing => true,
            Wait::Online => self.online,
            Wait::Library(v) => self
                .library
                .is_some_and(|(have, _)| v.is_none_or(|want| want == have)),
            Wait::Until(t) => now >= t,
            Wait::Delivery => self.running.is_none(),
            Wait::Bedside(deadline) => self.bedside_ready() || now >= deadline,
            Wait::Answer(deadline) => {
                if self.pending.is_none() {
                    return true;
                }
                if now < deadline {
                    return false;
                }
                let p = self.pending.take().expect("checked above");
                self.fail(format!(
                    "request {}: no answer from the gateway; not delivering",
                    p.request
                ));
                true
            }
        }
    }

    fn scenario_over(&self) -> bool {
        self.steps.is_empty()
            && self.commands.is_none()
            && !self.opts.stay
            && self.running.is_none()
            && self.pending.is_none()
            && self.outbox.is_empty()
            && self.endpoint.is_idle()
    }

    fn advance_steps(&mut self, now: Instant) -> Option<Leave> {
        loop {
            if !self.wait_done(now) {
                return None;
            }
            self.wait = Wait::Nothing;
            if self.steps.is_empty()
                && self.opts.repeat
                && self.running.is_none()
                && self.pending.is_none()
                && !self.script.is_empty()
            {
                self.steps = self.script.clone().into();
                self.wait = Wait::Until(now + Duration::from_secs(5));
                continue;
            }
            let Some(step) = self.steps.pop_front() else {
                if !self.played && self.pending.is_none() && self.commands.is_none() {
                    // Said once, so that a bench waiting on a pump that stays
                    // (its infusion running) knows its steps are done.
                    self.played = true;
                    info!(pump = %self.opts.name, failures = self.report.failures.len(), "scenario played");
                }
                return self.scenario_over().then_some(Leave::Done);
            };
            // Programmes need a link; wait for it rather than fail.
            if matches!(step, Step::Infuse { .. } | Step::Bolus { .. }) && !self.online {
                self.steps.push_front(step);
                self.wait = Wait::Online;
                return None;
            }
            // And the simulated staff at their terminal, a while at most (a
            // real pump does not wait for anyone: the gateway says no).
            if matches!(step, Step::Infuse { .. } | Step::Bolus { .. })
                && !self.bedside_ready()
                && self.bedside_wait.is_none()
            {
                self.steps.push_front(step);
                let deadline = now + Duration::from_secs(10);
                self.bedside_wait = Some(deadline);
                self.wait = Wait::Bedside(deadline);
                return None;
            }
            self.bedside_wait = None;
            self.step_number += 1;
            debug!(pump = %self.opts.name, step = self.step_number, ?step, "step");
            if let Some(leave) = self.execute(step, now) {
                return Some(leave);
            }
        }
    }

    fn sim_duration(&self, text: &str) -> Result<Duration, String> {
        let d = parse_duration(text).map_err(|e| e.to_string())?;
        let ms = d.millis().scaled_round(0).map_err(|e| e.to_string())?;
        let ms = u64::try_from(ms).map_err(|_| format!("{text}: out of range"))?;
        Ok(Duration::from_millis(
            ms / u64::from(self.opts.speed.max(1)),
        ))
    }

    /// Plays an `infuse` or `bolus` step: a programme request.
    fn programme_step(&mut self, step: Step, now: Instant) {
        let n = self.step_number;
        match step {
            Step::Infuse {
                rate,
                vtbi,
                pump_flow_rate,
                expect,
                expect_code,
                override_reason,
            } => {
                self.override_next = override_reason;
                if let Err(e) = self.request_infusion(
                    &rate,
                    vtbi.as_deref(),
                    pump_flow_rate.as_deref(),
                    expect,
                    expect_code,
                    now,
                ) {
                    self.fail(format!("step {n} (infuse): {e}"));
                }
            }
            Step::Bolus {
                dose,
                duration,
                pump_volume,
                expect,
                expect_code,
                override_reason,
            } => {
                self.override_next = override_reason;
                if let Err(e) = self.request_bolus(
                    &dose,
                    duration.as_deref(),
                    pump_volume.as_deref(),
                    expect,
                    expect_code,
                    now,
                ) {
                    self.fail(format!("step {n} (bolus): {e}"));
                }
            }
            _ => {}
        }
    }

    fn execute(&mut self, step: Step, now: Instant) -> Option<Leave> {
        let n = self.step_number;
        match step {
            Step::WaitOnline => self.wait = Wait::Online,
            Step::WaitLibrary { version } => self.wait = Wait::Library(version),
            Step::Load {
                drug,
                concentration,
                label,
                volume,
            } => self.load(drug, concentration, label, &volume),
            step @ (Step::Infuse { .. } | Step::Bolus { .. }) => self.programme_step(step, now),
            Step::Wait { duration } => match self.sim_duration(&duration) {
                Ok(d) => self.wait = Wait::Until(now + d),
                Err(e) => self.fail(format!("step {n} (wait): {e}")),
            },
            Step::WaitDelivery => self.wait = Wait::Delivery,
            Step::Pause => self.pause(true),
            Step::Resume => self.pause(false),
            Step::Stop => {
                if self.running.is_some() {
                    self.delivery_event(DeliveryEventKind::Stopped);
                    self.running = None;
                    self.status();
                }
            }
            Step::Alarm {
                condition,
                priority,
                text,
                clear_after,
            } => self.raise_alarm(condition, priority, text, clear_after.as_deref(), now),
            Step::ClearAlarms => {
                for a in std::mem::take(&mut self.alarms) {
                    self.clear_alarm(a.alarm);
                }
            }
            Step::Fault {
                drop_next,
                corrupt_next,
                duplicate_next,
                delay_next_ms,
                garbage,
                silence_ms,
            } => self.schedule_faults(
                [drop_next, corrupt_next, duplicate_next, garbage],
                delay_next_ms,
                silence_ms,
                now,
            ),
            Step::HangUp { duration } => match parse_duration(&duration)
                .map_err(|e| e.to_string())
                .and_then(|d| d.millis().scaled_round(0).map_err(|e| e.to_string()))
            {
                Ok(ms) => {
                    return Some(Leave::HangUp(Duration::from_millis(
                        u64::try_from(ms).unwrap_or(0),
                    )));
                }
                Err(e) => self.fail(format!("step {n} (hang_up): {e}")),
            },
        }
        None
    }

    fn programme(&self, delivery: Vec<(Value, Value)>) -> Result<(Value, &Container), String> {
        let c = self
            .container
            .as_ref()
            .ok_or("no container loaded (add a `load` step first)")?;
        let t = |s: &str| Value::Text(s.to_owned());
        let mut map = vec![
            (t("drug"), t(&c.drug)),
            (
                t("library_version"),
                Value::Integer(self.library.map_or(0, |l| l.0).into()),
            ),
            (
                t("requested_at"),
                t(&OffsetDateTime::now_utc()
                    .format(&Rfc3339)
                    .map_err(|e| e.to_string())?),
            ),
        ];
        if let Some(area) = &self.spec.care_area {
            map.push((t("care_area"), t(area)));
        }
        if let Some(w) = &self.spec.patient_weight {
            map.push((t("patient_weight"), t(w)));
        }
        map.push((
            t("container"),
            Value::Map(vec![
                (t("concentration"), t(&c.conc_text)),
                (t("volume_loaded"), t(&ml_text(c.loaded_ul))),
                (t("volume_remaining"), t(&ml_text(c.remaining_ul))),
                (t("load"), Value::Integer(c.load.into())),
            ]),
        ));
        map.push((t("delivery"), Value::Map(delivery)));
        Ok((Value::Map(map), c))
    }

    fn weight(&self) -> Result<Option<crate::units::Weight>, String> {
        self.spec
            .patient_weight
            .as_deref()
            .map(parse_weight)
            .transpose()
            .map_err(|e| e.to_string())
    }

    #[allow(clippy::too_many_arguments)]
    fn request_infusion(
        &mut self,
        rate: &str,
        vtbi: Option<&str>,
        claim: Option<&str>,
        expect: Option<Expect>,
        expect_code: Option<String>,
        now: Instant,
    ) -> Result<(), String> {
        let c = self.container.as_ref().ok_or("no container loaded")?;
        let parsed = parse_rate(rate).map_err(|e| e.to_string())?;
        let flow = flow_ml_per_h(parsed, c.conc, self.weight()?)?;
        let claimed = match claim {
            Some(text) => {
                let r = parse_rate(text).map_err(|e| e.to_string())?;
                r.convert(crate::units::RateUnit::MillilitresPerHour)
                    .ok_or("pump_flow_rate must be in mL/h")?
                    .map_err(|e| e.to_string())?
            }
            None => flow,
        };
        let target = vtbi
            .map(|v| parse_volume(v).map(volume_ul))
            .transpose()
            .map_err(|e| e.to_string())?;
        let t = |s: &str| Value::Text(s.to_owned());
        let mut delivery = vec![(t("kind"), t("continuous")), (t("rate"), t(rate))];
        if let Some(v) = vtbi {
            delivery.push((t("vtbi"), t(v)));
        }
        delivery.push((
            t("pump_flow_rate"),
            t(&format!("{} mL/h", plain(claimed, 3))),
        ));
        let dose_rate =
            matches!(parsed.unit, crate::units::RateUnit::Dose { .. }).then(|| rate.to_owned());
        let plan = Running {
            request: 0,
            token: [0; 16],
            bolus: false,
            flow_ml_per_h: claimed,
            target_ul: target,
            given_ul: Exact::ZERO,
            paused: false,
            dose_rate,
        };
        self.ask(delivery, plan, expect, expect_code, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn request_bolus(
        &mut self,
        dose: &str,
        duration: Option<&str>,
        claim: Option<&str>,
        expect: Option<Expect>,
        expect_code: Option<String>,
        now: Instant,
    ) -> Result<(), String> {
        let c = self.container.as_ref().ok_or("no container loaded")?;
        let parsed = parse_dose(dose).map_err(|e| e.to_string())?;
        let ml = match claim {
            Some(v) => parse_volume(v)
                .map_err(|e| e.to_string())?
                .ml()
                .map_err(|e| e.to_string())?,
            None => bolus_ml(parsed, c.conc, self.weight()?)?,
        };
        // Without a duration the pump gives a bolus over one minute.
        let seconds = match duration {
            Some(d) => parse_duration(d)
                .map_err(|e| e.to_string())?
                .millis()
                .div_int(1000)
                .map_err(|e| e.to_string())?,
            None => Exact::int(60),
        };
        if seconds.is_zero() {
            return Err("a bolus duration must be above 0".to_owned());
        }
        let flow = ml
            .mul_int(3600)
            .and_then(|x| x.div(seconds))
            .map_err(|e| e.to_string())?;
        let t = |s: &str| Value::Text(s.to_owned());
        let mut delivery = vec![(t("kind"), t("bolus")), (t("dose"), t(dose))];
        if let Some(d) = duration {
            delivery.push((t("duration"), t(d)));
        }
        delivery.push((t("pump_volume"), t(&format!("{} mL", plain(ml, 3)))));
        let plan = Running {
            request: 0,
            token: [0; 16],
            bolus: true,
            flow_ml_per_h: flow,
            target_ul: Some(ml.mul_int(1000).map_err(|e| e.to_string())?),
            given_ul: Exact::ZERO,
            paused: false,
            dose_rate: None,
        };
        self.ask(delivery, plan, expect, expect_code, now)
    }

    fn ask(
        &mut self,
        delivery: Vec<(Value, Value)>,
        mut plan: Running,
        expect: Option<Expect>,
        expect_code: Option<String>,
        now: Instant,
    ) -> Result<(), String> {
        if self.running.is_some() {
            // A new programme replaces the running one once authorised; the
            // old one stops now, as on a real pump.
            self.delivery_event(DeliveryEventKind::Stopped);
            self.running = None;
        }
        let (programme, _) = self.programme(delivery)?;
        let request = self.next_request;
        self.next_request += 1;
        plan.request = request;
        let m = Message::ProgrammeRequest(ProgrammeRequest { request, programme });
        let hash = message::sha256(&m.payload());
        info!(pump = %self.opts.name, request, "programme request sent");
        self.send(m);
        self.pending = Some(Pending {
            request,
            hash,
            plan,
            expect,
            expect_code,
            override_reason: self.override_next.take(),
        });
        self.wait = Wait::Answer(now + self.opts.answer_timeout);
        self.status();
        Ok(())
    }
}

async fn recv(commands: &mut Option<mpsc::Receiver<Step>>) -> Option<Step> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
