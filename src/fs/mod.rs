//! Local files that eic-ssh changes: advisory locks for the files several
//! processes write at once, and files replaced whole (atomically).

pub mod atomic;
pub mod lock;
