//! The local terminal: raw mode restored on every exit path, its size, the
//! connecting status line, and OpenSSH's `~` escape sequences.

pub mod color;
pub mod deadline;
pub mod logging;
pub mod picker;
pub mod signals;
pub mod stdio;
pub mod table;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Raw mode for as long as this guard lives; the original settings come
/// back on drop (normal exit, error, panic unwinding) and from the panic hook.
pub struct RawMode {
    active: bool,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let active =
            std::io::stdin().is_terminal() && crossterm::terminal::enable_raw_mode().is_ok();
        RawMode { active }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.active {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Restore the terminal before a panic message is printed.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::terminal::disable_raw_mode();
        default(info);
    }));
}

/// The terminal's (columns, rows), or 80x24 when it cannot be told.
pub fn size() -> (u32, u32) {
    crossterm::terminal::size()
        .map(|(c, r)| (u32::from(c), u32::from(r)))
        .unwrap_or((80, 24))
}

/// Whether a progress line is on stderr now, to be cleared before anything
/// else is printed there.
static PROGRESS_SHOWN: AtomicBool = AtomicBool::new(false);

/// Clear the progress line, if one is showing, so that the next message
/// starts on a clean line instead of running on after it.
pub fn clear_progress() {
    if PROGRESS_SHOWN.swap(false, Ordering::SeqCst) {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K");
        let _ = e.flush();
    }
}

/// Write `text` to stdout. A reader that went away (`eic-ssh ls | head -1`)
/// is [`Error::StdoutClosed`]: the command ends quietly, never with a panic
/// or a "Broken pipe".
///
/// [`Error::StdoutClosed`]: crate::error::Error::StdoutClosed
pub fn out(text: &str) -> Result<(), crate::error::Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => crate::error::Error::StdoutClosed,
            _ => crate::error::Error::Io(e),
        })
}

/// A status line on stderr (`eic-ssh: …`), after clearing the progress line.
/// Like errors, it may carry text from the network: no control characters
/// reach the terminal, and no secret.
pub fn notice(msg: &str) {
    clear_progress();
    eprintln!(
        "eic-ssh: {}",
        crate::text::printable(&crate::text::redact::redact_message(msg))
    );
}

/// Print an error once, with its hint.
pub fn report(e: &crate::error::Error) {
    clear_progress();
    // Whoever read stdout left on purpose: nothing to say.
    if matches!(e, crate::error::Error::StdoutClosed) {
        return;
    }
    // Errors carry values from the network and the environment: printed
    // without control characters, and redacted as logs are.
    let shown = |s: &str| crate::text::printable(&crate::text::redact::redact_message(s));
    eprintln!("eic-ssh: {}", shown(&e.to_string()));
    if let Some(hint) = e.hint() {
        eprintln!("eic-ssh: hint: {}", shown(&hint));
    }
}

/// A one-line status on stderr while connecting, only when stderr is a
/// terminal and not `-q`. Cleared before the session starts, and before any
/// other message (see [`notice`] and [`clear_progress`]).
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub fn say(&self, what: &str) {
        if self.enabled {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2Keic-ssh: {what}…");
            let _ = e.flush();
            PROGRESS_SHOWN.store(true, Ordering::SeqCst);
        }
    }

    pub fn clear(&self) {
        if self.enabled {
            clear_progress();
        }
    }
}

/// What an escape sequence asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeCommand {
    /// `~.`: disconnect now.
    Disconnect,
    /// `~?`: list the escapes.
    Help,
}

/// OpenSSH's escape sequences, recognised only right after a newline (or at
/// the start): `~.`, `~?` and `~~`. Everything else passes through.
#[derive(Debug, Clone)]
pub struct Escapes {
    escape: Option<u8>,
    at_line_start: bool,
    pending: bool,
}

impl Escapes {
    /// `escape` is `None` for `-e none`.
    pub fn new(escape: Option<u8>) -> Escapes {
        Escapes {
            escape,
            at_line_start: true,
            pending: false,
        }
    }

    /// Feed typed bytes; the bytes to send go to `out`. Returns a command if
    /// one was typed (bytes after it in `input` are dropped, as ssh does for `~.`).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<EscapeCommand> {
        let Some(esc) = self.escape else {
            out.extend_from_slice(input);
            return None;
        };
        for &b in input {
            if self.pending {
                self.pending = false;
                match b {
                    b'.' => return Some(EscapeCommand::Disconnect),
                    b'?' => {
                        self.at_line_start = false;
                        return Some(EscapeCommand::Help);
                    }
                    _ if b == esc => {
                        out.push(esc);
                        self.at_line_start = false;
                        continue;
                    }
                    _ => out.push(esc),
                }
            } else if self.at_line_start && b == esc {
                self.pending = true;
                continue;
            }
            out.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        None
    }

    /// The `~?` text, with CRLF for a raw-mode terminal.
    pub fn help(&self) -> String {
        let e = self.escape.map(char::from).unwrap_or('~');
        format!(
            "Supported escape sequences:\r\n {e}.   - terminate connection\r\n {e}?   - this message\r\n {e}{e}   - send the escape character by typing it twice\r\n(Note that escapes are only recognized immediately after newline.)\r\n"
        )
    }
}

/// The `-e` setting: a byte, or `None` for `-e none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscapeChar(pub Option<u8>);

/// Parse `-e`: `none`, a single character, or `^X` for a control character.
pub fn parse_escape_char(s: &str) -> Result<EscapeChar, String> {
    let bytes = s.as_bytes();
    match bytes {
        b"none" => Ok(EscapeChar(None)),
        [c] if c.is_ascii() => Ok(EscapeChar(Some(*c))),
        [b'^', c] if c.is_ascii_alphabetic() || b"[\\]^_".contains(c) => {
            Ok(EscapeChar(Some(c.to_ascii_uppercase() & 0x1f)))
        }
        _ => Err(format!(
            "'{s}' is not an escape character: use a single ASCII character, ^X, or none"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(esc: Option<u8>, input: &[u8]) -> (Vec<u8>, Option<EscapeCommand>) {
        let mut e = Escapes::new(esc);
        let mut out = Vec::new();
        let cmd = e.feed(input, &mut out);
        (out, cmd)
    }

    #[test]
    fn tilde_dot_after_newline_disconnects() {
        assert_eq!(
            run(Some(b'~'), b"ls\r~."),
            (b"ls\r".to_vec(), Some(EscapeCommand::Disconnect))
        );
        assert_eq!(
            run(Some(b'~'), b"~."),
            (vec![], Some(EscapeCommand::Disconnect))
        );
    }

    #[test]
    fn tilde_mid_line_passes_through() {
        assert_eq!(run(Some(b'~'), b"a~."), (b"a~.".to_vec(), None));
    }

    #[test]
    fn double_tilde_sends_one_and_others_pass() {
        assert_eq!(run(Some(b'~'), b"~~x"), (b"~x".to_vec(), None));
        assert_eq!(run(Some(b'~'), b"~x"), (b"~x".to_vec(), None));
        assert_eq!(run(Some(b'~'), b"~?"), (vec![], Some(EscapeCommand::Help)));
    }

    #[test]
    fn split_across_reads_and_other_chars() {
        let mut e = Escapes::new(Some(b'%'));
        let mut out = Vec::new();
        assert_eq!(e.feed(b"\n%", &mut out), None);
        assert_eq!(e.feed(b".", &mut out), Some(EscapeCommand::Disconnect));
        assert_eq!(out, b"\n");
        assert_eq!(run(None, b"~."), (b"~.".to_vec(), None));
    }

    #[test]
    fn parses_escape_chars() {
        assert_eq!(parse_escape_char("none"), Ok(EscapeChar(None)));
        assert_eq!(parse_escape_char("~"), Ok(EscapeChar(Some(b'~'))));
        assert_eq!(parse_escape_char("^]"), Ok(EscapeChar(Some(0x1d))));
        assert!(parse_escape_char("ab").is_err_and(|e| e.contains("'ab'")));
    }
}
