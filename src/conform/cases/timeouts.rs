//! SPEC.md §9: the idle timeout. These cases wait for the server's setting,
//! so they run only when the suite is told it (`--idle-timeout SECS`).

use std::time::Duration;

use crate::conform::case::{Case, Check, Needs};
use crate::conform::client::Ctx;
use crate::wire::ErrorCode;

pub const CASES: &[Case] = &[
    Case {
        name: "framed/9/idle-timeout",
        description: "a framed connection with no complete frame for the idle timeout gets ERROR(IDLE_TIMEOUT), then closes",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: framed_idle,
    },
    Case {
        name: "raw/9/idle-timeout",
        description: "a raw connection with no input for the idle timeout is closed after its output is flushed",
        unicode_dependent: false,
        needs: Needs::IdleTimeout,
        check: raw_idle,
    },
];

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
    let wait = idle_wait(ctx);
    let mut conn = ctx.connect()?;
    conn.write(b"idle")?;
    conn.expect_raw(b"IDLE", "raw reply")?;
    conn.set_timeout(wait);
    conn.expect_eof("the idle timeout")
}
