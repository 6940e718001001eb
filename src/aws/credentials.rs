//! Where the credentials come from, resolved once per process.
//!
//! With a profile in effect (`--profile`, else `AWS_PROFILE`) they come
//! from that profile (its keys, role, SSO or `credential_process`), never
//! from `AWS_ACCESS_KEY_ID`: the SDK's default chain reads the environment
//! first, which would sign with another account's key while the messages
//! name the profile. Without one, the default chain: the environment, the
//! `default` profile, web identity, the container, instance metadata.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_config::profile::ProfileSet;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use crate::error::Error;

/// How the profile in effect was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileChoice {
    /// `--profile NAME`.
    Flag(String),
    /// `AWS_PROFILE=NAME` (non-empty).
    Env(String),
    /// Neither: the default chain, whose profile is `default`.
    Default,
}

impl ProfileChoice {
    /// `--profile`, else a non-empty `AWS_PROFILE`, else none.
    pub fn new(flag: Option<&str>, env: Option<&str>) -> ProfileChoice {
        match (flag, env.filter(|p| !p.is_empty())) {
            (Some(p), _) => ProfileChoice::Flag(p.to_owned()),
            (None, Some(p)) => ProfileChoice::Env(p.to_owned()),
            (None, None) => ProfileChoice::Default,
        }
    }

    /// The profile asked for, if one was.
    pub fn chosen(&self) -> Option<&str> {
        match self {
            ProfileChoice::Flag(p) | ProfileChoice::Env(p) => Some(p),
            ProfileChoice::Default => None,
        }
    }

    /// The profile in effect: the one asked for, else `default`.
    pub fn name(&self) -> &str {
        self.chosen().unwrap_or("default")
    }

    /// How it was asked for, for messages: `--profile` or `AWS_PROFILE`.
    pub fn how(&self) -> Option<&'static str> {
        match self {
            ProfileChoice::Flag(_) => Some("--profile"),
            ProfileChoice::Env(_) => Some("AWS_PROFILE"),
            ProfileChoice::Default => None,
        }
    }
}

/// Where a set of credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile of the shared config and credentials files.
    Profile(String),
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`.
    WebIdentity,
    /// The container's credentials endpoint (ECS, EKS Pod Identity).
    Container,
    /// The instance metadata service (this machine's instance role).
    InstanceMetadata,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Environment => f.write_str("the environment (AWS_ACCESS_KEY_ID)"),
            Source::Profile(p) => write!(f, "profile {p}"),
            Source::WebIdentity => f.write_str("web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"),
            Source::Container => f.write_str("the container's credentials endpoint"),
            Source::InstanceMetadata => f.write_str("the instance metadata service (IMDS)"),
        }
    }
}

impl Source {
    /// Whose credentials, in a few words: `profile prod`, `environment
    /// credentials`.
    pub fn label(&self) -> String {
        match self {
            Source::Environment => "environment credentials".into(),
            Source::Profile(p) => format!("profile {p}"),
            Source::WebIdentity => "web identity credentials".into(),
            Source::Container => "container credentials".into(),
            Source::InstanceMetadata => "instance role credentials".into(),
        }
    }
}

/// What a profile configures its credentials with, for the fix when they
/// cannot be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    Sso,
    Process,
    Role,
    Keys,
    Nothing,
}

impl ProfileKind {
    /// What `profile` in `profiles` configures.
    pub fn of(profiles: &ProfileSet, profile: &str) -> ProfileKind {
        let Some(p) = profiles.get_profile(profile) else {
            return ProfileKind::Nothing;
        };
        let has = |key: &str| p.get(key).is_some_and(|v| !v.is_empty());
        if has("sso_session") || has("sso_start_url") {
            ProfileKind::Sso
        } else if has("credential_process") {
            ProfileKind::Process
        } else if has("role_arn") {
            ProfileKind::Role
        } else if has("aws_access_key_id") {
            ProfileKind::Keys
        } else {
            ProfileKind::Nothing
        }
    }
}

/// Why there are no credentials. Cloned, so that a failure that cannot
/// mend within a run is given again, not the SDK's "already taken"; it
/// travels through the SDK's calls as their source, and becomes
/// [`Error::NoCredentials`] or [`Error::CredentialsFailed`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsFailure {
    /// No source had any.
    #[error("no credentials")]
    NotFound {
        /// The profile asked for, if one was.
        profile: Option<String>,
    },
    /// A source is configured but could not give them.
    #[error("cannot get AWS credentials from {from}: {reason}")]
    Failed {
        from: Source,
        reason: String,
        kind: Option<ProfileKind>,
        /// The SDK said the configuration is wrong: retrying cannot help.
        permanent: bool,
    },
}

impl From<CredentialsFailure> for Error {
    fn from(f: CredentialsFailure) -> Error {
        match f {
            CredentialsFailure::NotFound { profile } => Error::NoCredentials { profile },
            CredentialsFailure::Failed {
                from, reason, kind, ..
            } => Error::CredentialsFailed {
                fix: fix(&from, kind),
                from: from.to_string(),
                reason,
            },
        }
    }
}

/// What to do when `from` (of `kind`, for a profile) fails.
fn fix(from: &Source, kind: Option<ProfileKind>) -> String {
    let profile = match from {
        Source::Profile(p) => p.as_str(),
        Source::Environment => {
            return "AWS_ACCESS_KEY_ID needs AWS_SECRET_ACCESS_KEY beside it (and AWS_SESSION_TOKEN for temporary keys)".into();
        }
        _ => return "check that source's configuration, or choose a profile with --profile".into(),
    };
    match kind {
        Some(ProfileKind::Sso) => format!("sign in again: aws sso login --profile {profile}"),
        Some(ProfileKind::Process) => {
            format!("run profile {profile}'s credential_process yourself to see why it fails")
        }
        Some(ProfileKind::Role) => format!(
            "check that profile {profile}'s source credentials are valid and may assume its role_arn"
        ),
        _ => format!("check the profile with: aws configure list --profile {profile}"),
    }
}

impl CredentialsFailure {
    /// Whether a later attempt in this run could fare better.
    fn permanent(&self) -> bool {
        match self {
            CredentialsFailure::NotFound { .. } => true,
            CredentialsFailure::Failed { permanent, .. } => *permanent,
        }
    }
}

/// The chain of sources for `choice`, built on `conf` (the HTTP client,
/// region, timeouts and retries the SDK's calls use, so that SSO and STS
/// calls go the same way).
pub(super) fn chain(
    conf: &ProviderConfig,
    choice: &ProfileChoice,
) -> Vec<(Source, SharedCredentialsProvider)> {
    let mut profile =
        aws_config::profile::ProfileFileCredentialsProvider::builder().configure(conf);
    if let Some(p) = choice.chosen() {
        profile = profile.profile_name(p);
    }
    let mut chain = Vec::new();
    if choice.chosen().is_none() {
        chain.push((
            Source::Environment,
            SharedCredentialsProvider::new(
                aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new(),
            ),
        ));
    }
    chain.push((
        Source::Profile(choice.name().to_owned()),
        SharedCredentialsProvider::new(profile.build()),
    ));
    chain.push((
        Source::WebIdentity,
        SharedCredentialsProvider::new(
            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(conf)
                .build(),
        ),
    ));
    chain.push((
        Source::Container,
        SharedCredentialsProvider::new(
            aws_config::ecs::EcsCredentialsProvider::builder()
                .configure(conf)
                .build(),
        ),
    ));
    chain.push((
        Source::InstanceMetadata,
        SharedCredentialsProvider::new(
            aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .configure(conf)
                .build(),
        ),
    ));
    chain
}

/// Resolves credentials once and hands out the same ones until they near
/// expiry, so SSO/assume-role run once per process, not once per call.
#[derive(Debug)]
pub(super) struct Resolver {
    chain: Vec<(Source, SharedCredentialsProvider)>,
    choice: ProfileChoice,
    /// What the profile in effect configures.
    kind: ProfileKind,
    region: String,
    state: tokio::sync::Mutex<State>,
    /// Where the credentials in use came from, once known.
    source: OnceLock<Source>,
}

#[derive(Debug, Default)]
struct State {
    cached: Option<Credentials>,
    failure: Option<CredentialsFailure>,
}

impl Resolver {
    pub(super) fn new(
        chain: Vec<(Source, SharedCredentialsProvider)>,
        choice: ProfileChoice,
        kind: ProfileKind,
        region: String,
    ) -> Resolver {
        Resolver {
            chain,
            choice,
            kind,
            region,
            state: tokio::sync::Mutex::new(State::default()),
            source: OnceLock::new(),
        }
    }

    /// Where the credentials in use came from, once they were resolved.
    pub(super) fn source(&self) -> Option<&Source> {
        self.source.get()
    }

    pub(super) async fn get(&self) -> Result<Credentials, CredentialsFailure> {
        let mut state = self.state.lock().await;
        if let Some(f) = &state.failure {
            return Err(f.clone());
        }
        if let Some(c) = state.cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|exp| exp > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(c.clone());
            }
        }
        match self.resolve().await {
            Ok((c, source)) => {
                if self.source.get().is_none() {
                    tracing::info!(
                        "AWS identity: {}, access key {}, region {}",
                        self.describe(&source),
                        elide_key_id(c.access_key_id()),
                        self.region
                    );
                    let _ = self.source.set(source);
                }
                state.cached = Some(c.clone());
                Ok(c)
            }
            Err(f) => {
                if f.permanent() {
                    state.failure = Some(f.clone());
                }
                Err(f)
            }
        }
    }

    /// The source, and how the profile was chosen when it is the profile.
    fn describe(&self, source: &Source) -> String {
        match (source, self.choice.how()) {
            (Source::Profile(_), Some(how)) => format!("{source} (from {how})"),
            (Source::Profile(_), None) => format!("{source} (no profile chosen)"),
            (_, Some(how)) => format!(
                "{source} (profile {} from {how} has no credentials)",
                self.choice.name()
            ),
            (_, None) => source.to_string(),
        }
    }

    /// The first source that has credentials: a source without any passes
    /// to the next; one that has some but fails stops the search.
    async fn resolve(&self) -> Result<(Credentials, Source), CredentialsFailure> {
        for (source, provider) in &self.chain {
            match provider.provide_credentials().await {
                Ok(c) => return Ok((c, source.clone())),
                Err(e @ CredentialsError::CredentialsNotLoaded(_)) => {
                    tracing::debug!("no credentials from {source}: {}", crate::error::chain(&e));
                }
                Err(e) => {
                    let permanent = matches!(e, CredentialsError::InvalidConfiguration(_));
                    let reason = reason(&e);
                    let kind = matches!(source, Source::Profile(_)).then_some(self.kind);
                    return Err(CredentialsFailure::Failed {
                        from: source.clone(),
                        reason,
                        kind,
                        permanent,
                    });
                }
            }
        }
        Err(CredentialsFailure::NotFound {
            profile: self.choice.chosen().map(str::to_owned),
        })
    }
}

/// What went wrong, without the layers that only say "an error occurred
/// while loading credentials" (or an access token): the first error below
/// them and its sources, on one line.
fn reason(e: &CredentialsError) -> String {
    use aws_credential_types::provider::error::TokenError;
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while cur.is::<CredentialsError>() || cur.is::<TokenError>() {
        match cur.source() {
            Some(inner) => cur = inner,
            None => break,
        }
    }
    crate::error::chain(cur)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first profile that `profile` leads to through `source_profile` and
/// that the files do not have, with the profile that names it.
pub(super) fn missing_source_profile(
    profiles: &ProfileSet,
    profile: &str,
) -> Option<(String, String)> {
    let mut current = profile.to_owned();
    // A loop is the SDK's to report; the depth bound only ends the walk.
    for _ in 0..16 {
        let next = profiles.get_profile(&current)?.get("source_profile")?;
        if next == current {
            return None;
        }
        if profiles.get_profile(next).is_none() {
            return Some((next.to_owned(), current));
        }
        current = next.to_owned();
    }
    None
}

/// The resolver as the SDK's credentials provider: the API calls and the
/// presigner share one resolution.
#[derive(Debug)]
pub(super) struct Shared(pub(super) std::sync::Arc<Resolver>);

impl ProvideCredentials for Shared {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0.get().await.map_err(CredentialsError::provider_error)
        })
    }
}

/// An access key ID with its middle elided (`AKIA…WXYZ`): enough to tell
/// keys apart, and still not the key.
pub fn elide_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_in_effect_is_the_flag_then_aws_profile() {
        assert_eq!(ProfileChoice::new(None, None), ProfileChoice::Default);
        assert_eq!(ProfileChoice::new(None, Some("")), ProfileChoice::Default);
        assert_eq!(
            ProfileChoice::new(None, Some("prod")),
            ProfileChoice::Env("prod".into())
        );
        assert_eq!(
            ProfileChoice::new(Some("dev"), Some("prod")),
            ProfileChoice::Flag("dev".into())
        );
        assert_eq!(ProfileChoice::Default.name(), "default");
        assert_eq!(ProfileChoice::Env("prod".into()).how(), Some("AWS_PROFILE"));
    }

    #[test]
    fn key_ids_keep_only_their_ends() {
        assert_eq!(elide_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(elide_key_id("AKIDSIMEXAMPLE1"), "AKID…PLE1");
        // Too short to show any of it safely.
        assert_eq!(elide_key_id("AKIA1234"), "…");
        let shown = elide_key_id("AKIAIOSFODNN7EXAMPLE");
        assert_eq!(crate::text::redact::redact(&shown), shown);
    }
}
