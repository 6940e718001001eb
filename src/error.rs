//! One error type for the whole tool: each variant says what the user sees,
//! carries the values that explain it, and knows its exit code.

use std::path::PathBuf;

/// Exit status for a failure to connect, as `ssh` uses.
pub const EXIT_CONNECT_FAILED: u8 = 255;

/// Exit status for a usage error: a bad value, a missing argument.
pub const EXIT_USAGE: u8 = 2;

/// Exit status when stdout was closed under a local command: 128 + SIGPIPE,
/// as the shell reports a program that SIGPIPE ended.
pub const EXIT_STDOUT_CLOSED: u8 = 141;

/// Exit status when the user cancels the instance picker (as for Ctrl-C).
pub const EXIT_CANCELLED: u8 = 130;

/// Any error kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong between the command line and the remote shell.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no AWS region is configured")]
    NoRegion,

    /// No source of credentials had any.
    #[error("unable to locate credentials{}", match profile {
        Some(p) => format!(": profile {p} has none, and no other source gave any"),
        None => String::new(),
    })]
    NoCredentials {
        /// The profile asked for, if one was.
        profile: Option<String>,
    },

    /// A source is configured but could not give credentials: an expired
    /// SSO session, a failing `credential_process`, a refused role.
    #[error("cannot get AWS credentials from {from}: {reason}")]
    CredentialsFailed {
        from: String,
        reason: String,
        /// What to do, which depends on what the profile configures.
        fix: String,
    },

    /// `--profile` or `AWS_PROFILE` names a profile the files do not have.
    #[error("the config profile ({profile}) could not be found (it comes from {how})")]
    ProfileNotFound {
        profile: String,
        /// `--profile`, `AWS_PROFILE`, or the profile whose
        /// `source_profile` names it.
        how: String,
        /// The profiles the files do have.
        known: Vec<String>,
    },

    /// The shared config or credentials file cannot be read or parsed.
    #[error("cannot read the AWS config files: {0}")]
    AwsConfig(String),

    /// The bundle cannot be read, is no PEM, or holds no certificate.
    #[error("cannot use the CA bundle {path}: {source}")]
    CaBundle {
        path: PathBuf,
        #[source]
        source: BoxError,
    },

    /// A bad value or a missing argument: exit 2, before any network call.
    #[error("{0}")]
    Usage(String),

    /// A broken invariant inside eic-ssh, never the user's doing.
    #[error("internal error: {0}")]
    Internal(String),

    #[error("TLS setup failed: {0}")]
    TlsSetup(#[source] BoxError),

    #[error(
        "the console output of {host} shows {detail}: cloud-init prints the keys at first boot, so retry once the instance has booted"
    )]
    ConsoleNoKeys { host: String, detail: String },

    #[error("instance {instance} was not found in region {region}")]
    InstanceNotFound { instance: String, region: String },

    #[error("no running instance matches {searched} in region {region} ({identity})")]
    NoMatch {
        searched: String,
        region: String,
        /// Whose credentials searched: `profile prod`, `environment credentials`.
        identity: String,
        /// What the words searched for are close to.
        close: Box<DidYouMean>,
    },

    /// Several instances match where one is needed, and no picker can ask.
    #[error("{searched} matches {count} instances:\n{list}")]
    Ambiguous {
        searched: String,
        count: usize,
        list: String,
    },

    /// The user left the picker: exit 130.
    #[error("no instance chosen")]
    Cancelled,

    #[error("{} is {state}, not running", match name {
        Some(n) => format!("{n} ({instance})"),
        None => format!("instance {instance}"),
    })]
    InstanceNotRunning {
        instance: String,
        /// Its Name tag, when it was asked for by that name.
        name: Option<String>,
        state: String,
        /// Where it is, and the profile asked for: for the `aws` command
        /// that starts it.
        region: String,
        profile: Option<String>,
    },

    /// A target that matches only instances that are not running.
    #[error("{searched} matches no running instance, only {}", instances.iter().map(|(id, state)| format!("{id} ({state})")).collect::<Vec<_>>().join(", "))]
    NoneRunning {
        searched: String,
        /// (ID, state) of each.
        instances: Vec<(String, String)>,
        region: String,
        profile: Option<String>,
    },

    #[error("instance {instance} has no private IP address (IPv4 or IPv6)")]
    NoPrivateIp { instance: String },

    #[error(
        "EC2 Instance Connect Endpoint {endpoint} is {ip_address_type} and cannot reach {target}, an {} address",
        if target.is_ipv6() { "IPv6" } else { "IPv4" }
    )]
    EndpointFamily {
        endpoint: String,
        ip_address_type: String,
        target: std::net::IpAddr,
    },

    #[error("no EC2 Instance Connect Endpoint is available in {vpc} (the VPC of {instance})")]
    NoEndpointInVpc {
        vpc: String,
        subnet: String,
        instance: String,
    },

    #[error("EC2 Instance Connect Endpoint {endpoint} was not found or is not usable")]
    EndpointNotFound { endpoint: String },

    #[error(
        "FIPS endpoints are configured, but EC2 Instance Connect Endpoint {endpoint} has no FIPS DNS name"
    )]
    NoFipsDnsName { endpoint: String },

    #[error(
        "refusing to open a tunnel to {name:?} for EC2 Instance Connect Endpoint {endpoint}: {reason}"
    )]
    UntrustedEndpointName {
        endpoint: String,
        name: String,
        reason: String,
    },

    #[error("{op} failed: {code}: {message}")]
    Api {
        op: &'static str,
        code: String,
        message: String,
    },

    #[error("pushing the SSH key to {instance} failed: {code}: {message}")]
    KeyPush {
        instance: String,
        code: String,
        message: String,
    },

    #[error("the endpoint refused the tunnel: HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    TunnelRejected {
        status: u16,
        code: Option<String>,
        message: String,
        /// The endpoint's `Date` header: its clock, to correct a skewed one.
        date: Option<std::time::SystemTime>,
    },

    #[error("cannot reach the endpoint {host}: {source}")]
    TunnelConnect {
        host: String,
        #[source]
        source: std::io::Error,
    },

    /// A proxy that refused or could not carry a connection (its password
    /// masked).
    #[error(transparent)]
    Proxy(#[from] crate::net::proxy::ProxyError),

    #[error("the TLS handshake with the endpoint {host} failed: {source}")]
    TunnelTls {
        host: String,
        #[source]
        source: std::io::Error,
    },

    /// A step of connecting stalled past `--connect-timeout`.
    #[error("timed out after {secs} s waiting for {step} {host}")]
    ConnectTimeout {
        step: &'static str,
        host: String,
        secs: f64,
    },

    /// The tunnel broke after bytes flowed: the output may be truncated.
    #[error(
        "{cause}; the tunnel was cut mid-stream after {received} bytes received and {sent} bytes sent"
    )]
    TunnelCut {
        sent: u64,
        received: u64,
        cause: String,
    },

    /// A presigned URL refused because this machine's clock is off.
    #[error(
        "the endpoint refused the tunnel's signature time even after correcting for this clock's skew of {skew} s from the service's clock: {message}"
    )]
    ClockSkew { skew: i64, message: String },

    #[error("the tunnel was closed by the endpoint (code {code}): {reason}")]
    TunnelClosed { code: u16, reason: String },

    #[error(
        "the endpoint closed the tunnel at its maximum duration of {seconds} s (code {code}): {reason}"
    )]
    TunnelMaxDuration {
        seconds: u64,
        code: u16,
        reason: String,
    },

    #[error("the tunnel failed: {0}")]
    Tunnel(String),

    #[error("the tunnel failed: {0}")]
    Websocket(#[from] tokio_tungstenite::tungstenite::Error),

    #[error("presigning the tunnel URL failed: {0}")]
    Presign(#[source] BoxError),

    #[error(
        "the host key of {host} has changed: {file}:{line} has {known}, but the server offered {offered}"
    )]
    HostKeyChanged {
        host: String,
        file: PathBuf,
        line: usize,
        known: String,
        offered: String,
    },

    #[error(
        "not adding the console's host keys for {host}: {file}:{line} records {known}, which the console does not show (it shows {console})"
    )]
    HostKeyNotOnConsole {
        host: String,
        file: PathBuf,
        line: usize,
        known: String,
        console: String,
    },

    /// The file cannot be read or written, or it revokes the key offered.
    #[error("cannot use the known hosts file {file}: {source}")]
    KnownHosts {
        file: PathBuf,
        #[source]
        source: BoxError,
    },

    #[error("the instance refused SSH authentication for user {user}")]
    AuthRefused { user: String },

    #[error("no public key to push: looked at {looked}")]
    NoPublicKey { looked: String },

    #[error("cannot use the public key {path}: {source}")]
    BadPublicKey {
        path: PathBuf,
        #[source]
        source: PublicKeyProblem,
    },

    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    #[error("the instance refused to listen on {listen} for -R: {source}")]
    RemoteForwardRefused {
        listen: String,
        #[source]
        source: russh::Error,
    },

    #[error("cannot copy {path}: {reason}")]
    Copy { path: String, reason: String },

    /// Stopped by a signal (Ctrl-C): exit 130, as a shell reports SIGINT.
    #[error("{0}")]
    Interrupted(String),

    #[error("the connection to {host} was lost: {reason}")]
    ConnectionLost { host: String, reason: String },

    #[error("GetConsoleOutput was denied: {code}: {message}")]
    ConsoleDenied { code: String, message: String },

    #[error(
        "POSSIBLE INTERCEPTION: the host key of {host} does not match its console output: the server offered {offered}, the console shows {console}"
    )]
    HostKeyMismatch {
        host: String,
        offered: String,
        console: String,
    },

    #[error(
        "the host key of {host} ({offered}) is not in {file}, and --strict-host-key-checking=yes refuses unknown keys"
    )]
    HostKeyUnknown {
        host: String,
        offered: String,
        file: PathBuf,
    },

    #[error("the SSH session failed: {0}")]
    Ssh(#[from] russh::Error),

    #[error("the SSH session failed: {0}")]
    SshProtocol(&'static str),

    #[error("cannot encode the SSH key: {0}")]
    SshKey(#[from] russh::keys::ssh_key::Error),

    #[error("{0}")]
    Io(#[from] std::io::Error),

    /// Nobody reads stdout any more (`eic-ssh ls | head -1`): nothing to
    /// say, and exit 141, as a program that SIGPIPE ends.
    #[error("stdout was closed")]
    StdoutClosed,
}

/// Why a `--public-key` file cannot be pushed.
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyProblem {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// Not an OpenSSH public key: often the private key's file instead.
    #[error("not an OpenSSH public key ({0}); pass the .pub file, not the private key")]
    NotOpenSsh(#[source] russh::keys::ssh_key::Error),
    #[error(transparent)]
    Encode(russh::keys::ssh_key::Error),
}

/// What the Names that matched nothing are close to, for "did you mean".
#[derive(Debug, Default)]
pub struct DidYouMean {
    /// The Names that matched nothing, as typed.
    pub typed: Vec<String>,
    /// The subcommand one of them is close to (`exce`), filled in by the
    /// command layer, which knows the subcommands.
    pub subcommand: Option<String>,
    /// The region's Names they are close to.
    pub names: Vec<String>,
}

impl Error {
    /// The process exit status for this failure. Every failure to connect
    /// exits 255, as `ssh` does, so scripts can tell it from a remote status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Ambiguous { .. } => EXIT_USAGE,
            Error::Cancelled | Error::Interrupted(_) => EXIT_CANCELLED,
            // As scp: a file that could not be copied is 1, a connection 255.
            Error::Copy { .. } => 1,
            Error::StdoutClosed => EXIT_STDOUT_CLOSED,
            _ => EXIT_CONNECT_FAILED,
        }
    }

    /// A short, actionable next step, where one helps.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::NoRegion => "set --region, AWS_REGION, or `region` in your AWS profile".into(),
            Error::Listen { .. } => "choose another local port (0 picks a free one), or stop what listens there".into(),
            Error::BadPublicKey { .. } => "give --public-key an OpenSSH public key file (e.g. ~/.ssh/id_ed25519.pub), or load a key into ssh-agent".into(),
            Error::NoCredentials { profile: Some(p) } => format!(
                "give profile {p} credentials: aws configure --profile {p} (access keys), or aws configure sso --profile {p} (IAM Identity Center)"
            ),
            Error::NoCredentials { profile: None } => "configure credentials: aws configure (access keys) or aws configure sso (IAM Identity Center); or choose a profile with --profile or AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            Error::CredentialsFailed { fix, .. } => fix.clone(),
            Error::ProfileNotFound { profile, known, .. } => profile_hint(profile, known),
            Error::CaBundle { .. } => "AWS_CA_BUNDLE (or ca_bundle in your profile) must name a readable PEM file with at least one certificate".into(),
            Error::InstanceNotFound { .. } => "check the instance ID and the region (--region or AWS_REGION)".into(),
            Error::NoMatch { close, .. } => {
                let DidYouMean { subcommand, names, .. } = close.as_ref();
                let names: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
                match (subcommand, names.as_slice()) {
                    (None, []) => "list what there is with: eic-ssh ls; check --region and --profile".into(),
                    (Some(s), []) => format!("did you mean `eic-ssh {s}`? A word that is no subcommand is taken for a target"),
                    (None, names) => format!("did you mean {}? (close Names in this region)", names.join(" or ")),
                    (Some(s), names) => format!("did you mean `eic-ssh {s}`, or the Name {}?", names.join(" or ")),
                }
            }
            Error::Ambiguous { .. } => "name one by its ID, or run on a terminal without --no-pick to choose".into(),
            Error::InstanceNotRunning { instance, state, region, profile, .. } => {
                let start = start_command(&[instance.as_str()], region, profile.as_deref());
                match state.as_str() {
                    "stopped" => format!("start it with: {start}"),
                    "stopping" => format!("once it has stopped, start it with: {start}"),
                    "shutting-down" | "terminated" => "a terminated instance cannot be started again: connect to another one".into(),
                    _ => format!("wait until it is running, or start it with: {start}"),
                }
            }
            Error::NoneRunning { instances, region, profile, .. } => {
                let ids: Vec<&str> = instances.iter().map(|(id, _)| id.as_str()).collect();
                format!("start one with: {}", start_command(&ids, region, profile.as_deref()))
            }
            Error::NoPrivateIp { .. } => "EC2 Instance Connect Endpoints reach instances by private IPv4 address, or IPv6 for IPv6-only instances; pass --private-ip if you know it".into(),
            Error::EndpointFamily { endpoint, .. } => format!(
                "make the endpoint dual-stack: aws ec2 modify-instance-connect-endpoint --instance-connect-endpoint-id {endpoint} --ip-address-type dualstack (Preserve Client IP must be off), or create one that is"
            ),
            Error::NoEndpointInVpc { subnet, .. } => format!(
                "create one with: aws ec2 create-instance-connect-endpoint --subnet-id {subnet} --preserve-client-ip, or pass --eice-id"
            ),
            Error::EndpointNotFound { .. } => "check --eice-id; list endpoints with: aws ec2 describe-instance-connect-endpoints".into(),
            Error::NoFipsDnsName { .. } => "unset AWS_USE_FIPS_ENDPOINT / use_fips_endpoint, or use a region whose endpoints have FIPS names".into(),
            Error::Api { code, .. } => return api_hint(code),
            Error::KeyPush { code, instance, .. } => return key_push_hint(code, instance),
            Error::TunnelRejected { status: 403, .. } => "check that your IAM policy allows ec2-instance-connect:OpenTunnel on this endpoint (and its remotePort and privateIpAddress conditions), and that your clock is right. A policy that caps ec2-instance-connect:maxTunnelDuration refuses the default 3600 s: ask for what it allows with --max-tunnel-duration SECONDS".into(),
            Error::TunnelMaxDuration { .. } => "reconnect to carry on; --max-tunnel-duration sets the duration, up to the service's 3600 s (an IAM policy may allow less)".into(),
            Error::TunnelRejected { .. } => return None,
            Error::Proxy(e) => e.hint(),
            Error::TunnelConnect { .. } => "check the network path to the endpoint's DNS name (and AWS_CA_BUNDLE if a proxy re-signs TLS)".into(),
            Error::TunnelTls { host, .. } => format!(
                "if {host}'s certificate comes from a private CA (a TLS-inspecting proxy, say), trust it: set AWS_CA_BUNDLE (or ca_bundle in your AWS profile) to a PEM file holding that CA"
            ),
            Error::ConnectTimeout { .. } => "the endpoint stopped answering: check the network path to it, or allow more time with --connect-timeout SECONDS".into(),
            Error::TunnelCut { .. } => "the output above may be incomplete: nothing was retried after bytes flowed. Run the command again".into(),
            Error::ClockSkew { .. } => "set this machine's clock right (e.g. enable NTP with timedatectl set-ntp true)".into(),
            Error::TunnelClosed { .. } => "the endpoint or the instance closed the connection; check that the instance's security group allows port 22 from the endpoint".into(),
            Error::HostKeyChanged { host, file, .. } => format!(
                "this can mean someone is intercepting the connection, or the instance was rebuilt. If you expect the change, remove the old key with: ssh-keygen -R {host} -f {}",
                file.display()
            ),
            Error::HostKeyNotOnConsole { host, file, .. } => format!(
                "a connection would refuse the instance's key too. If the instance was rebuilt, remove the old key with: ssh-keygen -R {host} -f {}, then run this again",
                file.display()
            ),
            Error::UntrustedEndpointName { .. } => "the signed tunnel URL carries your credentials, so it goes only to the service's own names (<eice-id>.<…>.ec2-instance-connect-endpoint.<region>.amazonaws.com); run `eic-ssh cache clear` if the name came from the cache".into(),
            Error::ConnectionLost { .. } => "the tunnel or the instance stopped answering; tune detection with --keepalive-interval and --keepalive-count".into(),
            Error::ConsoleDenied { .. } => "grant ec2:GetConsoleOutput on the instance to verify host keys from the console, or pass --verify-host-key none".into(),
            Error::HostKeyMismatch { .. } => "do not connect until you know why: someone may be intercepting the connection. Check the instance's console (aws ec2 get-console-output --latest) yourself".into(),
            Error::HostKeyUnknown { host, .. } => format!("pre-seed it with: eic-ssh host-keys {host} --add, or use --strict-host-key-checking accept-new"),
            Error::NoPublicKey { .. } => "pass --public-key FILE, add a key to ssh-agent, create one with ssh-keygen -t ed25519, or use --no-push".into(),
            Error::RemoteForwardRefused { .. } => "the port may be taken on the instance, or its sshd forbids it (AllowTcpForwarding, GatewayPorts, PermitListen); --forward-best-effort carries on without it".into(),
            Error::AuthRefused { .. } => "the pushed key is valid for 60 seconds and only for that OS user: check --user (e.g. ubuntu on Ubuntu AMIs) and that EC2 Instance Connect is installed on the instance".into(),
            _ => return None,
        })
    }
}

impl Error {
    /// Whether `eic-ssh doctor` can explain this failure: the tunnel closed
    /// before SSH began, the endpoint could not be reached, or the
    /// connection timed out.
    pub fn doctor_explains(&self) -> bool {
        matches!(
            self,
            Error::TunnelClosed { .. }
                | Error::TunnelConnect { .. }
                | Error::ConnectionLost { .. }
                | Error::ConnectTimeout { .. }
        )
    }
}

/// `aws ec2 start-instances` for `ids`, in `region` and as `profile`.
fn start_command(ids: &[&str], region: &str, profile: Option<&str>) -> String {
    let profile = profile
        .map(|p| format!(" --profile {}", shlex::try_quote(p).unwrap_or(p.into())))
        .unwrap_or_default();
    format!(
        "aws ec2 start-instances --instance-ids {} --region {region}{profile}",
        ids.join(" ")
    )
}

fn profile_hint(profile: &str, known: &[String]) -> String {
    let create = format!("create it with: aws configure --profile {profile}");
    match known.len() {
        0 => format!("the AWS config files have no profiles; {create}"),
        n if n <= 10 => format!(
            "the profiles in the AWS config files: {}. Or {create}",
            known.join(", ")
        ),
        n => format!(
            "the profiles in the AWS config files: {}, and {} more (aws configure list-profiles). Or {create}",
            known[..10].join(", "),
            n - 10
        ),
    }
}

fn api_hint(code: &str) -> Option<String> {
    match code {
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" => Some(
            "grant ec2:DescribeInstances and ec2:DescribeInstanceConnectEndpoints, or skip the lookups with --private-ip, --eice-id and --eice-dns".into(),
        ),
        "AuthFailure" | "SignatureDoesNotMatch" | "InvalidClientTokenId" | "ExpiredToken" | "RequestExpired" => Some(
            "your credentials were refused: refresh them (e.g. aws sso login) and check your clock".into(),
        ),
        _ => None,
    }
}

fn key_push_hint(code: &str, instance: &str) -> Option<String> {
    Some(match code {
        "AuthException" | "AccessDeniedException" => format!(
            "allow ec2-instance-connect:SendSSHPublicKey on arn:aws:ec2:<region>:<account>:instance/{instance} for this OS user"
        ),
        "ThrottlingException" => "too many key pushes: wait a few seconds and try again".into(),
        "EC2InstanceNotFoundException" => "check the instance ID and the region".into(),
        "EC2InstanceStateInvalidException" => {
            format!("the instance must be running: aws ec2 start-instances --instance-ids {instance}")
        }
        "EC2InstanceUnavailableException" => {
            "the instance cannot take keys right now: check that it is healthy and that its metadata service is on".into()
        }
        "EC2InstanceTypeInvalidException" => "this instance type is not supported by EC2 Instance Connect".into(),
        "InvalidArgsException" => "check the OS user name (--user) and the public key".into(),
        "SerialConsoleSessionLimitExceededException" | "ServiceException" => "retry in a moment".into(),
        _ => return None,
    })
}

/// An error and all its sources, on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_failure_exits_255() {
        let errors = [
            Error::NoRegion,
            Error::InstanceNotFound {
                instance: "i-1".into(),
                region: "r".into(),
            },
            Error::TunnelRejected {
                status: 403,
                code: None,
                message: "m".into(),
                date: None,
            },
            Error::TunnelClosed {
                code: 1001,
                reason: "r".into(),
            },
            Error::AuthRefused { user: "u".into() },
        ];
        for e in errors {
            assert_eq!(e.exit_code(), 255, "{e}");
        }
        assert_eq!(Error::Usage("no instance given".into()).exit_code(), 2);
    }

    /// A wrapped library error stays reachable as the source, the message
    /// reads as before, and printing the chain does not repeat it.
    #[test]
    fn a_wrapped_error_is_the_source_and_printed_once() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let text = refused.to_string();
        let e = Error::TunnelConnect {
            host: "eice.example:443".into(),
            source: refused,
        };
        assert_eq!(
            e.to_string(),
            format!("cannot reach the endpoint eice.example:443: {text}")
        );
        let source = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            source.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        assert_eq!(chain(&e), e.to_string());
        assert!(e.doctor_explains());

        let e = Error::CaBundle {
            path: "/etc/ca.pem".into(),
            source: "it contains no PEM certificate".into(),
        };
        assert_eq!(
            chain(&e),
            "cannot use the CA bundle /etc/ca.pem: it contains no PEM certificate"
        );
        assert!(e.hint().is_some_and(|h| h.contains("AWS_CA_BUNDLE")));

        let parse =
            russh::keys::ssh_key::PublicKey::from_openssh("-----BEGIN OPENSSH PRIVATE KEY-----")
                .expect_err("a private key's first line is no public key");
        let parsed = parse.to_string();
        let e = Error::BadPublicKey {
            path: "/k/id".into(),
            source: PublicKeyProblem::NotOpenSsh(parse),
        };
        assert_eq!(
            chain(&e),
            format!(
                "cannot use the public key /k/id: not an OpenSSH public key ({parsed}); pass the .pub file, not the private key"
            )
        );
        let source = std::error::Error::source(&e).and_then(std::error::Error::source);
        assert!(source.is_some_and(|s| s.is::<russh::keys::ssh_key::Error>()));
    }

    #[test]
    fn hints_name_the_fix() {
        let e = Error::InstanceNotRunning {
            instance: "i-0abc12345".into(),
            name: None,
            state: "stopped".into(),
            region: "eu-west-1".into(),
            profile: None,
        };
        assert_eq!(
            e.to_string(),
            "instance i-0abc12345 is stopped, not running"
        );
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("start-instances --instance-ids i-0abc12345 --region eu-west-1")
        );
        let e = Error::NoEndpointInVpc {
            vpc: "vpc-1".into(),
            subnet: "subnet-9".into(),
            instance: "i-1".into(),
        };
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("--subnet-id subnet-9")
        );
        let e = Error::KeyPush {
            instance: "i-1".into(),
            code: "AuthException".into(),
            message: "no".into(),
        };
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("ec2-instance-connect:SendSSHPublicKey")
        );
        let e = Error::TunnelRejected {
            status: 400,
            code: Some("InvalidParameter".into()),
            message: "bad port".into(),
            date: None,
        };
        assert_eq!(
            e.to_string(),
            "the endpoint refused the tunnel: HTTP 400 InvalidParameter: bad port"
        );
    }
}
