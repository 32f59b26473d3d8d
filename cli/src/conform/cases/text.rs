//! SPEC.md §5.1: TEXT frames — Unicode upper case, fragments, carried code
//! points, and fail-fast rejection of invalid UTF-8.

use super::{frame, round_trip, round_trip_pieces, text};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::{Conn, Ctx};
use crate::conform::oracle::{self, INVALID, TRUNCATED, VALID};
use upcase::wire::{ErrorCode, FrameType};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/5.1/ascii",
        description: "TEXT is answered with TEXT in upper case, same MORE flag",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: ascii,
    },
    Case {
        name: "framed/5.1/utf8-classes-upper-cased",
        description: "valid UTF-8 of every width and the special mappings (ß, ΐ, ﬃ, ǅ, σ/ς…) gets str::to_uppercase",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: valid_classes,
    },
    Case {
        name: "framed/5.1/split-code-point-at-every-offset",
        description: "a message in two fragments split at every byte offset: each reply holds exactly the code points completed so far",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: split_every_offset,
    },
    Case {
        name: "framed/5.1/one-byte-fragments",
        description: "a message sent one byte per fragment: empty replies until a code point completes, nothing lost",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: one_byte_fragments,
    },
    Case {
        name: "framed/5.1/ping-between-fragments",
        description: "a PING between fragments (inside a code point) gets PONG and the message goes on",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: ping_between_fragments,
    },
    Case {
        name: "framed/5.1/invalid-utf8-classes-rejected",
        description: "each class of invalid UTF-8 in one TEXT frame gets ERROR(INVALID_UTF8), then the connection closes",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: invalid_classes,
    },
    Case {
        name: "framed/5.1/invalid-utf8-fails-fast",
        description: "INVALID_UTF8 comes in reply to the first fragment (MORE set) where the bad byte is visible, before the rest is sent",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: fails_fast,
    },
    Case {
        name: "framed/5.1/incomplete-code-point-is-not-an-error-yet",
        description: "a fragment (MORE set) ending inside a code point is answered normally; the last fragment ending there is INVALID_UTF8",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: truncated_last_fragment,
    },
];

fn ascii(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    round_trip(
        &mut conn,
        &text(b"hello, world", false),
        FrameType::Text,
        b"HELLO, WORLD",
        "TEXT",
    )?;
    round_trip(
        &mut conn,
        &text(b"part one ", true),
        FrameType::Text,
        b"PART ONE ",
        "TEXT with MORE",
    )?;
    round_trip(
        &mut conn,
        &text(b"and two", false),
        FrameType::Text,
        b"AND TWO",
        "the last fragment",
    )
}

fn valid_classes(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    for sample in VALID {
        let what = format!("TEXT ({})", sample.name);
        let max = ctx.options.max_frame;
        round_trip_pieces(&mut conn, FrameType::Text, sample.bytes, max, &what)?;
    }
    Ok(())
}

/// Send `message` as fragments ending at `cuts` (the last one without MORE),
/// reading each reply before sending the next fragment.
fn send_fragments(conn: &mut Conn, message: &[u8], cuts: &[usize], name: &str) -> CheckResult {
    let mut answered = 0;
    let mut start = 0;
    for (i, &end) in cuts.iter().chain([message.len()].iter()).enumerate() {
        let last = end == message.len();
        let complete = oracle::complete_prefix_len(&message[..end]);
        let reply = oracle::text_upper(&message[answered..complete]);
        answered = complete;
        let what = format!(
            "fragment {} (bytes {start}..{end}) of {name} {}",
            i + 1,
            crate::conform::show::hex(message)
        );
        round_trip(
            conn,
            &text(&message[start..end], !last),
            FrameType::Text,
            &reply,
            &what,
        )?;
        start = end;
        if last {
            break;
        }
    }
    Ok(())
}

fn split_every_offset(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    for sample in VALID.iter().filter(|s| !s.bytes.is_ascii()) {
        for cut in 1..sample.bytes.len() {
            send_fragments(&mut conn, sample.bytes, &[cut], sample.name)?;
        }
    }
    Ok(())
}

fn one_byte_fragments(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    for sample in VALID.iter().filter(|s| !s.bytes.is_ascii()) {
        let cuts: Vec<usize> = (1..sample.bytes.len()).collect();
        send_fragments(&mut conn, sample.bytes, &cuts, sample.name)?;
    }
    Ok(())
}

fn ping_between_fragments(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    round_trip(
        &mut conn,
        &text(b"ab\xe2\x82", true),
        FrameType::Text,
        b"AB",
        "TEXT+MORE ending inside \u{20ac}",
    )?;
    round_trip(
        &mut conn,
        &frame(FrameType::Ping, false, b"p"),
        FrameType::Pong,
        b"p",
        "a PING between fragments",
    )?;
    round_trip(
        &mut conn,
        &text(b"\xaccd", false),
        FrameType::Text,
        "\u{20ac}CD".as_bytes(),
        "the last fragment",
    )
}

fn invalid_classes(ctx: &mut Ctx) -> CheckResult {
    for sample in INVALID {
        let mut conn = ctx.framed()?;
        conn.send(&text(sample.bytes, false))?;
        let what = format!("TEXT with invalid UTF-8 ({})", sample.name);
        conn.expect_fatal_error(ErrorCode::INVALID_UTF8, &what)?;
    }
    Ok(())
}

fn fails_fast(ctx: &mut Ctx) -> CheckResult {
    for sample in INVALID {
        let visible = oracle::first_visible_invalid(sample.bytes).expect("invalid sample");
        let mut conn = ctx.framed()?;
        // A valid first fragment, answered normally: the message is open.
        let first = &sample.bytes[..3];
        let reply = oracle::text_upper(&first[..oracle::complete_prefix_len(first)]);
        round_trip(
            &mut conn,
            &text(first, true),
            FrameType::Text,
            &reply,
            "a valid first fragment",
        )?;
        // The fragment that makes the bad byte visible, MORE set; the rest is never sent.
        conn.send(&text(&sample.bytes[3..visible], true))?;
        let what = format!(
            "fragment 2 {} (MORE set; the bad byte is visible, the rest of the message not sent) — {}",
            crate::conform::show::hex(&sample.bytes[3..visible]),
            sample.name
        );
        conn.expect_fatal_error(ErrorCode::INVALID_UTF8, &what)?;
    }
    Ok(())
}

fn truncated_last_fragment(ctx: &mut Ctx) -> CheckResult {
    for sample in TRUNCATED {
        let mut conn = ctx.framed()?;
        let complete = oracle::complete_prefix_len(sample.bytes);
        let what = format!("TEXT+MORE ending inside a code point ({})", sample.name);
        round_trip(
            &mut conn,
            &text(sample.bytes, true),
            FrameType::Text,
            &oracle::text_upper(&sample.bytes[..complete]),
            &what,
        )?;
        conn.send(&text(b"", false))?;
        let what = format!(
            "an empty last fragment after {}",
            crate::conform::show::hex(sample.bytes)
        );
        conn.expect_fatal_error(ErrorCode::INVALID_UTF8, &what)?;
    }
    Ok(())
}
