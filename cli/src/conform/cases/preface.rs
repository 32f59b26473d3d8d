//! SPEC.md §2: mode detection and the preface.

use super::{frame, round_trip};
use crate::conform::Dgram;
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle;
use upcase::conn::ServerMode;
use upcase::wire::{ErrorCode, FrameType, PREFACE};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/2.1/preface-answered",
        description: "the server answers the client's preface with its own (version 1), then frames flow",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: preface_answered,
    },
    Case {
        name: "framed/2.1/preface-byte-by-byte",
        description: "a preface that arrives one byte per TCP segment is still recognised",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: preface_byte_by_byte,
    },
    Case {
        name: "framed/2.3/unsupported-version",
        description: "preface version 2: the server sends its preface, ERROR(UNSUPPORTED_VERSION), then closes",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: unsupported_version,
    },
    Case {
        name: "raw/2.1/first-differing-byte-means-raw",
        description: "input that does not start with the preface is raw: answered at once, without closing",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: first_byte_raw,
    },
    Case {
        name: "raw/2.1/preface-prefix-then-mismatch",
        description: "0xC0 \"UP\" then a differing byte is raw input; the lone 0xC0 is kept as an invalid byte",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: prefix_then_mismatch,
    },
    Case {
        name: "raw/2.1/short-input-then-eof",
        description: "fewer than 8 bytes then end of input: raw, answered, then closed",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: short_input_then_eof,
    },
    Case {
        name: "raw/2.2/raw-only-preface-echoed",
        description: "a raw-only server treats a preface and a frame as raw input: both come back, only the text upper-cased",
        unicode_dependent: false,
        needs: Needs::ServerMode(ServerMode::Raw),
        check: raw_only_preface_echoed,
    },
    Case {
        name: "framed/2.2/framed-only-closes-raw",
        description: "a framed-only server closes without reply a connection whose first bytes are not the magic, or that ends before 8 bytes",
        unicode_dependent: false,
        needs: Needs::ServerMode(ServerMode::Framed),
        check: framed_only_closes_raw,
    },
];

fn ping_pong(conn: &mut crate::conform::Conn) -> CheckResult {
    let ping = frame(FrameType::Ping, false, b"first frame");
    round_trip(
        conn,
        &ping,
        FrameType::Pong,
        b"first frame",
        "a PING after the prefaces",
    )
}

fn preface_answered(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    ping_pong(&mut conn)
}

fn preface_byte_by_byte(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    for byte in PREFACE {
        conn.write(&[byte])?;
    }
    conn.expect_raw(&PREFACE, "the server's preface")?;
    ping_pong(&mut conn)
}

fn unsupported_version(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    let mut v2 = PREFACE;
    v2[7] = 2;
    conn.write(&v2)?;
    conn.expect_raw(&PREFACE, "preface (the server's own, version 1)")?;
    conn.expect_error_code(ErrorCode::UNSUPPORTED_VERSION, "a version 2 preface")?;
    conn.expect_closed_after_fatal()
}

fn first_byte_raw(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    conn.write(b"hi\n")?;
    conn.expect_raw(b"HI\n", "raw reply (before the client closes)")
}

fn prefix_then_mismatch(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    conn.write(b"\xc0UPx y")?;
    conn.expect_raw_then_eof(b"\xc0UPX Y", "raw reply")
}

fn short_input_then_eof(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    conn.write(b"\xc0")?;
    conn.expect_raw_then_eof(b"\xc0", "raw reply to a lone 0xC0")?;
    let mut conn = ctx.connect()?;
    conn.write(b"ok")?;
    conn.expect_raw_then_eof(b"OK", "raw reply")
}

fn raw_only_preface_echoed(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    let stream = Dgram::framed(&frame(FrameType::Ping, false, b"ping"));
    conn.write(&stream)?;
    conn.expect_raw_then_eof(
        &oracle::lossless_upper(&stream),
        "raw reply to a preface + PING \"ping\"",
    )
}

fn framed_only_closes_raw(ctx: &mut Ctx) -> CheckResult {
    let streams: [(&[u8], &str); 2] = [
        (b"hello\n", "\"hello\\n\""),
        (b"\xc0UPx", "0xC0 \"UP\" then a differing byte"),
    ];
    for (stream, what) in streams {
        let mut conn = ctx.connect()?;
        conn.write(stream)?;
        conn.expect_eof(&format!("{what} (the client keeps its side open)"))?;
    }
    let mut conn = ctx.connect()?;
    conn.write(b"\xc0UP")?;
    conn.shutdown_write();
    conn.expect_eof("3 bytes of the magic, then end of input")?;
    let mut conn = ctx.framed()?;
    ping_pong(&mut conn)
}
