//! One side of a copy, local or remote, behind the same few operations:
//! stat, list, mkdir, read, create, rename over, remove, set times and mode.
//! Modes are masked to `rwx` bits everywhere ([`sftp::MODE_BITS`]).

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ssh::sftp::{self, Finish, Kind, MODE_BITS, Meta, Sftp};

/// A failure on one side, as text (the caller names the file).
pub type SideResult<T> = Result<T, String>;

/// Local reads: one 256 KiB buffer at a time.
const LOCAL_CHUNK: usize = 256 * 1024;

/// Where files are read or written.
#[derive(Clone)]
pub enum Side {
    Local,
    Remote(Arc<Sftp>),
}

/// An open source file.
pub enum Reader {
    Local(tokio::fs::File, Vec<u8>),
    Remote(sftp::Reader),
}

/// An open destination file (under its temporary name).
pub enum Writer {
    Local(tokio::fs::File),
    Remote(sftp::Writer),
}

fn local_meta(m: &std::fs::Metadata) -> Meta {
    let secs = |t: i64| u32::try_from(t).unwrap_or(0);
    Meta::from_mode(m.mode(), m.len(), secs(m.atime()), secs(m.mtime()))
}

impl Side {
    pub fn is_local(&self) -> bool {
        matches!(self, Side::Local)
    }

    /// Metadata following symbolic links; `None` if nothing is there.
    pub async fn stat(&self, path: &str) -> SideResult<Option<Meta>> {
        match self {
            Side::Local => match tokio::fs::metadata(path).await {
                Ok(m) => Ok(Some(local_meta(&m))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            },
            Side::Remote(s) => s.stat(path).await.map_err(|e| e.to_string()),
        }
    }

    /// A directory's entries and their metadata, sorted by name.
    pub async fn list(&self, path: &str) -> SideResult<Vec<(String, Meta)>> {
        let mut out = match self {
            Side::Local => {
                let mut out = Vec::new();
                let mut rd = tokio::fs::read_dir(path).await.map_err(|e| e.to_string())?;
                while let Some(e) = rd.next_entry().await.map_err(|e| e.to_string())? {
                    let name = e.file_name().into_string().map_err(|n| {
                        format!("the name {n:?} is not UTF-8, which SFTP cannot carry")
                    })?;
                    // A link to a file is followed, as scp does; one to a
                    // directory is not (a loop would never end), and a
                    // dangling one stays a link, to be skipped.
                    let path = e.path();
                    let lstat = tokio::fs::symlink_metadata(&path)
                        .await
                        .map_err(|err| format!("{}: {err}", path.display()))?;
                    let meta = if lstat.file_type().is_symlink() {
                        match tokio::fs::metadata(&path).await {
                            Ok(m) if m.is_dir() => Meta {
                                kind: Kind::LinkToDir,
                                ..local_meta(&m)
                            },
                            Ok(m) => local_meta(&m),
                            Err(_) => local_meta(&lstat),
                        }
                    } else {
                        local_meta(&lstat)
                    };
                    out.push((name, meta));
                }
                out
            }
            Side::Remote(s) => s.list(path).await.map_err(|e| e.to_string())?,
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Metadata of `path` itself, a symbolic link not followed
    /// ([`Kind::Link`]); `None` if nothing is there.
    pub async fn lstat(&self, path: &str) -> SideResult<Option<Meta>> {
        match self {
            Side::Local => match tokio::fs::symlink_metadata(path).await {
                Ok(m) => Ok(Some(local_meta(&m))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            },
            Side::Remote(s) => s.lstat(path).await.map_err(|e| e.to_string()),
        }
    }

    /// Where a file written to `path` lands, and what is there now. With
    /// `follow` (a destination named on the command line), a symbolic
    /// link's target, so that the link stays and the file it points to is
    /// replaced, as scp writes through it; a dangling link is replaced
    /// itself; another user's link in a sticky, world-writable directory is
    /// refused (see [`sftp::protected_link`]). Without `follow` (inside a
    /// recursive copy), `None` when `path` is a symbolic link.
    pub async fn landing(
        &self,
        path: &str,
        follow: bool,
    ) -> SideResult<Option<(String, Option<Meta>)>> {
        if !follow {
            return Ok(match self.lstat(path).await? {
                Some(m) if m.kind == Kind::Link => None,
                m => Some((path.to_owned(), m)),
            });
        }
        let real = match self {
            Side::Local => sftp::walk::link_target(&LocalFs, path)
                .await
                .map_err(|e| match e {
                    sftp::walk::Stop::Failed(e) | sftp::walk::Stop::Protected(e) => e,
                    sftp::walk::Stop::TooManyLinks => {
                        format!("too many levels of symbolic links in {path}")
                    }
                })?,
            Side::Remote(s) => s.link_target(path).await.map_err(|e| e.to_string())?,
        }
        .unwrap_or_else(|| path.to_owned());
        let meta = self.stat(&real).await?;
        Ok(Some((real, meta)))
    }

    pub async fn mkdir(&self, path: &str, mode: u32) -> SideResult<()> {
        match self {
            Side::Local => {
                let mut b = std::fs::DirBuilder::new();
                std::os::unix::fs::DirBuilderExt::mode(&mut b, mode & MODE_BITS);
                b.create(path).map_err(|e| e.to_string())
            }
            Side::Remote(s) => s.mkdir(path, mode).await.map_err(|e| e.to_string()),
        }
    }

    pub async fn reader(&self, path: &str, size: u64) -> SideResult<Reader> {
        match self {
            Side::Local => tokio::fs::File::open(path)
                .await
                .map(|f| Reader::Local(f, vec![0u8; LOCAL_CHUNK]))
                .map_err(|e| e.to_string()),
            Side::Remote(s) => s
                .reader(path, size)
                .await
                .map(Reader::Remote)
                .map_err(|e| e.to_string()),
        }
    }

    /// Create `path`, which must not exist yet.
    pub async fn create(&self, path: &str, mode: u32) -> SideResult<Writer> {
        match self {
            Side::Local => {
                // O_EXCL: never through a link, never an existing file.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode & MODE_BITS)
                    .open(path)
                    .map_err(|e| e.to_string())?;
                Ok(Writer::Local(tokio::fs::File::from_std(file)))
            }
            Side::Remote(s) => s
                .create(path, mode)
                .await
                .map(Writer::Remote)
                .map_err(|e| e.to_string()),
        }
    }

    /// Rename `from` to `to`, replacing whatever file `to` was.
    pub async fn rename_over(&self, from: &str, to: &str) -> SideResult<()> {
        match self {
            Side::Local => tokio::fs::rename(from, to).await.map_err(|e| e.to_string()),
            Side::Remote(s) => s.rename_over(from, to).await.map_err(|e| e.to_string()),
        }
    }

    pub async fn remove(&self, path: &str) -> SideResult<()> {
        match self {
            Side::Local => tokio::fs::remove_file(path)
                .await
                .map_err(|e| e.to_string()),
            Side::Remote(s) => s.remove(path).await.map_err(|e| e.to_string()),
        }
    }

    /// Give directory `path` the mode (masked) and times of `meta` (-p).
    /// Locally on the opened directory, and not through a symbolic link
    /// unless `follow` (the destination named on the command line); SFTP
    /// servers set a directory's attributes only by path.
    pub async fn preserve_dir(&self, path: &str, meta: &Meta, follow: bool) -> SideResult<()> {
        match self {
            Side::Local => {
                use rustix::fs::{Mode, OFlags};
                let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                if !follow {
                    flags |= OFlags::NOFOLLOW;
                }
                let dir = std::fs::File::from(
                    rustix::fs::open(path, flags, Mode::empty()).map_err(|e| e.to_string())?,
                );
                set_local(
                    &dir,
                    Finish {
                        mode: Some(meta.mode),
                        times: Some((meta.atime, meta.mtime)),
                    },
                )
            }
            Side::Remote(s) => s
                .set_meta(path, Some(meta.mode), Some((meta.atime, meta.mtime)))
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

/// Set a local file's mode (exactly, masked) and times on its descriptor:
/// `fchmod` and `futimens`.
fn set_local(file: &std::fs::File, finish: Finish) -> SideResult<()> {
    if let Some(mode) = finish.mode {
        file.set_permissions(std::fs::Permissions::from_mode(mode & MODE_BITS))
            .map_err(|e| e.to_string())?;
    }
    if let Some((atime, mtime)) = finish.times {
        let at = |s: u32| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(s));
        let times = std::fs::FileTimes::new()
            .set_accessed(at(atime))
            .set_modified(at(mtime));
        file.set_times(times).map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Reader {
    /// The next piece, or `None` at the end.
    pub async fn next(&mut self) -> SideResult<Option<Vec<u8>>> {
        match self {
            Reader::Local(f, buf) => {
                let n = f.read(buf).await.map_err(|e| e.to_string())?;
                Ok((n > 0).then(|| buf[..n].to_vec()))
            }
            Reader::Remote(r) => r.next().await.map_err(|e| e.to_string()),
        }
    }

    pub async fn close(self) {
        if let Reader::Remote(r) = self {
            r.close().await;
        }
    }
}

impl Writer {
    pub async fn write(&mut self, data: &[u8]) -> SideResult<()> {
        match self {
            Writer::Local(f) => f.write_all(data).await.map_err(|e| e.to_string()),
            Writer::Remote(w) => w.write(data).await.map_err(|e| e.to_string()),
        }
    }

    /// Everything written and acknowledged, `finish`'s mode and times set
    /// on the open file, and the file closed.
    pub async fn finish(self, finish: Finish) -> SideResult<()> {
        match self {
            Writer::Local(mut f) => {
                f.flush().await.map_err(|e| e.to_string())?;
                set_local(&f.into_std().await, finish)
            }
            Writer::Remote(w) => w.finish(finish).await.map_err(|e| e.to_string()),
        }
    }

    pub async fn abort(self) {
        if let Writer::Remote(w) = self {
            w.abort().await;
        }
    }
}

/// Removes a local temporary file when dropped, unless disarmed: a copy cut
/// short (even by the connection dropping) leaves nothing behind.
pub struct LocalTemp(Option<PathBuf>);

impl LocalTemp {
    pub fn new(side: &Side, path: &str) -> LocalTemp {
        LocalTemp(side.is_local().then(|| PathBuf::from(path)))
    }

    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for LocalTemp {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// This machine's file system, for [`sftp::walk::link_target`].
struct LocalFs;

impl sftp::walk::Walk for LocalFs {
    type Error = String;

    async fn lstat(&self, path: &str) -> Result<Option<sftp::walk::Node>, String> {
        match std::fs::symlink_metadata(path) {
            Ok(m) => Ok(Some(sftp::walk::Node {
                link: m.file_type().is_symlink(),
                uid: Some(m.uid()),
                mode: m.mode(),
            })),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("{path}: {e}")),
        }
    }

    async fn readlink(&self, path: &str) -> Result<String, String> {
        let target = std::fs::read_link(path).map_err(|e| format!("{path}: {e}"))?;
        target.into_os_string().into_string().map_err(|t| {
            format!(
                "{path}: the link's target is not UTF-8: {}",
                t.to_string_lossy()
            )
        })
    }

    async fn uid(&self) -> Option<u32> {
        Some(rustix::process::geteuid().as_raw())
    }
}
