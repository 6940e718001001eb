//! Where a destination that is a symbolic link leads, resolved by hand one
//! component at a time, so that every link on the way is checked against
//! the rule of `fs.protected_symlinks` (see [`protected_link`]): the last
//! one, one in a parent directory (`/tmp/evil/f`, with `/tmp/evil` another
//! user's link), and those a link's own target passes through. `realpath`
//! (the server's REALPATH, or libc's) follows them all without that check,
//! and the file would then be renamed onto wherever that user pointed.

use std::collections::VecDeque;

/// The owners that decide whether a symbolic link may be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    /// The link's owner, if the server says.
    pub link: Option<u32>,
    /// The owner of the directory the link is in, if the server says.
    pub dir: Option<u32>,
    /// That directory's mode.
    pub dir_mode: u32,
}

impl Owners {
    /// Whether the follower's uid is needed to decide: the link is in a
    /// sticky, world-writable directory and not owned by its owner.
    fn needs_follower(&self) -> bool {
        self.dir_mode & 0o1002 == 0o1002 && (self.link.is_none() || self.link != self.dir)
    }
}

/// Why a symbolic link in `dir` must not be followed by the user `me`, by
/// the rule of Linux's `fs.protected_symlinks`: in a sticky, world-writable
/// directory (like `/tmp`), a link is followed only by its owner, or when
/// the directory's owner owns it too. Applied whatever the machine's own
/// setting, since a link resolved by name and then renamed onto is never
/// checked by the kernel.
pub fn protected_link(dir: &str, owners: Owners, me: Option<u32>) -> Option<String> {
    if !owners.needs_follower() {
        return None;
    }
    let uid = |u: Option<u32>| {
        u.map_or_else(
            || "an owner the server does not tell".into(),
            |u| format!("uid {u}"),
        )
    };
    match (owners.link, me) {
        (Some(link), Some(me)) if link == me => None,
        (link, me) => Some(format!(
            "a symbolic link owned by {}, in {dir}, a sticky world-writable directory owned by {}; written through, it would put the file wherever that user chose, so it is not followed (the rule of fs.protected_symlinks{}); remove the link or copy to the file it names",
            uid(link),
            uid(owners.dir),
            match me {
                Some(me) => format!(": you are uid {me}"),
                None => ": and your own uid could not be told".into(),
            }
        )),
    }
}

/// What a path is, not following it.
pub(crate) struct Node {
    /// Whether it is a symbolic link.
    pub link: bool,
    /// Its owner, if known.
    pub uid: Option<u32>,
    /// Its `st_mode`.
    pub mode: u32,
}

/// A file system to resolve a path in: this machine's, or the instance's
/// through SFTP.
pub(crate) trait Walk {
    type Error;
    /// `None` when nothing is there (or a component is not a directory).
    async fn lstat(&self, path: &str) -> Result<Option<Node>, Self::Error>;
    async fn readlink(&self, path: &str) -> Result<String, Self::Error>;
    /// The uid that follows the links; `None` if it cannot be told.
    async fn uid(&self) -> Option<u32>;
}

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum Stop<E> {
    Failed(E),
    /// A link that must not be followed: why, in words.
    Protected(String),
    /// More links than the kernel follows (a loop, say).
    TooManyLinks,
}

/// Links followed at most, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// Where a file written to `path` lands, when `path` is a symbolic link:
/// the path its links lead to, with none left in it. `None` when `path` is
/// not a link, or leads nowhere (a dangling link is replaced itself).
pub(crate) async fn link_target<W: Walk>(
    w: &W,
    path: &str,
) -> Result<Option<String>, Stop<W::Error>> {
    match w.lstat(path).await.map_err(Stop::Failed)? {
        Some(n) if n.link => {}
        _ => return Ok(None),
    }
    let mut done = if path.starts_with('/') { "/" } else { "." }.to_owned();
    let mut pending = components(path);
    let mut followed = 0;
    let mut me = None;
    while let Some(part) = pending.pop_front() {
        if part == "." {
            continue;
        }
        if part == ".." {
            done = up(&done);
            continue;
        }
        let next = join(&done, &part);
        let node = match w.lstat(&next).await.map_err(Stop::Failed)? {
            Some(n) => n,
            None => return Ok(None),
        };
        if !node.link {
            done = next;
            continue;
        }
        followed += 1;
        if followed > MAX_LINKS {
            return Err(Stop::TooManyLinks);
        }
        // `done` holds no link, so this is the directory the link is in.
        let dir = match w.lstat(&done).await.map_err(Stop::Failed)? {
            Some(d) => d,
            None => return Ok(None),
        };
        let owners = Owners {
            link: node.uid,
            dir: dir.uid,
            dir_mode: dir.mode,
        };
        if owners.needs_follower() {
            if me.is_none() {
                me = Some(w.uid().await);
            }
            if let Some(why) = protected_link(&done, owners, me.flatten()) {
                return Err(Stop::Protected(why));
            }
        }
        let target = w.readlink(&next).await.map_err(Stop::Failed)?;
        if target.starts_with('/') {
            done = "/".to_owned();
        }
        for part in components(&target).into_iter().rev() {
            pending.push_front(part);
        }
    }
    Ok(Some(done))
}

fn components(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

fn join(dir: &str, name: &str) -> String {
    match dir {
        "." => name.to_owned(),
        "/" => format!("/{name}"),
        _ => format!("{dir}/{name}"),
    }
}

/// The parent of `dir`, which holds no link (so `..` is lexical).
fn up(dir: &str) -> String {
    if dir == "/" {
        return dir.to_owned();
    }
    if dir == "." {
        return "..".to_owned();
    }
    if dir == ".." || dir.ends_with("/..") {
        return format!("{dir}/..");
    }
    match dir.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => dir[..i].to_owned(),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const ME: u32 = 1000;
    const OTHER: u32 = 1001;

    /// A file system in a map: path → (owner, mode, link target).
    struct Fake(HashMap<&'static str, (u32, u32, Option<&'static str>)>);

    impl Walk for Fake {
        type Error = String;
        async fn lstat(&self, path: &str) -> Result<Option<Node>, String> {
            Ok(self.0.get(path).map(|&(uid, mode, target)| Node {
                link: target.is_some(),
                uid: Some(uid),
                mode,
            }))
        }
        async fn readlink(&self, path: &str) -> Result<String, String> {
            self.0
                .get(path)
                .and_then(|e| e.2)
                .map(str::to_owned)
                .ok_or_else(|| format!("{path}: not a link"))
        }
        async fn uid(&self) -> Option<u32> {
            Some(ME)
        }
    }

    fn fs() -> Fake {
        Fake(HashMap::from([
            ("/", (0, 0o40755, None)),
            ("/tmp", (0, 0o41777, None)),
            ("/home", (0, 0o40755, None)),
            ("/home/me", (ME, 0o40755, None)),
            ("/home/me/f", (ME, 0o100644, None)),
            ("/home/me/sub", (ME, 0o40755, None)),
            // Mine, in my directory, relative: followed.
            ("/home/me/mine", (ME, 0o120777, Some("sub/../f"))),
            // Another user's, in /tmp: not followed, last or on the way.
            ("/tmp/evil", (OTHER, 0o120777, Some("/home/me"))),
            ("/tmp/mine", (ME, 0o120777, Some("/home/me/f"))),
            // What lstat sees through /tmp/evil: a link of mine.
            ("/tmp/evil/mine", (ME, 0o120777, Some("/home/me/f"))),
            // Mine, but its target passes through another user's link.
            ("/home/me/via", (ME, 0o120777, Some("/tmp/evil/f"))),
            ("/home/me/loop", (ME, 0o120777, Some("loop"))),
            ("/home/me/dangling", (ME, 0o120777, Some("gone"))),
        ]))
    }

    async fn resolve(path: &str) -> Result<Option<String>, String> {
        link_target(&fs(), path).await.map_err(|e| match e {
            Stop::Failed(e) => e,
            Stop::Protected(why) => why,
            Stop::TooManyLinks => "too many".into(),
        })
    }

    #[tokio::test]
    async fn every_link_on_the_way_is_checked_not_only_the_last() {
        assert_eq!(resolve("/home/me/f").await, Ok(None));
        assert_eq!(
            resolve("/home/me/mine").await,
            Ok(Some("/home/me/f".into()))
        );
        assert_eq!(resolve("/tmp/mine").await, Ok(Some("/home/me/f".into())));
        for path in ["/tmp/evil", "/tmp/evil/mine", "/home/me/via"] {
            let why = resolve(path).await.unwrap_err();
            assert!(
                why.starts_with("a symbolic link owned by uid 1001, in /tmp,"),
                "{path}: {why}"
            );
        }
        assert_eq!(resolve("/home/me/loop").await, Err("too many".into()));
        assert_eq!(resolve("/home/me/dangling").await, Ok(None));
    }

    #[test]
    fn parents_are_lexical_once_no_link_is_left() {
        assert_eq!(up("/"), "/");
        assert_eq!(up("/a"), "/");
        assert_eq!(up("/a/b"), "/a");
        assert_eq!(up("a"), ".");
        assert_eq!(up("."), "..");
        assert_eq!(up(".."), "../..");
        assert_eq!(join(".", "a"), "a");
        assert_eq!(join("/", "a"), "/a");
    }
}
