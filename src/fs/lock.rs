//! Advisory locks for the files several eic-ssh processes change at once
//! (`known_hosts`, the route cache): each change re-reads the file under an
//! exclusive lock, so concurrent writers neither lose entries nor tear the
//! file. Readers need no lock: the cache is replaced by an atomic rename,
//! and known_hosts only ever grows by whole appended lines.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An exclusive lock, released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Locked {
    file: File,
}

impl Locked {
    /// The locked file, for files locked in place.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }
}

/// Lock `file` itself, waiting for any other holder.
pub fn lock(file: File) -> io::Result<Locked> {
    file.lock()?;
    Ok(Locked { file })
}

/// Lock a file that is replaced by rename (so cannot be locked itself)
/// through `<path>.lock` beside it, created user-only.
pub fn lock_beside(path: &Path) -> io::Result<Locked> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path(path))?;
    lock(file)
}

/// `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.json");
        assert_eq!(lock_path(&path), dir.path().join("routes.json.lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, inside, most) = (path.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _held = lock_beside(&path).unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
