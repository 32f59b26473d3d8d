//! Whether a reply is the oracle's answer, and how it differs when it is
//! not (the same rules for TCP and UDP replies).

use super::workload::Workload;
use upcase::wire::{ErrorPayload, FrameType};

/// Whether a reply matched the oracle.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyCheck {
    /// It did.
    Right,
    /// It did not: how it differs.
    Wrong(String),
}

/// Check a reply frame: its type and flags, then its data.
pub fn check_frame(
    workload: &Workload,
    frame_type: FrameType,
    flags: u8,
    data: &[u8],
) -> ReplyCheck {
    match frame_problem(workload.frame_type, frame_type, flags, data) {
        Some(problem) => ReplyCheck::Wrong(problem),
        None => compare(&workload.expected, data),
    }
}

/// What is wrong with a reply frame before its data is compared: an ERROR
/// (described with its code and message), or another type than `expected`
/// or flags set. `None` when it is a frame of the `expected` type without flags.
pub fn frame_problem(
    expected: FrameType,
    frame_type: FrameType,
    flags: u8,
    data: &[u8],
) -> Option<String> {
    if frame_type == FrameType::Error {
        return Some(match ErrorPayload::parse(data) {
            Ok(error) => format!(
                "the server answered ERROR {} ({}): {}",
                error.code.0,
                error.code.name().unwrap_or("unknown code"),
                upcase::net::escape_for_log(error.message.as_bytes())
            ),
            Err(_) => "the server answered an ERROR frame too short for its code".into(),
        });
    }
    if frame_type != expected || flags != 0 {
        return Some(format!(
            "expected a {expected:?} reply with flags 0, got {frame_type:?} with flags {flags:#04x}"
        ));
    }
    None
}

/// Compare a reply with the oracle's answer; describe the first difference.
pub fn compare(expected: &[u8], got: &[u8]) -> ReplyCheck {
    if expected == got {
        return ReplyCheck::Right;
    }
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    // The server's bytes, escaped as the server's logs escape a client's:
    // a reply cannot drive the terminal the report is printed on.
    let window = |bytes: &[u8]| {
        let start = at.saturating_sub(8);
        let end = (at + 24).min(bytes.len());
        upcase::net::escape_for_log(&bytes[start.min(end)..end])
    };
    ReplyCheck::Wrong(format!(
        "reply differs from the oracle at byte {at} (length {} vs {} expected): \
         expected \"{}\", got \"{}\"",
        got.len(),
        expected.len(),
        window(expected),
        window(got)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::workload::{Expect, PayloadType, RequestMode};

    #[test]
    fn compare_points_at_the_first_difference() {
        assert_eq!(compare(b"ABC", b"ABC"), ReplyCheck::Right);
        let ReplyCheck::Wrong(what) = compare(b"ABCD", b"ABxD") else {
            panic!("a difference was missed");
        };
        assert!(what.contains("at byte 2"), "{what}");
        let ReplyCheck::Wrong(what) = compare(b"ABCD", b"AB") else {
            panic!("a short reply was missed");
        };
        assert!(what.contains("length 2 vs 4"), "{what}");
    }

    #[test]
    fn what_the_server_sent_is_shown_escaped() {
        let ReplyCheck::Wrong(what) = compare(b"ABC\n", b"\x1b]0;owned\x07\n") else {
            panic!("a difference was missed");
        };
        assert!(what.contains(r#"got "\x1b]0;owned\x07\n""#), "{what}");
        assert!(!what.contains('\x1b'), "{what}");
    }

    #[test]
    fn an_error_frame_is_a_wrong_reply() {
        let workload =
            Workload::new(RequestMode::Framed, PayloadType::Text, 8, Expect::Upper).unwrap();
        let error = ErrorPayload::new(upcase::wire::ErrorCode(4), "bad").to_bytes();
        let ReplyCheck::Wrong(what) = check_frame(&workload, FrameType::Error, 0, &error) else {
            panic!("an ERROR passed as a reply");
        };
        assert!(what.contains("ERROR 4") && what.contains("bad"), "{what}");
        let ReplyCheck::Wrong(what) =
            check_frame(&workload, FrameType::Bytes, 0, &workload.expected)
        else {
            panic!("a reply of the wrong type passed");
        };
        assert!(what.contains("Bytes"), "{what}");
        assert_eq!(
            check_frame(&workload, FrameType::Text, 0, &workload.expected),
            ReplyCheck::Right
        );
    }
}
