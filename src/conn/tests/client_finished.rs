//! A client's exchange is over only when the server has ended it: not
//! before the first reply, not while requests wait, not after the client's
//! own BYE until the server answers it.

use super::harness::Pair;
use crate::conn::ServerConfig;

#[test]
fn a_client_is_closed_only_once_the_server_answers_its_bye() {
    let mut pair = Pair::new(ServerConfig::default());
    assert!(!pair.client.is_closed(), "nothing sent yet");
    pair.client.send_text("hi").unwrap();
    assert!(!pair.client.is_closed(), "a request waits");
    pair.exchange();
    assert_eq!(pair.client.waiting(), 0);
    assert!(!pair.client.is_closed(), "answered, still open");
    pair.client.bye().unwrap();
    assert!(!pair.client.is_closed(), "BYE sent, not yet answered");
    pair.exchange();
    assert!(pair.client.is_closed());
}
