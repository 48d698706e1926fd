//! The archive's MQTT side: a persistent session subscribed to every
//! gateway's events topic of a site, and a writer thread that checks and
//! keeps each batch, then acknowledges it.
//!
//! The session is not clean and acknowledgements are manual: the broker
//! keeps what arrives while the archive is down (up to its queue limit,
//! `max_queued_messages` in Mosquitto), and a batch not yet committed when
//! the archive stops is delivered again. The channel between the two
//! sides is bounded, so a slow database slows the reading of the socket,
//! never memory.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, Publish, QoS};
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
    let (client, mut eventloop) = AsyncClient::new(options, QUEUE);
    let (tx, rx) = mpsc::channel::<Delivered>(QUEUE);
    let link = Arc::new(Link::default());
    let writer = {
        let client = client.clone();
        let totals = Arc::clone(&totals);
        let link = Arc::clone(&link);
        std::thread::Builder::new()
            .name("archive-writer".to_owned())
            .spawn(move || write_loop(backend, rx, &client, &totals, &link))
            .map_err(|e| ArchiveError::Sqlite {
                path: "archive writer thread".to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?
    };
    let filter = format!("pumpgw/v1/{site}/+/events");
    let broker = connection.broker.to_string();
    let connection_of = Arc::clone(&link);
    let reader = async move {
        let mut delay = Duration::from_secs(1);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    delay = Duration::from_secs(1);
                    // Packet ids start again: what an older connection
                    // delivered must not be acknowledged on this one.
                    connection_of.connection.fetch_add(1, Ordering::SeqCst);
                    info!(broker = %broker, session_present = ack.session_present, filter = %filter, "archive connected");
                    if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                        warn!(error = %e, "cannot subscribe");
                    }
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    info!(filter = %filter, "archive subscribed");
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let Some(key) = events_key(&p.topic) else {
                        warn!(topic = %p.topic, "not an events topic; acknowledged and left");
                        let _ = client.try_ack(&p);
                        continue;
                    };
                    let delivered = Delivered {
                        connection: connection_of.connection.load(Ordering::SeqCst),
                        key,
                        publish: p,
                    };
                    if tx.send(delivered).await.is_err() {
                        // The writer stopped: the database failed.
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(broker = %broker, error = %crate::sync::client::describe(&e), retry_in_s = delay.as_secs(), "archive connection failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    };
    let progress = {
        let totals = Arc::clone(&totals);
        async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
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
    };
    tokio::select! {
        () = shutdown => info!("archive stopping: what is committed is acknowledged, the rest comes again"),
        () = reader => {}
        () = progress => {}
    }
    // The reader (and with it the connection and the sender) is dropped
    // here: the writer finishes the batch it is on and ends; what is
    // still queued was not acknowledged and comes again next time.
    link.stopping.store(true, Ordering::SeqCst);
    let result = tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(Ok(()));
    result.map_err(RunError::from)
}

/// A batch as the reader hands it to the writer.
struct Delivered {
    /// Which connection delivered it.
    connection: u64,
    key: Key,
    publish: Publish,
}

/// What the writer needs to know of the connection.
#[derive(Debug, Default)]
struct Link {
    /// Counts connections (CONNACKs).
    connection: AtomicU64,
    /// The archive is stopping.
    stopping: AtomicBool,
}

fn write_loop(
    mut backend: Box<dyn Backend>,
    mut rx: mpsc::Receiver<Delivered>,
    client: &AsyncClient,
    totals: &Totals,
    link: &Link,
) -> Result<(), ArchiveError> {
    let ingest = Ingest;
    info!(database = %backend.describe(), gateways = backend.heads()?.len(), records = backend.count()?, "archive open");
    while let Some(Delivered {
        connection,
        key,
        publish,
    }) = rx.blocking_recv()
    {
        if link.stopping.load(Ordering::SeqCst) {
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
        // Committed: now the broker may forget it. An acknowledgement not
        // sent would hold one of the broker's in-flight slots for this
        // session until the next connection, so a full request queue is
        // waited out (the event loop drains it), not skipped.
        ack(client, &publish, connection, link);
    }
    Ok(())
}

/// Queues the acknowledgement of `publish`, delivered on `connection`,
/// waiting up to 5 s for room; not at all once that connection is gone
/// (the broker sends it again on the next one: then a duplicate).
fn ack(client: &AsyncClient, publish: &Publish, connection: u64, link: &Link) {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if link.stopping.load(Ordering::SeqCst)
            || link.connection.load(Ordering::SeqCst) != connection
        {
            return;
        }
        let Err(e) = client.try_ack(publish) else {
            return;
        };
        if std::time::Instant::now() >= until {
            warn!(error = %e, "the acknowledgement could not be queued; the batch will come again at the next connection");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::events_key;

    #[test]
    fn only_events_topics_name_a_log() {
        let k = events_key("pumpgw/v1/st-e/bed-1/events").unwrap();
        assert_eq!((k.site.as_str(), k.gateway.as_str()), ("st-e", "bed-1"));
        assert!(events_key("pumpgw/v1/st-e/bed-1/status").is_none());
        assert!(events_key("pumpgw/v1/st-e/bed-1/events/x").is_none());
        assert!(events_key("pumpgw/v2/st-e/bed-1/events").is_none());
    }
}
