//! Fault injection on the simulated pump's outgoing bytes: frames dropped,
//! corrupted, duplicated or delayed, and garbage between them; scheduled by
//! scenario steps or drawn at random from a seeded generator.

use std::time::Duration;

use super::scenario::RandomFaults;

/// What to do to the next frames.
#[derive(Debug)]
pub struct Faults {
    random: RandomFaults,
    rng: fastrand::Rng,
    /// Frames still to drop.
    pub drop_next: u32,
    /// Frames still to corrupt.
    pub corrupt_next: u32,
    /// Frames still to send twice.
    pub duplicate_next: u32,
    /// Delay before the next frame.
    pub delay_next: Duration,
    /// Garbage bytes to send before the next frame.
    pub garbage_next: u32,
    /// Send nothing at all (not even ACKs) until then: a pump that froze.
    pub silent_until: Option<tokio::time::Instant>,
}

/// One frame after faults: the bytes to write (possibly none) and a delay
/// before writing them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shaped {
    /// Wait this long first.
    pub delay: Duration,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Which faults were applied, for the log.
    pub applied: Vec<&'static str>,
}

impl Faults {
    /// Faults with these random rates.
    pub fn new(random: RandomFaults) -> Self {
        Faults {
            random,
            rng: fastrand::Rng::with_seed(random.seed),
            drop_next: 0,
            corrupt_next: 0,
            duplicate_next: 0,
            delay_next: Duration::ZERO,
            garbage_next: 0,
            silent_until: None,
        }
    }

    fn roll(&mut self, percent: u8) -> bool {
        percent > 0 && self.rng.u8(0..100) < percent
    }

    /// Random bytes (zeros included: garbage is garbage).
    pub fn garbage(&mut self, n: u32) -> Vec<u8> {
        (0..n).map(|_| self.rng.u8(..)).collect()
    }

    /// Applies the faults due to one encoded frame (with its delimiter).
    /// Scheduled drops, corruptions and duplicates count messages only:
    /// an ACK (`sequenced` false) passes them by, so that "drop the next
    /// frame" means the next message, which must then be sent again.
    pub fn shape(&mut self, wire: &[u8], sequenced: bool) -> Shaped {
        let mut out = Shaped {
            delay: std::mem::take(&mut self.delay_next),
            ..Shaped::default()
        };
        if self
            .silent_until
            .is_some_and(|t| tokio::time::Instant::now() < t)
        {
            out.applied.push("silence");
            return out;
        }
        let garbage = std::mem::take(&mut self.garbage_next);
        if garbage > 0 {
            out.bytes.extend(self.garbage(garbage));
            out.applied.push("garbage");
        } else if self.roll(self.random.garbage_percent) {
            let n = self.rng.u32(1..=64);
            out.bytes.extend(self.garbage(n));
            out.applied.push("garbage");
        }
        if (sequenced && self.drop_next > 0) || self.roll(self.random.drop_percent) {
            self.drop_next = self.drop_next.saturating_sub(1);
            out.applied.push("drop");
            return out;
        }
        let mut frame = wire.to_vec();
        if ((sequenced && self.corrupt_next > 0) || self.roll(self.random.corrupt_percent))
            && frame.len() > 2
        {
            self.corrupt_next = self.corrupt_next.saturating_sub(1);
            // Change a byte inside the frame, never into a delimiter, so the
            // frame arrives whole and only its CRC can tell.
            let i = self.rng.usize(0..frame.len() - 1);
            let mut b = frame[i] ^ (1 << self.rng.u8(0..8));
            if b == 0 {
                b = 0xFF;
            }
            frame[i] = b;
            out.applied.push("corrupt");
        }
        out.bytes.extend_from_slice(&frame);
        if (sequenced && self.duplicate_next > 0) || self.roll(self.random.duplicate_percent) {
            self.duplicate_next = self.duplicate_next.saturating_sub(1);
            out.bytes.extend_from_slice(&frame);
            out.applied.push("duplicate");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::naive_bytecount, reason = "four bytes in a test")]
    fn scheduled_faults_apply_once_each() {
        let mut f = Faults::new(RandomFaults::default());
        let wire = [3, 1, 2, 0];
        f.drop_next = 1;
        assert!(f.shape(&wire, true).bytes.is_empty());
        f.duplicate_next = 1;
        assert_eq!(f.shape(&wire, true).bytes, [3, 1, 2, 0, 3, 1, 2, 0]);
        f.corrupt_next = 1;
        let c = f.shape(&wire, true).bytes;
        assert_ne!(c, wire);
        assert_eq!(c.iter().filter(|&&b| b == 0).count(), 1);
        assert_eq!(f.shape(&wire, true).bytes, wire);
    }
}
