//! The in-flight window of one broker connection, without I/O: which
//! publishes went out under which packet id, which the broker acknowledged,
//! and how far the outbox cursor may move.
//!
//! rumqttc assigns a packet id when it sends a publish and reports it as
//! `Outgoing::Publish(pkid)`, in the order the publishes were handed to it;
//! the PUBACK names that id. The cursor moves only over a run of batches
//! that are all acknowledged, so a batch acknowledged before an earlier one
//! never lets the earlier one be skipped.

use std::collections::{HashMap, VecDeque};

/// What a publish was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// Events `first..=last`.
    Batch { last: u64 },
    /// A status or library message: its acknowledgement moves nothing.
    Other,
}

#[derive(Debug)]
struct Slot {
    first: u64,
    last: u64,
    acked: bool,
}

/// An acknowledgement that matches nothing sent on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("PUBACK for packet id {0}, which is not in flight")]
pub struct Unsolicited(pub u16);

/// One connection's window.
#[derive(Debug)]
pub struct Window {
    acked: u64,
    capacity: usize,
    batches: VecDeque<Slot>,
    awaiting_id: VecDeque<Tag>,
    by_id: HashMap<u16, Tag>,
}

impl Window {
    /// A window after `acked` (the durable cursor) holding at most
    /// `capacity` batches.
    pub fn new(acked: u64, capacity: usize) -> Window {
        Window {
            acked,
            capacity: capacity.max(1),
            batches: VecDeque::new(),
            awaiting_id: VecDeque::new(),
            by_id: HashMap::new(),
        }
    }

    /// The cursor: everything up to here is acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Where the next batch starts after (the last record handed out).
    pub fn sent_up_to(&self) -> u64 {
        self.batches.back().map_or(self.acked, |b| b.last)
    }

    /// How many more batches may go out now.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.batches.len())
    }

    /// Batches out and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.batches.iter().filter(|b| !b.acked).count()
    }

    /// Nothing is waiting for a packet id or an acknowledgement.
    pub fn idle(&self) -> bool {
        self.awaiting_id.is_empty() && self.by_id.is_empty()
    }

    /// A batch was handed to the client.
    pub fn batch_sent(&mut self, first: u64, last: u64) {
        debug_assert!(first == self.sent_up_to() + 1, "batches go out in order");
        self.batches.push_back(Slot {
            first,
            last,
            acked: false,
        });
        self.awaiting_id.push_back(Tag::Batch { last });
    }

    /// Another QoS 1 publish was handed to the client.
    pub fn other_sent(&mut self) {
        self.awaiting_id.push_back(Tag::Other);
    }

    /// The client sent the oldest publish not yet numbered, as `pkid`.
    pub fn numbered(&mut self, pkid: u16) {
        if pkid == 0 {
            return; // QoS 0: nothing will acknowledge it.
        }
        if let Some(tag) = self.awaiting_id.pop_front() {
            self.by_id.insert(pkid, tag);
        }
    }

    /// The broker acknowledged `pkid`. Returns the new cursor when it
    /// moved.
    pub fn acknowledged(&mut self, pkid: u16) -> Result<Option<u64>, Unsolicited> {
        match self.by_id.remove(&pkid) {
            None => Err(Unsolicited(pkid)),
            Some(Tag::Other) => Ok(None),
            Some(Tag::Batch { last }) => {
                if let Some(slot) = self.batches.iter_mut().find(|b| b.last == last) {
                    slot.acked = true;
                }
                let before = self.acked;
                while self.batches.front().is_some_and(|b| b.acked) {
                    if let Some(b) = self.batches.pop_front() {
                        debug_assert!(b.first == self.acked + 1);
                        self.acked = b.last;
                    }
                }
                Ok((self.acked != before).then_some(self.acked))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_follows_acknowledgements_in_order() {
        let mut w = Window::new(10, 3);
        w.batch_sent(11, 20);
        w.other_sent();
        w.batch_sent(21, 25);
        assert_eq!(w.free(), 1);
        assert_eq!(w.sent_up_to(), 25);
        w.numbered(1);
        w.numbered(2);
        w.numbered(3);
        assert_eq!(w.acknowledged(1), Ok(Some(20)));
        assert_eq!(w.acknowledged(2), Ok(None));
        assert_eq!(w.acknowledged(3), Ok(Some(25)));
        assert_eq!(w.in_flight(), 0);
        assert_eq!(w.free(), 3);
        assert!(w.idle());
    }

    #[test]
    fn a_later_batch_acknowledged_first_does_not_skip_an_earlier_one() {
        let mut w = Window::new(0, 4);
        w.batch_sent(1, 5);
        w.batch_sent(6, 9);
        w.numbered(7);
        w.numbered(8);
        assert_eq!(w.acknowledged(8), Ok(None));
        assert_eq!(w.acked(), 0);
        assert_eq!(w.in_flight(), 1);
        assert_eq!(w.acknowledged(7), Ok(Some(9)));
    }

    #[test]
    fn packet_ids_are_reused_and_unknown_ones_reported() {
        let mut w = Window::new(0, 2);
        w.batch_sent(1, 1);
        w.numbered(1);
        assert_eq!(w.acknowledged(1), Ok(Some(1)));
        w.batch_sent(2, 2);
        w.numbered(1);
        assert_eq!(w.acknowledged(1), Ok(Some(2)));
        assert_eq!(w.acknowledged(1), Err(Unsolicited(1)));
        assert_eq!(w.acknowledged(42), Err(Unsolicited(42)));
        // A QoS 0 publish (id 0) takes no id from the queue.
        w.batch_sent(3, 3);
        w.numbered(0);
        w.numbered(5);
        assert_eq!(w.acknowledged(5), Ok(Some(3)));
    }
}
