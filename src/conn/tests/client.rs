//! The client state machine against the server state machine, in memory.

use super::harness::*;
use crate::conn::{ClientConnection, ClientEvent, PeerError, ServerConfig, UsageError};
use crate::wire::{ErrorCode, FrameRepr, FrameType};

/// Move bytes between a client and a server until neither has output.
fn exchange(client: &mut ClientConnection, server: &mut Harness) -> Result<(), PeerError> {
    loop {
        let to_server = client.pending_output().to_vec();
        client.mark_sent(to_server.len()).unwrap();
        if !to_server.is_empty() {
            server.feed(&to_server);
        }
        let to_client = server.take_sent();
        if to_client.is_empty() && to_server.is_empty() {
            return Ok(());
        }
        client.handle_input(&to_client)?;
    }
}

fn events(client: &mut ClientConnection) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

#[test]
fn requests_are_matched_to_replies_in_order() {
    let mut server = Harness::new(ServerConfig::default());
    let mut client = ClientConnection::default();
    let text = client.send_text("straße").unwrap();
    let ping = client.ping(b"p").unwrap();
    let bytes = client.send_bytes(b"ok").unwrap();
    exchange(&mut client, &mut server).unwrap();
    let replies: Vec<_> = events(&mut client)
        .into_iter()
        .map(|event| match event {
            ClientEvent::Reply { request, frame } => (request, frame.frame_type, frame.data),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(replies[0], (text, FrameType::Text, "STRASSE".into()));
    assert_eq!(replies[1], (ping, FrameType::Pong, "p".into()));
    assert_eq!(replies[2], (bytes, FrameType::Bytes, "OK".into()));
    assert_eq!(client.waiting(), 0);
}

#[test]
fn non_fatal_errors_are_events_and_fatal_ones_are_errors() {
    let mut server = Harness::new(ServerConfig::default());
    let mut client = ClientConnection::default();
    let unknown = client
        .send(FrameRepr::new(FrameType::Unknown(9), ""))
        .unwrap();
    client
        .send(FrameRepr::new(FrameType::Text, &b"\xff"[..]))
        .unwrap();
    let error = exchange(&mut client, &mut server).unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::INVALID_UTF8));
    let events = events(&mut client);
    assert!(matches!(
        &events[0],
        ClientEvent::Error { request: Some(id), error } if *id == unknown && error.code() == Some(ErrorCode::UNKNOWN_TYPE)
    ));
    assert_eq!(
        client.handle_input(b"").unwrap_err(),
        error,
        "fatal stays fatal"
    );
    assert!(client.is_finished());
}

#[test]
fn bye_finishes_and_forbids_more_requests() {
    let mut server = Harness::new(ServerConfig::default());
    let mut client = ClientConnection::default();
    client.bye().unwrap();
    assert_eq!(client.send_text("late"), Err(UsageError::Closing));
    exchange(&mut client, &mut server).unwrap();
    assert!(client.is_finished());
}

#[test]
fn server_bye_on_shutdown_reports_unanswered_requests() {
    let mut server = Harness::new(ServerConfig::default());
    let mut client = ClientConnection::default();
    client.send_text("a").unwrap();
    exchange(&mut client, &mut server).unwrap();
    events(&mut client);
    server.conn.begin_shutdown(server.now);
    server.flush();
    let late = client.send_text("b").unwrap();
    client.handle_input(&server.take_sent()).unwrap();
    assert_eq!(
        events(&mut client),
        [ClientEvent::ServerBye {
            reason: "server shutting down".into(),
            unanswered: vec![late]
        }]
    );
}

#[test]
fn a_server_that_is_not_upcase_is_reported() {
    let mut client = ClientConnection::default();
    assert_eq!(
        client.handle_input(b"HTTP/1.1 400"),
        Err(PeerError::BadPreface)
    );
    let mut client = ClientConnection::default();
    assert_eq!(
        client.handle_input(b"\xc0UPCASE\x07"),
        Err(PeerError::UnsupportedVersion(7))
    );
}

#[test]
fn a_reply_of_the_wrong_type_is_reported() {
    let mut client = ClientConnection::default();
    client.send_text("x").unwrap();
    let mut input = crate::wire::PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Bytes, "X").to_bytes());
    assert_eq!(
        client.handle_input(&input),
        Err(PeerError::UnexpectedReply {
            expected: FrameType::Text,
            got: FrameType::Bytes
        })
    );
}

#[test]
fn server_frames_with_bad_flags_or_over_the_limit_fail_the_connection() {
    let with_flags = |frame_type: FrameType, flags: u8| {
        let mut frame = FrameRepr::new(frame_type, "");
        frame.flags = crate::wire::Flags(flags);
        let mut input = crate::wire::PREFACE.to_vec();
        input.extend_from_slice(&frame.to_bytes());
        input
    };
    for (frame_type, flags) in [
        (FrameType::Text, 0x02),
        (FrameType::Pong, 0x01),
        (FrameType::Bye, 0x01),
        (FrameType::Error, 0x01),
    ] {
        let mut client = ClientConnection::default();
        client.ping(b"").unwrap();
        client.send_text("x").unwrap();
        assert_eq!(
            client.handle_input(&with_flags(frame_type, flags)),
            Err(PeerError::BadFlags { frame_type, flags }),
            "{frame_type} with flags {flags:02x}"
        );
        assert!(client.handle_input(b"").is_err(), "nothing more is decoded");
    }
    let mut client = ClientConnection::new(4);
    client.send_text("x").unwrap();
    let mut input = crate::wire::PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Text, "ABCDE").to_bytes()[..42]);
    assert_eq!(
        client.handle_input(&input),
        Err(PeerError::FrameTooLarge { len: 5, limit: 4 })
    );
}

#[test]
fn busy_answers_no_request_and_unknown_codes_are_not_fatal() {
    let mut client = ClientConnection::default();
    let first = client.send_text("a").unwrap();
    let mut input = crate::wire::PREFACE.to_vec();
    let unknown = crate::wire::ErrorPayload::new(ErrorCode(4242), "new in version 1.1");
    input.extend_from_slice(&FrameRepr::new(FrameType::Error, unknown.to_bytes()).to_bytes());
    client.handle_input(&input).unwrap();
    assert_eq!(
        events(&mut client),
        [ClientEvent::Error {
            request: Some(first),
            error: PeerError::Server(unknown)
        }]
    );
    client.send_text("b").unwrap();
    let busy = crate::wire::ErrorPayload::new(ErrorCode::BUSY, "full");
    let frame = FrameRepr::new(FrameType::Error, busy.to_bytes()).to_bytes();
    assert_eq!(
        client.handle_input(&frame).unwrap_err().code(),
        Some(ErrorCode::BUSY)
    );
    assert!(matches!(
        &events(&mut client)[0],
        ClientEvent::Error { request: None, .. }
    ));
    assert_eq!(client.waiting(), 1, "BUSY answered no request");
}
