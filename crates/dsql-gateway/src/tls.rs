//! The gateway's TLS identity: a certificate and key from files, or a fresh
//! CA and a certificate for the gateway's hostname made at start. The CA can
//! be written out so clients can use `sslmode=verify-full`.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// A certificate chain and key for the gateway, plus the PEM of the CA that
/// clients should trust (when the gateway made it).
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca_pem: Option<String>,
}

impl TlsIdentity {
    /// Makes a new CA and a certificate for `hostname` signed by it. The CA
    /// key exists only in memory and is dropped after signing.
    pub fn generate(hostname: &str) -> Result<Self, Error> {
        let tls_error =
            |error: rcgen::Error| Error::Tls(format!("certificate generation failed: {error}"));

        let ca_key = KeyPair::generate().map_err(tls_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "dsql-secrets local gateway CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;

        let leaf_key = KeyPair::generate().map_err(tls_error)?;
        let mut leaf_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, hostname);
        leaf_params.subject_alt_names =
            vec![match hostname.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(hostname.to_owned().try_into().map_err(|_| {
                    Error::Tls(format!("{hostname:?} cannot be a certificate name"))
                })?),
            }];
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &issuer)
            .map_err(tls_error)?;

        Ok(Self {
            chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            ca_pem: Some(ca_cert.pem()),
        })
    }

    /// Loads a PEM certificate chain and private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|error| Error::Tls(format!("cannot read {}: {error}", path.display())))
        };
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;

        let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                Error::Tls(format!(
                    "{} is not a PEM certificate file: {error}",
                    cert.display()
                ))
            })?;
        if chain.is_empty() {
            return Err(Error::Tls(format!(
                "{} contains no certificate",
                cert.display()
            )));
        }
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|error| {
                Error::Tls(format!("{} is not a PEM key file: {error}", key.display()))
            })?
            .ok_or_else(|| Error::Tls(format!("{} contains no private key", key.display())))?;
        Ok(Self {
            chain,
            key,
            ca_pem: None,
        })
    }

    /// Returns the PEM of the CA clients should trust, when the gateway made it.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Builds the rustls server configuration (TLS 1.2 and 1.3, aws-lc-rs).
    pub(crate) fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| Error::Tls(error.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|error| Error::Tls(format!("certificate and key do not match: {error}")))?;
        Ok(Arc::new(config))
    }
}
