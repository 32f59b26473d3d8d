//! The type byte of a frame.

/// Declares [`FrameType`] from SPEC.md §4's table, once: the enum, its name
/// and both conversions come from the same rows (smoltcp's
/// `enum_with_unknown!`, as [`ErrorCode`](super::ErrorCode) does it).
macro_rules! frame_types {
    ($($variant:ident = $code:literal, $name:literal, $doc:literal;)*) => {
        /// A frame's type (SPEC.md §4). Unknown codes keep their value, so a frame
        /// with a type this implementation does not know still round-trips.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub enum FrameType {
            $(
                #[doc = concat!(stringify!($code), ": ", $doc)]
                $variant,
            )*
            /// Any other code, kept as received.
            Unknown(u8),
        }

        impl FrameType {
            /// The upper-case name used in SPEC.md and in logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(FrameType::$variant => $name,)*
                    FrameType::Unknown(_) => "UNKNOWN",
                }
            }
        }

        impl From<u8> for FrameType {
            fn from(code: u8) -> FrameType {
                match code {
                    $($code => FrameType::$variant,)*
                    other => FrameType::Unknown(other),
                }
            }
        }

        impl From<FrameType> for u8 {
            fn from(frame_type: FrameType) -> u8 {
                match frame_type {
                    $(FrameType::$variant => $code,)*
                    FrameType::Unknown(other) => other,
                }
            }
        }
    };
}

frame_types! {
    Text = 0x01, "TEXT", "UTF-8 text, answered with its Unicode upper case.";
    Bytes = 0x02, "BYTES", "any bytes, answered with their ASCII upper case.";
    Ping = 0x03, "PING", "a liveness probe, answered with PONG carrying the same data.";
    Pong = 0x04, "PONG", "the answer to PING.";
    Bye = 0x05, "BYE", "a graceful goodbye, with an optional UTF-8 reason.";
    Error = 0x06, "ERROR", "an error: u16 code, then a UTF-8 message.";
}

impl FrameType {
    /// Whether MORE may be set on this type: only data frames (TEXT, BYTES) fragment.
    pub fn is_data(self) -> bool {
        matches!(self, FrameType::Text | FrameType::Bytes)
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameType::Unknown(code) => write!(f, "UNKNOWN(0x{code:02x})"),
            known => f.write_str(known.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in 0..=u8::MAX {
            assert_eq!(u8::from(FrameType::from(code)), code);
        }
    }

    #[test]
    fn known_codes_match_the_spec_table() {
        let table = [
            (0x01, FrameType::Text),
            (0x02, FrameType::Bytes),
            (0x03, FrameType::Ping),
            (0x04, FrameType::Pong),
            (0x05, FrameType::Bye),
            (0x06, FrameType::Error),
        ];
        for (code, frame_type) in table {
            assert_eq!(FrameType::from(code), frame_type);
        }
        assert_eq!(FrameType::from(0x00), FrameType::Unknown(0x00));
        assert_eq!(FrameType::from(0x07), FrameType::Unknown(0x07));
    }

    #[test]
    fn only_text_and_bytes_are_data() {
        assert!(FrameType::Text.is_data() && FrameType::Bytes.is_data());
        for code in 3..=u8::MAX {
            assert!(!FrameType::from(code).is_data());
        }
    }
}
