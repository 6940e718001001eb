//! AWS configuration, loaded once: region, credentials (resolved once and
//! shared by the SDK clients and the presigner), FIPS, and the trust store
//! (system roots plus `AWS_CA_BUNDLE` / `ca_bundle`) used by both the SDK's
//! HTTPS client and the tunnel.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_smithy_http_client::tls;
use aws_types::os_shim_internal::{Env, Fs};
use aws_types::region::Region;

use crate::error::Error;

/// Loaded AWS configuration and clients, shared by every step of a connection.
pub struct Aws {
    pub region: String,
    pub profile: Option<String>,
    pub use_fips: bool,
    sdk: aws_types::SdkConfig,
    /// The API clients, built on first use: a connection whose route is
    /// cached and that pushes no key makes no API call, so it never builds
    /// them.
    ec2: OnceLock<aws_sdk_ec2::Client>,
    eic: OnceLock<aws_sdk_ec2instanceconnect::Client>,
    /// TLS settings for the websocket tunnel: same roots as the SDK's client.
    pub tls: Arc<rustls::ClientConfig>,
    credentials: Arc<CachedCredentials>,
}

impl Aws {
    /// Load the standard AWS configuration chain (environment, shared config and
    /// credentials files, SSO, assume-role, credential_process, IMDS), with
    /// `--region`/`--profile` on top.
    pub async fn load(region: Option<&str>, profile: Option<&str>) -> Result<Aws, Error> {
        seed_rng_in_background();
        let extra_ca = load_ca_bundle(profile).await?;
        let tls = tunnel_tls_config(SystemRoots::find(), extra_ca.as_deref())?;

        // The SDK's client loads the system roots its own way, and only when
        // it first connects: a run whose route is cached never pays for it.
        let mut trust = tls::TrustStore::default();
        if let Some(pem) = &extra_ca {
            trust = trust.with_pem_certificate(pem.clone());
        }
        let tls_context = tls::TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?;
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(tls_context)
            .build_https();

        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_owned()));
        }
        let sdk = loader.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or(Error::NoRegion)?;
        let inner = sdk
            .credentials_provider()
            .ok_or_else(|| Error::NoCredentials("no credentials provider is configured".into()))?;
        let credentials = Arc::new(CachedCredentials {
            inner,
            cached: tokio::sync::Mutex::new(None),
        });
        let sdk = sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(SharedCache(
                credentials.clone(),
            )))
            .build();
        Ok(Aws {
            region,
            profile: profile.map(str::to_owned),
            use_fips: sdk.use_fips().unwrap_or(false),
            sdk,
            ec2: OnceLock::new(),
            eic: OnceLock::new(),
            tls,
            credentials,
        })
    }

    /// The EC2 API client.
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        self.ec2.get_or_init(|| aws_sdk_ec2::Client::new(&self.sdk))
    }

    /// The EC2 Instance Connect API client.
    pub fn eic(&self) -> &aws_sdk_ec2instanceconnect::Client {
        self.eic
            .get_or_init(|| aws_sdk_ec2instanceconnect::Client::new(&self.sdk))
    }

    /// Credentials, resolved once per process and refreshed only near expiry.
    pub async fn credentials(&self) -> Result<Credentials, Error> {
        self.credentials
            .get()
            .await
            .map_err(|e| Error::NoCredentials(crate::error::chain(&e)))
    }
}

/// aws-lc seeds its random number generator once per process from CPU
/// jitter: about 50 ms of busy CPU on the machine the benches ran on. The
/// first TLS handshake would wait for it; seeding on a helper thread while
/// the configuration loads and the socket connects takes it off the critical
/// path. Each thread's generator then seeds cheaply from the process-wide one.
fn seed_rng_in_background() {
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

/// The AWS CLI's `AWS_CA_BUNDLE`, else the profile's `ca_bundle`.
async fn load_ca_bundle(profile: Option<&str>) -> Result<Option<Vec<u8>>, Error> {
    let path = match std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let profiles = aws_config::profile::load(
                &Fs::real(),
                &Env::real(),
                &EnvConfigFiles::default(),
                profile.map(|p| Cow::Owned(p.to_owned())),
            )
            .await;
            match profiles
                .ok()
                .and_then(|p| p.get("ca_bundle").map(PathBuf::from))
            {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    let pem = tokio::fs::read(&path).await.map_err(|e| Error::CaBundle {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let count = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::CaBundle {
            path: path.clone(),
            reason: e.to_string(),
        })?
        .len();
    if count == 0 {
        return Err(Error::CaBundle {
            path,
            reason: "it contains no PEM certificate".into(),
        });
    }
    Ok(Some(pem))
}

/// Where the system's trusted root certificates come from.
enum SystemRoots {
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
    fn find() -> SystemRoots {
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
        let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
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
fn tunnel_tls_config(
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
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| Error::Config(format!("CA bundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("CA bundle: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Resolves credentials once and hands out the same ones until they near
/// expiry, so SSO/assume-role run once per process, not once per call.
#[derive(Debug)]
struct CachedCredentials {
    inner: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    async fn get(&self) -> aws_credential_types::provider::Result {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|exp| exp > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self.inner.provide_credentials().await?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

#[derive(Debug)]
struct SharedCache(Arc<CachedCredentials>);

impl ProvideCredentials for SharedCache {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.get())
    }
}
