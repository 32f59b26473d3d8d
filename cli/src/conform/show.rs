//! Showing bytes and frames to people: hex for bytes, frames decoded.

use std::fmt::Write;

use upcase::wire::{ErrorPayload, FrameRepr, FrameType};

/// How many bytes of a long value are shown before "…".
const SHOWN: usize = 48;

/// `68 69 ff` (long inputs cut after 48 bytes, with the total length).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, byte) in bytes.iter().take(SHOWN).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    if bytes.len() > SHOWN {
        let _ = write!(out, " … ({} bytes)", bytes.len());
    }
    if bytes.is_empty() {
        out.push_str("(empty)");
    }
    out
}

/// Bytes as a quoted string when they are UTF-8, plus their hex.
pub fn data(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.is_empty() => {
            let shown: String = text.chars().take(SHOWN).collect();
            let cut = if shown.len() < text.len() { "…" } else { "" };
            format!("{shown:?}{cut} [{}]", hex(bytes))
        }
        _ => format!("[{}]", hex(bytes)),
    }
}

/// A datagram: its length, then [`data`].
pub fn datagram(bytes: &[u8]) -> String {
    format!("({} bytes) {}", bytes.len(), data(bytes))
}

/// A frame, decoded: `TEXT more src=… dst=… "HELLO" [48 45 4c 4c 4f]`.
pub fn frame(frame: &FrameRepr) -> String {
    let mut out = frame.frame_type.to_string();
    if frame.flags.more() {
        out.push_str(" +MORE");
    }
    if frame.flags.reserved() != 0 {
        let _ = write!(out, " flags=0x{:02x}", frame.flags.0);
    }
    let _ = write!(out, " src={} dst={}", frame.src, frame.dst);
    if frame.frame_type == FrameType::Error {
        match ErrorPayload::parse(&frame.data) {
            Ok(payload) => {
                // The message is the server's text: escaped as the server's
                // logs escape a client's, so it cannot drive a terminal.
                let message = upcase::net::escape_for_log(payload.message.as_bytes());
                let _ = write!(out, " {} ({}): {message}", payload.code, payload.code.0);
            }
            Err(short) => {
                let _ = write!(out, " (bad payload: {short})");
            }
        }
    } else {
        let _ = write!(out, " len={} {}", frame.data.len(), data(&frame.data));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bytes_are_cut_with_their_length() {
        assert_eq!(hex(b"hi\xff"), "68 69 ff");
        assert_eq!(hex(b""), "(empty)");
        let long = hex(&[0u8; 100]);
        assert!(long.ends_with("… (100 bytes)"), "{long}");
    }

    #[test]
    fn an_error_message_is_shown_escaped() {
        let error = ErrorPayload {
            code: upcase::wire::ErrorCode::UNKNOWN_TYPE,
            message: "no\x1b]0;owned\x07\u{202e}".into(),
        };
        let shown = frame(&FrameRepr::new(FrameType::Error, error.to_bytes()));
        assert!(
            shown.ends_with(": no\\x1b]0;owned\\x07\\u{202e}"),
            "{shown}"
        );
    }

    #[test]
    fn frames_show_type_flags_and_text() {
        let mut text = FrameRepr::new(FrameType::Text, &b"hi"[..]);
        text.flags.0 = 0x01;
        assert_eq!(
            frame(&text),
            "TEXT +MORE src=[::]:0 dst=[::]:0 len=2 \"hi\" [68 69]"
        );
    }
}
