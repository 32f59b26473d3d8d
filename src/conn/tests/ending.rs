//! How a connection ends: the last output is always written, the linger
//! bounds only the wait after it (SPEC.md §9.2), the idle timer does not
//! run while the server has stopped reading because the client does not
//! read its replies (§9.1), and output of which the client takes nothing
//! for the send timeout closes the connection in every phase (§9.4).

use std::time::Duration;

use super::harness::*;
use crate::conn::{CloseReason, ServerConfig, ServerEvent};
use crate::wire::{ErrorCode, FrameType, PREFACE};

fn linger_zero() -> ServerConfig {
    ServerConfig {
        linger: Duration::ZERO,
        ..ServerConfig::default()
    }
}

/// Drive `conn` the way a shell does after input: first fire any timeout
/// that is due (a shell checks its deadlines before it writes), then write
/// everything pending. Returns the bytes written.
fn timeouts_then_write(harness: &mut Pair) -> Vec<u8> {
    if harness
        .server
        .poll_timeout()
        .is_some_and(|at| at <= harness.now)
    {
        harness.server.handle_timeout(harness.now);
    }
    harness.drain_events();
    assert!(
        !harness.server.is_closed(),
        "closed before its last output was written"
    );
    let before = harness.sent.len();
    harness.flush();
    harness.sent[before..].to_vec()
}

fn closed(harness: &Pair) -> Option<(CloseReason, usize)> {
    harness.events.iter().find_map(|event| match event {
        ServerEvent::Closed { reason, unsent } => Some((*reason, *unsent)),
        _ => None,
    })
}

/// After the output is written, a zero linger means "close at once".
fn assert_closes_at_once_with_nothing_unsent(harness: &mut Pair, reason: CloseReason) {
    assert_eq!(harness.server.poll_timeout(), Some(harness.now));
    harness.server.handle_timeout(harness.now);
    harness.drain_events();
    assert!(harness.server.is_closed());
    assert_eq!(closed(harness), Some((reason, 0)));
}

#[test]
fn linger_zero_still_writes_the_bye_answering_a_client_bye() {
    let mut harness = Pair::new(linger_zero());
    let input = framed_input(&[frame(FrameType::Bye, false, b"")]);
    harness.server.handle_input(harness.now, &input).unwrap();
    let written = timeouts_then_write(&mut harness);
    let replies = decode_all(&written[PREFACE.len()..]);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].frame_type, FrameType::Bye);
    assert_closes_at_once_with_nothing_unsent(&mut harness, CloseReason::PeerBye);
}

#[test]
fn linger_zero_still_writes_a_fatal_error() {
    let mut harness = Pair::new(linger_zero());
    let mut bad = frame(FrameType::Text, false, b"hi");
    bad.flags = crate::wire::Flags(0x02);
    harness
        .server
        .handle_input(harness.now, &framed_input(&[bad]))
        .unwrap();
    let written = timeouts_then_write(&mut harness);
    let replies = decode_all(&written[PREFACE.len()..]);
    assert_eq!(replies.len(), 1);
    assert_eq!(error_code(&replies[0]), ErrorCode::MALFORMED);
    assert_closes_at_once_with_nothing_unsent(
        &mut harness,
        CloseReason::Fatal(ErrorCode::MALFORMED),
    );
}

#[test]
fn linger_zero_still_writes_preface_and_error_for_a_bad_version() {
    let mut harness = Pair::new(linger_zero());
    harness
        .server
        .handle_input(harness.now, b"\xc0UPCASE\x02")
        .unwrap();
    let written = timeouts_then_write(&mut harness);
    assert_eq!(&written[..PREFACE.len()], &PREFACE, "our preface first");
    let replies = decode_all(&written[PREFACE.len()..]);
    assert_eq!(error_code(&replies[0]), ErrorCode::UNSUPPORTED_VERSION);
    assert_closes_at_once_with_nothing_unsent(
        &mut harness,
        CloseReason::Fatal(ErrorCode::UNSUPPORTED_VERSION),
    );
}

#[test]
fn linger_zero_still_writes_held_raw_bytes_at_end_of_input() {
    let mut harness = Pair::new(linger_zero());
    harness.feed("a€".as_bytes().split_last().unwrap().1);
    assert_eq!(harness.take_sent(), b"A", "e2 82 held");
    harness.server.handle_eof(harness.now);
    let written = timeouts_then_write(&mut harness);
    assert_eq!(written, b"\xe2\x82", "held bytes copied at end of input");
    // The client closed first, so nothing is left to wait for.
    harness.drain_events();
    assert!(harness.server.is_closed());
    assert_eq!(closed(&harness), Some((CloseReason::PeerClosed, 0)));
}

#[test]
fn the_linger_starts_once_the_last_output_is_written() {
    let config = ServerConfig {
        linger: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    let input = framed_input(&[frame(FrameType::Bye, false, b"")]);
    harness.server.handle_input(harness.now, &input).unwrap();
    // The client takes 10 s to read the BYE: longer than the linger.
    harness.now += Duration::from_secs(10);
    let written = timeouts_then_write(&mut harness);
    assert_eq!(decode_all(&written[PREFACE.len()..]).len(), 1);
    harness.advance(Duration::from_millis(1999));
    assert!(
        !harness.server.is_closed(),
        "the linger runs from the write"
    );
    harness.advance(Duration::from_millis(1));
    assert_eq!(closed(&harness), Some((CloseReason::PeerBye, 0)));
}

/// The send timeout is due now: the connection closes with `pending` bytes
/// unsent and nothing added to them (no ERROR the client would not read).
fn assert_dropped_now_for_the_send_timeout(harness: &mut Pair, pending: usize) {
    assert_eq!(harness.server.poll_timeout(), Some(harness.now));
    harness.server.handle_timeout(harness.now);
    harness.drain_events();
    assert!(harness.server.is_closed());
    assert_eq!(closed(harness), Some((CloseReason::SendTimeout, pending)));
    assert!(
        !harness
            .events
            .iter()
            .any(|event| matches!(event, ServerEvent::ProtocolError(_))),
        "no ERROR for a client that does not read"
    );
}

/// A client sends BYE and never reads the reply: the connection closes for
/// the send timeout `after` later, not a moment before.
fn assert_an_unread_bye_is_dropped_after(config: ServerConfig, after: Duration) {
    let mut harness = Pair::new(config);
    let input = framed_input(&[frame(FrameType::Bye, false, b"")]);
    harness.server.handle_input(harness.now, &input).unwrap();
    let pending = harness.server.pending_output().len();
    harness.now += after - Duration::from_millis(1);
    harness.server.handle_timeout(harness.now);
    assert!(!harness.server.is_closed());
    harness.now += Duration::from_millis(1);
    assert_dropped_now_for_the_send_timeout(&mut harness, pending);
}

#[test]
fn a_client_that_never_reads_the_last_frame_is_closed_after_the_send_timeout() {
    let config = ServerConfig {
        send_timeout: Duration::from_secs(5),
        linger: Duration::ZERO,
        ..ServerConfig::default()
    };
    assert_an_unread_bye_is_dropped_after(config, Duration::from_secs(5));
}

#[test]
fn the_send_timeout_is_never_longer_than_the_idle_timeout() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(5),
        send_timeout: Duration::from_secs(30),
        linger: Duration::ZERO,
        ..ServerConfig::default()
    };
    assert_an_unread_bye_is_dropped_after(config, Duration::from_secs(5));
}

/// A connection that still reads, with a reply pending below the output
/// bound and a send timeout of 2 s, far shorter than its idle timeout.
fn reading_with_a_reply_pending() -> Pair {
    let config = ServerConfig {
        send_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    let input = framed_input(&[frame(FrameType::Text, false, b"unread")]);
    harness.server.handle_input(harness.now, &input).unwrap();
    assert!(harness.server.read_capacity() > 0, "still reading");
    harness
}

#[test]
fn a_client_that_sends_but_takes_no_output_is_closed_while_the_server_reads() {
    let mut harness = reading_with_a_reply_pending();
    // New requests restart the idle timer, not the write timer.
    harness.now += Duration::from_secs(1);
    let more = frame(FrameType::Ping, false, b"p").to_bytes();
    harness.server.handle_input(harness.now, &more).unwrap();
    let pending = harness.server.pending_output().len();
    harness.now += Duration::from_secs(1);
    assert_dropped_now_for_the_send_timeout(&mut harness, pending);
}

#[test]
fn each_byte_the_client_takes_restarts_the_send_timeout() {
    let mut harness = reading_with_a_reply_pending();
    let last_frame = harness.now;
    harness.now += Duration::from_millis(1500);
    harness.server.mark_sent(harness.now, 1).unwrap();
    assert_eq!(
        harness.server.poll_timeout(),
        Some(harness.now + Duration::from_secs(2)),
        "two seconds from the byte taken"
    );
    harness.now += Duration::from_millis(1999);
    harness.server.handle_timeout(harness.now);
    assert!(!harness.server.is_closed());
    harness.flush();
    assert_eq!(
        harness.server.poll_timeout(),
        Some(last_frame + ServerConfig::default().idle_timeout),
        "nothing pending: only the idle timer, from the last frame"
    );
}

/// A server with a small output bound that has one large reply queued:
/// it stops reading until the client has taken most of it.
fn paused_on_a_large_reply(idle_timeout: Duration) -> Pair {
    let config = ServerConfig {
        idle_timeout,
        send_timeout: idle_timeout,
        max_pending_output: 1000,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    let input = framed_input(&[frame(FrameType::Text, false, &[b'a'; 10_000])]);
    harness.server.handle_input(harness.now, &input).unwrap();
    assert_eq!(harness.server.read_capacity(), 0, "stopped reading");
    harness
}

#[test]
fn the_idle_timer_does_not_run_while_a_slow_client_reads_its_replies() {
    let mut harness = paused_on_a_large_reply(Duration::from_secs(5));
    // The client takes 1,000 bytes every 2 s: 20 s for the reply, four idle
    // timeouts, but it always makes progress within one.
    while harness.server.read_capacity() == 0 {
        harness.now += Duration::from_secs(2);
        if harness
            .server
            .poll_timeout()
            .is_some_and(|at| at <= harness.now)
        {
            harness.server.handle_timeout(harness.now);
        }
        let take = harness.server.pending_output().len().min(1000);
        let taken = harness.server.pending_output()[..take].to_vec();
        harness.server.mark_sent(harness.now, take).unwrap();
        harness.sent.extend_from_slice(&taken);
        harness.drain_events();
        assert!(!harness.server.is_closed(), "{:?}", harness.events);
    }
    harness.flush();
    let replies = harness.frames();
    assert_eq!(replies.len(), 1, "only the reply, no IDLE_TIMEOUT");
    assert_eq!(&replies[0].data[..], &[b'A'; 10_000][..]);
    // Reading again: the idle timer restarts now.
    harness.advance(Duration::from_millis(4999));
    assert_eq!(harness.frames().len(), 1);
    harness.advance(Duration::from_millis(1));
    assert_eq!(
        error_code(&harness.frames()[1]),
        ErrorCode::IDLE_TIMEOUT,
        "the idle timer runs again once the server reads"
    );
}

#[test]
fn a_client_that_stops_reading_is_closed_without_more_output() {
    let mut harness = paused_on_a_large_reply(Duration::from_secs(5));
    let pending = harness.server.pending_output().len();
    harness.now += Duration::from_secs(5);
    // Nothing appended: no IDLE_TIMEOUT behind a reply the client does not read.
    assert_dropped_now_for_the_send_timeout(&mut harness, pending);
}
