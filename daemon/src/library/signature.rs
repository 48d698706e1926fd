//! Pharmacy signatures on drug-library files: Ed25519 keys (PKCS#8, via
//! ring), detached signature files, and verification against the keys a
//! gateway was provisioned to trust and the number of approvals it needs.
//!
//! Format 2 (written now) holds one signature by the pharmacist who
//! proposed the library and one per pharmacist who approved it; each signs
//! a statement binding its role, its person and the file's SHA-256, so a
//! signature cannot be moved to another role, person or file. Format 1
//! (one signature over the file's bytes) is still read, as a proposal with
//! no approvals. Both carry the file's SHA-256 so that a mismatch is
//! reported as "another file", not merely "bad signature".

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::link::sha256;

/// The `format` of a signature file.
pub const FORMAT: &str = "pumpgw-library-signature";

/// The `format_version` written: proposal and approvals.
pub const FORMAT_VERSION: u32 = 2;

/// The longest name a signature may give its person, in characters.
pub const MAX_PERSON_CHARS: usize = 100;

/// What a signature says its signer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Put the library forward (the first signature, exactly one).
    Proposed,
    /// Checked and approved it (another key, another person).
    Approved,
}

impl Role {
    /// The word in the file and in the signed statement.
    pub fn word(self) -> &'static str {
        match self {
            Role::Proposed => "proposed",
            Role::Approved => "approved",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One signature of a format 2 file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `proposed` or `approved`.
    pub role: Role,
    /// The person who signed, as they gave their name.
    pub person: String,
    /// When (RFC 3339, UTC).
    pub signed_at: String,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The signing key's public half, hex (information only: trust comes
    /// from the gateway's list).
    pub public_key: String,
    /// The Ed25519 signature over [`statement`], hex.
    pub signature: String,
}

/// A format 2 signature file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// 2.
    pub format_version: u32,
    /// Always `ed25519`.
    pub algorithm: String,
    /// SHA-256 of the signed library file, hex.
    pub library_sha256: String,
    /// The proposal first, then each approval in the order given.
    pub signatures: Vec<Entry>,
}

/// A format 1 signature file: one key, over the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFileV1 {
    /// Always [`FORMAT`].
    pub format: String,
    /// 1.
    pub format_version: u32,
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The signing key's public half, hex.
    pub public_key: String,
    /// SHA-256 of the signed file, hex.
    pub library_sha256: String,
    /// The Ed25519 signature over the file's bytes, hex.
    pub signature: String,
}

/// One person's verified signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signatory {
    /// What they did.
    pub role: Role,
    /// Their key's id.
    pub key_id: String,
    /// Their name (none in a format 1 file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// When they signed (none in a format 1 file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
}

impl fmt::Display for Signatory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.person {
            Some(p) => write!(f, "{p} (key {})", self.key_id),
            None => write!(f, "key {}", self.key_id),
        }
    }
}

/// Who signed a library, every signature verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The signature file's format version.
    pub format_version: u32,
    /// Who proposed it.
    pub proposer: Signatory,
    /// Who approved it, in order.
    pub approvers: Vec<Signatory>,
}

impl Signed {
    /// Proposer first, then approvers.
    pub fn all(&self) -> impl Iterator<Item = &Signatory> {
        std::iter::once(&self.proposer).chain(&self.approvers)
    }

    /// "proposed by A (key …), approved by B (key …)", for people.
    pub fn describe(&self) -> String {
        let mut s = format!("proposed by {}", self.proposer);
        if self.approvers.is_empty() {
            s.push_str(", not approved by anyone else");
        } else {
            let names: Vec<String> = self.approvers.iter().map(ToString::to_string).collect();
            s.push_str(", approved by ");
            s.push_str(&names.join(" and "));
        }
        s
    }
}

/// Why a key or signature cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A key file is not a PKCS#8 Ed25519 key.
    #[error("{path} is not an Ed25519 private key in PKCS#8 form ({detail})")]
    BadKey {
        /// The file.
        path: String,
        /// What ring said.
        detail: String,
    },
    /// The signature file does not parse or breaks the format's rules.
    #[error("the signature file is not valid: {0}")]
    BadSignatureFile(String),
    /// The signature was made for another file.
    #[error("the signature is for another file (it names SHA-256 {signed}, this file is {actual})")]
    OtherFile {
        /// What the signature names.
        signed: String,
        /// What the file hashes to.
        actual: String,
    },
    /// The key is not one this gateway trusts.
    #[error("the signature is by key {0}, which this gateway does not trust")]
    UntrustedKey(String),
    /// The signature does not verify.
    #[error(
        "the signature by key {0} does not verify: the file was altered or the signature forged"
    )]
    Invalid(String),
    /// One key or one person signs twice: a second signature by the same
    /// hand is not a second person's check.
    #[error("{0} signs twice; an approval must come from another person with another key")]
    SignedTwice(String),
    /// Fewer approvals than the gateway needs.
    #[error(
        "the library needs {needed} approval(s) by other trusted pharmacists and has {have} ({signed}); approve it with `pumpgwd library approve`"
    )]
    NotEnoughApprovals {
        /// `approvals` in the gateway config.
        needed: u32,
        /// Approvals in the file.
        have: u32,
        /// Who signed so far.
        signed: String,
    },
    /// A person's name cannot be put in a signature.
    #[error(
        "person {0:?}: give a name of 1 to {MAX_PERSON_CHARS} characters without line breaks or control characters"
    )]
    BadPerson(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A key's id: the first 16 hex digits of the SHA-256 of its public key.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(&sha256(public_key)[..8])
}

/// A new key pair: the PKCS#8 document (secret) and the public key.
pub fn generate() -> Result<(Vec<u8>, Vec<u8>), SignatureError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| SignatureError::BadKey {
        path: "(new key)".to_owned(),
        detail: e.to_string(),
    })?;
    let pair = key_pair(pkcs8.as_ref(), Path::new("(new key)"))?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

fn key_pair(pkcs8: &[u8], key_path: &Path) -> Result<Ed25519KeyPair, SignatureError> {
    Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| SignatureError::BadKey {
        path: key_path.display().to_string(),
        detail: e.to_string(),
    })
}

/// The bytes a format 2 signature signs: its role, its person, its time
/// and the library's SHA-256, one per line after a fixed first line.
pub fn statement(role: Role, person: &str, signed_at: &str, library_sha256: &str) -> Vec<u8> {
    format!(
        "{FORMAT}/2\nrole: {role}\nperson: {person}\nsigned_at: {signed_at}\nlibrary_sha256: {library_sha256}\n"
    )
    .into_bytes()
}

fn check_person(person: &str) -> Result<(), SignatureError> {
    let n = person.chars().count();
    if n == 0
        || n > MAX_PERSON_CHARS
        || person.trim() != person
        || person.chars().any(char::is_control)
    {
        return Err(SignatureError::BadPerson(person.to_owned()));
    }
    Ok(())
}

fn entry(
    role: Role,
    library_sha256: &str,
    pkcs8: &[u8],
    key_path: &Path,
    person: &str,
    signed_at: &str,
) -> Result<Entry, SignatureError> {
    check_person(person)?;
    let pair = key_pair(pkcs8, key_path)?;
    let public = pair.public_key().as_ref();
    let text = statement(role, person, signed_at, library_sha256);
    Ok(Entry {
        role,
        person: person.to_owned(),
        signed_at: signed_at.to_owned(),
        key_id: key_id(public),
        public_key: hex::encode(public),
        signature: hex::encode(pair.sign(&text).as_ref()),
    })
}

/// Proposes a library: a format 2 file with one signature, by `person`.
pub fn propose(
    library: &[u8],
    pkcs8: &[u8],
    key_path: &Path,
    person: &str,
    signed_at: &str,
) -> Result<SignatureFile, SignatureError> {
    let sha = hex::encode(sha256(library));
    let first = entry(Role::Proposed, &sha, pkcs8, key_path, person, signed_at)?;
    Ok(SignatureFile {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        algorithm: "ed25519".to_owned(),
        library_sha256: sha,
        signatures: vec![first],
    })
}

/// Adds `person`'s approval to a proposal. The signatures already there
/// must verify (against their own keys) for this very file, and neither
/// the key nor the person may have signed it already.
pub fn approve(
    library: &[u8],
    file: &mut SignatureFile,
    pkcs8: &[u8],
    key_path: &Path,
    person: &str,
    signed_at: &str,
) -> Result<(), SignatureError> {
    check_v2(library, file, |e| own_key(&e.key_id, &e.public_key))?;
    let new = entry(
        Role::Approved,
        &file.library_sha256,
        pkcs8,
        key_path,
        person,
        signed_at,
    )?;
    file.signatures.push(new);
    distinct(&file.signatures)?;
    Ok(())
}

/// Signs in format 1 (one signature over the bytes), for gateways that
/// read only format 1 during an upgrade; such a file has no approvals.
pub fn sign_v1(
    library: &[u8],
    pkcs8: &[u8],
    key_path: &Path,
) -> Result<SignatureFileV1, SignatureError> {
    let pair = key_pair(pkcs8, key_path)?;
    let public = pair.public_key().as_ref();
    Ok(SignatureFileV1 {
        format: FORMAT.to_owned(),
        format_version: 1,
        algorithm: "ed25519".to_owned(),
        key_id: key_id(public),
        public_key: hex::encode(public),
        library_sha256: hex::encode(sha256(library)),
        signature: hex::encode(pair.sign(library).as_ref()),
    })
}

/// A signature file of either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Format 1: one signer.
    V1(SignatureFileV1),
    /// Format 2: proposal and approvals.
    V2(SignatureFile),
}

/// Reads a signature file of either format.
pub fn parse(signature: &[u8]) -> Result<Parsed, SignatureError> {
    let bad = |e: serde_json::Error| SignatureError::BadSignatureFile(e.to_string());
    let head: serde_json::Value = serde_json::from_slice(signature).map_err(bad)?;
    let format = head.get("format").and_then(serde_json::Value::as_str);
    let version = head
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    let algorithm = head.get("algorithm").and_then(serde_json::Value::as_str);
    if format != Some(FORMAT) || algorithm != Some("ed25519") || !matches!(version, Some(1 | 2)) {
        return Err(SignatureError::BadSignatureFile(format!(
            "format {format:?} version {version:?} algorithm {algorithm:?} is not {FORMAT} version 1 or 2, ed25519"
        )));
    }
    if version == Some(1) {
        serde_json::from_value(head).map(Parsed::V1).map_err(bad)
    } else {
        serde_json::from_value(head).map(Parsed::V2).map_err(bad)
    }
}

fn same_file(library: &[u8], signed: &str) -> Result<(), SignatureError> {
    let actual = hex::encode(sha256(library));
    if signed == actual {
        Ok(())
    } else {
        Err(SignatureError::OtherFile {
            signed: signed.to_owned(),
            actual,
        })
    }
}

fn check_one(
    key: &[u8],
    message: &[u8],
    signature_hex: &str,
    id: &str,
) -> Result<(), SignatureError> {
    let bytes = hex::decode(signature_hex)
        .map_err(|e| SignatureError::BadSignatureFile(format!("signature of key {id}: {e}")))?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message, &bytes)
        .map_err(|_| SignatureError::Invalid(id.to_owned()))
}

/// No key and no person twice (names compared without case).
fn distinct(entries: &[Entry]) -> Result<(), SignatureError> {
    for (i, e) in entries.iter().enumerate() {
        for earlier in &entries[..i] {
            if earlier.key_id == e.key_id {
                return Err(SignatureError::SignedTwice(format!("key {}", e.key_id)));
            }
            if earlier.person.to_lowercase() == e.person.to_lowercase() {
                return Err(SignatureError::SignedTwice(e.person.clone()));
            }
        }
    }
    Ok(())
}

/// Checks a format 2 file's structure and every signature, each with the
/// key `key_for` gives for it; returns who signed.
fn check_v2(
    library: &[u8],
    file: &SignatureFile,
    key_for: impl Fn(&Entry) -> Result<Vec<u8>, SignatureError>,
) -> Result<Signed, SignatureError> {
    same_file(library, &file.library_sha256)?;
    let Some((first, rest)) = file.signatures.split_first() else {
        return Err(SignatureError::BadSignatureFile("no signatures".to_owned()));
    };
    if first.role != Role::Proposed || rest.iter().any(|e| e.role != Role::Approved) {
        return Err(SignatureError::BadSignatureFile(
            "the first signature must be the one proposal, every other one an approval".to_owned(),
        ));
    }
    distinct(&file.signatures)?;
    let mut who = Vec::with_capacity(file.signatures.len());
    for e in &file.signatures {
        check_person(&e.person)?;
        let key = key_for(e)?;
        if key_id(&key) != e.key_id {
            return Err(SignatureError::BadSignatureFile(format!(
                "key_id {} does not name its public key",
                e.key_id
            )));
        }
        let text = statement(e.role, &e.person, &e.signed_at, &file.library_sha256);
        check_one(&key, &text, &e.signature, &e.key_id)?;
        who.push(Signatory {
            role: e.role,
            key_id: e.key_id.clone(),
            person: Some(e.person.clone()),
            signed_at: Some(e.signed_at.clone()),
        });
    }
    let proposer = who.remove(0);
    Ok(Signed {
        format_version: 2,
        proposer,
        approvers: who,
    })
}

fn trusted_key<'a>(trusted: &'a [Vec<u8>], id: &str) -> Result<&'a Vec<u8>, SignatureError> {
    trusted
        .iter()
        .find(|k| key_id(k) == id)
        .ok_or_else(|| SignatureError::UntrustedKey(id.to_owned()))
}

/// Checks a signature file of either format against a library's bytes, the
/// trusted public keys (raw 32-byte Ed25519 keys) and the number of
/// approvals the gateway needs; returns who signed.
///
/// Trust comes from the gateway's list, never from the file: the public
/// key in the file only says which trusted key to use. Every signature in
/// the file must be by a trusted key and verify.
pub fn verify(
    library: &[u8],
    signature: &[u8],
    trusted: &[Vec<u8>],
    approvals: u32,
) -> Result<Signed, SignatureError> {
    let signed = match parse(signature)? {
        Parsed::V1(sig) => {
            same_file(library, &sig.library_sha256)?;
            let key = trusted_key(trusted, &sig.key_id)?;
            check_one(key, library, &sig.signature, &sig.key_id)?;
            Signed {
                format_version: 1,
                proposer: Signatory {
                    role: Role::Proposed,
                    key_id: sig.key_id,
                    person: None,
                    signed_at: None,
                },
                approvers: Vec::new(),
            }
        }
        Parsed::V2(file) => check_v2(library, &file, |e| trusted_key(trusted, &e.key_id).cloned())?,
    };
    let have = u32::try_from(signed.approvers.len()).unwrap_or(u32::MAX);
    if have < approvals {
        return Err(SignatureError::NotEnoughApprovals {
            needed: approvals,
            have,
            signed: signed.describe(),
        });
    }
    Ok(signed)
}

/// Checks every signature in a file against the key it names, without any
/// trust list: whether the file is whole and who signed it, as the
/// pharmacy sees it before publishing. A gateway still decides with
/// [`verify`].
pub fn inspect(library: &[u8], signature: &[u8]) -> Result<Signed, SignatureError> {
    match parse(signature)? {
        Parsed::V1(sig) => {
            let key = own_key(&sig.key_id, &sig.public_key)?;
            verify(library, signature, &[key], 0)
        }
        Parsed::V2(file) => check_v2(library, &file, |e| own_key(&e.key_id, &e.public_key)),
    }
}

/// The public key a signature carries (not a trusted one).
fn own_key(id: &str, public_hex: &str) -> Result<Vec<u8>, SignatureError> {
    hex::decode(public_hex)
        .map_err(|_| SignatureError::BadSignatureFile(format!("public_key of {id} is not hex")))
}

/// Reads a public key file: 64 hex digits (as `library keygen` writes).
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, SignatureError> {
    let text = std::fs::read_to_string(path).map_err(|source| SignatureError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let key = hex::decode(text.trim()).map_err(|e| SignatureError::BadKey {
        path: path.display().to_string(),
        detail: format!("not hex: {e}"),
    })?;
    if key.len() != 32 {
        return Err(SignatureError::BadKey {
            path: path.display().to_string(),
            detail: format!("{} bytes, an Ed25519 public key has 32", key.len()),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-12-04T10:00:00Z";

    fn keys() -> (Vec<u8>, Vec<u8>) {
        generate().unwrap()
    }

    #[test]
    fn format_1_still_verifies_as_a_proposal_without_approvals() {
        let (pkcs8, public) = keys();
        let library = br#"{"format":"pumpgw-drug-library"}"#;
        let sig = sign_v1(library, &pkcs8, Path::new("k")).unwrap();
        let file = serde_json::to_vec(&sig).unwrap();
        let signed = verify(library, &file, std::slice::from_ref(&public), 0).unwrap();
        assert_eq!(signed.proposer.key_id, key_id(&public));
        assert!(signed.approvers.is_empty());
        // A gateway that needs an approval refuses it.
        assert!(matches!(
            verify(library, &file, std::slice::from_ref(&public), 1),
            Err(SignatureError::NotEnoughApprovals {
                needed: 1,
                have: 0,
                ..
            })
        ));
        // One byte changed.
        let mut altered = library.to_vec();
        altered[3] ^= 1;
        assert!(matches!(
            verify(&altered, &file, std::slice::from_ref(&public), 0),
            Err(SignatureError::OtherFile { .. })
        ));
        // A forged signature with the right hash.
        let mut forged = sig.clone();
        forged.signature = hex::encode([7u8; 64]);
        let forged = serde_json::to_vec(&forged).unwrap();
        assert!(matches!(
            verify(library, &forged, std::slice::from_ref(&public), 0),
            Err(SignatureError::Invalid(_))
        ));
        // A key nobody trusts.
        let (_, other) = keys();
        assert!(matches!(
            verify(library, &file, &[other], 0),
            Err(SignatureError::UntrustedKey(_))
        ));
    }

    #[test]
    fn a_proposal_needs_approvals_by_other_people_with_other_keys() {
        let (a, a_pub) = keys();
        let (b, b_pub) = keys();
        let (c, c_pub) = keys();
        let trusted = vec![a_pub.clone(), b_pub.clone(), c_pub];
        let library = b"the library";
        let mut file = propose(library, &a, Path::new("a"), "Ann Proposer", AT).unwrap();
        let bytes = serde_json::to_vec(&file).unwrap();
        assert!(verify(library, &bytes, &trusted, 0).is_ok());
        let Err(e) = verify(library, &bytes, &trusted, 1) else {
            panic!("one signature passed where one approval is needed")
        };
        assert!(e.to_string().contains("needs 1 approval(s)"), "{e}");
        assert!(e.to_string().contains("proposed by Ann Proposer"), "{e}");

        // The proposer cannot approve their own proposal, by key or by name.
        let mut own = file.clone();
        assert!(matches!(
            approve(library, &mut own, &a, Path::new("a"), "Someone Else", AT),
            Err(SignatureError::SignedTwice(_))
        ));
        let mut renamed = file.clone();
        assert!(matches!(
            approve(
                library,
                &mut renamed,
                &b,
                Path::new("b"),
                "ann proposer",
                AT
            ),
            Err(SignatureError::SignedTwice(_))
        ));

        approve(library, &mut file, &b, Path::new("b"), "Bob Approver", AT).unwrap();
        let bytes = serde_json::to_vec(&file).unwrap();
        let signed = verify(library, &bytes, &trusted, 1).unwrap();
        assert_eq!(signed.proposer.person.as_deref(), Some("Ann Proposer"));
        assert_eq!(signed.approvers.len(), 1);
        assert_eq!(signed.approvers[0].key_id, key_id(&b_pub));
        assert_eq!(
            signed.describe(),
            format!(
                "proposed by Ann Proposer (key {}), approved by Bob Approver (key {})",
                key_id(&a_pub),
                key_id(&b_pub)
            )
        );
        assert!(matches!(
            verify(library, &bytes, &trusted, 2),
            Err(SignatureError::NotEnoughApprovals {
                needed: 2,
                have: 1,
                ..
            })
        ));
        approve(library, &mut file, &c, Path::new("c"), "Cy Second", AT).unwrap();
        let bytes = serde_json::to_vec(&file).unwrap();
        assert_eq!(
            verify(library, &bytes, &trusted, 2)
                .unwrap()
                .approvers
                .len(),
            2
        );
        assert_eq!(inspect(library, &bytes).unwrap().approvers.len(), 2);

        // An approval by a key this gateway does not trust refuses the file.
        assert!(matches!(
            verify(library, &bytes, &trusted[..2], 1),
            Err(SignatureError::UntrustedKey(_))
        ));
    }

    #[test]
    fn a_signature_cannot_be_moved_to_another_role_person_or_file() {
        let (a, a_pub) = keys();
        let (b, b_pub) = keys();
        let trusted = vec![a_pub, b_pub];
        let library = b"the library";
        let mut file = propose(library, &a, Path::new("a"), "Ann", AT).unwrap();
        approve(library, &mut file, &b, Path::new("b"), "Bob", AT).unwrap();

        let mut renamed = file.clone();
        renamed.signatures[1].person = "Someone Trusted".to_owned();
        let bytes = serde_json::to_vec(&renamed).unwrap();
        assert!(matches!(
            verify(library, &bytes, &trusted, 1),
            Err(SignatureError::Invalid(_))
        ));

        // The approval made the proposal and the proposal the approval.
        let mut swapped = file.clone();
        swapped.signatures.swap(0, 1);
        swapped.signatures[0].role = Role::Proposed;
        swapped.signatures[1].role = Role::Approved;
        let bytes = serde_json::to_vec(&swapped).unwrap();
        assert!(matches!(
            verify(library, &bytes, &trusted, 1),
            Err(SignatureError::Invalid(_))
        ));

        // Two proposals.
        let mut two = file.clone();
        two.signatures[1].role = Role::Proposed;
        let bytes = serde_json::to_vec(&two).unwrap();
        assert!(matches!(
            verify(library, &bytes, &trusted, 0),
            Err(SignatureError::BadSignatureFile(_))
        ));

        // Another file.
        let bytes = serde_json::to_vec(&file).unwrap();
        assert!(matches!(
            verify(b"another library", &bytes, &trusted, 1),
            Err(SignatureError::OtherFile { .. })
        ));
        // Approving another file than the one proposed.
        let (c, _) = keys();
        let mut other = file.clone();
        assert!(matches!(
            approve(b"another library", &mut other, &c, Path::new("c"), "Cy", AT),
            Err(SignatureError::OtherFile { .. })
        ));
    }

    #[test]
    fn names_must_be_one_line() {
        let (a, _) = keys();
        for bad in ["", " Ann", "Ann\nrole: approved", &"x".repeat(101)] {
            assert!(matches!(
                propose(b"l", &a, Path::new("a"), bad, AT),
                Err(SignatureError::BadPerson(_))
            ));
        }
    }
}
