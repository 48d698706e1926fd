//! Configuration control of the drug library on the store: every library
//! ever imported, byte for byte with its signature, its state (received,
//! verified, active, superseded) and an audit row for every change of
//! state, with who, when and why. Each change is also an event in the log,
//! written in the same transaction.
//!
//! Nothing here ever changes the active library except [`activate`], and
//! only to a higher version.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::db::{Store, StoreError};
use super::log::append_in;
use super::record::{Context, Event, time_text};
use crate::library::signature::{self, SignatureError};
use crate::library::{self as lib, Finding, Severity};
use crate::link::sha256;

/// One archived library.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Archived {
    /// Version.
    pub version: u64,
    /// The library's id.
    pub library_id: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The proposing key's id.
    pub key_id: String,
    /// Who proposed and approved it, read back from its archived
    /// signature (none if that no longer verifies against the file).
    pub signed: Option<signature::Signed>,
    /// `received`, `verified`, `active` or `superseded`.
    pub state: String,
    /// When it was imported.
    pub received_at: String,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    /// When.
    pub at: String,
    /// Which version.
    pub version: u64,
    /// From which state (none for the import).
    pub from: Option<String>,
    /// To which state.
    pub to: String,
    /// Who.
    pub who: String,
    /// Why.
    pub why: String,
    /// What changed against the library active then (an import's
    /// verification and an activation), as `library::diff` JSON.
    pub diff: Option<String>,
}

/// Why an import or activation was refused. The active library is
/// untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The signature does not check out.
    #[error("signature refused: {0}")]
    Signature(#[from] SignatureError),
    /// The file has schema or lint errors.
    #[error("the library has {} error(s); first: {}", .0.iter().filter(|f| f.severity == Severity::Error).count(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Finding>),
    /// Not higher than the active version: no rollback.
    #[error(
        "version {version} is not higher than the active version {active}: no rollback (publish the old content again under a version above {active})"
    )]
    Rollback {
        /// The version offered.
        version: u64,
        /// The active one.
        active: u64,
    },
    /// That version is already in the archive.
    #[error("version {0} has already been imported (as {1})")]
    Exists(u64, String),
    /// The archived file no longer matches the hash recorded at import.
    #[error(
        "the archived file of version {version} was changed after import (recorded SHA-256 {recorded}, now {actual}); it will not be used"
    )]
    Tampered {
        /// The version.
        version: u64,
        /// The hash recorded at import.
        recorded: String,
        /// The hash of the file now.
        actual: String,
    },
    /// No such version in the archive.
    #[error("no library version {0} in the archive")]
    Unknown(u64),
    /// The version is not in a state that can be activated.
    #[error("version {0} is {1}; only a verified library can be activated")]
    NotVerified(u64, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn sql(path: std::path::PathBuf) -> impl Fn(rusqlite::Error) -> LibraryError {
    move |source| {
        LibraryError::Store(StoreError::Sqlite {
            path: path.clone(),
            source,
        })
    }
}

/// The active library's version and file, if any.
///
/// The file is checked against the SHA-256 recorded at import: a file
/// changed in the database since is refused (an error), never used.
pub fn active(store: &Store) -> Result<Option<(u64, Vec<u8>)>, LibraryError> {
    let row: Option<(i64, Vec<u8>, String)> = store
        .conn
        .query_row(
            "SELECT version, file, sha256 FROM libraries WHERE state = 'active'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql(store.path.clone()))?;
    let Some((version, file, recorded)) = row else {
        return Ok(None);
    };
    let version = u64::try_from(version).unwrap_or(0);
    let actual = hex::encode(sha256(&file));
    if actual != recorded {
        return Err(LibraryError::Tampered {
            version,
            recorded,
            actual,
        });
    }
    Ok(Some((version, file)))
}

/// The active version and the SHA-256 recorded for it (cheap: for polling).
pub fn active_version(store: &Store) -> Result<Option<(u64, String)>, LibraryError> {
    store
        .conn
        .query_row(
            "SELECT version, sha256 FROM libraries WHERE state = 'active'",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map(|o| o.map(|(v, h)| (u64::try_from(v).unwrap_or(0), h)))
        .map_err(sql(store.path.clone()))
}

/// The library in `file`, or the schema and lint errors that refuse it.
fn parsed(file: &[u8]) -> Result<lib::Library, LibraryError> {
    lib::parse(file)
        .map(|(library, _warnings)| library)
        .map_err(|e| match e {
            lib::LoadError::Invalid(findings) => LibraryError::Invalid(findings),
            lib::LoadError::Io { path, source } => LibraryError::Store(StoreError::Sqlite {
                path: path.into(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(source)),
            }),
        })
}

/// What a gateway accepts a library on: the pharmacy keys it trusts and
/// how many approvals beyond the proposal it needs (`approvals`).
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// Raw Ed25519 public keys.
    pub keys: &'a [Vec<u8>],
    /// Approvals needed besides the proposal.
    pub approvals: u32,
}

/// Verifies and archives a signed library (received, then verified). It is
/// not activated.
pub fn import(
    store: &mut Store,
    context: &Context,
    file: &[u8],
    signature_file: &[u8],
    trust: Trust<'_>,
    who: &str,
) -> Result<Archived, LibraryError> {
    let signed = signature::verify(file, signature_file, trust.keys, trust.approvals)?;
    let key_id = signed.proposer.key_id.clone();
    let library = parsed(file)?;
    let version = library.version;
    let err = sql(store.path.clone());
    let now = OffsetDateTime::now_utc();
    let at = time_text(now);
    let sha = hex::encode(sha256(file));
    let tx = store
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let active: Option<i64> = tx
        .query_row(
            "SELECT version FROM libraries WHERE state = 'active'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    if let Some(active) = active.and_then(|a| u64::try_from(a).ok())
        && version <= active
    {
        return Err(LibraryError::Rollback { version, active });
    }
    let v = i64::try_from(version).unwrap_or(i64::MAX);
    let existing: Option<String> = tx
        .query_row("SELECT state FROM libraries WHERE version = ?1", [v], |r| {
            r.get(0)
        })
        .optional()
        .map_err(&err)?;
    if let Some(state) = existing {
        return Err(LibraryError::Exists(version, state));
    }
    tx.execute(
        "INSERT INTO libraries (version, library_id, sha256, file, signature, key_id, state, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'received', ?7)",
        params![v, library.library_id, sha, file, signature_file, key_id, at],
    )
    .map_err(&err)?;
    audit_row(&tx, &at, v, None, "received", (who, "imported")).map_err(&err)?;
    tx.execute(
        "UPDATE libraries SET state = 'verified' WHERE version = ?1",
        [v],
    )
    .map_err(&err)?;
    let why = format!(
        "{}; every signature by a trusted key; schema and lint without errors",
        signed.describe()
    );
    let diff = against_active(&tx, &library).map_err(&err)?;
    audit_row_with(
        &tx,
        &at,
        v,
        (Some("received"), "verified"),
        (who, &why),
        diff.as_deref(),
    )
    .map_err(&err)?;
    append_in(
        &tx,
        vec![
            (
                context.clone(),
                Event::LibraryReceived {
                    version,
                    library_id: library.library_id.clone(),
                    sha256: sha.clone(),
                    by: who.to_owned(),
                },
            ),
            (
                context.clone(),
                Event::LibraryVerified {
                    version,
                    key_id: key_id.clone(),
                    signers: signed.all().cloned().collect(),
                },
            ),
        ],
        now,
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(Archived {
        version,
        library_id: library.library_id,
        sha256: sha,
        key_id,
        signed: Some(signed),
        state: "verified".to_owned(),
        received_at: at,
    })
}

/// Logs a refused import (the archive is not touched).
pub fn log_refusal(
    store: &mut Store,
    context: &Context,
    file: &[u8],
    reason: &str,
    who: &str,
) -> Result<(), LibraryError> {
    let err = sql(store.path.clone());
    let tx = store
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    append_in(
        &tx,
        vec![(
            context.clone(),
            Event::LibraryRefused {
                sha256: hex::encode(sha256(file)),
                reason: reason.to_owned(),
                by: who.to_owned(),
            },
        )],
        OffsetDateTime::now_utc(),
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)
}

/// Makes a verified version active; the active one becomes superseded.
pub fn activate(
    store: &mut Store,
    context: &Context,
    version: u64,
    who: &str,
    why: &str,
) -> Result<Option<u64>, LibraryError> {
    let err = sql(store.path.clone());
    let now = OffsetDateTime::now_utc();
    let at = time_text(now);
    let v = i64::try_from(version).unwrap_or(i64::MAX);
    let tx = store
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let state: Option<String> = tx
        .query_row("SELECT state FROM libraries WHERE version = ?1", [v], |r| {
            r.get(0)
        })
        .optional()
        .map_err(&err)?;
    match state.as_deref() {
        None => return Err(LibraryError::Unknown(version)),
        Some("verified") => {}
        Some(other) => return Err(LibraryError::NotVerified(version, other.to_owned())),
    }
    let previous: Option<i64> = tx
        .query_row(
            "SELECT version FROM libraries WHERE state = 'active'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(&err)?;
    let file: Vec<u8> = tx
        .query_row("SELECT file FROM libraries WHERE version = ?1", [v], |r| {
            r.get(0)
        })
        .map_err(&err)?;
    let diff = match lib::parse(&file) {
        Ok((new, _)) => against_active(&tx, &new).map_err(&err)?,
        Err(_) => None,
    };
    if let Some(p) = previous {
        if p >= v {
            return Err(LibraryError::Rollback {
                version,
                active: u64::try_from(p).unwrap_or(0),
            });
        }
        tx.execute(
            "UPDATE libraries SET state = 'superseded' WHERE version = ?1",
            [p],
        )
        .map_err(&err)?;
        let why_old = format!("superseded by version {version}");
        audit_row(&tx, &at, p, Some("active"), "superseded", (who, &why_old)).map_err(&err)?;
    }
    tx.execute(
        "UPDATE libraries SET state = 'active' WHERE version = ?1",
        [v],
    )
    .map_err(&err)?;
    audit_row_with(
        &tx,
        &at,
        v,
        (Some("verified"), "active"),
        (who, why),
        diff.as_deref(),
    )
    .map_err(&err)?;
    let previous = previous.and_then(|p| u64::try_from(p).ok());
    let mut context = context.clone();
    context.library_version = Some(version);
    append_in(
        &tx,
        vec![(
            context,
            Event::LibraryActivated {
                version,
                previous,
                by: who.to_owned(),
                reason: why.to_owned(),
            },
        )],
        now,
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(previous)
}

fn audit_row(
    tx: &rusqlite::Transaction<'_>,
    at: &str,
    version: i64,
    from: Option<&str>,
    to: &str,
    (who, why): (&str, &str),
) -> Result<usize, rusqlite::Error> {
    audit_row_with(tx, at, version, (from, to), (who, why), None)
}

fn audit_row_with(
    tx: &rusqlite::Transaction<'_>,
    at: &str,
    version: i64,
    (from, to): (Option<&str>, &str),
    (who, why): (&str, &str),
    diff: Option<&str>,
) -> Result<usize, rusqlite::Error> {
    tx.execute(
        "INSERT INTO library_audit (at, version, from_state, to_state, who, why, diff) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![at, version, from, to, who, why, diff],
    )
}

/// What `new` changes against the library active in `tx` (none when none
/// is active, or it cannot be read), as JSON for the audit trail.
fn against_active(
    tx: &rusqlite::Transaction<'_>,
    new: &lib::Library,
) -> Result<Option<String>, rusqlite::Error> {
    let active: Option<Vec<u8>> = tx
        .query_row(
            "SELECT file FROM libraries WHERE state = 'active'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(active
        .and_then(|bytes| lib::parse(&bytes).ok())
        .map(|(old, _)| lib::diff::diff(&old, new))
        .and_then(|d| serde_json::to_string(&d).ok()))
}

/// Every archived library, newest first.
pub fn list(store: &Store) -> Result<Vec<Archived>, LibraryError> {
    let err = sql(store.path.clone());
    let mut st = store
        .conn
        .prepare(
            "SELECT version, library_id, sha256, key_id, state, received_at, file, signature FROM libraries ORDER BY version DESC",
        )
        .map_err(&err)?;
    let rows = st
        .query_map([], |r| {
            Ok(Archived {
                version: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                library_id: r.get(1)?,
                sha256: r.get(2)?,
                key_id: r.get(3)?,
                signed: signature::inspect(&r.get::<_, Vec<u8>>(6)?, &r.get::<_, Vec<u8>>(7)?).ok(),
                state: r.get(4)?,
                received_at: r.get(5)?,
            })
        })
        .map_err(&err)?;
    rows.collect::<Result<_, _>>().map_err(&err)
}

/// One archived library's file and signature, byte for byte.
pub fn file(store: &Store, version: u64) -> Result<(Vec<u8>, Vec<u8>), LibraryError> {
    store
        .conn
        .query_row(
            "SELECT file, signature FROM libraries WHERE version = ?1",
            [i64::try_from(version).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sql(store.path.clone()))?
        .ok_or(LibraryError::Unknown(version))
}

/// The archived library whose file has this SHA-256 (hex): its version and
/// state.
pub fn by_hash(store: &Store, sha256: &str) -> Result<Option<(u64, String)>, LibraryError> {
    store
        .conn
        .query_row(
            "SELECT version, state FROM libraries WHERE sha256 = ?1",
            [sha256],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()
        .map(|o| o.map(|(v, s)| (u64::try_from(v).unwrap_or(0), s)))
        .map_err(sql(store.path.clone()))
}

/// The audit trail, oldest first.
pub fn audit(store: &Store) -> Result<Vec<Audit>, LibraryError> {
    let err = sql(store.path.clone());
    let mut st = store
        .conn
        .prepare(
            "SELECT at, version, from_state, to_state, who, why, diff FROM library_audit ORDER BY id",
        )
        .map_err(&err)?;
    let rows = st
        .query_map([], |r| {
            Ok(Audit {
                at: r.get(0)?,
                version: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                from: r.get(2)?,
                to: r.get(3)?,
                who: r.get(4)?,
                why: r.get(5)?,
                diff: r.get(6)?,
            })
        })
        .map_err(&err)?;
    rows.collect::<Result<_, _>>().map_err(&err)
}

/// What one pump last reported about its library, from the event log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PumpLibrary {
    /// Pump (port name).
    pub pump: String,
    /// `online` or `offline` (its last link event).
    pub link: String,
    /// Version reported.
    pub version: Option<u64>,
    /// Hash reported, hex.
    pub hash: Option<String>,
    /// When it was reported.
    pub since: String,
    /// Whether it is the active library.
    pub matches: bool,
}

/// The active library and what every pump reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LibraryStatus {
    /// The active version and its SHA-256, hex.
    pub active: Option<(u64, String)>,
    /// One entry per pump that ever connected.
    pub pumps: Vec<PumpLibrary>,
}

/// Per pump: the library it last reported (at handshake or after an
/// install), since when, and whether it is the active one.
pub fn pump_status(store: &Store) -> Result<LibraryStatus, LibraryError> {
    let err = sql(store.path.clone());
    let active: Option<(i64, String)> = store
        .conn
        .query_row(
            "SELECT version, sha256 FROM libraries WHERE state = 'active'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(&err)?;
    let active = active.map(|(v, h)| (u64::try_from(v).unwrap_or(0), h));
    let mut st = store
        .conn
        .prepare(
            "SELECT pump, type, at,
                    COALESCE(json_extract(record, '$.version'), json_extract(record, '$.pump_library_version')),
                    COALESCE(json_extract(record, '$.hash'), json_extract(record, '$.pump_library_hash'))
             FROM events
             WHERE type IN ('link_up', 'link_down', 'library_installed_on_pump') AND pump IS NOT NULL
             ORDER BY seq",
        )
        .map_err(&err)?;
    let mut rows = st.query([]).map_err(&err)?;
    let mut pumps: std::collections::BTreeMap<String, PumpLibrary> =
        std::collections::BTreeMap::new();
    while let Some(r) = rows.next().map_err(&err)? {
        let pump: String = r.get(0).map_err(&err)?;
        let kind: String = r.get(1).map_err(&err)?;
        let at: String = r.get(2).map_err(&err)?;
        let entry = pumps.entry(pump.clone()).or_insert_with(|| PumpLibrary {
            pump,
            link: "offline".to_owned(),
            version: None,
            hash: None,
            since: at.clone(),
            matches: false,
        });
        if kind == "link_down" {
            "offline".clone_into(&mut entry.link);
            continue;
        }
        if kind == "link_up" {
            "online".clone_into(&mut entry.link);
        }
        let version: Option<i64> = r.get(3).map_err(&err)?;
        let hash: Option<String> = r.get(4).map_err(&err)?;
        let version = version.and_then(|v| u64::try_from(v).ok());
        if version != entry.version || hash != entry.hash {
            entry.since = at;
        }
        entry.version = version;
        entry.hash = hash;
    }
    let mut out: Vec<PumpLibrary> = pumps.into_values().collect();
    for p in &mut out {
        p.matches = match (&active, &p.hash) {
            (Some((_, a)), Some(h)) => a == h,
            _ => false,
        };
    }
    Ok(LibraryStatus { active, pumps: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::verify;

    const EXAMPLE: &str = include_str!("../../../config/drug-library.example.json");

    fn ctx() -> Context {
        Context {
            gateway: "g".into(),
            pump: None,
            care_area: "adult-icu".into(),
            library_version: None,
        }
    }

    /// Format 1 signatures, where the gateway needs no approval.
    fn open_trust(keys: &[Vec<u8>]) -> Trust<'_> {
        Trust { keys, approvals: 0 }
    }

    fn signed(version: u64, pkcs8: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let file = EXAMPLE.replacen("\"version\": 12", &format!("\"version\": {version}"), 1);
        assert!(file.contains(&format!("\"version\": {version}")));
        let sig = signature::sign_v1(file.as_bytes(), pkcs8, std::path::Path::new("k")).unwrap();
        (file.into_bytes(), serde_json::to_vec(&sig).unwrap())
    }

    /// The library with a digit in its middle changed (a limit, say).
    fn tampered_digit(bytes: &[u8]) -> Vec<u8> {
        let mut tampered = bytes.to_vec();
        let half = tampered.len() / 2;
        let at = half
            + tampered[half..]
                .iter()
                .position(u8::is_ascii_digit)
                .expect("the library has digits");
        tampered[at] = if tampered[at] == b'9' {
            b'8'
        } else {
            tampered[at] + 1
        };
        tampered
    }

    #[test]
    #[allow(
        clippy::too_many_lines,
        reason = "one story: import, activate, every refusal"
    )]
    fn import_activate_and_no_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&Store::file_in(dir.path())).unwrap();
        let (pkcs8, public) = signature::generate().unwrap();
        let trusted = vec![public];
        let (v12, s12) = signed(12, &pkcs8);
        let a = import(
            &mut store,
            &ctx(),
            &v12,
            &s12,
            open_trust(&trusted),
            "pharmacist",
        )
        .unwrap();
        assert_eq!(a.state, "verified");
        assert!(
            active(&store).unwrap().is_none(),
            "import does not activate"
        );
        assert_eq!(
            activate(&mut store, &ctx(), 12, "biomed", "go live").unwrap(),
            None
        );
        assert_eq!(active(&store).unwrap().unwrap().0, 12);
        // Equal and lower versions are refused.
        assert!(matches!(
            import(&mut store, &ctx(), &v12, &s12, open_trust(&trusted), "p"),
            Err(LibraryError::Rollback {
                version: 12,
                active: 12
            })
        ));
        let (v11, s11) = signed(11, &pkcs8);
        assert!(matches!(
            import(&mut store, &ctx(), &v11, &s11, open_trust(&trusted), "p"),
            Err(LibraryError::Rollback {
                version: 11,
                active: 12
            })
        ));
        // A tampered file and an untrusted key are refused.
        let (v13, s13) = signed(13, &pkcs8);
        let tampered = tampered_digit(&v13);
        assert!(matches!(
            import(
                &mut store,
                &ctx(),
                &tampered,
                &s13,
                open_trust(&trusted),
                "p"
            ),
            Err(LibraryError::Signature(_))
        ));
        let (other, _) = signature::generate().unwrap();
        let (v13b, s13b) = signed(13, &other);
        assert!(matches!(
            import(&mut store, &ctx(), &v13b, &s13b, open_trust(&trusted), "p"),
            Err(LibraryError::Signature(SignatureError::UntrustedKey(_)))
        ));
        import(&mut store, &ctx(), &v13, &s13, open_trust(&trusted), "p").unwrap();
        assert_eq!(
            activate(&mut store, &ctx(), 13, "b", "update").unwrap(),
            Some(12)
        );
        // A superseded version can never come back.
        assert!(matches!(
            activate(&mut store, &ctx(), 12, "b", "back"),
            Err(LibraryError::NotVerified(12, _))
        ));
        let states: Vec<(u64, String)> = list(&store)
            .unwrap()
            .into_iter()
            .map(|a| (a.version, a.state))
            .collect();
        assert_eq!(
            states,
            vec![(13, "active".into()), (12, "superseded".into())]
        );
        assert_eq!(file(&store, 12).unwrap().0, v12, "archived byte for byte");
        let trail: Vec<String> = audit(&store)
            .unwrap()
            .iter()
            .map(|a| format!("{} {}", a.version, a.to))
            .collect();
        assert_eq!(
            trail,
            [
                "12 received",
                "12 verified",
                "12 active",
                "13 received",
                "13 verified",
                "12 superseded",
                "13 active"
            ]
        );
        // A file changed in the database after import is never used.
        store
            .conn
            .execute(
                "UPDATE libraries SET file = CAST('{}' AS BLOB) WHERE version = 13",
                [],
            )
            .unwrap();
        assert!(matches!(
            active(&store),
            Err(LibraryError::Tampered { version: 13, .. })
        ));
        let v = verify(&store, |_| {}).unwrap();
        assert!(v.first_break.is_none());
        assert_eq!(
            v.records, 6,
            "received, verified, activated; received, verified, activated"
        );
    }
}
