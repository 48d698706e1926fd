//! When the gateway signs the head of its log (`store::checkpoint`): once
//! the start is logged, every [`checkpoint::EVERY`] while records are being
//! added, and last, after the stop is logged, so that the final record a
//! copy elsewhere holds is covered.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::library::ActiveLibrary;
use crate::store::checkpoint::{self, Signer};
use crate::store::{Context, Store, Writer};

/// What a checkpoint needs.
pub struct Anchor {
    /// The gateway's key.
    pub signer: Signer,
    /// A read-only connection to the log, for its head (behind a lock so
    /// the task can be sent between threads; only this task takes it).
    pub reader: std::sync::Mutex<Store>,
    /// The gateway id and care area the records carry.
    pub context: Context,
    /// The active library (for the records' context).
    pub library: watch::Receiver<Option<Arc<ActiveLibrary>>>,
    /// Where records go.
    pub writer: Writer,
}

impl Anchor {
    /// Signs the head now and logs it; returns the checkpoint's own
    /// sequence number (the head afterwards), or `None` when nothing was
    /// logged.
    pub async fn sign(&self, reason: &str) -> Option<u64> {
        let now = time::OffsetDateTime::now_utc();
        let made = {
            let reader = self
                .reader
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.signer
                .checkpoint(&reader, &self.context.gateway, reason, now)
        };
        let event = match made {
            Ok(Some(event)) => event,
            Ok(None) => return None,
            Err(e) => {
                warn!(error = %e, reason, "cannot sign the log's head");
                return None;
            }
        };
        let mut context = self.context.clone();
        context.library_version = self.library.borrow().as_ref().map(|l| l.version());
        match self.writer.append(vec![(context, event)]).await {
            Ok(seq) => {
                debug!(seq, reason, "checkpoint logged");
                Some(seq)
            }
            Err(e) => {
                warn!(error = %e, reason, "the checkpoint could not be logged");
                None
            }
        }
    }

    /// Signs periodically while records are added, until `stop`; then
    /// waits for `last` (cancelled once the stop is logged) and signs once
    /// more.
    pub async fn run(self, stop: CancellationToken, last: CancellationToken) {
        let mut committed = self.writer.committed();
        let mut signed_up_to = self.sign("start").await.unwrap_or(0);
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + checkpoint::EVERY,
            checkpoint::EVERY,
        );
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    if *committed.borrow_and_update() > signed_up_to
                        && let Some(seq) = self.sign("periodic").await
                    {
                        signed_up_to = seq;
                    }
                }
            }
        }
        last.cancelled().await;
        self.sign("stop").await;
    }
}
