//! The raw-server probe (SPEC.md §2.4, checklist C3) and the reply checks
//! of §2.4 a correct server never trips (checklist C7).

use std::time::Instant;

use bytes::Bytes;

use crate::conn::{ClientConfig, ClientConnection, ClientEvent, PeerError};
use crate::wire::{ErrorCode, ErrorPayload, FrameRepr, FrameType, PREFACE};

fn probing_client() -> ClientConnection {
    let config = ClientConfig {
        probe: true,
        ..ClientConfig::default()
    };
    ClientConnection::new(Instant::now(), config)
}

fn events(client: &mut ClientConnection) -> Vec<ClientEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

fn probe_bytes() -> Vec<u8> {
    FrameRepr::new(FrameType::Ping, Bytes::new())
        .to_bytes()
        .to_vec()
}

#[test]
fn the_probe_follows_the_preface_as_42_bytes_of_zeros_and_type_03() {
    let client = probing_client();
    let mut expected = PREFACE.to_vec();
    expected.extend_from_slice(&[0; 36]);
    expected.extend_from_slice(&[0x03, 0, 0, 0, 0, 0]);
    assert_eq!(client.pending_output(), expected.as_slice());
    assert_eq!(
        client.waiting(),
        0,
        "the probe is no request of the caller's"
    );
}

#[test]
fn the_probes_pong_is_taken_silently_and_requests_are_answered_after_it() {
    let mut client = probing_client();
    let request = client.send_text("a").unwrap();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Pong, Bytes::new()).to_bytes());
    input.extend_from_slice(&FrameRepr::new(FrameType::Text, "A").to_bytes());
    client.handle_input(Instant::now(), &input);
    let events = events(&mut client);
    assert!(
        matches!(events.as_slice(), [ClientEvent::Reply { request: r, frame, last: true }] if *r == request && frame.data == "A"),
        "{events:?}"
    );
    assert_eq!(client.waiting(), 0);
    assert!(!client.is_closed());
}

#[test]
fn a_raw_servers_echo_of_the_probe_fails_the_connection() {
    let mut client = probing_client();
    let request = client.send_text("hello").unwrap();
    // A raw server returns the preface and the probe unchanged.
    let mut echo = PREFACE.to_vec();
    echo.extend_from_slice(&probe_bytes());
    client.handle_input(Instant::now(), &echo);
    assert_eq!(
        events(&mut client),
        [ClientEvent::ConnectionLost {
            error: PeerError::RawServer,
            request: None,
            unanswered: vec![request],
        }]
    );
    assert!(client.is_closed());
}

#[test]
fn an_error_answering_the_probe_fails_the_connection() {
    let mut client = probing_client();
    let payload = ErrorPayload::new(ErrorCode::UNKNOWN_TYPE, "no");
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Error, payload.to_bytes()).to_bytes());
    client.handle_input(Instant::now(), &input);
    assert_eq!(
        events(&mut client),
        [ClientEvent::ConnectionLost {
            error: PeerError::Server(payload),
            request: None,
            unanswered: vec![],
        }]
    );
}

#[test]
fn a_text_reply_that_is_not_utf8_fails_the_connection() {
    let mut client = ClientConnection::new(Instant::now(), ClientConfig::default());
    let request = client.send_text("ab").unwrap();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Text, &b"A\xff"[..]).to_bytes());
    client.handle_input(Instant::now(), &input);
    assert_eq!(
        events(&mut client),
        [ClientEvent::ConnectionLost {
            error: PeerError::TextReplyNotUtf8,
            request: None,
            unanswered: vec![request],
        }]
    );
}

#[test]
fn a_bytes_reply_that_is_not_utf8_is_a_reply() {
    let mut client = ClientConnection::new(Instant::now(), ClientConfig::default());
    let request = client.send_bytes(b"a\xff").unwrap();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(&FrameRepr::new(FrameType::Bytes, &b"A\xff"[..]).to_bytes());
    client.handle_input(Instant::now(), &input);
    let events = events(&mut client);
    assert!(
        matches!(events.as_slice(), [ClientEvent::Reply { request: r, .. }] if *r == request),
        "{events:?}"
    );
}

#[test]
fn a_client_without_the_probe_setting_sends_the_preface_alone() {
    let client = ClientConnection::new(Instant::now(), ClientConfig::default());
    assert_eq!(client.pending_output(), PREFACE.as_slice());
}
