//! What the close log line says (`src/net`'s "closed (why): mode, …"): the
//! mode by the name SPEC.md §2.2 gives it, and a reason that tells every
//! way a connection ends from the others.

use crate::conn::{CloseReason, WireMode};
use crate::wire::ErrorCode;

#[test]
fn a_mode_reads_as_its_name_in_the_spec() {
    // SPEC.md §2.2: "`raw` and `framed` modes" (also the metrics' `mode` label).
    assert_eq!(WireMode::Raw.to_string(), "raw");
    assert_eq!(WireMode::Framed.to_string(), "framed");
}

#[test]
fn every_close_reason_reads_differently_and_a_fatal_one_names_its_code() {
    let mut reasons = vec![
        CloseReason::PeerBye,
        CloseReason::PeerClosed,
        CloseReason::PeerClosedMidFrame,
        CloseReason::IdleTimeout,
        CloseReason::SendTimeout,
        CloseReason::Shutdown,
        CloseReason::NotFramed,
        CloseReason::Busy,
        CloseReason::Evicted,
    ];
    reasons.extend(ErrorCode::ALL.iter().map(|&code| CloseReason::Fatal(code)));
    let texts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    for (reason, text) in reasons.iter().zip(&texts) {
        assert!(!text.trim().is_empty(), "{reason:?} says nothing");
        let same = texts.iter().filter(|other| *other == text).count();
        assert_eq!(same, 1, "{reason:?} reads like another reason: {text:?}");
    }
    for &code in ErrorCode::ALL {
        let name = code.name().expect("a code SPEC.md §6.2 defines has a name");
        let text = CloseReason::Fatal(code).to_string();
        assert!(text.contains(name), "{text:?} does not name {name}");
    }
}
