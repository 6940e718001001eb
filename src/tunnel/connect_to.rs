//! `EIC_SSH_CONNECT_TO`: dial another address for an endpoint name, as
//! curl's `--connect-to` does. The name stays what is signed, sent as SNI
//! and `Host`, and what the certificate is verified against; only the TCP
//! destination changes. It serves a split-horizon network that reaches the
//! endpoint through another address, and the project's simulator, whose
//! endpoints have the service's names but listen on loopback.
//!
//! Format: comma-separated `HOST:PORT:CONNECT-HOST:CONNECT-PORT` entries.
//! `HOST` may be `*.suffix` (any name ending in `.suffix`) or empty (any
//! name); `PORT` may be empty (any port). The first entry that matches wins.

use crate::error::Error;

/// The environment variable.
pub const VAR: &str = "EIC_SSH_CONNECT_TO";

/// Where to dial for `host:port`, per the variable's `value`; `None` when no
/// entry matches.
pub fn lookup(value: &str, host: &str, port: u16) -> Result<Option<(String, u16)>, Error> {
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            Error::Usage(format!(
                "{VAR} entry {entry:?} is not HOST:PORT:CONNECT-HOST:CONNECT-PORT"
            ))
        };
        let parts: Vec<&str> = entry.split(':').collect();
        let [pattern, want_port, to_host, to_port] = parts[..] else {
            return Err(bad());
        };
        let to_port: u16 = to_port.parse().map_err(|_| bad())?;
        if to_host.is_empty() {
            return Err(bad());
        }
        let port_matches =
            want_port.is_empty() || want_port.parse::<u16>().map_err(|_| bad())? == port;
        let host_matches = match pattern.strip_prefix("*.") {
            _ if pattern.is_empty() => true,
            Some(suffix) => host
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", suffix.to_ascii_lowercase())),
            None => host.eq_ignore_ascii_case(pattern),
        };
        if host_matches && port_matches {
            return Ok(Some((to_host.to_owned(), to_port)));
        }
    }
    Ok(None)
}

/// [`lookup`] with the variable from the environment.
pub fn from_env(host: &str, port: u16) -> Result<Option<(String, u16)>, Error> {
    match std::env::var(VAR) {
        Ok(v) => lookup(&v, host, port),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_match_by_name_suffix_and_port() {
        let v = "*.a.example:443:127.0.0.1:4443, exact.example::127.0.0.2:5,::fallback:1";
        assert_eq!(
            lookup(v, "x.a.example", 443).unwrap(),
            Some(("127.0.0.1".into(), 4443))
        );
        assert_eq!(
            lookup(v, "X.A.EXAMPLE", 443).unwrap(),
            Some(("127.0.0.1".into(), 4443))
        );
        assert_eq!(
            lookup(v, "exact.example", 9).unwrap(),
            Some(("127.0.0.2".into(), 5))
        );
        assert_eq!(
            lookup(v, "a.example", 443).unwrap(),
            Some(("fallback".into(), 1))
        );
        assert_eq!(
            lookup("*.a.example:443:h:1", "x.a.example", 80).unwrap(),
            None
        );
        assert_eq!(lookup("", "x", 443).unwrap(), None);
    }

    #[test]
    fn a_malformed_entry_is_a_usage_error_naming_it() {
        for bad in ["h:443:127.0.0.1", "h:443::1", "h:x:a:1", "h:443:a:99999"] {
            let err = lookup(bad, "h", 443).unwrap_err();
            assert!(matches!(&err, Error::Usage(m) if m.contains(bad)), "{err}");
        }
    }
}
