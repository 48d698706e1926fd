//! One side of a pump link, without I/O: sequence numbers, acknowledgements,
//! retransmission, duplicate detection, heartbeats and supervision
//! (`docs/protocol.md` section 5).
//!
//! The gateway's session and the simulator both drive it the same way: feed
//! it the packets read and the time, write out what it queues, and sleep
//! until [`Endpoint::next_deadline`]. Keeping time outside makes every rule
//! testable without waiting.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::codec::{LinkStats, Packet};
use super::frame::{Frame, Header};
use super::message::{ErrorReport, Message, MessageError, MessageType};

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// Every version this implementation speaks.
pub const SUPPORTED_VERSIONS: &[u8] = &[1];
/// Messages waiting behind the one in flight; more means the other side is
/// not keeping up and the link is treated as down.
pub const QUEUE_CAPACITY: usize = 64;

/// The link's timers.
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
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ack_timeout: Duration::from_millis(500),
            max_retries: 4,
            heartbeat: Duration::from_secs(1),
            supervision: Duration::from_secs(3),
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

/// One side of a link.
#[derive(Debug)]
pub struct Endpoint {
    timing: Timing,
    stats: Arc<LinkStats>,
    next_seq: u16,
    last_accepted: u16,
    in_flight: Option<InFlight>,
    queue: VecDeque<Message>,
    outgoing: Vec<Frame>,
    last_heard: Instant,
    last_sent: Instant,
    active: bool,
    /// Message types acknowledged only after [`Endpoint::acknowledge`].
    deferred: Vec<MessageType>,
    /// A deferred message awaiting its commit, with the last accepted
    /// sequence number from before it.
    awaiting_commit: Option<(u16, u16)>,
    /// Messages the other side acknowledged, kept when asked for.
    acknowledged: Option<Vec<Message>>,
}

impl Endpoint {
    /// A fresh endpoint, inactive until [`Endpoint::activate`].
    pub fn new(timing: Timing, stats: Arc<LinkStats>, now: Instant) -> Self {
        Endpoint {
            timing,
            stats,
            next_seq: 1,
            last_accepted: 0,
            in_flight: None,
            queue: VecDeque::new(),
            outgoing: Vec::new(),
            last_heard: now,
            last_sent: now,
            active: false,
            deferred: Vec::new(),
            awaiting_commit: None,
            acknowledged: None,
        }
    }

    /// The sequence number of the last frame accepted from the other side
    /// (after [`Endpoint::receive`] returns a message: that message's).
    pub fn last_accepted(&self) -> u16 {
        self.last_accepted
    }

    /// The timers in use.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Adopts new timers (a controller takes them from WELCOME).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<LinkStats> {
        &self.stats
    }

    /// Starts a new session (after a HELLO, or before sending one): drops
    /// what is queued or in flight and returns it (the one in flight
    /// first), for a caller that must not lose some of it to send again.
    ///
    /// Sequence numbers carry on in both directions, so a HELLO sent again
    /// for want of an ACK is recognised as a duplicate and does not start a
    /// second session.
    pub fn restart(&mut self, now: Instant) -> Vec<Message> {
        self.last_heard = now;
        self.last_sent = now;
        // Keep the ACK of the frame that started the new session.
        self.outgoing.retain(|f| f.header.seq == 0);
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
        self.take_unacknowledged()
    }

    fn take_unacknowledged(&mut self) -> Vec<Message> {
        let mut pending = Vec::with_capacity(self.queue.len() + 1);
        if let Some(f) = self.in_flight.take()
            && let Ok(m) = Message::decode(f.frame.header.kind, &f.frame.payload)
        {
            pending.push(m);
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
        self.in_flight.is_none() && self.queue.is_empty()
    }

    /// Takes the frames to write now, in order.
    pub fn take_outgoing(&mut self) -> Vec<Frame> {
        std::mem::take(&mut self.outgoing)
    }

    /// Handles one packet from the codec.
    pub fn receive(&mut self, packet: Packet, now: Instant) -> Received {
        self.last_heard = now;
        let Header { kind, seq, ack, .. } = packet.header;
        let kind = MessageType::from_byte(kind);
        // Only ACK frames acknowledge: the `ack` field of other frames is
        // informational, so a stale value can never release a frame early.
        if kind == Some(MessageType::Ack) && seq == 0 {
            if self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.frame.header.seq == ack)
            {
                if let (Some(done), Some(f)) = (&mut self.acknowledged, self.in_flight.take())
                    && let Ok(m) = Message::decode(f.frame.header.kind, &f.frame.payload)
                {
                    done.push(m);
                }
                self.in_flight = None;
                self.pump_queue(now);
            }
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
        // A gateway restarts its numbering when it restarts or reopens the
        // port, so WELCOME is always taken; a repeated WELCOME is harmless.
        let duplicate = seq == self.last_accepted && kind != Some(MessageType::Welcome);
        if duplicate {
            LinkStats::bump(&self.stats.duplicates);
            // One whose content is still being committed stays unacknowledged.
            if self.awaiting_commit.is_none_or(|(s, _)| s != seq) {
                self.push_ack(seq, now);
            }
            return Received::Handled;
        }
        let previous = self.last_accepted;
        self.last_accepted = seq;
        let deferred_kind = kind.is_some_and(|k| self.deferred.contains(&k));
        if deferred_kind && (packet.message.is_err() || packet.header.version != PROTOCOL_VERSION) {
            // An event that cannot be read cannot be committed: it is not
            // acknowledged (so the sender keeps it), only reported.
            self.last_accepted = previous;
            let detail = match &packet.message {
                Err(e) => e.to_string(),
                Ok(_) => format!(
                    "protocol version {} is not spoken here",
                    packet.header.version
                ),
            };
            self.report(
                "unparseable",
                seq,
                format!("{detail}; not acknowledged, not logged"),
                now,
            );
            return Received::Refused(detail);
        }
        let deferred = deferred_kind;
        if deferred {
            self.awaiting_commit = Some((seq, previous));
        } else {
            self.push_ack(seq, now);
        }
        if packet.header.version != PROTOCOL_VERSION && !handshake {
            self.report(
                "unsupported_version",
                seq,
                format!(
                    "protocol version {} is not spoken here",
                    packet.header.version
                ),
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
        if let Some(f) = &mut self.in_flight
            && now.duration_since(f.sent_at) >= self.timing.ack_timeout
        {
            if f.attempts > self.timing.max_retries {
                return Err(LinkDown::NoAcknowledgement {
                    kind: f.frame.header.kind,
                    seq: f.frame.header.seq,
                    attempts: f.attempts,
                });
            }
            // The same bytes again, so a capture shows a resend as one.
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
        if let Some(f) = &self.in_flight {
            at = at.min(f.sent_at + self.timing.ack_timeout);
        }
        if self.active {
            at = at.min(self.last_heard + self.timing.supervision);
        }
        at
    }

    fn pump_queue(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(message) = self.queue.pop_front() else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq = if seq == u16::MAX { 1 } else { seq + 1 };
        let frame = self.push_now(&message, seq, now);
        self.in_flight = Some(InFlight {
            frame,
            sent_at: now,
            attempts: 1,
        });
    }

    fn push_ack(&mut self, acknowledged: u16, now: Instant) {
        let ack = Frame {
            header: Header {
                version: PROTOCOL_VERSION,
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
        let Some((waiting, previous)) = self.awaiting_commit else {
            return;
        };
        if waiting != seq {
            return;
        }
        self.awaiting_commit = None;
        if committed {
            self.push_ack(seq, now);
        } else if self.last_accepted == seq {
            self.last_accepted = previous;
        }
    }

    fn push_now(&mut self, message: &Message, seq: u16, now: Instant) -> Frame {
        let frame = Frame {
            header: Header {
                version: PROTOCOL_VERSION,
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
}
