//! The library the gateway runs on: the parsed model for the cross-check,
//! and the exact file bytes with their SHA-256 for pushing to pumps and for
//! telling whether a pump runs the same one.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{Finding, Library, LoadError, parse};
use crate::link::sha256;

/// A library file accepted for use.
#[derive(Debug)]
pub struct ActiveLibrary {
    /// The parsed library.
    pub library: Library,
    /// The file, byte for byte.
    pub bytes: Bytes,
    /// SHA-256 of `bytes`.
    pub hash: [u8; 32],
}

impl ActiveLibrary {
    /// Parses and checks library bytes; refused on any error finding.
    pub fn from_bytes(bytes: Bytes) -> Result<(Arc<ActiveLibrary>, Vec<Finding>), LoadError> {
        let (library, findings) = parse(&bytes)?;
        let hash = sha256(&bytes);
        Ok((
            Arc::new(ActiveLibrary {
                library,
                bytes,
                hash,
            }),
            findings,
        ))
    }

    /// Reads a library file.
    pub fn load(path: &Path) -> Result<(Arc<ActiveLibrary>, Vec<Finding>), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(Bytes::from(bytes))
    }

    /// The library's version.
    pub fn version(&self) -> u64 {
        self.library.version
    }

    /// First 8 bytes of the hash in hex, for people.
    pub fn short_hash(&self) -> String {
        hex::encode(&self.hash[..8])
    }
}
