//! SFTP over the session (the `sftp` subsystem on a session channel), with
//! pipelined reads and writes: throughput is bounded by the window, not by
//! round trips.

mod meta;
pub mod transfer;
pub(crate) mod walk;

use std::sync::Arc;

use russh::client::Handle;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use crate::error::Error;
use crate::ssh::host_keys::Client;
pub use meta::{Finish, Kind, MODE_BITS, Meta};
use meta::{S_IFDIR, S_IFLNK, S_IFMT};
pub use transfer::{Reader, Writer};
pub use walk::{Owners, protected_link};

/// Why `name`, from a directory listing, cannot be one path component
/// under the destination (`None` when it can): OpenSSH's sftp refuses the
/// same ("Server sent suspect path"). A hostile server could otherwise
/// write `../../x` or `a/b` wherever it points. On Unix these are all the
/// names that are not exactly one path component.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name == "." || name == ".." {
        Some("not a name of its own")
    } else if name.contains('/') {
        Some("a name with '/' in it")
    } else if name.contains('\0') {
        Some("a name with a NUL byte in it")
    } else {
        None
    }
}

/// A symbolic link that could not be resolved, or must not be followed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error("{0}")]
    Protected(String),
}

/// How long asking the remote user's uid may take.
const ASK_UID_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

/// Run `id -u` on a new channel of `session`: its number, or `None`.
async fn ask_uid(session: &Handle<Client>) -> Option<u32> {
    let mut channel = session.channel_open_session().await.ok()?;
    channel.exec(true, "id -u").await.ok()?;
    let mut out = Vec::new();
    let mut status = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            russh::ChannelMsg::Data { data } if out.len() < 64 => out.extend_from_slice(&data),
            russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
            russh::ChannelMsg::Close | russh::ChannelMsg::Failure => break,
            _ => {}
        }
    }
    if status != Some(0) {
        return None;
    }
    std::str::from_utf8(&out).ok()?.trim().parse().ok()
}

/// Whether an SFTP failure says the path does not exist.
pub fn is_not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// An SFTP client on one session.
pub struct Sftp {
    raw: Arc<RawSftpSession>,
    /// The session it runs on, to ask the remote user's uid.
    session: Arc<Handle<Client>>,
    uid: tokio::sync::OnceCell<Option<u32>>,
    posix_rename: bool,
    read_len: u32,
    write_len: u32,
}

/// OpenSSH's sftp-server serves reads and writes of up to 255 KiB.
const MAX_IO: u64 = 255 * 1024;

/// The most entries one directory listing may have: a server that never
/// ends a listing must not exhaust memory.
pub const MAX_LISTING: usize = 1 << 20;

impl Sftp {
    /// Start the `sftp` subsystem on a new channel of `handle`.
    pub async fn start(handle: Arc<Handle<Client>>) -> Result<Sftp, Error> {
        let channel = handle.channel_open_session().await?;
        channel.request_subsystem(true, "sftp").await?;
        let config = russh_sftp::client::Config {
            // Room for a full-size data reply plus its header.
            max_packet_len: 256 * 1024 + 1024,
            // Up to 32 requests of 255 KiB are in flight, and each one's
            // clock starts when it is sent: 10 minutes lets a link as slow
            // as 14 KB/s finish them. A dead connection is noticed sooner,
            // by the session's keepalives.
            request_timeout_secs: 600,
            ..Default::default()
        };
        let raw = RawSftpSession::new_with_config(channel.into_stream(), config);
        let version = raw.init().await.map_err(sftp_start)?;
        let posix_rename = version.extensions.contains_key("posix-rename@openssh.com");
        let (mut read_len, mut write_len) = (MAX_IO, MAX_IO);
        if version
            .extensions
            .contains_key(russh_sftp::extensions::LIMITS)
            && let Ok(limits) = raw.limits().await
        {
            if limits.max_read_len > 0 {
                read_len = read_len.min(limits.max_read_len);
            }
            if limits.max_write_len > 0 {
                write_len = write_len.min(limits.max_write_len);
            }
        }
        tracing::debug!(posix_rename, read_len, write_len, "sftp started");
        Ok(Sftp {
            raw: Arc::new(raw),
            session: handle,
            uid: tokio::sync::OnceCell::new(),
            posix_rename,
            read_len: u32::try_from(read_len).unwrap_or(32 * 1024),
            write_len: u32::try_from(write_len).unwrap_or(32 * 1024),
        })
    }

    /// The metadata of `path` (following symbolic links), or `None` if it
    /// does not exist.
    pub async fn stat(&self, path: &str) -> Result<Option<Meta>, SftpError> {
        match self.raw.stat(path).await {
            Ok(a) => Ok(Some(Meta::from_attrs(&a.attrs))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entries of directory `path` (without `.` and `..`), with their
    /// metadata as the server tells it. A symbolic link is followed to a
    /// file (as scp does) but not to a directory ([`Kind::LinkToDir`]); one
    /// that leads nowhere stays [`Kind::Link`]. Names are the server's: see
    /// [`name_problem`] before using one, which is also done here before
    /// following a link.
    pub async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, SftpError> {
        let handle = self.raw.opendir(path).await?.handle;
        let mut out = Vec::new();
        let listed = loop {
            match self.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    for f in name.files {
                        // Every server lists these two, as directories;
                        // never copied. Listed as anything else, they are
                        // kept for the caller to refuse with a warning.
                        if (f.filename == "." || f.filename == "..")
                            && f.attrs
                                .permissions
                                .is_none_or(|p| p & S_IFMT == 0 || p & S_IFMT == S_IFDIR)
                        {
                            continue;
                        }
                        if out.len() >= MAX_LISTING {
                            break;
                        }
                        out.push((f.filename, f.attrs));
                    }
                    if out.len() >= MAX_LISTING {
                        break Err(SftpError::UnexpectedBehavior(format!(
                            "the server listed more than {MAX_LISTING} entries in {path}"
                        )));
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = self.raw.close(handle).await;
        listed?;
        let mut entries = Vec::with_capacity(out.len());
        for (name, attrs) in out {
            let meta = Meta::from_attrs(&attrs);
            let untyped = attrs.permissions.is_none_or(|p| p & S_IFMT == 0);
            let meta = if name_problem(&name).is_none() && (meta.kind == Kind::Link || untyped) {
                self.resolve(&join(path, &name), meta, untyped).await
            } else {
                meta
            };
            entries.push((name, meta));
        }
        Ok(entries)
    }

    /// What a listed link leads to: a file (followed, as scp does),
    /// [`Kind::LinkToDir`], or nowhere (the link as listed). An entry the
    /// listing gave no type is asked with `lstat` first.
    async fn resolve(&self, path: &str, listed: Meta, untyped: bool) -> Meta {
        let meta = match untyped {
            true => match self.lstat(path).await {
                Ok(Some(m)) => m,
                _ => return listed,
            },
            false => listed,
        };
        if meta.kind != Kind::Link {
            return meta;
        }
        match self.stat(path).await {
            Ok(Some(target)) if target.kind == Kind::Dir => Meta {
                kind: Kind::LinkToDir,
                ..target
            },
            Ok(Some(target)) => target,
            _ => meta,
        }
    }

    /// The metadata of `path` itself (a symbolic link is [`Kind::Link`]),
    /// or `None` if it does not exist.
    pub async fn lstat(&self, path: &str) -> Result<Option<Meta>, SftpError> {
        match self.raw.lstat(path).await {
            Ok(a) => Ok(Some(Meta::from_attrs(&a.attrs))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where the symbolic link `path` leads, or `None` if `path` is not a
    /// link, is missing, or leads nowhere. Every link on the way is checked
    /// (see [`walk`]): one that `fs.protected_symlinks` would not let this
    /// user follow is refused (see [`protected_link`]), since resolving it
    /// here and renaming onto its target would get past that protection.
    pub async fn link_target(&self, path: &str) -> Result<Option<String>, LinkError> {
        walk::link_target(self, path).await.map_err(|e| match e {
            walk::Stop::Failed(e) => LinkError::Sftp(e),
            walk::Stop::Protected(why) => LinkError::Protected(why),
            walk::Stop::TooManyLinks => {
                LinkError::Protected(format!("too many levels of symbolic links in {path}"))
            }
        })
    }

    /// The remote user's uid (`id -u` on the session), asked once and only
    /// when a link needs it; `None` if it cannot be told (an account that
    /// may only use SFTP, say).
    async fn own_uid(&self) -> Option<u32> {
        *self
            .uid
            .get_or_init(|| async {
                let asked = tokio::time::timeout(ASK_UID_WITHIN, ask_uid(&self.session)).await;
                asked.ok().flatten()
            })
            .await
    }

    /// Create directory `path` with `mode` (the server applies its umask).
    pub async fn mkdir(&self, path: &str, mode: u32) -> Result<(), SftpError> {
        let attrs = FileAttributes {
            permissions: Some(mode & MODE_BITS),
            ..Default::default()
        };
        self.raw.mkdir(path, attrs).await.map(drop)
    }

    /// Rename `from` to `to`, replacing `to` if it exists.
    pub async fn rename_over(&self, from: &str, to: &str) -> Result<(), SftpError> {
        if self.posix_rename {
            let mut data = Vec::with_capacity(8 + from.len() + to.len());
            for s in [from, to] {
                data.extend_from_slice(&u32::try_from(s.len()).unwrap_or(0).to_be_bytes());
                data.extend_from_slice(s.as_bytes());
            }
            return match self.raw.extended("posix-rename@openssh.com", data).await? {
                Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
                Packet::Status(s) => Err(SftpError::Status(s)),
                _ => Err(SftpError::UnexpectedPacket),
            };
        }
        // Plain SFTP v3 rename refuses an existing target: move it aside
        // first, and back if the rename still fails, so that `to` is never
        // left missing.
        if !self.stat(to).await?.is_some_and(|m| m.kind != Kind::Dir) {
            return self.raw.rename(from, to).await.map(drop);
        }
        let aside = aside_name(to);
        self.raw.rename(to, aside.as_str()).await?;
        match self.raw.rename(from, to).await {
            Ok(_) => {
                let _ = self.raw.remove(aside).await;
                Ok(())
            }
            Err(e) => {
                let _ = self.raw.rename(aside, to).await;
                Err(e)
            }
        }
    }

    /// Remove file `path`.
    pub async fn remove(&self, path: &str) -> Result<(), SftpError> {
        self.raw.remove(path).await.map(drop)
    }

    /// Set the permission bits and/or the access and modification times of
    /// `path` (a directory: OpenSSH's server sets them only by path there).
    pub async fn set_meta(
        &self,
        path: &str,
        mode: Option<u32>,
        times: Option<(u32, u32)>,
    ) -> Result<(), SftpError> {
        let attrs = FileAttributes {
            permissions: mode.map(|m| m & MODE_BITS),
            atime: times.map(|t| t.0),
            mtime: times.map(|t| t.1),
            ..Default::default()
        };
        self.raw.setstat(path, attrs).await.map(drop)
    }

    /// Open `path` for a pipelined read of (about) `size` bytes.
    pub async fn reader(&self, path: &str, size: u64) -> Result<Reader, SftpError> {
        let handle = self
            .raw
            .open(path, OpenFlags::READ, FileAttributes::default())
            .await?
            .handle;
        Ok(Reader::new(self.raw.clone(), handle, self.read_len, size))
    }

    /// Create `path` (it must not exist) with `mode`, for a pipelined write.
    pub async fn create(&self, path: &str, mode: u32) -> Result<Writer, SftpError> {
        let attrs = FileAttributes {
            permissions: Some(mode & MODE_BITS),
            ..Default::default()
        };
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let handle = self.raw.open(path, flags, attrs).await?.handle;
        Ok(Writer::new(
            self.raw.clone(),
            handle,
            path.to_owned(),
            self.write_len,
        ))
    }

    /// End the subsystem's channel.
    pub fn close(&self) {
        let _ = self.raw.close_session();
    }
}

fn sftp_start(e: SftpError) -> Error {
    Error::Copy {
        path: "sftp".into(),
        reason: format!("the instance's SFTP server did not start: {e}"),
    }
}

/// A name beside `path` to move it to for a moment, short enough for any
/// file system however long `path`'s own name is.
fn aside_name(path: &str) -> String {
    let (dir, base) = match path.trim_end_matches('/').rsplit_once('/') {
        Some((d, b)) => (if d.is_empty() { "/" } else { d }, b),
        None => (".", path),
    };
    let mut keep = base.len().min(200);
    while !base.is_char_boundary(keep) {
        keep -= 1;
    }
    join(
        dir,
        &format!(
            ".{}.eic-ssh-old-{:08x}",
            &base[..keep],
            rand::random::<u32>()
        ),
    )
}

/// `dir/name` in SFTP's `/`-separated paths.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The instance's file system, through SFTP, for [`walk::link_target`].
impl walk::Walk for Sftp {
    type Error = SftpError;

    async fn lstat(&self, path: &str) -> Result<Option<walk::Node>, SftpError> {
        match self.raw.lstat(path).await {
            Ok(a) => {
                let mode = a.attrs.permissions.unwrap_or(0);
                Ok(Some(walk::Node {
                    link: mode & S_IFMT == S_IFLNK,
                    uid: a.attrs.uid,
                    mode,
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn readlink(&self, path: &str) -> Result<String, SftpError> {
        let name = self.raw.readlink(path).await?;
        name.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| SftpError::UnexpectedBehavior(format!("no target for the link {path}")))
    }

    async fn uid(&self) -> Option<u32> {
        self.own_uid().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_classify_and_keep_permission_bits() {
        assert_eq!(Meta::from_mode(0o100644, 1, 2, 3).kind, Kind::File);
        assert_eq!(Meta::from_mode(0o040755, 0, 0, 0).kind, Kind::Dir);
        // A socket's type bits include the directory bit.
        assert_eq!(Meta::from_mode(0o140755, 0, 0, 0).kind, Kind::Other);
        assert_eq!(Meta::from_mode(0o120777, 0, 0, 0).kind, Kind::Link);
    }

    #[test]
    fn an_aside_name_stays_beside_and_short() {
        let long = format!("/srv/{}", "n".repeat(250));
        let aside = aside_name(&long);
        assert!(aside.starts_with("/srv/.nnn"), "{aside}");
        assert!(aside.rsplit('/').next().unwrap().len() < 240, "{aside}");
        assert!(aside_name("f").starts_with(".f.eic-ssh-old-"));
        assert!(aside_name("/f").starts_with("/.f.eic-ssh-old-"));
    }

    #[test]
    fn a_listed_name_must_be_one_path_component() {
        for name in ["", ".", "..", "a/b", "../x", "/abs", "x/", "a\0b"] {
            assert!(name_problem(name).is_some(), "{name:?}");
        }
        for name in [
            "a",
            "...",
            ".hidden",
            "a b",
            "-rf",
            "ünï",
            "\\",
            "a\nb",
            "\u{202e}x",
        ] {
            assert!(name_problem(name).is_none(), "{name:?}");
        }
        // On Unix these are exactly the names that are one component.
        for name in ["", ".", "..", "a/b", "a", "...", "x/", "a\nb"] {
            let one = matches!(
                std::path::Path::new(name).components().collect::<Vec<_>>()[..],
                [std::path::Component::Normal(n)] if n == name
            );
            assert_eq!(one, name_problem(name).is_none(), "{name:?}");
        }
    }

    #[test]
    fn a_link_in_a_sticky_world_writable_directory_follows_protected_symlinks() {
        let owners = |link, dir, dir_mode| Owners {
            link,
            dir,
            dir_mode,
        };
        for (o, me, followed) in [
            // Another user's link in /tmp: not followed, even by root.
            (owners(Some(65534), Some(0), 0o41777), Some(0), false),
            (owners(Some(65534), Some(0), 0o41777), Some(1000), false),
            // The follower's own link, or the directory owner's.
            (owners(Some(1000), Some(0), 0o41777), Some(1000), true),
            (owners(Some(65534), Some(65534), 0o41777), Some(0), true),
            // Not sticky, or not world-writable: the rule does not apply.
            (owners(Some(65534), Some(0), 0o40777), Some(0), true),
            (owners(Some(65534), Some(0), 0o41775), Some(0), true),
            // Owners the server does not tell, or a uid unknown: refused.
            (owners(None, Some(0), 0o41777), Some(0), false),
            (owners(Some(65534), Some(0), 0o41777), None, false),
        ] {
            assert_eq!(
                protected_link("/tmp", o, me).is_none(),
                followed,
                "{o:?} me {me:?}"
            );
        }
        let why = protected_link("/tmp", owners(Some(65534), Some(0), 0o41777), Some(0));
        assert!(why.is_some_and(|w| w.contains("uid 65534") && w.contains("in /tmp")));
    }

    #[test]
    fn modes_never_keep_setuid_setgid_or_sticky() {
        assert_eq!(Meta::from_mode(0o104755, 0, 0, 0).mode, 0o755);
        assert_eq!(Meta::from_mode(0o043777, 0, 0, 0).mode, 0o777);
    }

    #[test]
    fn join_paths() {
        assert_eq!(join(".", "a b"), "a b");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("/tmp/", "x"), "/tmp/x");
        assert_eq!(join("/tmp", "x"), "/tmp/x");
    }
}
