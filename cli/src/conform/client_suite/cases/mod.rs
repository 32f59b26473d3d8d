//! The client cases, one file per group of SPEC.md sections, each case
//! citing the §2.5 checklist items it checks.

mod addresses;
mod bye;
mod errors;
mod faults;
mod fragments;
mod preface;
mod timeouts;
mod udp;

use std::time::Duration;

use upcase::wire::{FrameRepr, FrameType};

use super::{ClientCase, Flag, Peer};
use crate::conform::case::{CheckResult, Failure};

/// Every case, in section order.
pub fn all() -> Vec<&'static ClientCase> {
    let mut cases: Vec<&'static ClientCase> = [
        preface::CASES,
        faults::CASES,
        addresses::CASES,
        fragments::CASES,
        bye::CASES,
        errors::CASES,
        timeouts::CASES,
        udp::CASES,
    ]
    .iter()
    .flat_map(|group| group.iter())
    .collect();
    cases.sort_by_key(|case| section_key(case.section()));
    cases
}

fn section_key(section: &str) -> Vec<u32> {
    section.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

/// A correct server after the prefaces: every request answered, the BYE
/// too, then the client's close.
fn serve_correctly(peer: &mut Peer) -> CheckResult {
    serve_with(peer, |_, _, _| Ok(()))
}

/// [`serve_correctly`], with `hook` seeing each request and changing its
/// reply before it goes.
fn serve_with(
    peer: &mut Peer,
    mut hook: impl FnMut(&Peer, &FrameRepr, &mut FrameRepr) -> CheckResult,
) -> CheckResult {
    let mut message_open = false;
    loop {
        let request = peer.next_request()?;
        let bye = request.frame_type == FrameType::Bye;
        if bye && message_open {
            return Err(Failure::new(
                "C9: the client's last fragment kept MORE set: its line's message never ended before BYE",
            ));
        }
        message_open = request.flags.more();
        let mut reply = if bye {
            peer.reply_to(&request, FrameType::Bye, bytes::Bytes::new())
        } else {
            peer.correct_reply(&request)?
        };
        hook(peer, &request, &mut reply)?;
        peer.send(&reply)?;
        if bye {
            return peer.expect_close();
        }
    }
}

/// Both prefaces, then [`serve_correctly`].
fn prefaces_then_serve(peer: &mut Peer) -> CheckResult {
    prefaces(peer)?;
    serve_correctly(peer)
}

/// Both prefaces, the first request answered correctly; the second
/// request, read and not answered.
fn answer_one_then_take_the_next(peer: &mut Peer) -> Result<FrameRepr, Failure> {
    prefaces(peer)?;
    let first = peer.next_request()?;
    let reply = peer.correct_reply(&first)?;
    peer.send(&reply)?;
    peer.next_request()
}

/// The client's preface checked, the server's sent.
fn prefaces(peer: &mut Peer) -> CheckResult {
    peer.expect_preface()?;
    peer.send_preface()
}

/// The client's reply timeout made short with `--timeout` when it has one;
/// the case's deadline covers the contract's longest default (30 s) when not.
fn short_timeout(supports: &[Flag]) -> (Vec<String>, Duration) {
    if supports.contains(&Flag::Timeout) {
        (
            vec!["--timeout".into(), "1".into()],
            Duration::from_secs(15),
        )
    } else {
        (Vec::new(), Duration::from_secs(40))
    }
}

/// What a client must not do after a fault: anything but close.
fn fault_then_close(peer: &mut Peer) -> CheckResult {
    peer.expect_close()
        .map_err(|failure| failure.context("C8: after the fault, the client must close"))
}
