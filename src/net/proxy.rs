//! HTTP proxies from the environment, as curl and the AWS CLI read them:
//! `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`, `ALL_PROXY`/`all_proxy`,
//! and `NO_PROXY`/`no_proxy` (host names, which also cover their
//! subdomains, `.suffix` domains, IP addresses, CIDRs and `*`; never a
//! substring match). The rules are hyper-util's, the same the SDK's HTTPS
//! client applies to the API calls, so the calls and the tunnel agree.
//!
//! The tunnel reaches its endpoint through an HTTP `CONNECT`: TLS then runs
//! end to end inside it, so the endpoint's certificate is checked as usual.
//! Credentials in the proxy URL go in a `Proxy-Authorization` header and are
//! never shown: a proxy is always displayed with its password masked.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use http::HeaderValue;
use hyper_util::client::proxy::matcher::Matcher;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a proxy may take to answer a `CONNECT`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The most header bytes taken from a proxy's answer.
const MAX_ANSWER: usize = 16 * 1024;

/// The variables that name a proxy; any of them set means proxies are in play.
pub const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Which proxy, if any, each destination goes through.
pub struct Proxies {
    matcher: Matcher,
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The matcher's own form could show credentials.
        f.write_str("Proxies")
    }
}

impl Proxies {
    /// The proxies the environment names.
    pub fn from_env() -> Proxies {
        Proxies {
            matcher: Matcher::from_env(),
        }
    }

    /// Proxies given as the variables would give them (for tests).
    pub fn new(https: &str, http: &str, all: &str, no: &str) -> Proxies {
        Proxies {
            matcher: Matcher::builder()
                .https(https)
                .http(http)
                .all(all)
                .no(no)
                .build(),
        }
    }

    /// Whether the environment names any proxy at all.
    pub fn any_in_env() -> bool {
        PROXY_VARIABLES
            .iter()
            .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
    }

    /// The proxy for `uri`, or `None` to go direct.
    pub fn for_uri(&self, uri: &http::Uri) -> Option<Proxy> {
        let intercept = self.matcher.intercept(uri)?;
        Some(Proxy {
            uri: intercept.uri().clone(),
            auth: intercept.basic_auth().cloned(),
        })
    }

    /// The proxy for `https://host:port`, or `None` to go direct.
    pub fn for_https(&self, host: &str, port: u16) -> Option<Proxy> {
        let uri = format!("https://{}:{port}/", bracket(host))
            .parse::<http::Uri>()
            .ok()?;
        self.for_uri(&uri)
    }
}

/// One proxy: where it is and the credentials to give it.
#[derive(Clone)]
pub struct Proxy {
    /// `scheme://host:port/`, without credentials.
    uri: http::Uri,
    /// `Basic …`, from the URL's `user:password@`.
    auth: Option<HeaderValue>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

/// The proxy's URL with the user name kept and the password masked:
/// `http://alice:REDACTED@proxy:3128`.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        // Host and port only: a password with an unencoded `@` leaves its
        // tail in the parsed authority (`ss@proxy:3128`).
        let host = self.uri.host().unwrap_or_default();
        let port = self
            .uri
            .port_u16()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        match self.user() {
            Some(user) => write!(f, "{scheme}://{user}:REDACTED@{host}{port}"),
            None => write!(f, "{scheme}://{host}{port}"),
        }
    }
}

impl Proxy {
    /// The user name in the proxy's credentials, if any.
    fn user(&self) -> Option<String> {
        let value = self.auth.as_ref()?.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let text = String::from_utf8_lossy(&decoded);
        Some(text.split(':').next().unwrap_or_default().to_owned())
    }

    /// Open a TCP connection to the proxy and a `CONNECT` tunnel through it
    /// to `host:port`. What comes back carries the bytes to `host:port`.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
        let target = format!("{}:{port}", bracket(host));
        let fail = |failure| ProxyError {
            proxy: self.to_string(),
            target: target.clone(),
            failure,
        };
        if self.uri.scheme_str() != Some("http") {
            return Err(fail(ProxyFailure::Unsupported(format!(
                "eic-ssh talks to proxies in plain HTTP (http://...), not {}://",
                self.uri.scheme_str().unwrap_or("?")
            ))));
        }
        let proxy_host = self.uri.host().unwrap_or_default();
        let proxy_host = proxy_host.trim_start_matches('[').trim_end_matches(']');
        let proxy_port = self.uri.port_u16().unwrap_or(80);
        let mut stream = crate::net::dial::connect(proxy_host, proxy_port)
            .await
            .map_err(|e| fail(ProxyFailure::Unreachable(e.to_string())))?;

        let mut request = format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: eic-ssh/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes();
        if let Some(auth) = &self.auth {
            request.extend_from_slice(b"Proxy-Authorization: ");
            request.extend_from_slice(auth.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        let answer = async {
            stream.write_all(&request).await?;
            read_head(&mut stream).await
        };
        let head = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Err(_) => {
                return Err(fail(ProxyFailure::Unreachable(format!(
                    "no answer to CONNECT within {} s",
                    ANSWER_TIMEOUT.as_secs()
                ))));
            }
            Ok(Err(e)) => return Err(fail(ProxyFailure::Unreachable(e.to_string()))),
            Ok(Ok(head)) => head,
        };
        let (status, reason) = status_line(&head).ok_or_else(|| {
            fail(ProxyFailure::Protocol(format!(
                "not an HTTP answer: {:?}",
                head.lines().next().unwrap_or_default()
            )))
        })?;
        match status {
            200..=299 => Ok(stream),
            _ => Err(fail(ProxyFailure::Refused { status, reason })),
        }
    }
}

/// Read the proxy's answer up to the blank line that ends its headers, and
/// not a byte further: what follows belongs to the tunnel.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_ANSWER {
            return Err(std::io::Error::other("the answer's headers are too long"));
        }
        // One byte at a time: a proxy's answer is a few hundred bytes, once.
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection without answering",
            ));
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// `HTTP/1.1 407 Proxy Authentication Required` → (407, "Proxy Authentication Required").
fn status_line(head: &str) -> Option<(u16, String)> {
    let line = head.lines().next()?;
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    // The reason phrase is the proxy's (or the path's) text: no escapes.
    let reason = crate::text::remote_text(parts.next().unwrap_or_default().trim());
    Some((status, reason))
}

/// `[::1]` for an IPv6 literal, as a URL or `CONNECT` needs it.
fn bracket(host: &str) -> String {
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{host}]"),
        Err(_) => host.to_owned(),
    }
}

/// A proxy that could not carry a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ProxyError {
    /// The proxy, its password masked.
    pub proxy: String,
    /// `host:port` the tunnel was for.
    pub target: String,
    pub failure: ProxyFailure,
}

/// What went wrong with the proxy.
#[derive(Debug, Clone)]
pub enum ProxyFailure {
    /// It answered `CONNECT` with this status.
    Refused { status: u16, reason: String },
    /// It could not be reached, or did not answer.
    Unreachable(String),
    /// Its answer was not HTTP.
    Protocol(String),
    /// It cannot be used at all.
    Unsupported(String),
}

impl ProxyError {
    fn describe(&self) -> String {
        let ProxyError {
            proxy,
            target,
            failure,
        } = self;
        match failure {
            ProxyFailure::Refused { status, reason } => {
                format!("the proxy {proxy} refused CONNECT to {target}: HTTP {status} {reason}")
            }
            ProxyFailure::Unreachable(why) => {
                format!("cannot reach the proxy {proxy} (on the way to {target}): {why}")
            }
            ProxyFailure::Protocol(why) => {
                format!("the proxy {proxy} gave a bad answer to CONNECT {target}: {why}")
            }
            ProxyFailure::Unsupported(why) => format!("cannot use the proxy {proxy}: {why}"),
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match &self.failure {
            // tinyproxy, for one, answers wrong credentials with a 401.
            ProxyFailure::Refused { status: 401 | 407, .. } => "the proxy wants other credentials: put them in the proxy URL (http://user:password@host:port, percent-encoding special characters) in HTTPS_PROXY".into(),
            ProxyFailure::Refused { .. } => "the proxy does not allow this destination: ask its administrator to allow CONNECT to it, or list the host in NO_PROXY if it is reachable directly".into(),
            _ => "check HTTPS_PROXY (or ALL_PROXY), or list the host in NO_PROXY to go direct".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_takes_names_suffixes_ips_cidrs_and_never_substrings() {
        let p = Proxies::new(
            "http://proxy:3128",
            "",
            "",
            "example.com, .internal.test, 10.1.2.3, 192.168.0.0/16, ::1",
        );
        let direct = |h: &str| p.for_https(h, 443).is_none();
        assert!(direct("example.com"));
        assert!(direct("eice.example.com"));
        assert!(direct("a.internal.test"));
        assert!(direct("10.1.2.3"));
        assert!(direct("192.168.4.5"));
        assert!(direct("::1"));
        // A substring is not a match: the AWS CLI's bug.
        assert!(!direct("notexample.com"));
        assert!(!direct("example.com.evil.test"));
        assert!(!direct("10.1.2.30"));
        assert!(!direct("192.169.0.1"));
        let all = Proxies::new("http://proxy:3128", "", "", "*");
        assert!(all.for_https("anything.test", 443).is_none());
    }

    #[test]
    fn https_falls_back_to_all_proxy_and_ignores_http_proxy() {
        let p = Proxies::new("", "http://plain:1", "http://all:2", "");
        assert_eq!(
            p.for_https("h.test", 443).map(|p| p.to_string()),
            Some("http://all:2".to_owned())
        );
        let p = Proxies::new("", "http://plain:1", "", "");
        assert!(p.for_https("h.test", 443).is_none());
    }

    #[test]
    fn the_password_is_never_shown() {
        let p = Proxies::new("http://alice:s%3Acr3t@proxy.test:3128", "", "", "");
        let proxy = p.for_https("h.test", 443).unwrap();
        assert_eq!(proxy.to_string(), "http://alice:REDACTED@proxy.test:3128");
        assert!(!format!("{proxy:?}").contains("cr3t"));
        // An unencoded `@` in the password leaves its tail in the parsed
        // authority: still not shown.
        let p = Proxies::new("http://alice:p@ss@proxy.test:3128", "", "", "");
        let at = p.for_https("h.test", 443).unwrap().to_string();
        assert!(!at.contains("ss@"), "{at}");
        assert!(at.ends_with("@proxy.test:3128"), "{at}");
        let e = ProxyError {
            proxy: proxy.to_string(),
            target: "h.test:443".into(),
            failure: ProxyFailure::Refused {
                status: 407,
                reason: "Proxy Authentication Required".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "the proxy http://alice:REDACTED@proxy.test:3128 refused CONNECT to h.test:443: HTTP 407 Proxy Authentication Required"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            status_line("HTTP/1.0 403 Access violation\r\n\r\n"),
            Some((403, "Access violation".into()))
        );
        assert_eq!(
            status_line("HTTP/1.1 200\r\n\r\n"),
            Some((200, String::new()))
        );
        assert_eq!(status_line("SSH-2.0-OpenSSH\r\n"), None);
        // The reason is the far side's text: no terminal escapes.
        let (_, reason) = status_line("HTTP/1.1 403 \x1b]0;PWNED\x07\x1b[2J\r\n\r\n").unwrap();
        assert!(
            !reason.contains('\x1b') && !reason.contains('\x07'),
            "{reason:?}"
        );
    }
}
