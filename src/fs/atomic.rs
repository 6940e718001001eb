//! Files replaced whole: a reader sees the old contents or the new, never a
//! torn file, and a crash leaves at worst a stray temporary beside it.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create `dir` and any missing parents, each new one user-only (0700).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replace `path` with `bytes`, with exactly `mode` (whatever the umask):
/// written to a fresh file beside it, synced, then renamed over it. The
/// temporary's name is new and it is created only if nothing is there, so
/// a link someone left in the directory is never followed. If anything
/// fails, the temporary is removed and `path` is as it was.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temporary_beside(path);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.<name>.<pid>.<random>.tmp` beside `path`.
fn temporary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(path).join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_file_is_replaced_whole_with_the_mode_asked_and_nothing_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, b"old").unwrap();
        write(&path, b"new contents", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        write(&path, b"again", 0o644).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config"]);
    }

    #[test]
    fn a_failed_write_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: the rename fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"kept").unwrap();
        assert!(write(&path, b"new", 0o600).is_err());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"kept");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["taken"], "the temporary was left behind");
    }

    #[test]
    fn new_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        private_dir(&deep).unwrap();
        for d in [dir.path().join("a"), deep] {
            assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        }
        assert_eq!(parent(Path::new("bare")), Path::new("."));
    }
}
