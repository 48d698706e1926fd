//! Simulated gateways' logs, for the fleet archive's tests and its load
//! measurement: hash-chained records exactly as a gateway writes them, and
//! the MQTT batches a gateway would publish of them.

use time::OffsetDateTime;

use crate::store::outbox::{Origin, encode};
use crate::store::record::{FORMAT, FORMAT_VERSION, GENESIS, hash};
use crate::store::{Context, Event, Record};

/// A gateway's log of `events` (each with its time and its pump, if any),
/// chained from record 1.
pub fn chain(
    gateway: &str,
    care_area: &str,
    library_version: Option<u64>,
    events: Vec<(OffsetDateTime, Option<String>, Event)>,
) -> Vec<Vec<u8>> {
    let mut prev = GENESIS;
    let mut out = Vec::with_capacity(events.len());
    for (i, (at, pump, event)) in events.into_iter().enumerate() {
        let r = Record {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            seq: i as u64 + 1,
            at,
            context: Context {
                gateway: gateway.to_owned(),
                pump,
                care_area: care_area.to_owned(),
                library_version,
            },
            practice: false,
            event,
            prev_hash: hex::encode(prev),
        };
        let bytes = r.to_bytes();
        prev = hash(&bytes);
        out.push(bytes);
    }
    out
}

/// A plain log of `n` records (starts and stops), for load.
pub fn plain_log(gateway: &str, n: u64, start: OffsetDateTime) -> Vec<Vec<u8>> {
    let events = (0..n)
        .map(|i| {
            let event = if i % 2 == 0 {
                Event::GatewayStarted {
                    software: env!("CARGO_PKG_VERSION").to_owned(),
                }
            } else {
                Event::GatewayStopped {
                    reason: "simulated".to_owned(),
                }
            };
            let step = time::Duration::milliseconds(250) * i32::try_from(i).unwrap_or(i32::MAX);
            (start + step, None, event)
        })
        .collect();
    chain(gateway, "adult-icu", Some(12), events)
}

/// The batches a gateway publishes of `records` (record `first` first),
/// `per_batch` records each.
pub fn batches(
    site: &str,
    gateway: &str,
    records: &[Vec<u8>],
    first: u64,
    per_batch: usize,
) -> Vec<Vec<u8>> {
    let origin = Origin {
        site: site.to_owned(),
        gateway: gateway.to_owned(),
    };
    records
        .chunks(per_batch.max(1))
        .scan(first, |seq, chunk| {
            let numbered: Vec<(u64, Vec<u8>)> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| (*seq + i as u64, r.clone()))
                .collect();
            *seq += chunk.len() as u64;
            Some(encode(&origin, &numbered).payload)
        })
        .collect()
}
