//! A client's exchange is over only when the server has ended it: not
//! before the first reply, not while requests wait, not after the client's
//! own BYE until the server answers it.

use super::harness::*;
use crate::conn::{ClientConnection, ServerConfig};

/// Deliver the client's output to the server and the server's reply back.
fn round_trip(client: &mut ClientConnection, server: &mut Harness) {
    let to_server = client.pending_output().to_vec();
    client.mark_sent(to_server.len()).unwrap();
    server.feed(&to_server);
    client.handle_input(&server.take_sent()).unwrap();
}

#[test]
fn a_client_is_finished_only_once_the_server_answers_its_bye() {
    let mut server = Harness::new(ServerConfig::default());
    let mut client = ClientConnection::default();
    assert!(!client.is_finished(), "nothing sent yet");
    client.send_text("hi").unwrap();
    assert!(!client.is_finished(), "a request waits");
    round_trip(&mut client, &mut server);
    assert_eq!(client.waiting(), 0);
    assert!(!client.is_finished(), "answered, still open");
    client.bye().unwrap();
    assert!(!client.is_finished(), "BYE sent, not yet answered");
    round_trip(&mut client, &mut server);
    assert!(client.is_finished());
}
