//! Tests of the connection state machines: example-based tests per rule on
//! the in-memory [`Pair`](crate::testing::Pair), and a model-based property
//! test.

/// The pair harness, under the name these modules import it by.
use crate::testing as harness;

mod buffer_accounting;
mod buffers_and_progress;
mod client;
mod client_finished;
mod client_probe;
mod client_settings;
mod datagram;
mod datagram_limits;
mod ending;
mod log_texts;
mod model;
mod request_ids;
mod server;
mod timer_edges;

/// A client with a reply timeout of `reply_timeout`, made at `start`, with
/// one TEXT request queued and nothing of it sent yet.
fn client_with_one_request(
    start: std::time::Instant,
    reply_timeout: std::time::Duration,
) -> crate::conn::ClientConnection {
    let config = crate::conn::ClientConfig {
        reply_timeout,
        ..crate::conn::ClientConfig::default()
    };
    let mut client = crate::conn::ClientConnection::new(start, config);
    client.send_text("x").unwrap();
    client
}
