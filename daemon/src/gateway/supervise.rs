//! What the service manager (systemd) is told: `READY=1` once the gateway
//! can do its work, `WATCHDOG=1` from the main loop only while the core
//! loop is still turning, `STOPPING=1` at shutdown, and a one-line
//! `STATUS=`. Without systemd (no `NOTIFY_SOCKET`) nothing is sent.
//!
//! The watchdog is fed from the main loop, not a timer task of its own, and
//! only when the core (which answers every programme) has turned since the
//! last feed: a core stuck on a write or a lock stops the feeding, and
//! systemd restarts the daemon after `WatchdogSec=`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{debug, warn};

/// The core loop's turn counter: the core bumps it, the watchdog reads it.
#[derive(Debug, Clone, Default)]
pub struct Beat(Arc<AtomicU64>);

impl Beat {
    /// One more turn of the loop.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn turns(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Decides, at each feeding time, whether the core is alive.
#[derive(Debug)]
pub struct Watchdog {
    beat: Beat,
    seen: u64,
    /// Consecutive checks with no turn.
    stalled: u32,
}

impl Watchdog {
    /// Watches `beat` from now on.
    pub fn new(beat: Beat) -> Self {
        let seen = beat.turns();
        Watchdog {
            beat,
            seen,
            stalled: 0,
        }
    }

    /// True when the core has turned since the last call.
    pub fn alive(&mut self) -> bool {
        let now = self.beat.turns();
        let alive = now != self.seen;
        self.seen = now;
        self.stalled = if alive { 0 } else { self.stalled + 1 };
        alive
    }

    /// Checks the core and feeds systemd's watchdog if it is alive.
    pub fn check(&mut self) {
        if self.alive() {
            send(&[NotifyState::Watchdog]);
        } else {
            warn!(
                checks = self.stalled,
                "the core loop has not turned since the last check: not feeding the watchdog"
            );
        }
    }
}

/// How often to check and feed, if systemd asked for a watchdog: half its
/// interval, as `sd_watchdog_enabled(3)` advises.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// Everything is up: the store, the library, the terminal socket, the
/// pump sessions.
pub fn ready(status: &str) {
    send(&[
        NotifyState::Ready,
        NotifyState::Status(status),
        NotifyState::Watchdog,
    ]);
}

/// Shutting down: pending programmes are being denied and logs flushed.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        // The service manager went away or the socket is wrong: the
        // gateway goes on; systemd, if there, will act on the silence.
        warn!(error = %e, "cannot notify the service manager");
    } else {
        debug!(?states, "told the service manager");
    }
}

#[cfg(test)]
mod tests {
    use super::{Beat, Watchdog};

    #[test]
    fn a_core_that_stops_turning_is_not_alive() {
        let beat = Beat::default();
        let mut w = Watchdog::new(beat.clone());
        assert!(!w.alive(), "no turn yet");
        beat.bump();
        assert!(w.alive());
        assert!(!w.alive(), "no turn since the last check");
        assert_eq!(w.stalled, 1);
        beat.bump();
        beat.bump();
        assert!(w.alive());
        assert_eq!(w.stalled, 0);
    }
}
