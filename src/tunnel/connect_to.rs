//! `EIC_SSH_CONNECT_TO`: dial another address for an endpoint name, as
//! curl's `--connect-to` does. The name stays what is signed, sent as SNI
//! and `Host`, and what the certificate is verified against; only the TCP
//! destination changes. It serves a split-horizon network that reaches the
//! endpoint through another address, and the project's simulator, whose
//! endpoints have the service's names but listen on loopback.
//!
//! Format: comma-separated `HOST:PORT:CONNECT-HOST:CONNECT-PORT` entries.
//! `HOST` may be `*.suffix` (any name ending in `.suffix`) or empty (any
//! name); `PORT` may be empty (any port); `CONNECT-HOST` may be a name, an
//! IPv4 address or a bracketed IPv6 one (`[::1]`). Every entry that matches
//! is dialed, in order, as the addresses of one name: a dual-stack name
//! mapped to `[::1]` and `127.0.0.1` gets Happy Eyeballs across both.

use crate::error::Error;

/// The environment variable.
pub const VAR: &str = "EIC_SSH_CONNECT_TO";

/// Where to dial for `host:port`, per the variable's `value`: every
/// matching entry's (address, port), in order; empty when none matches.
pub fn lookup(value: &str, host: &str, port: u16) -> Result<Vec<(String, u16)>, Error> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            Error::Usage(format!(
                "{VAR} entry {entry:?} is not HOST:PORT:CONNECT-HOST:CONNECT-PORT"
            ))
        };
        let mut parts = entry.splitn(3, ':');
        let (Some(pattern), Some(want_port), Some(to)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (to_host, to_port) = to.rsplit_once(':').ok_or_else(bad)?;
        let to_port: u16 = to_port.parse().map_err(|_| bad())?;
        let to_host = match to_host.strip_prefix('[') {
            Some(rest) => {
                let v6 = rest.strip_suffix(']').ok_or_else(bad)?;
                v6.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
                v6
            }
            None if to_host.contains(':') => return Err(bad()),
            None => to_host,
        };
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
            out.push((to_host.to_owned(), to_port));
        }
    }
    Ok(out)
}

/// [`lookup`] with the variable from the environment.
pub fn from_env(host: &str, port: u16) -> Result<Vec<(String, u16)>, Error> {
    match std::env::var(VAR) {
        Ok(v) => lookup(&v, host, port),
        Err(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulator sets the variable for the client (it has its own copy
    /// of the name, pinned on its side too).
    #[test]
    fn the_simulator_sets_this_variable() {
        assert_eq!(VAR, "EIC_SSH_CONNECT_TO");
        assert_eq!(eic_sim::CONNECT_TO_VAR, VAR);
    }

    #[test]
    fn entries_match_by_name_suffix_and_port() {
        let v = "*.a.example:443:127.0.0.1:4443, exact.example::127.0.0.2:5,::fallback:1";
        let one = |h: &str, p: u16| vec![(h.to_owned(), p)];
        assert_eq!(
            lookup(v, "x.a.example", 443).unwrap(),
            [one("127.0.0.1", 4443), one("fallback", 1)].concat()
        );
        assert_eq!(
            lookup(v, "X.A.EXAMPLE", 443).unwrap(),
            [one("127.0.0.1", 4443), one("fallback", 1)].concat()
        );
        assert_eq!(
            lookup(v, "exact.example", 9).unwrap(),
            [one("127.0.0.2", 5), one("fallback", 1)].concat()
        );
        assert_eq!(lookup(v, "a.example", 443).unwrap(), one("fallback", 1));
        // Both families of one name, IPv6 bracketed.
        let v = "dual.example:443:[::1]:7,dual.example:443:127.0.0.1:8";
        assert_eq!(
            lookup(v, "dual.example", 443).unwrap(),
            [one("::1", 7), one("127.0.0.1", 8)].concat()
        );
        assert_eq!(
            lookup("*.a.example:443:h:1", "x.a.example", 80).unwrap(),
            vec![]
        );
        assert_eq!(lookup("", "x", 443).unwrap(), vec![]);
    }

    #[test]
    fn a_malformed_entry_is_a_usage_error_naming_it() {
        for bad in [
            "h:443:127.0.0.1",
            "h:443::1",
            "h:x:a:1",
            "h:443:a:99999",
            "h:443:::1:5",
            "h:443:[::1:5",
            "h:443:[nope]:5",
        ] {
            let err = lookup(bad, "h", 443).unwrap_err();
            assert!(matches!(&err, Error::Usage(m) if m.contains(bad)), "{err}");
        }
    }
}
