//! scp's syntax for each side of a copy: `[USER@]TARGET:PATH` is remote, and
//! anything else (or a colon after a slash, or a leading colon) is local. A
//! `tag:KEY=VALUE` TARGET keeps its own colons (in `tag:` and in KEY, as in
//! `tag:aws:cloudformation:stack-name=web`): its PATH starts at the first
//! colon after the `=`.

use crate::target::syntax::Target;

/// One SRC or DST argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(String),
    Remote {
        target: Target,
        /// An empty path means the user's home, as scp reads `host:`.
        path: String,
    },
}

impl Location {
    /// Parse one argument; a remote side's TARGET goes through the target
    /// syntax, and a bad one is an error naming it.
    pub fn parse(arg: &str) -> Result<Location, String> {
        if arg[target_start(arg)..]
            .strip_prefix("tag:")
            .is_some_and(|t| !t.contains('='))
        {
            return Err(format!(
                "'{arg}' is not a remote side with a tag target: expected [USER@]tag:KEY=VALUE:PATH (a local file named so: ./{arg})"
            ));
        }
        let Some(colon) = target_end(arg) else {
            return Ok(Location::Local(arg.to_owned()));
        };
        let (head, path) = (&arg[..colon], &arg[colon + 1..]);
        if head.is_empty() || head.contains('/') {
            return Ok(Location::Local(arg.to_owned()));
        }
        let target: Target = head
            .parse()
            .map_err(|e: String| format!("in '{arg}': {e}"))?;
        Ok(Location::Remote {
            target,
            path: home_relative(path).to_owned(),
        })
    }

    /// How the user wrote it, for messages.
    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.clone(),
            Location::Remote { target, path } => format!("{target}:{path}"),
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Location::Local(p) | Location::Remote { path: p, .. } => p,
        }
    }
}

/// Where TARGET ends in `[USER@]TARGET:PATH`: at the first colon, except
/// that a `tag:KEY=VALUE` target ends at the first colon after its `=`.
fn target_end(arg: &str) -> Option<usize> {
    let start = target_start(arg);
    if let Some(tag) = arg[start..].strip_prefix("tag:")
        && let Some(eq) = tag.find('=')
        && !tag[..eq].contains('/')
    {
        let value = start + "tag:".len() + eq + 1;
        return arg[value..].find(':').map(|i| value + i);
    }
    arg.find(':')
}

/// Where TARGET starts: after `USER@`, if there is one.
fn target_start(arg: &str) -> usize {
    arg.find('@')
        .filter(|&at| !arg[..at].contains(['/', ':']))
        .map_or(0, |at| at + 1)
}

/// A remote path as scp reads it: empty or `~` is the home directory, and
/// `~/x` is `x` in it (SFTP paths are relative to the home directory).
fn home_relative(path: &str) -> &str {
    match path {
        "" | "~" | "~/" => ".",
        p => p.strip_prefix("~/").unwrap_or(p),
    }
}

/// The last component of `path`, ignoring trailing slashes.
pub fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// The directory part of `path` (`.` when there is none).
pub fn dirname(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/",
        Some(i) => &trimmed[..i],
        None => ".",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(user: Option<&str>, path: &str) -> Location {
        Location::Remote {
            target: Target {
                user: user.map(str::to_owned),
                expr: crate::target::syntax::TargetExpr::Id("i-0123456789abcdef0".into()),
            },
            path: path.into(),
        }
    }

    #[test]
    fn sides_parse_like_scp() {
        for (arg, want) in [
            ("i-0123456789abcdef0:/var/log", remote(None, "/var/log")),
            (
                "ec2-user@i-0123456789abcdef0:f.txt",
                remote(Some("ec2-user"), "f.txt"),
            ),
            ("i-0123456789abcdef0:", remote(None, ".")),
            ("i-0123456789abcdef0:a:b", remote(None, "a:b")),
            ("i-0123456789abcdef0:~", remote(None, ".")),
            ("i-0123456789abcdef0:~/", remote(None, ".")),
            ("i-0123456789abcdef0:~/f.txt", remote(None, "f.txt")),
            ("i-0123456789abcdef0:~x/f", remote(None, "~x/f")),
            ("i-0123456789abcdef0:/a@b:c", remote(None, "/a@b:c")),
            (
                "./i-0123456789abcdef0:x",
                Location::Local("./i-0123456789abcdef0:x".into()),
            ),
            (":weird", Location::Local(":weird".into())),
            ("/tmp/a:b", Location::Local("/tmp/a:b".into())),
            ("plain.txt", Location::Local("plain.txt".into())),
        ] {
            assert_eq!(Location::parse(arg), Ok(want), "{arg}");
        }
    }

    #[test]
    fn a_tag_target_keeps_its_colons() {
        let tag = |user: Option<&str>, key: &str, value: &str, path: &str| Location::Remote {
            target: Target {
                user: user.map(str::to_owned),
                expr: crate::target::syntax::TargetExpr::Tag {
                    key: key.into(),
                    value: value.into(),
                },
            },
            path: path.into(),
        };
        for (arg, want) in [
            (
                "tag:Role=web:/etc/hosts",
                tag(None, "Role", "web", "/etc/hosts"),
            ),
            (
                "ec2-user@tag:Role=web:x:y",
                tag(Some("ec2-user"), "Role", "web", "x:y"),
            ),
            ("tag:Role=web:", tag(None, "Role", "web", ".")),
            (
                "tag:aws:cloudformation:stack-name=app:/srv",
                tag(None, "aws:cloudformation:stack-name", "app", "/srv"),
            ),
            // No colon after the value: a local file of that name.
            ("tag:Role=web", Location::Local("tag:Role=web".into())),
            (
                "./tag:Role=web:x",
                Location::Local("./tag:Role=web:x".into()),
            ),
        ] {
            assert_eq!(Location::parse(arg), Ok(want), "{arg}");
        }
    }

    #[test]
    fn a_tag_without_a_value_is_refused_naming_it() {
        let err = Location::parse("tag:x:/tmp").unwrap_err();
        assert!(
            err.contains("'tag:x:/tmp'") && err.contains("tag:KEY=VALUE:PATH"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_target_is_named() {
        // (`i-nothex` is a Name target now; a short ID is still bad.)
        let err = Location::parse("i-0123:/tmp").unwrap_err();
        assert!(err.contains("'i-0123'"), "{err}");
    }

    #[test]
    fn path_parts() {
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(basename("b"), "b");
        assert_eq!(dirname("/a/b"), "/a");
        assert_eq!(dirname("/b"), "/");
        assert_eq!(dirname("b"), ".");
    }
}
