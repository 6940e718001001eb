//! What `cp` reads and sets of a file over SFTP: its type, size, mode and
//! times.

use russh_sftp::protocol::FileAttributes;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symbolic link, not followed: as `lstat` sees one, or a listed link
    /// that leads nowhere (missing, or a loop).
    Link,
    /// A symbolic link to a directory, met in a listing: a recursive copy
    /// does not descend into it (a loop would never end).
    LinkToDir,
    Other,
}

/// The metadata `cp` uses: type, size, permission bits and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    /// Permission bits (`0o777`): setuid, setgid and sticky are never kept,
    /// as ownership is not.
    pub mode: u32,
    pub atime: u32,
    pub mtime: u32,
}

/// What a finished file gets, set on its open handle before it is closed
/// (`fchmod`/`futimens`, SFTP `fsetstat`), not by path (only a server
/// without `fsetstat` gets `setstat` on the temporary's name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finish {
    /// Permission bits, exactly (no umask).
    pub mode: Option<u32>,
    /// Access and modification times.
    pub times: Option<(u32, u32)>,
}

/// The permission bits a copy may give a file or directory: `rwx` for
/// owner, group and others, never setuid, setgid or sticky (OpenSSH masks
/// the same way, since the owner is not kept).
pub const MODE_BITS: u32 = 0o777;

/// The file type bits of `st_mode`, and a symbolic link's and a
/// directory's.
pub(super) const S_IFMT: u32 = 0o170000;
pub(super) const S_IFLNK: u32 = 0o120000;
pub(super) const S_IFDIR: u32 = 0o040000;

impl Meta {
    /// From the file's `st_mode` and the rest.
    pub fn from_mode(st_mode: u32, size: u64, atime: u32, mtime: u32) -> Meta {
        let kind = match st_mode & S_IFMT {
            0o100000 => Kind::File,
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Link,
            _ => Kind::Other,
        };
        Meta {
            kind,
            size,
            mode: st_mode & MODE_BITS,
            atime,
            mtime,
        }
    }

    pub(super) fn from_attrs(a: &FileAttributes) -> Meta {
        Meta::from_mode(
            a.permissions.unwrap_or(0),
            a.size.unwrap_or(0),
            a.atime.unwrap_or(0),
            a.mtime.unwrap_or(0),
        )
    }
}
