//! ERROR codes and the ERROR frame's data (a u16 code, then a UTF-8 message).

use bytes::{BufMut, Bytes, BytesMut};

/// The code carried by an ERROR frame (SPEC.md §6). A newtype, not an enum, so
/// codes this implementation does not know survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ErrorCode(pub u16);

macro_rules! error_codes {
    ($($name:ident($value:literal, fatal: $fatal:literal) $doc:literal,)*) => {
        impl ErrorCode {
            $(
                #[doc = $doc]
                pub const $name: ErrorCode = ErrorCode($value);
            )*

            /// Every code SPEC.md defines, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The SPEC.md name (`"INVALID_UTF8"`), or `None` for a code it does not define.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Whether the connection ends after this error. Unknown codes count as
            /// fatal: a client cannot know the server will go on.
            pub fn is_fatal(self) -> bool {
                match self.0 {
                    $($value => $fatal,)*
                    _ => true,
                }
            }
        }
    };
}

error_codes! {
    MALFORMED(1, fatal: true) "A reserved flag bit is set, or MORE is set on a type other than TEXT/BYTES.",
    UNSUPPORTED_VERSION(2, fatal: true) "The preface's version is not 1.",
    FRAME_TOO_LARGE(3, fatal: true) "The frame's length is over the receiver's limit.",
    INVALID_UTF8(4, fatal: true) "TEXT data is not UTF-8.",
    UNKNOWN_TYPE(5, fatal: false) "The type code is not in the table; the frame is skipped.",
    UNEXPECTED_TYPE(6, fatal: false) "A client sent PONG or ERROR; the frame is skipped.",
    TYPE_MISMATCH(7, fatal: true) "A data frame of the other data type arrived while a message is open.",
    IDLE_TIMEOUT(8, fatal: true) "No complete frame arrived within the idle timeout.",
    BUSY(9, fatal: true) "The server is at its connection limit.",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ERROR_{}", self.0),
        }
    }
}

/// The data of an ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPayload {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people. Not normative: only the code is.
    pub message: String,
}

/// ERROR data shorter than the 2-byte code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ERROR frame data is {len} bytes long; it needs at least the 2-byte code")]
pub struct ShortErrorPayload {
    /// The data length that was received.
    pub len: usize,
}

impl ErrorPayload {
    /// Build a payload.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorPayload {
        ErrorPayload {
            code,
            message: message.into(),
        }
    }

    /// Parse ERROR data. A message that is not UTF-8 is decoded lossily: it is
    /// only for people, and the code is still worth reporting.
    ///
    /// # Errors
    /// [`ShortErrorPayload`] when the data cannot hold the code.
    pub fn parse(data: &[u8]) -> Result<ErrorPayload, ShortErrorPayload> {
        if data.len() < 2 {
            return Err(ShortErrorPayload { len: data.len() });
        }
        Ok(ErrorPayload {
            code: ErrorCode(u16::from_be_bytes([data[0], data[1]])),
            message: String::from_utf8_lossy(&data[2..]).into_owned(),
        })
    }

    /// The ERROR frame data: the code in network order, then the message.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(2 + self.message.len());
        out.put_u16(self.code.0);
        out.put_slice(self.message.as_bytes());
        out.freeze()
    }
}

impl std::fmt::Display for ErrorPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.code.0, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_names_and_fatality_match_the_spec_table() {
        let table = [
            (1, "MALFORMED", true),
            (2, "UNSUPPORTED_VERSION", true),
            (3, "FRAME_TOO_LARGE", true),
            (4, "INVALID_UTF8", true),
            (5, "UNKNOWN_TYPE", false),
            (6, "UNEXPECTED_TYPE", false),
            (7, "TYPE_MISMATCH", true),
            (8, "IDLE_TIMEOUT", true),
            (9, "BUSY", true),
        ];
        assert_eq!(ErrorCode::ALL.len(), table.len());
        for (value, name, fatal) in table {
            let code = ErrorCode(value);
            assert_eq!(code.name(), Some(name));
            assert_eq!(code.is_fatal(), fatal, "{name}");
        }
        assert_eq!(ErrorCode(0).name(), None);
        assert_eq!(ErrorCode(1000).to_string(), "ERROR_1000");
    }

    #[test]
    fn payload_round_trips_and_keeps_unknown_codes() {
        let payload = ErrorPayload::new(ErrorCode(0xbeef), "über");
        let bytes = payload.to_bytes();
        assert_eq!(&bytes[..2], &[0xbe, 0xef]);
        assert_eq!(ErrorPayload::parse(&bytes).unwrap(), payload);
    }

    #[test]
    fn short_payload_is_rejected_and_bad_utf8_is_lossy() {
        assert_eq!(ErrorPayload::parse(&[0]), Err(ShortErrorPayload { len: 1 }));
        let parsed = ErrorPayload::parse(&[0, 4, b'a', 0xff]).unwrap();
        assert_eq!(parsed.code, ErrorCode::INVALID_UTF8);
        assert_eq!(parsed.message, "a\u{fffd}");
    }
}
