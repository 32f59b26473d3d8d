//! SPEC.md §8.2: framed datagrams that are rejected — each check, in the
//! order §8.2 gives, answered with preface + the ERROR. Each datagram goes
//! out on a socket of its own.

use std::time::Duration;

use bytes::BytesMut;

use super::{addr, frame};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle::{INVALID, TRUNCATED};
use upcase::wire::{
    Address, ErrorCode, Flags, FrameHeader, FrameRepr, FrameType, HEADER_LEN, PREFACE,
    encode_header,
};

pub const CASES: &[Case] = &[
    Case {
        name: "udp/8.2/unsupported-version",
        description: "versions 0, 2 and 0xff get preface (version 1) + ERROR(UNSUPPORTED_VERSION) from the server to the client, even with only 10 bytes after; a preface alone gets nothing (§8.4: 3× limit)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: unsupported_version,
    },
    Case {
        name: "udp/8.2/short-header-malformed",
        description: "a preface followed by 10 or 41 bytes gets ERROR(MALFORMED) from the server to the client; by 0 or 1 byte, nothing (§8.4: 3× limit)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: short_header,
    },
    Case {
        name: "udp/8.2/length-mismatch-malformed",
        description: "a length one more or one less than the data, or two frames in one datagram, gets ERROR(MALFORMED)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: length_mismatch,
    },
    Case {
        name: "udp/8.2/frame-too-large-before-length",
        description: "a header announcing more than the receive limit (--max-frame), with no data, gets ERROR(FRAME_TOO_LARGE)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: too_large,
    },
    Case {
        name: "udp/8.2/more-set-malformed",
        description: "TEXT or BYTES with MORE gets ERROR(MALFORMED): a datagram carries a whole message",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: more_set,
    },
    Case {
        name: "udp/8.2/reserved-flag-malformed",
        description: "a reserved flag bit (on TEXT, PONG, an unknown type) gets ERROR(MALFORMED)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: reserved_flag,
    },
    Case {
        name: "udp/8.2/more-on-control-malformed",
        description: "MORE on PING, BYE, PONG or an unknown type gets ERROR(MALFORMED)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: more_on_control,
    },
    Case {
        name: "udp/8.2/unknown-type",
        description: "types 0x00, 0x07, 0x7f and 0xff get ERROR(UNKNOWN_TYPE)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: unknown_type,
    },
    Case {
        name: "udp/8.2/unexpected-type",
        description: "PONG and ERROR from a client get ERROR(UNEXPECTED_TYPE)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: unexpected_type,
    },
    Case {
        name: "udp/8.2/invalid-utf8",
        description: "TEXT that is not UTF-8, one class each, an incomplete code point at the end included, gets ERROR(INVALID_UTF8)",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: invalid_utf8,
    },
    Case {
        name: "udp/8.2/checks-in-order",
        description: "with several faults the first check of §8.2 decides: version, header, limit, length, flags, type, MORE, UTF-8",
        unicode_dependent: false,
        needs: Needs::FramedDatagrams,
        check: checks_in_order,
    },
];

/// Addresses the rejected frames carry, so that swapped ERROR addresses
/// can be told from filled-in ones.
fn request_addresses() -> (Address, Address) {
    (addr("[2001:db8::7]:4000"), addr("192.0.2.1:9"))
}

/// Preface (version `version`) + a header announcing `len` + `data`.
fn datagram(version: u8, header: FrameHeader, data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::from(&PREFACE[..]);
    out[PREFACE.len() - 1] = version;
    encode_header(&header, &mut out);
    out.extend_from_slice(data);
    out.to_vec()
}

fn header(frame_type: FrameType, flags: u8, len: usize) -> FrameHeader {
    let (src, dst) = request_addresses();
    FrameHeader {
        src,
        dst,
        frame_type,
        flags: Flags(flags),
        data_len: u32::try_from(len).unwrap_or(u32::MAX),
    }
}

/// A well-formed frame of `frame_type` with `flags` and `data`, addressed.
fn datagram_of(frame_type: FrameType, flags: u8, data: &[u8]) -> Vec<u8> {
    datagram(1, header(frame_type, flags, data.len()), data)
}

/// Send `datagram`; require ERROR(`code`) addressed as the reply to the frame.
fn rejected(ctx: &mut Ctx, datagram: &[u8], code: ErrorCode, what: &str) -> CheckResult {
    ctx.datagram()?
        .expect_error_reply(datagram, request_addresses(), code, what)
}

/// Send `datagram`; require ERROR(`code`) from the server to the client.
fn rejected_unaddressed(
    ctx: &mut Ctx,
    datagram: &[u8],
    code: ErrorCode,
    what: &str,
) -> CheckResult {
    ctx.datagram()?
        .expect_unaddressed_error(datagram, code, what)
}

fn unsupported_version(ctx: &mut Ctx) -> CheckResult {
    let text = header(FrameType::Text, 0, 2);
    for version in [0, 2, 0xff] {
        let what = format!("version {version} with a TEXT frame");
        let bytes = datagram(version, text, b"hi");
        rejected_unaddressed(ctx, &bytes, ErrorCode::UNSUPPORTED_VERSION, &what)?;
    }
    // 18 bytes leave room (3 × 18 = 54) for the ERROR with 2 message bytes.
    let mut short = PREFACE.to_vec();
    short[7] = 2;
    short.resize(18, 0);
    rejected_unaddressed(
        ctx,
        &short,
        ErrorCode::UNSUPPORTED_VERSION,
        "a version 2 preface and 10 zero bytes (18 bytes: room for a shortened ERROR)",
    )?;
    let mut alone = PREFACE;
    alone[7] = 2;
    ctx.datagram()?.expect_no_reply(
        &alone,
        AMPLIFICATION_WAIT.min(ctx.options.timeout),
        "a version 2 preface alone (8 bytes: any ERROR is over 3 × 8, SPEC.md §8.4)",
    )
}

/// How long a datagram whose ERROR would break the amplification limit
/// (SPEC.md §8.4) must stay unanswered.
const AMPLIFICATION_WAIT: Duration = Duration::from_millis(300);

fn short_header(ctx: &mut Ctx) -> CheckResult {
    let whole = datagram_of(FrameType::Text, 0, b"");
    for after in [0, 1] {
        let what = format!(
            "a preface and {after} header bytes (any ERROR is over 3 × the datagram, SPEC.md §8.4)"
        );
        let bytes = &whole[..PREFACE.len() + after];
        let wait = AMPLIFICATION_WAIT.min(ctx.options.timeout);
        ctx.datagram()?.expect_no_reply(bytes, wait, &what)?;
    }
    for after in [10, HEADER_LEN - 1] {
        let what = format!("a preface and {after} header bytes");
        let bytes = &whole[..PREFACE.len() + after];
        rejected_unaddressed(ctx, bytes, ErrorCode::MALFORMED, &what)?;
    }
    Ok(())
}

fn length_mismatch(ctx: &mut Ctx) -> CheckResult {
    let longer = datagram(1, header(FrameType::Text, 0, 3), b"hi");
    rejected(
        ctx,
        &longer,
        ErrorCode::MALFORMED,
        "a length of 3 with 2 data bytes",
    )?;
    let shorter = datagram(1, header(FrameType::Text, 0, 1), b"hi");
    rejected(
        ctx,
        &shorter,
        ErrorCode::MALFORMED,
        "a length of 1 with 2 data bytes",
    )?;
    let mut two = datagram_of(FrameType::Ping, 0, b"one");
    let second = FrameRepr::new(FrameType::Ping, &b"two"[..]);
    two.extend_from_slice(&second.to_bytes());
    rejected(
        ctx,
        &two,
        ErrorCode::MALFORMED,
        "two PING frames in one datagram",
    )
}

fn too_large(ctx: &mut Ctx) -> CheckResult {
    let over = ctx.options.max_frame as usize + 1;
    let bytes = datagram(1, header(FrameType::Text, 0, over), b"");
    let what = format!("a header announcing {over} bytes (the limit + 1), no data");
    rejected(ctx, &bytes, ErrorCode::FRAME_TOO_LARGE, &what)?;
    let bytes = datagram(1, header(FrameType::Bytes, 0, u32::MAX as usize), b"abc");
    let what = "a header announcing 4294967295 bytes";
    rejected(ctx, &bytes, ErrorCode::FRAME_TOO_LARGE, what)
}

fn more_set(ctx: &mut Ctx) -> CheckResult {
    // SPEC.md §12.10's example, addressed.
    rejected(
        ctx,
        &datagram_of(FrameType::Text, 0x01, b"hi"),
        ErrorCode::MALFORMED,
        "TEXT with MORE",
    )?;
    rejected(
        ctx,
        &datagram_of(FrameType::Bytes, 0x01, b"hi"),
        ErrorCode::MALFORMED,
        "BYTES with MORE",
    )?;
    let empty = datagram_of(FrameType::Text, 0x01, b"");
    rejected(ctx, &empty, ErrorCode::MALFORMED, "an empty TEXT with MORE")
}

fn reserved_flag(ctx: &mut Ctx) -> CheckResult {
    let cases = [
        (FrameType::Text, 0x02),
        (FrameType::Text, 0x80),
        (FrameType::Pong, 0x02),
        (FrameType::Unknown(0x07), 0x80),
    ];
    for (frame_type, flags) in cases {
        let what = format!("{frame_type} with flags 0x{flags:02x}");
        rejected(
            ctx,
            &datagram_of(frame_type, flags, b"x"),
            ErrorCode::MALFORMED,
            &what,
        )?;
    }
    Ok(())
}

fn more_on_control(ctx: &mut Ctx) -> CheckResult {
    for frame_type in [
        FrameType::Ping,
        FrameType::Bye,
        FrameType::Pong,
        FrameType::Unknown(0x07),
    ] {
        let what = format!("{frame_type} with MORE");
        rejected(
            ctx,
            &datagram_of(frame_type, 0x01, b""),
            ErrorCode::MALFORMED,
            &what,
        )?;
    }
    Ok(())
}

fn unknown_type(ctx: &mut Ctx) -> CheckResult {
    for code in [0x00, 0x07, 0x7f, 0xff] {
        let what = format!("type 0x{code:02x}");
        let bytes = datagram_of(FrameType::Unknown(code), 0, b"xyz");
        rejected(ctx, &bytes, ErrorCode::UNKNOWN_TYPE, &what)?;
    }
    Ok(())
}

fn unexpected_type(ctx: &mut Ctx) -> CheckResult {
    let pong = datagram_of(FrameType::Pong, 0, b"");
    rejected(ctx, &pong, ErrorCode::UNEXPECTED_TYPE, "a PONG")?;
    let error = datagram_of(FrameType::Error, 0, b"\x00\x01oops");
    rejected(ctx, &error, ErrorCode::UNEXPECTED_TYPE, "an ERROR")
}

fn invalid_utf8(ctx: &mut Ctx) -> CheckResult {
    for sample in INVALID.iter().chain(TRUNCATED) {
        let what = format!("TEXT ({})", sample.name);
        let bytes = datagram_of(FrameType::Text, 0, sample.bytes);
        rejected(ctx, &bytes, ErrorCode::INVALID_UTF8, &what)?;
    }
    Ok(())
}

fn checks_in_order(ctx: &mut Ctx) -> CheckResult {
    let mut v2_short = PREFACE.to_vec();
    v2_short[7] = 2;
    v2_short.extend_from_slice(&[0; 10]);
    let what = "version 2 and a short header (check 1 before 2)";
    rejected_unaddressed(ctx, &v2_short, ErrorCode::UNSUPPORTED_VERSION, what)?;

    let over = ctx.options.max_frame as usize + 1;
    let bytes = datagram(1, header(FrameType::Unknown(0x07), 0xff, over), b"ab");
    let what = "an over-limit length, 2 data bytes, reserved flags and type 0x07 (check 3 first)";
    rejected(ctx, &bytes, ErrorCode::FRAME_TOO_LARGE, what)?;

    let bytes = datagram(1, header(FrameType::Unknown(0x07), 0, 5), b"ab");
    let what = "a length mismatch on type 0x07 (check 4 before UNKNOWN_TYPE)";
    rejected(ctx, &bytes, ErrorCode::MALFORMED, what)?;

    let bytes = datagram(1, header(FrameType::Pong, 0, 5), b"ab");
    let what = "a length mismatch on PONG (check 4 before UNEXPECTED_TYPE)";
    rejected(ctx, &bytes, ErrorCode::MALFORMED, what)?;

    let what = "MORE on TEXT that is not UTF-8 (check 6 before 7)";
    rejected(
        ctx,
        &datagram_of(FrameType::Text, 0x01, b"\xff"),
        ErrorCode::MALFORMED,
        what,
    )?;

    let socket = ctx.datagram()?;
    let fine = frame(FrameType::Text, false, b"still answered");
    let reply = socket.reply_to(&fine, FrameType::Text, &b"STILL ANSWERED"[..]);
    socket.expect_frame(&fine, &reply, "a good TEXT after the rejected datagrams")
}
