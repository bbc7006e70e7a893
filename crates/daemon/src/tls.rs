//! TLS for a listener (rustls, ring): the certificate chain and private key from PEM files,
//! the key file mode-checked like every secret. Shared by the listeners that may face a
//! network (the token API; the public listener).

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
pub use tokio_rustls::TlsAcceptor;

pub fn acceptor(cert_file: &Path, key_file: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| {
            format!(
                "cannot read TLS certificate file {} (tls_cert_file)",
                cert_file.display()
            )
        })?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "TLS certificate file {} is not PEM certificates (tls_cert_file)",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "TLS certificate file {} holds no certificate (tls_cert_file); give a PEM chain, leaf first",
            cert_file.display()
        );
    }
    let mut file = std::fs::File::open(key_file).with_context(|| {
        format!(
            "cannot read TLS key file {} (tls_key_file)",
            key_file.display()
        )
    })?;
    qbo_core::file_modes::refuse_shared_secret(&file, key_file, "tls_key_file")?;
    let mut pem = zeroize::Zeroizing::new(Vec::new());
    file.read_to_end(&mut pem).with_context(|| {
        format!(
            "cannot read TLS key file {} (tls_key_file)",
            key_file.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        anyhow::anyhow!(
            "TLS key file {} holds no PEM private key (tls_key_file)",
            key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the TLS key in {} does not fit the certificate in {}",
                key_file.display(),
                cert_file.display()
            )
        })?;
    // Both listeners speak HTTP/1.1 only; saying so lets clients skip asking for h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
