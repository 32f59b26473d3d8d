//! client.json: the server byte streams a client must judge (SPEC.md
//! §2.4, §2.5, §3.4, §5.4, §6.6), fed to [`ClientConnection`] whole, one
//! byte at a time, and cut in two at every offset; every split must give
//! the events the Python model expects.

use std::time::Instant;

use serde::Deserialize;
use serde_json::{Value, json};
use upcase::conn::{ClientConfig, ClientConnection, ClientEvent, PeerError, RequestId};
use upcase::wire::{Flags, FrameRepr, FrameType};

use super::{hex, load, report};

#[derive(Deserialize)]
struct ClientFile {
    vectors: Vec<ClientVector>,
}

#[derive(Deserialize)]
struct ClientVector {
    name: String,
    requests: Vec<Request>,
    server_hex: String,
    eof: bool,
    events: Vec<Value>,
    closes: bool,
}

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    frame_type: u8,
    flags: u8,
    data_hex: String,
}

/// The vector's reason for a failure (README.md), from this client's error.
fn reason(error: &PeerError) -> &'static str {
    match error {
        PeerError::Server(_) => "server-error",
        PeerError::BadPreface => "bad-preface",
        PeerError::UnsupportedVersion(_) => "unsupported-version",
        PeerError::FrameTooLarge { .. } => "over-limit",
        PeerError::MoreMismatch { .. } => "more-mismatch",
        PeerError::Closed => "closed",
        PeerError::UnexpectedReply { .. } | PeerError::Unsolicited(_) => "unexpected-frame",
        PeerError::BadFlags { .. } => "bad-flags",
        PeerError::ShortError => "short-error",
        PeerError::TextReplyNotUtf8 => "text-not-utf8",
        PeerError::Timeout { .. } => "timeout",
        PeerError::RawServer => "raw-server",
    }
}

fn ids(ids: &[RequestId]) -> Vec<u64> {
    ids.iter().map(|id| id.0).collect()
}

/// An event as client.json writes it.
fn as_json(event: ClientEvent) -> Value {
    match event {
        ClientEvent::Reply { request, frame, .. } => json!({
            "reply": request.0,
            "type": u8::from(frame.frame_type),
            "data_hex": super::show(&frame.data),
        }),
        ClientEvent::Error { request, error } => json!({"error": request.0, "code": error.code.0}),
        ClientEvent::ServerBye { unanswered, .. } => {
            json!({"server_bye": true, "unanswered": ids(&unanswered)})
        }
        ClientEvent::ConnectionLost {
            error,
            request,
            unanswered,
        } => json!({
            "failure": reason(&error),
            "code": error.code().map(|code| code.0),
            "request": request.map(|id| id.0),
            "unanswered": ids(&unanswered),
        }),
    }
}

/// Queue the vector's requests, feed `chunks`, then the EOF if it says so.
fn run(v: &ClientVector, chunks: &[&[u8]]) -> (Vec<Value>, bool) {
    let now = Instant::now();
    let mut client = ClientConnection::new(now, ClientConfig::default());
    for request in &v.requests {
        let mut frame = FrameRepr::new(FrameType::from(request.frame_type), hex(&request.data_hex));
        frame.flags = Flags(request.flags);
        client.send(frame).expect("the client takes every request");
    }
    let mut events = Vec::new();
    for chunk in chunks {
        client.handle_input(now, chunk);
        events.extend(std::iter::from_fn(|| client.poll_event()).map(as_json));
    }
    if v.eof {
        client.handle_eof(now);
        events.extend(std::iter::from_fn(|| client.poll_event()).map(as_json));
    }
    (events, client.is_closed())
}

fn check(v: &ClientVector) -> Result<(), String> {
    let stream = hex(&v.server_hex);
    let mut splits: Vec<(String, Vec<&[u8]>)> = vec![
        ("whole".into(), vec![&stream[..]]),
        ("every byte".into(), stream.chunks(1).collect()),
    ];
    for cut in 1..stream.len() {
        splits.push((
            format!("cut at {cut}"),
            vec![&stream[..cut], &stream[cut..]],
        ));
    }
    for (how, chunks) in splits {
        let (events, closed) = run(v, &chunks);
        if events != v.events || closed != v.closes {
            return Err(format!(
                "{} ({how}): events {}, closed {closed}; expected {}, closed {}",
                v.name,
                Value::from(events),
                Value::from(v.events.clone()),
                v.closes
            ));
        }
    }
    Ok(())
}

#[test]
fn client_vectors_give_the_expected_events_however_the_stream_is_split() {
    let file: ClientFile = load("client.json");
    let failures: Vec<String> = file.vectors.iter().filter_map(|v| check(v).err()).collect();
    report("client.json", file.vectors.len(), failures);
}
