//! SPEC.md §3: the frame layout on a stream.

use super::{frame, round_trip, text};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use upcase::wire::FrameType;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/3.5/frame-byte-by-byte",
        description: "a frame that arrives one byte per TCP segment gets the same reply as one sent whole",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: frame_byte_by_byte,
    },
    Case {
        name: "framed/3.4/zero-length-data",
        description: "TEXT, BYTES and PING with no data are answered with empty TEXT, BYTES and PONG",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: zero_length,
    },
];

fn frame_byte_by_byte(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    // Short enough for a server with `--max-frame 16`.
    let request = text(b"byte by byte", false);
    crate::conform::client::within_limit(&request, ctx.options.max_frame)?;
    for byte in request.to_bytes().iter() {
        conn.write(&[*byte])?;
    }
    let expected = conn.reply_to(&request, FrameType::Text, false, &b"BYTE BY BYTE"[..]);
    conn.expect(&expected, "a TEXT frame sent byte by byte")
}

fn zero_length(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    for (request, reply) in [
        (FrameType::Text, FrameType::Text),
        (FrameType::Bytes, FrameType::Bytes),
        (FrameType::Ping, FrameType::Pong),
    ] {
        let what = format!("an empty {request}");
        round_trip(&mut conn, &frame(request, false, b""), reply, b"", &what)?;
    }
    Ok(())
}
