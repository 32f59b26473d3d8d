//! SPEC.md §5.6: one reply per frame, in order; clients independent.

use super::{frame, round_trip, text};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::{Conn, Ctx};
use crate::conform::oracle;
use upcase::conn::ServerMode;
use upcase::wire::{FrameRepr, FrameType, PREFACE};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/5.6/pipelined-replies-in-order",
        description: "250 frames (TEXT, BYTES, PING, fragments) written at once get 250 replies in order",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: pipelined,
    },
    Case {
        name: "framed/5.6/many-clients-interleaved",
        description: "16 connections (framed and raw; fewer under --max-connections) open at once, requests round-robin: each is answered while the others stay open",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: many_clients,
    },
    Case {
        name: "framed/5.6/disconnect-mid-frame-others-served",
        description: "clients that vanish mid-frame, mid-preface or mid-code-point end only their own connection",
        unicode_dependent: false,
        needs: Needs::Connections(4),
        check: disconnect_mid_frame,
    },
];

fn pipelined(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let mut requests: Vec<(FrameRepr, FrameType, Vec<u8>)> = Vec::new();
    // Every frame at most 15 bytes: within a server's `--max-frame 16`.
    for i in 0..50 {
        let message = format!("m{i}: stra\u{df}e");
        requests.push((
            text(message.as_bytes(), false),
            FrameType::Text,
            oracle::text_upper(message.as_bytes()),
        ));
        let data = format!("b{i} \u{e9}");
        requests.push((
            frame(FrameType::Bytes, false, data.as_bytes()),
            FrameType::Bytes,
            oracle::ascii_upper(data.as_bytes()),
        ));
        let ping = format!("p{i}");
        requests.push((
            frame(FrameType::Ping, false, ping.as_bytes()),
            FrameType::Pong,
            ping.clone().into_bytes(),
        ));
        let head = format!("f{i} \u{20ac}");
        let head = &head.as_bytes()[..head.len() - 1];
        requests.push((
            text(head, true),
            FrameType::Text,
            oracle::text_upper(&head[..head.len() - 2]),
        ));
        requests.push((
            text(b"\xac", false),
            FrameType::Text,
            "\u{20ac}".as_bytes().to_vec(),
        ));
    }
    let frames: Vec<FrameRepr> = requests
        .iter()
        .map(|(request, _, _)| request.clone())
        .collect();
    conn.send_all(&frames)?;
    for (i, (request, reply_type, data)) in requests.into_iter().enumerate() {
        let expected = conn.reply_to(&request, reply_type, request.flags.more(), data);
        conn.expect(
            &expected,
            &format!("pipelined frame {} of {}", i + 1, frames.len()),
        )?;
    }
    Ok(())
}

/// How many clients the concurrency case opens at once (fewer against a
/// server with a lower connection limit).
const MANY: usize = 16;

fn many_clients(ctx: &mut Ctx) -> CheckResult {
    let ascii_raw = ctx.options.raw_ascii;
    // Raw clients too, unless the server is framed-only.
    let with_raw = ctx.options.server_mode == ServerMode::Auto;
    let many = ctx
        .options
        .max_connections
        .map_or(MANY, |limit| limit.min(MANY));
    let mut conns: Vec<(bool, Conn)> = Vec::new();
    for k in 0..many {
        let framed = k % 2 == 0 || !with_raw;
        let conn = if framed {
            ctx.framed()?
        } else {
            ctx.connect()?
        };
        conns.push((framed, conn));
    }
    for round in 0..4 {
        for (k, (framed, conn)) in conns.iter_mut().enumerate() {
            // At most 15 bytes: within a server's `--max-frame 16`.
            let message = format!("r{round} c{k} \u{df}\n");
            let upper = if *framed || !ascii_raw {
                oracle::text_upper(message.as_bytes())
            } else {
                oracle::ascii_upper(message.as_bytes())
            };
            let what = format!("round {round} on connection {} of {many}", k + 1);
            if *framed {
                round_trip(
                    conn,
                    &text(message.as_bytes(), false),
                    FrameType::Text,
                    &upper,
                    &what,
                )?;
            } else {
                conn.write(message.as_bytes())?;
                conn.expect_raw(&upper, &format!("raw reply, {what}"))?;
            }
        }
    }
    Ok(())
}

fn disconnect_mid_frame(ctx: &mut Ctx) -> CheckResult {
    let mut survivor = ctx.framed()?;
    round_trip(
        &mut survivor,
        &frame(FrameType::Ping, false, b"0"),
        FrameType::Pong,
        b"0",
        "PING",
    )?;

    let mut mid_frame = ctx.framed()?;
    let whole = text(b"0123456789", false).to_bytes();
    // The frame the client vanishes in the middle of must be one the server takes.
    crate::conform::client::within_limit(&text(b"0123456789", false), ctx.options.max_frame)?;
    mid_frame.write(&whole[..whole.len() - 6])?;
    let mut mid_preface = ctx.connect()?;
    mid_preface.write(&PREFACE[..3])?;
    // A raw client mid-code-point, unless the server is framed-only.
    let mid_code_point = if ctx.options.server_mode == ServerMode::Auto {
        let mut conn = ctx.connect()?;
        conn.write(b"ab\xe2\x82")?;
        conn.expect_raw(b"AB", "raw reply before the held partial code point")?;
        Some(conn)
    } else {
        None
    };

    round_trip(
        &mut survivor,
        &text(b"others half-way", false),
        FrameType::Text,
        b"OTHERS HALF-WAY",
        "TEXT",
    )?;
    drop((mid_frame, mid_preface, mid_code_point));
    round_trip(
        &mut survivor,
        &text(b"others are gone", false),
        FrameType::Text,
        b"OTHERS ARE GONE",
        "TEXT after others disconnected",
    )?;
    let mut newcomer = ctx.framed()?;
    round_trip(
        &mut newcomer,
        &text(b"new", false),
        FrameType::Text,
        b"NEW",
        "TEXT on a new connection",
    )
}
