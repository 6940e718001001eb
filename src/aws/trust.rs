//! Trust: the system's root certificates and `AWS_CA_BUNDLE`, shared by
//! the SDK's HTTPS client and the tunnel; and aws-lc's generator, seeded early.

use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;

/// aws-lc seeds its random number generator once per process from CPU
/// jitter: about 50 ms of busy CPU on the machine the benches ran on. The
/// first TLS handshake would wait for it; seeding on a helper thread while
/// the configuration loads and the socket connects takes it off the critical
/// path. Each thread's generator then seeds cheaply from the process-wide one.
pub(super) fn seed_rng_in_background() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let seeded = std::thread::Builder::new()
            .name("rng-seed".into())
            .stack_size(256 * 1024)
            .spawn(|| {
                let mut byte = [0u8; 1];
                let provider = rustls::crypto::aws_lc_rs::default_provider();
                if provider.secure_random.fill(&mut byte).is_err() {
                    tracing::debug!("seeding the random number generator failed");
                }
            });
        if let Err(e) = seeded {
            tracing::debug!("not seeding the random number generator early: {e}");
        }
    });
}

/// The AWS CLI's `AWS_CA_BUNDLE`, else the `ca_bundle` of the profile in
/// effect in `profiles`.
pub(super) async fn load_ca_bundle(
    profiles: Option<&aws_config::profile::ProfileSet>,
) -> Result<Option<Vec<u8>>, Error> {
    let path = match std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match profiles.and_then(|p| p.get("ca_bundle").map(PathBuf::from)) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let pem = tokio::fs::read(&path).await.map_err(|e| Error::CaBundle {
        path: path.clone(),
        source: e.into(),
    })?;
    let count = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::CaBundle {
            path: path.clone(),
            source: e.into(),
        })?
        .len();
    if count == 0 {
        return Err(Error::CaBundle {
            path,
            source: "it contains no PEM certificate".into(),
        });
    }
    Ok(Some(pem))
}

/// Where the system's trusted root certificates come from.
pub(super) enum SystemRoots {
    /// The certificates of the system's CA bundle file.
    Bundle(Vec<rustls::pki_types::CertificateDer<'static>>),
    /// Whatever `rustls-native-certs` finds: `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` when set, else the system's file and directory.
    Native,
}

impl SystemRoots {
    /// The system CA bundle file OpenSSL uses (`/etc/ssl/certs/ca-certificates.crt`,
    /// `/etc/pki/tls/certs/ca-bundle.crt`, ...), read once. Distributions keep
    /// it in step with the hashed certificate directory beside it, which
    /// would otherwise be read too: some 150 more files, each certificate
    /// parsed twice, before every tunnel. With `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` set, or no readable bundle, both are read as OpenSSL
    /// would.
    pub(super) fn find() -> SystemRoots {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
            return SystemRoots::Native;
        }
        let Some(file) = openssl_probe::probe().cert_file else {
            return SystemRoots::Native;
        };
        let Ok(pem) = std::fs::read(&file) else {
            return SystemRoots::Native;
        };
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .collect();
        match certs.is_empty() {
            true => SystemRoots::Native,
            false => SystemRoots::Bundle(certs),
        }
    }
}

/// rustls client settings for the tunnel: the system's roots plus the extra CA.
/// Certificates are always verified.
pub(super) fn tunnel_tls_config(
    system: SystemRoots,
    extra_ca: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    match system {
        SystemRoots::Bundle(certs) => {
            roots.add_parsable_certificates(certs);
        }
        SystemRoots::Native => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::debug!("skipping a system root certificate: {e}");
            }
            roots.add_parsable_certificates(native.certs);
        }
    }
    if let Some(pem) = extra_ca {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| Error::TlsSetup(e.into()))?;
            roots.add(cert).map_err(|e| Error::TlsSetup(e.into()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::TlsSetup(e.into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
