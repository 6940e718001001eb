//! Text that came from the other side (an endpoint's error body or close
//! reason, an API's error message, an instance's console) is made safe to
//! print: a hostile or broken peer must not be able to move the cursor, set
//! the window title or clear the screen, reorder what is shown with bidi
//! controls, nor flood the terminal.

pub mod redact;

/// The most bytes of remote text shown, about 1 KB.
pub const MAX_REMOTE_TEXT: usize = 1024;

/// Whether `c` is a Unicode bidirectional control (embeddings, overrides,
/// isolates, marks): shown raw, U+202E turns `txt.exe` into what reads as
/// `exe.txt`.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// `s` without control characters (C0, DEL and C1: escape sequences, bells,
/// carriage returns, newlines; a tab or newline becomes a space) nor bidi
/// controls, and cut to about [`MAX_REMOTE_TEXT`] bytes on a character
/// boundary, marked with `…`.
pub fn remote_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_REMOTE_TEXT + 4));
    for c in s.chars() {
        let c = match c {
            '\t' | '\n' => ' ',
            c if c.is_control() || is_bidi_control(c) => continue,
            c => c,
        };
        if out.len() + c.len_utf8() > MAX_REMOTE_TEXT {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Escape characters (and bidi controls) taken out of a whole message before
/// it is printed, whatever its parts: a second line of defence behind
/// [`remote_text`].
pub fn printable(s: &str) -> String {
    s.chars()
        .filter(|&c| c == '\n' || !(c.is_control() || is_bidi_control(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bells_are_stripped() {
        assert_eq!(
            remote_text("\x1b]0;PWNED\x07\x1b[2Jdenied\r\nnext\tword\u{9b}31m"),
            "]0;PWNED[2Jdenied next word31m"
        );
        assert_eq!(printable("a\x1b[2Jb\nc\x07"), "a[2Jb\nc");
    }

    #[test]
    fn bidi_controls_are_stripped() {
        let every = "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{061C}";
        assert_eq!(
            remote_text(&format!("inv{every}oice\u{202E}fdp.exe")),
            "invoicefdp.exe"
        );
        assert_eq!(printable(&format!("a{every}\nb")), "a\nb");
        // Letters of right-to-left scripts stay.
        assert_eq!(remote_text("שלום مرحبا"), "שלום مرحبا");
    }

    #[test]
    fn long_text_is_capped_on_a_character_boundary() {
        let s = "é".repeat(4000);
        let out = remote_text(&s);
        assert!(
            out.len() <= MAX_REMOTE_TEXT + '…'.len_utf8(),
            "{}",
            out.len()
        );
        assert!(out.ends_with('…'));
        assert_eq!(remote_text("short"), "short");
    }
}
