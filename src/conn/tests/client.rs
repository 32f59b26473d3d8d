//! The client state machine against the server state machine, in memory.

use std::time::Duration;

use super::harness::*;
use crate::conn::{
    ClientConfig, ClientConnection, ClientEvent, ClientUsageError, PeerError, ServerConfig,
};
use crate::wire::{ErrorCode, ErrorPayload, Flags, FrameRepr, FrameType, PREFACE};

fn client() -> ClientConnection {
    ClientConnection::new(std::time::Instant::now(), ClientConfig::default())
}

fn events(client: &mut ClientConnection) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

/// The server's preface, then `frames`.
fn server_bytes(frames: &[FrameRepr]) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    for frame in frames {
        out.extend_from_slice(&frame.to_bytes());
    }
    out
}

#[test]
fn requests_are_matched_to_replies_in_order() {
    let mut pair = Pair::new(ServerConfig::default());
    let text = pair.client.send_text("straße").unwrap();
    let ping = pair.client.ping(b"p").unwrap();
    let bytes = pair.client.send_bytes(b"ok").unwrap();
    pair.exchange();
    let replies: Vec<_> = pair
        .take_client_events()
        .into_iter()
        .map(|event| match event {
            ClientEvent::Reply {
                request,
                frame,
                last: true,
            } => (request, frame.frame_type, frame.data),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(replies[0], (text, FrameType::Text, "STRASSE".into()));
    assert_eq!(replies[1], (ping, FrameType::Pong, "p".into()));
    assert_eq!(replies[2], (bytes, FrameType::Bytes, "OK".into()));
    assert_eq!(pair.client.waiting(), 0);
}

#[test]
fn a_fatal_error_is_reported_once_as_the_connection_lost() {
    let mut pair = Pair::new(ServerConfig::default());
    let unknown = pair
        .client
        .send(FrameRepr::new(FrameType::Unknown(9), ""))
        .unwrap();
    let bad = pair
        .client
        .send(FrameRepr::new(FrameType::Text, &b"\xff"[..]))
        .unwrap();
    let after = pair.client.send_text("never answered").unwrap();
    pair.exchange();
    let events = pair.take_client_events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(
        &events[0],
        ClientEvent::Error { request, error } if *request == unknown && error.code == ErrorCode::UNKNOWN_TYPE
    ));
    assert!(matches!(
        &events[1],
        ClientEvent::ConnectionLost { error, request: Some(request), unanswered }
            if error.code() == Some(ErrorCode::INVALID_UTF8) && *request == bad && *unanswered == [after]
    ));
    assert!(pair.client.is_closed());
    pair.client.handle_input(pair.now, b"more bytes");
    pair.client.handle_eof(pair.now);
    assert_eq!(pair.client.poll_event(), None, "reported once");
    assert_eq!(
        pair.client.send_text("late"),
        Err(ClientUsageError::Closing)
    );
}

#[test]
fn bye_closes_and_forbids_more_requests() {
    let mut pair = Pair::new(ServerConfig::default());
    pair.client.bye().unwrap();
    assert_eq!(
        pair.client.send_text("late"),
        Err(ClientUsageError::Closing)
    );
    pair.exchange();
    assert!(
        matches!(&pair.take_client_events()[..], [ClientEvent::Reply { frame, last: true, .. }] if frame.frame_type == FrameType::Bye)
    );
    assert!(pair.client.is_closed());
    assert_eq!(pair.client.poll_timeout(), None);
}

#[test]
fn server_bye_on_shutdown_reports_unanswered_requests() {
    let mut pair = Pair::new(ServerConfig::default());
    pair.client.send_text("a").unwrap();
    pair.exchange();
    pair.take_client_events();
    pair.server.begin_shutdown(pair.now);
    pair.flush();
    let late = pair.client.send_text("b").unwrap();
    pair.exchange();
    assert_eq!(
        pair.take_client_events(),
        [ClientEvent::ServerBye {
            reason: "server shutting down".into(),
            unanswered: vec![late]
        }]
    );
    assert!(pair.client.is_closed());
}

#[test]
fn a_server_that_is_not_upcase_is_reported() {
    for (input, expected) in [
        (&b"HTTP/1.1 400"[..], PeerError::BadPreface),
        (b"\xc0UPCASE\x07", PeerError::UnsupportedVersion(7)),
    ] {
        let mut client = client();
        client.handle_input(std::time::Instant::now(), input);
        assert!(matches!(
            &events(&mut client)[..],
            [ClientEvent::ConnectionLost { error, .. }] if *error == expected
        ));
    }
}

#[test]
fn a_reply_of_the_wrong_type_is_reported_from_its_header() {
    let mut client = client();
    client.send_text("x").unwrap();
    let reply = server_bytes(&[FrameRepr::new(FrameType::Bytes, "X")]);
    // The header alone decides: no need to wait for the data.
    client.handle_input(std::time::Instant::now(), &reply[..PREFACE.len() + 42]);
    assert!(matches!(
        &events(&mut client)[..],
        [ClientEvent::ConnectionLost {
            error: PeerError::UnexpectedReply {
                expected: FrameType::Text,
                got: FrameType::Bytes
            },
            ..
        }]
    ));
}

#[test]
fn a_reply_whose_more_flag_is_not_its_requests_is_reported() {
    let mut client = client();
    let id = client.send_text("x").unwrap();
    let mut reply = FrameRepr::new(FrameType::Text, "X");
    reply.flags = Flags::more_if(true);
    client.handle_input(std::time::Instant::now(), &server_bytes(&[reply]));
    assert!(matches!(
        &events(&mut client)[..],
        [ClientEvent::ConnectionLost { error: PeerError::MoreMismatch { request_more: false }, unanswered, .. }] if *unanswered == [id]
    ));
}

#[test]
fn server_frames_with_bad_flags_or_over_the_limit_fail_the_connection() {
    let with_flags = |frame_type: FrameType, flags: u8| {
        let mut frame = FrameRepr::new(frame_type, "");
        frame.flags = Flags(flags);
        server_bytes(&[frame])
    };
    for (frame_type, flags) in [
        (FrameType::Text, 0x02),
        (FrameType::Pong, 0x01),
        (FrameType::Bye, 0x01),
        (FrameType::Error, 0x01),
    ] {
        let mut client = client();
        client.ping(b"").unwrap();
        client.send_text("x").unwrap();
        client.handle_input(std::time::Instant::now(), &with_flags(frame_type, flags));
        assert!(
            matches!(
                &events(&mut client)[..],
                [ClientEvent::ConnectionLost { error: PeerError::BadFlags { frame_type: t, flags: f }, .. }]
                    if *t == frame_type && *f == flags
            ),
            "{frame_type} with flags {flags:02x}"
        );
        client.handle_input(std::time::Instant::now(), &with_flags(FrameType::Pong, 0));
        assert_eq!(client.poll_event(), None, "nothing more is decoded");
    }
    let config = ClientConfig {
        max_data_len: 4,
        ..ClientConfig::default()
    };
    let mut client = ClientConnection::new(std::time::Instant::now(), config);
    client.ping(b"x").unwrap();
    let input = server_bytes(&[FrameRepr::new(FrameType::Error, "ABCDE")]);
    client.handle_input(std::time::Instant::now(), &input[..PREFACE.len() + 42]);
    assert!(matches!(
        &events(&mut client)[..],
        [ClientEvent::ConnectionLost {
            error: PeerError::FrameTooLarge {
                frame_type: FrameType::Error,
                len: 5,
                limit: 4
            },
            ..
        }]
    ));
}

#[test]
fn busy_answers_no_request_and_unknown_codes_are_not_fatal() {
    let now = std::time::Instant::now();
    let mut client = client();
    let first = client.send_text("a").unwrap();
    let unknown = ErrorPayload::new(ErrorCode(4242), "new in version 1.1");
    client.handle_input(
        now,
        &server_bytes(&[FrameRepr::new(FrameType::Error, unknown.to_bytes())]),
    );
    assert_eq!(
        events(&mut client),
        [ClientEvent::Error {
            request: first,
            error: unknown
        }]
    );
    let second = client.send_text("b").unwrap();
    let busy = ErrorPayload::new(ErrorCode::BUSY, "full");
    client.handle_input(
        now,
        &FrameRepr::new(FrameType::Error, busy.to_bytes()).to_bytes(),
    );
    assert_eq!(
        events(&mut client),
        [ClientEvent::ConnectionLost {
            error: PeerError::Server(busy),
            request: None,
            unanswered: vec![second],
        }],
        "BUSY answered no request"
    );
}

/// SPEC.md §3.4: a TEXT request of N bytes may get a reply of 3 × (N + 3),
/// whatever the client's own limit.
#[test]
fn a_text_reply_three_times_the_request_is_accepted_over_the_configured_limit() {
    let config = ClientConfig {
        max_data_len: 16,
        max_fragment_len: 1000,
        ..ClientConfig::default()
    };
    let mut pair = Pair::new(ServerConfig::default()).with_client(config);
    let text = "ΐ".repeat(100);
    pair.client.send_text(&text).unwrap();
    pair.exchange();
    let events = pair.take_client_events();
    assert!(
        matches!(&events[..], [ClientEvent::Reply { frame, last: true, .. }] if frame.data.len() == 600 && frame.data == text.to_uppercase().as_bytes()),
        "{events:?}"
    );
}

#[test]
fn a_reply_longer_than_its_request_allows_is_rejected_from_its_header() {
    let mut client = client();
    client.send_bytes(b"abc").unwrap();
    let reply = server_bytes(&[FrameRepr::new(FrameType::Bytes, "ABCD")]);
    client.handle_input(std::time::Instant::now(), &reply[..PREFACE.len() + 42]);
    assert!(matches!(
        &events(&mut client)[..],
        [ClientEvent::ConnectionLost {
            error: PeerError::FrameTooLarge {
                frame_type: FrameType::Bytes,
                len: 4,
                limit: 3
            },
            ..
        }]
    ));
}

#[test]
fn long_text_goes_as_fragments_cut_at_code_points_and_each_gets_a_reply() {
    let config = ClientConfig {
        max_fragment_len: 5,
        ..ClientConfig::default()
    };
    let mut pair = Pair::new(ServerConfig::default()).with_client(config);
    let id = pair.client.send_text("aaaaéé€b").unwrap();
    let sent = decode_all(&pair.client.pending_output()[PREFACE.len()..]);
    let fragments: Vec<(&[u8], bool)> =
        sent.iter().map(|f| (&f.data[..], f.flags.more())).collect();
    assert_eq!(
        fragments,
        [
            ("aaaa".as_bytes(), true),
            ("éé".as_bytes(), true),
            ("€b".as_bytes(), false)
        ]
    );
    pair.exchange();
    let replies: Vec<(String, bool)> = pair
        .take_client_events()
        .into_iter()
        .map(|event| match event {
            ClientEvent::Reply {
                request,
                frame,
                last,
            } => {
                assert_eq!(request, id);
                (String::from_utf8(frame.data.to_vec()).unwrap(), last)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        replies,
        [
            ("AAAA".into(), false),
            ("ÉÉ".into(), false),
            ("€B".into(), true)
        ]
    );
    assert_eq!(pair.client.waiting(), 0);
}

#[test]
fn empty_text_and_bytes_are_one_empty_frame() {
    let mut client = client();
    client.send_text("").unwrap();
    client.send_bytes(b"").unwrap();
    let sent = decode_all(&client.pending_output()[PREFACE.len()..]);
    assert_eq!(
        sent,
        [
            FrameRepr::new(FrameType::Text, ""),
            FrameRepr::new(FrameType::Bytes, "")
        ]
    );
}

#[test]
fn requests_beyond_the_window_are_held_until_replies_come() {
    let config = ClientConfig {
        max_fragment_len: 4,
        max_in_flight: 8,
        ..ClientConfig::default()
    };
    let mut pair = Pair::new(ServerConfig::default()).with_client(config);
    pair.client.send_bytes(b"0123456789ab").unwrap();
    let sent = decode_all(&pair.client.pending_output()[PREFACE.len()..]);
    assert_eq!(sent.len(), 2, "8 bytes in flight, the third fragment held");
    assert!(pair.client.has_held_requests());
    pair.exchange();
    assert!(!pair.client.has_held_requests());
    let data: Vec<u8> = pair
        .take_client_events()
        .into_iter()
        .flat_map(|event| match event {
            ClientEvent::Reply { frame, .. } => frame.data.to_vec(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(data, b"0123456789AB");
}

#[test]
fn a_silent_server_times_out_once_and_an_idle_client_has_no_timer() {
    let start = std::time::Instant::now();
    let config = ClientConfig {
        reply_timeout: Duration::from_secs(5),
        ..ClientConfig::default()
    };
    let mut client = ClientConnection::new(start, config);
    let id = client.send_text("x").unwrap();
    let len = client.pending_output().len();
    let sent_at = start + Duration::from_secs(1);
    client.mark_sent(sent_at, len).unwrap();
    assert_eq!(
        client.poll_timeout(),
        Some(sent_at + Duration::from_secs(5))
    );
    client.handle_timeout(sent_at + Duration::from_secs(4));
    assert_eq!(client.poll_event(), None, "not due yet");
    client.handle_timeout(sent_at + Duration::from_secs(5));
    assert_eq!(
        events(&mut client),
        [ClientEvent::ConnectionLost {
            error: PeerError::Timeout {
                timeout: Duration::from_secs(5)
            },
            request: None,
            unanswered: vec![id],
        }]
    );
    assert_eq!(client.poll_timeout(), None);

    let mut idle = ClientConnection::new(start, ClientConfig::default());
    idle.handle_input(start, &PREFACE);
    assert_eq!(idle.poll_timeout(), None, "nothing is due");
}

#[test]
fn end_of_stream_before_the_replies_loses_the_connection() {
    let mut client = client();
    let id = client.ping(b"p").unwrap();
    client.handle_input(std::time::Instant::now(), &PREFACE);
    client.handle_eof(std::time::Instant::now());
    assert_eq!(
        events(&mut client),
        [ClientEvent::ConnectionLost {
            error: PeerError::Closed,
            request: None,
            unanswered: vec![id],
        }]
    );
}

#[test]
fn a_fragment_limit_shorter_than_a_code_point_cuts_inside_it() {
    let config = ClientConfig {
        max_fragment_len: 1,
        ..ClientConfig::default()
    };
    let mut pair = Pair::new(ServerConfig::default()).with_client(config);
    pair.client.send_text("中ß").unwrap();
    let sent = decode_all(&pair.client.pending_output()[PREFACE.len()..]);
    assert_eq!(sent.len(), 5, "one byte per fragment");
    assert!(sent.iter().all(|frame| frame.data.len() == 1));
    pair.exchange();
    let joined: Vec<u8> = pair
        .take_client_events()
        .into_iter()
        .flat_map(|event| match event {
            ClientEvent::Reply { frame, .. } => frame.data.to_vec(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(joined, "中SS".as_bytes());
}
