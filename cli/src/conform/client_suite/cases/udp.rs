//! SPEC.md §8: a client over UDP, `--udp` (C17).

use upcase::wire::FrameType;

use super::{ClientCase, Flag, short_timeout};
use crate::conform::case::CheckResult;
use crate::conform::client_suite::{DatagramPeer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/8.2/udp-replies-printed",
        description: "C17: each line goes as one datagram, the preface and one TEXT frame; each reply datagram is printed",
        needs: &[Flag::Udp],
        plan: replies,
    },
    ClientCase {
        name: "client/8.2/udp-error-is-a-reply",
        description: "C17: an ERROR datagram is that line's reply (each datagram stands alone); the next line goes on",
        needs: &[Flag::Udp],
        plan: error_reply,
    },
    ClientCase {
        name: "client/8.2/udp-reply-of-wrong-type",
        description: "C17, C7: a BYTES reply to a TEXT datagram is a failure",
        needs: &[Flag::Udp],
        plan: wrong_type,
    },
    ClientCase {
        name: "client/8.2/udp-reply-without-preface",
        description: "C17: a reply datagram that is not the preface and one frame (a raw server's) is a failure",
        needs: &[Flag::Udp],
        plan: raw_reply,
    },
    ClientCase {
        name: "client/8.4/udp-no-reply",
        description: "C17, C16: a datagram that gets no reply fails when the reply timeout passes",
        needs: &[Flag::Udp],
        plan: no_reply,
    },
];

/// Answer each of `count` datagrams correctly.
fn answer(peer: &mut DatagramPeer, count: usize) -> CheckResult {
    for _ in 0..count {
        let request = peer.next_request()?;
        let upper = crate::conform::oracle::text_upper(&request.data);
        let reply = peer.reply_to(&request, FrameType::Text, upper);
        peer.send(&reply)?;
    }
    Ok(())
}

fn replies(_: &[Flag]) -> Plan {
    Plan::udp(&["hello", "straße"], &["HELLO", "STRASSE"], true, |peer| {
        answer(peer, 2)
    })
}

fn error_reply(_: &[Flag]) -> Plan {
    Plan::udp(&["a", "b", "c"], &["A", "ERROR 5", "C"], true, |peer| {
        answer(peer, 1)?;
        let request = peer.next_request()?;
        let data = upcase::wire::ErrorPayload::new(upcase::wire::ErrorCode(5), "as if").to_bytes();
        let error = peer.reply_to(&request, FrameType::Error, data);
        peer.send(&error)?;
        answer(peer, 1)
    })
}

fn wrong_type(_: &[Flag]) -> Plan {
    Plan::udp(&["hello"], &[], false, |peer| {
        let request = peer.next_request()?;
        let reply = peer.reply_to(&request, FrameType::Bytes, "HELLO");
        peer.send(&reply)
    })
}

fn raw_reply(_: &[Flag]) -> Plan {
    Plan::udp(&["hello"], &[], false, |peer| {
        peer.next_request()?;
        peer.send_raw(b"HELLO", "a raw reply")
    })
}

fn no_reply(supports: &[Flag]) -> Plan {
    let mut plan = Plan::udp(&["hello"], &[], false, |peer| {
        peer.next_request()?;
        peer.log.push("(no reply)");
        Ok(())
    });
    let (mut args, deadline) = short_timeout(supports);
    plan.args.append(&mut args);
    plan.deadline = deadline;
    plan
}
