//! One side of a copy, local or remote, behind the same few operations:
//! stat, list, mkdir, read, create, rename over, remove, set times and mode.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::ssh::sftp::{self, Meta, Sftp};

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
                    // Links are followed, as scp does; a dangling one is
                    // skipped (as something not a regular file), not fatal.
                    let m = match tokio::fs::metadata(e.path()).await {
                        Ok(m) => m,
                        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                            tokio::fs::symlink_metadata(e.path())
                                .await
                                .map_err(|err| format!("{}: {err}", e.path().display()))?
                        }
                        Err(err) => return Err(format!("{}: {err}", e.path().display())),
                    };
                    out.push((name, local_meta(&m)));
                }
                out
            }
            Side::Remote(s) => s.list(path).await.map_err(|e| e.to_string())?,
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Where a file written to `path` lands, and what is there now: a
    /// symbolic link's target, so that the link stays and the file it
    /// points to is replaced, as scp writes through it. A dangling link is
    /// replaced itself.
    pub async fn landing(&self, path: &str) -> SideResult<(String, Option<Meta>)> {
        let real = match self {
            Side::Local => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
                    .ok()
                    .and_then(|p| p.into_os_string().into_string().ok()),
                _ => None,
            },
            Side::Remote(s) => s.link_target(path).await.map_err(|e| e.to_string())?,
        }
        .unwrap_or_else(|| path.to_owned());
        let meta = self.stat(&real).await?;
        Ok((real, meta))
    }

    /// Set the permission bits of `path` exactly (no umask).
    pub async fn set_mode(&self, path: &str, mode: u32) -> SideResult<()> {
        match self {
            Side::Local => std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string()),
            Side::Remote(s) => s
                .set_meta(path, Some(mode), None)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    pub async fn mkdir(&self, path: &str, mode: u32) -> SideResult<()> {
        match self {
            Side::Local => {
                let mut b = std::fs::DirBuilder::new();
                std::os::unix::fs::DirBuilderExt::mode(&mut b, mode);
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
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
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

    /// Give `path` the mode and times of `meta` (-p).
    pub async fn preserve(&self, path: &str, meta: &Meta) -> SideResult<()> {
        match self {
            Side::Local => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode))
                    .map_err(|e| e.to_string())?;
                let at = |s: u32| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(s));
                let times = std::fs::FileTimes::new()
                    .set_accessed(at(meta.atime))
                    .set_modified(at(meta.mtime));
                std::fs::File::open(path)
                    .and_then(|f| f.set_times(times))
                    .map_err(|e| e.to_string())
            }
            Side::Remote(s) => s
                .set_meta(path, Some(meta.mode), Some((meta.atime, meta.mtime)))
                .await
                .map_err(|e| e.to_string()),
        }
    }
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

    /// Everything written and acknowledged, and the file closed.
    pub async fn finish(self) -> SideResult<()> {
        match self {
            Writer::Local(mut f) => f.flush().await.map_err(|e| e.to_string()),
            Writer::Remote(w) => w.finish().await.map_err(|e| e.to_string()),
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
