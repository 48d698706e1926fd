//! One side of a pump link, without I/O: sequence numbers, acknowledgements,
//! retransmission, duplicate detection, heartbeats and supervision
//! (`docs/protocol.md` section 5).
//!
//! The gateway's session and the simulator both drive it the same way: feed
//! it the packets read and the time, write out what it queues, and sleep
//! until [`Endpoint::next_deadline`]. Keeping time outside makes every rule
//! testable without waiting.
//!
//! Version 1 is stop and wait; version 2 (section 5.5) lets each side have
//! a window of several frames unacknowledged, taken in order, so that one
//! commit to the log can cover many of a pump's events.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::codec::{LinkStats, Packet};
use super::frame::{Frame, Header};
use super::message::{ErrorReport, Message, MessageError, MessageType};

/// The version HELLO and WELCOME are framed in, and every frame before
/// the handshake, whatever version they negotiate.
pub const PROTOCOL_VERSION: u8 = 1;
/// Every version this implementation speaks.
pub const SUPPORTED_VERSIONS: &[u8] = &[1, 2];
/// The largest window a version 2 session may use.
pub const MAX_WINDOW: u16 = 32;
/// Messages waiting behind the one in flight; more means the other side is
/// not keeping up and the link is treated as down.
pub const QUEUE_CAPACITY: usize = 64;

/// The link's timers, and the window a gateway offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Resend a frame not acknowledged within this time.
    pub ack_timeout: Duration,
    /// Give up (link down) after this many resends of one frame.
    pub max_retries: u8,
    /// Send a HEARTBEAT when nothing has been sent for this long.
    pub heartbeat: Duration,
    /// The other side is offline when nothing valid arrived for this long.
    pub supervision: Duration,
    /// Frames each side may have unacknowledged in a version 2 session
    /// (1 to [`MAX_WINDOW`]; told to the controller in WELCOME).
    pub window: u16,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ack_timeout: Duration::from_millis(500),
            max_retries: 4,
            heartbeat: Duration::from_secs(1),
            supervision: Duration::from_secs(3),
            window: 8,
        }
    }
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkDown {
    /// A frame was sent `max_retries + 1` times with no acknowledgement.
    #[error("no acknowledgement for {kind:?} #{seq} after {attempts} attempts")]
    NoAcknowledgement {
        /// The message type.
        kind: u8,
        /// Its sequence number.
        seq: u16,
        /// How many times it was sent.
        attempts: u8,
    },
    /// Nothing valid arrived within the supervision time.
    #[error("nothing heard for {0:?}")]
    Silent(Duration),
    /// More messages queued than [`QUEUE_CAPACITY`].
    #[error("send queue full ({QUEUE_CAPACITY} messages)")]
    QueueFull,
}

#[derive(Debug)]
struct InFlight {
    frame: Frame,
    sent_at: Instant,
    attempts: u8,
}

/// What [`Endpoint::receive`] made of a packet.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned and matched at once; boxing would only add an allocation per message"
)]
pub enum Received {
    /// A new message for the application, with its payload bytes.
    Message(Message, bytes::Bytes),
    /// Link-level only (an ACK, a duplicate, a rejected payload): nothing for
    /// the application.
    Handled,
    /// An event (a message whose acknowledgement waits for its commit) that
    /// cannot be read: reported to the sender and not acknowledged, so the
    /// sender keeps it and everything behind it waits. Why, for people.
    Refused(String),
}

/// The number after `seq` (65535 wraps to 1; 0 is never a message's).
pub fn seq_after(seq: u16) -> u16 {
    if seq == u16::MAX { 1 } else { seq + 1 }
}

/// Steps forward from `from` to `to` on the ring of numbers 1 to 65535.
fn steps(from: u16, to: u16) -> u16 {
    let ring = i32::from(u16::MAX);
    let d = (i32::from(to) - i32::from(from)).rem_euclid(ring);
    u16::try_from(d).expect("a remainder modulo 65535 fits in u16")
}

/// One side of a link.
#[derive(Debug)]
pub struct Endpoint {
    timing: Timing,
    stats: Arc<LinkStats>,
    /// The version written in headers: 1 until a handshake chose another.
    version: u8,
    /// Frames allowed unacknowledged each way: 1 (stop and wait) until a
    /// version 2 handshake set it.
    window: u16,
    next_seq: u16,
    /// Version 1: the last number accepted. Version 2: the last one
    /// accepted in order (the next must follow it).
    last_accepted: u16,
    /// The number of the message [`Endpoint::receive`] last returned.
    last_received: u16,
    /// Version 2: the numbers accepted lately (twice the window), whose
    /// resends are duplicates.
    recent: VecDeque<u16>,
    /// Version 2: events whose commit failed; a resend is taken as new.
    retry: Vec<u16>,
    in_flight: VecDeque<InFlight>,
    queue: VecDeque<Message>,
    outgoing: Vec<Frame>,
    last_heard: Instant,
    last_sent: Instant,
    active: bool,
    /// Message types acknowledged only after [`Endpoint::acknowledge`].
    deferred: Vec<MessageType>,
    /// Deferred messages awaiting their commit, each with the last
    /// accepted number from before it (version 1 goes back to it when the
    /// commit fails).
    awaiting_commit: Vec<(u16, u16)>,
    /// Messages the other side acknowledged, kept when asked for.
    acknowledged: Option<Vec<Message>>,
}

impl Endpoint {
    /// A fresh endpoint, inactive until [`Endpoint::activate`].
    pub fn new(timing: Timing, stats: Arc<LinkStats>, now: Instant) -> Self {
        Endpoint {
            timing,
            stats,
            version: PROTOCOL_VERSION,
            window: 1,
            next_seq: 1,
            last_accepted: 0,
            last_received: 0,
            recent: VecDeque::new(),
            retry: Vec::new(),
            in_flight: VecDeque::new(),
            queue: VecDeque::new(),
            outgoing: Vec::new(),
            last_heard: now,
            last_sent: now,
            active: false,
            deferred: Vec::new(),
            awaiting_commit: Vec::new(),
            acknowledged: None,
        }
    }

    /// The sequence number of the message [`Endpoint::receive`] last
    /// returned (for the ERROR that answers it, or its acknowledgement).
    pub fn last_received(&self) -> u16 {
        self.last_received
    }

    /// The timers in use.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Adopts new timers (a controller takes them from WELCOME).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// The session's version and window, as the handshake chose them
    /// (frames queued from now on carry this version). Version 1 is stop
    /// and wait whatever `window` says.
    pub fn set_session(&mut self, version: u8, window: u16) {
        self.version = version;
        self.window = if version >= 2 {
            window.clamp(1, MAX_WINDOW)
        } else {
            1
        };
        self.recent.clear();
        self.recent.push_back(self.last_accepted);
        self.retry.clear();
    }

    /// The session's version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The session's window (1 in version 1).
    pub fn window(&self) -> u16 {
        self.window
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<LinkStats> {
        &self.stats
    }

    /// Starts a new session (after a HELLO, or before sending one): drops
    /// what is queued or in flight and returns it (the one in flight
    /// first), for a caller that must not lose some of it to send again.
    /// Back to version 1 until the handshake chooses again.
    ///
    /// Sequence numbers carry on in both directions, so a HELLO sent again
    /// for want of an ACK is recognised as a duplicate and does not start a
    /// second session.
    pub fn restart(&mut self, now: Instant) -> Vec<Message> {
        self.last_heard = now;
        self.last_sent = now;
        // Keep the ACK of the frame that started the new session.
        self.outgoing.retain(|f| f.header.seq == 0);
        self.set_session(PROTOCOL_VERSION, 1);
        self.take_unacknowledged()
    }

    /// Starts heartbeats and supervision (after the handshake).
    pub fn activate(&mut self, now: Instant) {
        self.active = true;
        self.last_heard = now;
    }

    /// Stops heartbeats and supervision (link down, waiting for a HELLO).
    /// Returns the messages not yet acknowledged, as [`Endpoint::restart`].
    pub fn deactivate(&mut self) -> Vec<Message> {
        self.active = false;
        // A resend queued in the same turn must not go out on a link
        // declared down (it could be an answer nobody waits for any more).
        self.outgoing.retain(|f| f.header.seq == 0);
        self.set_session(PROTOCOL_VERSION, 1);
        self.take_unacknowledged()
    }

    fn take_unacknowledged(&mut self) -> Vec<Message> {
        let mut pending = Vec::with_capacity(self.queue.len() + self.in_flight.len());
        for f in self.in_flight.drain(..) {
            if let Ok(m) = Message::decode(f.frame.header.kind, &f.frame.payload) {
                pending.push(m);
            }
        }
        pending.extend(self.queue.drain(..));
        pending
    }

    /// Whether heartbeats and supervision run.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Queues a message to be sent reliably, in order.
    pub fn send(&mut self, message: Message, now: Instant) -> Result<(), LinkDown> {
        if self.queue.len() >= QUEUE_CAPACITY {
            return Err(LinkDown::QueueFull);
        }
        self.queue.push_back(message);
        self.pump_queue(now);
        Ok(())
    }

    /// True when nothing is waiting to be sent or acknowledged.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty() && self.queue.is_empty()
    }

    /// Whether another message would go out at once (the window has room
    /// and nothing is queued): a controller with events to send fills the
    /// window while this holds.
    pub fn has_room(&self) -> bool {
        self.queue.is_empty() && self.window_open()
    }

    /// Takes the frames to write now, in order.
    pub fn take_outgoing(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.outgoing)
    }

    /// Handles one packet from the codec.
    pub fn receive(&mut self, packet: Packet, now: Instant) -> Received {
        self.last_heard = now;
        let Header {
            kind,
            seq,
            ack,
            version,
        } = packet.header;
        let kind = MessageType::from_byte(kind);
        // Only ACK frames acknowledge: the `ack` field of other frames is
        // informational, so a stale value can never release a frame early.
        if kind == Some(MessageType::Ack) && seq == 0 {
            self.acknowledged_by_peer(ack, now);
            return Received::Handled;
        }
        if seq == 0 || kind == Some(MessageType::Ack) {
            // Sequence 0 is for ACK only, and ACK must have sequence 0.
            LinkStats::bump(&self.stats.parse_errors);
            return Received::Handled;
        }
        let handshake = matches!(kind, Some(MessageType::Hello | MessageType::Welcome));
        if !self.active && !handshake && kind != Some(MessageType::Error) {
            // Before the handshake, or after the link was declared down,
            // nothing but HELLO/WELCOME (and ERROR, which says why a
            // handshake was refused) is acknowledged: the other side's
            // resends then fail and it starts a new handshake, so nothing it
            // sent is taken as delivered and then dropped.
            LinkStats::bump(&self.stats.ignored);
            return Received::Handled;
        }
        let previous = self.last_accepted;
        if !self.accept(seq, kind, handshake, now) {
            return Received::Handled;
        }
        self.last_received = seq;
        let spoken = SUPPORTED_VERSIONS.contains(&version);
        let deferred = kind.is_some_and(|k| self.deferred.contains(&k));
        if deferred && (packet.message.is_err() || !spoken) {
            // An event that cannot be read cannot be committed: it is not
            // acknowledged (so the sender keeps it, and what follows it
            // waits), only reported; its resend is looked at again.
            self.unaccept(seq, previous);
            let detail = match &packet.message {
                Err(e) => e.to_string(),
                Ok(_) => format!("protocol version {version} is not spoken here"),
            };
            self.report(
                "unparseable",
                seq,
                format!("{detail}; not acknowledged, not logged"),
                now,
            );
            return Received::Refused(detail);
        }
        if deferred {
            self.awaiting_commit.push((seq, previous));
        } else {
            self.push_ack(seq, now);
        }
        if !spoken && !handshake {
            self.report(
                "unsupported_version",
                seq,
                format!("protocol version {version} is not spoken here"),
                now,
            );
            return Received::Handled;
        }
        match packet.message {
            Ok(message) => Received::Message(message, packet.payload),
            Err(e) => {
                let code = match e {
                    MessageError::UnknownType(_) => "unknown_type",
                    MessageError::Unparseable { .. } | MessageError::UnexpectedPayload(_) => {
                        "unparseable"
                    }
                };
                self.report(code, seq, e.to_string(), now);
                Received::Handled
            }
        }
    }

    /// An ACK from the other side: the frame it names is done.
    fn acknowledged_by_peer(&mut self, ack: u16, now: Instant) {
        let Some(at) = self
            .in_flight
            .iter()
            .position(|f| f.frame.header.seq == ack)
        else {
            return;
        };
        let done = self
            .in_flight
            .remove(at)
            .expect("the position was just found");
        if let Some(kept) = &mut self.acknowledged
            && let Ok(m) = Message::decode(done.frame.header.kind, &done.frame.payload)
        {
            kept.push(m);
        }
        self.pump_queue(now);
    }

    /// Whether a sequenced frame is new: taken (true), or a duplicate (its
    /// ACK sent again unless its commit is pending) or out of order
    /// (dropped unacknowledged; the sender resends it) (false).
    fn accept(
        &mut self,
        seq: u16,
        kind: Option<MessageType>,
        handshake: bool,
        now: Instant,
    ) -> bool {
        let committing = self.awaiting_commit.iter().any(|(s, _)| *s == seq);
        if self.window == 1 || handshake {
            // A gateway restarts its numbering when it restarts or reopens
            // the port, so WELCOME is always taken; a repeated WELCOME is
            // harmless.
            if seq == self.last_accepted && kind != Some(MessageType::Welcome) {
                self.duplicate(seq, committing, now);
                return false;
            }
            self.last_accepted = seq;
            self.recent.clear();
            self.recent.push_back(seq);
            return true;
        }
        if committing {
            self.duplicate(seq, true, now);
            return false;
        }
        if let Some(at) = self.retry.iter().position(|s| *s == seq) {
            // Its commit failed: the resend is tried again, out of order.
            self.retry.swap_remove(at);
            self.remember(seq);
            return true;
        }
        if self.recent.contains(&seq) {
            self.duplicate(seq, false, now);
            return false;
        }
        if seq != seq_after(self.last_accepted) {
            // One before it was lost: it comes again after that one.
            LinkStats::bump(&self.stats.out_of_order);
            return false;
        }
        self.last_accepted = seq;
        self.remember(seq);
        true
    }

    fn remember(&mut self, seq: u16) {
        self.recent.push_back(seq);
        while self.recent.len() > 2 * usize::from(self.window) {
            self.recent.pop_front();
        }
    }

    fn duplicate(&mut self, seq: u16, committing: bool, now: Instant) {
        LinkStats::bump(&self.stats.duplicates);
        // One whose content is still being committed stays unacknowledged.
        if !committing {
            self.push_ack(seq, now);
        }
    }

    /// Takes back the acceptance of `seq` (an event that cannot be used),
    /// so that its resend is looked at again and nothing after it is taken
    /// before it.
    fn unaccept(&mut self, seq: u16, previous: u16) {
        if self.last_accepted == seq {
            self.last_accepted = previous;
        }
        self.recent.retain(|s| *s != seq);
    }

    /// Tells the other side that something it sent cannot be used.
    pub fn report(&mut self, code: &str, seq: u16, detail: String, now: Instant) {
        let report = Message::Error(ErrorReport {
            code: code.to_owned(),
            seq,
            detail,
            versions: SUPPORTED_VERSIONS.to_vec(),
        });
        // If the queue is full the link is about to be declared down anyway.
        let _ = self.send(report, now);
    }

    /// Runs the timers: resends, heartbeats, supervision.
    pub fn poll(&mut self, now: Instant) -> Result<(), LinkDown> {
        for f in &mut self.in_flight {
            if now.duration_since(f.sent_at) < self.timing.ack_timeout {
                continue;
            }
            if f.attempts > self.timing.max_retries {
                return Err(LinkDown::NoAcknowledgement {
                    kind: f.frame.header.kind,
                    seq: f.frame.header.seq,
                    attempts: f.attempts,
                });
            }
            // The same bytes again, so a capture shows a resend as one; in
            // order, so a receiver that dropped the frames after a lost one
            // takes them all.
            f.attempts += 1;
            f.sent_at = now;
            self.outgoing.push(f.frame.clone());
            self.last_sent = now;
            LinkStats::bump(&self.stats.retransmissions);
        }
        if !self.active {
            return Ok(());
        }
        let silent = now.duration_since(self.last_heard);
        if silent >= self.timing.supervision {
            return Err(LinkDown::Silent(silent));
        }
        if self.is_idle() && now.duration_since(self.last_sent) >= self.timing.heartbeat {
            self.send(Message::Heartbeat, now)?;
        }
        Ok(())
    }

    /// When [`Endpoint::poll`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let mut at = self.last_sent + self.timing.heartbeat;
        for f in &self.in_flight {
            at = at.min(f.sent_at + self.timing.ack_timeout);
        }
        if self.active {
            at = at.min(self.last_heard + self.timing.supervision);
        }
        at
    }

    /// Whether the window takes another frame: fewer than `window` in
    /// flight, and the next number within `window` of the oldest, so that
    /// the receiver's memory of recent numbers covers every resend.
    fn window_open(&self) -> bool {
        match self.in_flight.front() {
            None => true,
            Some(oldest) => {
                self.in_flight.len() < usize::from(self.window)
                    && steps(oldest.frame.header.seq, self.next_seq) < self.window
            }
        }
    }

    fn pump_queue(&mut self, now: Instant) {
        while self.window_open() {
            let Some(message) = self.queue.pop_front() else {
                return;
            };
            let seq = self.next_seq;
            self.next_seq = seq_after(seq);
            let frame = self.push_now(&message, seq, now);
            self.in_flight.push_back(InFlight {
                frame,
                sent_at: now,
                attempts: 1,
            });
        }
    }

    fn push_ack(&mut self, acknowledged: u16, now: Instant) {
        let ack = Frame {
            header: Header {
                version: self.version,
                kind: MessageType::Ack as u8,
                seq: 0,
                ack: acknowledged,
            },
            payload: bytes::Bytes::new(),
        };
        self.outgoing.push(ack);
        self.last_sent = now;
    }

    /// Keeps the messages the other side acknowledges, for
    /// [`Endpoint::take_acknowledged`] (the simulator's record of what the
    /// gateway confirmed).
    pub fn track_acknowledged(&mut self) {
        self.acknowledged.get_or_insert_with(Vec::new);
    }

    /// The messages acknowledged since the last call.
    pub fn take_acknowledged(&mut self) -> Vec<Message> {
        self.acknowledged
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Makes messages of these types wait for [`Endpoint::acknowledge`]
    /// before they are acknowledged: the gateway acknowledges a pump's
    /// events only once they are committed to its log.
    pub fn defer_acknowledgement(&mut self, kinds: &[MessageType]) {
        self.deferred = kinds.to_vec();
    }

    /// Settles a deferred acknowledgement: `committed` sends the ACK; a
    /// failure leaves the message unacknowledged and forgets it, so the
    /// other side's resend is taken as new and tried again.
    pub fn acknowledge(&mut self, seq: u16, committed: bool, now: Instant) {
        let Some(at) = self.awaiting_commit.iter().position(|(s, _)| *s == seq) else {
            return;
        };
        let (_, previous) = self.awaiting_commit.remove(at);
        if committed {
            // A link declared down acknowledges nothing but HELLO; the
            // event, on disk, is recognised when it comes again.
            if self.active {
                self.push_ack(seq, now);
            }
        } else if self.window == 1 {
            if self.last_accepted == seq {
                self.last_accepted = previous;
            }
        } else {
            self.recent.retain(|s| *s != seq);
            self.retry.push(seq);
        }
    }

    fn push_now(&mut self, message: &Message, seq: u16, now: Instant) -> Frame {
        let frame = Frame {
            header: Header {
                version: self.version,
                kind: message.kind() as u8,
                seq,
                ack: self.last_accepted,
            },
            payload: message.payload(),
        };
        self.outgoing.push(frame.clone());
        self.last_sent = now;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::message::TimeSync;

    fn pair() -> (Endpoint, Endpoint, Instant) {
        let now = Instant::now();
        let mut a = Endpoint::new(Timing::default(), Arc::default(), now);
        let mut b = Endpoint::new(Timing::default(), Arc::default(), now);
        a.activate(now);
        b.activate(now);
        (a, b, now)
    }

    fn deliver(from: &mut Endpoint, to: &mut Endpoint, now: Instant) -> Vec<Message> {
        let mut got = Vec::new();
        for f in from.take_outgoing() {
            let packet = Packet {
                header: f.header,
                message: Message::decode(f.header.kind, &f.payload),
                payload: f.payload.clone(),
            };
            if let Received::Message(m, _) = to.receive(packet, now) {
                got.push(m);
            }
        }
        got
    }

    fn ts(n: u64) -> Message {
        Message::TimeSync(TimeSync { time_ms: n })
    }

    #[test]
    fn in_order_one_at_a_time() {
        let (mut a, mut b, now) = pair();
        a.send(ts(1), now).unwrap();
        a.send(ts(2), now).unwrap();
        assert_eq!(a.take_outgoing().len(), 1, "stop and wait: one in flight");
        // The first frame was taken above and "lost"; resend after the timeout.
        a.poll(now + Duration::from_millis(500)).unwrap();
        assert_eq!(deliver(&mut a, &mut b, now), vec![ts(1)]);
        deliver(&mut b, &mut a, now); // the ACK
        assert_eq!(deliver(&mut a, &mut b, now), vec![ts(2)]);
        deliver(&mut b, &mut a, now);
        assert!(a.is_idle());
        assert_eq!(a.stats().snapshot().retransmissions, 1);
    }

    #[test]
    fn a_duplicate_is_acknowledged_but_not_delivered_twice() {
        let (mut a, mut b, now) = pair();
        a.send(ts(1), now).unwrap();
        let frames = a.take_outgoing();
        let packet = || Packet {
            header: frames[0].header,
            message: Message::decode(frames[0].header.kind, &frames[0].payload),
            payload: frames[0].payload.clone(),
        };
        assert_eq!(
            b.receive(packet(), now),
            Received::Message(ts(1), frames[0].payload.clone())
        );
        assert_eq!(b.receive(packet(), now), Received::Handled);
        assert_eq!(b.take_outgoing().len(), 2, "both copies acknowledged");
        assert_eq!(b.stats().snapshot().duplicates, 1);
    }

    #[test]
    fn gives_up_after_the_retry_limit() {
        let (mut a, _, mut now) = pair();
        a.send(ts(1), now).unwrap();
        for _ in 0..Timing::default().max_retries {
            now += Timing::default().ack_timeout;
            a.poll(now).unwrap();
        }
        now += Timing::default().ack_timeout;
        assert!(matches!(
            a.poll(now),
            Err(LinkDown::NoAcknowledgement { attempts: 5, .. })
        ));
    }

    #[test]
    fn an_inactive_side_acknowledges_only_the_handshake() {
        let now = Instant::now();
        let mut gw = Endpoint::new(Timing::default(), Arc::default(), now);
        let (mut pump, _, _) = pair();
        pump.send(ts(1), now).unwrap();
        assert!(deliver(&mut pump, &mut gw, now).is_empty());
        assert!(gw.take_outgoing().is_empty(), "no ACK while inactive");
        assert_eq!(gw.stats().snapshot().ignored, 1);
        let mut hello_side = Endpoint::new(Timing::default(), Arc::default(), now);
        let hello = Message::Hello(crate::link::message::Hello {
            versions: vec![1],
            manufacturer: "m".into(),
            model: "m".into(),
            serial: "s".into(),
            firmware: "f".into(),
            care_area: None,
            library_version: None,
            library_hash: None,
        });
        hello_side.send(hello.clone(), now).unwrap();
        assert_eq!(deliver(&mut hello_side, &mut gw, now), vec![hello]);
        assert_eq!(gw.take_outgoing().len(), 1, "HELLO is acknowledged");
    }

    #[test]
    fn a_resent_hello_is_a_duplicate_and_a_new_one_starts_a_session() {
        let now = Instant::now();
        let mut gw = Endpoint::new(Timing::default(), Arc::default(), now);
        let hello = || {
            Message::Hello(crate::link::message::Hello {
                versions: vec![1],
                manufacturer: "m".into(),
                model: "m".into(),
                serial: "s".into(),
                firmware: "f".into(),
                care_area: None,
                library_version: None,
                library_hash: None,
            })
        };
        let mut pump = Endpoint::new(Timing::default(), Arc::default(), now);
        pump.send(hello(), now).unwrap();
        let first = pump.take_outgoing();
        let packet = |f: &Frame| Packet {
            header: f.header,
            message: Message::decode(f.header.kind, &f.payload),
            payload: f.payload.clone(),
        };
        assert!(matches!(
            gw.receive(packet(&first[0]), now),
            Received::Message(..)
        ));
        gw.activate(now);
        // The same frame again (its ACK was lost): no second session.
        assert_eq!(gw.receive(packet(&first[0]), now), Received::Handled);
        // A controller that power-cycled says HELLO #1 too: taken as the
        // duplicate; after the WELCOME timeout its next HELLO is #2.
        let mut rebooted = Endpoint::new(Timing::default(), Arc::default(), now);
        rebooted.send(hello(), now).unwrap();
        let again = rebooted.take_outgoing();
        assert_eq!(gw.receive(packet(&again[0]), now), Received::Handled);
        rebooted.restart(now);
        rebooted.send(hello(), now).unwrap();
        let next = rebooted.take_outgoing();
        assert_eq!(next[0].header.seq, 2);
        assert!(matches!(
            gw.receive(packet(&next[0]), now),
            Received::Message(..)
        ));
    }

    #[test]
    fn only_ack_frames_acknowledge_and_resends_are_identical() {
        let (mut a, mut b, now) = pair();
        a.send(ts(1), now).unwrap();
        let first = a.take_outgoing();
        // b sends a message whose header `ack` names a's frame: not an ACK.
        b.last_accepted = first[0].header.seq;
        b.send(ts(9), now).unwrap();
        for f in b.take_outgoing() {
            let p = Packet {
                header: f.header,
                message: Message::decode(f.header.kind, &f.payload),
                payload: f.payload.clone(),
            };
            a.receive(p, now);
        }
        assert!(!a.is_idle(), "a piggy-backed ack does not release a frame");
        a.poll(now + Timing::default().ack_timeout).unwrap();
        let resent: Vec<Frame> = a
            .take_outgoing()
            .into_iter()
            .filter(|f| f.header.seq != 0)
            .collect();
        assert_eq!(resent, first, "a resend is byte for byte the same frame");
    }

    #[test]
    fn a_deferred_message_is_acknowledged_only_once_committed() {
        let (mut pump, mut gw, now) = pair();
        gw.defer_acknowledgement(&[MessageType::TimeSync]);
        pump.send(ts(1), now).unwrap();
        let frames = pump.take_outgoing();
        let packet = || Packet {
            header: frames[0].header,
            message: Message::decode(frames[0].header.kind, &frames[0].payload),
            payload: frames[0].payload.clone(),
        };
        assert!(matches!(gw.receive(packet(), now), Received::Message(..)));
        assert!(gw.take_outgoing().is_empty(), "no ACK before the commit");
        // The resend while committing is not acknowledged either.
        assert_eq!(gw.receive(packet(), now), Received::Handled);
        assert!(gw.take_outgoing().is_empty());
        // The commit failed: the next resend is taken as new, and tried again.
        gw.acknowledge(frames[0].header.seq, false, now);
        assert!(gw.take_outgoing().is_empty());
        assert!(matches!(gw.receive(packet(), now), Received::Message(..)));
        gw.acknowledge(frames[0].header.seq, true, now);
        let acks = gw.take_outgoing();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].header.ack, frames[0].header.seq);
    }

    #[test]
    fn an_unreadable_deferred_message_is_not_acknowledged() {
        let (_, mut gw, now) = pair();
        gw.defer_acknowledgement(&[MessageType::TimeSync]);
        let packet = Packet {
            header: Header {
                version: PROTOCOL_VERSION,
                kind: MessageType::TimeSync as u8,
                seq: 5,
                ack: 0,
            },
            message: Message::decode(MessageType::TimeSync as u8, &[0xA0]),
            payload: bytes::Bytes::from_static(&[0xA0]),
        };
        // The application is told, so that it can say so (the gateway
        // alarms on the pump's card).
        assert!(matches!(
            gw.receive(packet.clone(), now),
            Received::Refused(why) if why.contains("time_ms")
        ));
        let out = gw.take_outgoing();
        assert!(
            out.iter().all(|f| f.header.kind != MessageType::Ack as u8),
            "no ACK"
        );
        assert!(
            out.iter()
                .any(|f| f.header.kind == MessageType::Error as u8),
            "an ERROR says why"
        );
        // Its resend is looked at again, not taken for a duplicate.
        assert!(matches!(gw.receive(packet, now), Received::Refused(_)));
        assert_eq!(gw.stats().snapshot().duplicates, 0);
    }

    #[test]
    fn supervision_and_heartbeat() {
        let (mut a, _, now) = pair();
        a.activate(now);
        a.poll(now + Duration::from_secs(1)).unwrap();
        let out = a.take_outgoing();
        assert_eq!(out[0].header.kind, MessageType::Heartbeat as u8);
        assert!(matches!(
            a.poll(now + Duration::from_secs(3)),
            Err(LinkDown::Silent(_))
        ));
    }

    #[test]
    fn sequence_wraps_past_zero() {
        let (mut a, mut b, now) = pair();
        a.next_seq = u16::MAX;
        a.send(ts(1), now).unwrap();
        assert_eq!(deliver(&mut a, &mut b, now), vec![ts(1)]);
        deliver(&mut b, &mut a, now);
        a.send(ts(2), now).unwrap();
        let out = a.take_outgoing();
        assert_eq!(out[0].header.seq, 1);
    }
    fn pair_v2(window: u16) -> (Endpoint, Endpoint, Instant) {
        let (mut a, mut b, now) = pair();
        a.set_session(2, window);
        b.set_session(2, window);
        (a, b, now)
    }

    fn packet_of(f: &Frame) -> Packet {
        Packet {
            header: f.header,
            message: Message::decode(f.header.kind, &f.payload),
            payload: f.payload.clone(),
        }
    }

    /// Feeds frames to `to`, returning the messages it took.
    fn feed(frames: &[Frame], to: &mut Endpoint, now: Instant) -> Vec<Message> {
        frames
            .iter()
            .filter_map(|f| match to.receive(packet_of(f), now) {
                Received::Message(m, _) => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn version_2_keeps_a_window_of_frames_in_flight() {
        let (mut a, mut b, now) = pair_v2(4);
        for n in 1..=6 {
            a.send(ts(n), now).unwrap();
        }
        let first = a.take_outgoing();
        assert_eq!(first.len(), 4, "four in flight, two queued");
        assert!(first.iter().all(|f| f.header.version == 2));
        assert_eq!(feed(&first, &mut b, now), vec![ts(1), ts(2), ts(3), ts(4)]);
        let acks = b.take_outgoing();
        assert_eq!(acks.len(), 4, "each frame acknowledged on its own");
        feed(&acks, &mut a, now);
        assert_eq!(deliver(&mut a, &mut b, now), vec![ts(5), ts(6)]);
        deliver(&mut b, &mut a, now);
        assert!(a.is_idle());
    }

    #[test]
    fn version_2_takes_frames_only_in_order_and_the_resends_fill_the_gap() {
        let (mut a, mut b, now) = pair_v2(4);
        for n in 1..=4 {
            a.send(ts(n), now).unwrap();
        }
        let frames = a.take_outgoing();
        // The second frame is lost on the line.
        let arrived = [frames[0].clone(), frames[2].clone(), frames[3].clone()];
        assert_eq!(feed(&arrived, &mut b, now), vec![ts(1)]);
        assert_eq!(b.stats().snapshot().out_of_order, 2);
        let acks = b.take_outgoing();
        assert_eq!(acks.len(), 1, "only the first is acknowledged");
        feed(&acks, &mut a, now);
        a.poll(now + Timing::default().ack_timeout).unwrap();
        let resent = a.take_outgoing();
        assert_eq!(resent, frames[1..].to_vec(), "the rest again, in order");
        assert_eq!(feed(&resent, &mut b, now), vec![ts(2), ts(3), ts(4)]);
        feed(&b.take_outgoing(), &mut a, now);
        assert!(a.is_idle());
    }

    #[test]
    fn version_2_acknowledges_a_resent_frame_again_without_acting_twice() {
        let (mut a, mut b, now) = pair_v2(4);
        a.send(ts(1), now).unwrap();
        a.send(ts(2), now).unwrap();
        let frames = a.take_outgoing();
        assert_eq!(feed(&frames, &mut b, now).len(), 2);
        b.take_outgoing();
        // Both ACKs were lost; both come again.
        assert!(feed(&frames, &mut b, now).is_empty());
        assert_eq!(b.take_outgoing().len(), 2);
        assert_eq!(b.stats().snapshot().duplicates, 2);
    }

    #[test]
    fn version_2_tries_again_an_event_whose_commit_failed() {
        let (mut pump, mut gw, now) = pair_v2(4);
        gw.defer_acknowledgement(&[MessageType::TimeSync]);
        for n in 1..=3 {
            pump.send(ts(n), now).unwrap();
        }
        let frames = pump.take_outgoing();
        assert_eq!(feed(&frames, &mut gw, now).len(), 3);
        assert!(gw.take_outgoing().is_empty(), "no ACK before the commits");
        // While committing, resends are neither acknowledged nor taken.
        assert!(feed(&frames, &mut gw, now).is_empty());
        assert!(gw.take_outgoing().is_empty());
        gw.acknowledge(frames[0].header.seq, false, now);
        gw.acknowledge(frames[1].header.seq, true, now);
        gw.acknowledge(frames[2].header.seq, true, now);
        let acks = gw.take_outgoing();
        assert_eq!(
            acks.iter().map(|f| f.header.ack).collect::<Vec<_>>(),
            vec![frames[1].header.seq, frames[2].header.seq]
        );
        // The sender resends the first: taken as new and committed again;
        // the others, already on disk, are duplicates.
        assert_eq!(feed(&frames, &mut gw, now), vec![ts(1)]);
        gw.acknowledge(frames[0].header.seq, true, now);
        let acks = gw.take_outgoing();
        assert!(acks.iter().any(|f| f.header.ack == frames[0].header.seq));
    }

    #[test]
    fn version_2_an_unreadable_event_holds_back_what_follows_it() {
        let (_, mut gw, now) = pair_v2(4);
        gw.defer_acknowledgement(&[MessageType::TimeSync]);
        gw.last_accepted = 10;
        gw.set_session(2, 4);
        let bad = Packet {
            header: Header {
                version: 2,
                kind: MessageType::TimeSync as u8,
                seq: 11,
                ack: 0,
            },
            message: Message::decode(MessageType::TimeSync as u8, &[0xA0]),
            payload: bytes::Bytes::from_static(&[0xA0]),
        };
        let mut next = bad.clone();
        next.header.seq = 12;
        next.message = Ok(ts(12));
        assert!(matches!(gw.receive(bad.clone(), now), Received::Refused(_)));
        assert_eq!(gw.receive(next, now), Received::Handled, "not before 11");
        assert!(matches!(gw.receive(bad, now), Received::Refused(_)));
    }

    #[test]
    fn version_2_never_runs_further_ahead_than_the_window_from_the_oldest() {
        let (mut a, mut b, now) = pair_v2(3);
        for n in 1..=5 {
            a.send(ts(n), now).unwrap();
        }
        let frames = a.take_outgoing();
        assert_eq!(frames.len(), 3);
        feed(&frames, &mut b, now);
        // The ACKs of the second and third arrive, the first's is lost.
        let acks = b.take_outgoing();
        feed(&acks[1..], &mut a, now);
        assert!(
            a.take_outgoing().is_empty(),
            "the fourth would be three past the oldest unacknowledged"
        );
        feed(&acks[..1], &mut a, now);
        assert_eq!(a.take_outgoing().len(), 2);
    }

    #[test]
    fn version_2_numbers_wrap_past_zero() {
        let (mut a, mut b, now) = pair_v2(4);
        a.next_seq = u16::MAX - 1;
        b.last_accepted = u16::MAX - 2;
        b.set_session(2, 4);
        for n in 1..=4 {
            a.send(ts(n), now).unwrap();
        }
        let frames = a.take_outgoing();
        assert_eq!(
            frames.iter().map(|f| f.header.seq).collect::<Vec<_>>(),
            vec![u16::MAX - 1, u16::MAX, 1, 2]
        );
        assert_eq!(feed(&frames, &mut b, now).len(), 4);
    }

    #[test]
    fn a_handshake_goes_back_to_stop_and_wait_until_a_version_is_chosen() {
        let (mut a, _, now) = pair_v2(4);
        a.restart(now);
        assert_eq!((a.version(), a.window()), (1, 1));
        a.send(ts(1), now).unwrap();
        a.send(ts(2), now).unwrap();
        let out = a.take_outgoing();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].header.version, 1);
    }
}
