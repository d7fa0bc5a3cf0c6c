//! Certificate pinning: the agent trusts the one certificate whose SHA-256
//! it recorded at enrollment, whatever CA signed it (self-signed included).
//! Signatures of the handshake are still verified, so a peer must hold the
//! pinned certificate's private key.

use levee_proto::Fingerprint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The crypto provider (ring), as on the server.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the verifier accepts.
#[derive(Debug)]
pub enum Trust {
    /// Exactly this certificate.
    Pinned(Fingerprint),
    /// Any certificate, recording its fingerprint (trust on first use, for
    /// enrollment without a fingerprint given).
    FirstUse(Mutex<Option<Fingerprint>>),
}

#[derive(Debug)]
pub struct PinVerifier {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    pub fn new(trust: Trust) -> Self {
        PinVerifier {
            trust,
            provider: provider(),
        }
    }

    /// The fingerprint seen (first use) or pinned.
    pub fn seen(&self) -> Option<Fingerprint> {
        match &self.trust {
            Trust::Pinned(f) => Some(*f),
            Trust::FirstUse(m) => *m.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of_der(end_entity.as_ref());
        match &self.trust {
            Trust::Pinned(want) if *want == got => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(want) => {
                tracing::error!(
                    "server certificate {got} is not the pinned {want}: refusing (re-enroll if the server's certificate was replaced)"
                );
                Err(rustls::Error::General(format!(
                    "server certificate {got} does not match the pinned fingerprint {want}"
                )))
            }
            Trust::FirstUse(seen) => {
                *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(got);
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client config trusting per `verifier`.
pub fn client_config(verifier: Arc<PinVerifier>) -> rustls::ClientConfig {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    cfg
}
