//! The gateway's identity on the network: its MQTT client certificate. Owns
//! the checks a biomedical engineer needs before a gateway goes on a ward
//! (the key is the certificate's, the certificate is in its dates) and the
//! fingerprint the hospital's PKI team compares with what they issued.

use std::path::Path;

use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use time::OffsetDateTime;

#[cfg(doc)]
use super::settings::check_private;
use super::settings::{SettingsError, pem_error, read_certificates};

/// What the certificate says about this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Subject, e.g. `CN=ward7-bed12`.
    pub subject: String,
    /// Issuer, e.g. `CN=St Elsewhere Devices CA`.
    pub issuer: String,
    /// Valid from.
    pub not_before: OffsetDateTime,
    /// Valid until.
    pub not_after: OffsetDateTime,
    /// SHA-256 of the certificate's DER, as `AB:CD:...` (what `openssl
    /// x509 -fingerprint -sha256` prints).
    pub fingerprint: String,
}

/// Fewer days left than this, and it is time to ask for the next one.
pub const RENEW_WITHIN_DAYS: i64 = 30;

impl Identity {
    /// Whole days left before it expires (0 on its last day).
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }
}

/// Why the certificate and key cannot identify this gateway.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file cannot be read, holds no PEM block, or the key is exposed.
    #[error(transparent)]
    Files(#[from] SettingsError),
    /// The certificate does not parse as X.509.
    #[error("{path}: not an X.509 certificate: {detail}")]
    Parse {
        /// The certificate file.
        path: String,
        /// What the parser said.
        detail: String,
    },
    /// The key is not the certificate's.
    #[error(
        "the key in {key} is not the key of the certificate in {cert}: the broker would refuse the gateway (were they issued together?)"
    )]
    Mismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// The key cannot be used (a kind ring does not sign with).
    #[error("{path}: {detail}")]
    Key {
        /// The key file.
        path: String,
        /// Why.
        detail: String,
    },
    /// Past its end date.
    #[error("{path} expired on {date}: ask the PKI team for a new certificate")]
    Expired {
        /// The certificate file.
        path: String,
        /// Its end, as a date.
        date: String,
    },
    /// Before its start date (or this board's clock is wrong).
    #[error("{path} is not valid before {date}: is this board's clock right?")]
    NotYetValid {
        /// The certificate file.
        path: String,
        /// Its start, as a date.
        date: String,
    },
}

/// Reads the certificate (the first of the chain is the gateway's) and its
/// key, and checks that they belong together and that `now` is within the
/// certificate's dates. The key file's mode is the caller's to check
/// ([`check_private`]): provisioning reads keys from a stick whose file
/// system has no modes, and writes its own copy mode 0600.
pub fn read(cert: &Path, key: &Path, now: OffsetDateTime) -> Result<Identity, IdentityError> {
    let cert_name = cert.display().to_string();
    let chain = read_certificates(cert)?;
    let first = chain
        .first()
        .expect("read_certificates returns at least one");
    let (_, parsed) =
        x509_parser::parse_x509_certificate(first).map_err(|e| IdentityError::Parse {
            path: cert_name.clone(),
            detail: e.to_string(),
        })?;
    let not_before = parsed.validity().not_before.to_datetime();
    let not_after = parsed.validity().not_after.to_datetime();
    let identity = Identity {
        subject: parsed.subject().to_string(),
        issuer: parsed.issuer().to_string(),
        not_before,
        not_after,
        fingerprint: fingerprint(first),
    };

    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain.clone(), key_der, &provider) {
        Ok(_) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(IdentityError::Mismatch {
                cert: cert_name,
                key: key.display().to_string(),
            });
        }
        Err(e) => {
            return Err(IdentityError::Key {
                path: key.display().to_string(),
                detail: e.to_string(),
            });
        }
    }

    if now > not_after {
        return Err(IdentityError::Expired {
            path: cert_name,
            date: date(not_after),
        });
    }
    if now < not_before {
        return Err(IdentityError::NotYetValid {
            path: cert_name,
            date: date(not_before),
        });
    }
    Ok(identity)
}

/// SHA-256 of DER bytes as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A date as people write it in a report: `2027-11-21 14:05 UTC`.
pub fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_sha256_in_openssl_form() {
        // SHA-256 of the empty string.
        let f = fingerprint(b"");
        assert!(f.starts_with("E3:B0:C4:42:98:FC:1C:14"), "{f}");
        assert_eq!(f.len(), 32 * 3 - 1);
    }

    #[test]
    fn dates_read_as_utc() {
        let t = time::macros::datetime!(2027-03-04 05:06 +01:00);
        assert_eq!(date(t), "2027-03-04 04:06 UTC");
    }

    #[test]
    fn a_file_that_is_not_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("gw.pem");
        std::fs::write(&cert, "hello\n").unwrap();
        let e = read(&cert, &dir.path().join("gw.key"), OffsetDateTime::now_utc())
            .unwrap_err()
            .to_string();
        assert!(e.contains("gw.pem") && e.contains("no CERTIFICATE"), "{e}");
    }
}
