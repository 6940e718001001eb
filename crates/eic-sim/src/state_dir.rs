//! The simulator's state directory (CA bundle, key database, the
//! `AuthorizedKeysCommand` script, sshd's files), under a base that sshd
//! accepts.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Creates the per-simulator state directory under a base directory that is
/// not writable by others (sshd refuses an `AuthorizedKeysCommand` that is):
/// `$EIC_SSH_SIM_DIR`, else `$HOME/.cache/eic-ssh/sim`.
pub(crate) fn create_state_dir() -> io::Result<tempfile::TempDir> {
    let base = match std::env::var_os("EIC_SSH_SIM_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "neither EIC_SSH_SIM_DIR nor HOME is set: no place for the simulator's state",
                )
            })?;
            PathBuf::from(home).join(".cache/eic-ssh/sim")
        }
    };
    if !base.exists() {
        std::fs::create_dir_all(&base)?;
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700))?;
    }
    // sshd needs absolute paths in its configuration.
    let base = base.canonicalize()?;
    let dir = tempfile::Builder::new().prefix("sim-").tempdir_in(&base)?;
    // sshd (possibly another user) must be able to traverse it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Checks that `path` and every ancestor are owned by root and not
/// writable by group or others: sshd refuses to run an
/// `AuthorizedKeysCommand` otherwise.
pub(crate) fn check_safe_path(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut p = Some(path);
    while let Some(dir) = p {
        let md = std::fs::metadata(dir)?;
        if md.uid() != 0 || md.mode() & 0o022 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} (uid {}, mode {:o}) is unsafe for sshd's AuthorizedKeysCommand: the \
                     script and every directory above it must be owned by root and not group- \
                     or world-writable. Point EIC_SSH_SIM_DIR at such a directory (default: \
                     $HOME/.cache/eic-ssh/sim).",
                    dir.display(),
                    md.uid(),
                    md.mode() & 0o7777
                ),
            ));
        }
        p = dir.parent();
    }
    Ok(())
}
