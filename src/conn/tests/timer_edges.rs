//! The timers at their edges: which calls restart them (a raw byte
//! received restarts the idle timer, SPEC.md §9.1; a client's write of
//! nothing is no progress), and a wake-up before the linger has passed
//! does not close the connection early (§9.2).

use std::time::{Duration, Instant};

use super::harness::*;
use crate::conn::{CloseReason, ServerConfig, ServerEvent, ServerMode};
use crate::wire::FrameType;

#[test]
fn a_raw_byte_received_restarts_the_idle_timer_and_an_empty_read_does_not() {
    let idle = Duration::from_secs(60);
    let config = ServerConfig {
        mode: ServerMode::Raw,
        idle_timeout: idle,
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config);
    let start = pair.now;
    assert_eq!(pair.server.poll_timeout(), Some(start + idle));

    pair.now += Duration::from_secs(10);
    pair.feed(b"a");
    assert_eq!(pair.sent, b"A", "answered and written: no send timer runs");
    assert_eq!(
        pair.server.poll_timeout(),
        Some(start + Duration::from_secs(10) + idle)
    );

    pair.now += Duration::from_secs(10);
    pair.server.handle_input(pair.now, &[]).unwrap();
    assert_eq!(
        pair.server.poll_timeout(),
        Some(start + Duration::from_secs(10) + idle),
        "an empty read is not a byte received"
    );
}

#[test]
fn a_wake_up_before_the_linger_has_passed_does_not_close_the_connection() {
    let linger = Duration::from_secs(2);
    let config = ServerConfig {
        linger,
        ..ServerConfig::default()
    };
    let mut pair = Pair::new(config);
    pair.feed(&framed_input(&[frame(FrameType::Bye, false, b"")]));
    let ended = pair.now;
    assert_eq!(pair.server.poll_timeout(), Some(ended + linger));

    pair.server.handle_timeout(ended + linger / 2);
    assert!(!pair.server.is_closed(), "the linger still runs");
    assert_eq!(pair.server.poll_timeout(), Some(ended + linger));

    pair.server.handle_timeout(ended + linger);
    assert!(pair.server.is_closed());
    pair.drain_events();
    assert!(pair.events.contains(&ServerEvent::Closed {
        reason: CloseReason::PeerBye,
        unsent: 0
    }));
}

#[test]
fn a_client_marking_nothing_sent_does_not_restart_the_reply_timer() {
    let start = Instant::now();
    let timeout = Duration::from_secs(5);
    let mut client = super::client_with_one_request(start, timeout);
    let len = client.pending_output().len();
    client.mark_sent(start, len - 1).unwrap();
    assert_eq!(client.poll_timeout(), Some(start + timeout));

    let later = start + Duration::from_secs(1);
    client.mark_sent(later, 0).unwrap();
    assert_eq!(
        client.poll_timeout(),
        Some(start + timeout),
        "a write of nothing is no progress"
    );
    client.mark_sent(later, 1).unwrap();
    assert_eq!(
        client.poll_timeout(),
        Some(later + timeout),
        "a byte written is"
    );
}
