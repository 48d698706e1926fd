//! Bench set-up for the demo, tests and benchmarks: put a library into a
//! gateway's store the honest way (signed, verified, imported, activated),
//! with throwaway keys (a proposer and an approver) made for the occasion
//! and trusted for this one import only. Real gateways import pharmacy-signed files with
//! `pumpgwd library import`.

use std::path::Path;

use crate::library::signature;
use crate::store::library::{self, LibraryError};
use crate::store::{Context, Store};

/// Why the bench library could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The store or the import refused.
    #[error(transparent)]
    Library(#[from] LibraryError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// No key could be made.
    #[error(transparent)]
    Key(#[from] signature::SignatureError),
}

/// Imports and activates `file` in the store under `data_dir`, unless a
/// library is already active there. Returns the active version.
pub fn install_library(
    data_dir: &Path,
    gateway: &str,
    care_area: &str,
    file: &[u8],
) -> Result<u64, InstallError> {
    std::fs::create_dir_all(data_dir).map_err(|source| crate::store::StoreError::Sqlite {
        path: data_dir.to_path_buf(),
        source: rusqlite::Error::ToSqlConversionFailure(Box::new(source)),
    })?;
    let mut store = Store::open(&Store::file_in(data_dir))?;
    if let Some((version, _)) = library::active(&store)? {
        return Ok(version);
    }
    // Two keys, so that the bench library passes the default of one
    // approval the way a real one does: proposed, then approved.
    let (proposer, proposer_public) = signature::generate()?;
    let (approver, approver_public) = signature::generate()?;
    let at = crate::store::record::time_text(time::OffsetDateTime::now_utc());
    let mut signed = signature::propose(
        file,
        &proposer,
        Path::new("bench key"),
        "Bench proposer",
        &at,
    )?;
    signature::approve(
        file,
        &mut signed,
        &approver,
        Path::new("bench approver key"),
        "Bench approver",
        &at,
    )?;
    let signed = serde_json::to_vec(&signed).expect("a signature file serialises");
    let trusted = [proposer_public, approver_public];
    let context = Context {
        gateway: gateway.to_owned(),
        pump: None,
        care_area: care_area.to_owned(),
        library_version: None,
    };
    let trust = library::Trust {
        keys: &trusted,
        approvals: 1,
    };
    let archived = library::import(&mut store, &context, file, &signed, trust, "bench")?;
    library::activate(
        &mut store,
        &context,
        archived.version,
        "bench",
        "bench set-up",
    )?;
    Ok(archived.version)
}
