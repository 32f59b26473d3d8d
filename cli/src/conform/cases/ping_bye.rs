//! SPEC.md §5.3 (PING/PONG) and §5.4 (BYE and linger).

use std::time::Duration;

use super::{frame, round_trip, text};
use crate::conform::case::{Case, CheckResult, Needs};
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
        description: "BYE gets BYE (empty data); then the server answers nothing more and closes once the client has (closing first within 200 ms is a warning: SHOULD NOT)",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: bye_then_linger,
    },
    Case {
        name: "framed/5.4/frames-behind-bye-unanswered",
        description: "BYE, TEXT and PING in one write get only BYE back: frames buffered behind a BYE are not processed",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: frames_behind_bye,
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

/// How long the server should keep the connection open after its BYE reply
/// while the client keeps it open (SPEC's linger is 2 s by default).
const LINGER_AT_LEAST: Duration = Duration::from_millis(200);

/// What the BYE cases send behind the BYE, which must get no reply.
const AFTER_BYE: &[u8] = b"after BYE";

fn pong_echoes(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    // Every byte value, as many as the server's limit takes.
    let mut all: Vec<u8> = (0..=255).rev().collect();
    all.truncate(ctx.options.max_frame as usize);
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

fn bye_then_linger(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    round_trip(
        &mut conn,
        &frame(FrameType::Bye, false, b""),
        FrameType::Bye,
        b"",
        "BYE",
    )?;
    // Process nothing more (a MUST): this PING must get no PONG. The server
    // may already have closed, so a failed write is no failure.
    conn.send_regardless(&frame(FrameType::Ping, false, AFTER_BYE));
    let closed = conn.expect_nothing_sent(
        LINGER_AT_LEAST,
        "the client keeps the connection open after BYE",
    )?;
    if let Some(how) = closed {
        // SPEC.md §5.4: it SHOULD NOT close first while the linger runs.
        ctx.warn(format!(
            "the server closed ({how}) within {} ms of its BYE while the client kept the connection open; SPEC.md §5.4 says it SHOULD NOT close first (TIME_WAIT should stay with the client)",
            LINGER_AT_LEAST.as_millis()
        ));
        return Ok(());
    }
    conn.shutdown_write();
    conn.expect_eof("the client closed after BYE")
}

fn frames_behind_bye(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let bye = frame(FrameType::Bye, false, b"");
    conn.send_all(&[
        bye.clone(),
        text(AFTER_BYE, false),
        frame(FrameType::Ping, false, AFTER_BYE),
    ])?;
    let reply = conn.reply_to(&bye, FrameType::Bye, false, &b""[..]);
    conn.expect(&reply, "BYE, TEXT and PING in one write")?;
    conn.shutdown_write();
    conn.expect_eof("its BYE (the TEXT and PING behind the BYE get no reply)")
}

fn bye_reason(ctx: &mut Ctx) -> CheckResult {
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

fn bye_between_fragments(ctx: &mut Ctx) -> CheckResult {
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
