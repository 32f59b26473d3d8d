//! `upcase bench`'s progress line: elapsed seconds, replies, rate and wrong
//! replies, once a second on stderr, only on a terminal and only for a run
//! long enough to want one; cleared when the run ends.
//!
//! indicatif draws it: it cuts the line to the terminal's width and clears
//! exactly what it drew, which a line rewritten after `\r` cannot do on a
//! terminal narrower than the line (each update wraps and leaves a row
//! behind).

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::event_loop::ThreadResult;
use super::tally::Live;
use super::{Config, Limit};

/// The line's template: `wide_msg`, the message cut to the terminal's
/// width.
const TEMPLATE: &str = "{wide_msg}";

/// Update the progress line once a second until every client is done.
pub(super) fn show(
    config: &Config,
    handles: &[thread::JoinHandle<ThreadResult>],
    live: &Live,
    started: Instant,
) {
    let long_run = match config.limit {
        Limit::Duration(duration) => duration > Duration::from_secs(2),
        Limit::Requests(_) => true,
    };
    if !(config.progress && long_run && std::io::stderr().is_terminal()) {
        return;
    }
    let line = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(1));
    if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
        line.set_style(style);
    }
    let mut next = started + Duration::from_secs(1);
    while handles.iter().any(|handle| !handle.is_finished()) {
        thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now < next {
            continue;
        }
        next += Duration::from_secs(1);
        let elapsed = now - started;
        if elapsed < Duration::from_secs(2) && matches!(config.limit, Limit::Requests(_)) {
            continue;
        }
        line.set_message(status(
            elapsed,
            live.replies.load(Ordering::Relaxed),
            live.wrong.load(Ordering::Relaxed),
        ));
    }
    line.finish_and_clear();
}

/// The line's text: `    3 s  1200 replies  400 req/s  0 wrong`.
fn status(elapsed: Duration, replies: u64, wrong: u64) -> String {
    format!(
        "{:>5.0} s  {replies} replies  {:.0} req/s  {wrong} wrong",
        elapsed.as_secs_f64(),
        replies as f64 / elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_time_replies_rate_and_wrong() {
        assert_eq!(
            status(Duration::from_secs(3), 1200, 2),
            "    3 s  1200 replies  400 req/s  2 wrong"
        );
    }

    #[test]
    fn the_template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }
}
