//! SPEC.md §9: the idle timeout and the connection limit. These cases
//! depend on the server's settings, so they run only when the suite is told
//! them (`--idle-timeout SECS`, `--max-connections N`).

use std::time::Duration;

use super::{frame, round_trip, text};
use crate::conform::case::{Case, CheckResult, Failure, Needs};
use crate::conform::client::Conn;
use crate::conform::client::Ctx;
use upcase::wire::{ErrorCode, ErrorPayload, FrameType, PREFACE};

pub const CASES: &[Case] = &[
    Case {
        name: "framed/9.1/idle-timeout",
        description: "a framed connection with no complete frame for the idle timeout gets ERROR(IDLE_TIMEOUT), then closes",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: framed_idle,
    },
    Case {
        name: "framed/9.1/idle-timer-restarts-on-complete-frames-only",
        description: "a frame trickled one byte at a time, with gaps shorter than the idle timeout, does not keep the connection alive: ERROR(IDLE_TIMEOUT) comes one timeout after the last complete frame",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: trickle_does_not_restart_idle,
    },
    Case {
        name: "raw/9.1/idle-timeout",
        description: "a raw connection with no input for the idle timeout is closed: input sent later is not answered",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: raw_idle,
    },
    Case {
        name: "framed/9.3/busy-at-the-limit",
        description: "at the connection limit a new framed client gets the preface, ERROR(BUSY) and close; once one connection ends, a new one is served",
        unicode_dependent: false,
        needs: Needs::MaxConnections,
        check: busy_at_the_limit,
    },
    Case {
        name: "framed/9.3/busy-for-any-version",
        description: "at the connection limit a preface of version 2 also gets the server's preface and ERROR(BUSY), then close",
        unicode_dependent: false,
        needs: Needs::MaxConnections,
        check: busy_for_any_version,
    },
];

/// How long after the server's idle timeout the raw case sends its late input.
const IDLE_MARGIN: Duration = Duration::from_millis(500);

/// The server's idle timeout plus the per-read timeout.
fn idle_wait(ctx: &Ctx) -> Duration {
    ctx.options.idle_timeout.unwrap_or_default() + ctx.options.timeout
}

fn framed_idle(ctx: &mut Ctx) -> CheckResult {
    let wait = idle_wait(ctx);
    let mut conn = ctx.framed()?;
    conn.set_timeout(wait);
    conn.expect_error_code(ErrorCode::IDLE_TIMEOUT, "an idle framed connection")?;
    conn.expect_closed_after_fatal()
}

/// How long the trickle case goes on sending bytes, in idle timeouts after
/// the last complete frame: a server that restarts its timer at each byte
/// cannot time out before it ends plus one timeout.
const TRICKLE_FOR: u32 = 2;

/// How many bytes the trickle case sends per idle timeout (gaps of a quarter
/// of the timeout), never completing the frame.
const TRICKLE_BYTES_PER_TIMEOUT: u32 = 4;

fn trickle_does_not_restart_idle(ctx: &mut Ctx) -> CheckResult {
    let idle = ctx.options.idle_timeout.unwrap_or_default();
    let gap = idle / TRICKLE_BYTES_PER_TIMEOUT;
    let mut conn = ctx.framed()?;
    let ping = frame(FrameType::Ping, false, b"last complete frame");
    // The timer restarts when the server has the PING, after this instant.
    let last_complete = std::time::Instant::now();
    conn.send(&ping)?;
    let pong = conn.reply_to(&ping, FrameType::Pong, false, ping.data.clone());
    conn.expect(&pong, "the last complete frame, a PING")?;
    let deadline = last_complete + idle * TRICKLE_FOR;
    let trickled = text(b"trickled", false).to_bytes();
    conn.note(format!(
        "(sending a TEXT frame one byte every {} ms, never completing it, until {} ms after the PING)",
        gap.as_millis(),
        (idle * TRICKLE_FOR).as_millis()
    ));
    let mut sent = 0;
    let error = loop {
        if std::time::Instant::now() >= deadline {
            break None;
        }
        // A failed write means the server closed: the read below says how.
        conn.write_regardless(&trickled[sent..sent + 1]);
        sent = (sent + 1).min(trickled.len() - 1);
        if let Some(frame) = conn.poll_frame(gap)? {
            break Some(frame);
        }
    };
    let expected = format!(
        "ERROR(IDLE_TIMEOUT) within {} ms of the last complete frame",
        (idle * TRICKLE_FOR).as_millis()
    );
    let Some(error) = error else {
        return Err(Failure::mismatch(
            "bytes of an incomplete frame kept the connection from timing out (the idle timer restarts only at complete frames, SPEC.md §9.1)",
            expected,
            format!(
                "nothing after {} ms of trickled bytes",
                (idle * TRICKLE_FOR).as_millis()
            ),
        ));
    };
    let is_idle = error.frame_type == FrameType::Error
        && ErrorPayload::parse(&error.data).is_ok_and(|p| p.code == ErrorCode::IDLE_TIMEOUT);
    if !is_idle {
        return Err(Failure::mismatch(
            "wrong frame while a frame was trickled",
            expected,
            crate::conform::show::frame(&error),
        ));
    }
    conn.expect_closed_after_fatal()
}

fn raw_idle(ctx: &mut Ctx) -> CheckResult {
    let idle = ctx.options.idle_timeout.unwrap_or_default();
    let mut conn = ctx.connect()?;
    conn.write(b"idle")?;
    conn.expect_raw(b"IDLE", "raw reply")?;
    // Raw mode has no way to say "timed out" but closing, and a server may
    // linger before it closes; what it may not do is answer input that
    // arrives after its idle timeout.
    conn.note(format!(
        "(waiting {} ms: idle timeout + {} ms)",
        (idle + IDLE_MARGIN).as_millis(),
        IDLE_MARGIN.as_millis()
    ));
    std::thread::sleep(idle + IDLE_MARGIN);
    conn.write(b"too late")?;
    conn.shutdown_write();
    conn.expect_eof("the idle timeout")
}

/// How often the BUSY case asks again while the server frees a slot.
const RETRY_EVERY: Duration = Duration::from_millis(50);

fn ping(conn: &mut Conn, what: &str) -> CheckResult {
    let request = frame(FrameType::Ping, false, b"here");
    round_trip(conn, &request, FrameType::Pong, b"here", what)
}

/// Open as many framed connections as the server's limit, each seen served
/// (a PING answered), and keep them open.
pub(super) fn fill_to_the_limit(ctx: &mut Ctx) -> Result<Vec<Conn>, crate::conform::Failure> {
    let limit = ctx.options.max_connections.unwrap_or_default();
    let mut open = Vec::with_capacity(limit);
    for n in 1..=limit {
        let what = format!("connection {n} of the limit of {limit}");
        let mut conn = ctx.framed().map_err(|f| f.context(&what))?;
        ping(&mut conn, &format!("a PING on {what}"))?;
        open.push(conn);
    }
    Ok(open)
}

fn busy_at_the_limit(ctx: &mut Ctx) -> CheckResult {
    let mut open = fill_to_the_limit(ctx)?;
    let mut over = ctx.connect()?;
    over.write(&PREFACE)?;
    over.expect_raw(&PREFACE, "the server's preface, before ERROR(BUSY)")?;
    over.expect_error_code(ErrorCode::BUSY, "a preface over the connection limit")?;
    over.expect_closed_after_fatal()?;

    // Free one slot the polite way; the server notices when it sees the close.
    let mut first = open.remove(0);
    let bye = frame(FrameType::Bye, false, b"");
    round_trip(&mut first, &bye, FrameType::Bye, b"", "BYE to free a slot")?;
    drop(first);
    let newcomer = served_when_a_slot_frees(ctx)?;
    // Leave the server as found: every connection ended and seen to end, so
    // the next case does not meet a full server.
    for mut conn in open.into_iter().chain([newcomer]) {
        conn.shutdown_write();
        conn.expect_eof("the client's end of input")?;
    }
    served_when_a_slot_frees(ctx).map(drop)
}

fn busy_for_any_version(ctx: &mut Ctx) -> CheckResult {
    // Held open until the case ends, so that the server stays full.
    let _open = fill_to_the_limit(ctx)?;
    let mut over = ctx.connect()?;
    let mut v2 = PREFACE;
    v2[7] = 2;
    over.write(&v2)?;
    over.expect_raw(
        &PREFACE,
        "the server's preface (version 1), before ERROR(BUSY)",
    )?;
    over.expect_error_code(
        ErrorCode::BUSY,
        "a version-2 preface over the connection limit",
    )?;
    over.expect_closed_after_fatal()
}

/// Connect until a connection is served (a PING answered) instead of told
/// BUSY: the server frees a slot only once it has seen a connection end,
/// which takes it a moment. Gives up after the read timeout.
fn served_when_a_slot_frees(ctx: &mut Ctx) -> Result<Conn, crate::conform::Failure> {
    let deadline = std::time::Instant::now() + ctx.options.timeout;
    loop {
        let mut conn = ctx.framed()?;
        let request = frame(FrameType::Ping, false, b"a free slot?");
        conn.send(&request)?;
        let reply = conn.recv_frame("PONG (a slot was freed)")?;
        let pong = conn.reply_to(&request, FrameType::Pong, false, request.data.clone());
        if reply == pong {
            return Ok(conn);
        }
        let busy = reply.frame_type == FrameType::Error
            && ErrorPayload::parse(&reply.data).is_ok_and(|p| p.code == ErrorCode::BUSY);
        if !busy || std::time::Instant::now() >= deadline {
            return Err(crate::conform::Failure::mismatch(
                "no connection served after one of the limit closed",
                crate::conform::show::frame(&pong),
                crate::conform::show::frame(&reply),
            ));
        }
        conn.note("(still BUSY: the server has not yet seen the freed slot; asking again)");
        std::thread::sleep(RETRY_EVERY);
    }
}
