//! SPEC.md §2.4, §5.6: the client's reply timeout (C16).

use std::time::Duration;

use super::{ClientCase, Flag, prefaces, serve_correctly, short_timeout};
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/2.4/silent-server",
        description: "C16: a server that never sends its preface fails the connection when the reply timeout passes",
        needs: &[],
        plan: silent,
    },
    ClientCase {
        name: "client/5.6/stalled-reply",
        description: "C16: a server that never answers a request fails the connection when the reply timeout passes",
        needs: &[],
        plan: stalled,
    },
    ClientCase {
        name: "client/5.6/late-replies",
        description: "C16: replies that each come 700 ms after the request are waited for",
        needs: &[],
        plan: late,
    },
];

fn with_short_timeout(mut plan: Plan, supports: &[Flag]) -> Plan {
    (plan.args, plan.deadline) = short_timeout(supports);
    plan
}

fn silent(supports: &[Flag]) -> Plan {
    let plan = Plan::new(&["hello"], &[], false, |peer: &mut Peer| {
        peer.expect_preface()?;
        peer.stall()
    });
    with_short_timeout(plan, supports)
}

fn stalled(supports: &[Flag]) -> Plan {
    let plan = Plan::new(&["hello"], &[], false, |peer: &mut Peer| {
        prefaces(peer)?;
        peer.next_request()?;
        peer.stall()
    });
    with_short_timeout(plan, supports)
}

fn late(supports: &[Flag]) -> Plan {
    let mut plan = Plan::new(
        &["a", "b", "c"],
        &["A", "B", "C"],
        true,
        |peer: &mut Peer| {
            prefaces(peer)?;
            for _ in 0..3 {
                let request = peer.next_request()?;
                let reply = peer.correct_reply(&request)?;
                peer.log.push("(700 ms pass)");
                std::thread::sleep(Duration::from_millis(700));
                peer.send(&reply)?;
            }
            serve_correctly(peer)
        },
    );
    if supports.contains(&Flag::Timeout) {
        plan.args = vec!["--timeout".into(), "3".into()];
    }
    plan
}
