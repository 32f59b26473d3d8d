//! How a connection ends and what its timers do (SPEC.md §5.4, §7.3,
//! §9.1–§9.3): the linger after the last frame, half-closes, the idle
//! timer's start and restarts, held raw bytes at the idle timeout, the
//! BUSY wait for a late preface.
//!
//! These rules are about TCP's own signals, which a frame reader does not
//! see: a FIN and a reset both end a read, and a half-close looks like a
//! close. So the cases watch the socket itself ([`watch_end`]) and, after a
//! FIN, write to find out whether the server still reads ([`still_reading`]):
//! a server that has closed answers with a reset, one that half-closed reads
//! and discards.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use super::timeouts::fill_to_the_limit;
use super::{frame, round_trip};
use crate::conform::case::{Case, CheckResult, Failure, Needs};
use crate::conform::client::{Conn, Ctx};
use crate::conform::show;
use upcase::conn::ServerMode;
use upcase::wire::{ErrorCode, FrameType, PREFACE};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/9.2/no-reset-with-unread-input",
        description: "BYE followed by 256 KiB in one write: the BYE reply, then no reset while the client keeps the connection open, and a FIN once it closes (a server closing with unread input resets, SPEC.md §5.4 MUST NOT)",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: no_reset_with_unread_input,
    },
    Case {
        name: "framed/9.2/no-half-close-after-bye",
        description: "after its BYE a framed server does not half-close: no FIN while the client keeps the connection open and the server still reads (SPEC.md §9.2 MUST NOT)",
        unicode_dependent: false,
        needs: Needs::Nothing,
        check: no_half_close_after_bye,
    },
    Case {
        name: "framed/9.1/idle-timer-armed-at-the-preface-restarted-by-frames",
        description: "a preface sent late still gets the whole idle timeout, PINGs a quarter of it apart keep the connection alive for two timeouts, and ERROR(IDLE_TIMEOUT) comes no earlier than one timeout after the last",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: idle_timer_armed_and_restarted,
    },
    Case {
        name: "raw/7.3/held-bytes-and-half-close-at-idle-timeout",
        description: "at the idle timeout a raw server writes its held bytes unchanged, then half-closes and still reads (SPEC.md §7.3, §9.1)",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: held_bytes_and_half_close_at_idle,
    },
    Case {
        name: "framed/9.2/framed-only-half-closes-a-raw-client",
        description: "a framed-only server closes a raw client without reply by half-closing and reading on, not by a plain close (SPEC.md §2.2, §9.2)",
        unicode_dependent: false,
        needs: Needs::ServerMode(ServerMode::Framed),
        check: framed_only_half_closes_raw,
    },
    Case {
        name: "framed/9.3/busy-for-a-late-preface",
        description: "at the connection limit a preface sent 500 ms after the connect still gets the server's preface and ERROR(BUSY) (the wait is at least 1 s, SPEC.md §9.3)",
        unicode_dependent: false,
        needs: Needs::MaxConnections,
        check: busy_for_a_late_preface,
    },
];

/// How a connection looked when the suite watched it.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The server sent FIN (end of input).
    Fin,
    /// The connection was reset.
    Reset,
    /// The server sent these bytes.
    Bytes(Vec<u8>),
    /// Nothing happened within the time.
    Open,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Fin => f.write_str("FIN"),
            Seen::Reset => f.write_str("a reset"),
            Seen::Bytes(bytes) => write!(f, "bytes [{}]", show::hex(bytes)),
            Seen::Open => f.write_str("nothing (still open)"),
        }
    }
}

/// Watch the socket for at most `within` (and never past the case's
/// deadline, which the read timeout also bounds): the first of a FIN, a
/// reset or bytes, or `Open`.
fn watch_end(conn: &mut Conn, within: Duration) -> Seen {
    let unread = conn.take_unread();
    if !unread.is_empty() {
        return Seen::Bytes(unread.to_vec());
    }
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 4096];
    let seen = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.socket().set_read_timeout(Some(left)).is_err() {
            break Seen::Open;
        }
        match conn.socket().read(&mut chunk) {
            Ok(0) => break Seen::Fin,
            Ok(n) => break Seen::Bytes(chunk[..n].to_vec()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Seen::Open;
            }
            Err(_) => break Seen::Reset,
        }
    };
    if matches!(seen, Seen::Fin | Seen::Reset) {
        conn.mark_ended();
    }
    conn.note(format!("← (watching the socket) {seen}"));
    seen
}

/// How long [`still_reading`] gives a closed server's reset to arrive.
const RESET_WAIT: Duration = Duration::from_millis(100);

/// After the server's FIN: whether it still reads (it half-closed) rather
/// than having closed, in which case TCP answers the suite's bytes with a
/// reset and the next write fails.
fn still_reading(conn: &mut Conn) -> bool {
    let probe = [b'.'; 512];
    conn.note(format!(
        "→ {} bytes, twice {} ms apart (does the server still read?)",
        probe.len(),
        RESET_WAIT.as_millis()
    ));
    let mut socket = conn.socket();
    let first = socket.write_all(&probe).is_ok();
    std::thread::sleep(RESET_WAIT);
    let second = first && socket.write_all(&probe).is_ok();
    let reset = socket.take_error().ok().flatten().is_some();
    let reading = second && !reset;
    conn.note(if reading {
        "(the writes went through: the server half-closed and reads on)"
    } else {
        "(a write met a reset: the server had closed, not half-closed)"
    });
    reading
}

/// Require a half-close now or within `within`: a FIN and no byte, then a
/// server that still reads.
fn expect_half_close(conn: &mut Conn, within: Duration, after: &str) -> CheckResult {
    let expected = "FIN (a half-close), then the server reads and discards until the client closes";
    match watch_end(conn, within) {
        Seen::Fin if still_reading(conn) => Ok(()),
        Seen::Fin => Err(Failure::mismatch(
            format!("a plain close {after} instead of a half-close (SPEC.md §7.3, §9.2)"),
            expected,
            "FIN, then a reset when the client wrote: the server had closed",
        )),
        other => Err(Failure::mismatch(
            format!("no half-close {after}"),
            expected,
            other,
        )),
    }
}

/// What the client sends behind its BYE in the reset case: more than a
/// server reads in one go, so one that closes at once leaves some unread.
const BEHIND_BYE: usize = 256 * 1024;

/// How long the client keeps the connection open after the server's BYE:
/// well inside the default linger of 2 s (SPEC.md §9.2).
const KEPT_OPEN: Duration = Duration::from_millis(300);

fn bye_reply(conn: &mut Conn) -> CheckResult {
    let bye = frame(FrameType::Bye, false, b"");
    let reply = conn.reply_to(&bye, FrameType::Bye, false, &b""[..]);
    conn.expect(&reply, "BYE")
}

fn no_reset_with_unread_input(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    let mut bytes = frame(FrameType::Bye, false, b"").to_bytes().to_vec();
    bytes.resize(bytes.len() + BEHIND_BYE, 0);
    conn.note(format!(
        "→ BYE and {BEHIND_BYE} bytes behind it, in one write"
    ));
    // A server that closed at once may reset this write: the reply says how.
    let _ = conn.socket().write_all(&bytes);
    bye_reply(&mut conn)?;
    match watch_end(&mut conn, KEPT_OPEN) {
        Seen::Open => {}
        Seen::Reset => {
            return Err(Failure::mismatch(
                "the server reset the connection after its BYE: it closed with input unread (SPEC.md §5.4 MUST NOT; the reset can destroy the BYE)",
                "the connection open until the client closes or the linger ends, input read and discarded",
                "a reset",
            ));
        }
        // Closing first is the SHOULD NOT of framed/5.4/bye-then-linger.
        Seen::Fin => return Ok(()),
        other @ Seen::Bytes(_) => {
            return Err(Failure::mismatch(
                "the server sent more after its BYE",
                "nothing",
                other,
            ));
        }
    }
    conn.shutdown_write();
    match watch_end(&mut conn, ctx.options.timeout) {
        Seen::Fin => Ok(()),
        other => Err(Failure::mismatch(
            "after the client closed, the server's close",
            "FIN",
            other,
        )),
    }
}

fn no_half_close_after_bye(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.framed()?;
    conn.send(&frame(FrameType::Bye, false, b""))?;
    bye_reply(&mut conn)?;
    match watch_end(&mut conn, KEPT_OPEN) {
        Seen::Open => {
            conn.shutdown_write();
            conn.expect_eof("the client closed after BYE")
        }
        Seen::Fin if still_reading(&mut conn) => Err(Failure::mismatch(
            "a framed server half-closed after its BYE (SPEC.md §9.2 MUST NOT: the client must close first, so that TIME_WAIT stays with it)",
            "no FIN until the client closes (or the linger ends)",
            "FIN while the server still read",
        )),
        // A plain close: the SHOULD NOT of framed/5.4/bye-then-linger.
        Seen::Fin => Ok(()),
        other => Err(Failure::mismatch(
            "after the server's BYE, while the client kept the connection open",
            "nothing",
            other,
        )),
    }
}

/// How late the idle case sends its preface, in idle timeouts after the connect.
const PREFACE_LATE_BY: f64 = 0.6;

/// How many PINGs the idle case sends, a quarter of the timeout apart: two
/// idle timeouts in all.
const KEEPALIVE_PINGS: u32 = 8;

/// How much earlier than one idle timeout after the last frame an
/// ERROR(IDLE_TIMEOUT) may be seen: the server's timer can only start
/// after the suite sent the frame, so only clock granularity counts.
const IDLE_SLACK: Duration = Duration::from_millis(20);

fn idle_timer_armed_and_restarted(ctx: &mut Ctx) -> CheckResult {
    let idle = ctx.options.idle_timeout.unwrap_or_default();
    let mut conn = ctx.connect()?;
    conn.note(format!(
        "(waiting {} ms before the preface)",
        idle.mul_f64(PREFACE_LATE_BY).as_millis()
    ));
    std::thread::sleep(idle.mul_f64(PREFACE_LATE_BY));
    let mut last_frame = Instant::now();
    conn.write(&PREFACE)?;
    conn.expect_raw(&PREFACE, "the server's preface")?;
    for n in 1..=KEEPALIVE_PINGS {
        std::thread::sleep(idle / 4);
        let ping = frame(FrameType::Ping, false, format!("ping {n}").as_bytes());
        last_frame = Instant::now();
        round_trip(
            &mut conn,
            &ping,
            FrameType::Pong,
            &ping.data,
            &format!(
                "PING {n} of {KEEPALIVE_PINGS}, {} ms apart (each complete frame restarts the idle timer, which starts again at the preface, SPEC.md §9.1)",
                (idle / 4).as_millis()
            ),
        )?;
    }
    conn.set_timeout(idle + ctx.options.timeout);
    conn.expect_error_code(
        ErrorCode::IDLE_TIMEOUT,
        "two idle timeouts of PINGs, then silence",
    )?;
    let after = last_frame.elapsed();
    if after + IDLE_SLACK < idle {
        return Err(Failure::mismatch(
            "ERROR(IDLE_TIMEOUT) before one idle timeout had passed since the last complete frame",
            format!(
                "no earlier than {} ms after the last PING",
                idle.as_millis()
            ),
            format!("{} ms after it", after.as_millis()),
        ));
    }
    conn.expect_closed_after_fatal()
}

fn held_bytes_and_half_close_at_idle(ctx: &mut Ctx) -> CheckResult {
    let idle = ctx.options.idle_timeout.unwrap_or_default();
    let mut conn = ctx.connect()?;
    // "ab" and the first two bytes of "€": e2 82 is held (SPEC.md §7.2).
    conn.write(b"ab\xe2\x82")?;
    conn.expect_raw(b"AB", "the raw reply before the held bytes")?;
    conn.set_timeout(idle + ctx.options.timeout);
    conn.expect_raw(
        b"\xe2\x82",
        "held bytes, copied unchanged at the idle timeout (SPEC.md §7.3, §9.1)",
    )?;
    expect_half_close(&mut conn, ctx.options.timeout, "at the raw idle timeout")?;
    conn.shutdown_write();
    Ok(())
}

fn framed_only_half_closes_raw(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    conn.write(b"hello, raw\n")?;
    expect_half_close(
        &mut conn,
        ctx.options.timeout,
        "of a raw client by a framed-only server",
    )?;
    conn.shutdown_write();
    Ok(())
}

/// How long after its connect the late BUSY client sends its preface.
const LATE_PREFACE: Duration = Duration::from_millis(500);

fn busy_for_a_late_preface(ctx: &mut Ctx) -> CheckResult {
    // Held open until the case ends, so that the server stays full.
    let _open = fill_to_the_limit(ctx)?;
    let mut over = ctx.connect()?;
    over.note(format!(
        "(waiting {} ms before the preface)",
        LATE_PREFACE.as_millis()
    ));
    std::thread::sleep(LATE_PREFACE);
    // A server that gave up waiting has half-closed or closed: the
    // expectations below say so.
    over.write_regardless(&PREFACE);
    over.expect_raw(
        &PREFACE,
        "the server's preface to a late preface over the limit (the BUSY wait is at least 1 s, SPEC.md §9.3)",
    )?;
    over.expect_error_code(ErrorCode::BUSY, "a late preface over the connection limit")?;
    over.expect_closed_after_fatal()
}
