//! The command line's value parsers and word handling: pure functions of
//! their input, so each bad value is named before any network call.

use std::ffi::OsString;

use crate::target::syntax::Target;

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

/// `--color` as the words give it (the last one wins; `auto`, which
/// honours NO_COLOR, if none), before the parser has run.
pub(super) fn color_choice(args: &[OsString]) -> clap::ColorChoice {
    let mut choice = clap::ColorChoice::Auto;
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    while let Some(word) = words.next() {
        let value = match word {
            Some("--") => break,
            Some("--color") => words.next().flatten(),
            Some(w) => w.strip_prefix("--color="),
            None => None,
        };
        choice = match value {
            Some("always") => clap::ColorChoice::Always,
            Some("never") => clap::ColorChoice::Never,
            Some("auto") => clap::ColorChoice::Auto,
            _ => choice,
        };
    }
    choice
}

/// How many of `rest` (the words after the program's name) are options
/// given before a subcommand's name that the subcommand takes too: those
/// can move after the name. `None` when no option comes first, the word
/// after them is no subcommand, or the subcommand does not take one of
/// them (it is then the session's target). `command` is built, so that the
/// subcommands hold the global options too.
pub(super) fn options_before_subcommand(
    command: &clap::Command,
    rest: &[OsString],
) -> Option<usize> {
    let (i, given) = leading_options(command, rest)?;
    if given.is_empty() {
        return None;
    }
    let name = rest.get(i)?.to_str()?;
    let sub = command.find_subcommand(name)?;
    let takes = |(long, short): &(Option<&str>, Option<char>)| {
        sub.get_arguments().any(|a| match (long, short) {
            (Some(l), _) => a.get_long() == Some(*l),
            (None, Some(c)) => a.get_short() == Some(*c),
            (None, None) => false,
        })
    };
    given.iter().all(takes).then_some(i)
}

/// The subcommand named in `rest` after any options of the session, if
/// one is (for messages about a command line clap refused).
pub(super) fn subcommand_named<'a>(
    command: &clap::Command,
    rest: &'a [OsString],
) -> Option<&'a str> {
    let (i, _) = leading_options(command, rest)?;
    let name = rest.get(i)?.to_str()?;
    command.find_subcommand(name).map(|_| name)
}

/// (long name, short) of an option, as given.
type Given<'a> = (Option<&'a str>, Option<char>);

/// The options of `command` at the start of `rest`, with their values: how
/// many words they take, and which options they are. `None` at a word that
/// is no option of `command`, or at `--`.
fn leading_options<'c>(
    command: &'c clap::Command,
    rest: &[OsString],
) -> Option<(usize, Vec<Given<'c>>)> {
    let top: Vec<&clap::Arg> = command.get_arguments().collect();
    let takes_value = |a: &clap::Arg| a.get_action().takes_values();
    let mut given: Vec<Given<'c>> = Vec::new();
    let mut i = 0;
    while let Some(word) = rest.get(i) {
        let word = word.to_str()?;
        if word == "--" {
            return None;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let arg = top.iter().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            })?;
            given.push((arg.get_long(), None));
            i += 1;
            if takes_value(arg) && inline.is_none() {
                i += 1;
            }
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            i += 1;
            for (at, c) in shorts.char_indices() {
                let arg = top.iter().find(|a| a.get_short() == Some(c))?;
                given.push((None, Some(c)));
                if takes_value(arg) {
                    // The rest of the word is its value, else the next word.
                    if at + c.len_utf8() == shorts.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            break;
        }
    }
    Some((i, given))
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
    crate::target::syntax::validate_user(s).map(|()| s.to_owned())
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
