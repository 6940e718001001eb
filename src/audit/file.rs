//! The log file: where it lives, appending one whole line at a time, and
//! rotation at a size limit.
//!
//! Many eic-ssh processes append to the same file at once (an `exec` over
//! a fleet beside a few sessions). Each line is one `write` to a file opened
//! with `O_APPEND`, under an exclusive lock on `<log>.lock` beside it: the
//! lock keeps lines whole on any file system (NFS included, where
//! `O_APPEND` alone does not), and makes rotation safe, since the file is
//! renamed away under the same lock.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::fs::lock;

/// Rotate once the file would grow past this many bytes (about 14,000
/// connections).
pub const DEFAULT_MAX_SIZE: u64 = 10 << 20;
/// Old files kept: `connections.jsonl.1` (the newest) to `.5`.
pub const DEFAULT_KEEP: u32 = 5;
/// Sets the size limit (bytes, or with a K, M or G suffix).
pub const MAX_SIZE_VAR: &str = "EIC_SSH_LOG_MAX_SIZE";
/// Sets how many old files are kept.
pub const KEEP_VAR: &str = "EIC_SSH_LOG_KEEP";

/// When the log rotates, and how many old files it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation {
            max_size: DEFAULT_MAX_SIZE,
            keep: DEFAULT_KEEP,
        }
    }
}

impl Rotation {
    /// From `EIC_SSH_LOG_MAX_SIZE` and `EIC_SSH_LOG_KEEP`, with the defaults
    /// for what is unset; a bad value is an error that names it.
    pub fn from_env() -> Result<Rotation, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut r = Rotation::default();
        if let Some(v) = var(MAX_SIZE_VAR) {
            r.max_size = parse_size(&v).map_err(|e| format!("{MAX_SIZE_VAR}={v:?}: {e}"))?;
        }
        if let Some(v) = var(KEEP_VAR) {
            r.keep = v
                .trim()
                .parse()
                .ok()
                .filter(|k| *k <= 1000)
                .ok_or_else(|| format!("{KEEP_VAR}={v:?}: not a number of files from 0 to 1000"))?;
        }
        Ok(r)
    }
}

/// `4096`, `64K`, `10M`, `1G` (powers of 1024); at least 1 KiB, so that a
/// line always fits.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err("use a number of bytes, or one with K, M or G after it".into()),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "use a number of bytes, or one with K, M or G after it".to_owned())?;
    let size = n
        .checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_owned())?;
    match size {
        0..1024 => Err("the limit must be at least 1K".into()),
        size => Ok(size),
    }
}

/// The default log: `$XDG_STATE_HOME/eic-ssh/connections.jsonl`, or
/// `~/.local/state/eic-ssh/connections.jsonl` (a relative
/// `XDG_STATE_HOME` is ignored, as the XDG spec says).
pub fn default_path() -> PathBuf {
    state_dir().join("connections.jsonl")
}

/// `$XDG_STATE_HOME/eic-ssh`, or `~/.local/state/eic-ssh`.
pub fn state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            std::env::home_dir()
                .unwrap_or_default()
                .join(".local")
                .join("state")
        });
    base.join("eic-ssh")
}

/// A directory for eic-ssh's own files, and those above it that are
/// missing, created user-only (0700).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// The log file and its rotation.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    rotation: Rotation,
    /// eic-ssh's own file (the default log): kept user-only, as is its
    /// directory, even when something else made them with a looser mode.
    /// A file the user chose keeps the mode it has.
    own: bool,
}

impl LogFile {
    pub fn new(path: PathBuf, rotation: Rotation) -> LogFile {
        LogFile {
            path,
            rotation,
            own: false,
        }
    }

    /// Make this eic-ssh's own file: user-only, whoever made it.
    pub fn own(mut self, own: bool) -> LogFile {
        self.own = own;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `line` (one JSON object, without its newline) as one write,
    /// under the lock; rotate first if it would pass the size limit. A new
    /// file is user-only (0600), in a user-only directory if eic-ssh makes it.
    pub fn append(&self, line: &str) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir)?;
            if self.own {
                user_only(&std::fs::metadata(dir)?, 0o700, |m| {
                    std::fs::set_permissions(dir, m)
                })?;
            }
        }
        let _lock = lock::lock_beside(&self.path)?;
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + bytes.len() as u64 > self.rotation.max_size {
            self.rotate()?;
        }
        let mut file = open_append(&self.path)?;
        if self.own {
            user_only(&file.metadata()?, 0o600, |m| file.set_permissions(m))?;
        }
        // One write: with O_APPEND and the lock, the line lands whole at
        // the end. A short write (a full disk) is finished under the lock.
        let n = file.write(&bytes)?;
        if n < bytes.len() {
            file.write_all(&bytes[n..])?;
        }
        Ok(())
    }

    /// `log.{keep-1}` → `log.{keep}`, …, `log` → `log.1`; the oldest goes.
    /// Called with the lock held.
    fn rotate(&self) -> io::Result<()> {
        let keep = self.rotation.keep;
        if keep == 0 {
            return remove_if_there(&self.path);
        }
        remove_if_there(&rotated(&self.path, keep))?;
        for n in (1..keep).rev() {
            rename_if_there(&rotated(&self.path, n), &rotated(&self.path, n + 1))?;
        }
        rename_if_there(&self.path, &rotated(&self.path, 1))
    }
}

/// Set `mode` when `meta` gives the group or others any access.
fn user_only(
    meta: &std::fs::Metadata,
    mode: u32,
    set: impl FnOnce(std::fs::Permissions) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o077 == 0 {
        return Ok(());
    }
    set(std::fs::Permissions::from_mode(mode))
}

/// `log.N`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_there(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        for bad in ["", "ten", "5X", "-1", "100", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_new_log_is_user_only_in_a_user_only_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("eic-ssh").join("c.jsonl");
        let log = LogFile::new(path.clone(), Rotation::default());
        log.append("{\"a\":1}").unwrap();
        log.append("{\"a\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
    }

    #[test]
    fn the_default_log_is_made_user_only_and_a_chosen_one_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        // Made by something else, readable by all.
        let own_dir = dir.path().join("eic-ssh");
        std::fs::create_dir(&own_dir).unwrap();
        set(&own_dir, 0o755);
        let own = own_dir.join("connections.jsonl");
        std::fs::write(&own, "{\"a\":0}\n").unwrap();
        set(&own, 0o644);
        LogFile::new(own.clone(), Rotation::default())
            .own(true)
            .append("{\"a\":1}")
            .unwrap();
        assert_eq!((mode(&own), mode(&own_dir)), (0o600, 0o700));
        assert_eq!(
            std::fs::read_to_string(&own).unwrap(),
            "{\"a\":0}\n{\"a\":1}\n"
        );

        let shared_dir = dir.path().join("team");
        std::fs::create_dir(&shared_dir).unwrap();
        set(&shared_dir, 0o770);
        let shared = shared_dir.join("audit.jsonl");
        std::fs::write(&shared, "").unwrap();
        set(&shared, 0o660);
        LogFile::new(shared.clone(), Rotation::default())
            .append("{\"a\":1}")
            .unwrap();
        assert_eq!((mode(&shared), mode(&shared_dir)), (0o660, 0o770));
    }

    #[test]
    fn rotation_keeps_a_bounded_number_of_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let log = LogFile::new(
            path.clone(),
            Rotation {
                max_size: 1024,
                keep: 2,
            },
        );
        // 300 bytes a line with its newline: three fit in 1024.
        for n in 0..20 {
            log.append(&format!("{n:0>299}")).unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        // Lines 18 and 19 in the current file, 15-17 and 12-14 before it;
        // older ones are gone.
        let expect = |range: std::ops::Range<u32>| -> String {
            range.map(|n| format!("{n:0>299}\n")).collect()
        };
        assert_eq!(read(&path), expect(18..20));
        assert_eq!(read(&rotated(&path, 1)), expect(15..18));
        assert_eq!(read(&rotated(&path, 2)), expect(12..15));
        assert!(!rotated(&path, 3).exists());
    }

    #[test]
    fn writers_at_once_lose_no_line_and_tear_none_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        // Enough old files that nothing is dropped: every line is findable.
        let rotation = Rotation {
            max_size: 2048,
            keep: 1000,
        };
        // Each writer opens the lock file itself, as a process does (flock
        // locks belong to the open file, so threads contend as processes).
        let (writers, lines) = (8, 60);
        let threads: Vec<_> = (0..writers)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let log = LogFile::new(path, rotation);
                    for n in 0..lines {
                        // 200 to 250 bytes, so lines straddle the limit.
                        let pad = "x".repeat(200 + (w * 7 + n) % 50);
                        log.append(&format!("{{\"w\":{w},\"n\":{n},\"pad\":\"{pad}\"}}"))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut files = vec![path.clone()];
        files.extend(
            (1..=rotation.keep)
                .map(|n| rotated(&path, n))
                .take_while(|p| p.exists()),
        );
        assert!(files.len() > 5, "it never rotated: {files:?}");
        let mut seen = std::collections::BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                text.len() <= 2048,
                "{} is {} bytes",
                f.display(),
                text.len()
            );
            assert!(text.ends_with('\n'), "{}: {text}", f.display());
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("a torn line ({e}) in {}: {line}", f.display()));
                let key = (v["w"].as_u64().unwrap(), v["n"].as_u64().unwrap());
                assert!(seen.insert(key), "{key:?} twice");
            }
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
        assert_eq!(seen.len(), writers * lines, "lines were lost");
    }
}
