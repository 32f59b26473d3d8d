//! What `serve --metrics` adds to one round trip, without the noise of
//! sockets: a framed 64-byte TEXT request fed to a [`ServerConnection`] in
//! memory and its reply taken, as the event loop does it, with the
//! connection's [`ConnectionMeter`] reporting after each step (ours) and
//! without (baseline). `cargo bench --bench metrics`.
//!
//! The baseline leaves out the system calls of a real round trip, which
//! cost the server several microseconds (`benches/metrics_cost.sh` measures
//! its CPU time per round trip), so the ratio here overstates what metrics
//! add to a served request; the difference in nanoseconds is what to set
//! against that CPU time (target: at most 3 % of it).

#[path = "support/measure.rs"]
mod measure;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use upcase::conn::{ServerConfig, ServerConnection};
use upcase::net::{ConnectionMeter, ServerMetrics};
use upcase::wire::{FrameRepr, FrameType, PREFACE};

fn connection() -> ServerConnection {
    let addr: SocketAddr = "127.0.0.1:9999".parse().unwrap();
    let mut conn = ServerConnection::new(ServerConfig::default(), addr, addr, Instant::now());
    conn.handle_input(Instant::now(), &PREFACE).unwrap();
    let pending = conn.pending_output().len();
    conn.mark_sent(Instant::now(), pending).unwrap();
    conn
}

/// One round trip: feed the request, take the reply; `meter` reports as
/// the event loop's connection does (the read's time before feeding, one
/// report after the drive that read, answered and wrote).
fn round_trip(
    conn: &mut ServerConnection,
    request: &[u8],
    mut meter: Option<&mut ConnectionMeter>,
) {
    let now = Instant::now();
    if let Some(meter) = meter.as_deref_mut() {
        meter.read_at(now);
    }
    conn.handle_input(now, black_box(request)).unwrap();
    let reply = conn.pending_output().len();
    black_box(conn.pending_output());
    conn.mark_sent(now, reply).unwrap();
    if let Some(meter) = meter {
        meter.report(conn);
    }
}

fn main() {
    let text = "Grüße from UPCASE/1, a 64-byte request: ŉ, é, ß and some ascii";
    let request = FrameRepr::new(FrameType::Text, &text.as_bytes()[..64]).to_bytes();
    let metrics = Arc::new(ServerMetrics::new(1));
    let shard = metrics.claim_shard().unwrap();
    let mut metered = connection();
    let mut meter = ConnectionMeter::accepted(&shard, false);
    let mut plain = connection();
    let (ours, baseline) = measure::compare(
        || round_trip(&mut metered, &request, Some(&mut meter)),
        || round_trip(&mut plain, &request, None),
    );
    let counted = metrics.snapshot().frames_in[0];
    assert!(counted > 0, "the meter counted the requests");
    println!(
        "framed 64 B round trip in memory: {ours:.0} ns with metrics, {baseline:.0} ns without \
         (same run): {:+.0} ns, ratio {:.3}; {counted} requests counted",
        ours - baseline,
        ours / baseline
    );
}
