//! TLS on the EHR listener: the gateway's certificate, and the EHR's
//! client certificate required, signed by the configured CA (as the
//! broker asks of the gateway for MQTT). On ring, like the MQTT client.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, pem::PemObject as _};
use tokio_rustls::TlsAcceptor;

use crate::sync::settings::{SettingsError, check_private, pem_error, read_certificates};

/// The listener's TLS: present `cert` (with `key`), and accept only
/// clients whose certificate `client_ca` signed.
pub fn acceptor(cert: &Path, key: &Path, client_ca: &Path) -> Result<TlsAcceptor, SettingsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certificates(client_ca)? {
        roots.add(c).map_err(SettingsError::Tls)?;
    }
    let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| SettingsError::Pem {
        path: client_ca.display().to_string(),
        detail: e.to_string(),
    })?;
    let chain = read_certificates(cert)?;
    check_private(key)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key_der)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
