//! SPEC.md §2.4: the prefaces and the raw-server probe (C1–C3).

use upcase::wire::{FrameType, PREFACE};

use super::{ClientCase, Flag, prefaces_then_serve, serve_correctly};
use crate::conform::case::CheckResult;
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/2.4/preface-first",
        description: "C1: the client sends the preface before any frame, and gets its replies",
        needs: &[],
        plan: preface_first,
    },
    ClientCase {
        name: "client/2.4/server-preface-one-byte-per-write",
        description: "C2: the server's preface split over 8 writes is still the preface",
        needs: &[],
        plan: split_preface,
    },
    ClientCase {
        name: "client/2.4/wrong-magic",
        description: "C2, C8: a preface with the wrong magic fails the connection; the reply after it is not printed",
        needs: &[],
        plan: wrong_magic,
    },
    ClientCase {
        name: "client/2.4/wrong-version",
        description: "C2, C8: a preface of version 2 fails the connection",
        needs: &[],
        plan: wrong_version,
    },
    ClientCase {
        name: "client/2.4/raw-server-echo",
        description: "C3 (SHOULD): the probe tells a raw server, which echoes the client's bytes upper-cased, from a framed one",
        needs: &[],
        plan: raw_echo,
    },
];

fn preface_first(_: &[Flag]) -> Plan {
    Plan::new(
        &["hello", "straße"],
        &["HELLO", "STRASSE"],
        true,
        prefaces_then_serve,
    )
}

fn split_preface(_: &[Flag]) -> Plan {
    Plan::new(&["hello"], &["HELLO"], true, |peer: &mut Peer| {
        peer.expect_preface()?;
        peer.send_trickled(&PREFACE, "preface")?;
        serve_correctly(peer)
    })
}

/// A bad preface, then what a framed server would answer (PONG, HELLO,
/// BYE), so that a client that skips the check prints it and ends well;
/// a correct one closes, perhaps before it sent its request.
fn bad_preface(peer: &mut Peer, preface: [u8; 8]) -> CheckResult {
    peer.expect_preface()?;
    peer.send_raw(&preface, "a wrong preface")?;
    while let Some(frame) = peer.next_frame()? {
        let reply = match frame.frame_type {
            FrameType::Ping => peer.reply_to(&frame, FrameType::Pong, frame.data.clone()),
            FrameType::Bye => peer.reply_to(&frame, FrameType::Bye, bytes::Bytes::new()),
            _ => peer.reply_to(&frame, FrameType::Text, "HELLO"),
        };
        peer.send(&reply)?;
    }
    Ok(())
}

fn wrong_magic(_: &[Flag]) -> Plan {
    let mut preface = PREFACE;
    preface[6] = b'F';
    Plan::new(&["hello"], &[], false, move |peer: &mut Peer| {
        bad_preface(peer, preface)
    })
}

fn wrong_version(_: &[Flag]) -> Plan {
    let mut preface = PREFACE;
    preface[7] = 2;
    Plan::new(&["hello"], &[], false, move |peer: &mut Peer| {
        bad_preface(peer, preface)
    })
}

fn raw_echo(_: &[Flag]) -> Plan {
    let mut plan = Plan::new(&["hello"], &[], false, Peer::echo_raw);
    plan.should_only = true;
    plan
}
