//! SPEC.md §9: the idle timeout. These cases wait for the server's setting,
//! so they run only when the suite is told it (`--idle-timeout SECS`).

use std::time::Duration;

use crate::conform::case::{Case, Check, Needs};
use crate::conform::client::Ctx;
use crate::wire::ErrorCode;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/9.1/idle-timeout",
        description: "a framed connection with no complete frame for the idle timeout gets ERROR(IDLE_TIMEOUT), then closes",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: framed_idle,
    },
    Case {
        name: "raw/9.1/idle-timeout",
        description: "a raw connection with no input for the idle timeout is closed: input sent later is not answered",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: raw_idle,
    },
];

/// How long after the server's idle timeout the raw case sends its late input.
const IDLE_MARGIN: Duration = Duration::from_millis(500);

/// The server's idle timeout plus the per-read timeout.
fn idle_wait(ctx: &Ctx) -> Duration {
    ctx.options.idle_timeout.unwrap_or_default() + ctx.options.timeout
}

fn framed_idle(ctx: &mut Ctx) -> Check {
    let wait = idle_wait(ctx);
    let mut conn = ctx.framed()?;
    conn.set_timeout(wait);
    conn.expect_error_code(ErrorCode::IDLE_TIMEOUT, "an idle framed connection")?;
    conn.expect_closed_after_fatal()
}

fn raw_idle(ctx: &mut Ctx) -> Check {
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
