//! SPEC.md §6: every ERROR code the client can provoke on a TCP connection,
//! fatal (the connection ends) or not (the connection still answers a PING).

use super::{frame, round_trip, text};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use upcase::wire::{
    Address, ErrorCode, ErrorPayload, Flags, FrameHeader, FrameType, encode_header,
};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/6.2/malformed-reserved-flag",
        description: "a reserved flag bit (0x02, 0x80, 0xfe) gets ERROR(MALFORMED), fatal",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: reserved_flag,
    },
    Case {
        name: "framed/6.2/malformed-more-on-control-frame",
        description: "MORE on PING, BYE or an unknown type gets ERROR(MALFORMED), fatal",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: more_on_control,
    },
    Case {
        name: "framed/6.3/more-on-pong-or-error-malformed",
        description: "PONG or ERROR with MORE gets ERROR(MALFORMED), fatal: MORE on a control type is checked before the type is unexpected",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: more_on_unexpected,
    },
    Case {
        name: "framed/6.2/frame-too-large-from-header",
        description: "a header announcing more than the limit (--max-frame) gets ERROR(FRAME_TOO_LARGE) before any data is sent, fatal",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: too_large,
    },
    Case {
        name: "framed/6.3/frame-too-large-checked-first",
        description: "an over-limit header with reserved flags and an unknown type gets FRAME_TOO_LARGE (checked first)",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: too_large_first,
    },
    Case {
        name: "framed/3.4/frame-at-limit-accepted",
        description: "a TEXT frame of exactly the limit (--max-frame) is answered",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: at_limit,
    },
    Case {
        name: "framed/6.2/invalid-utf8-fatal",
        description: "TEXT that is not UTF-8 gets ERROR(INVALID_UTF8), fatal",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: invalid_utf8,
    },
    Case {
        name: "framed/6.5/unknown-type-skipped",
        description: "types 0x00, 0x07, 0x7f, 0xff (with data) get ERROR(UNKNOWN_TYPE); not fatal, the frame is skipped",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: unknown_type,
    },
    Case {
        name: "framed/6.5/unexpected-type-skipped",
        description: "PONG and ERROR from a client get ERROR(UNEXPECTED_TYPE); not fatal",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: unexpected_type,
    },
    Case {
        name: "framed/6.5/non-fatal-error-keeps-open-message",
        description: "an unknown type and a PONG inside an open TEXT message get their ERRORs, and the message goes on with its carried bytes: \"caf\" + c3 … a9 \"!\" gives \"CAF\" then \"É!\"",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: non_fatal_inside_message,
    },
    Case {
        name: "framed/6.2/type-mismatch-fatal",
        description: "BYTES while a TEXT message is open (and TEXT inside BYTES) gets ERROR(TYPE_MISMATCH), fatal",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: type_mismatch,
    },
];

fn reserved_flag(ctx: &mut Ctx) -> CheckResult {
    for flags in [0x02, 0x80, 0xfe] {
        let mut conn = ctx.framed()?;
        let mut request = text(b"flags", false);
        request.flags = Flags(flags);
        conn.send(&request)?;
        let what = format!("TEXT with flags 0x{flags:02x}");
        conn.expect_fatal_error(ErrorCode::MALFORMED, &what)?;
    }
    Ok(())
}

fn more_on_control(ctx: &mut Ctx) -> CheckResult {
    for frame_type in [FrameType::Ping, FrameType::Bye, FrameType::Unknown(0x07)] {
        let mut conn = ctx.framed()?;
        conn.send(&frame(frame_type, true, b""))?;
        let what = format!("{frame_type} with MORE");
        conn.expect_fatal_error(ErrorCode::MALFORMED, &what)?;
    }
    Ok(())
}

fn more_on_unexpected(ctx: &mut Ctx) -> CheckResult {
    let error_data = ErrorPayload::new(ErrorCode::BUSY, "from a client").to_bytes();
    for (frame_type, data) in [
        (FrameType::Pong, &b"pong"[..]),
        (FrameType::Error, &error_data[..]),
    ] {
        let mut conn = ctx.framed()?;
        conn.send(&frame(frame_type, true, data))?;
        let what = format!("{frame_type} with MORE (MALFORMED comes before UNEXPECTED_TYPE)");
        conn.expect_fatal_error(ErrorCode::MALFORMED, &what)?;
    }
    Ok(())
}

fn non_fatal_inside_message(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    round_trip(
        &mut conn,
        &text(b"caf\xc3", true),
        FrameType::Text,
        b"CAF",
        "TEXT+MORE \"caf\" c3 (the c3 is carried)",
    )?;
    conn.send(&frame(FrameType::Unknown(0x42), false, b"skip me"))?;
    conn.expect_error_code(
        ErrorCode::UNKNOWN_TYPE,
        "a frame of unknown type 0x42 inside an open message",
    )?;
    conn.send(&frame(FrameType::Pong, false, b"pong"))?;
    conn.expect_error_code(ErrorCode::UNEXPECTED_TYPE, "a PONG inside an open message")?;
    round_trip(
        &mut conn,
        &text(b"\xa9!", false),
        FrameType::Text,
        "\u{c9}!".as_bytes(),
        "the last fragment a9 \"!\" (completing the carried c3 into \u{e9})",
    )
}

fn over_limit_header(
    ctx: &Ctx,
    frame_type: FrameType,
    flags: Flags,
    src: Address,
    dst: Address,
) -> bytes::BytesMut {
    let header = FrameHeader {
        src,
        dst,
        frame_type,
        flags,
        data_len: ctx.options.max_frame.saturating_add(1),
    };
    let mut out = bytes::BytesMut::new();
    encode_header(&header, &mut out);
    out
}

fn too_large(ctx: &mut Ctx) -> CheckResult {
    let src = Address::from(
        "[2001:db8::3]:33"
            .parse::<std::net::SocketAddr>()
            .expect("literal"),
    );
    let header = over_limit_header(
        ctx,
        FrameType::Text,
        Flags::default(),
        src,
        Address::UNSPECIFIED,
    );
    let mut conn = ctx.framed()?;
    conn.write(&header)?;
    let what = format!(
        "a TEXT header announcing {} bytes (limit {}), no data sent",
        ctx.options.max_frame as u64 + 1,
        ctx.options.max_frame
    );
    conn.expect_error(ErrorCode::FRAME_TOO_LARGE, src, Address::UNSPECIFIED, &what)?;
    conn.expect_closed_after_fatal()
        .map_err(|f| f.context(&what))
}

fn too_large_first(ctx: &mut Ctx) -> CheckResult {
    let header = over_limit_header(
        ctx,
        FrameType::Unknown(0x42),
        Flags(0xff),
        Address::UNSPECIFIED,
        Address::UNSPECIFIED,
    );
    let mut conn = ctx.framed()?;
    conn.write(&header)?;
    let what = "an over-limit header with flags 0xff and type 0x42";
    conn.expect_fatal_error(ErrorCode::FRAME_TOO_LARGE, what)
}

fn at_limit(ctx: &mut Ctx) -> CheckResult {
    let len = ctx.options.max_frame as usize;
    let mut conn = ctx.framed()?;
    let data: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect();
    let upper = data.to_ascii_uppercase();
    round_trip(
        &mut conn,
        &text(&data, false),
        FrameType::Text,
        &upper,
        &format!("TEXT of {len} bytes (the limit)"),
    )
}

fn invalid_utf8(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    conn.send(&text(b"caf\xe9", false))?;
    conn.expect_error_code(ErrorCode::INVALID_UTF8, "TEXT \"caf\\xe9\" (Latin-1)")?;
    conn.expect_closed_after_fatal()
}

fn unknown_type(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    for code in [0x00, 0x07, 0x7f, 0xff] {
        conn.send(&frame(FrameType::Unknown(code), false, b"skip me"))?;
        let what = format!("a frame of unknown type 0x{code:02x}");
        conn.expect_error_code(ErrorCode::UNKNOWN_TYPE, &what)?;
        conn.expect_alive(&what)?;
    }
    Ok(())
}

fn unexpected_type(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let error_data = ErrorPayload::new(ErrorCode::BUSY, "from a client").to_bytes();
    for (frame_type, data) in [
        (FrameType::Pong, &b"pong"[..]),
        (FrameType::Error, &error_data[..]),
    ] {
        conn.send(&frame(frame_type, false, data))?;
        let what = format!("a {frame_type} from the client");
        conn.expect_error_code(ErrorCode::UNEXPECTED_TYPE, &what)?;
        conn.expect_alive(&what)?;
    }
    Ok(())
}

fn type_mismatch(ctx: &mut Ctx) -> CheckResult {
    for (open, other) in [
        (FrameType::Text, FrameType::Bytes),
        (FrameType::Bytes, FrameType::Text),
    ] {
        let mut conn = ctx.framed()?;
        round_trip(
            &mut conn,
            &frame(open, true, b"ab"),
            open,
            b"AB",
            &format!("{open}+MORE"),
        )?;
        conn.send(&frame(other, false, b"cd"))?;
        let what = format!("{other} while a {open} message is open");
        conn.expect_fatal_error(ErrorCode::TYPE_MISMATCH, &what)?;
    }
    Ok(())
}
