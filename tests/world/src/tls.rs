//! TLS for the simulator: a fresh self-signed CA per world and a server certificate for
//! 127.0.0.1/localhost (and `*.proxied.invalid`, the forward proxy's names) signed by it, served by rustls with the aws-lc-rs provider.
//! Clients only send bearer tokens over HTTPS, so the simulator never speaks plain HTTP.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Key or certificate generation failed.
    #[error("failed to generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("failed to configure TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The CA and the server's TLS configuration.
pub struct Tls {
    /// The CA certificate in PEM form (for kubeconfigs and EKS `certificateAuthority`).
    pub ca_pem: String,
    /// The rustls server configuration (HTTP/1.1 only).
    pub server_config: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// Generates a CA and a server certificate for the loopback names.
    pub fn generate() -> Result<Self, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name.push(DnType::CommonName, "azp-kube-world CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            // Names only the world's forward proxy resolves (see crate::forward_proxy).
            format!("*.{}", crate::forward_proxy::PROXIED_DOMAIN),
        ])?;
        params.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
        let server_cert = params.signed_by(&server_key, &issuer)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let chain =
            vec![CertificateDer::from(server_cert.der().to_vec()), CertificateDer::from(ca_cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { ca_pem: ca_cert.pem(), server_config: Arc::new(config) })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_a_pem_ca() {
        let tls = super::Tls::generate().expect("tls");
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
