//! Colour: `--color auto|always|never` and `NO_COLOR` (<https://no-color.org>).
//! `auto` colours a stream only when it is a terminal and `NO_COLOR` is
//! unset or empty; `always` and `never` override both.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour when the output is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Record the command line's choice, once, at start-up.
pub fn set(when: ColorWhen) {
    CHOICE.store(when as u8, Ordering::Relaxed);
}

fn choice() -> ColorWhen {
    match CHOICE.load(Ordering::Relaxed) {
        1 => ColorWhen::Always,
        2 => ColorWhen::Never,
        _ => ColorWhen::Auto,
    }
}

/// Whether to colour a stream that `is_terminal` or not.
pub fn decide(when: ColorWhen, is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// Whether to colour stdout.
pub fn stdout() -> bool {
    decide(
        choice(),
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// Whether to colour stderr.
pub fn stderr() -> bool {
    decide(
        choice(),
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// `text` in the SGR colour `code` (e.g. `32` green) when `on`.
pub fn paint(on: bool, code: &str, text: &str) -> String {
    match on {
        true => format!("\x1b[{code}m{text}\x1b[0m"),
        false => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_and_the_flag_decide() {
        assert!(decide(ColorWhen::Auto, true, None));
        assert!(decide(ColorWhen::Auto, true, Some(OsStr::new(""))));
        assert!(!decide(ColorWhen::Auto, true, Some(OsStr::new("1"))));
        assert!(!decide(ColorWhen::Auto, false, None));
        assert!(decide(ColorWhen::Always, false, Some(OsStr::new("1"))));
        assert!(!decide(ColorWhen::Never, true, None));
    }
}
