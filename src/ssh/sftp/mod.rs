//! SFTP over the session (the `sftp` subsystem on a session channel), with
//! pipelined reads and writes: throughput is bounded by the window, not by
//! round trips.

pub mod transfer;

use std::sync::Arc;

use russh::client::Handle;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use crate::error::Error;
use crate::ssh::host_keys::Client;
pub use transfer::{Reader, Writer};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Other,
}

/// The metadata `cp` uses: type, size, permission bits and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub atime: u32,
    pub mtime: u32,
}

impl Meta {
    /// From the file's `st_mode` and the rest.
    pub fn from_mode(st_mode: u32, size: u64, atime: u32, mtime: u32) -> Meta {
        let kind = match st_mode & 0o170000 {
            0o100000 => Kind::File,
            0o040000 => Kind::Dir,
            _ => Kind::Other,
        };
        Meta {
            kind,
            size,
            mode: st_mode & 0o7777,
            atime,
            mtime,
        }
    }

    fn from_attrs(a: &FileAttributes) -> Meta {
        Meta::from_mode(
            a.permissions.unwrap_or(0),
            a.size.unwrap_or(0),
            a.atime.unwrap_or(0),
            a.mtime.unwrap_or(0),
        )
    }
}

/// Whether an SFTP failure says the path does not exist.
pub fn is_not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// An SFTP client on one session.
pub struct Sftp {
    raw: Arc<RawSftpSession>,
    posix_rename: bool,
    read_len: u32,
    write_len: u32,
}

/// OpenSSH's sftp-server serves reads and writes of up to 255 KiB.
const MAX_IO: u64 = 255 * 1024;

impl Sftp {
    /// Start the `sftp` subsystem on a new channel of `handle`.
    pub async fn start(handle: &Handle<Client>) -> Result<Sftp, Error> {
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
    /// metadata; symbolic links are followed, as scp does.
    pub async fn list(&self, path: &str) -> Result<Vec<(String, Meta)>, SftpError> {
        let handle = self.raw.opendir(path).await?.handle;
        let mut out = Vec::new();
        let listed = loop {
            match self.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    for f in name.files {
                        if f.filename == "." || f.filename == ".." {
                            continue;
                        }
                        out.push((f.filename, Meta::from_attrs(&f.attrs)));
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = self.raw.close(handle).await;
        listed?;
        for (name, meta) in &mut out {
            if meta.kind == Kind::Other
                && let Some(m) = self.stat(&join(path, name)).await?
            {
                *meta = m;
            }
        }
        Ok(out)
    }

    /// Where the symbolic link `path` leads (resolved by the server), or
    /// `None` if `path` is not a link, is missing, or leads nowhere.
    pub async fn link_target(&self, path: &str) -> Result<Option<String>, SftpError> {
        match self.raw.lstat(path).await {
            Ok(a) if a.attrs.permissions.unwrap_or(0) & 0o170000 == 0o120000 => {}
            Ok(_) => return Ok(None),
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        match self.raw.realpath(path).await {
            Ok(name) => Ok(name.files.into_iter().next().map(|f| f.filename)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create directory `path` with `mode` (the server applies its umask).
    pub async fn mkdir(&self, path: &str, mode: u32) -> Result<(), SftpError> {
        let attrs = FileAttributes {
            permissions: Some(mode),
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

    /// Set the permission bits and/or the access and modification times.
    pub async fn set_meta(
        &self,
        path: &str,
        mode: Option<u32>,
        times: Option<(u32, u32)>,
    ) -> Result<(), SftpError> {
        let attrs = FileAttributes {
            permissions: mode,
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
            permissions: Some(mode),
            ..Default::default()
        };
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let handle = self.raw.open(path, flags, attrs).await?.handle;
        Ok(Writer::new(self.raw.clone(), handle, self.write_len))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_classify_and_keep_permission_bits() {
        assert_eq!(Meta::from_mode(0o100644, 1, 2, 3).kind, Kind::File);
        assert_eq!(Meta::from_mode(0o040755, 0, 0, 0).kind, Kind::Dir);
        // A socket's type bits include the directory bit.
        assert_eq!(Meta::from_mode(0o140755, 0, 0, 0).kind, Kind::Other);
        assert_eq!(Meta::from_mode(0o104755, 0, 0, 0).mode, 0o4755);
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
    fn join_paths() {
        assert_eq!(join(".", "a b"), "a b");
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("/tmp/", "x"), "/tmp/x");
        assert_eq!(join("/tmp", "x"), "/tmp/x");
    }
}
