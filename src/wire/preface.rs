//! The 8-byte preface a framed client sends first: 0xC0 "UPCASE" version.

/// The first seven bytes: 0xC0 (never in valid UTF-8) then "UPCASE".
pub const PREFACE_MAGIC: [u8; 7] = [0xc0, b'U', b'P', b'C', b'A', b'S', b'E'];

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// The preface length.
pub const PREFACE_LEN: usize = 8;

/// The whole preface for [`VERSION`].
pub const PREFACE: [u8; PREFACE_LEN] = [0xc0, b'U', b'P', b'C', b'A', b'S', b'E', VERSION];

/// What the front of a byte stream says about the preface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefaceMatch {
    /// Every byte so far matches the magic; more are needed to decide.
    Partial,
    /// The magic matched; the byte after it is the peer's version.
    Complete {
        /// The peer's protocol version.
        version: u8,
    },
    /// A byte differs from the magic: this is not a preface.
    Mismatch,
}

/// Compare the front of `bytes` with the preface. Needs at most 8 bytes and
/// decides at the first byte that differs.
pub fn match_preface(bytes: &[u8]) -> PrefaceMatch {
    let magic_len = bytes.len().min(PREFACE_MAGIC.len());
    if bytes[..magic_len] != PREFACE_MAGIC[..magic_len] {
        return PrefaceMatch::Mismatch;
    }
    match bytes.get(PREFACE_MAGIC.len()) {
        Some(&version) => PrefaceMatch::Complete { version },
        None => PrefaceMatch::Partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_at_the_first_differing_byte() {
        assert_eq!(match_preface(b""), PrefaceMatch::Partial);
        assert_eq!(match_preface(&[0xc0, b'U']), PrefaceMatch::Partial);
        assert_eq!(match_preface(b"h"), PrefaceMatch::Mismatch);
        assert_eq!(match_preface(&[0xc0, b'X']), PrefaceMatch::Mismatch);
        assert_eq!(
            match_preface(&PREFACE),
            PrefaceMatch::Complete { version: 1 }
        );
        let mut v2 = PREFACE;
        v2[7] = 2;
        assert_eq!(match_preface(&v2), PrefaceMatch::Complete { version: 2 });
    }

    #[test]
    fn preface_bytes_match_the_spec() {
        assert_eq!(PREFACE, [0xc0, 0x55, 0x50, 0x43, 0x41, 0x53, 0x45, 0x01]);
    }
}
