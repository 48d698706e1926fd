//! The one writer: a thread that owns the log and commits whatever has
//! queued up since its last commit in one transaction (group commit), so an
//! fsync per batch, not per event, pays for durability.
//!
//! Callers await their own events' commit; only then may they tell a pump
//! anything about them.

use std::thread::JoinHandle;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::error;

use super::log::Log;
use super::record::{Context, Event, Record};

/// Appends queued for the writer.
pub const QUEUE: usize = 1024;
/// Appends committed together at most.
pub const MAX_BATCH: usize = 256;

struct Append {
    events: Vec<(Context, Event)>,
    done: oneshot::Sender<Result<u64, String>>,
}

/// Why events were not committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The database refused the transaction (disk full, I/O error...).
    #[error("the event log could not be written: {0}")]
    Failed(String),
    /// The writer has stopped.
    #[error("the event log writer has stopped")]
    Stopped,
}

/// The records of the writer's last commit, as written (and hashed), so
/// that the MQTT outbox can publish live records without reading them
/// back from the store.
#[derive(Debug, Default)]
pub struct Committed {
    /// The first record's sequence number (0 before any commit).
    pub first: u64,
    /// The records' bytes, in order from `first`.
    pub records: Vec<Vec<u8>>,
}

/// A handle to the writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Append>,
    committed: watch::Receiver<u64>,
    recent: watch::Receiver<std::sync::Arc<Committed>>,
}

impl Writer {
    /// Starts the writer thread. It ends when every handle is dropped,
    /// after committing what was queued.
    pub fn spawn(mut log: Log) -> (Writer, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Append>(QUEUE);
        let (head, committed) = watch::channel(log.last_seq());
        let (recent_tx, recent) = watch::channel(std::sync::Arc::new(Committed::default()));
        let thread = std::thread::Builder::new()
            .name("pumpgw-store".to_owned())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(a) => batch.push(a),
                            Err(_) => break,
                        }
                    }
                    let counts: Vec<usize> = batch.iter().map(|a| a.events.len()).collect();
                    let events: Vec<(Context, Event)> =
                        batch.iter_mut().flat_map(|a| a.events.drain(..)).collect();
                    match log.append(events, OffsetDateTime::now_utc()) {
                        Ok(records) => {
                            if let (Some(first), Some(last)) = (records.first(), records.last()) {
                                // Before the head moves: whoever is told
                                // of the new head finds these records.
                                recent_tx.send_replace(std::sync::Arc::new(Committed {
                                    first: first.seq,
                                    records: records.iter().map(Record::to_bytes).collect(),
                                }));
                                head.send_replace(last.seq);
                            }
                            let mut at = 0;
                            for (a, n) in batch.into_iter().zip(counts) {
                                at += n;
                                let seq = records.get(at.wrapping_sub(1)).map_or(0, |r| r.seq);
                                let _ = a.done.send(Ok(seq));
                            }
                        }
                        Err(e) => {
                            error!(error = %e, "event log write failed; nothing of this batch is committed");
                            for a in batch {
                                let _ = a.done.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .expect("the OS can start one thread");
        (
            Writer {
                tx,
                committed,
                recent,
            },
            thread,
        )
    }

    /// The last sequence number committed, as it changes (for the MQTT
    /// outbox, which follows the log).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// The records of the last commit (replaced at every commit).
    pub fn recent(&self) -> watch::Receiver<std::sync::Arc<Committed>> {
        self.recent.clone()
    }

    /// Appends events and waits until they are on disk; returns the last
    /// sequence number.
    pub async fn append(&self, events: Vec<(Context, Event)>) -> Result<u64, WriteError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Append { events, done })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, log::verify};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_grouped_and_the_chain_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = Store::file_in(dir.path());
        let (writer, thread) = Writer::spawn(Log::new(Store::open(&path).unwrap()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let w = writer.clone();
            tasks.push(tokio::spawn(async move {
                let ctx = Context {
                    gateway: "g".into(),
                    pump: Some(format!("p{}", i % 8)),
                    care_area: "adult-icu".into(),
                    library_version: None,
                };
                w.append(vec![(
                    ctx,
                    Event::LinkDown {
                        reason: i.to_string(),
                    },
                )])
                .await
                .unwrap()
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        drop(writer);
        thread.join().unwrap();
        let v = verify(&Store::open(&path).unwrap(), |_| {}).unwrap();
        assert_eq!(v.records, 200);
        assert!(v.first_break.is_none());
    }
}
