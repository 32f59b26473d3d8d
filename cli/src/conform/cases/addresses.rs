//! SPEC.md §5.5: reply addresses — swapped, unspecified ones filled in with
//! what the server sees (its local address, the client's address).

use std::net::Ipv6Addr;

use super::{addr, frame, round_trip};
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use upcase::wire::{Address, ErrorCode, FrameRepr, FrameType};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/5.5/unspecified-filled-in",
        description: "unspecified addresses: reply source = the address the client connected to, destination = the client's address",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: unspecified_filled_in,
    },
    Case {
        name: "framed/5.5/explicit-swapped",
        description: "explicit addresses (IPv6 and IPv4-mapped) on TEXT, BYTES and PING come back swapped",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: explicit_swapped,
    },
    Case {
        name: "framed/5.5/one-side-unspecified",
        description: "only the unspecified side is filled in; the explicit side is swapped",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: one_side_unspecified,
    },
    Case {
        name: "framed/5.5/zero-ip-with-port-is-specified",
        description: "an address with IP :: but a non-zero port is not unspecified: swapped, not filled in",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: zero_ip_with_port,
    },
    Case {
        name: "framed/5.5/error-reply-swapped",
        description: "an ERROR reply is addressed like any reply: the offending frame's addresses swapped",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: error_reply_swapped,
    },
];

fn with(mut request: FrameRepr, src: Address, dst: Address) -> FrameRepr {
    request.src = src;
    request.dst = dst;
    request
}

fn unspecified_filled_in(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let request = frame(FrameType::Text, false, b"who am i");
    conn.send(&request)?;
    let reply = conn.recv_frame("reply")?;
    let expected = (conn.server, conn.client);
    if (reply.src, reply.dst) == expected {
        Ok(())
    } else {
        Err(crate::conform::Failure::mismatch(
            "reply to a frame with unspecified addresses is misaddressed",
            format!("src={} dst={}", expected.0, expected.1),
            format!("src={} dst={}", reply.src, reply.dst),
        ))
    }
}

fn explicit_swapped(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let src = addr("[2001:db8::1]:1234");
    let dst = addr("198.51.100.7:80");
    for (request, reply, data, answer) in [
        (FrameType::Text, FrameType::Text, &b"swap"[..], &b"SWAP"[..]),
        (FrameType::Bytes, FrameType::Bytes, b"swap", b"SWAP"),
        (FrameType::Ping, FrameType::Pong, b"swap", b"swap"),
    ] {
        let what = format!("{request} from {src} to {dst}");
        round_trip(
            &mut conn,
            &with(frame(request, false, data), src, dst),
            reply,
            answer,
            &what,
        )?;
    }
    Ok(())
}

fn one_side_unspecified(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let explicit = addr("192.0.2.1:4000");
    for (src, dst) in [
        (explicit, Address::UNSPECIFIED),
        (Address::UNSPECIFIED, explicit),
    ] {
        let what = format!("TEXT from {src} to {dst}");
        round_trip(
            &mut conn,
            &with(frame(FrameType::Text, false, b"x"), src, dst),
            FrameType::Text,
            b"X",
            &what,
        )?;
    }
    Ok(())
}

fn zero_ip_with_port(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let port = |port| Address {
        ip: Ipv6Addr::UNSPECIFIED,
        port,
    };
    let request = with(frame(FrameType::Text, false, b"x"), port(7), port(8));
    round_trip(
        &mut conn,
        &request,
        FrameType::Text,
        b"X",
        "TEXT from [::]:7 to [::]:8",
    )
}

fn error_reply_swapped(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let src = addr("[2001:db8::2]:5");
    let dst = addr("203.0.113.9:6");
    conn.send(&with(
        frame(FrameType::Unknown(0x7f), false, b"?"),
        src,
        dst,
    ))?;
    conn.expect_error(
        ErrorCode::UNKNOWN_TYPE,
        src,
        dst,
        "an unknown type with explicit addresses",
    )
}
