//! `pumpgwd library keygen` and `library sign`: the pharmacy's side of
//! configuration control.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pumpgw::library::{self, Severity, signature};

/// Writes a new Ed25519 key (PKCS#8, mode 0600) and its public half.
pub(crate) fn keygen(out: &Path) -> Result<u8> {
    let public_path = public_path(out);
    for p in [out, public_path.as_path()] {
        if p.exists() {
            bail!("{} exists; refusing to overwrite a key", p.display());
        }
    }
    let (pkcs8, public) = signature::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    f.write_all(&pkcs8)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&public_path, format!("{}\n", hex::encode(&public)))
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    println!(
        "key {}: private key {} (mode 0600: keep it off the network), public key {}",
        signature::key_id(&public),
        out.display(),
        public_path.display()
    );
    println!(
        "Give {} to every gateway that must trust this pharmacy.",
        public_path.display()
    );
    Ok(0)
}

/// Lints, then signs a library file; writes FILE.sig (or `out`).
pub(crate) fn sign(file: &Path, key: &Path, out: Option<&Path>) -> Result<u8> {
    let mode = std::fs::metadata(key)
        .with_context(|| format!("cannot read {}", key.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:o}); run `chmod 600 {}` first",
            key.display(),
            mode & 0o777,
            key.display()
        );
    }
    let pkcs8 = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let checked = library::check(&bytes);
    let errors: Vec<_> = checked
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if !errors.is_empty() {
        for f in &errors {
            eprintln!("{f}");
        }
        eprintln!(
            "pumpgwd: {} has {} error(s); not signed (run `pumpgwd library lint`)",
            file.display(),
            errors.len()
        );
        return Ok(1);
    }
    let sig = signature::sign(&bytes, &pkcs8, key)?;
    let out = out.map_or_else(|| signature_path(file), Path::to_path_buf);
    let text = serde_json::to_string_pretty(&sig)? + "\n";
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    let version = checked.library.as_ref().map_or(0, |l| l.version);
    println!(
        "signed {} (version {version}, SHA-256 {}) with key {}: {}",
        file.display(),
        sig.library_sha256,
        sig.key_id,
        out.display()
    );
    Ok(0)
}

fn public_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// `FILE.sig`.
pub(crate) fn signature_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}
