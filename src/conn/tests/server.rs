//! One test per rule of the server connection.

use std::time::Duration;

use super::harness::*;
use crate::conn::{CloseReason, RawCase, ServerConfig, ServerEvent, ServerMode, WireMode};
use crate::wire::{Address, ErrorCode, Flags, FrameRepr, FrameType, PREFACE};

fn framed(frames: &[FrameRepr]) -> Pair {
    let mut harness = Pair::new(ServerConfig::default());
    harness.feed(&framed_input(frames));
    harness
}

fn closed_reason(harness: &Pair) -> Option<CloseReason> {
    harness.events.iter().find_map(|event| match event {
        ServerEvent::Closed { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn preface_is_answered_with_ours_then_text_is_upper_cased() {
    let harness = framed(&[frame(FrameType::Text, false, "hello ß".as_bytes())]);
    assert_eq!(&harness.sent[..8], &PREFACE);
    let replies = harness.frames();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].frame_type, FrameType::Text);
    assert_eq!(&replies[0].data[..], b"HELLO SS");
    assert_eq!(harness.server.mode(), Some(WireMode::Framed));
}

#[test]
fn unspecified_addresses_are_filled_from_the_socket() {
    let replies = framed(&[frame(FrameType::Text, false, b"a")]).frames();
    assert_eq!(replies[0].src, local_address());
    assert_eq!(replies[0].dst, peer_address());
}

#[test]
fn explicit_addresses_are_swapped_each_independently() {
    let a: Address = "[2001:db8::1]:1234"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    let mut request = frame(FrameType::Ping, false, b"x");
    request.src = a;
    let replies = framed(&[request]).frames();
    assert_eq!(replies[0].dst, a, "source becomes destination");
    assert_eq!(
        replies[0].src,
        local_address(),
        "unspecified destination is filled"
    );
}

#[test]
fn fragmented_text_mirrors_more_and_carries_split_code_points() {
    // "é€" = c3 a9 e2 82 ac, cut inside both code points.
    let replies = framed(&[
        frame(FrameType::Text, true, b"a\xc3"),
        frame(FrameType::Text, true, b"\xa9\xe2"),
        frame(FrameType::Text, true, b"\x82"),
        frame(FrameType::Text, false, b"\xacz"),
    ])
    .frames();
    let data: Vec<&[u8]> = replies.iter().map(|f| &f.data[..]).collect();
    assert_eq!(data, [&b"A"[..], "É".as_bytes(), b"", "€Z".as_bytes()]);
    let more: Vec<bool> = replies.iter().map(|f| f.flags.more()).collect();
    assert_eq!(more, [true, true, true, false]);
}

#[test]
fn bytes_are_ascii_upper_cased_only() {
    let replies = framed(&[frame(FrameType::Bytes, false, b"a\xc3\xa9\xffz")]).frames();
    assert_eq!(replies[0].frame_type, FrameType::Bytes);
    assert_eq!(&replies[0].data[..], b"A\xc3\xa9\xffZ", "é is not touched");
}

#[test]
fn ping_between_fragments_gets_pong_and_the_message_goes_on() {
    let replies = framed(&[
        frame(FrameType::Text, true, b"ab\xc3"),
        frame(FrameType::Ping, false, b"\x00\xff"),
        frame(FrameType::Text, false, b"\xa9"),
    ])
    .frames();
    assert_eq!(replies[1].frame_type, FrameType::Pong);
    assert_eq!(&replies[1].data[..], b"\x00\xff");
    assert_eq!(&replies[2].data[..], "É".as_bytes());
}

#[test]
fn bye_is_answered_then_input_is_ignored_until_the_client_closes() {
    let mut harness = framed(&[
        frame(FrameType::Bye, false, b"done"),
        frame(FrameType::Text, false, b"ignored"),
    ]);
    let replies = harness.frames();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].frame_type, FrameType::Bye);
    assert!(replies[0].data.is_empty());
    assert!(
        !harness.server.is_closed(),
        "the server waits for the client to close first"
    );
    harness.eof();
    assert!(harness.server.is_closed());
    assert_eq!(closed_reason(&harness), Some(CloseReason::PeerBye));
}

#[test]
fn bye_linger_expires_and_the_server_closes() {
    let mut harness = framed(&[frame(FrameType::Bye, false, b"")]);
    harness.advance(Duration::from_millis(1999));
    assert!(!harness.server.is_closed());
    harness.advance(Duration::from_millis(1));
    assert!(harness.server.is_closed());
    assert_eq!(harness.server.poll_timeout(), None);
}

fn expect_error(frames: &[FrameRepr], code: ErrorCode, message: &str) -> Pair {
    let harness = framed(frames);
    let replies = harness.frames();
    let error = replies.last().unwrap();
    assert_eq!(error_code(error), code);
    assert_eq!(error_message(error), message);
    harness
}

#[test]
fn malformed_reserved_bit_is_fatal() {
    let mut bad = frame(FrameType::Text, false, b"a");
    bad.flags = Flags(0x02);
    let harness = expect_error(
        &[bad, frame(FrameType::Text, false, b"not answered")],
        ErrorCode::MALFORMED,
        "reserved flag bits set",
    );
    assert_eq!(harness.frames().len(), 1);
    assert_eq!(
        closed_reason(&harness),
        None,
        "still lingering for the client to close"
    );
}

#[test]
fn malformed_more_on_ping_and_on_unknown_types() {
    for frame_type in [FrameType::Ping, FrameType::Bye, FrameType::Unknown(0x7f)] {
        expect_error(
            &[frame(frame_type, true, b"")],
            ErrorCode::MALFORMED,
            "MORE set on a frame that is not TEXT or BYTES",
        );
    }
}

#[test]
fn unsupported_version_gets_our_preface_then_the_error() {
    let mut harness = Pair::new(ServerConfig::default());
    harness.feed(&[0xc0, b'U', b'P', b'C', b'A', b'S', b'E', 0x02]);
    let replies = harness.frames();
    assert_eq!(error_code(&replies[0]), ErrorCode::UNSUPPORTED_VERSION);
    assert_eq!(
        error_message(&replies[0]),
        "unsupported version 2; this server speaks version 1"
    );
    assert_eq!(replies[0].src, local_address());
    assert_eq!(replies[0].dst, peer_address());
}

#[test]
fn frame_too_large_is_decided_from_the_header() {
    let config = ServerConfig {
        max_data_len: 4,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    let big = frame(FrameType::Text, false, b"12345").to_bytes();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&big[..42]);
    harness.feed(&input);
    let replies = harness.frames();
    assert_eq!(error_code(&replies[0]), ErrorCode::FRAME_TOO_LARGE);
    assert_eq!(
        error_message(&replies[0]),
        "frame length 5 exceeds the limit of 4 bytes"
    );
}

#[test]
fn invalid_utf8_fails_fast_in_the_fragment_that_shows_it() {
    let harness = expect_error(
        &[
            frame(FrameType::Text, true, b"abc"),
            frame(FrameType::Text, true, b"d\xe2\x82"),
            frame(FrameType::Text, true, b"A"),
            frame(FrameType::Text, false, b"never answered"),
        ],
        ErrorCode::INVALID_UTF8,
        "invalid UTF-8 at byte 4 of the message",
    );
    assert_eq!(harness.frames().len(), 3);
}

#[test]
fn last_fragment_ending_inside_a_code_point_is_invalid() {
    expect_error(
        &[
            frame(FrameType::Text, true, b"ok"),
            frame(FrameType::Text, false, b"\xf0\x9f\x98"),
        ],
        ErrorCode::INVALID_UTF8,
        "invalid UTF-8 at byte 2 of the message",
    );
}

#[test]
fn unknown_and_unexpected_types_are_skipped_and_the_connection_goes_on() {
    let harness = framed(&[
        frame(FrameType::Unknown(0x42), false, b"?"),
        frame(FrameType::Pong, false, b""),
        frame(FrameType::Error, false, b"\x00\x01"),
        frame(FrameType::Text, false, b"still here"),
    ]);
    let replies = harness.frames();
    assert_eq!(error_code(&replies[0]), ErrorCode::UNKNOWN_TYPE);
    assert_eq!(error_message(&replies[0]), "unknown frame type 0x42");
    assert_eq!(error_code(&replies[1]), ErrorCode::UNEXPECTED_TYPE);
    assert_eq!(
        error_message(&replies[1]),
        "a client may not send PONG frames"
    );
    assert_eq!(
        error_message(&replies[2]),
        "a client may not send ERROR frames"
    );
    assert_eq!(&replies[3].data[..], b"STILL HERE");
}

#[test]
fn type_mismatch_inside_an_open_message_is_fatal() {
    expect_error(
        &[
            frame(FrameType::Text, true, b"a"),
            frame(FrameType::Bytes, false, b"b"),
        ],
        ErrorCode::TYPE_MISMATCH,
        "a BYTES frame arrived while a TEXT message is open",
    );
}

#[test]
fn idle_timeout_sends_the_error_and_ends() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    harness.feed(&framed_input(&[frame(FrameType::Ping, false, b"")]));
    harness.advance(Duration::from_secs(4));
    // Half a frame does not reset the timer: only complete frames do.
    harness.feed(&frame(FrameType::Ping, false, b"").to_bytes()[..10]);
    harness.advance(Duration::from_secs(1));
    let replies = harness.frames();
    assert_eq!(error_code(&replies[1]), ErrorCode::IDLE_TIMEOUT);
    assert_eq!(error_message(&replies[1]), "no complete frame within 5 s");
    harness.advance(Duration::from_secs(2));
    assert!(harness.server.is_closed());
    assert_eq!(
        closed_reason(&harness),
        Some(CloseReason::Fatal(ErrorCode::IDLE_TIMEOUT))
    );
}

#[test]
fn busy_connection_gets_preface_and_busy_when_framed() {
    let mut harness = Pair::new_busy(ServerConfig::default(), 3);
    harness.feed(&framed_input(&[frame(FrameType::Text, false, b"x")]));
    let replies = harness.frames();
    assert_eq!(replies.len(), 1);
    assert_eq!(error_code(&replies[0]), ErrorCode::BUSY);
    assert_eq!(
        error_message(&replies[0]),
        "server is at its connection limit of 3; try again later"
    );
}

#[test]
fn busy_connection_is_closed_without_reply_when_raw() {
    let mut harness = Pair::new_busy(ServerConfig::default(), 3);
    harness.feed(b"hello\n");
    harness.eof();
    assert!(harness.sent.is_empty());
    assert!(harness.server.is_closed());
    assert_eq!(closed_reason(&harness), Some(CloseReason::Busy));
}

#[test]
fn raw_mode_upper_cases_and_holds_partial_code_points() {
    let mut harness = Pair::new(ServerConfig::default());
    harness.feed(b"h\xc3");
    assert_eq!(
        harness.take_sent(),
        b"H",
        "output goes out at once; c3 is held"
    );
    harness.feed(b"\xa9\xff\n");
    assert_eq!(harness.take_sent(), b"\xc3\x89\xff\n");
    harness.feed(b"\xe2\x82");
    harness.eof();
    assert_eq!(
        harness.take_sent(),
        b"\xe2\x82",
        "held bytes are copied at end of input"
    );
    assert!(harness.server.is_closed());
}

#[test]
fn raw_mode_replays_bytes_read_while_sniffing() {
    let mut harness = Pair::new(ServerConfig::default());
    harness.feed(&[0xc0]);
    assert!(
        harness.sent.is_empty(),
        "a lone 0xC0 could still be a preface"
    );
    harness.feed(b"UPx");
    assert_eq!(harness.take_sent(), b"\xc0UPX");
    assert_eq!(harness.server.mode(), Some(WireMode::Raw));
}

#[test]
fn raw_ascii_option_is_bytes_upper() {
    let config = ServerConfig {
        raw_case: RawCase::Ascii,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    harness.feed("straße\n".as_bytes());
    assert_eq!(harness.take_sent(), "STRAßE\n".as_bytes());
}

#[test]
fn raw_only_mode_treats_a_preface_as_text() {
    let config = ServerConfig {
        mode: ServerMode::Raw,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    harness.feed(&PREFACE);
    assert_eq!(harness.take_sent(), b"\xc0UPCASE\x01");
}

#[test]
fn framed_only_mode_closes_a_connection_without_preface() {
    let config = ServerConfig {
        mode: ServerMode::Framed,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    harness.feed(b"hello");
    harness.eof();
    assert!(harness.sent.is_empty());
    assert_eq!(closed_reason(&harness), Some(CloseReason::NotFramed));
}

#[test]
fn eof_answers_every_complete_frame_then_closes() {
    let mut harness = Pair::new(ServerConfig::default());
    let mut input = framed_input(&[
        frame(FrameType::Text, false, b"one"),
        frame(FrameType::Text, false, b"two"),
    ]);
    input.extend_from_slice(&frame(FrameType::Text, false, b"three").to_bytes()[..20]);
    harness.feed(&input);
    harness.eof();
    assert_eq!(harness.frames().len(), 2);
    assert_eq!(
        closed_reason(&harness),
        Some(CloseReason::PeerClosedMidFrame)
    );
}

#[test]
fn shutdown_answers_what_was_received_then_says_bye() {
    let mut harness = Pair::new(ServerConfig::default());
    let input = framed_input(&[frame(FrameType::Text, false, b"in flight")]);
    // Received but not yet processed: the peer is not reading.
    let pending = harness.server.read_capacity();
    harness
        .server
        .handle_input(harness.now, &input[..pending.min(input.len())])
        .unwrap();
    harness.server.begin_shutdown(harness.now);
    harness.flush();
    let replies = harness.frames();
    assert_eq!(&replies[0].data[..], b"IN FLIGHT");
    assert_eq!(replies[1].frame_type, FrameType::Bye);
    assert_eq!(&replies[1].data[..], b"server shutting down");
    harness.eof();
    assert_eq!(closed_reason(&harness), Some(CloseReason::Shutdown));
}

#[test]
fn a_peer_that_never_reads_stops_the_server_reading() {
    let config = ServerConfig {
        max_pending_output: 1000,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    let request = frame(FrameType::Text, false, &[b'a'; 100]).to_bytes();
    harness.server.handle_input(harness.now, &PREFACE).unwrap();
    let mut accepted = 0;
    for _ in 0..1000 {
        let capacity = harness.server.read_capacity();
        if capacity == 0 {
            break;
        }
        let take = capacity.min(request.len());
        harness
            .server
            .handle_input(harness.now, &request[..take])
            .unwrap();
        accepted += take;
    }
    assert_eq!(harness.server.read_capacity(), 0, "backpressure engaged");
    let pending = harness.server.pending_output().len();
    assert!(pending < 1000 + 3 * 64 * 1024, "output bounded: {pending}");
    assert!(accepted < 64 * 1024 + 2 * 1000, "input bounded: {accepted}");
    let err = harness.server.handle_input(harness.now, b"x").unwrap_err();
    assert!(err.to_string().contains("read_capacity"));
    // Once the peer reads, the server reads again.
    harness.flush();
    assert!(harness.server.read_capacity() > 0);
}

#[test]
fn reported_messages_carry_the_data_for_verbose_logging() {
    let config = ServerConfig {
        report_messages: true,
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    harness.feed(b"hi\n");
    assert!(harness.events.contains(&ServerEvent::Message {
        frame_type: None,
        data: bytes::Bytes::from_static(b"hi\n"),
    }));
}

#[test]
fn idle_timeout_while_sniffing_returns_the_undecided_bytes_as_raw() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let mut harness = Pair::new(config);
    harness.feed(b"\xc0UP");
    assert!(harness.sent.is_empty());
    harness.advance(Duration::from_secs(1));
    assert_eq!(harness.take_sent(), b"\xc0UP");
    assert_eq!(
        closed_reason(&harness),
        None,
        "lingering for the client to close"
    );
    harness.eof();
    assert_eq!(closed_reason(&harness), Some(CloseReason::IdleTimeout));
}

#[test]
fn raw_connections_half_close_when_done_and_framed_ones_never_do() {
    let mut raw = Pair::new(ServerConfig::default());
    raw.feed(b"ab\xc3");
    assert!(!raw.server.wants_write_shutdown());
    raw.server.begin_shutdown(raw.now);
    assert_eq!(
        raw.server.pending_output(),
        b"\xc3",
        "the held byte is copied at the end"
    );
    assert!(!raw.server.wants_write_shutdown(), "output first");
    raw.flush();
    assert!(raw.server.wants_write_shutdown());
    assert_eq!(
        raw.server.mode(),
        Some(WireMode::Raw),
        "the mode outlives the end"
    );

    let mut framed = framed(&[frame(FrameType::Bye, false, b"")]);
    framed.flush();
    assert!(framed.server.has_ended());
    assert!(
        !framed.server.wants_write_shutdown(),
        "the framed client closes first"
    );
}

#[test]
fn busy_connection_ending_while_undecided_says_nothing() {
    let mut harness = Pair::new_busy(ServerConfig::default(), 3);
    harness.feed(b"\xc0U");
    harness.eof();
    assert!(harness.sent.is_empty(), "not echoed as raw");
    assert_eq!(closed_reason(&harness), Some(CloseReason::Busy));
}

#[test]
fn nothing_can_be_read_after_end_of_stream_even_while_lingering() {
    let mut harness = Pair::new(ServerConfig::default());
    let input = framed_input(&[frame(FrameType::Bye, false, b"")]);
    harness.server.handle_input(harness.now, &input).unwrap();
    assert!(harness.server.has_ended());
    assert!(
        harness.server.read_capacity() > 0,
        "lingering reads and discards"
    );
    harness.server.handle_eof(harness.now);
    assert!(
        !harness.server.pending_output().is_empty(),
        "the BYE is not sent yet"
    );
    assert!(!harness.server.is_closed());
    assert_eq!(
        harness.server.read_capacity(),
        0,
        "a read would only return 0 again"
    );
}

#[test]
fn stats_count_frames_by_type_in_and_by_reply_type_out() {
    let mut harness = framed(&[
        frame(FrameType::Text, false, b"a"),
        frame(FrameType::Bytes, false, b"b"),
        frame(FrameType::Ping, false, b"p"),
        frame(FrameType::Unknown(0x7f), false, b"?"),
        frame(FrameType::Pong, false, b""),
        frame(FrameType::Text, false, b"c"),
    ]);
    harness.server.begin_shutdown(harness.now);
    harness.flush();
    let replies = harness.frames();
    let stats = harness.server.stats();
    let (frames_in, frames_out) = (stats.frames_in_by_type, stats.frames_out_by_type);
    assert_eq!(frames_in.get(FrameType::Text), 2);
    assert_eq!(frames_in.get(FrameType::Bytes), 1);
    assert_eq!(frames_in.get(FrameType::Ping), 1);
    assert_eq!(frames_in.get(FrameType::Pong), 1);
    assert_eq!(frames_in.get(FrameType::Unknown(0)), 1);
    assert_eq!(frames_in.counts().iter().sum::<u64>(), stats.frames_in);
    // Out: what was actually sent, counted from the bytes on the wire.
    for frame_type in crate::conn::FrameCounts::TYPES {
        let on_wire = replies
            .iter()
            .filter(|reply| {
                reply.frame_type == frame_type
                    || matches!(
                        (reply.frame_type, frame_type),
                        (FrameType::Unknown(_), FrameType::Unknown(_))
                    )
            })
            .count() as u64;
        assert_eq!(frames_out.get(frame_type), on_wire, "{frame_type}");
    }
    assert_eq!(frames_out.get(FrameType::Error), 2);
    assert_eq!(frames_out.get(FrameType::Bye), 1);
    assert_eq!(frames_out.counts().iter().sum::<u64>(), stats.frames_out);
}

#[test]
fn a_busy_connections_wait_for_its_preface_is_one_deadline_from_accept() {
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    };
    let mut harness = Pair::new_busy(config, 3);
    let deadline = harness.server.poll_timeout().unwrap();
    // A byte of the preface every second does not push the deadline back.
    for byte in &PREFACE[..3] {
        harness.advance(Duration::from_millis(600));
        harness.feed(&[*byte]);
        assert_eq!(harness.server.poll_timeout(), Some(deadline));
    }
    harness.advance(Duration::from_millis(300));
    assert!(
        harness.server.has_ended(),
        "the deadline from accept passed"
    );
    assert!(harness.sent.is_empty(), "undecided: closed without reply");
}

#[test]
fn an_evicted_framed_connection_gets_busy_then_closes() {
    let mut harness = framed(&[frame(FrameType::Text, false, b"a")]);
    harness.flush();
    harness.take_sent();
    harness.server.evict(harness.now);
    harness.flush();
    let replies = decode_all(&harness.take_sent());
    assert_eq!(replies.len(), 1);
    assert_eq!(error_code(&replies[0]), ErrorCode::BUSY);
    assert_eq!(
        error_message(&replies[0]),
        "server full: evicted the longest-idle connection; reconnect later"
    );
    assert!(harness.server.has_ended());
}

#[test]
fn an_evicted_raw_connection_flushes_what_it_received_and_ends() {
    let mut harness = Pair::new(ServerConfig::default());
    harness.feed(b"ab\xc3");
    harness.server.evict(harness.now);
    harness.flush();
    assert_eq!(harness.sent, b"AB\xc3", "the held byte is copied too");
    harness.eof();
    assert_eq!(closed_reason(&harness), Some(CloseReason::Evicted));
}

#[test]
fn an_evicted_undetected_connection_closes_without_reply() {
    let mut harness = Pair::new(ServerConfig::default());
    harness.feed(&PREFACE[..4]);
    harness.server.evict(harness.now);
    harness.eof();
    assert!(harness.sent.is_empty());
    assert_eq!(closed_reason(&harness), Some(CloseReason::Evicted));
}
