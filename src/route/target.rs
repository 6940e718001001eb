//! Parsing `[user@]i-0123456789abcdef0`, before any network call.

use std::fmt;
use std::str::FromStr;

/// A validated connection target: an instance ID and an optional OS user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    pub instance_id: String,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (user, id) = match s.rsplit_once('@') {
            Some((user, id)) => (Some(user), id),
            None => (None, s),
        };
        if let Some(user) = user {
            validate_user(user)?;
        }
        validate_instance_id(id)?;
        Ok(Target {
            user: user.map(str::to_owned),
            instance_id: id.to_owned(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(u) => write!(f, "{u}@{}", self.instance_id),
            None => f.write_str(&self.instance_id),
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

/// OS user names as EC2 Instance Connect accepts them (1–32 characters,
/// starting with a letter or underscore).
pub fn validate_user(user: &str) -> Result<(), String> {
    let mut chars = user.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'));
    if first_ok && rest_ok && user.len() <= 32 {
        Ok(())
    } else {
        Err(format!(
            "'{user}' is not a valid OS user name: use 1-32 letters, digits, '_', '-' or '.', starting with a letter or '_'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t: Target = "i-0123456789abcdef0".parse().unwrap();
        assert_eq!(
            t,
            Target {
                user: None,
                instance_id: "i-0123456789abcdef0".into()
            }
        );
        let t: Target = "ubuntu@i-0123abcd".parse().unwrap();
        assert_eq!(t.user.as_deref(), Some("ubuntu"));
        assert_eq!(t.instance_id, "i-0123abcd");
        assert_eq!(t.to_string(), "ubuntu@i-0123abcd");
    }

    #[test]
    fn rejects_bad_targets_naming_the_value() {
        for bad in [
            "",
            "i-",
            "i-xyz",
            "i-0123456789ABCDEF0",
            "i-0123456789abcdef",
            "10.0.0.1",
            "host.example.com",
            "i-0123456789abcdef00",
        ] {
            let err = bad.parse::<Target>().err().unwrap_or_default();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        for bad in [
            "@i-0123abcd",
            "1user@i-0123abcd",
            "us er@i-0123abcd",
            "a@b@i-0123abcd",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
