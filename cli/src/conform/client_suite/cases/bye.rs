//! SPEC.md §5.4: BYE, the client's and the server's (C15).

use upcase::wire::{Address, FrameRepr, FrameType};

use super::{
    ClientCase, Flag, answer_one_then_take_the_next, fault_then_close, prefaces,
    prefaces_then_serve,
};
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/5.4/ends-with-bye-and-nothing-after",
        description: "C15: at the end of stdin the client sends BYE, nothing after it, and exits 0 on the BYE answering it",
        needs: &[],
        plan: ends_with_bye,
    },
    ClientCase {
        name: "client/5.4/bye-reply-with-data",
        description: "C15: a BYE answer with data (a reason) still ends the session normally",
        needs: &[],
        plan: bye_with_data,
    },
    ClientCase {
        name: "client/5.4/server-bye-while-requests-wait",
        description: "C15, C13: a server BYE while a request waits leaves it unanswered: a failure, its line not printed",
        needs: &[],
        plan: server_bye_early,
    },
    ClientCase {
        name: "client/5.4/server-bye-after-every-reply",
        description: "C15: a server BYE once every request has its reply (it may cross the client's BYE) is a normal end",
        needs: &[],
        plan: server_bye_late,
    },
];

fn ends_with_bye(_: &[Flag]) -> Plan {
    Plan::new(
        &["a", "exit", "not sent"],
        &["A"],
        true,
        prefaces_then_serve,
    )
}

fn bye_with_data(_: &[Flag]) -> Plan {
    Plan::new(&["a"], &["A"], true, |peer: &mut Peer| {
        prefaces(peer)?;
        let request = peer.next_request()?;
        let reply = peer.correct_reply(&request)?;
        peer.send(&reply)?;
        peer.end_with_bye(b"goodbye")
    })
}

/// The server's own BYE (source = local, destination = peer, §5.5).
fn server_bye(peer: &Peer) -> FrameRepr {
    let mut bye = FrameRepr::new(FrameType::Bye, "server shutting down");
    bye.src = Address::from(peer.server_addr);
    bye.dst = Address::from(peer.client_addr);
    bye
}

fn server_bye_early(_: &[Flag]) -> Plan {
    Plan::new(&["a", "b"], &["A"], false, |peer: &mut Peer| {
        answer_one_then_take_the_next(peer)?;
        peer.send(&server_bye(peer))?;
        fault_then_close(peer)
    })
}

fn server_bye_late(_: &[Flag]) -> Plan {
    Plan::new(&["a"], &["A"], true, |peer: &mut Peer| {
        prefaces(peer)?;
        let request = peer.next_request()?;
        let reply = peer.correct_reply(&request)?;
        let mut both = reply.to_bytes().to_vec();
        let bye = server_bye(peer);
        both.extend_from_slice(&bye.to_bytes());
        peer.send_raw(&both, "the reply and a server BYE in one write")?;
        peer.expect_close()
    })
}
