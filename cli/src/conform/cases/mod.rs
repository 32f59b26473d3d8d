//! The cases, one file per SPEC.md section, each with a `CASES` table.

mod addresses;
mod backpressure;
mod bytes_frames;
mod errors;
mod layout;
mod lifecycle;
mod ordering;
mod ping_bye;
mod preface;
mod raw;
mod text;
mod timeouts;
mod udp_errors;
mod udp_framed;
mod udp_rate;
mod udp_raw;
mod unicode;

pub(super) use unicode::answers_differ;

use bytes::Bytes;

use super::case::{Case, CheckResult};
use super::client::Conn;
use super::oracle;
use upcase::wire::{Address, Flags, FrameRepr, FrameType};

/// Every case in SPEC.md section order.
pub fn all() -> Vec<&'static Case> {
    [
        preface::CASES,
        layout::CASES,
        text::CASES,
        bytes_frames::CASES,
        ping_bye::CASES,
        addresses::CASES,
        ordering::CASES,
        errors::CASES,
        raw::CASES,
        timeouts::CASES,
        lifecycle::CASES,
        backpressure::CASES,
        unicode::CASES,
        udp_raw::CASES,
        udp_framed::CASES,
        udp_errors::CASES,
        udp_rate::CASES,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A frame with unspecified addresses.
fn frame(frame_type: FrameType, more: bool, data: &[u8]) -> FrameRepr {
    FrameRepr {
        src: Address::UNSPECIFIED,
        dst: Address::UNSPECIFIED,
        frame_type,
        flags: Flags::more_if(more),
        data: Bytes::copy_from_slice(data),
    }
}

/// An address from a literal such as `198.51.100.7:80`.
fn addr(text: &str) -> Address {
    Address::from(
        text.parse::<std::net::SocketAddr>()
            .expect("a literal socket address"),
    )
}

/// A TEXT frame.
fn text(data: &[u8], more: bool) -> FrameRepr {
    frame(FrameType::Text, more, data)
}

/// Send `request` and require the reply of type `reply_type` with `data`,
/// MORE mirrored, addresses per SPEC.md §5.5.
fn round_trip(
    conn: &mut Conn,
    request: &FrameRepr,
    reply_type: FrameType,
    data: &[u8],
    what: &str,
) -> CheckResult {
    conn.send(request)?;
    let expected = conn.reply_to(
        request,
        reply_type,
        request.flags.more(),
        Bytes::copy_from_slice(data),
    );
    conn.expect(&expected, what)
}

/// Send `data` as complete messages of `frame_type` (TEXT or BYTES), each
/// within the server's limit `max` (one message when it fits), and require
/// each reply to hold its piece upper-cased. TEXT is cut only between code
/// points, so each piece is a valid message of its own: a server with a
/// small `--max-frame` still gets every sample.
fn round_trip_pieces(
    conn: &mut Conn,
    frame_type: FrameType,
    data: &[u8],
    max: u32,
    what: &str,
) -> CheckResult {
    let pieces = pieces(frame_type, data, max as usize);
    let count = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        let upper = if frame_type == FrameType::Text {
            oracle::text_upper(piece)
        } else {
            oracle::ascii_upper(piece)
        };
        let what = match count {
            1 => what.to_string(),
            _ => format!("{what}, piece {} of {count} (--max-frame {max})", i + 1),
        };
        round_trip(
            conn,
            &frame(frame_type, false, piece),
            frame_type,
            &upper,
            &what,
        )?;
    }
    Ok(())
}

/// `data` cut into pieces of at most `max` bytes (TEXT only between code
/// points); uncut when it fits, or when a code point alone is over `max`
/// (sending it then stops the case as one that cannot run).
fn pieces(frame_type: FrameType, data: &[u8], max: usize) -> Vec<&[u8]> {
    if data.len() <= max || max == 0 {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let mut end = (start + max).min(data.len());
        if frame_type == FrameType::Text {
            while end > start && end < data.len() && data[end] & 0xc0 == 0x80 {
                end -= 1;
            }
            if end == start {
                return vec![data];
            }
        }
        out.push(&data[start..end]);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use upcase::wire::FrameType;

    #[test]
    fn pieces_fit_the_limit_and_cut_text_between_code_points() {
        let text = "a\u{e9}\u{20ac}\u{1f600}z".as_bytes();
        assert_eq!(super::pieces(FrameType::Text, text, 64), [text]);
        let cut = super::pieces(FrameType::Text, text, 4);
        assert_eq!(cut.concat(), text);
        for piece in &cut {
            assert!(
                piece.len() <= 4 && std::str::from_utf8(piece).is_ok(),
                "{piece:?}"
            );
        }
        assert_eq!(
            super::pieces(FrameType::Bytes, text, 4),
            text.chunks(4).collect::<Vec<_>>()
        );
        // A code point over the limit is left whole: the case cannot run.
        assert_eq!(
            super::pieces(FrameType::Text, "\u{1f600}".as_bytes(), 3).len(),
            1
        );
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for case in super::all() {
            assert!(seen.insert(case.name), "duplicate case name {}", case.name);
            let parts: Vec<_> = case.name.split('/').collect();
            assert_eq!(parts.len(), 3, "{}: mode/section/slug", case.name);
            assert!(
                ["framed", "raw", "udp"].contains(&parts[0]),
                "{}",
                case.name
            );
            assert!(
                parts[1].split('.').all(|n| n.parse::<u8>().is_ok()),
                "{}",
                case.name
            );
            assert!(!case.description.is_empty() && !case.description.contains('\n'));
        }
    }
}
