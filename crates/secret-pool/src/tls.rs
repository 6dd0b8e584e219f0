//! The rustls client configuration for `verify-full` connections, using the
//! aws-lc-rs provider that the AWS SDK also uses. Certificates are never
//! fetched at run time: they come from a PEM file or the bundled roots.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::Error;

/// Builds the TLS connector: certificates and hostnames are always verified.
pub(crate) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, Error> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Tls(format!("no usable TLS versions: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, Error> {
    let failed = |reason: String| Error::Tls(format!("CA file {}: {reason}", path.display()));
    let pem = std::fs::read(path).map_err(|error| failed(format!("cannot be read: {error}")))?;
    let certificates: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|error| failed(format!("is not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(failed(
            "holds no certificate; pass a PEM file of CA certificates".to_owned(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| failed(format!("has an unusable certificate: {error}")))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_without_certificates_is_rejected() {
        let dir = std::env::temp_dir().join(format!("secret-pool-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let message = connector(Some(&path)).err().unwrap().to_string();
        assert!(message.contains("no certificate"), "{message}");
    }

    #[test]
    fn missing_file_is_named_in_the_error() {
        let message = connector(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn bundled_roots_build_a_connector() {
        assert!(connector(None).is_ok());
    }
}
