//! The command line's value parsers and word handling: pure functions of
//! their input, so each bad value is named before any network call.

use std::ffi::OsString;

use crate::route::target::Target;

/// An `--allow` CIDR: a restriction, so never every address.
pub(super) fn parse_allow_cidr(s: &str) -> Result<ipnet::Ipv4Net, String> {
    let net =
        crate::aws::cidr::parse_cidr(s).map_err(|e| format!("'{s}' is not an IPv4 CIDR: {e}"))?;
    if net.prefix_len() == 0 {
        return Err(format!(
            "'{s}' allows every address: that is no restriction (name the client networks that may connect)"
        ));
    }
    Ok(net)
}

/// `-v`, `-vv`, `-q`, `--verbose`, `--quiet`, `--no-log` and
/// `--log-file=FILE`: the flags every subcommand takes, in one word.
pub(super) fn is_global_flag(arg: &OsString) -> bool {
    match arg.to_str() {
        Some("--verbose" | "--quiet" | "--no-log") => true,
        Some(s) if s.starts_with("--log-file=") => true,
        Some(s) => s
            .strip_prefix('-')
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|b| b == b'v' || b == b'q')),
        None => false,
    }
}

/// `--host`: one or more ssh_config Host patterns separated by spaces, each
/// made of the characters host names and patterns use. Anything else (a
/// newline, a quote, `#`) could change the file's meaning.
pub fn parse_host_patterns(s: &str) -> Result<String, String> {
    let patterns: Vec<&str> = s.split(' ').filter(|p| !p.is_empty()).collect();
    let ok = !patterns.is_empty()
        && patterns.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-*?!:[]@%".contains(&b))
        });
    match ok {
        true => Ok(patterns.join(" ")),
        false => Err(format!(
            "{s:?} is not a Host pattern list: use host names and patterns (letters, digits, . _ - * ? ! : [ ] @ %) separated by spaces"
        )),
    }
}

pub(super) fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
}

pub(super) fn parse_port_forward(s: &str) -> Result<crate::ssh::forward::PortForward, String> {
    s.parse()
}

pub(super) fn parse_dynamic_forward(
    s: &str,
) -> Result<crate::ssh::forward::DynamicForward, String> {
    s.parse()
}

pub(super) fn parse_user(s: &str) -> Result<String, String> {
    crate::route::target::validate_user(s).map(|()| s.to_owned())
}

/// The service tunnels only to 22 and 3389; say so before any network call.
/// An AWS region name (`us-east-1`), as `--region` takes it.
pub fn parse_region(s: &str) -> Result<String, String> {
    crate::aws::region_name(s)
}

pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p @ (22 | 3389)) => Ok(p),
        _ => Err(format!(
            "port '{s}' is not allowed: EC2 Instance Connect Endpoints only open tunnels to port 22 (SSH) or 3389 (RDP)"
        )),
    }
}

pub(super) fn parse_eice_id(s: &str) -> Result<String, String> {
    let ok = s.strip_prefix("eice-").is_some_and(|h| {
        !h.is_empty() && h.len() <= 17 && h.bytes().all(|b| b.is_ascii_hexdigit())
    });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "'{s}' is not an EC2 Instance Connect Endpoint ID: expected eice- followed by hexadecimal digits, e.g. eice-0123456789abcdef0"
        ))
    }
}

/// The OS user: `-l` wins over `user@`, and `ec2-user` is the default.
pub fn os_user(flag: Option<&String>, target: Option<&Target>) -> String {
    flag.cloned()
        .or_else(|| target.and_then(|t| t.user.clone()))
        .unwrap_or_else(|| "ec2-user".to_owned())
}

pub(super) fn join_words(words: &[OsString]) -> Vec<u8> {
    let mut line = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        line.extend_from_slice(word.as_encoded_bytes());
    }
    line
}

/// `s` as one shell word, quoted only when it needs to be.
pub(super) fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:=/@".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
