//! `eic-ssh ssh-config`: a ready-to-paste ~/.ssh/config block.
//!
//! What goes into the block is checked and quoted: ssh_config ends a
//! directive at a newline, and OpenSSH runs the ProxyCommand through
//! `sh -c` after expanding `%` tokens, so a value that carried a newline, a
//! shell metacharacter or a `%` could add a directive or run a command.

use std::io::{BufRead, Read};
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
    let mut first = Vec::new();
    std::io::BufReader::new(existing)
        .take(INCLUDE_HEADER.len() as u64 + 2)
        .read_until(b'\n', &mut first)?;
    let first = first.strip_suffix(b"\n").unwrap_or(&first);
    if first != INCLUDE_HEADER.as_bytes() {
        return refuse(format!(
            "it exists and eic-ssh did not write it (its first line is not \"{INCLUDE_HEADER}\"), so it is not replaced"
        ));
    }
    Ok(())
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
/// for the running executable.
pub fn render(args: &SshConfigArgs) -> Result<String, Error> {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(|| "eic-ssh".into());
    render_for(args, &exe)
}

/// The block, with `exe` as the ProxyCommand's program.
pub fn render_for(args: &SshConfigArgs, exe: &Path) -> Result<String, Error> {
    let exe = exe.to_str().ok_or_else(|| {
        Error::Usage(format!(
            "the path of eic-ssh ({}) is not valid UTF-8, which ssh_config cannot hold",
            exe.display()
        ))
    })?;
    let mut command = vec![proxy_word("the path of eic-ssh", exe)?, "proxy".to_owned()];
    if let Some(p) = &args.aws.profile {
        command.push("--profile".into());
        command.push(proxy_word("--profile", p)?);
    }
    if let Some(r) = &args.aws.region {
        // Checked as the flag is parsed; checked again for callers that
        // build the arguments themselves.
        crate::aws::region_name(r).map_err(Error::Usage)?;
        command.push("--region".into());
        command.push(r.clone());
    }
    // Quoted so that a hostile %r or %h stays one word for the shell even on
    // OpenSSH before 9.6, which does not refuse metacharacters in them
    // (CVE-2023-51385).
    command.extend(["--user", "'%r'", "'%h'", "'%p'"].map(str::to_owned));
    Ok(format!(
        "# Reach EC2 instances by ID through EC2 Instance Connect Endpoints.
# eic-ssh pushes your public key (ssh-agent's first, or ~/.ssh/id_*.pub) for %r,
# then carries the SSH bytes; OpenSSH does the rest (scp, sftp, rsync, git too).
Host {host}
    User {user}
    ProxyCommand {command}
    # OpenSSH records host keys under the instance ID, as eic-ssh itself does.
    # The pushed key is valid for 60 s: authenticate promptly, and detect dead tunnels.
    ConnectTimeout 30
    ServerAliveInterval 30
    ServerAliveCountMax 4
",
        host = args.host,
        user = args.user,
        command = command.join(" "),
    ))
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
                "ConnectTimeout",
                "ServerAliveInterval",
                "ServerAliveCountMax"
            ]
        );
    }

    #[test]
    fn hostile_tokens_stay_one_word() {
        let block = render_for(&args("i-*", None, None), Path::new("/usr/bin/eic-ssh")).unwrap();
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
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Usage(ref m) if m.contains("ProxyCommand x")),
            "{err}"
        );
        let err =
            render_for(&args("i-*", None, Some("us-east-1; id")), Path::new("/e")).unwrap_err();
        assert!(
            matches!(err, Error::Usage(ref m) if m.contains("us-east-1; id")),
            "{err}"
        );
        let err = render_for(&args("i-*", None, None), Path::new("/e\n/x")).unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err}");
    }
}
