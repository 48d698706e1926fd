//! Pharmacy signatures on drug-library files: Ed25519 keys (PKCS#8, via
//! ring), detached signature files that name their key, and verification
//! against the keys a gateway was provisioned to trust.
//!
//! The signature is over the library file's bytes exactly as published; the
//! signature file also carries the file's SHA-256 so that a mismatch is
//! reported as "another file", not merely "bad signature".

use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::link::sha256;

/// The `format` of a signature file.
pub const FORMAT: &str = "pumpgw-library-signature";

/// A detached signature file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
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
    /// The signature file does not parse.
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
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| SignatureError::BadKey {
        path: "(new key)".to_owned(),
        detail: e.to_string(),
    })?;
    Ok((pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec()))
}

/// Signs a library file's bytes with a PKCS#8 key.
pub fn sign(
    library: &[u8],
    pkcs8: &[u8],
    key_path: &Path,
) -> Result<SignatureFile, SignatureError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| SignatureError::BadKey {
        path: key_path.display().to_string(),
        detail: e.to_string(),
    })?;
    let public = pair.public_key().as_ref();
    Ok(SignatureFile {
        format: FORMAT.to_owned(),
        format_version: 1,
        algorithm: "ed25519".to_owned(),
        key_id: key_id(public),
        public_key: hex::encode(public),
        library_sha256: hex::encode(sha256(library)),
        signature: hex::encode(pair.sign(library).as_ref()),
    })
}

/// Checks a signature file against a library's bytes and the trusted
/// public keys (raw 32-byte Ed25519 keys); returns the signing key's id.
pub fn verify(
    library: &[u8],
    signature: &[u8],
    trusted: &[Vec<u8>],
) -> Result<String, SignatureError> {
    let sig: SignatureFile = serde_json::from_slice(signature)
        .map_err(|e| SignatureError::BadSignatureFile(e.to_string()))?;
    if sig.format != FORMAT || sig.format_version != 1 || sig.algorithm != "ed25519" {
        return Err(SignatureError::BadSignatureFile(format!(
            "format {:?} version {} algorithm {:?} is not {FORMAT} version 1 ed25519",
            sig.format, sig.format_version, sig.algorithm
        )));
    }
    let actual = hex::encode(sha256(library));
    if sig.library_sha256 != actual {
        return Err(SignatureError::OtherFile {
            signed: sig.library_sha256,
            actual,
        });
    }
    // Trust comes from the gateway's list, never from the file: the public
    // key in the signature file only says which trusted key to use.
    let Some(key) = trusted.iter().find(|k| key_id(k) == sig.key_id) else {
        return Err(SignatureError::UntrustedKey(sig.key_id));
    };
    let bytes = hex::decode(&sig.signature)
        .map_err(|e| SignatureError::BadSignatureFile(format!("signature: {e}")))?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(library, &bytes)
        .map_err(|_| SignatureError::Invalid(sig.key_id.clone()))?;
    Ok(sig.key_id)
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

    #[test]
    fn sign_and_verify() {
        let (pkcs8, public) = generate().unwrap();
        let library = br#"{"format":"pumpgw-drug-library"}"#;
        let sig = sign(library, &pkcs8, Path::new("k")).unwrap();
        let file = serde_json::to_vec(&sig).unwrap();
        assert_eq!(
            verify(library, &file, std::slice::from_ref(&public)).unwrap(),
            key_id(&public)
        );
        // One byte changed.
        let mut altered = library.to_vec();
        altered[3] ^= 1;
        assert!(matches!(
            verify(&altered, &file, std::slice::from_ref(&public)),
            Err(SignatureError::OtherFile { .. })
        ));
        // A forged signature with the right hash.
        let mut forged = sig.clone();
        forged.signature = hex::encode([7u8; 64]);
        let forged = serde_json::to_vec(&forged).unwrap();
        assert!(matches!(
            verify(library, &forged, &[public]),
            Err(SignatureError::Invalid(_))
        ));
        // A key nobody trusts.
        let (_, other) = generate().unwrap();
        assert!(matches!(
            verify(library, &file, &[other]),
            Err(SignatureError::UntrustedKey(_))
        ));
    }
}
