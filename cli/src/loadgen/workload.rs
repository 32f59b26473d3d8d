//! What one request looks like on the wire, and the reply it must get.
//!
//! The expected reply comes from an oracle that does not share code with the
//! server: `str::to_uppercase` for text, `to_ascii_uppercase` for bytes,
//! computed once, up front, for the one request every client repeats.

use bytes::{Bytes, BytesMut};

use upcase::wire::{FrameRepr, FrameType};

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestMode {
    /// Lines on a plain byte stream; a reply ends after the expected number
    /// of bytes.
    Raw,
    /// One TEXT or BYTES frame per request after the preface.
    Framed,
}

/// What the requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadType {
    /// Lower-case ASCII mixed with multi-byte text (ß, é, Greek, Cyrillic,
    /// CJK, emoji); checked against `str::to_uppercase`.
    Text,
    /// Raw mode: lower-case printable ASCII, which every raw server (Unicode
    /// or ASCII rules, or the tutorial's `recv`/`decode`/`upper`) answers the
    /// same way. Framed: every byte value. Checked against `to_ascii_uppercase`.
    Bytes,
}

/// Which reply is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The upper case of the request (an UPCASE server).
    Upper,
    /// The request unchanged: for timing a plain echo server as a baseline.
    Echo,
}

/// One request and the reply it must get.
#[derive(Debug, Clone)]
pub struct Workload {
    /// How the request travels.
    pub mode: RequestMode,
    /// The request's payload (the line, or the frame's data).
    pub payload: Bytes,
    /// The request as written to the socket (after the preface, if framed).
    pub request: Bytes,
    /// The expected reply payload: the oracle's answer.
    pub expected: Bytes,
    /// The frame type of the request and of its reply (framed mode).
    pub frame_type: FrameType,
}

/// The text that repeats through text payloads: ASCII words and code points
/// whose upper case is longer (ß → SS, ŉ → ʼN) or multi-byte. Every one of
/// them is in Unicode 14, so Python 3.11 upper-cases it the same way.
const TEXT_PATTERN: &str = "the quick brown fox, straße, café, ŉ, ωμέγα, привет, 汉字 🦀 ";
/// Bytes payloads in raw mode: printable lower-case ASCII only.
const ASCII_PATTERN: &str = "the quick brown fox jumps over the lazy dog 0123456789 {}[]!? ";

impl Workload {
    /// The request of `size` payload bytes for `mode` and `payload_type`.
    /// In raw mode the payload is a line: its last byte is `\n`, the only one.
    ///
    /// # Errors
    /// A message when raw mode is asked for an empty payload (it needs the `\n`).
    pub fn new(
        mode: RequestMode,
        payload_type: PayloadType,
        size: usize,
        expect: Expect,
    ) -> Result<Workload, String> {
        if mode == RequestMode::Raw && size == 0 {
            return Err(
                "raw mode needs --size 1 or more (each request ends with a newline)".into(),
            );
        }
        let (payload, expected, frame_type) = match (mode, payload_type) {
            (_, PayloadType::Text) => {
                let text = text_payload(size, mode == RequestMode::Raw);
                let upper = text.to_uppercase();
                (Bytes::from(text), Bytes::from(upper), FrameType::Text)
            }
            (RequestMode::Raw, PayloadType::Bytes) => {
                let mut line = repeat_to(ASCII_PATTERN, size - 1).into_bytes();
                line.push(b'\n');
                let upper = line.to_ascii_uppercase();
                (Bytes::from(line), Bytes::from(upper), FrameType::Bytes)
            }
            (RequestMode::Framed, PayloadType::Bytes) => {
                let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
                let upper = data.to_ascii_uppercase();
                (Bytes::from(data), Bytes::from(upper), FrameType::Bytes)
            }
        };
        let expected = match expect {
            Expect::Upper => expected,
            Expect::Echo => payload.clone(),
        };
        let request = match mode {
            RequestMode::Raw => payload.clone(),
            RequestMode::Framed => {
                let mut wire = BytesMut::new();
                FrameRepr::new(frame_type, payload.clone()).encode(&mut wire);
                wire.freeze()
            }
        };
        Ok(Workload {
            mode,
            payload,
            request,
            expected,
            frame_type,
        })
    }
}

/// `size` bytes of valid UTF-8 text, ending in `\n` when `line` (and holding
/// no other `\n`).
fn text_payload(size: usize, line: bool) -> String {
    let body_len = if line { size - 1 } else { size };
    let mut text = repeat_to(TEXT_PATTERN, body_len);
    if line {
        text.push('\n');
    }
    text
}

/// `pattern` repeated and cut at a character boundary, padded with ASCII
/// letters to exactly `len` bytes.
fn repeat_to(pattern: &str, len: usize) -> String {
    let mut text = String::with_capacity(len);
    'fill: loop {
        for c in pattern.chars() {
            if text.len() + c.len_utf8() > len {
                break 'fill;
            }
            text.push(c);
        }
    }
    while text.len() < len {
        text.push('z');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_lines_have_the_exact_size_and_one_newline() {
        for size in [1, 2, 3, 7, 64, 65, 1000, 65536] {
            let workload =
                Workload::new(RequestMode::Raw, PayloadType::Text, size, Expect::Upper).unwrap();
            assert_eq!(workload.payload.len(), size);
            let text = std::str::from_utf8(&workload.payload).unwrap();
            assert!(text.ends_with('\n'));
            assert_eq!(text.matches('\n').count(), 1);
        }
    }

    #[test]
    fn text_payload_carries_multi_byte_and_expanding_characters() {
        let workload =
            Workload::new(RequestMode::Raw, PayloadType::Text, 64, Expect::Upper).unwrap();
        let text = std::str::from_utf8(&workload.payload).unwrap();
        assert!(text.contains("straße"), "{text}");
        assert!(text.contains("café"), "{text}");
        let reply = std::str::from_utf8(&workload.expected).unwrap();
        assert!(
            reply.starts_with("THE QUICK BROWN FOX, STRASSE, CAFÉ"),
            "{reply}"
        );
    }

    #[test]
    fn raw_bytes_are_printable_ascii() {
        let workload =
            Workload::new(RequestMode::Raw, PayloadType::Bytes, 200, Expect::Upper).unwrap();
        assert_eq!(workload.payload.len(), 200);
        assert!(
            workload.payload[..199]
                .iter()
                .all(|b| b.is_ascii_graphic() || *b == b' ')
        );
        assert_eq!(&workload.expected[..9], b"THE QUICK");
    }

    #[test]
    fn framed_bytes_cover_every_byte_value_and_only_letters_change() {
        let workload =
            Workload::new(RequestMode::Framed, PayloadType::Bytes, 256, Expect::Upper).unwrap();
        assert_eq!(workload.expected[b'a' as usize], b'A');
        assert_eq!(workload.expected[b'z' as usize], b'Z');
        assert_eq!(workload.expected[0xe9], 0xe9);
        let mut wire = BytesMut::from(&workload.request[..]);
        let decoded = upcase::wire::FrameDecoder::default()
            .decode(&mut wire)
            .unwrap()
            .unwrap();
        assert_eq!(decoded.frame_type, FrameType::Bytes);
        assert_eq!(decoded.data, workload.payload);
    }

    #[test]
    fn echo_expects_the_request_unchanged() {
        let workload =
            Workload::new(RequestMode::Raw, PayloadType::Text, 64, Expect::Echo).unwrap();
        assert_eq!(workload.expected, workload.payload);
    }

    #[test]
    fn raw_mode_rejects_an_empty_payload() {
        let error =
            Workload::new(RequestMode::Raw, PayloadType::Text, 0, Expect::Upper).unwrap_err();
        assert!(error.contains("--size 1"), "{error}");
        assert!(Workload::new(RequestMode::Framed, PayloadType::Text, 0, Expect::Upper).is_ok());
    }
}
