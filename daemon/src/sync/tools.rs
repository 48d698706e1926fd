//! Short-lived MQTT sessions for the command-line tools: publish one
//! retained message and wait for its PUBACK (`library publish`), or gather
//! the retained messages under some filters (`fleet status`).

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, Outgoing, QoS, SubscribeFilter};
use tokio::time::Instant;

use super::client::describe;
use super::settings::{Connection, SettingsError};

/// Why a tool's session failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The connection cannot be set up (files, address).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The broker could not be reached or refused us.
    #[error("{broker}: {detail}")]
    Connection {
        /// The broker.
        broker: String,
        /// What went wrong.
        detail: String,
    },
    /// No answer in time.
    #[error("{broker}: no answer within {seconds} s ({what})")]
    Timeout {
        /// The broker.
        broker: String,
        /// The time allowed.
        seconds: u64,
        /// What was awaited.
        what: &'static str,
    },
}

/// Publishes one message at QoS 1 and returns once the broker has
/// acknowledged it and the connection is closed cleanly.
pub async fn publish_once(
    connection: &Connection,
    topic: &str,
    payload: Vec<u8>,
    retain: bool,
    timeout: Duration,
) -> Result<(), ToolError> {
    let broker = connection.broker.to_string();
    let (client, mut eventloop) = AsyncClient::new(connection.options(None)?, 8);
    let deadline = Instant::now() + timeout;
    let mut payload = Some(payload);
    let mut ours: Option<u16> = None;
    let mut acked = false;
    loop {
        let event = match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => {
                return Err(ToolError::Timeout {
                    broker,
                    seconds: timeout.as_secs(),
                    what: if acked {
                        "disconnect"
                    } else {
                        "the broker's acknowledgement"
                    },
                });
            }
            Ok(Err(e)) if acked => {
                // The broker closed first after acknowledging: done.
                tracing::debug!(error = %e, "connection closed after the acknowledgement");
                return Ok(());
            }
            Ok(Err(e)) => {
                return Err(ToolError::Connection {
                    broker,
                    detail: describe(&e),
                });
            }
            Ok(Ok(event)) => event,
        };
        match event {
            Event::Incoming(Incoming::ConnAck(_)) => {
                if let Some(p) = payload.take() {
                    client
                        .try_publish(topic, QoS::AtLeastOnce, retain, p)
                        .map_err(|e| ToolError::Connection {
                            broker: broker.clone(),
                            detail: e.to_string(),
                        })?;
                }
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => ours = Some(pkid),
            Event::Incoming(Incoming::PubAck(a)) if Some(a.pkid) == ours => {
                acked = true;
                client.try_disconnect().map_err(|e| ToolError::Connection {
                    broker: broker.clone(),
                    detail: e.to_string(),
                })?;
            }
            Event::Outgoing(Outgoing::Disconnect) if acked => return Ok(()),
            _ => {}
        }
    }
}

/// Subscribes to `filters` and gathers what arrives (the retained messages
/// first) until nothing more has come for `quiet`, or `max` has passed
/// since the subscription; the broker has `timeout` to get that far.
/// Returns the last payload per topic.
pub async fn gather(
    connection: &Connection,
    filters: &[String],
    quiet: Duration,
    timeout: Duration,
    max: Duration,
) -> Result<BTreeMap<String, Vec<u8>>, ToolError> {
    let broker = connection.broker.to_string();
    let (client, mut eventloop) = AsyncClient::new(connection.options(None)?, 8);
    let mut end = Instant::now() + timeout;
    let mut subscribed = false;
    let mut last = Instant::now();
    let mut got = BTreeMap::new();
    loop {
        let wait = if subscribed {
            (last + quiet).min(end)
        } else {
            end
        };
        match next_event(&mut eventloop, wait, &broker).await? {
            None if subscribed => break,
            None => {
                return Err(ToolError::Timeout {
                    broker,
                    seconds: timeout.as_secs(),
                    what: "connection and subscription",
                });
            }
            Some(Event::Incoming(Incoming::ConnAck(_))) => {
                let f = filters
                    .iter()
                    .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                client
                    .try_subscribe_many(f)
                    .map_err(|e| ToolError::Connection {
                        broker: broker.clone(),
                        detail: e.to_string(),
                    })?;
            }
            Some(Event::Incoming(Incoming::SubAck(_))) => {
                subscribed = true;
                last = Instant::now();
                end = last + max;
            }
            Some(Event::Incoming(Incoming::Publish(p))) => {
                last = Instant::now();
                got.insert(p.topic.clone(), p.payload.to_vec());
            }
            Some(_) => {}
        }
    }
    disconnect(&client, &mut eventloop).await;
    Ok(got)
}

/// Connects, waits for the broker's CONNACK, and disconnects: whether the
/// broker is reachable and takes this gateway's credentials, without
/// publishing anything. The client id gets a `-check` suffix, so a probe
/// never takes over the session of a gateway already running.
pub async fn probe(connection: &Connection, timeout: Duration) -> Result<(), ToolError> {
    let broker = connection.broker.to_string();
    let mut connection = connection.clone();
    connection.client_id.push_str("-check");
    let (client, mut eventloop) = AsyncClient::new(connection.options(None)?, 2);
    let deadline = Instant::now() + timeout;
    loop {
        match next_event(&mut eventloop, deadline, &broker).await? {
            None => {
                return Err(ToolError::Timeout {
                    broker,
                    seconds: timeout.as_secs(),
                    what: "the broker's CONNACK",
                });
            }
            Some(Event::Incoming(Incoming::ConnAck(_))) => break,
            Some(_) => {}
        }
    }
    disconnect(&client, &mut eventloop).await;
    Ok(())
}

/// The next event before `until` (none: the time is up).
async fn next_event(
    eventloop: &mut EventLoop,
    until: Instant,
    broker: &str,
) -> Result<Option<Event>, ToolError> {
    match tokio::time::timeout_at(until, eventloop.poll()).await {
        Err(_) => Ok(None),
        Ok(Err(e)) => Err(ToolError::Connection {
            broker: broker.to_owned(),
            detail: describe(&e),
        }),
        Ok(Ok(event)) => Ok(Some(event)),
    }
}

/// Sends DISCONNECT and gives it up to a second to go out: the broker then
/// knows the session ended on purpose.
async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.try_disconnect().is_ok() {
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, eventloop.poll()).await {
            if matches!(e, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
    }
}
