//! SPEC.md §6.5, §6.6, §9.1, §9.3: ERRORs a client receives (C11–C14).

use upcase::wire::{FrameRepr, FrameType};

use super::{
    ClientCase, Flag, answer_one_then_take_the_next, fault_then_close, prefaces, serve_correctly,
};
use crate::conform::case::CheckResult;
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/6.6/unknown-code-is-a-reply",
        description: "C11: ERROR 77 (unknown) and ERROR 6 (not fatal) answer their requests, are printed as ERROR <code>, and the session goes on",
        needs: &[],
        plan: unknown_code,
    },
    ClientCase {
        name: "client/6.6/unknown-code-then-close",
        description: "C11, C13: an unknown code is printed as a reply; the close after it fails the connection",
        needs: &[],
        plan: unknown_then_close,
    },
    ClientCase {
        name: "client/6.6/short-error",
        description: "C12, C8: an ERROR of 1 data byte fails the connection and answers nothing",
        needs: &[],
        plan: short_error,
    },
    ClientCase {
        name: "client/6.5/fatal-error-then-close",
        description: "C13: a fatal ERROR (INVALID_UTF8) and the close after it fail the connection",
        needs: &[],
        plan: fatal_then_close,
    },
    ClientCase {
        name: "client/9.1/idle-timeout-answers-no-request",
        description: "C14: ERROR(IDLE_TIMEOUT) ends the connection and is no request's reply",
        needs: &[],
        plan: idle_timeout,
    },
    ClientCase {
        name: "client/9.3/busy-answers-no-request",
        description: "C14: ERROR(BUSY) right after the preface ends the connection and is no request's reply",
        needs: &[],
        plan: busy,
    },
];

fn unknown_code(_: &[Flag]) -> Plan {
    let stdout = ["A", "ERROR 77", "ERROR 6", "D"];
    Plan::new(&["a", "b", "c", "d"], &stdout, true, |peer: &mut Peer| {
        prefaces(peer)?;
        let first = peer.next_request()?;
        let reply = peer.correct_reply(&first)?;
        peer.send(&reply)?;
        for code in [77, 6] {
            let request = peer.next_request()?;
            let error = peer.error(Some(&request), code, "a reply like any other");
            peer.send(&error)?;
        }
        serve_correctly(peer)
    })
}

/// Answer the first request with `error`, then close.
fn error_then_close(peer: &mut Peer, code: u16, answer_first: bool) -> CheckResult {
    let request = if answer_first {
        answer_one_then_take_the_next(peer)?
    } else {
        prefaces(peer)?;
        peer.next_request()?
    };
    let error = peer.error(Some(&request), code, "and the server closes");
    peer.send(&error)?;
    peer.close();
    fault_then_close(peer)
}

fn unknown_then_close(_: &[Flag]) -> Plan {
    Plan::new(&["a", "b"], &["ERROR 77"], false, |peer: &mut Peer| {
        error_then_close(peer, 77, false)
    })
}

fn fatal_then_close(_: &[Flag]) -> Plan {
    let mut plan = Plan::new(&["a", "b"], &["A"], false, |peer: &mut Peer| {
        error_then_close(peer, 4, true)
    });
    plan.may_also_print = Some("ERROR 4".into());
    plan
}

fn short_error(_: &[Flag]) -> Plan {
    Plan::new(&["hello"], &[], false, |peer: &mut Peer| {
        prefaces(peer)?;
        let request = peer.next_request()?;
        // A client that skips it would print the reply after it.
        let short = peer.reply_to(&request, FrameType::Error, &[0u8][..]);
        let reply = peer.correct_reply(&request)?;
        peer.send(&short)?;
        peer.send(&reply)?;
        fault_then_close(peer)
    })
}

fn idle_timeout(_: &[Flag]) -> Plan {
    Plan::new(&["a", "b"], &["A"], false, |peer: &mut Peer| {
        answer_one_then_take_the_next(peer)?;
        let error = peer.error(None, 8, "no complete frame within 1 s");
        peer.send(&error)?;
        peer.close();
        fault_then_close(peer)
    })
}

fn busy(_: &[Flag]) -> Plan {
    Plan::new(&["a"], &[], false, |peer: &mut Peer| {
        peer.expect_preface()?;
        peer.send_preface()?;
        let error: FrameRepr = peer.error(
            None,
            9,
            "server is at its connection limit of 1; try again later",
        );
        peer.send(&error)?;
        peer.close();
        fault_then_close(peer)
    })
}
