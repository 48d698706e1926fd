//! The archive's MQTT side: a persistent session subscribed to every
//! gateway's events topic of a site, and a writer thread that checks and
//! keeps each batch, then acknowledges it.
//!
//! The session is not clean and acknowledgements are manual: the broker
//! keeps what arrives while the archive is down (up to its queue limit,
//! `max_queued_messages` in Mosquitto), and a batch not yet committed when
//! the archive stops is delivered again.
//!
//! Three parts, so that none waits on another in a circle: a driver task
//! polls the MQTT event loop without pause (acknowledgements go out
//! whatever the database is doing); the main loop hands batches to the
//! writer over a bounded channel and sends the acknowledgements the writer
//! returns; the writer thread checks and commits. Batches waiting for the
//! writer are the broker's unacknowledged ones, so the broker's in-flight
//! window bounds them (`max_inflight_messages`, 20 by default in
//! Mosquitto).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, Publish, QoS};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::backend::{ArchiveError, Backend, Key};
use super::ingest::Ingest;
use crate::sync::settings::{Connection, SettingsError};

/// Batches waiting for the writer, at most.
const QUEUE: usize = 64;

/// Counters, for progress lines and the end.
#[derive(Debug, Default)]
pub struct Totals {
    /// Batches taken.
    pub batches: AtomicU64,
    /// Records kept.
    pub stored: AtomicU64,
    /// Records that were already kept.
    pub duplicates: AtomicU64,
    /// Anomalies recorded.
    pub anomalies: AtomicU64,
}

/// Why the archive stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The broker settings cannot be used.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database failed: the archive stops rather than acknowledge
    /// what it did not keep.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// The site and gateway of an events topic `pumpgw/v1/<site>/<gateway>/events`.
pub fn events_key(topic: &str) -> Option<Key> {
    let mut parts = topic.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("pumpgw"), Some("v1"), Some(site), Some(gateway), Some("events"), None) => {
            Some(Key {
                site: site.to_owned(),
                gateway: gateway.to_owned(),
            })
        }
        _ => None,
    }
}

/// What the driver passes on from the event loop.
enum Driven {
    /// A new connection (CONNACK).
    Connected,
    /// The subscription was granted.
    Subscribed,
    /// A message.
    Message(Publish),
}

/// A batch as the main loop hands it to the writer.
struct Delivered {
    /// Which connection delivered it.
    connection: u64,
    key: Key,
    publish: Publish,
}

/// Polls the event loop for ever, reconnecting with backoff; passes on
/// connections, subscriptions and messages.
async fn drive(mut eventloop: EventLoop, out: mpsc::UnboundedSender<Driven>, broker: String) {
    let mut delay = Duration::from_secs(1);
    loop {
        let driven = match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                delay = Duration::from_secs(1);
                info!(broker = %broker, session_present = ack.session_present, "archive connected");
                Driven::Connected
            }
            Ok(Event::Incoming(Incoming::SubAck(_))) => Driven::Subscribed,
            Ok(Event::Incoming(Incoming::Publish(p))) => Driven::Message(p),
            Ok(_) => continue,
            Err(e) => {
                warn!(broker = %broker, error = %crate::sync::client::describe(&e), retry_in_s = delay.as_secs(), "archive connection failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if out.send(driven).is_err() {
            return;
        }
    }
}

/// Archives the events of every gateway of `site` until `shutdown`
/// completes or the database fails.
pub async fn run(
    connection: &Connection,
    site: &str,
    backend: Box<dyn Backend>,
    totals: Arc<Totals>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let mut options = connection.options(None)?;
    // The broker keeps the subscription and the messages while we are away.
    options.set_clean_session(false).set_manual_acks(true);
    let (client, eventloop) = AsyncClient::new(options, QUEUE);
    let (driven_tx, mut driven) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive(eventloop, driven_tx, connection.broker.to_string()));
    let (to_writer, rx) = mpsc::channel::<Delivered>(QUEUE);
    let (acks_tx, mut acks) = mpsc::unbounded_channel::<(u64, Publish)>();
    let stopping = Arc::new(AtomicBool::new(false));
    let writer = {
        let totals = Arc::clone(&totals);
        let stopping = Arc::clone(&stopping);
        std::thread::Builder::new()
            .name("archive-writer".to_owned())
            .spawn(move || write_loop(backend, rx, &acks_tx, &totals, &stopping))
            .map_err(|e| ArchiveError::Sqlite {
                path: "archive writer thread".to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?
    };
    let filter = format!("pumpgw/v1/{site}/+/events");
    let mut connection_no = 0u64;
    let mut pending: VecDeque<Delivered> = VecDeque::new();
    let mut progress = tokio::time::interval(Duration::from_secs(10));
    let mut last = 0;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                info!("archive stopping: what is committed is acknowledged, the rest comes again");
                break;
            }
            ack = acks.recv() => {
                // None: the writer ended, the database failed.
                let Some((n, publish)) = ack else { break };
                // Packet ids start again with each connection: only the
                // one that delivered a batch may acknowledge it.
                if n == connection_no && client.ack(&publish).await.is_err() {
                    warn!("the acknowledgement could not be queued; the batch will come again");
                }
            }
            permit = to_writer.reserve(), if !pending.is_empty() => {
                let Ok(permit) = permit else {
                    break; // The writer stopped: the database failed.
                };
                if let Some(d) = pending.pop_front() {
                    permit.send(d);
                }
            }
            event = driven.recv() => match event {
                None => break,
                Some(Driven::Connected) => {
                    connection_no += 1;
                    if client.subscribe(filter.clone(), QoS::AtLeastOnce).await.is_err() {
                        warn!(filter = %filter, "cannot subscribe");
                    }
                }
                Some(Driven::Subscribed) => info!(filter = %filter, "archive subscribed"),
                Some(Driven::Message(p)) => {
                    if let Some(key) = events_key(&p.topic) {
                        pending.push_back(Delivered {
                            connection: connection_no,
                            key,
                            publish: p,
                        });
                    } else {
                        warn!(topic = %p.topic, "not an events topic; acknowledged and left");
                        let _ = client.ack(&p).await;
                    }
                }
            },
            _ = progress.tick() => {
                let stored = totals.stored.load(Ordering::Relaxed);
                if stored != last {
                    info!(
                        stored,
                        per_s = (stored - last) / 10,
                        duplicates = totals.duplicates.load(Ordering::Relaxed),
                        anomalies = totals.anomalies.load(Ordering::Relaxed),
                        "archive progress"
                    );
                    last = stored;
                }
            }
        }
    }
    // The writer finishes the batch it is on and ends; what is still
    // queued was not acknowledged and comes again next time.
    stopping.store(true, Ordering::SeqCst);
    driver.abort();
    drop(to_writer);
    let result = tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(Ok(()));
    result.map_err(RunError::from)
}

fn write_loop(
    mut backend: Box<dyn Backend>,
    mut rx: mpsc::Receiver<Delivered>,
    acks: &mpsc::UnboundedSender<(u64, Publish)>,
    totals: &Totals,
    stopping: &AtomicBool,
) -> Result<(), ArchiveError> {
    let ingest = Ingest;
    info!(database = %backend.describe(), gateways = backend.heads()?.len(), records = backend.count()?, "archive open");
    while let Some(Delivered {
        connection,
        key,
        publish,
    }) = rx.blocking_recv()
    {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let now = crate::store::record::time_text(time::OffsetDateTime::now_utc());
        let out = match ingest.batch(backend.as_mut(), &key, &publish.payload, &now) {
            Ok(out) => out,
            Err(e) => {
                warn!(error = %e, site = %key.site, gateway = %key.gateway, "the archive cannot write; stopping without acknowledging the batch");
                return Err(e);
            }
        };
        for a in &out.anomalies {
            warn!(site = %a.key.site, gateway = %a.key.gateway, seq = ?a.seq, kind = a.kind.word(), detail = %a.detail, "archive anomaly");
        }
        totals.batches.fetch_add(1, Ordering::Relaxed);
        totals
            .stored
            .fetch_add(out.stored as u64, Ordering::Relaxed);
        totals
            .duplicates
            .fetch_add(out.duplicates as u64, Ordering::Relaxed);
        totals
            .anomalies
            .fetch_add(out.anomalies.len() as u64, Ordering::Relaxed);
        // Committed: now the broker may forget it.
        let _ = acks.send((connection, publish));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::events_key;

    #[test]
    fn only_events_topics_name_a_log() {
        let k = events_key("pumpgw/v1/st-e/bed-1/events").expect("a well-formed events topic");
        assert_eq!((k.site.as_str(), k.gateway.as_str()), ("st-e", "bed-1"));
        assert!(events_key("pumpgw/v1/st-e/bed-1/status").is_none());
        assert!(events_key("pumpgw/v1/st-e/bed-1/events/x").is_none());
        assert!(events_key("pumpgw/v2/st-e/bed-1/events").is_none());
    }
}
