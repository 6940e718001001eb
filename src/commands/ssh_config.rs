//! `eic-ssh ssh-config`: a ready-to-paste ~/.ssh/config block.
//!
//! What goes into the block is checked and quoted: ssh_config ends a
//! directive at a newline, and OpenSSH runs the ProxyCommand through
//! `sh -c` after expanding `%` tokens, so a value that carried a newline, a
//! shell metacharacter or a `%` could add a directive or run a command.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::cli::SshConfigArgs;
use crate::error::Error;
use crate::fs::atomic;

/// The first line of every file `--include` writes, checked exactly before
/// one is replaced: eic-ssh replaces no file but its own.
pub const INCLUDE_HEADER: &str =
    "# eic-ssh ssh-config --include wrote this file, and rewrites it when run again: do not edit.";

/// `eic-ssh ssh-config`: print the block, or with `--include` write it to
/// its own file and include that from ~/.ssh/config.
pub fn run(args: &SshConfigArgs, quiet: bool) -> Result<u8, Error> {
    let block = render(args)?;
    let Some(file) = &args.include else {
        crate::term::out(&block)?;
        return Ok(0);
    };
    // `~/…` (the default) is the user's home, as OpenSSH reads it.
    let home = std::env::home_dir().unwrap_or_default();
    let ssh_dir = home.join(".ssh");
    let file = match file.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => std::path::absolute(file)?,
    };
    // A path ssh_config cannot name is refused before anything is written.
    include_line(&file)?;
    let config = ssh_dir.join("config");
    // Everything is checked before anything is written.
    refuse_unless_ours(&file, &config)?;
    let config_target = writable_config(&config)?;
    let contents = format!("{INCLUDE_HEADER}\n{block}");
    let wrote =
        write_if_changed(&file, contents.as_bytes(), 0o600).map_err(|e| cannot_write(&file, e))?;
    let added = include_from(&config_target, &file).map_err(|e| cannot_write(&config, e))?;
    if !quiet {
        let what = match (wrote, added) {
            (false, false) => format!("{} and its Include line are up to date", file.display()),
            (true, false) => format!(
                "wrote {}; ~/.ssh/config already includes it",
                file.display()
            ),
            (_, true) => format!(
                "wrote {} and included it at the top of {}",
                file.display(),
                config.display()
            ),
        };
        eprintln!("eic-ssh: {what}");
    }
    Ok(0)
}

/// Refuse `file` unless it is absent or eic-ssh wrote it (its first line is
/// [`INCLUDE_HEADER`]), and refuse the ssh config file itself however it is
/// spelled (`..`, a symbolic or hard link).
fn refuse_unless_ours(file: &Path, config: &Path) -> Result<(), Error> {
    let refuse = |why: String| {
        Err(Error::Usage(format!(
            "--include {}: {why}; nothing was written. Give --include a file of its own, e.g. ~/.ssh/config.d/eic-ssh",
            file.display()
        )))
    };
    let same_inode = match (std::fs::metadata(file), std::fs::metadata(config)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if same_inode || resolved(file) == resolved(config) {
        return refuse(format!(
            "that is the ssh config file {} itself, which would lose its own entries and include itself",
            config.display()
        ));
    }
    let existing = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symbolic link: writing would replace the link, but
            // it may mean something to someone.
            if std::fs::symlink_metadata(file).is_ok() {
                return refuse(
                    "it is a symbolic link to a file that does not exist, not a file eic-ssh wrote"
                        .into(),
                );
            }
            return Ok(());
        }
        Err(e) => return refuse(format!("it exists and cannot be read ({e})")),
    };
    if !existing.metadata()?.is_file() {
        return refuse("it exists and is not a regular file".into());
    }
    // An earlier eic-ssh's block is a few hundred bytes.
    let mut head = Vec::new();
    std::io::BufReader::new(existing)
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
    if first != INCLUDE_HEADER.as_bytes() && !written_before_the_header(&head) {
        return refuse(format!(
            "it exists and eic-ssh did not write it (its first line is not \"{INCLUDE_HEADER}\"), so it is not replaced"
        ));
    }
    Ok(())
}

/// The block an eic-ssh from before [`INCLUDE_HEADER`] wrote, exactly as
/// it wrote it, whatever the host patterns, user and ProxyCommand it was
/// given: a file that is that and nothing else is eic-ssh's own, so an
/// upgrade rewrites it instead of refusing it.
fn written_before_the_header(file: &[u8]) -> bool {
    const OLD: [&str; 11] = [
        "# Reach EC2 instances by ID through EC2 Instance Connect Endpoints.",
        "# eic-ssh pushes your public key (ssh-agent's first, or ~/.ssh/id_*.pub) for %r,",
        "# then carries the SSH bytes; OpenSSH does the rest (scp, sftp, rsync, git too).",
        "Host ",
        "    User ",
        "    ProxyCommand ",
        "    # OpenSSH records host keys under the instance ID, as eic-ssh itself does.",
        "    # The pushed key is valid for 60 s: authenticate promptly, and detect dead tunnels.",
        "    ConnectTimeout 30",
        "    ServerAliveInterval 30",
        "    ServerAliveCountMax 4",
    ];
    let Some(text) = std::str::from_utf8(file)
        .ok()
        .and_then(|t| t.strip_suffix('\n'))
    else {
        return false;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    lines.len() == OLD.len()
        && lines.iter().zip(OLD).all(|(line, old)| match old {
            "Host " => line
                .strip_prefix(old)
                .is_some_and(|h| crate::cli::parse_host_patterns(h).as_deref() == Ok(h)),
            "    User " => line
                .strip_prefix(old)
                .is_some_and(|u| !u.is_empty() && !u.contains(char::is_whitespace)),
            "    ProxyCommand " => line
                .strip_prefix(old)
                .is_some_and(|c| c.contains(" proxy ") && c.ends_with(" --user '%r' '%h' '%p'")),
            _ => *line == old,
        })
}

/// Where `path` (absolute) leads: one component at a time, a symbolic
/// link followed where it exists, `.` dropped and `..` going up from what
/// the path so far resolved to; a part that does not exist yet is taken as
/// written (the directories will be made).
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => {
                out.push(other);
                if let Ok(real) = std::fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    out
}

/// Where the Include line goes: ~/.ssh/config, or the file it links to
/// (so that a config kept elsewhere, e.g. in a dotfiles repository, stays
/// a link). It must be a regular file, or not exist yet.
fn writable_config(config: &Path) -> Result<PathBuf, Error> {
    match std::fs::metadata(config) {
        Ok(m) if m.is_file() => Ok(std::fs::canonicalize(config)?),
        Ok(_) => Err(Error::Usage(format!(
            "{} is not a regular file: cannot add the Include line; nothing was written",
            config.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(config).is_ok() {
                return Err(Error::Usage(format!(
                    "{} is a symbolic link to a file that does not exist: cannot add the Include line; nothing was written",
                    config.display()
                )));
            }
            Ok(config.to_path_buf())
        }
        Err(e) => Err(Error::Usage(format!(
            "cannot read {}: {e}; nothing was written",
            config.display()
        ))),
    }
}

/// A failure to write `path`, naming it, with what to do; a usage error
/// passes through.
fn cannot_write(path: &Path, e: Error) -> Error {
    match e {
        Error::Io(io) => Error::Usage(format!(
            "cannot write {}: {io}; give --include a file path in a directory you can write",
            path.display()
        )),
        other => other,
    }
}

/// Write `bytes` to `path` atomically (a new file beside it, then renamed
/// over it) unless it holds them already. The file keeps its mode, without
/// any write or execute bit for others; a new one gets `new_mode`. Returns
/// whether it wrote.
fn write_if_changed(path: &Path, bytes: &[u8], new_mode: u32) -> Result<bool, Error> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    atomic::private_dir(atomic::parent(path))?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o644)
        .unwrap_or(new_mode);
    atomic::write(path, bytes, mode)?;
    Ok(true)
}

/// The Include line for `file`, quoted when its path has a space.
fn include_line(file: &Path) -> Result<String, Error> {
    let path = file
        .to_str()
        .filter(|p| !p.chars().any(|c| c.is_control() || c == '"'))
        .ok_or_else(|| {
            Error::Usage(format!(
                "{:?} cannot be named in ssh_config (no control characters or double quotes)",
                file.display().to_string()
            ))
        })?;
    Ok(match path.contains(' ') {
        true => format!("Include \"{path}\""),
        false => format!("Include {path}"),
    })
}

/// Add `Include <file>` at the top of `config` unless a line already
/// includes it; the rest of the file is kept byte for byte. Returns whether
/// it added the line.
fn include_from(config: &Path, file: &Path) -> Result<bool, Error> {
    let line = include_line(file)?;
    let old = match std::fs::read(config) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let wanted: Vec<String> = shell_free_words(&line);
    let present = String::from_utf8_lossy(&old).lines().any(|l| {
        shell_free_words(l)
            .iter()
            .map(|w| w.to_ascii_lowercase())
            .eq(wanted.iter().map(|w| w.to_ascii_lowercase()))
    });
    if present {
        return Ok(false);
    }
    // At the top: an Include after a Host line would apply to that host only.
    let mut new = format!("# Added by eic-ssh ssh-config --include\n{line}\n\n").into_bytes();
    new.extend_from_slice(&old);
    write_if_changed(config, &new, 0o600)?;
    Ok(true)
}

/// A config line's words, `=` and quotes aside, for comparing Include lines.
fn shell_free_words(line: &str) -> Vec<String> {
    let line = line.trim();
    let (key, rest) = line.split_once([' ', '\t', '=']).unwrap_or((line, ""));
    let rest = rest.trim_start_matches([' ', '\t', '=']).trim();
    let rest = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    vec![key.to_owned(), rest.to_owned()]
}

/// `eic-ssh ssh-config`: the block that makes `ssh ec2-user@i-0abc` work,
/// for the running executable and the OpenSSH on the PATH.
pub fn render(args: &SshConfigArgs) -> Result<String, Error> {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(|| "eic-ssh".into());
    render_for(args, &exe, openssh_version())
}

/// The first OpenSSH with `KnownHostsCommand`.
const KNOWN_HOSTS_COMMAND_SINCE: (u32, u32) = (8, 5);

/// The version of the `ssh` on the PATH (`ssh -V`), if it says.
fn openssh_version() -> Option<(u32, u32)> {
    let out = std::process::Command::new("ssh")
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    // OpenSSH prints it on stderr; some builds on stdout.
    let text = [out.stderr, out.stdout].concat();
    parse_openssh_version(&String::from_utf8_lossy(&text))
}

/// `OpenSSH_9.2p1 Debian-2, OpenSSL …` → (9, 2).
fn parse_openssh_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.trim_start().strip_prefix("OpenSSH_")?;
    let (major, rest) = rest.split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The block, with `exe` as the program of its commands, for `openssh` (the
/// version of the ssh that reads it, when known: before 8.5 it has no
/// `KnownHostsCommand`, and refuses the whole file over it).
pub fn render_for(
    args: &SshConfigArgs,
    exe: &Path,
    openssh: Option<(u32, u32)>,
) -> Result<String, Error> {
    let exe = exe.to_str().ok_or_else(|| {
        Error::Usage(format!(
            "the path of eic-ssh ({}) is not valid UTF-8, which ssh_config cannot hold",
            exe.display()
        ))
    })?;
    let mut command = vec![proxy_word("the path of eic-ssh", exe)?, "proxy".to_owned()];
    let mut known = vec![
        argv_word("the path of eic-ssh", exe)?,
        "known-hosts".to_owned(),
    ];
    if let Some(p) = &args.aws.profile {
        command.push("--profile".into());
        command.push(proxy_word("--profile", p)?);
        known.push("--profile".into());
        known.push(token_word("--profile", p)?);
    }
    if let Some(r) = &args.aws.region {
        // Checked as the flag is parsed; checked again for callers that
        // build the arguments themselves.
        crate::aws::region_name(r).map_err(Error::Usage)?;
        command.push("--region".into());
        command.push(r.clone());
        known.push("--region".into());
        known.push(r.clone());
    }
    // Quoted so that a hostile %r or %h stays one word for the shell even on
    // OpenSSH before 9.6, which does not refuse metacharacters in them
    // (CVE-2023-51385).
    command.extend(["--user", "'%r'", "'%h'", "'%p'"].map(str::to_owned));
    // No shell runs this one, and ssh splits it into words before it
    // expands the tokens: a token's value stays one word as it is.
    known.extend(["--as", "%H", "--key", "%K", "%h"].map(str::to_owned));
    let host_keys = match openssh {
        Some(v) if v < KNOWN_HOSTS_COMMAND_SINCE => format!(
            "    # OpenSSH {}.{} has no KnownHostsCommand (8.5 and later): ssh records host
    # keys under the name you type. Pre-seed an instance's, verified against its
    # console, with: eic-ssh host-keys i-… --add (then connect by ID).
",
            v.0, v.1
        ),
        _ => format!(
            "    # Host keys as eic-ssh verifies them: recorded under the instance ID, or
    # checked against the instance's console output on a first contact.
    KnownHostsCommand {}
",
            known.join(" ")
        ),
    };
    Ok(format!(
        "# Reach EC2 instances through EC2 Instance Connect Endpoints (eic-ssh ssh-config).
# eic-ssh pushes your public key (ssh-agent's first, or ~/.ssh/id_*.pub) for %r,
# then carries the SSH bytes; OpenSSH does the rest (scp, sftp, rsync, git too).
Host {host}
    User {user}
    ProxyCommand {command}
{host_keys}    # The pushed key is valid for 60 s: authenticate promptly, and detect dead tunnels.
    ConnectTimeout 30
    ServerAliveInterval 30
    ServerAliveCountMax 4
",
        host = args.host,
        user = args.user,
        command = command.join(" "),
    ))
}

/// A word of a command ssh splits itself (`KnownHostsCommand`): no control
/// characters, quoted when it has a blank, a quote, a backslash or `#`.
fn argv_word(what: &str, value: &str) -> Result<String, Error> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(Error::Usage(format!(
            "{what} {value:?} is empty or contains a control character, which cannot go into ssh_config"
        )));
    }
    if !value.contains([' ', '\t', '\'', '"', '\\', '#']) {
        return Ok(value.to_owned());
    }
    Ok(format!(
        "'{}'",
        value.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

/// An argument of that command: ssh expands `%` tokens and `${VAR}` in
/// it, so `%` is doubled, and `${`, which has no escape, is refused.
fn token_word(what: &str, value: &str) -> Result<String, Error> {
    if value.contains("${") {
        return Err(Error::Usage(format!(
            "{what} {value:?} contains \"${{\", which ssh would expand as an environment variable"
        )));
    }
    Ok(argv_word(what, value)?.replace('%', "%%"))
}

/// A value for the ProxyCommand: no control characters (a newline would end
/// the directive), shell-quoted, and `%` doubled so OpenSSH leaves it alone.
fn proxy_word(what: &str, value: &str) -> Result<String, Error> {
    if value.chars().any(char::is_control) {
        return Err(Error::Usage(format!(
            "{what} {value:?} contains a control character, which cannot go into ssh_config"
        )));
    }
    let quoted = shlex::try_quote(value)
        .map_err(|e| Error::Usage(format!("{what} {value:?} cannot be shell-quoted: {e}")))?;
    Ok(quoted.replace('%', "%%"))
}

/// An AWS region is lower-case letters, digits and dashes (`us-east-1`).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::AwsArgs;

    fn args(host: &str, profile: Option<&str>, region: Option<&str>) -> SshConfigArgs {
        SshConfigArgs {
            include: None,
            host: host.into(),
            user: "ec2-user".into(),
            aws: AwsArgs {
                region: region.map(Into::into),
                profile: profile.map(Into::into),
            },
        }
    }

    /// The ProxyCommand's words, as `sh -c` would split them after OpenSSH
    /// expanded `%r %h %p` (here to hostile values).
    fn proxy_words(block: &str, r: &str, h: &str) -> Vec<String> {
        let line = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("ProxyCommand "))
            .unwrap();
        let expanded = line
            .replace("%r", r)
            .replace("%h", h)
            .replace("%p", "22")
            .replace("%%", "%");
        shell_words::split(&expanded).unwrap()
    }

    #[test]
    fn a_hostile_profile_stays_one_word() {
        let block = render_for(
            &args("i-*", Some("p; touch /tmp/pwn #"), Some("eu-west-1")),
            Path::new("/opt/my tools/eic-ssh"),
            None,
        )
        .unwrap();
        assert_eq!(
            proxy_words(&block, "ec2-user", "i-0abc"),
            [
                "/opt/my tools/eic-ssh",
                "proxy",
                "--profile",
                "p; touch /tmp/pwn #",
                "--region",
                "eu-west-1",
                "--user",
                "ec2-user",
                "i-0abc",
                "22"
            ]
        );
        // Exactly the directives we meant, one per line.
        let directives: Vec<&str> = block
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            directives,
            [
                "Host",
                "User",
                "ProxyCommand",
                "KnownHostsCommand",
                "ConnectTimeout",
                "ServerAliveInterval",
                "ServerAliveCountMax"
            ]
        );
    }

    #[test]
    fn hostile_tokens_stay_one_word() {
        let block = render_for(
            &args("i-*", None, None),
            Path::new("/usr/bin/eic-ssh"),
            None,
        )
        .unwrap();
        let words = proxy_words(&block, "u$(touch /tmp/x)", "i-0abc;reboot");
        assert_eq!(
            words,
            [
                "/usr/bin/eic-ssh",
                "proxy",
                "--user",
                "u$(touch /tmp/x)",
                "i-0abc;reboot",
                "22"
            ]
        );
    }

    #[test]
    fn a_percent_in_the_path_is_not_a_token() {
        let block = render_for(
            &args("i-*", Some("100%h"), None),
            Path::new("/x/50%r/eic-ssh"),
            None,
        )
        .unwrap();
        assert!(block.contains("/x/50%%r/eic-ssh"), "{block}");
        assert_eq!(proxy_words(&block, "u", "h")[3], "100%h");
    }

    #[test]
    fn values_that_cannot_belong_are_refused_naming_them() {
        let newline = "x\n    ProxyCommand touch /tmp/pwn";
        let err = crate::cli::parse_host_patterns(newline).unwrap_err();
        assert!(err.contains("ProxyCommand touch"), "{err}");
        for bad in ["a\"b", "a#b", "a\tb", "", "i-*\r"] {
            assert!(crate::cli::parse_host_patterns(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            crate::cli::parse_host_patterns("i-*  mi-*").unwrap(),
            "i-* mi-*"
        );
        let err = render_for(
            &args("i-*", Some("a\nProxyCommand x"), None),
            Path::new("/e"),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Usage(ref m) if m.contains("ProxyCommand x")),
            "{err}"
        );
        let err = render_for(
            &args("i-*", None, Some("us-east-1; id")),
            Path::new("/e"),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Usage(ref m) if m.contains("us-east-1; id")),
            "{err}"
        );
        let err = render_for(&args("i-*", None, None), Path::new("/e\n/x"), None).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err}");
    }

    /// The words of the KnownHostsCommand as ssh splits them (its
    /// argv_split: blanks separate, '…' and "…" group, a backslash escapes
    /// a quote, a backslash or a blank) and then expands the tokens.
    fn known_hosts_words(block: &str, h: &str, key: &str) -> Vec<String> {
        let line = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("KnownHostsCommand "))
            .unwrap();
        let mut words = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c == ' ' {
                chars.next();
                continue;
            }
            let mut word = String::new();
            let mut quote = None;
            while let Some(c) = chars.next() {
                match (c, quote) {
                    ('\\', _)
                        if matches!(chars.peek(), Some('\'' | '"' | '\\'))
                            || (quote.is_none() && chars.peek() == Some(&' ')) =>
                    {
                        word.extend(chars.next());
                    }
                    (' ', None) => break,
                    ('\'' | '"', None) => quote = Some(c),
                    (q, Some(open)) if q == open => quote = None,
                    _ => word.push(c),
                }
            }
            words.push(word);
        }
        let expand = |w: &String| {
            w.replace("%%", "\0")
                .replace("%H", h)
                .replace("%h", h)
                .replace("%K", key)
                .replace('\0', "%")
        };
        let mut out = vec![words[0].clone()];
        out.extend(words[1..].iter().map(expand));
        out
    }

    #[test]
    fn the_known_hosts_command_keeps_each_value_one_word() {
        let block = render_for(
            &args("i-* web-*", Some("it's 100% \\ #1"), Some("eu-west-1")),
            Path::new("/opt/my tools/eic-ssh"),
            Some((9, 2)),
        )
        .unwrap();
        assert_eq!(
            known_hosts_words(&block, "web-1 x", "AAAA"),
            [
                "/opt/my tools/eic-ssh",
                "known-hosts",
                "--profile",
                "it's 100% \\ #1",
                "--region",
                "eu-west-1",
                "--as",
                "web-1 x",
                "--key",
                "AAAA",
                "web-1 x"
            ]
        );
        // ssh would expand ${VAR} in an argument, and nothing escapes it.
        let err =
            render_for(&args("i-*", Some("${HOME}"), None), Path::new("/e"), None).unwrap_err();
        assert!(
            matches!(err, Error::Usage(ref m) if m.contains("${HOME}")),
            "{err}"
        );
    }

    #[test]
    fn an_openssh_before_8_5_gets_no_known_hosts_command() {
        let block = |v| render_for(&args("i-*", None, None), Path::new("/e"), v).unwrap();
        assert!(!block(Some((8, 4))).contains("KnownHostsCommand /e"));
        assert!(block(Some((8, 4))).contains("OpenSSH 8.4 has no KnownHostsCommand"));
        for v in [Some((8, 5)), Some((10, 0)), None] {
            assert!(block(v).contains("KnownHostsCommand /e known-hosts --as %H --key %K %h"));
        }
        assert_eq!(
            parse_openssh_version("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.11 19 Sep 2023\n"),
            Some((9, 2))
        );
        assert_eq!(
            parse_openssh_version("OpenSSH_8.4p1, LibreSSL"),
            Some((8, 4))
        );
        assert_eq!(parse_openssh_version("OpenSSH_10.0p2"), Some((10, 0)));
        assert_eq!(parse_openssh_version("ssh: not found"), None);
    }
}
