//! AWS configuration, loaded once: region, credentials (resolved once and
//! shared by the SDK clients and the presigner), FIPS, and the trust store
//! (system roots plus `AWS_CA_BUNDLE` / `ca_bundle`) used by both the SDK's
//! HTTPS client and the tunnel.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_types::region::Region;

use crate::error::Error;

pub mod cidr;
pub mod clock;
pub mod console;
pub mod ec2;
pub mod endpoint_name;
pub mod errors;
pub mod find;
mod http;
pub mod keypush;
pub mod retry;
mod trust;

use trust::{SystemRoots, load_ca_bundle, seed_rng_in_background, tunnel_tls_config};

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
    /// How long each step of connecting may take (`--connect-timeout`).
    pub connect_timeout: Duration,
    /// AWS's clock, as refusals taught it: every signature (the SDK's and
    /// the presigned URL's) uses it.
    clock: Arc<clock::ServiceClock>,
}

impl Aws {
    /// The profile in effect: `--profile`, else `AWS_PROFILE`, else `default`.
    pub fn profile_name(&self) -> String {
        profile_in_effect(
            self.profile.as_deref(),
            std::env::var("AWS_PROFILE").ok().as_deref(),
        )
    }

    /// What the lookup cache keeps routes apart by, besides the region.
    pub fn cache_scope(&self) -> String {
        cache_scope(&self.profile_name(), self.use_fips)
    }

    /// Load the standard AWS configuration chain (environment, shared config and
    /// credentials files, SSO, assume-role, credential_process, IMDS), with
    /// `--region`/`--profile` on top.
    pub async fn load(region: Option<&str>, profile: Option<&str>) -> Result<Aws, Error> {
        seed_rng_in_background();
        let extra_ca = load_ca_bundle(profile).await?;
        let tls = tunnel_tls_config(SystemRoots::find(), extra_ca.as_deref())?;

        // The SDK's client loads the system roots its own way, and only when
        // it first connects: a run whose route is cached never pays for it.
        let http_client = http::https_client(extra_ca.as_deref())?;

        let service_clock = Arc::new(clock::ServiceClock::default());
        // Our correction, not the SDK's (see `clock`).
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .time_source(clock::Corrected(service_clock.clone()))
            .disable_clock_skew_correction(true)
            .http_client(http_client)
            .retry_config(retry::sdk_retry_config())
            .timeout_config(api_timeouts(crate::tunnel::DEFAULT_CONNECT_TIMEOUT));
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_owned()));
        }
        let sdk = loader.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or(Error::NoRegion)?;
        // A bad --region is refused as it is parsed; one from AWS_REGION or
        // the profile is refused here, before any call, naming it.
        region_name(&region)
            .map_err(|e| Error::Usage(format!("{e}; it comes from AWS_REGION or the profile")))?;
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
            connect_timeout: crate::tunnel::DEFAULT_CONNECT_TIMEOUT,
            clock: service_clock,
        })
    }

    /// Bound each step of connecting, and each API call attempt, by
    /// `limit`. Takes effect for clients not yet built, so call it first.
    pub fn set_connect_timeout(&mut self, limit: Duration) {
        self.connect_timeout = limit;
        self.sdk = self
            .sdk
            .to_builder()
            .timeout_config(api_timeouts(limit))
            .build();
    }

    /// The time to sign with: this machine's clock, corrected by what AWS
    /// taught about its own.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// AWS's clock, as this process knows it.
    pub fn clock(&self) -> &clock::ServiceClock {
        &self.clock
    }

    /// The EC2 API client. Like the other, it reads AWS's time off every
    /// answer and retries once, corrected, a request refused for its time.
    pub fn ec2(&self) -> &aws_sdk_ec2::Client {
        self.ec2.get_or_init(|| {
            let conf = aws_sdk_ec2::config::Builder::from(&self.sdk)
                .interceptor(clock::Learner(self.clock.clone()))
                .retry_classifier(clock::TimeRefusal(self.clock.clone()))
                .build();
            aws_sdk_ec2::Client::from_conf(conf)
        })
    }

    /// The EC2 Instance Connect API client.
    pub fn eic(&self) -> &aws_sdk_ec2instanceconnect::Client {
        self.eic.get_or_init(|| {
            let conf = aws_sdk_ec2instanceconnect::config::Builder::from(&self.sdk)
                .interceptor(clock::Learner(self.clock.clone()))
                .retry_classifier(clock::TimeRefusal(self.clock.clone()))
                .build();
            aws_sdk_ec2instanceconnect::Client::from_conf(conf)
        })
    }

    /// Credentials, resolved once per process and refreshed only near expiry.
    pub async fn credentials(&self) -> Result<Credentials, Error> {
        self.credentials
            .get()
            .await
            .map_err(|e| Error::NoCredentials(crate::error::chain(&e)))
    }
}

/// API calls: the TCP connect and every attempt are bounded by `limit`; a
/// stalled attempt is retried like any transient failure.
fn api_timeouts(limit: Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(limit)
        .operation_attempt_timeout(limit)
        .build()
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

/// `s` if it is an AWS region name: lower-case letters, digits and
/// dashes (`us-east-1`); else an error naming it.
pub fn region_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match ok {
        true => Ok(s.to_owned()),
        false => Err(format!(
            "{s:?} is not an AWS region name (lower-case letters, digits and dashes, e.g. us-east-1)"
        )),
    }
}

/// `--profile`, else a non-empty `AWS_PROFILE`, else `default`.
fn profile_in_effect(flag: Option<&str>, env: Option<&str>) -> String {
    flag.or(env.filter(|p| !p.is_empty()))
        .unwrap_or("default")
        .to_owned()
}

/// The profile in effect (however it was chosen), and FIPS, whose
/// endpoints have names of their own: routes found under one never serve
/// another.
fn cache_scope(profile: &str, fips: bool) -> String {
    match fips {
        true => format!("{profile}+fips"),
        false => profile.to_owned(),
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn the_cache_is_kept_apart_by_the_profile_in_effect_and_fips() {
        assert_eq!(profile_in_effect(None, None), "default");
        assert_eq!(profile_in_effect(None, Some("")), "default");
        assert_eq!(profile_in_effect(None, Some("prod")), "prod");
        assert_eq!(profile_in_effect(Some("dev"), Some("prod")), "dev");
        assert_eq!(cache_scope("prod", false), "prod");
        assert_ne!(cache_scope("prod", true), cache_scope("prod", false));
        assert_ne!(
            cache_scope(&profile_in_effect(None, Some("prod")), false),
            cache_scope(&profile_in_effect(None, Some("staging")), false)
        );
    }
}
