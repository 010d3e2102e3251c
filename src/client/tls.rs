//! The TLS configuration for `--cacert`: the certificates of the file as
//! extra trust anchors (beside the built-in and system roots, as reqwest
//! would add them), and one exception to standard verification: a server
//! certificate that is byte-identical to one in the file is trusted even
//! when it is a CA certificate (CA:TRUE), as `openssl req -x509` makes a
//! self-signed one, which rustls otherwise refuses as a server's own. Its
//! validity dates and its name are still checked, and the server must
//! still prove it holds the certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// The certificates of a PEM file, DER-encoded; empty when it holds none.
pub fn pem_certificates(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

/// A rustls client configuration that trusts `cacert` (besides the
/// built-in and, with `system_roots`, the system's roots) with the
/// byte-identical exception above. Fails when the verifier cannot be
/// built (no usable trust anchor at all).
pub fn config_with_cacert(
    cacert: Vec<CertificateDer<'static>>,
    system_roots: bool,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(cacert, system_roots, &provider)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn verifier(
    cacert: Vec<CertificateDer<'static>>,
    system_roots: bool,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<PinnedOrStandard, String> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(cacert.iter().cloned());
    if system_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Unreadable or odd system certificates are skipped, as reqwest does.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    Ok(PinnedOrStandard {
        inner,
        pinned: cacert,
    })
}

/// Standard verification, except that a CA:TRUE server certificate
/// byte-identical to a `pinned` one passes when its dates and name do.
#[derive(Debug)]
struct PinnedOrStandard {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

/// Whether standard verification refused `error` only because the server's
/// certificate is a CA certificate. webpki checks the validity dates of
/// the server's certificate before its basic constraints, so this error
/// also says that the dates were valid (the tests of an expired and a
/// not-yet-valid certificate keep that true).
fn only_a_ca_certificate(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

impl ServerCertVerifier for PinnedOrStandard {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let error = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(error) => error,
        };
        let pinned = self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref());
        if !pinned || !only_a_ca_certificate(&error) {
            return Err(error);
        }
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        log::info!("trusting the server's CA certificate as its own: it is in --cacert");
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1, CA:TRUE or not, valid
    /// from `not_before` to `not_after` (years).
    fn certificate(
        ca: bool,
        names: &[&str],
        not_before: i32,
        not_after: i32,
    ) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verify(
        pinned: &CertificateDer<'static>,
        served: &CertificateDer<'static>,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = verifier(vec![pinned.clone()], false, &provider).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(served, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_pinned_self_signed_ca_certificate_is_trusted_for_its_name() {
        let cert = certificate(true, &["127.0.0.1", "lab.example"], 2020, 2999);
        verify(&cert, &cert, "127.0.0.1").unwrap();
        verify(&cert, &cert, "lab.example").unwrap();
        // A self-signed end-entity certificate is trusted the standard way.
        let plain = certificate(false, &["127.0.0.1"], 2020, 2999);
        verify(&plain, &plain, "127.0.0.1").unwrap();
    }

    #[test]
    fn a_pinned_ca_certificate_still_needs_its_name_and_dates() {
        let cert = certificate(true, &["127.0.0.1"], 2020, 2999);
        let e = verify(&cert, &cert, "other.example").unwrap_err();
        assert!(format!("{e:?}").contains("NotValidForName"), "{e:?}");
        let expired = certificate(true, &["127.0.0.1"], 2000, 2001);
        let e = verify(&expired, &expired, "127.0.0.1").unwrap_err();
        assert!(format!("{e:?}").contains("Expired"), "{e:?}");
        let future = certificate(true, &["127.0.0.1"], 2990, 2999);
        let e = verify(&future, &future, "127.0.0.1").unwrap_err();
        assert!(format!("{e:?}").contains("NotValidYet"), "{e:?}");
    }

    #[test]
    fn only_the_identical_certificate_is_excepted() {
        // Another CA:TRUE certificate with the same name is not the pinned one.
        let pinned = certificate(true, &["127.0.0.1"], 2020, 2999);
        let other = certificate(true, &["127.0.0.1"], 2020, 2999);
        let e = verify(&pinned, &other, "127.0.0.1").unwrap_err();
        assert!(format!("{e:?}").contains("CaUsedAsEndEntity"), "{e:?}");
    }

    #[test]
    fn pem_files_give_their_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let a = rcgen::CertificateParams::new(vec!["a".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = format!("junk\n{}\n{}", a.pem(), a.pem());
        let certs = pem_certificates(pem.as_bytes());
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), a.der().as_ref());
        assert!(pem_certificates(b"no pem here").is_empty());
    }
}
