//! Documentation out (`[ehr] send_to`): one task reads the log after the
//! EHR's cursor (`crate::store::ehr_outbox`), makes each delivery's
//! messages ([`super::document`]) and sends them over MLLP one at a time,
//! each waiting for its `ACK` (`AA` or `CA`, quoting its control id). The
//! cursor moves past a record only once all its messages are acknowledged,
//! so every message reaches the EHR at least once and in order, through
//! EHR outages and restarts of the gateway (the one in flight at a crash
//! is sent again, with the same control id). A refusal (`AE`, `AR`, `CE`,
//! `CR`) is not skipped: the same message is offered again, with backoff,
//! and the connection's state says why, for `pumpgwd status`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::document::{Documenter, Origin};
use super::er7::Message;
use super::mllp::Mllp;
use crate::library::ActiveLibrary;
use crate::store::{Store, ehr_outbox};

/// Records read from the log at a time.
const READ_AHEAD: usize = 200;
/// How often an idle sender looks for new records.
const IDLE: Duration = Duration::from_millis(250);
/// The first wait after a failure; it doubles to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The longest acknowledgement taken (answers are small).
const MAX_ACK: usize = 64 * 1024;

/// Where and how documentation goes.
pub struct Sender {
    /// The EHR's MLLP receiver.
    pub destination: SocketAddr,
    /// Who sends.
    pub origin: Origin,
    /// A connection to the store of its own (records and the cursor); in
    /// a mutex only because the task is shared across await points.
    pub store: std::sync::Mutex<Store>,
    /// The active library: drug names for the messages.
    pub library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
    /// How long an acknowledgement may take.
    pub ack_timeout: Duration,
    /// How far back the programmes and orders are read at start.
    pub history: time::Duration,
    /// The bed's pumps now, for the periodic PCD-01.
    pub view: watch::Receiver<crate::gateway::Snapshot>,
    /// How often each online pump's status goes as PCD-01 (none: only on
    /// each delivery event).
    pub status_every: Option<Duration>,
    /// TLS to the EHR (its certificate checked against the configured
    /// CA, for the address's IP), or plain TCP.
    pub tls: Option<TlsConnector>,
}

/// The connection: plain TCP or TLS over it.
type Stream = Either<TcpStream, TlsStream<TcpStream>>;

/// What became of one attempt to send a message.
enum Sent {
    Acknowledged,
    /// The EHR answered, but not with acceptance: its words.
    Refused(String),
    /// No answer: the connection failed or timed out.
    Failed(String),
}

impl Sender {
    /// Runs `f` on the store (never across an await).
    fn db<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Sends until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let destination = self.destination.to_string();
        let mut cursor = match self.db(ehr_outbox::start) {
            Ok(c) => c.acked_seq,
            Err(e) => {
                warn!(error = %e, "EHR documentation cannot start: the log cannot be read");
                return;
            }
        };
        let mut doc = Documenter::default();
        let since = time::OffsetDateTime::now_utc() - self.history;
        let known = self.db(|s| ehr_outbox::context(s, since, cursor));
        if let Err(e) = &known {
            warn!(error = %e, "the programmes before the EHR's cursor cannot be read; their deliveries go without");
        }
        for (pump, record) in known.iter().flatten() {
            doc.learn(pump.as_deref(), record);
        }
        info!(destination = %destination, after = cursor, "EHR documentation (PCD-01, PCD-10) from the log");
        let mut link = Link {
            sender: &self,
            framed: None,
            state: String::new(),
            backoff: BACKOFF_MIN,
        };
        let mut periodic = self.status_every.map(|every| {
            let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            t
        });
        let mut statuses = 0u64;
        while !cancel.is_cancelled() {
            let records = match self.db(|s| ehr_outbox::after(s, cursor, READ_AHEAD)) {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "EHR documentation: the log cannot be read");
                    Vec::new()
                }
            };
            if records.is_empty() {
                let due = async {
                    match periodic.as_mut() {
                        Some(t) => drop(t.tick().await),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(IDLE) => continue,
                    () = due => {
                        let now = self.view.borrow().clone();
                        statuses = link.statuses(&now, statuses).await;
                        continue;
                    }
                }
            }
            for (seq, pump, record) in records {
                let names = |id: &str| self.drug_name(id);
                let messages = doc.messages(seq, &record, &self.origin, &names);
                doc.learn(pump.as_deref(), &record);
                let count = messages.len() as u64;
                for m in messages {
                    if !link.deliver(&m, &cancel).await {
                        return;
                    }
                }
                // Records without messages are passed with the next that
                // has some (or the last read): fewer writes.
                let documented = count > 0;
                if (documented || seq % READ_AHEAD as u64 == 0)
                    && let Err(e) = self
                        .db(|s| ehr_outbox::advance(s, seq, count, time::OffsetDateTime::now_utc()))
                {
                    warn!(error = %e, "the EHR's cursor cannot be saved; the record's messages will be sent again");
                }
                cursor = seq;
            }
            if let Err(e) =
                self.db(|s| ehr_outbox::advance(s, cursor, 0, time::OffsetDateTime::now_utc()))
            {
                warn!(error = %e, "the EHR's cursor cannot be saved");
            }
        }
        link.set("stopped", None);
        info!("EHR documentation stopped");
    }

    fn drug_name(&self, id: &str) -> Option<String> {
        let library = self.library.borrow();
        library
            .as_deref()?
            .library
            .care_area(&self.origin.care_area)?
            .drug(id)
            .map(|d| d.display_name.clone())
    }
}

/// The connection to the EHR, and what was last recorded of it.
struct Link<'a> {
    sender: &'a Sender,
    framed: Option<Framed<Stream, Mllp>>,
    state: String,
    backoff: Duration,
}

impl Link<'_> {
    /// Sends `m` until the EHR acknowledges it; false when cancelled first.
    async fn deliver(&mut self, m: &Message, cancel: &CancellationToken) -> bool {
        let control = m.msh().map(|h| h.value(10).to_owned()).unwrap_or_default();
        loop {
            let outcome = tokio::select! {
                () = cancel.cancelled() => return false,
                sent = self.send(m, &control) => sent,
            };
            match outcome {
                Sent::Acknowledged => {
                    self.backoff = BACKOFF_MIN;
                    self.set("connected", None);
                    return true;
                }
                Sent::Refused(why) => {
                    warn!(message = %control, reason = %why, "EHR refused a message; offering it again");
                    self.set("refused", Some(&format!("{control}: {why}")));
                }
                Sent::Failed(why) => {
                    self.framed = None;
                    self.set("disconnected", Some(&why));
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return false,
                () = tokio::time::sleep(self.backoff) => {}
            }
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Each online pump's status now, once each: not kept and not sent
    /// again (a later status says more); the count of periodic messages
    /// made so far.
    async fn statuses(&mut self, view: &crate::gateway::Snapshot, mut made: u64) -> u64 {
        for pump in &view.pumps {
            let Some(now) = now_of(pump, self.sender) else {
                continue;
            };
            made += 1;
            let m = super::document::periodic(&now, &self.sender.origin, made);
            let control = m.msh().map(|h| h.value(10).to_owned()).unwrap_or_default();
            match self.send(&m, &control).await {
                Sent::Acknowledged => self.set("connected", None),
                Sent::Refused(why) => {
                    warn!(message = %control, reason = %why, "EHR refused a periodic status; not sent again");
                }
                Sent::Failed(why) => {
                    self.framed = None;
                    self.set("disconnected", Some(&why));
                    break;
                }
            }
        }
        made
    }

    async fn send(&mut self, m: &Message, control: &str) -> Sent {
        if self.framed.is_none() {
            let connect = tokio::time::timeout(
                self.sender.ack_timeout,
                TcpStream::connect(self.sender.destination),
            );
            let stream = match connect.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Sent::Failed(format!("cannot connect: {e}")),
                Err(_) => return Sent::Failed("cannot connect: timed out".to_owned()),
            };
            let _ = stream.set_nodelay(true);
            let stream = match &self.sender.tls {
                None => Either::Left(stream),
                Some(tls) => {
                    let name = ServerName::IpAddress(self.sender.destination.ip().into());
                    let handshake =
                        tokio::time::timeout(self.sender.ack_timeout, tls.connect(name, stream));
                    match handshake.await {
                        Ok(Ok(stream)) => Either::Right(stream),
                        Ok(Err(e)) => return Sent::Failed(format!("TLS: {e}")),
                        Err(_) => return Sent::Failed("TLS: the handshake timed out".to_owned()),
                    }
                }
            };
            self.framed = Some(Framed::new(stream, Mllp::new(MAX_ACK)));
        }
        let Some(framed) = self.framed.as_mut() else {
            return Sent::Failed("no connection".to_owned());
        };
        if let Err(e) = framed.send(m.to_er7().as_bytes()).await {
            return Sent::Failed(format!("cannot send: {e}"));
        }
        let answer = tokio::time::timeout(self.sender.ack_timeout, framed.next()).await;
        let frame = match answer {
            Err(_) => return Sent::Failed("no acknowledgement in time".to_owned()),
            Ok(None) => return Sent::Failed("the EHR closed the connection".to_owned()),
            Ok(Some(Err(e))) => {
                return Sent::Failed(format!("cannot read the acknowledgement: {e}"));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        acknowledgement(&frame, control)
    }

    /// Records a change of state (only a change: no write per message).
    fn set(&mut self, state: &str, detail: Option<&str>) {
        if self.state == state && state != "refused" {
            return;
        }
        if self.state != state {
            info!(destination = %self.sender.destination, state, detail = detail.unwrap_or(""), "EHR documentation link");
        }
        state.clone_into(&mut self.state);
        let destination = self.sender.destination.to_string();
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = self
            .sender
            .db(|s| ehr_outbox::set_link(s, &destination, state, detail, now))
        {
            warn!(error = %e, "the EHR link state cannot be recorded");
        }
    }
}

/// A pump online with a status, as the periodic PCD-01 says it.
fn now_of(v: &crate::gateway::view::PumpView, sender: &Sender) -> Option<super::document::Now> {
    use crate::gateway::view::LinkState;
    use crate::link::message::PumpState;
    if v.link != LinkState::Online {
        return None;
    }
    let (id, status) = (v.identity.as_ref()?, v.status.as_ref()?);
    let ml = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| crate::units::parse_volume(t).ok())
            .and_then(|v| v.ml().ok())
    };
    let flow = status
        .flow_rate
        .as_deref()
        .and_then(|t| crate::units::parse_rate(t).ok())
        .filter(|r| r.unit == crate::units::RateUnit::MillilitresPerHour)
        .map(|r| r.value);
    let drug = v
        .drug_name
        .clone()
        .or_else(|| status.drug.as_deref().and_then(|d| sender.drug_name(d)));
    Some(super::document::Now {
        serial: id.serial.clone(),
        library_version: id.library_version,
        infusing: matches!(status.state, PumpState::Infusing | PumpState::Bolus),
        drug,
        flow_ml_per_h: flow,
        infused_ml: ml(&status.volume_infused),
        remaining_ml: ml(&status.volume_remaining),
        at: v.last_seen.unwrap_or_else(time::OffsetDateTime::now_utc),
    })
}

/// What an answer says of the message `control`.
fn acknowledgement(frame: &[u8], control: &str) -> Sent {
    let Ok(answer) = Message::parse(frame) else {
        return Sent::Failed("the acknowledgement is not HL7".to_owned());
    };
    let Some(msa) = answer.segment("MSA") else {
        return Sent::Failed("the acknowledgement has no MSA".to_owned());
    };
    if msa.value(2) != control {
        return Sent::Failed(format!(
            "the acknowledgement is for {:?}, not {control:?}",
            msa.value(2)
        ));
    }
    match msa.value(1) {
        "AA" | "CA" => Sent::Acknowledged,
        code => {
            let words = answer
                .segment("ERR")
                .map(|e| e.value(8).to_owned())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| msa.value(3).to_owned());
            Sent::Refused(format!("{code} {words}").trim().to_owned())
        }
    }
}
