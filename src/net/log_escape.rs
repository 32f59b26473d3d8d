//! Client bytes made safe for a log line (SPEC.md §11: "escape it before
//! logging").
//!
//! Why more than ESC: a CR or LF lets a client start what looks like a new
//! log line, and the bidirectional controls (U+202A–U+202E, U+2066–U+2069,
//! and the marks U+200E, U+200F, U+061C) reorder what a terminal or viewer
//! shows, so `evil\u{202e}txt.exe` reads differently from what was sent.
//! Every such character, and the backslash itself (so that an escape in
//! the log is never ambiguous), is written as a Rust-style escape.

use std::fmt::Write;

/// `bytes` as one printable line: invalid UTF-8 becomes U+FFFD, control
/// and bidi characters become `\n`, `\r`, `\t`, `\x1b` or `\u{202e}`.
pub fn escape_for_log(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                let _ = write!(escaped, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// The characters that change the display order of the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::escape_for_log;

    #[test]
    fn line_breaks_and_terminal_escapes_are_escaped() {
        assert_eq!(
            escape_for_log(b"ok\r\nFAKE LINE\x1b[31m\x00\x7f\t"),
            "ok\\r\\nFAKE LINE\\x1b[31m\\x00\\x7f\\t"
        );
    }

    #[test]
    fn bidi_controls_and_c1_controls_are_escaped() {
        let input = "a\u{202e}b\u{202a}\u{2066}\u{2069}\u{200f}\u{80}\u{85}c";
        assert_eq!(
            escape_for_log(input.as_bytes()),
            "a\\u{202e}b\\u{202a}\\u{2066}\\u{2069}\\u{200f}\\u{80}\\u{85}c"
        );
    }

    #[test]
    fn ordinary_text_is_kept_and_backslashes_are_doubled() {
        assert_eq!(
            escape_for_log("straße ΐ € \\x1b".as_bytes()),
            "straße ΐ € \\\\x1b"
        );
    }

    #[test]
    fn invalid_utf8_becomes_the_replacement_character() {
        assert_eq!(escape_for_log(b"a\xffb"), "a\u{fffd}b");
    }
}
