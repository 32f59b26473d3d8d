//! SPEC.md §8.6 and §10 over UDP: the rate limit per source (a SHOULD, so
//! its absence is a warning) and the Unicode-dependent mappings in raw
//! datagrams.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::unicode::{MAPPED_IN_16, MAPPED_IN_17};
use crate::conform::case::{Case, CheckResult, Failure, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle;

pub const CASES: &[Case] = &[
    Case {
        name: "udp/10/unicode-16-mappings",
        description: "code points first mapped in Unicode 16.0 are upper-cased in a raw datagram",
        unicode_dependent: true,
        needs: Needs::UnicodeRawDatagrams,
        check: raw_datagram_16,
    },
    Case {
        name: "udp/10/unicode-17-mappings",
        description: "code points first mapped in Unicode 17.0 are upper-cased in a raw datagram",
        unicode_dependent: true,
        needs: Needs::UnicodeRawDatagrams,
        check: raw_datagram_17,
    },
    Case {
        name: "udp/8.6/rate-limit-per-source",
        description: "20,000 one-byte datagrams from one source, as fast as they are answered: a server with no limit per source answers them all, which SPEC.md says it SHOULD NOT (a warning)",
        unicode_dependent: false,
        needs: Needs::RawDatagrams,
        check: rate_limit,
    },
];

fn raw_datagram(ctx: &mut Ctx, sample: &str, version: &str) -> CheckResult {
    let dgram = ctx.datagram()?;
    dgram.expect_raw(
        sample.as_bytes(),
        &oracle::text_upper(sample.as_bytes()),
        &format!("a raw datagram with code points first mapped in Unicode {version}"),
    )
}

fn raw_datagram_16(ctx: &mut Ctx) -> CheckResult {
    raw_datagram(ctx, MAPPED_IN_16, "16.0")
}

fn raw_datagram_17(ctx: &mut Ctx) -> CheckResult {
    raw_datagram(ctx, MAPPED_IN_17, "17.0")
}

/// How many datagrams the rate case sends: ten times this server's default
/// burst (SPEC.md §8.6: 2,000, refilled at 10,000 a second).
const FLOOD: usize = 20_000;

/// At most this many datagrams unanswered at once, so that neither side's
/// socket buffer overflows and a server without a limit answers them all.
const IN_FLIGHT: usize = 128;

/// A window of unanswered datagrams with no reply for this long is counted
/// as dropped, and sending goes on.
const GIVE_UP_ON_WINDOW: Duration = Duration::from_millis(50);

/// After the flood: time for late replies, and for a limited server's
/// bucket to refill before the next case (2,000 tokens at 10,000 a second).
const SETTLE: Duration = Duration::from_millis(300);

fn rate_limit(ctx: &mut Ctx) -> CheckResult {
    let dgram = ctx.datagram()?;
    let socket = dgram.socket();
    let reader = socket
        .try_clone()
        .map_err(|e| Failure::new(format!("UDP socket setup: {e}")))?;
    let _ = reader.set_read_timeout(Some(Duration::from_millis(20)));
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = std::thread::spawn({
        let answered = answered.clone();
        let stop = stop.clone();
        move || {
            let mut buf = [0u8; 16];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = reader.recv(&mut buf)
                    && buf[..n] == *b"A"
                {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    dgram.note(format!(
        "→ {FLOOD} datagrams \"a\", at most {IN_FLIGHT} unanswered at once"
    ));
    let started = Instant::now();
    let mut written_off = 0;
    for sent in 0..FLOOD {
        let mut waiting_since = Instant::now();
        let mut seen = answered.load(Ordering::Relaxed);
        while sent.saturating_sub(seen + written_off) >= IN_FLIGHT {
            std::thread::sleep(Duration::from_micros(200));
            let now = answered.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                waiting_since = Instant::now();
            } else if waiting_since.elapsed() >= GIVE_UP_ON_WINDOW {
                written_off = sent.saturating_sub(seen);
            }
        }
        // A failed send (ICMP from an earlier datagram) is a datagram dropped.
        let _ = socket.send(b"a");
    }
    let elapsed = started.elapsed();
    std::thread::sleep(SETTLE);
    stop.store(true, Ordering::Relaxed);
    let _ = counting.join();
    let answered = answered.load(Ordering::Relaxed);
    let rate = FLOOD as f64 / elapsed.as_secs_f64().max(1e-3);
    dgram.note(format!(
        "← {answered} of {FLOOD} answered, sent in {} ms ({rate:.0} a second)",
        elapsed.as_millis()
    ));
    if answered >= FLOOD {
        ctx.warn(format!(
            "all {FLOOD} datagrams from one source were answered ({rate:.0} a second); SPEC.md §8.6 says a server SHOULD limit the datagrams it answers per source"
        ));
    }
    Ok(())
}
