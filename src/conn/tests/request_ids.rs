//! A client tells its requests apart by id: each send gets a new one.

use crate::conn::{ClientConfig, ClientConnection};
use crate::wire::{FrameRepr, FrameType};

#[test]
fn every_request_gets_an_id_of_its_own() {
    let mut client = ClientConnection::new(std::time::Instant::now(), ClientConfig::default());
    let ids: Vec<_> = (0..3)
        .map(|_| {
            client
                .send(FrameRepr::new(FrameType::Ping, &b""[..]))
                .unwrap()
        })
        .collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
}
