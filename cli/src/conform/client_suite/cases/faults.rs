//! SPEC.md §2.4, §3.3, §3.4, §4.1: server frames that fail the connection
//! (C4–C8), and the reply sizes a client must accept (C6).

use std::time::Duration;

use upcase::wire::{Flags, FrameRepr, FrameType};

use super::{ClientCase, Flag, fault_then_close, prefaces, prefaces_then_serve};
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/2.4/wrong-reply-type",
        description: "C7, C8: a BYTES reply to a TEXT request fails the connection",
        needs: &[],
        plan: wrong_type,
    },
    ClientCase {
        name: "client/2.4/more-not-mirrored",
        description: "C7, C8: a reply with MORE to a request without it fails the connection",
        needs: &[],
        plan: more_not_mirrored,
    },
    ClientCase {
        name: "client/2.4/reply-with-nothing-waiting",
        description: "C7, C8: a reply after every request has its reply fails the connection",
        needs: &[],
        plan: unsolicited,
    },
    ClientCase {
        name: "client/2.4/text-reply-not-utf8",
        description: "C7, C8: a TEXT reply that is not UTF-8 fails the connection",
        needs: &[],
        plan: not_utf8,
    },
    ClientCase {
        name: "client/2.4/bytes-reply-longer-than-request",
        description: "C7, C8: a BYTES reply longer than its request fails the connection",
        needs: &[Flag::Bytes],
        plan: bytes_too_long,
    },
    ClientCase {
        name: "client/3.3/reserved-flag-bit",
        description: "C4, C8: a reply with reserved flag bit 0x02 fails the connection",
        needs: &[],
        plan: reserved_bit,
    },
    ClientCase {
        name: "client/3.3/more-on-error",
        description: "C4, C8: an ERROR with MORE fails the connection",
        needs: &[],
        plan: more_on_error,
    },
    ClientCase {
        name: "client/3.4/text-reply-three-times-its-request",
        description: "C6: a TEXT reply of 3 × N bytes to a TEXT of N (ΐ → Ϊ́) is accepted",
        needs: &[],
        plan: three_times,
    },
    ClientCase {
        name: "client/3.4/over-limit-decided-from-header",
        description: "C6, C8: a TEXT reply header announcing 3 × (N + 3) + 1 bytes fails the connection at once, its data never sent",
        needs: &[Flag::Timeout],
        plan: over_limit,
    },
    ClientCase {
        name: "client/4.1/ping-from-server",
        description: "C5, C8: a PING from the server (which never sends one) fails the connection",
        needs: &[],
        plan: ping_from_server,
    },
    ClientCase {
        name: "client/4.1/unknown-type-from-server",
        description: "C5, C8: a frame of unknown type 0x07 fails the connection",
        needs: &[],
        plan: unknown_type,
    },
];

/// A plan for one request, `hello`, whose reply is replaced by `fault`
/// (made from the request); nothing may be printed.
fn faulty(
    stdin: &'static str,
    fault: impl Fn(&Peer, &FrameRepr) -> Vec<FrameRepr> + 'static,
) -> Plan {
    Plan::new(&[stdin], &[], false, move |peer: &mut Peer| {
        prefaces(peer)?;
        let request = peer.next_request()?;
        for frame in fault(peer, &request) {
            peer.send(&frame)?;
        }
        fault_then_close(peer)
    })
}

fn wrong_type(_: &[Flag]) -> Plan {
    faulty("hello", |peer, request| {
        vec![peer.reply_to(request, FrameType::Bytes, "HELLO")]
    })
}

fn more_not_mirrored(_: &[Flag]) -> Plan {
    // A client that does not check would join the two into "HELLOX".
    faulty("hello", |peer, request| {
        let mut first = peer.reply_to(request, FrameType::Text, "HELLO");
        first.flags = Flags::more_if(true);
        vec![first, peer.reply_to(request, FrameType::Text, "X")]
    })
}

fn unsolicited(_: &[Flag]) -> Plan {
    Plan::new(&["a"], &["A"], false, |peer: &mut Peer| {
        prefaces(peer)?;
        let request = peer.next_request()?;
        let reply = peer.correct_reply(&request)?;
        let extra = peer.reply_to(&request, FrameType::Text, "EXTRA");
        peer.send(&reply)?;
        peer.send(&extra)?;
        fault_then_close(peer)
    })
}

fn not_utf8(_: &[Flag]) -> Plan {
    faulty("hello", |peer, request| {
        vec![peer.reply_to(request, FrameType::Text, &b"HELL\xff"[..])]
    })
}

fn bytes_too_long(_: &[Flag]) -> Plan {
    let mut plan = faulty("abc", |peer, request| {
        vec![peer.reply_to(request, FrameType::Bytes, "ABCD")]
    });
    plan.args = vec!["--bytes".into()];
    plan
}

fn reserved_bit(_: &[Flag]) -> Plan {
    faulty("hello", |peer, request| {
        let mut reply = peer.reply_to(request, FrameType::Text, "HELLO");
        reply.flags = Flags(0x02);
        vec![reply]
    })
}

fn more_on_error(_: &[Flag]) -> Plan {
    faulty("hello", |peer, request| {
        let mut error = peer.error(Some(request), 6, "not fatal, but MORE is wrong here");
        error.flags = Flags::more_if(true);
        // A client that ignores the flag would print ERROR 6 and HELLO's reply.
        vec![error]
    })
}

fn three_times(_: &[Flag]) -> Plan {
    let line = "ΐ".repeat(1000);
    let upper = line.to_uppercase();
    assert_eq!(upper.len(), 3 * line.len());
    let mut plan = Plan::new(&[], &[], true, prefaces_then_serve);
    plan.stdin = vec![line];
    plan.stdout = vec![upper];
    plan
}

fn over_limit(_: &[Flag]) -> Plan {
    // The client's own timeout is long: only the header can end it in time.
    let mut plan = Plan::new(&["hello"], &[], false, |peer: &mut Peer| {
        prefaces(peer)?;
        let request = peer.next_request()?;
        let reply = peer.reply_to(&request, FrameType::Text, "");
        let mut header = reply.to_bytes().to_vec();
        let over = 3 * (u32::try_from(request.data.len()).unwrap_or(u32::MAX) + 3) + 1;
        header[38..42].copy_from_slice(&over.to_be_bytes());
        peer.send_raw(
            &header,
            &format!("a TEXT header announcing {over} bytes, no data"),
        )?;
        peer.stall().map_err(|failure| {
            failure.context("C6: the client must close on the header alone, not wait for its data")
        })
    });
    plan.args = vec!["--timeout".into(), "30".into()];
    plan.deadline = Duration::from_secs(8);
    plan
}

fn ping_from_server(_: &[Flag]) -> Plan {
    faulty("hello", |peer, request| {
        vec![
            FrameRepr::new(FrameType::Ping, ""),
            peer.reply_to(request, FrameType::Text, "HELLO"),
        ]
    })
}

fn unknown_type(_: &[Flag]) -> Plan {
    faulty("hello", |peer, request| {
        vec![
            FrameRepr::new(FrameType::Unknown(7), ""),
            peer.reply_to(request, FrameType::Text, "HELLO"),
        ]
    })
}
