//! Parsing a target, `[user@]EXPR`, before any network call. The expression
//! names instances the way people do: by ID, private IPv4 address, private
//! DNS name, `tag:KEY=VALUE`, or else by the value of the `Name` tag.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// How a target names its instances.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetExpr {
    /// `i-0123456789abcdef0`: exactly that instance, whatever its state.
    Id(String),
    /// `10.0.1.23`: the instance with that private IPv4 address.
    PrivateIp(Ipv4Addr),
    /// `ip-10-0-1-23.ec2.internal`: the instance with that private DNS name.
    PrivateDns(String),
    /// `tag:KEY=VALUE`: instances with that tag.
    Tag { key: String, value: String },
    /// Anything else: the value of the `Name` tag.
    Name(String),
}

impl TargetExpr {
    /// The `DescribeInstances` filter that finds the expression's
    /// instances, as (name, value); `None` for an ID, which is asked for
    /// by `InstanceId` instead.
    pub fn filter(&self) -> Option<(String, String)> {
        match self {
            TargetExpr::Id(_) => None,
            TargetExpr::PrivateIp(ip) => Some(("private-ip-address".into(), ip.to_string())),
            TargetExpr::PrivateDns(d) => Some(("private-dns-name".into(), d.clone())),
            TargetExpr::Tag { key, value } => Some((format!("tag:{key}"), value.clone())),
            TargetExpr::Name(n) => Some(("tag:Name".into(), n.clone())),
        }
    }

    /// The instance ID, when the expression is one.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            TargetExpr::Id(id) => Some(id),
            _ => None,
        }
    }

    /// What was searched, for messages: `Name tag 'web'`, `private IP 10.0.1.23`.
    pub fn describe(&self) -> String {
        match self {
            TargetExpr::Id(id) => format!("instance ID {id}"),
            TargetExpr::PrivateIp(ip) => format!("private IP address {ip}"),
            TargetExpr::PrivateDns(d) => format!("private DNS name {d}"),
            TargetExpr::Tag { key, value } => format!("tag {key}={value}"),
            TargetExpr::Name(n) => format!("Name tag '{n}'"),
        }
    }
}

impl fmt::Display for TargetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetExpr::Id(id) => f.write_str(id),
            TargetExpr::PrivateIp(ip) => write!(f, "{ip}"),
            TargetExpr::PrivateDns(d) => f.write_str(d),
            TargetExpr::Tag { key, value } => write!(f, "tag:{key}={value}"),
            TargetExpr::Name(n) => f.write_str(n),
        }
    }
}

impl FromStr for TargetExpr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("'' is not a target: give an instance ID, a private IP address, a private DNS name, tag:KEY=VALUE or a Name tag".into());
        }
        if let Some(hex) = s.strip_prefix("i-")
            && !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            // Shaped like an ID: it must be a valid one, not a Name tag.
            validate_instance_id(s)?;
            return Ok(TargetExpr::Id(s.to_owned()));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.contains('.') {
            return s
                .parse::<Ipv4Addr>()
                .map(TargetExpr::PrivateIp)
                .map_err(|_| {
                    format!("'{s}' is not a valid IPv4 address (expected e.g. 10.0.1.23)")
                });
        }
        if let Some(rest) = s.strip_prefix("tag:") {
            return match rest.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok(TargetExpr::Tag {
                    key: key.to_owned(),
                    value: value.to_owned(),
                }),
                _ => Err(format!(
                    "'{s}' is not a tag target: expected tag:KEY=VALUE, e.g. tag:Role=web"
                )),
            };
        }
        // EC2's own forms only (`ip-10-0-1-23.ec2.internal`,
        // `i-0123….us-west-2.compute.internal`): a Name tag such as
        // `vault.corp.internal` is a Name.
        let lower = s.to_ascii_lowercase();
        if (lower.ends_with(".ec2.internal") || lower.ends_with(".compute.internal"))
            && !s.contains(char::is_whitespace)
        {
            // EC2's private DNS names are lowercase, and so is the filter.
            return Ok(TargetExpr::PrivateDns(lower));
        }
        Ok(TargetExpr::Name(s.to_owned()))
    }
}

/// A validated target: an expression and an optional OS user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    pub expr: TargetExpr,
}

impl Target {
    /// The instance ID, when the target names one.
    pub fn instance_id(&self) -> Option<&str> {
        self.expr.instance_id()
    }
}

impl FromStr for Target {
    type Err = String;

    /// `user@EXPR`: the part before the first `@` is the OS user.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A tag value may hold an `@` (`tag:Owner=alice@example.com`); a
        // user name never holds a `:`, so `tag:…` has no user before it.
        let (user, expr) = match s.split_once('@') {
            Some((user, expr)) if !user.contains(':') => (Some(user), expr),
            _ => (None, s),
        };
        if let Some(user) = user {
            validate_user(user)?;
        }
        Ok(Target {
            user: user.map(str::to_owned),
            expr: expr.parse()?,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(u) => write!(f, "{u}@{}", self.expr),
            None => write!(f, "{}", self.expr),
        }
    }
}

/// Instance IDs are `i-` followed by 8 (old) or 17 lowercase hex digits.
pub fn validate_instance_id(id: &str) -> Result<(), String> {
    let ok = id.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not an EC2 instance ID: expected i- followed by 8 or 17 lowercase hexadecimal digits, e.g. i-0123456789abcdef0"
        ))
    }
}

/// OS user names as EC2 Instance Connect accepts them: 1–32 characters, a
/// letter or `_` first, then letters, digits, `@`, `.`, `_` or `-`, and a
/// `$` only last (`^[A-Za-z_][A-Za-z0-9@._-]{0,30}[A-Za-z0-9$_-]?$`).
pub fn validate_user(user: &str) -> Result<(), String> {
    let b = user.as_bytes();
    let middle = |c: &u8| c.is_ascii_alphanumeric() || b"@._-".contains(c);
    let ok = match b.split_first() {
        Some((first, rest)) if (first.is_ascii_alphabetic() || *first == b'_') && b.len() <= 32 => {
            match rest.split_last() {
                None => true,
                // The 32nd character may only be one the last may be.
                Some((last, mid)) => {
                    mid.iter().all(middle)
                        && (*last == b'$'
                            || (middle(last) && (b.len() < 32 || !b"@.".contains(last))))
                }
            }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{user}' is not a valid OS user name: use 1-32 letters, digits, '_', '-', '.' or '@', starting with a letter or '_' ('$' only at the end)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> TargetExpr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_each_kind_of_expression() {
        assert_eq!(
            expr("i-0123456789abcdef0"),
            TargetExpr::Id("i-0123456789abcdef0".into())
        );
        assert_eq!(expr("i-0123abcd"), TargetExpr::Id("i-0123abcd".into()));
        assert_eq!(
            expr("10.0.1.23"),
            TargetExpr::PrivateIp(Ipv4Addr::new(10, 0, 1, 23))
        );
        assert_eq!(
            expr("ip-10-0-1-23.ec2.internal"),
            TargetExpr::PrivateDns("ip-10-0-1-23.ec2.internal".into())
        );
        assert_eq!(
            expr("IP-10-0-1-23.eu-west-1.compute.internal"),
            TargetExpr::PrivateDns("ip-10-0-1-23.eu-west-1.compute.internal".into())
        );
        assert_eq!(
            expr("i-0123456789abcdef0.ec2.internal"),
            TargetExpr::PrivateDns("i-0123456789abcdef0.ec2.internal".into())
        );
        assert_eq!(
            expr("tag:Role=web"),
            TargetExpr::Tag {
                key: "Role".into(),
                value: "web".into()
            }
        );
        assert_eq!(
            expr("tag:k=a=b"),
            TargetExpr::Tag {
                key: "k".into(),
                value: "a=b".into()
            }
        );
        for name in [
            "web-1",
            "i-web",
            "web server",
            "host.example.com",
            "10.0.x",
            "vault.corp.internal",
        ] {
            assert_eq!(expr(name), TargetExpr::Name(name.into()), "{name}");
        }
    }

    #[test]
    fn each_expression_is_one_filter() {
        let f = |s: &str| expr(s).filter();
        assert_eq!(f("i-0123abcd"), None);
        assert_eq!(
            f("10.0.1.23"),
            Some(("private-ip-address".into(), "10.0.1.23".into()))
        );
        assert_eq!(
            f("ip-10-0-1-23.ec2.internal"),
            Some((
                "private-dns-name".into(),
                "ip-10-0-1-23.ec2.internal".into()
            ))
        );
        assert_eq!(f("tag:Role=web"), Some(("tag:Role".into(), "web".into())));
        assert_eq!(f("web-1"), Some(("tag:Name".into(), "web-1".into())));
    }

    #[test]
    fn parses_targets_with_users() {
        let t: Target = "ubuntu@i-0123abcd".parse().unwrap();
        assert_eq!(t.user.as_deref(), Some("ubuntu"));
        assert_eq!(t.instance_id(), Some("i-0123abcd"));
        assert_eq!(t.to_string(), "ubuntu@i-0123abcd");
        let t: Target = "ec2-user@tag:Role=web".parse().unwrap();
        assert_eq!(t.user.as_deref(), Some("ec2-user"));
        assert_eq!(t.to_string(), "ec2-user@tag:Role=web");
        // A tag value with an `@` is not a user.
        let t: Target = "tag:Owner=alice@example.com".parse().unwrap();
        assert_eq!(t.user, None);
        assert_eq!(
            t.expr,
            TargetExpr::Tag {
                key: "Owner".into(),
                value: "alice@example.com".into()
            }
        );
        let t: Target = "ec2-user@tag:Owner=alice@example.com".parse().unwrap();
        assert_eq!(t.user.as_deref(), Some("ec2-user"));
        let t: Target = "web-1".parse().unwrap();
        assert_eq!(t.user, None);
        assert_eq!(t.instance_id(), None);
    }

    #[test]
    fn rejects_bad_targets_naming_the_value() {
        for bad in [
            "",
            "i-0123456789ABCDEF0",
            "i-0123456789abcdef",
            "i-0123456789abcdef00",
            "i-0123",
            "10.0.0.300",
            "10.0.0",
            "tag:Role",
            "tag:=web",
        ] {
            let err = bad.parse::<Target>().err().unwrap_or_default();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        for ok in ["svc$", "a.b-c_d", &format!("a{}", "b".repeat(31))] {
            assert!(validate_user(ok).is_ok(), "{ok}");
        }
        for bad in ["a$b", &format!("a{}.", "b".repeat(30)), &"a".repeat(33)] {
            assert!(validate_user(bad).is_err(), "{bad}");
        }
        for bad in ["@i-0123abcd", "1user@i-0123abcd", "us er@i-0123abcd"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
