//! SPEC.md §3.4, §3.5, §4.2, §5.1: fragment sizes, replies joined, any
//! chunking (C2, C9).

use super::{ClientCase, Flag, prefaces, prefaces_then_serve, serve_correctly};
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/3.4/long-line-in-fragments-of-at-most-65536",
        description: "C9: a 120,001-byte line goes as fragments of at most 65,536 bytes, MORE cleared on the last; the replies are joined",
        needs: &[],
        plan: long_line,
    },
    ClientCase {
        name: "client/3.4/max-frame-option",
        description: "C9: with --max-frame 1, each fragment holds one byte; replies split inside code points, empty ones among them, are joined",
        needs: &[Flag::MaxFrame],
        plan: max_frame_one,
    },
    ClientCase {
        name: "client/3.5/reply-one-byte-per-write",
        description: "C2: a reply split over as many writes as it has bytes is one reply",
        needs: &[],
        plan: trickled_reply,
    },
];

fn long_line(_: &[Flag]) -> Plan {
    // 65,536 falls inside a "€": a client that cuts at that byte splits it.
    let line = format!("a{}", "€".repeat(40_000));
    let mut plan = Plan::new(&[], &[], true, prefaces_then_serve);
    plan.stdout = vec![line.to_uppercase()];
    plan.stdin = vec![line];
    plan
}

fn max_frame_one(_: &[Flag]) -> Plan {
    let mut plan = Plan::new(&["a€ß"], &["A€SS"], true, prefaces_then_serve);
    plan.args = vec!["--max-frame".into(), "1".into()];
    plan.max_frame = 1;
    plan
}

fn trickled_reply(_: &[Flag]) -> Plan {
    Plan::new(
        &["hello", "again"],
        &["HELLO", "AGAIN"],
        true,
        |peer: &mut Peer| {
            prefaces(peer)?;
            let request = peer.next_request()?;
            let reply = peer.correct_reply(&request)?;
            peer.send_trickled(&reply.to_bytes(), &crate::conform::show::frame(&reply))?;
            serve_correctly(peer)
        },
    )
}
