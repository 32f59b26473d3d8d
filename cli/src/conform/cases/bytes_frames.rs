//! SPEC.md §5.2: BYTES frames — ASCII upper case only, same length, no carry.

use super::{frame, round_trip, round_trip_pieces};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle;
use upcase::wire::FrameType;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/5.2/every-byte-value",
        description: "BYTES holding all 256 byte values: a–z become A–Z, every other byte is unchanged",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: every_byte_value,
    },
    Case {
        name: "framed/5.2/utf8-is-not-unicode-cased",
        description: "BYTES holding UTF-8 (straße, é, ǆ, ﬃ) is upper-cased as ASCII only: same length, non-ASCII untouched",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: utf8_not_unicode_cased,
    },
    Case {
        name: "framed/5.2/fragments-split-anywhere",
        description: "BYTES fragments split inside a UTF-8 sequence are answered byte for byte, MORE mirrored",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: fragments_split_anywhere,
    },
];

fn every_byte_value(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let all: Vec<u8> = (0..=255).collect();
    let max = ctx.options.max_frame;
    round_trip_pieces(&mut conn, FrameType::Bytes, &all, max, "BYTES 00..ff")
}

fn utf8_not_unicode_cased(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let data = "stra\u{df}e \u{e9}t\u{e9} \u{1c6} \u{fb03} \u{3c3}".as_bytes();
    let max = ctx.options.max_frame;
    round_trip_pieces(
        &mut conn,
        FrameType::Bytes,
        data,
        max,
        "BYTES holding UTF-8",
    )
}

fn fragments_split_anywhere(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let data = "a\u{e9}\u{20ac}z".as_bytes();
    for cut in 1..data.len() {
        let (head, tail) = data.split_at(cut);
        let what = format!("BYTES fragment 1 (cut at byte {cut})");
        round_trip(
            &mut conn,
            &frame(FrameType::Bytes, true, head),
            FrameType::Bytes,
            &oracle::ascii_upper(head),
            &what,
        )?;
        let what = format!("BYTES fragment 2 (cut at byte {cut})");
        round_trip(
            &mut conn,
            &frame(FrameType::Bytes, false, tail),
            FrameType::Bytes,
            &oracle::ascii_upper(tail),
            &what,
        )?;
    }
    Ok(())
}
