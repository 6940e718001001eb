//! The simulator's private certificate authority and its server certificate.
//!
//! Clients trust the simulator only through `AWS_CA_BUNDLE`, exactly as they
//! would trust a corporate proxy's CA, so nothing in the client needs a
//! "danger: accept any certificate" switch.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA certificate (PEM) and a TLS server configuration whose certificate
/// it signed, valid for `localhost`, `127.0.0.1`, `::1` and the simulated
/// endpoints' names in the region.
pub(crate) struct Tls {
    pub ca_pem: String,
    /// For the HTTPS API listener (advertises `http/1.1` by ALPN).
    pub api_config: Arc<rustls::ServerConfig>,
    /// For the websocket listeners (no ALPN, as the EICE service).
    pub ws_config: Arc<rustls::ServerConfig>,
}

fn other<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: {e}"))
}

/// Creates a fresh CA and a server certificate.
pub(crate) fn build(region: &str, dns_tag: &str) -> io::Result<Tls> {
    let ca_key = KeyPair::generate().map_err(other("generating the CA key"))?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(other("CA parameters"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "eic-ssh simulator CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(other("self-signing the CA"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        // The endpoint ID is the first label: one wildcard covers them all.
        format!("*.{dns_tag}.ec2-instance-connect-endpoint.{region}.amazonaws.com"),
        format!("*.{dns_tag}.fips.ec2-instance-connect-endpoint.{region}.amazonaws.com"),
        format!("*.{dns_tag}.dualstack.ec2-instance-connect-endpoint.{region}.api.aws"),
    ];
    let mut leaf_params = CertificateParams::new(names).map_err(other("server parameters"))?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(other("generating the server key"))?;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(other("signing the server certificate"))?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let api_config = server_config(chain.clone(), key.clone_key(), vec![b"http/1.1".to_vec()])?;
    let ws_config = server_config(chain, key, Vec::new())?;
    Ok(Tls {
        ca_pem: ca_cert.pem(),
        api_config,
        ws_config,
    })
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: Vec<Vec<u8>>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    // Name the provider explicitly: the process may have no default installed.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other("TLS versions"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(other("TLS server certificate"))?;
    config.alpn_protocols = alpn;
    Ok(Arc::new(config))
}
