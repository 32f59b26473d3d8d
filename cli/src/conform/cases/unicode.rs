//! SPEC.md §10: the Unicode version. The only cases marked
//! `unicode_dependent`: they send code points whose upper case changed
//! between Unicode 14.0 (Python 3.11) and 17.0 (SPEC.md's version), so an
//! implementation on another version fails exactly these. Every other
//! case's samples use code points whose mapping is the same in 14.0 and 17.0.

use super::round_trip_pieces;
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle;
use upcase::wire::FrameType;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/10/unicode-17-mappings",
        description: "code points first mapped after Unicode 14.0 (U+019B, U+0264, U+A7D3, U+1C8A, U+10D70, U+16EBB) are upper-cased in TEXT",
        unicode_dependent: true,
        needs: Needs::Nothing,
        check: framed_mappings,
    },
    Case {
        name: "raw/10/unicode-17-mappings",
        description: "the same code points are upper-cased in raw mode",
        unicode_dependent: true,
        needs: Needs::UnicodeRaw,
        check: raw_mappings,
    },
];

/// Lower-case letters whose upper case is new since Unicode 14.0 (SPEC.md §10 table).
pub(super) const NEWER: &str = "\u{19b}\u{264}\u{a7d3}\u{a7d5}\u{1c8a}\u{a7cd}\u{10d70}\u{16ebb}";

fn framed_mappings(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    round_trip_pieces(
        &mut conn,
        FrameType::Text,
        NEWER.as_bytes(),
        ctx.options.max_frame,
        "TEXT with code points mapped since Unicode 14.0",
    )
}

fn raw_mappings(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    conn.write(NEWER.as_bytes())?;
    conn.expect_raw(&oracle::text_upper(NEWER.as_bytes()), "raw reply")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_oracle_maps_every_newer_code_point() {
        for c in super::NEWER.chars() {
            assert!(
                !c.to_uppercase().eq([c]),
                "U+{:04X} has no upper case in this std",
                c as u32
            );
        }
    }
}
