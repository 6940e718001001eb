//! A command line clap refused, said as eic-ssh says everything
//! (`eic-ssh: …`, `eic-ssh: hint: …`), and an OpenSSH option typed out of
//! habit mapped to what eic-ssh does instead: clap's own tip ("to pass '-o'
//! as a value, use '-- -o'") would run `-o` on the instance.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::Cli;

/// What to print for `e`, clap's refusal of `args`: its message and usage
/// in eic-ssh's style, with the OpenSSH option's meaning as the hint where
/// one was given.
pub fn refusal(e: &clap::Error, args: &[OsString]) -> String {
    // An unknown option gets one hint: a similar option of eic-ssh's, else
    // what the OpenSSH option means here, else where the options are listed;
    // never clap's "use '-- -o'", which would run it on the instance.
    let advice = match e.kind() {
        ErrorKind::UnknownArgument => unknown_argument(e).map(|flag| {
            let sub = subcommand_in(args);
            if let Some(ContextValue::String(similar)) = e.get(ContextKind::SuggestedArg) {
                return format!("did you mean '{similar}'?");
            }
            openssh_advice(
                &flag,
                value_after(&flag, args),
                sub.as_deref() == Some("cp"),
            )
            .unwrap_or_else(|| {
                let sub = sub.map(|s| format!(" {s}")).unwrap_or_default();
                format!("eic-ssh{sub} --help lists the options")
            })
        }),
        _ => None,
    };
    restyle(&e.render().to_string(), advice.as_deref())
}

/// A remote command that begins with an OpenSSH option, given without `--`
/// (`eic-ssh web-1 -i key`): what the option means, as for the same option
/// before the target; `None` for any other command.
pub fn option_as_command(cli: &Cli, args: &[OsString]) -> Option<(String, String)> {
    let first = cli.ssh.command.first()?.to_str()?;
    // After `--`, a word that starts with `-` is the user's command.
    if args.iter().any(|a| a == "--") {
        return None;
    }
    let flag = openssh_flag(first)?;
    let advice = openssh_advice(&flag, value_after(&flag, args), false)?;
    Some((format!("unexpected argument '{flag}' found"), advice))
}

/// The unknown argument clap names (`-o`, `--foo`).
fn unknown_argument(e: &clap::Error) -> Option<String> {
    match e.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The option a word begins with, if it is one of OpenSSH's (`-ikey` is
/// `-i`).
fn openssh_flag(word: &str) -> Option<String> {
    let letter = word.strip_prefix('-')?.chars().next()?;
    "1246ABCDEFGIJKLMNOPQRSTVWXYabcefgiklmnopqstvwxy"
        .contains(letter)
        .then(|| format!("-{letter}"))
}

/// The value given to `flag` in `args`: the rest of its word (`-ikey`), or
/// the next word.
fn value_after<'a>(flag: &str, args: &'a [OsString]) -> Option<&'a str> {
    let at = args
        .iter()
        .position(|a| a.to_str().is_some_and(|w| w.starts_with(flag)))?;
    let word = args.get(at)?.to_str()?;
    match word.strip_prefix(flag).filter(|rest| !rest.is_empty()) {
        Some(rest) => Some(rest),
        None => args.get(at + 1)?.to_str(),
    }
}

/// The subcommand of the refused command line (`cp` in `eic-ssh cp …`).
fn subcommand_in(args: &[OsString]) -> Option<String> {
    let mut command = <Cli as clap::CommandFactory>::command();
    command.build();
    args.get(1..)
        .and_then(|rest| super::parse::subcommand_named(&command, rest))
        .map(str::to_owned)
}

/// What an OpenSSH option (with its value) means for eic-ssh: the flag to
/// use instead, or why none is needed.
pub fn openssh_advice(flag: &str, value: Option<&str>, in_cp: bool) -> Option<String> {
    const SSH_CONFIG: &str = "for OpenSSH's own options, use ssh through eic-ssh: eic-ssh ssh-config --include, then ssh";
    Some(match flag {
        "-R" if in_cp => {
            "did you mean -r? It copies directories and everything in them, as scp -r does".into()
        }
        "-i" => {
            let key = value.unwrap_or("KEY");
            // An AWS key pair's .pem has no .pub beside it.
            let (public, make) = match key.strip_suffix(".pem") {
                Some(base) => (
                    format!("{base}.pub"),
                    format!(" (make it with: ssh-keygen -y -f {key} > {base}.pub)"),
                ),
                None => (format!("{key}.pub"), String::new()),
            };
            format!(
                "eic-ssh needs no key file: it pushes a fresh ephemeral key for each connection (valid 60 s, never written to disk). To log in with your own key, use ssh with `eic-ssh proxy --public-key {public} %h %p` as its ProxyCommand{make} (eic-ssh ssh-config writes the block), then: ssh -i {key} HOST"
            )
        }
        "-o" => {
            let option = value.unwrap_or_default();
            let (key, setting) = option
                .split_once('=')
                .or_else(|| option.split_once(' '))
                .unwrap_or((option, ""));
            let setting = setting.trim();
            match key.to_ascii_lowercase().as_str() {
                "stricthostkeychecking" => {
                    let mode = match setting.to_ascii_lowercase().as_str() {
                        "no" | "off" => "no",
                        "accept-new" => "accept-new",
                        "yes" | "ask" => "yes",
                        _ => "yes|accept-new|no",
                    };
                    format!("use --strict-host-key-checking {mode}")
                }
                "userknownhostsfile" => {
                    format!("use --known-hosts {}", or_placeholder(setting, "FILE"))
                }
                "user" => format!(
                    "use -l {} (or USER@TARGET)",
                    or_placeholder(setting, "USER")
                ),
                "port" => format!(
                    "use -p {} (22 or 3389, the ports the service allows)",
                    or_placeholder(setting, "PORT")
                ),
                "connecttimeout" => format!(
                    "use --connect-timeout {}",
                    or_placeholder(setting, "SECONDS")
                ),
                "serveraliveinterval" => format!(
                    "use --keepalive-interval {}",
                    or_placeholder(setting, "SECONDS")
                ),
                "serveralivecountmax" => {
                    format!("use --keepalive-count {}", or_placeholder(setting, "N"))
                }
                "localforward" => "use -L [BIND:]PORT:HOST:HOSTPORT".into(),
                "remoteforward" => "use -R [BIND:]PORT:HOST:HOSTPORT".into(),
                "dynamicforward" => "use -D [BIND:]PORT".into(),
                "requesttty" => "use -t to force a PTY, -T for none".into(),
                "identityfile" => return openssh_advice("-i", Some(setting), in_cp),
                _ => format!(
                    "eic-ssh has no -o; eic-ssh --help lists its options. Or, {SSH_CONFIG} -o {option} HOST"
                ),
            }
        }
        "-P" if !in_cp => "use -p PORT (22 or 3389)".into(),
        "-J" => "eic-ssh needs no jump host: the endpoint is the way in".into(),
        f if f.len() == 2 && f.starts_with('-') => format!(
            "eic-ssh has no {f} option; eic-ssh --help lists its options. Or, {SSH_CONFIG} {f} HOST"
        ),
        _ => return None,
    })
}

fn or_placeholder<'a>(value: &'a str, placeholder: &'a str) -> &'a str {
    if value.is_empty() { placeholder } else { value }
}

/// clap's rendering in eic-ssh's style: `error: …` becomes `eic-ssh: …`,
/// each `tip: …` a hint (replaced by `advice` when there is one), the usage
/// kept.
fn restyle(rendered: &str, advice: Option<&str>) -> String {
    let mut out = String::new();
    let mut advised = false;
    for line in rendered.lines() {
        let trimmed = line.trim_start();
        if let Some(message) = line.strip_prefix("error: ") {
            out.push_str(&format!("eic-ssh: {message}\n"));
            if let Some(a) = advice {
                out.push_str(&format!("eic-ssh: hint: {a}\n"));
                advised = true;
            }
        } else if let Some(tip) = trimmed.strip_prefix("tip: ") {
            if !advised {
                // Hints follow their message, as everywhere.
                if out.ends_with("\n\n") {
                    out.pop();
                }
                out.push_str(&format!("eic-ssh: hint: {tip}\n"));
            }
        } else if line.is_empty() && out.ends_with("\n\n") {
            // No blank line twice where a tip was taken out.
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_read_as_eic_ssh_messages() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: eic-ssh ls [OPTIONS] [TARGET]...\n\nFor more information, try '--help'.\n";
        assert_eq!(
            restyle(rendered, None),
            "eic-ssh: unexpected argument '--bogus' found\neic-ssh: hint: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: eic-ssh ls [OPTIONS] [TARGET]...\n\nFor more information, try '--help'.\n"
        );
        let restyled = restyle(rendered, Some("use --json"));
        assert!(
            restyled.starts_with(
                "eic-ssh: unexpected argument '--bogus' found\neic-ssh: hint: use --json\n\nUsage:"
            ),
            "{restyled}"
        );
        assert!(!restyled.contains("tip"), "{restyled}");
    }

    #[test]
    fn openssh_options_map_to_eic_ssh_flags() {
        let advice = |flag, value, cp| openssh_advice(flag, value, cp).unwrap_or_default();
        assert_eq!(
            advice("-o", Some("StrictHostKeyChecking=no"), false),
            "use --strict-host-key-checking no"
        );
        assert_eq!(
            advice("-o", Some("stricthostkeychecking accept-new"), false),
            "use --strict-host-key-checking accept-new"
        );
        assert_eq!(
            advice("-o", Some("User=ubuntu"), false),
            "use -l ubuntu (or USER@TARGET)"
        );
        assert!(advice("-o", Some("IdentityFile=~/.ssh/k"), false).contains("-i ~/.ssh/k HOST"));
        assert!(
            advice("-o", Some("Compression=yes"), false).contains("ssh -o Compression=yes HOST")
        );
        assert!(advice("-i", Some("key.pem"), false).contains("ephemeral key"));
        assert!(advice("-R", None, true).starts_with("did you mean -r?"));
        assert_eq!(openssh_flag("-ikey").as_deref(), Some("-i"));
        assert_eq!(openssh_flag("--bogus"), None);
        let args: Vec<OsString> = ["eic-ssh", "-oUser=me", "web-1"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(value_after("-o", &args), Some("User=me"));
    }
}
