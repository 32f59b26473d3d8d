//! The type byte of a frame.

/// A frame's type (SPEC.md §4). Unknown codes keep their value, so a frame
/// with a type this implementation does not know still round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum FrameType {
    /// 0x01: UTF-8 text, answered with its Unicode upper case.
    Text,
    /// 0x02: any bytes, answered with their ASCII upper case.
    Bytes,
    /// 0x03: a liveness probe, answered with PONG carrying the same data.
    Ping,
    /// 0x04: the answer to PING.
    Pong,
    /// 0x05: a graceful goodbye, with an optional UTF-8 reason.
    Bye,
    /// 0x06: an error: u16 code, then a UTF-8 message.
    Error,
    /// Any other code, kept as received.
    Unknown(u8),
}

impl FrameType {
    /// Whether MORE may be set on this type: only data frames (TEXT, BYTES) fragment.
    pub fn is_data(self) -> bool {
        matches!(self, FrameType::Text | FrameType::Bytes)
    }

    /// The upper-case name used in SPEC.md and in logs.
    pub fn name(self) -> &'static str {
        match self {
            FrameType::Text => "TEXT",
            FrameType::Bytes => "BYTES",
            FrameType::Ping => "PING",
            FrameType::Pong => "PONG",
            FrameType::Bye => "BYE",
            FrameType::Error => "ERROR",
            FrameType::Unknown(_) => "UNKNOWN",
        }
    }
}

impl From<u8> for FrameType {
    fn from(code: u8) -> FrameType {
        match code {
            0x01 => FrameType::Text,
            0x02 => FrameType::Bytes,
            0x03 => FrameType::Ping,
            0x04 => FrameType::Pong,
            0x05 => FrameType::Bye,
            0x06 => FrameType::Error,
            other => FrameType::Unknown(other),
        }
    }
}

impl From<FrameType> for u8 {
    fn from(frame_type: FrameType) -> u8 {
        match frame_type {
            FrameType::Text => 0x01,
            FrameType::Bytes => 0x02,
            FrameType::Ping => 0x03,
            FrameType::Pong => 0x04,
            FrameType::Bye => 0x05,
            FrameType::Error => 0x06,
            FrameType::Unknown(other) => other,
        }
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
