//! The cases, one file per SPEC.md section, each with a `CASES` table.

mod addresses;
mod bytes_frames;
mod errors;
mod layout;
mod ordering;
mod ping_bye;
mod preface;
mod raw;
mod text;
mod timeouts;
mod udp_errors;
mod udp_framed;
mod udp_raw;
mod unicode;

use bytes::Bytes;

use super::case::{Case, CheckResult};
use super::client::Conn;
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
        unicode::CASES,
        udp_raw::CASES,
        udp_framed::CASES,
        udp_errors::CASES,
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
