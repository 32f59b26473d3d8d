//! Clients that do not read, or read slowly (SPEC.md §9.1, §9.4, §11):
//! the server stops reading for a client that takes none of its output
//! (which the client sees as its own send blocking), and serves a slow but
//! steady reader under the rule of §9.4 without timing it out.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socket2::SockRef;

use super::{frame, text};
use crate::conform::case::{Case, CheckResult, Failure, Needs};
use crate::conform::client::{Conn, Ctx, within_limit};
use crate::conform::{oracle, show};
use upcase::wire::{FrameDecoder, FrameRepr, FrameType};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/11/stops-reading-for-a-client-that-never-reads",
        description: "a client that pipelines PINGs and never reads sees its send block within 64 MiB (the server stopped reading: its memory is bounded); then every PING gets its PONG",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: stops_reading,
    },
    Case {
        name: "framed/9.4/slow-steady-reader-served",
        description: "9 MiB of replies read 160 KiB every eighth of the idle timeout (five times the pace SPEC.md §9.4 guarantees to be enough) for about seven idle timeouts: all of them arrive, then the PONG behind them; no close, no ERROR(IDLE_TIMEOUT) (the idle timer does not run while output waits, §9.1)",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: slow_steady_reader,
    },
];

/// What a server may have taken from a client that never reads before its
/// send must block: far more than kernel buffers on both sides and any
/// sensible bound on what a server holds (SPEC.md §11).
const NO_BACKPRESSURE_AT: usize = 64 << 20;

/// How long the client's send must stay blocked to show that the server
/// stopped reading. A server that stops does not start again, so a
/// longer wait changes nothing for a correct one.
const BLOCKED_FOR: Duration = Duration::from_millis(500);

/// The suite's receive buffer for the client that never reads: small, so
/// that replies back up at once.
const NEVER_READS_BUFFER: usize = 256 * 1024;

/// The slow reader's receive buffer: the largest SPEC.md §9.4's rule
/// covers. A smaller one makes loopback drop segments that arrive while
/// the reader holds its socket, and the retransmission backoff (200 ms,
/// doubling) then stalls the server's output for longer than a send
/// timeout of 1 s: seen with 256 KiB on a loaded machine.
const SLOW_READER_BUFFER: usize = 1 << 20;

/// The PINGs' data size: at most this, and the server's `--max-frame`.
const PING_DATA: usize = 32 * 1024;

fn receive_buffer(conn: &Conn, size: usize) {
    // A failure leaves the kernel's own size, which only makes the case slower.
    let _ = SockRef::from(conn.socket()).set_recv_buffer_size(size);
}

fn stops_reading(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    receive_buffer(&conn, NEVER_READS_BUFFER);
    let len = PING_DATA.min(ctx.options.max_frame as usize);
    let ping = frame(FrameType::Ping, false, &vec![b'p'; len]);
    within_limit(&ping, ctx.options.max_frame)?;
    let one = ping.to_bytes();
    let batch = one.repeat((256 * 1024 / one.len()).max(1));
    conn.note(format!(
        "→ PINGs of {len} bytes, pipelined without reading, until the send blocks for {} ms (at most {} MiB)",
        BLOCKED_FOR.as_millis(),
        NO_BACKPRESSURE_AT >> 20
    ));
    let give_up = Instant::now() + ctx.options.timeout * 4;
    let sent = send_until_blocked(&conn, &batch, give_up)?;
    conn.note(format!(
        "(the send blocked after {sent} bytes: the server stopped reading)"
    ));
    let expected = conn.reply_to(&ping, FrameType::Pong, false, ping.data.clone());
    take_every_reply(&mut conn, &one, sent, &expected, ctx.options.timeout)?;
    conn.expect_alive("the replies to everything pipelined")
}

/// Write `batch` over and over without reading until a write stays
/// blocked for [`BLOCKED_FOR`]; the bytes written.
fn send_until_blocked(conn: &Conn, batch: &[u8], give_up: Instant) -> Result<usize, Failure> {
    let mut socket = conn.socket();
    socket
        .set_nonblocking(true)
        .map_err(|e| Failure::new(format!("socket setup: {e}")))?;
    let mut sent = 0usize;
    let mut blocked_since = None;
    loop {
        if sent >= NO_BACKPRESSURE_AT {
            return Err(Failure::mismatch(
                "the server went on reading from a client that reads nothing (no backpressure: SPEC.md §11 bounds what it buffers)",
                "the client's send blocks once the server's bounds and the kernel buffers are full",
                format!("{} MiB taken without the send blocking", sent >> 20),
            ));
        }
        if Instant::now() >= give_up {
            return Err(Failure::mismatch(
                "the server neither stopped reading nor took everything",
                "the client's send blocks",
                format!("{sent} bytes taken, the send never blocked for long"),
            ));
        }
        let offset = sent % batch.len();
        match socket.write(&batch[offset..]) {
            Ok(n) => {
                sent += n;
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= BLOCKED_FOR {
                    return Ok(sent);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Failure::new(format!(
                    "write failed after {sent} bytes: {e}"
                )));
            }
        }
    }
}

/// Finish the frame cut by the blocked send, and read a reply equal to
/// `expected` for every frame of `one` among the `sent` bytes.
fn take_every_reply(
    conn: &mut Conn,
    one: &[u8],
    sent: usize,
    expected: &FrameRepr,
    timeout: Duration,
) -> CheckResult {
    // The bytes of the frame the blocked send cut, if it cut one.
    let mut rest = match sent % one.len() {
        0 => &[][..],
        cut => &one[cut..],
    };
    let owed = sent.div_ceil(one.len());
    let mut input = conn.take_unread();
    let decoder = FrameDecoder::new(u32::try_from(expected.data.len()).unwrap_or(u32::MAX));
    let mut socket = conn.socket();
    let mut got = 0;
    let mut last_progress = Instant::now();
    let mut chunk = vec![0u8; 64 * 1024];
    while got < owed {
        let mut moved = false;
        if !rest.is_empty() {
            match socket.write(rest) {
                Ok(n) => {
                    rest = &rest[n..];
                    moved = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(Failure::new(format!("write failed: {e}"))),
            }
        }
        match socket.read(&mut chunk) {
            Ok(0) => {
                return Err(Failure::mismatch(
                    "the connection closed before every PING was answered",
                    format!("{owed} PONGs"),
                    format!("{got} PONGs, then FIN"),
                ));
            }
            Ok(n) => {
                input.extend_from_slice(&chunk[..n]);
                moved = true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => {
                return Err(Failure::mismatch(
                    "the connection failed before every PING was answered",
                    format!("{owed} PONGs"),
                    format!("{got} PONGs, then {e}"),
                ));
            }
        }
        got += count_replies(&decoder, &mut input, expected, got)?;
        if moved {
            last_progress = Instant::now();
        } else if last_progress.elapsed() >= timeout {
            return Err(Failure::mismatch(
                "the replies stopped",
                format!("{owed} PONGs"),
                format!(
                    "{got} PONGs, then nothing for {:.1} s",
                    timeout.as_secs_f64()
                ),
            ));
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    conn.note(format!("← {got} PONGs, each as expected"));
    socket
        .set_nonblocking(false)
        .map_err(|e| Failure::new(format!("socket setup: {e}")))?;
    if !input.is_empty() {
        return Err(Failure::mismatch(
            "more than one reply per PING",
            "nothing after the last PONG",
            format!("bytes [{}]", show::hex(&input)),
        ));
    }
    Ok(())
}

/// Decode the whole frames in `input`; each must equal `expected`.
fn count_replies(
    decoder: &FrameDecoder,
    input: &mut BytesMut,
    expected: &FrameRepr,
    before: usize,
) -> Result<usize, Failure> {
    let mut count = 0;
    loop {
        match decoder.decode(input) {
            Ok(Some(frame)) if frame == *expected => count += 1,
            Ok(Some(frame)) => {
                return Err(Failure::mismatch(
                    format!("wrong reply to PING {}", before + count + 1),
                    show::frame(expected),
                    show::frame(&frame),
                ));
            }
            Ok(None) => return Ok(count),
            Err(e) => {
                return Err(Failure::mismatch(
                    format!("wrong reply to PING {}", before + count + 1),
                    show::frame(expected),
                    e.to_string(),
                ));
            }
        }
    }
}

/// How many large TEXT frames the slow reader sends: three, so that the
/// replies to the first two fill the kernel buffers on both sides (some
/// 4.5 MB on Linux, the server's send buffer growing to 4 MiB), and the
/// third's reply (3 MiB) then waits in the server, which holds output and
/// does not read, for the 2–3 idle timeouts the client takes to read it.
const LARGE_FRAMES: usize = 3;

/// What the slow reader takes per round, one round every eighth of the
/// idle timeout: 1.25 MiB per idle timeout, five times what SPEC.md §9.4
/// guarantees to be enough (64 KiB every quarter of the send timeout,
/// which is at most the idle timeout); about seven idle timeouts in all.
const PER_ROUND: usize = 160 * 1024;

fn slow_steady_reader(ctx: &mut Ctx) -> CheckResult {
    let idle = ctx.options.idle_timeout.unwrap_or_default();
    let mut conn = ctx.framed()?;
    receive_buffer(&conn, SLOW_READER_BUFFER);
    // "ΐ" (2 bytes) has a 6-byte upper case: replies 3 × their request.
    let count = (ctx.options.max_frame as usize).min(1 << 20) / 2;
    let data = "\u{390}".repeat(count).into_bytes();
    let large = text(&data, false);
    let ping = frame(FrameType::Ping, false, b"behind the large replies");
    let mut requests = vec![large.clone(); LARGE_FRAMES];
    requests.push(ping.clone());
    let reply = conn.reply_to(&large, FrameType::Text, false, oracle::text_upper(&data));
    let mut expected = vec![reply; LARGE_FRAMES];
    expected.push(conn.reply_to(&ping, FrameType::Pong, false, ping.data.clone()));
    let total: usize = expected.iter().map(|f| f.to_bytes().len()).sum();
    let per_round = PER_ROUND;
    let gap = idle / 8;
    conn.send_all(&requests)?;
    conn.note(format!(
        "(reading the {total} bytes of replies {per_round} bytes every {} ms)",
        gap.as_millis()
    ));
    let started = Instant::now();
    let mut input = conn.take_unread();
    let decoder = FrameDecoder::new(u32::try_from(3 * data.len() + 9).unwrap_or(u32::MAX));
    let mut replies = expected.iter().enumerate();
    let mut next = replies.next();
    let mut chunk = vec![0u8; per_round];
    let mut read = 0;
    while let Some((n, want)) = next {
        let this_round = per_round.min(total.saturating_sub(read)).max(1);
        read += read_round(&conn, &mut chunk[..this_round], &mut input, ctx.options.timeout).map_err(|how| {
            Failure::mismatch(
                format!(
                    "a slow but steady reader was not served: reply {} of {} (SPEC.md §9.4: it is never timed out)",
                    n + 1,
                    expected.len()
                ),
                show::frame(want),
                format!(
                    "{how}, {:.1} s into the reading, after {} bytes of reply {}",
                    started.elapsed().as_secs_f64(),
                    input.len(),
                    n + 1
                ),
            )
        })?;
        while let Some((n, want)) = next {
            let Some(got) = decoder
                .decode(&mut input)
                .map_err(|e| Failure::mismatch("a frame over its limit", show::frame(want), e))?
            else {
                break;
            };
            conn.note(format!("← {}", show::frame(&got)));
            if got != *want {
                return Err(Failure::mismatch(
                    format!(
                        "wrong reply {} of {} to a slow but steady reader (an ERROR(IDLE_TIMEOUT) here means the idle timer ran while output waited, SPEC.md §9.1)",
                        n + 1,
                        expected.len()
                    ),
                    show::frame(want),
                    show::frame(&got),
                ));
            }
            next = replies.next();
        }
        if next.is_some() {
            std::thread::sleep(gap);
        }
    }
    conn.note(format!(
        "(read everything in {} ms)",
        started.elapsed().as_millis()
    ));
    Ok(())
}

/// One round of the slow reader: read until `chunk` is full, or for at
/// most `timeout`; the bytes read, or how the connection failed.
fn read_round(
    conn: &Conn,
    chunk: &mut [u8],
    input: &mut BytesMut,
    timeout: Duration,
) -> Result<usize, String> {
    let mut socket = conn.socket();
    let mut filled = 0;
    let deadline = Instant::now() + timeout;
    while filled < chunk.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = socket.set_read_timeout(Some(left));
        match socket.read(&mut chunk[filled..]) {
            Ok(0) => return Err("connection closed (FIN)".into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(format!("connection failed: {e}")),
        }
    }
    if filled == 0 {
        return Err(format!("nothing within {:.1} s", timeout.as_secs_f64()));
    }
    input.extend_from_slice(&chunk[..filled]);
    Ok(filled)
}
