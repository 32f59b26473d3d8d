//! Helpers shared by the integration tests that drive a `ServerConnection`
//! directly, without sockets.

use std::time::Instant;

use upcase::conn::ServerConnection;

/// Take everything the connection has to send, reporting it sent (sending
/// can free room for more output, so until nothing is pending).
pub fn drain(connection: &mut ServerConnection, now: Instant) -> Vec<u8> {
    let mut sent = Vec::new();
    loop {
        let pending = connection.pending_output().to_vec();
        if pending.is_empty() {
            return sent;
        }
        connection
            .mark_sent(now, pending.len())
            .expect("sent what was pending");
        sent.extend(pending);
    }
}

/// Deliver `input` as an event loop would: never more than
/// `read_capacity` at a time, sending all output in between. Returns what the
/// connection sent, or why it would not take the input.
pub fn feed(
    connection: &mut ServerConnection,
    now: Instant,
    mut input: &[u8],
) -> Result<Vec<u8>, String> {
    let mut sent = Vec::new();
    while !input.is_empty() {
        let take = connection.read_capacity().min(input.len());
        if take == 0 {
            return Err("the connection takes no more input".to_owned());
        }
        connection
            .handle_input(now, &input[..take])
            .map_err(|e| e.to_string())?;
        input = &input[take..];
        sent.extend(drain(connection, now));
    }
    Ok(sent)
}
