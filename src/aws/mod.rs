//! AWS configuration, loaded once: region, credentials (resolved once and
//! shared by the SDK clients and the presigner), FIPS, and the trust store
//! (system roots plus `AWS_CA_BUNDLE` / `ca_bundle`) used by both the SDK's
//! HTTPS client and the tunnel.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;

use crate::error::Error;

pub mod cidr;
pub mod console;
pub mod credentials;
pub mod ec2;
pub mod endpoint_name;
pub mod errors;
mod http;
pub mod keypush;
pub mod retry;
mod trust;

use credentials::{ProfileChoice, ProfileKind, Resolver, Source};
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
    /// The profile in effect, and how it was chosen.
    choice: ProfileChoice,
    credentials: Arc<Resolver>,
    /// How long each step of connecting may take (`--connect-timeout`).
    pub connect_timeout: Duration,
    /// Seconds to add to this machine's clock to match the service's, once
    /// a refused presign taught it.
    clock_skew: AtomicI64,
}

impl Aws {
    /// The profile in effect: `--profile`, else `AWS_PROFILE`, else `default`.
    pub fn profile_name(&self) -> String {
        self.choice.name().to_owned()
    }

    /// The profile asked for (`--profile`, else `AWS_PROFILE`), if any: the
    /// `aws` commands in hints name it, so they act as the same identity.
    pub fn chosen_profile(&self) -> Option<&str> {
        self.choice.chosen()
    }

    /// Whose credentials sign, for messages: `profile prod`, or where they
    /// came from when no profile was chosen and they are not the default
    /// profile's (`the environment (AWS_ACCESS_KEY_ID)`).
    pub fn identity(&self) -> String {
        match self.credentials.source() {
            Some(source) => source.label(),
            None => Source::Profile(self.choice.name().to_owned()).label(),
        }
    }

    /// What the lookup cache keeps routes apart by, besides the region.
    pub fn cache_scope(&self) -> String {
        cache_scope(&self.profile_name(), self.use_fips)
    }

    /// Load the standard AWS configuration chain (environment, shared config and
    /// credentials files, SSO, assume-role, credential_process, IMDS), with
    /// `--region`/`--profile` on top. A profile in effect (`--profile` or
    /// `AWS_PROFILE`) must exist, and its credentials sign, whatever the
    /// environment holds (see [`credentials`]).
    pub async fn load(region: Option<&str>, profile: Option<&str>) -> Result<Aws, Error> {
        seed_rng_in_background();
        let choice = ProfileChoice::new(profile, std::env::var("AWS_PROFILE").ok().as_deref());
        let profiles = aws_config::profile::load(
            &aws_types::os_shim_internal::Fs::real(),
            &aws_types::os_shim_internal::Env::real(),
            &aws_runtime::env_config::file::EnvConfigFiles::default(),
            profile.map(|p| std::borrow::Cow::Owned(p.to_owned())),
        )
        .await;
        if let Some(p) = choice.chosen() {
            let set = profiles
                .as_ref()
                .map_err(|e| Error::AwsConfig(e.to_string()))?;
            let known = || {
                let mut names: Vec<String> = set.profiles().map(str::to_owned).collect();
                names.sort();
                names
            };
            if set.get_profile(p).is_none() {
                return Err(Error::ProfileNotFound {
                    profile: p.to_owned(),
                    how: choice.how().unwrap_or("--profile").to_owned(),
                    known: known(),
                });
            }
            if let Some((missing, by)) = credentials::missing_source_profile(set, p) {
                return Err(Error::ProfileNotFound {
                    profile: missing,
                    how: format!("the source_profile of profile {by}"),
                    known: known(),
                });
            }
            note_environment_keys(&choice);
        }
        let kind = match &profiles {
            Ok(set) => ProfileKind::of(set, choice.name()),
            Err(_) => ProfileKind::Nothing,
        };
        let extra_ca = load_ca_bundle(profiles.as_ref().ok()).await?;
        let tls = tunnel_tls_config(SystemRoots::find(), extra_ca.as_deref())?;

        // The SDK's client loads the system roots its own way, and only when
        // it first connects: a run whose route is cached never pays for it.
        let http_client = http::https_client(extra_ca.as_deref())?;

        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client.clone())
            .no_credentials()
            .retry_config(retry::sdk_retry_config())
            .timeout_config(api_timeouts(crate::net::DEFAULT_CONNECT_TIMEOUT));
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
        // The providers' own calls (SSO, STS, the container, IMDS) go
        // through the same client, region, retries and timeouts as the SDK's.
        let provider_config = aws_config::provider_config::ProviderConfig::without_region()
            .with_http_client(http_client)
            .with_region(Some(Region::new(region.clone())))
            .with_use_fips(sdk.use_fips())
            .with_use_dual_stack(sdk.use_dual_stack())
            .with_retry_config(retry::sdk_retry_config())
            .with_timeout_config(api_timeouts(crate::net::DEFAULT_CONNECT_TIMEOUT))
            .with_behavior_version(Some(BehaviorVersion::latest()));
        let credentials = Arc::new(Resolver::new(
            credentials::chain(&provider_config, &choice),
            choice.clone(),
            kind,
            region.clone(),
        ));
        let sdk = sdk
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials::Shared(
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
            choice,
            credentials,
            connect_timeout: crate::net::DEFAULT_CONNECT_TIMEOUT,
            clock_skew: AtomicI64::new(0),
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

    /// The time to sign with: this clock, corrected by what the service
    /// taught about its own.
    pub fn now(&self) -> SystemTime {
        retry::corrected(SystemTime::now(), self.clock_skew.load(Ordering::Relaxed))
    }

    /// Remember how far this clock is from the service's.
    pub fn set_clock_skew(&self, skew: i64) {
        self.clock_skew.store(skew, Ordering::Relaxed);
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
        self.credentials.get().await.map_err(Error::from)
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

/// A profile is in effect and `AWS_ACCESS_KEY_ID` is set too: the
/// profile's credentials sign. Said at `-v` when `--profile` asked for it
/// (the command line is explicit), and as a warning when `AWS_PROFILE` did,
/// since an exported key and a forgotten `AWS_PROFILE` are easily confused.
fn note_environment_keys(choice: &ProfileChoice) {
    let keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty());
    match (keys, choice) {
        (true, ProfileChoice::Flag(p)) => tracing::info!(
            "AWS_ACCESS_KEY_ID is set, but --profile {p} is in effect: the profile's credentials sign, not the environment's key"
        ),
        (true, ProfileChoice::Env(p)) => tracing::warn!(
            "AWS_PROFILE={p} and AWS_ACCESS_KEY_ID are both set: using profile {p}'s credentials, not the environment's key (unset AWS_PROFILE to use the key)"
        ),
        _ => {}
    }
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
        let in_effect = |flag, env| ProfileChoice::new(flag, env).name().to_owned();
        assert_eq!(in_effect(None, None), "default");
        assert_eq!(in_effect(None, Some("")), "default");
        assert_eq!(in_effect(None, Some("prod")), "prod");
        assert_eq!(in_effect(Some("dev"), Some("prod")), "dev");
        assert_eq!(cache_scope("prod", false), "prod");
        assert_ne!(cache_scope("prod", true), cache_scope("prod", false));
        assert_ne!(
            cache_scope(&in_effect(None, Some("prod")), false),
            cache_scope(&in_effect(None, Some("staging")), false)
        );
    }
}
