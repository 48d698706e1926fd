//! The hash chain of every gateway, checked record by record as the
//! archive keeps it.
//!
//! Each record is checked against whichever of its neighbours the archive
//! already has: record n−1's hash must be its `prev_hash` (for record 1,
//! zeros), and its hash must be record n+1's `prev_hash`. A record that
//! fails either is not kept: it is recorded as a *break*, with its bytes.
//! A record kept already is a duplicate (the broker delivers at least
//! once) if its bytes are the same, a *conflict* if not. A record whose
//! predecessor never arrived is kept and the missing range recorded as a
//! *gap*: `pumpgwd archive import` can fill it later from the gateway's
//! own export, each filled record checked against both neighbours.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::backend::{Anomaly, AnomalyKind, ArchiveError, Backend, Key, Link, NewRecord};
use crate::store::record::{GENESIS, hash};

/// What became of a batch or a run of records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Records kept.
    pub stored: usize,
    /// Records already kept, with the same bytes.
    pub duplicates: usize,
    /// What was noticed (also written to the archive).
    pub anomalies: Vec<Anomaly>,
}

/// The part of a record the archive reads; the rest is kept as bytes.
#[derive(Deserialize)]
struct Fields {
    seq: u64,
    at: String,
    gateway: String,
    care_area: String,
    pump: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    prev_hash: String,
}

/// An MQTT events batch (`mqtt-event-batch-v1`), records left as bytes.
#[derive(Deserialize)]
struct Batch<'a> {
    format: String,
    format_version: u32,
    site: String,
    gateway: String,
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

/// The chain checker. It keeps nothing between batches: each batch starts
/// from what the database holds then (its gateway's highest record), so
/// an `archive import` running beside the subscriber is seen, never
/// assumed away.
#[derive(Debug, Default)]
pub struct Ingest;

impl Ingest {
    /// Takes one batch that arrived on `pumpgw/v1/<site>/<gateway>/events`.
    pub fn batch(
        &self,
        backend: &mut dyn Backend,
        key: &Key,
        payload: &[u8],
        now: &str,
    ) -> Result<Outcome, ArchiveError> {
        let malformed = |detail: String| Anomaly {
            key: key.clone(),
            seq: None,
            kind: AnomalyKind::Malformed,
            detail,
            noticed_at: now.to_owned(),
            bytes: Some(payload.to_vec()),
        };
        let anomaly = match serde_json::from_slice::<Batch<'_>>(payload) {
            Err(e) => malformed(format!("not an events batch: {e}")),
            Ok(b) if b.format != crate::store::outbox::BATCH_FORMAT || b.format_version != 1 => {
                malformed(format!(
                    "format {:?} version {} is not {} version 1",
                    b.format,
                    b.format_version,
                    crate::store::outbox::BATCH_FORMAT
                ))
            }
            Ok(b) if b.site != key.site || b.gateway != key.gateway => malformed(format!(
                "the batch says site {:?} gateway {:?}, but came on the topic of site {:?} gateway {:?}",
                b.site, b.gateway, key.site, key.gateway
            )),
            Ok(b) => {
                let records: Vec<&[u8]> = b.records.iter().map(|r| r.get().as_bytes()).collect();
                return self.records(backend, key, &records, now);
            }
        };
        backend.write(&[], std::slice::from_ref(&anomaly))?;
        Ok(Outcome {
            anomalies: vec![anomaly],
            ..Outcome::default()
        })
    }

    /// Takes records of one gateway's log (in any order; usually
    /// consecutive), checks each and keeps them in one transaction.
    pub fn records(
        &self,
        backend: &mut dyn Backend,
        key: &Key,
        records: &[&[u8]],
        now: &str,
    ) -> Result<Outcome, ArchiveError> {
        let mut out = Outcome::default();
        let mut pending: HashMap<u64, Link> = HashMap::new();
        let mut keep = Vec::new();
        let mut head = backend.head(key)?;
        for bytes in records {
            match Self::check(backend, key, bytes, head, &pending, now)? {
                Checked::Keep(kept) => {
                    let (record, gap) = *kept;
                    if let Some(g) = gap {
                        out.anomalies.push(g);
                    }
                    pending.insert(record.seq, record.link);
                    if head.is_none_or(|(seq, _)| record.seq > seq) {
                        head = Some((record.seq, record.link.hash));
                    }
                    keep.push(record);
                }
                Checked::Duplicate => out.duplicates += 1,
                Checked::Refused(a) => out.anomalies.push(*a),
            }
        }
        backend.write(&keep, &out.anomalies)?;
        out.stored = keep.len();
        Ok(out)
    }

    fn check(
        backend: &mut dyn Backend,
        key: &Key,
        bytes: &[u8],
        head: Option<(u64, [u8; 32])>,
        pending: &HashMap<u64, Link>,
        now: &str,
    ) -> Result<Checked, ArchiveError> {
        let anomaly = |seq: Option<u64>, kind, detail: String| Anomaly {
            key: key.clone(),
            seq,
            kind,
            detail,
            noticed_at: now.to_owned(),
            bytes: (kind != AnomalyKind::Gap).then(|| bytes.to_vec()),
        };
        let (f, prev_hash) = match read(key, bytes) {
            Ok(read) => read,
            Err((seq, detail)) => {
                return Ok(Checked::Refused(Box::new(anomaly(
                    seq,
                    AnomalyKind::Malformed,
                    detail,
                ))));
            }
        };
        let seq = f.seq;
        let h = hash(bytes);
        let head_seq = head.map_or(0, |(s, _)| s);
        let kept = |s: u64, backend: &mut dyn Backend| -> Result<Option<Link>, ArchiveError> {
            if let Some(l) = pending.get(&s) {
                return Ok(Some(*l));
            }
            if s > head_seq {
                return Ok(None);
            }
            backend.link(key, s)
        };
        let refused =
            |kind, detail: String| Ok(Checked::Refused(Box::new(anomaly(Some(seq), kind, detail))));
        if let Some(existing) = kept(seq, backend)? {
            if existing.hash == h {
                return Ok(Checked::Duplicate);
            }
            return refused(
                AnomalyKind::Conflict,
                format!(
                    "record {seq} arrived again with other bytes: the log was edited or re-chained after it was archived"
                ),
            );
        }
        let before = if seq == 1 {
            Some(GENESIS)
        } else {
            kept(seq - 1, backend)?.map(|l| l.hash)
        };
        if before.is_some_and(|b| b != prev_hash) {
            return refused(
                AnomalyKind::Break,
                format!(
                    "record {seq}'s prev_hash is not the hash of record {} as archived: a record was edited, deleted or moved",
                    seq - 1
                ),
            );
        }
        // Its predecessor never arrived: kept, and the range recorded once,
        // when it opens at the head.
        let gap = (before.is_none() && seq > head_seq + 1).then(|| {
            anomaly(
                Some(head_seq + 1),
                AnomalyKind::Gap,
                format!(
                    "records {} to {} were not received (the archive was not subscribed, or the broker dropped them); fill them from the gateway's `pumpgwd events export` with `pumpgwd archive import`",
                    head_seq + 1,
                    seq - 1
                ),
            )
        });
        if kept(seq + 1, backend)?.is_some_and(|next| next.prev_hash != h) {
            return refused(
                AnomalyKind::Break,
                format!(
                    "record {} as archived does not chain to this record {seq}: one of them was edited",
                    seq + 1
                ),
            );
        }
        Ok(Checked::Keep(Box::new((
            NewRecord {
                key: key.clone(),
                seq,
                at: f.at,
                kind: f.kind,
                care_area: f.care_area,
                pump: f.pump,
                link: Link { hash: h, prev_hash },
                bytes: bytes.to_vec(),
            },
            gap,
        ))))
    }
}

/// A record's fields and `prev_hash`, or why it is not a record of this
/// log (with its sequence number when that much reads).
fn read(key: &Key, bytes: &[u8]) -> Result<(Fields, [u8; 32]), (Option<u64>, String)> {
    let f: Fields =
        serde_json::from_slice(bytes).map_err(|e| (None, format!("not a record: {e}")))?;
    let Some(prev_hash) = hex::decode(&f.prev_hash)
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
    else {
        return Err((Some(f.seq), "prev_hash is not 64 hex digits".to_owned()));
    };
    if f.gateway != key.gateway || f.seq == 0 {
        return Err((
            Some(f.seq),
            format!(
                "record {} of gateway {:?} in the log of gateway {:?}",
                f.seq, f.gateway, key.gateway
            ),
        ));
    }
    Ok((f, prev_hash))
}

enum Checked {
    Keep(Box<(NewRecord, Option<Anomaly>)>),
    Duplicate,
    Refused(Box<Anomaly>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::sqlite::Sqlite;
    use crate::sim::fleet;

    const NOW: &str = "2026-12-04T10:00:00.000Z";

    fn key(g: &str) -> Key {
        Key {
            site: "st-e".into(),
            gateway: g.into(),
        }
    }

    fn archive() -> (tempfile::TempDir, Sqlite) {
        let dir =
            tempfile::tempdir().expect("a test archive in a temporary folder reads and writes");
        let db = Sqlite::open(&dir.path().join("archive.sqlite"))
            .expect("a test archive in a temporary folder reads and writes");
        (dir, db)
    }

    fn log(n: u64) -> Vec<Vec<u8>> {
        fleet::plain_log("bed-1", n, time::macros::datetime!(2026-11-01 00:00 UTC))
    }

    fn refs(records: &[Vec<u8>]) -> Vec<&[u8]> {
        records.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn a_whole_log_in_batches_is_kept_and_a_batch_again_is_only_duplicates() {
        let (_d, mut db) = archive();
        let ingest = Ingest;
        let records = log(250);
        let batches = fleet::batches("st-e", "bed-1", &records, 1, 100);
        for b in &batches {
            let out = ingest
                .batch(&mut db, &key("bed-1"), b, NOW)
                .expect("a test archive in a temporary folder reads and writes");
            assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        }
        let again = ingest
            .batch(&mut db, &key("bed-1"), &batches[1], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!((again.stored, again.duplicates), (0, 100));
        assert_eq!(
            db.count()
                .expect("a test archive in a temporary folder reads and writes"),
            250
        );
        let s = db
            .summary()
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(
            (s[0].records, s[0].last_seq, s[0].missing, s[0].anomalies),
            (250, 250, 0, 0)
        );
        // A restart starts from what is kept.
        let ingest = Ingest;
        let out = ingest
            .batch(&mut db, &key("bed-1"), &batches[2], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!((out.stored, out.duplicates), (0, 50));
    }

    #[test]
    fn a_gap_is_recorded_and_filled_later_with_each_record_checked() {
        let (_d, mut db) = archive();
        let ingest = Ingest;
        let records = log(30);
        let out = ingest
            .records(&mut db, &key("bed-1"), &refs(&records[..10]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 10);
        // 11 to 20 lost on the way.
        let out = ingest
            .records(&mut db, &key("bed-1"), &refs(&records[20..]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 10);
        assert_eq!(out.anomalies.len(), 1);
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Gap);
        assert_eq!(out.anomalies[0].seq, Some(11));
        assert!(
            out.anomalies[0].detail.contains("records 11 to 20"),
            "{}",
            out.anomalies[0].detail
        );
        assert_eq!(
            db.gaps(&key("bed-1"))
                .expect("a test archive in a temporary folder reads and writes"),
            vec![(11, 20)]
        );
        // Filled from the gateway's export: each checked against both
        // neighbours, no new anomaly.
        let out = ingest
            .records(&mut db, &key("bed-1"), &refs(&records[10..20]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!((out.stored, out.anomalies.len()), (10, 0));
        assert!(
            db.gaps(&key("bed-1"))
                .expect("a test archive in a temporary folder reads and writes")
                .is_empty()
        );
        assert_eq!(
            db.summary()
                .expect("a test archive in a temporary folder reads and writes")[0]
                .missing,
            0
        );
    }

    #[test]
    fn records_another_process_archived_meanwhile_are_duplicates_not_a_failure() {
        let dir =
            tempfile::tempdir().expect("a test archive in a temporary folder reads and writes");
        let file = dir.path().join("archive.sqlite");
        // The subscriber's connection, and `archive import`'s beside it.
        let mut subscriber =
            Sqlite::open(&file).expect("a test archive in a temporary folder reads and writes");
        let mut import =
            Sqlite::open(&file).expect("a test archive in a temporary folder reads and writes");
        let ingest = Ingest;
        let records = log(25);
        let out = ingest
            .records(&mut subscriber, &key("bed-1"), &refs(&records[..10]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 10);
        let out = ingest
            .records(&mut import, &key("bed-1"), &refs(&records[10..20]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 10);
        // The broker delivers 11 to 25 to the subscriber afterwards.
        let out = ingest
            .records(&mut subscriber, &key("bed-1"), &refs(&records[10..]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!((out.stored, out.duplicates), (5, 10));
        assert!(out.anomalies.is_empty(), "{:?}", out.anomalies);
        // And a record that does not chain to what the other one kept is
        // a break, never kept.
        let mut edited = String::from_utf8(log(26)[25].clone())
            .expect("a test archive in a temporary folder reads and writes");
        edited = edited.replace(&hex::encode(hash(&records[24])), &"0".repeat(64));
        let out = ingest
            .records(&mut import, &key("bed-1"), &[edited.as_bytes()], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Break);
        assert_eq!(
            subscriber
                .count()
                .expect("a test archive in a temporary folder reads and writes"),
            25
        );
    }

    #[test]
    fn one_record_given_twice_with_other_bytes_is_a_conflict() {
        let (_d, mut db) = archive();
        let records = log(3);
        let mut edited = String::from_utf8(records[1].clone())
            .expect("a test archive in a temporary folder reads and writes");
        edited = edited.replace("simulated", "SIMULATED");
        let out = Ingest
            .records(
                &mut db,
                &key("bed-1"),
                &[&records[0], &records[1], edited.as_bytes(), &records[2]],
                NOW,
            )
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 3);
        assert_eq!(out.anomalies.len(), 1);
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Conflict);
    }

    #[test]
    fn an_archive_that_starts_late_records_the_gap_from_record_one() {
        let (_d, mut db) = archive();
        let ingest = Ingest;
        let records = log(10);
        let out = ingest
            .records(&mut db, &key("bed-1"), &refs(&records[5..]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 5);
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Gap);
        assert_eq!(
            db.gaps(&key("bed-1"))
                .expect("a test archive in a temporary folder reads and writes"),
            vec![(1, 5)]
        );
    }

    #[test]
    fn an_edited_record_is_a_break_and_is_not_kept() {
        let (_d, mut db) = archive();
        let ingest = Ingest;
        let records = log(6);
        ingest
            .records(&mut db, &key("bed-1"), &refs(&records[..3]), NOW)
            .expect("a test archive in a temporary folder reads and writes");
        let edited = String::from_utf8(records[3].clone())
            .expect("a test archive in a temporary folder reads and writes")
            .replace("simulated", "SIMULATED")
            .into_bytes();
        assert_ne!(edited, records[3]);
        // Record 4 edited: it still names record 3's hash, but record 5
        // does not name its own.
        let out = ingest
            .records(&mut db, &key("bed-1"), &[&records[4], &edited], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        // 5 arrives first: a gap at 4; then the edited 4 does not chain to 5.
        assert_eq!(out.stored, 1, "{:?}", out.anomalies);
        let kinds: Vec<AnomalyKind> = out.anomalies.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, [AnomalyKind::Gap, AnomalyKind::Break]);
        assert_eq!(
            db.count()
                .expect("a test archive in a temporary folder reads and writes"),
            4
        );
        // The same seq with other bytes: a conflict.
        let out = ingest
            .records(&mut db, &key("bed-1"), &[&edited[..]], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Break);
        let mut other = records[1].clone();
        let at = other.len() - 3;
        other[at] = if other[at] == b'0' { b'1' } else { b'0' };
        let out = ingest
            .records(&mut db, &key("bed-1"), &[&other[..]], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Conflict);
        assert_eq!(
            db.anomalies()
                .expect("a test archive in a temporary folder reads and writes")
                .len(),
            4
        );
        // A record 1 that does not start from zeros.
        let (_d2, mut db2) = archive();
        let ingest2 = Ingest;
        let mut first = records[0].clone();
        let at = first.len() - 3;
        first[at] = b'1';
        let out = ingest2
            .records(&mut db2, &key("bed-1"), &[&first[..]], NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.stored, 0);
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Break);
    }

    #[test]
    fn a_batch_on_another_gateways_topic_or_not_a_batch_is_malformed() {
        let (_d, mut db) = archive();
        let ingest = Ingest;
        let records = log(3);
        let batch = &fleet::batches("st-e", "bed-1", &records, 1, 10)[0];
        let out = ingest
            .batch(&mut db, &key("bed-2"), batch, NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Malformed);
        let out = ingest
            .batch(&mut db, &key("bed-1"), b"{}", NOW)
            .expect("a test archive in a temporary folder reads and writes");
        assert_eq!(out.anomalies[0].kind, AnomalyKind::Malformed);
        assert_eq!(
            db.count()
                .expect("a test archive in a temporary folder reads and writes"),
            0
        );
        assert_eq!(
            db.summary()
                .expect("a test archive in a temporary folder reads and writes")
                .len(),
            2,
            "both logs named, with their anomalies"
        );
    }
}
