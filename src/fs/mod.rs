//! Local files that eic-ssh changes: advisory locks for the files several
//! processes write at once.

pub mod lock;
