//! Forwarding specifications with OpenSSH's syntax: `-L [BIND:]PORT:HOST:HOSTPORT`,
//! `-R [BIND:]PORT:HOST:HOSTPORT` and `-D [BIND:]PORT`, parsed before any
//! network call.

use std::fmt;
use std::str::FromStr;

/// Where a listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// No address given: loopback only (127.0.0.1 and ::1), as OpenSSH does.
    Loopback,
    /// `*` or an empty address: every interface.
    Any,
    /// A host name or address (brackets removed from IPv6).
    Addr(String),
}

impl Bind {
    fn parse(s: &str) -> Bind {
        match s {
            "" | "*" => Bind::Any,
            "localhost" => Bind::Loopback,
            a => Bind::Addr(a.to_owned()),
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Loopback => f.write_str("localhost"),
            Bind::Any => f.write_str("*"),
            Bind::Addr(a) if a.contains(':') => write!(f, "[{a}]"),
            Bind::Addr(a) => f.write_str(a),
        }
    }
}

/// `-L` or `-R`: a listening side and the host:port each connection goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub bind: Bind,
    /// The listening port; 0 lets the listener pick one.
    pub port: u16,
    pub host: String,
    pub host_port: u16,
}

/// `-D`: a SOCKS proxy listening locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicForward {
    pub bind: Bind,
    pub port: u16,
}

impl fmt::Display for PortForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{}:{}:{host}:{}", self.bind, self.port, self.host_port)
    }
}

/// Split on colons outside `[...]`, removing the brackets, as OpenSSH's
/// `hpdelim` does.
fn fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '[' if at_field_start => {
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some(c) => inner.push(c),
                        None => return Err(format!("unclosed '[' in '{s}'")),
                    }
                }
                if !matches!(chars.peek(), None | Some(':')) {
                    return Err(format!("expected ':' after ']' in '{s}'"));
                }
                cur.push_str(&inner);
                at_field_start = false;
            }
            ':' => {
                out.push(std::mem::take(&mut cur));
                at_field_start = true;
            }
            c => {
                cur.push(c);
                at_field_start = false;
            }
        }
    }
    out.push(cur);
    Ok(out)
}

/// Why `host` cannot name a host for the instance to connect to, if it
/// cannot: it must be an IP address, or a DNS name (labels of letters,
/// digits, `-` and `_`, up to 63 bytes each and 253 in all, a final `.`
/// allowed). Anything else is refused here: OpenSSH's sshd ends the whole
/// session on a name holding NUL, and nothing else would resolve anyway.
pub fn check_host(host: &str) -> Result<(), &'static str> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err("a host name is 1 to 253 characters");
    }
    if host.chars().any(char::is_control) {
        return Err("it holds a control character");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match name.split('.').all(label_ok) {
        true => Ok(()),
        false => Err(
            "a host name is dot-separated labels of letters, digits, '-' and '_' (or give an IP address)",
        ),
    }
}

fn port(s: &str, what: &str, spec: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("bad {what} '{s}' in '{spec}': expected a number from 0 to 65535"))
}

fn host_port(f: &[String], spec: &str) -> Result<(String, u16), String> {
    let [host, hp] = f else {
        return Err(format!("bad forwarding specification '{spec}'"));
    };
    if host.is_empty() {
        return Err(format!("missing host in '{spec}'"));
    }
    check_host(host).map_err(|why| format!("bad host {host:?} in {spec:?}: {why}"))?;
    let hp = port(hp, "port", spec)?;
    if hp == 0 {
        return Err(format!(
            "bad port '0' in '{spec}': the destination needs a port"
        ));
    }
    Ok((host.clone(), hp))
}

impl FromStr for PortForward {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let f = fields(spec)?;
        let (bind, rest) = match f.len() {
            3 => (Bind::Loopback, &f[..]),
            4 => (Bind::parse(&f[0]), &f[1..]),
            _ => {
                return Err(format!(
                    "bad forwarding specification '{spec}': expected [BIND:]PORT:HOST:HOSTPORT{}",
                    ipv6_hint(f.len() > 4)
                ));
            }
        };
        let listen = port(&rest[0], "listening port", spec)?;
        let (host, host_port) = host_port(&rest[1..], spec)?;
        Ok(PortForward {
            bind,
            port: listen,
            host,
            host_port,
        })
    }
}

/// Too many fields usually means an IPv6 address without its brackets.
fn ipv6_hint(too_many: bool) -> &'static str {
    match too_many {
        true => " (put an IPv6 address in brackets, e.g. [::1]:8080:db:5432)",
        false => "",
    }
}

impl FromStr for DynamicForward {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let f = fields(spec)?;
        let (bind, p) = match &f[..] {
            [p] => (Bind::Loopback, p),
            [b, p] => (Bind::parse(b), p),
            _ => {
                return Err(format!(
                    "bad dynamic forwarding specification '{spec}': expected [BIND:]PORT{}",
                    ipv6_hint(f.len() > 2)
                ));
            }
        };
        Ok(DynamicForward {
            bind,
            port: port(p, "listening port", spec)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(bind: Bind, port: u16, host: &str, host_port: u16) -> PortForward {
        PortForward {
            bind,
            port,
            host: host.into(),
            host_port,
        }
    }

    #[test]
    fn port_forwards_parse_like_openssh() {
        let rds = "mydb.cluster-x.us-east-1.rds.amazonaws.com";
        for (spec, want) in [
            (
                "5432:mydb.cluster-x.us-east-1.rds.amazonaws.com:5432",
                fwd(Bind::Loopback, 5432, rds, 5432),
            ),
            (
                "0.0.0.0:8080:web:80",
                fwd(Bind::Addr("0.0.0.0".into()), 8080, "web", 80),
            ),
            ("*:8080:web:80", fwd(Bind::Any, 8080, "web", 80)),
            (":8080:web:80", fwd(Bind::Any, 8080, "web", 80)),
            (
                "localhost:8080:web:80",
                fwd(Bind::Loopback, 8080, "web", 80),
            ),
            (
                "[::1]:8080:[fd00::5]:443",
                fwd(Bind::Addr("::1".into()), 8080, "fd00::5", 443),
            ),
            ("0:10.0.0.5:22", fwd(Bind::Loopback, 0, "10.0.0.5", 22)),
        ] {
            assert_eq!(spec.parse::<PortForward>(), Ok(want), "{spec}");
        }
    }

    #[test]
    fn bad_forwards_name_the_bad_value() {
        for (spec, needle) in [
            ("5432:db", "'5432:db'"),
            ("x:db:5432", "bad listening port 'x'"),
            ("70000:db:5432", "'70000'"),
            ("5432:db:pg", "bad port 'pg'"),
            ("5432::5432", "missing host"),
            ("5432:db:0", "bad port '0'"),
            ("[::1:5432:db:1", "unclosed '['"),
            ("a:b:c:d:e", "expected [BIND:]PORT:HOST:HOSTPORT"),
            ("5432:db\nx:5432", "control character"),
            ("5432:db..internal:5432", "bad host \"db..internal\""),
            ("5432:-oProxy:5432", "bad host"),
            ("5432:a b:5432", "bad host"),
        ] {
            let err = spec.parse::<PortForward>().unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        for good in [
            "db",
            "db.internal",
            "db.internal.",
            "my_db-1.cluster-x.us-east-1.rds.amazonaws.com",
            "10.0.0.7",
            "fd00::5",
            &"a".repeat(63),
        ] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            ".",
            "a\0b",
            "db\r\n",
            "a..b",
            ".a",
            "-a",
            "a b",
            "a/b",
            "[::1]",
            "bücher.example",
            &"a".repeat(64),
            &["a"; 130].join("."),
        ] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dynamic_forwards_parse_like_openssh() {
        assert_eq!(
            "1080".parse::<DynamicForward>(),
            Ok(DynamicForward {
                bind: Bind::Loopback,
                port: 1080
            })
        );
        assert_eq!(
            "*:1080".parse::<DynamicForward>(),
            Ok(DynamicForward {
                bind: Bind::Any,
                port: 1080
            })
        );
        assert_eq!(
            "[::1]:1080".parse::<DynamicForward>(),
            Ok(DynamicForward {
                bind: Bind::Addr("::1".into()),
                port: 1080
            })
        );
        let err = "1:2:3".parse::<DynamicForward>().unwrap_err();
        assert!(err.contains("'1:2:3'"), "{err}");
        let err = "socks".parse::<DynamicForward>().unwrap_err();
        assert!(err.contains("'socks'"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "localhost:5432:db:5432",
            "*:0:[fd00::5]:443",
            "[::1]:80:web:80",
        ] {
            let f: PortForward = spec.parse().unwrap();
            assert_eq!(f.to_string().parse::<PortForward>().unwrap(), f);
        }
    }
}
