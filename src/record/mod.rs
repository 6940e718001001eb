//! Session recordings: an interactive session written as it runs in
//! asciinema's asciicast v2 format (`--record`), and played back in the
//! terminal (`eic-ssh play`) with no other tool.
//!
//! - [`cast`]: the format, written (v2) and read (v2 and v3);
//! - [`writer`]: the [`Recorder`] a session writes its output, input and
//!   resizes to;
//! - [`player`]: playback, at a speed, with pauses capped.

pub mod cast;
pub mod player;
pub mod writer;

pub use writer::{Recorder, Session};
