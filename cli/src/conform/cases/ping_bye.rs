//! SPEC.md §5.3 (PING/PONG) and §5.4 (BYE and linger).

use std::time::Duration;

use super::{frame, round_trip, text};
use crate::conform::case::{Case, Check, Needs};
use crate::conform::client::Ctx;
use upcase::wire::FrameType;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/5.3/pong-echoes-data",
        description: "PING is answered with PONG carrying the same data, unchanged (empty, text, any bytes)",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: pong_echoes,
    },
    Case {
        name: "framed/5.4/bye-then-linger",
        description: "BYE gets BYE (empty data); then the server reads nothing more and does not close first (200 ms), but closes once the client has",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: bye_then_linger,
    },
    Case {
        name: "framed/5.4/bye-reason-not-echoed",
        description: "a BYE with a reason (even invalid UTF-8) is still a BYE, answered with an empty BYE",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: bye_reason,
    },
    Case {
        name: "framed/5.4/bye-between-fragments",
        description: "a BYE while a message is open is answered with BYE (the message is abandoned)",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: bye_between_fragments,
    },
];

/// How long the server must keep the connection open after its BYE reply
/// while the client keeps it open (SPEC's linger is 2 s by default).
const LINGER_AT_LEAST: Duration = Duration::from_millis(200);

fn pong_echoes(ctx: &mut Ctx) -> Check {
    let mut conn = ctx.framed()?;
    let all: Vec<u8> = (0..=255).rev().collect();
    for data in [&b""[..], b"hello", &all] {
        round_trip(
            &mut conn,
            &frame(FrameType::Ping, false, data),
            FrameType::Pong,
            data,
            "PING",
        )?;
    }
    Ok(())
}

fn bye_then_linger(ctx: &mut Ctx) -> Check {
    let mut conn = ctx.framed()?;
    round_trip(
        &mut conn,
        &frame(FrameType::Bye, false, b""),
        FrameType::Bye,
        b"",
        "BYE",
    )?;
    // Read nothing more: this PING must get no PONG.
    conn.send(&frame(FrameType::Ping, false, b"after BYE"))?;
    conn.expect_silence(
        LINGER_AT_LEAST,
        "the client keeps the connection open after BYE",
    )?;
    conn.shutdown_write();
    conn.expect_eof("the client closed after BYE")
}

fn bye_reason(ctx: &mut Ctx) -> Check {
    for reason in [&b"goodbye"[..], b"\xff\xfe"] {
        let mut conn = ctx.framed()?;
        round_trip(
            &mut conn,
            &frame(FrameType::Bye, false, reason),
            FrameType::Bye,
            b"",
            "BYE with a reason",
        )?;
    }
    Ok(())
}

fn bye_between_fragments(ctx: &mut Ctx) -> Check {
    let mut conn = ctx.framed()?;
    round_trip(
        &mut conn,
        &text(b"open \xc3", true),
        FrameType::Text,
        b"OPEN ",
        "TEXT+MORE",
    )?;
    round_trip(
        &mut conn,
        &frame(FrameType::Bye, false, b""),
        FrameType::Bye,
        b"",
        "BYE inside a message",
    )
}
