//! TLS to mirrors: one rustls client configuration, made at start-up, that
//! every https connection uses (SNI, ALPN `http/1.1`, session resumption).
//!
//! Trust is what OpenSSL gives apt-cacher-ng: the system's store, plus
//! `CAfile` and the certificates in `CApath`, so a private CA adds to the
//! public ones instead of replacing them. webpki-roots stand in only when
//! none of those yields a certificate (a container without
//! ca-certificates). `NoSSLchecks: 1` accepts any certificate; the
//! configuration report warns about it.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, CipherSuite, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::config::TlsConfig;

/// Where the trust anchors came from, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Trust {
    pub system: usize,
    pub ca_file: usize,
    pub ca_path: usize,
    /// webpki-roots stood in for an empty store.
    pub fallback: bool,
    /// `NoSSLchecks`: nothing is verified.
    pub unchecked: bool,
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unchecked {
            return f.write_str("certificates are not verified (NoSSLchecks)");
        }
        if self.fallback {
            return f.write_str("no system certificates; using the built-in Mozilla roots");
        }
        write!(f, "{} system certificates", self.system)?;
        if self.ca_file > 0 {
            write!(f, ", {} from CAfile", self.ca_file)?;
        }
        if self.ca_path > 0 {
            write!(f, ", {} from CApath", self.ca_path)?;
        }
        Ok(())
    }
}

/// A trust setting that cannot be used: the daemon does not start with it.
#[derive(Debug)]
pub enum SetupError {
    /// `CAfile` cannot be read or holds no certificate.
    CaFile { path: PathBuf, why: String },
    /// rustls refused the protocol settings (a bug, not a configuration).
    Protocol(rustls::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::CaFile { path, why } => write!(f, "CAfile {}: {why}", path.display()),
            SetupError::Protocol(e) => write!(f, "TLS set-up: {e}"),
        }
    }
}

impl std::error::Error for SetupError {}

/// Why a TLS connection to a mirror failed, in the words an administrator
/// needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFailure {
    Expired,
    /// Valid, but for another host name.
    WrongName,
    /// Signed by a CA nobody here trusts (or self-signed).
    UnknownIssuer,
    /// Any other certificate problem (revoked, not yet valid, bad usage...).
    BadCertificate,
    /// The handshake failed before a certificate was judged.
    Handshake,
}

impl TlsFailure {
    /// Sorts a rustls error.
    pub fn of(error: &rustls::Error) -> TlsFailure {
        match error {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsFailure::Expired,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    TlsFailure::WrongName
                }
                CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
                _ => TlsFailure::BadCertificate,
            },
            _ => TlsFailure::Handshake,
        }
    }

    /// The reason phrase of the `503` clients get.
    pub fn reason(self) -> &'static str {
        match self {
            TlsFailure::Expired => "TLS certificate of the mirror has expired",
            TlsFailure::WrongName => "TLS certificate of the mirror is for another host name",
            TlsFailure::UnknownIssuer => "TLS certificate of the mirror has an unknown issuer",
            TlsFailure::BadCertificate => "TLS certificate of the mirror is not valid",
            TlsFailure::Handshake => "TLS handshake with the mirror failed",
        }
    }
}

/// The client configuration and what it trusts.
pub fn client_config(config: &TlsConfig) -> Result<(Arc<ClientConfig>, Trust), SetupError> {
    let mut provider = ring::default_provider();
    // AES-128-GCM first (ring's order puts AES-256 first): as strong as a
    // mirror needs, and a third less CPU per byte on every download.
    provider.cipher_suites.sort_by_key(|s| {
        !matches!(
            s.suite(),
            CipherSuite::TLS13_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(SetupError::Protocol)?;
    let (mut tls, trust) = if config.no_tls_checks {
        let verifier = Arc::new(Unchecked(provider));
        let tls = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        (
            tls,
            Trust {
                unchecked: true,
                ..Trust::default()
            },
        )
    } else {
        let (roots, trust) = roots(config.ca_file.as_deref(), config.ca_path.as_deref())?;
        (builder.with_root_certificates(roots).with_no_client_auth(), trust)
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(tls), trust))
}

fn roots(ca_file: Option<&Path>, ca_path: Option<&Path>) -> Result<(RootCertStore, Trust), SetupError> {
    let mut store = RootCertStore::empty();
    let mut trust = Trust::default();
    // The default CApath is the system store again (hash links and
    // bundles): only certificates not seen yet count.
    let mut seen = HashSet::new();
    let mut add = |store: &mut RootCertStore, certs: Vec<CertificateDer<'static>>| {
        let new: Vec<_> = certs
            .into_iter()
            .filter(|c| seen.insert(c.as_ref().to_vec()))
            .collect();
        store.add_parsable_certificates(new).0
    };
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("system certificates: {e}");
    }
    trust.system = add(&mut store, native.certs);
    if let Some(path) = ca_file {
        let certs = read_pem(path).map_err(|why| SetupError::CaFile {
            path: path.to_path_buf(),
            why,
        })?;
        let usable = certs.len();
        trust.ca_file = add(&mut store, certs);
        if usable == 0 {
            return Err(SetupError::CaFile {
                path: path.to_path_buf(),
                why: "no usable certificate in it".into(),
            });
        }
    }
    if let Some(dir) = ca_path {
        trust.ca_path = add(&mut store, read_dir(dir));
    }
    if store.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        trust.fallback = true;
    }
    Ok((store, trust))
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&e))?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not PEM: {other:?}"),
    }
}

/// Every certificate in the PEM files of `dir` (OpenSSL's hash links and
/// the bundles alike); files that are not certificates are skipped, as
/// OpenSSL skips them. A missing directory adds nothing.
fn read_dir(dir: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::debug!("CApath {}: not a readable directory", dir.display());
        return Vec::new();
    };
    let mut certs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            certs.extend(read_pem(&path).unwrap_or_default());
        }
    }
    certs
}

/// `NoSSLchecks: 1`: any certificate for any name. Handshake signatures are
/// still checked, so the connection is encrypted to whoever answered.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(matches!(roots(Some(&path), None), Err(SetupError::CaFile { .. })));
        let missing = dir.path().join("missing.pem");
        let e = roots(Some(&missing), None).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }

    #[test]
    fn a_missing_ca_path_adds_nothing() {
        let (_, trust) = roots(None, Some(Path::new("/nonexistent/certs"))).unwrap();
        assert_eq!(trust.ca_path, 0);
    }

    #[test]
    fn certificate_errors_are_sorted() {
        let e = |c| rustls::Error::InvalidCertificate(c);
        assert_eq!(TlsFailure::of(&e(CertificateError::Expired)), TlsFailure::Expired);
        assert_eq!(
            TlsFailure::of(&e(CertificateError::NotValidForName)),
            TlsFailure::WrongName
        );
        assert_eq!(
            TlsFailure::of(&e(CertificateError::UnknownIssuer)),
            TlsFailure::UnknownIssuer
        );
        assert_eq!(
            TlsFailure::of(&e(CertificateError::Revoked)),
            TlsFailure::BadCertificate
        );
        assert_eq!(
            TlsFailure::of(&rustls::Error::HandshakeNotComplete),
            TlsFailure::Handshake
        );
    }
}
