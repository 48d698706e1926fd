//! Anchors for the hash chain. The chain alone shows an edit only to
//! someone who kept the old hashes: whoever can write the database can cut
//! its tail off, or edit a record and re-compute every hash after it, and
//! the chain still holds. So the gateway signs the head of its log (the
//! last record's sequence number and hash, and the time) with its own key
//! at start, periodically and at stop, and logs the signature as a
//! `checkpoint` record; it goes to the broker and into exports like every
//! record. A log is then checked against checkpoints kept *elsewhere*
//! (the broker's copy, an earlier export): one that attests a record the
//! log no longer has shows truncation; one whose record's hash differs
//! shows an edit, re-chained or not (`docs/event-log.md`, "Checkpoints").

use std::io::{BufRead, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use rusqlite::OptionalExtension as _;
use time::OffsetDateTime;

use super::db::{Store, StoreError};
use super::record::{Event, Record, hash, millis, time_text};

/// The key file in the data folder (PKCS#8, mode 0600), made at the first
/// start.
pub const KEY_FILE: &str = "checkpoint.key";

/// How often the head is signed while records are being added.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Why checkpoints cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The key file cannot be read, made or used.
    #[error("checkpoint key {path}: {detail}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// The log cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A checkpoints file cannot be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The text a checkpoint's signature is over: one line each for the
/// format, the gateway, the signed record's sequence number, its hash and
/// the signing time, each line ending in `\n`.
pub fn signed_text(gateway: &str, seq: u64, hash_hex: &str, at: &str) -> String {
    format!("pumpgw-checkpoint/1\n{gateway}\n{seq}\n{hash_hex}\n{at}\n")
}

/// The gateway's checkpoint key.
#[derive(Debug)]
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl Signer {
    /// Reads the key in `data_dir`, or makes it (mode 0600) if there is
    /// none yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Signer, CheckpointError> {
        let path = data_dir.join(KEY_FILE);
        let key_error = |path: &PathBuf, detail: String| CheckpointError::Key {
            path: path.display().to_string(),
            detail,
        };
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (pkcs8, _) = crate::library::signature::generate()
                    .map_err(|e| key_error(&path, e.to_string()))?;
                // Written whole or not at all: a half-written key would stop
                // every later start.
                let partial = data_dir.join(format!("{KEY_FILE}.new"));
                let _ = std::fs::remove_file(&partial);
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&partial)
                    .and_then(|mut f| f.write_all(&pkcs8).and_then(|()| f.sync_all()))
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .and_then(|()| std::fs::File::open(data_dir)?.sync_all());
                written.map_err(|e| key_error(&path, e.to_string()))?;
                pkcs8
            }
            Err(e) => return Err(key_error(&path, e.to_string())),
        };
        if let Ok(meta) = std::fs::metadata(&path)
            && meta.permissions().mode() & 0o077 != 0
        {
            return Err(key_error(
                &path,
                "readable by others than its owner: chmod 600 it".to_owned(),
            ));
        }
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| key_error(&path, format!("not an Ed25519 PKCS#8 key: {e}")))?;
        Ok(Signer { pair })
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    /// A checkpoint of `store`'s head now, or `None` for an empty log.
    pub fn checkpoint(
        &self,
        store: &Store,
        gateway: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Event>, CheckpointError> {
        let (seq, head) = super::log::head(&store.conn).map_err(store.err())?;
        if seq == 0 {
            return Ok(None);
        }
        let hash_hex = hex::encode(head);
        let at = time_text(millis(now));
        let text = signed_text(gateway, seq, &hash_hex, &at);
        Ok(Some(Event::Checkpoint {
            reason: reason.to_owned(),
            signed_seq: seq,
            signed_hash: hash_hex,
            signed_at: at,
            key: self.public_hex(),
            signature: hex::encode(self.pair.sign(text.as_bytes()).as_ref()),
        }))
    }
}

/// A checkpoint as read back, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The gateway that logged it.
    pub gateway: String,
    /// The record it signs.
    pub signed_seq: u64,
    /// That record's hash, hex.
    pub signed_hash: String,
    /// When.
    pub signed_at: String,
    /// The key, hex.
    pub key: String,
    /// The signature, hex.
    pub signature: String,
}

impl Held {
    /// The checkpoint in a record, if it is one.
    pub fn from_record(r: &Record) -> Option<Held> {
        match &r.event {
            Event::Checkpoint {
                signed_seq,
                signed_hash,
                signed_at,
                key,
                signature,
                ..
            } => Some(Held {
                gateway: r.context.gateway.clone(),
                signed_seq: *signed_seq,
                signed_hash: signed_hash.clone(),
                signed_at: signed_at.clone(),
                key: key.clone(),
                signature: signature.clone(),
            }),
            _ => None,
        }
    }

    /// Whether its signature verifies with its own key.
    pub fn signature_holds(&self) -> bool {
        let (Ok(key), Ok(sig)) = (hex::decode(&self.key), hex::decode(&self.signature)) else {
            return false;
        };
        let text = signed_text(
            &self.gateway,
            self.signed_seq,
            &self.signed_hash,
            &self.signed_at,
        );
        UnparsedPublicKey::new(&ED25519, key)
            .verify(text.as_bytes(), &sig)
            .is_ok()
    }
}

/// What a checkpoints file holds.
#[derive(Debug, Default)]
pub struct FileCheckpoints {
    /// The checkpoints that read.
    pub held: Vec<Held>,
    /// Lines that are neither records nor batches.
    pub other_lines: u64,
    /// Records of type `checkpoint` that do not read as one (altered?).
    pub unreadable: u64,
}

/// The checkpoints in a file of JSON lines: event records (`events
/// export`) or MQTT event batches (one payload per line, as a consumer
/// stores them; a line may start with the topic and a space, as
/// `mosquitto_sub -v` prints it). Lines that are neither are counted, and
/// so are checkpoint records that do not read.
pub fn read_file(path: &Path) -> Result<FileCheckpoints, CheckpointError> {
    let file = std::fs::File::open(path).map_err(|source| CheckpointError::File {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = FileCheckpoints::default();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|source| CheckpointError::File {
            path: path.display().to_string(),
            source,
        })?;
        let Some(json) = line.find('{').map(|at| &line[at..]) else {
            out.other_lines += 1;
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
            out.other_lines += 1;
            continue;
        };
        let records: Vec<serde_json::Value> = match value.get("format").and_then(|f| f.as_str()) {
            Some("pumpgw-event-batch") => value
                .get("records")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default(),
            Some("pumpgw-event") => vec![value],
            _ => {
                out.other_lines += 1;
                continue;
            }
        };
        for r in records {
            let is_checkpoint = r.get("type").and_then(|t| t.as_str()) == Some("checkpoint");
            match serde_json::from_value::<Record>(r)
                .ok()
                .and_then(|record| Held::from_record(&record))
            {
                Some(h) => out.held.push(h),
                None if is_checkpoint => out.unreadable += 1,
                None => {}
            }
        }
    }
    Ok(out)
}

/// The checkpoints the log itself holds, oldest first.
pub fn in_log(store: &Store) -> Result<Vec<Held>, CheckpointError> {
    let mut st = store
        .conn
        .prepare("SELECT record FROM events WHERE type = 'checkpoint' ORDER BY seq")
        .map_err(store.err())?;
    let rows = st
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .map_err(store.err())?;
    let mut out = Vec::new();
    for bytes in rows {
        if let Ok(record) = serde_json::from_slice::<Record>(&bytes.map_err(store.err())?)
            && let Some(h) = Held::from_record(&record)
        {
            out.push(h);
        }
    }
    Ok(out)
}

/// What checking a log against checkpoints found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Checkpoints checked.
    pub checked: u64,
    /// The newest record they attest, and when it was signed.
    pub newest: Option<(u64, String)>,
    /// What does not hold, one sentence each, worst first.
    pub problems: Vec<String>,
}

/// Checks the log in `store` against `held` checkpoints: each must be
/// signed by its key (and by `pinned`, when given), and the record it
/// attests must be in the log with the hash it attests.
pub fn check(
    store: &Store,
    gateway: Option<&str>,
    held: &[Held],
    pinned: Option<&str>,
) -> Result<Checked, CheckpointError> {
    let (last, _) = super::log::head(&store.conn).map_err(store.err())?;
    let mut out = Checked::default();
    let mut truncated: Option<(u64, String)> = None;
    for h in held {
        if gateway.is_some_and(|g| g != h.gateway) {
            continue;
        }
        out.checked += 1;
        if pinned.is_some_and(|k| !k.eq_ignore_ascii_case(&h.key)) {
            out.problems.push(format!(
                "the checkpoint of record {} signed at {} is by key {}, not the key given",
                h.signed_seq, h.signed_at, h.key
            ));
            continue;
        }
        if !h.signature_holds() {
            out.problems.push(format!(
                "the checkpoint of record {} signed at {} does not verify: it was altered or forged",
                h.signed_seq, h.signed_at
            ));
            continue;
        }
        if out.newest.as_ref().is_none_or(|(s, _)| h.signed_seq > *s) {
            out.newest = Some((h.signed_seq, h.signed_at.clone()));
        }
        if h.signed_seq > last {
            if truncated.as_ref().is_none_or(|(s, _)| h.signed_seq > *s) {
                truncated = Some((h.signed_seq, h.signed_at.clone()));
            }
            continue;
        }
        let bytes: Option<Vec<u8>> = store
            .conn
            .query_row(
                "SELECT record FROM events WHERE seq = ?1",
                [i64::try_from(h.signed_seq).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()
            .map_err(store.err())?;
        match bytes {
            None => out.problems.push(format!(
                "record {} is missing, though a checkpoint signed at {} attests it",
                h.signed_seq, h.signed_at
            )),
            Some(b) if hex::encode(hash(&b)) != h.signed_hash => out.problems.push(format!(
                "record {} is not the record signed at {}: it, or a record before it, was changed (and the chain re-computed)",
                h.signed_seq, h.signed_at
            )),
            Some(_) => {}
        }
    }
    if let Some((seq, at)) = truncated {
        out.problems.insert(
            0,
            format!(
                "the log ends at record {last}, but a checkpoint signed at {at} attests record {seq}: records {} to {seq} (at least) were cut off",
                last + 1
            ),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::Log;
    use crate::store::record::Context;

    fn ctx() -> Context {
        Context {
            gateway: "gw".into(),
            pump: None,
            care_area: "adult-icu".into(),
            library_version: None,
        }
    }

    fn log_with(dir: &Path, n: u64) -> Log {
        let mut log = Log::new(Store::open(&Store::file_in(dir)).unwrap()).unwrap();
        for i in 0..n {
            log.append(
                vec![(
                    ctx(),
                    Event::LinkDown {
                        reason: i.to_string(),
                    },
                )],
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        }
        log
    }

    fn held(log: &Log, signer: &Signer) -> Held {
        let event = signer
            .checkpoint(log.store(), "gw", "periodic", OffsetDateTime::now_utc())
            .unwrap()
            .expect("the log is not empty");
        let Event::Checkpoint {
            signed_seq,
            signed_hash,
            signed_at,
            key,
            signature,
            ..
        } = event
        else {
            unreachable!()
        };
        Held {
            gateway: "gw".into(),
            signed_seq,
            signed_hash,
            signed_at,
            key,
            signature,
        }
    }

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Signer::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_hex(), b.public_hex());
        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(Signer::load_or_create(dir.path()).is_err());
    }

    #[test]
    fn a_log_is_checked_against_its_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(dir.path()).unwrap();
        let log = log_with(dir.path(), 5);
        let h = held(&log, &signer);
        assert!(h.signature_holds());
        let ok = check(log.store(), Some("gw"), std::slice::from_ref(&h), None).unwrap();
        assert_eq!(ok.problems, Vec::<String>::new());
        assert_eq!(ok.newest.map(|n| n.0), Some(5));

        // Altered checkpoint, other key, truncated log.
        let mut forged = h.clone();
        forged.signed_seq = 4;
        let bad = check(log.store(), None, &[forged], None).unwrap();
        assert!(bad.problems[0].contains("does not verify"), "{bad:?}");
        let other = check(log.store(), None, std::slice::from_ref(&h), Some("00")).unwrap();
        assert!(other.problems[0].contains("not the key given"), "{other:?}");
        log.store()
            .conn
            .execute("DELETE FROM events WHERE seq > 3", [])
            .unwrap();
        let cut = check(log.store(), None, &[h], None).unwrap();
        assert!(
            cut.problems[0].contains("ends at record 3") && cut.problems[0].contains("record 5"),
            "{cut:?}"
        );
    }
}
