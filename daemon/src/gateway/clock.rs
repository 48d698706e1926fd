//! The gateway's clock for safety decisions: how old a delivery is, when a
//! cumulative window ends, when a confirmation or an authorisation expires.
//!
//! Within a run these are measured on the monotonic clock `CLOCK_BOOTTIME`
//! (it counts suspend too and never steps), shown as a time of day by
//! anchoring it to the wall clock. The wall clock of a board without a
//! battery-backed clock steps after boot (NTP, a fake-hwclock value); such a
//! step must not move history out of its windows nor stretch a token. So
//! [`Clock::step`] compares the wall clock with the anchored time; beyond
//! [`STEP_THRESHOLD`] it re-anchors and returns the step, and the core
//! shifts every time it holds by the same amount (durations unchanged), logs
//! a `clock_stepped` event and sends the pumps a new `TIME_SYNC`.

use std::time::Duration;

use time::OffsetDateTime;

/// A wall-clock difference from the anchored time larger than this is a
/// step. Slewing (at most 500 ppm) stays far below it between two checks;
/// a step of a few seconds or more is a clock being set.
pub const STEP_THRESHOLD: time::Duration = time::Duration::seconds(5);

/// Where the clock reads time: the system, or a test's hand.
pub trait Source: Send + Sync {
    /// Time since boot, never stepping.
    fn monotonic(&self) -> Duration;
    /// The wall clock (UTC).
    fn wall(&self) -> OffsetDateTime;
}

/// The system's clocks: `CLOCK_BOOTTIME` and the wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct System;

impl Source for System {
    fn monotonic(&self) -> Duration {
        if let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
            Duration::from(t)
        } else {
            // Every Linux since 2.6.39 has it; were it missing, the process's
            // monotonic clock (which does not count suspend) is the next best.
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            START.get_or_init(std::time::Instant::now).elapsed()
        }
    }

    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The gateway's clock: monotonic time anchored to the wall clock.
pub struct Clock {
    source: Box<dyn Source>,
    anchor_wall: OffsetDateTime,
    anchor_mono: Duration,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("anchor_wall", &self.anchor_wall)
            .field("anchor_mono", &self.anchor_mono)
            .finish_non_exhaustive()
    }
}

impl Clock {
    /// The system's clock, anchored now.
    pub fn system() -> Clock {
        Clock::new(Box::new(System))
    }

    /// A clock reading `source`, anchored now.
    pub fn new(source: Box<dyn Source>) -> Clock {
        let anchor_wall = source.wall();
        let anchor_mono = source.monotonic();
        Clock {
            source,
            anchor_wall,
            anchor_mono,
        }
    }

    /// Now: the anchor plus the monotonic time since it. It never steps
    /// between two calls of [`Clock::step`].
    pub fn now(&self) -> OffsetDateTime {
        let since = self.source.monotonic().saturating_sub(self.anchor_mono);
        self.anchor_wall + since
    }

    /// Whether the wall clock stepped away from [`Clock::now`] by more than
    /// [`STEP_THRESHOLD`]; if so the clock follows it from here on and the
    /// step (wall minus what `now` said) is returned, for the caller to
    /// move every time it holds by it.
    pub fn step(&mut self) -> Option<time::Duration> {
        let ours = self.now();
        let wall = self.source.wall();
        let step = wall - ours;
        if step.abs() <= STEP_THRESHOLD {
            return None;
        }
        self.anchor_wall = wall;
        self.anchor_mono = self.source.monotonic();
        Some(step)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A clock a test moves by hand: monotonic time and the wall's offset.
    #[derive(Clone, Default)]
    pub(crate) struct Hand(Arc<Mutex<(Duration, time::Duration)>>);

    impl Hand {
        /// Time passes (both clocks).
        pub(crate) fn pass(&self, d: Duration) {
            self.0.lock().unwrap().0 += d;
        }

        /// The wall clock is set by `by` (the monotonic one does not move).
        pub(crate) fn set_wall(&self, by: time::Duration) {
            self.0.lock().unwrap().1 += by;
        }
    }

    impl Source for Hand {
        fn monotonic(&self) -> Duration {
            self.0.lock().unwrap().0
        }

        fn wall(&self) -> OffsetDateTime {
            let (mono, offset) = *self.0.lock().unwrap();
            time::macros::datetime!(2026-11-21 03:00 UTC) + mono + offset
        }
    }

    #[test]
    fn time_passes_on_the_monotonic_clock_and_a_step_is_seen_once() {
        let hand = Hand::default();
        let mut clock = Clock::new(Box::new(hand.clone()));
        let t0 = clock.now();
        hand.pass(Duration::from_secs(30));
        assert_eq!(clock.now() - t0, time::Duration::seconds(30));
        assert_eq!(clock.step(), None);
        // The wall goes back an hour: `now` does not, until the step is
        // taken; then it follows the wall, and the step is said once.
        hand.set_wall(time::Duration::hours(-1));
        assert_eq!(clock.now() - t0, time::Duration::seconds(30));
        assert_eq!(clock.step(), Some(time::Duration::hours(-1)));
        assert_eq!(clock.step(), None);
        hand.pass(Duration::from_secs(10));
        assert_eq!(
            clock.now() - t0,
            time::Duration::seconds(40) - time::Duration::hours(1)
        );
        // Drift within the threshold is no step.
        hand.set_wall(time::Duration::seconds(5));
        assert_eq!(clock.step(), None);
        hand.set_wall(time::Duration::milliseconds(1));
        assert!(clock.step().is_some());
    }
}
