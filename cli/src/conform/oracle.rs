//! Independent oracles for expected outputs — Rust std only, never this
//! crate's transform — and the UTF-8 samples the cases send.

/// Unicode upper case of text (TEXT frames): `str::to_uppercase`.
pub fn text_upper(bytes: &[u8]) -> Vec<u8> {
    std::str::from_utf8(bytes)
        .expect("oracle input is valid UTF-8")
        .to_uppercase()
        .into_bytes()
}

/// ASCII upper case (BYTES frames, ASCII raw mode): `to_ascii_uppercase`.
pub fn ascii_upper(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_uppercase()
}

/// Raw mode's whole output for a whole input stream: valid runs upper-cased,
/// invalid bytes (and an incomplete tail) copied, as `Utf8Chunks` splits them.
pub fn lossless_upper(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().to_uppercase().as_bytes());
        out.extend_from_slice(chunk.invalid());
    }
    out
}

/// Raw mode's output once `bytes` have arrived and the stream is still open:
/// like [`lossless_upper`], except that an incomplete sequence at the end
/// (`Utf8Error::error_len() == None`) is held back.
pub fn lossless_upper_so_far(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                out.extend_from_slice(text.to_uppercase().as_bytes());
                return out;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                out.extend_from_slice(text_upper(valid).as_slice());
                match error.error_len() {
                    Some(len) => {
                        out.extend_from_slice(&after[..len]);
                        rest = &after[len..];
                    }
                    None => return out,
                }
            }
        }
    }
}

/// The length of the longest prefix of `bytes` made of whole code points,
/// for a message that is valid so far: what a TEXT reply may answer.
pub fn complete_prefix_len(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(error) => {
            assert!(error.error_len().is_none(), "oracle input is valid so far");
            error.valid_up_to()
        }
    }
}

/// Where the first invalid byte becomes visible: the length of the shortest
/// prefix that cannot begin any valid UTF-8 string (fail-fast point). For
/// `E0 80`, that is after the `80`: `E0` alone may still begin `E0 A0 80`.
pub fn first_visible_invalid(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len()).find(|&end| {
        std::str::from_utf8(&bytes[..end]).is_err_and(|error| error.error_len().is_some())
    })
}

/// A named byte string sent by the UTF-8 stress cases.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// What class it exercises.
    pub name: &'static str,
    /// The bytes.
    pub bytes: &'static [u8],
}

const fn sample(name: &'static str, bytes: &'static [u8]) -> Sample {
    Sample { name, bytes }
}

/// Valid UTF-8 that exercises every width and the special mappings.
pub const VALID: &[Sample] = &[
    sample("ascii", b"hello, world 0123 ~"),
    sample("2-byte", "caf\u{e9} \u{fc}ber \u{f1}and\u{fa}".as_bytes()),
    sample("3-byte", "\u{20ac} \u{2202} \u{ff41}\u{ff42}".as_bytes()),
    sample(
        "4-byte",
        "\u{10428}\u{10429} \u{1e922} \u{1f600}".as_bytes(),
    ),
    sample("expands sharp s", "stra\u{df}e".as_bytes()),
    sample("expands to three code points", "\u{390}\u{3b0}".as_bytes()),
    sample("ligature", "\u{fb03}\u{fb06}".as_bytes()),
    sample("titlecase digraph", "\u{1c5}\u{1c6}\u{1c4}".as_bytes()),
    sample("final sigma, no tailoring", "\u{3c3}\u{3c2}".as_bytes()),
    sample("georgian mtavruli", "\u{10d0}\u{10d1}".as_bytes()),
    sample("cherokee", "\u{ab70}\u{13f8}".as_bytes()),
    sample("ypogegrammeni", "\u{345}\u{1f80}".as_bytes()),
    sample("dotless and dotted i", "i\u{131}\u{130}".as_bytes()),
    sample(
        "NUL, BOM and the last code point",
        "a\u{0}\u{feff}\u{10ffff}".as_bytes(),
    ),
];

/// Invalid UTF-8, one class each, between valid text so the position of the
/// first bad byte matters.
pub const INVALID: &[Sample] = &[
    sample("lone continuation byte", b"ok \x80 end"),
    sample("lone 0xC0 lead", b"ok \xc0 end"),
    sample("overlong 2-byte", b"ok \xc1\xbf end"),
    sample("overlong 3-byte", b"ok \xe0\x80\xaf end"),
    sample("overlong 4-byte", b"ok \xf0\x80\x80\xaf end"),
    sample("surrogate", b"ok \xed\xa0\x80 end"),
    sample("above U+10FFFF", b"ok \xf4\x90\x80\x80 end"),
    sample("0xF5 lead", b"ok \xf5\x80\x80\x80 end"),
    sample("0xFF", b"ok \xff end"),
    sample("2-byte cut by ASCII", b"ok \xc3A end"),
    sample("3-byte cut by ASCII", b"ok \xe2\x82A end"),
    sample("4-byte cut by ASCII", b"ok \xf0\x9f\x98A end"),
    sample(
        "bad byte after multi-byte chars",
        b"\xc3\x9f\xe2\x82\xac\xf0\x9f\x98\x80\xfe end",
    ),
];

/// Valid sequences cut short: invalid only because the message ends.
pub const TRUNCATED: &[Sample] = &[
    sample("2-byte, 1 of 2", b"ok \xc3"),
    sample("3-byte, 2 of 3", b"ok \xe2\x82"),
    sample("4-byte, 3 of 4", b"ok \xf0\x9f\x98"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_in_their_class() {
        for sample in VALID {
            assert!(std::str::from_utf8(sample.bytes).is_ok(), "{}", sample.name);
        }
        for sample in INVALID {
            assert!(
                first_visible_invalid(sample.bytes).is_some(),
                "{}",
                sample.name
            );
        }
        for sample in TRUNCATED {
            let error = std::str::from_utf8(sample.bytes).unwrap_err();
            assert_eq!(error.error_len(), None, "{}", sample.name);
        }
    }

    #[test]
    fn so_far_holds_only_an_incomplete_tail() {
        assert_eq!(lossless_upper_so_far(b"a\xe2\x82"), b"A");
        assert_eq!(lossless_upper(b"a\xe2\x82"), b"A\xe2\x82");
        assert_eq!(lossless_upper_so_far(b"a\xe2\x82b"), b"A\xe2\x82B");
        assert_eq!(lossless_upper_so_far(b"\xffa\xc3"), b"\xffA");
        assert_eq!(first_visible_invalid(b"ok \xe2\x82A"), Some(6));
        assert_eq!(first_visible_invalid(b"ok \xe0\x80\xaf"), Some(5));
        assert_eq!(first_visible_invalid(b"ok \xf5"), Some(4));
        assert_eq!(complete_prefix_len("a\u{20ac}".as_bytes()[..3].as_ref()), 1);
    }
}
