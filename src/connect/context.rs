//! The one preamble of every command that calls AWS: the configuration
//! (region, profile, credentials, trust), the timeouts and the route cache,
//! loaded once from what the command line says.

use std::time::Duration;

use crate::aws::Aws;
use crate::error::Error;
use crate::target::cache::RouteCache;

/// What the command line says about reaching AWS.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--region`; `None`: the AWS configuration's.
    pub region: Option<String>,
    /// `--profile`; `None`: `AWS_PROFILE`, else `default`.
    pub profile: Option<String>,
    /// How long each step of connecting, and each API call attempt, may
    /// take (`--connect-timeout`); `None`: the default.
    pub connect_timeout: Option<Duration>,
    /// Whether to read and write the route cache (off with `--no-cache`).
    pub cache: bool,
}

/// Loaded once per command: the AWS configuration and clients, and the
/// route cache when in use.
pub struct Context {
    pub aws: Aws,
    pub cache: Option<RouteCache>,
}

impl Context {
    /// Load the AWS configuration (see [`Aws::load`]), bound its steps by
    /// the timeout asked for, and open the route cache.
    pub async fn load(settings: &Settings) -> Result<Context, Error> {
        let mut aws = Aws::load(settings.region.as_deref(), settings.profile.as_deref()).await?;
        if let Some(limit) = settings.connect_timeout {
            aws.set_connect_timeout(limit);
        }
        let cache = settings.cache.then(RouteCache::default_location);
        Ok(Context { aws, cache })
    }
}
