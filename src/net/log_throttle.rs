//! Rate-limited log lines: at most one line per interval for one kind of
//! event, and a count of the lines held back ("N more like this
//! suppressed"), so that a flood of bad input cannot flood the log too.

use std::time::{Duration, Instant};

/// How often a throttled kind of line may be written.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The throttle of one kind of log line.
#[derive(Debug)]
pub struct LogThrottle {
    /// What the lines are about, for the line that reports suppressed ones.
    what: &'static str,
    interval: Duration,
    /// No line before this; `None` before the first line.
    quiet_until: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle of lines about `what`, one per `interval`.
    pub fn new(what: &'static str, interval: Duration) -> LogThrottle {
        LogThrottle {
            what,
            interval,
            quiet_until: None,
            suppressed: 0,
        }
    }

    /// Whether an event at `now` may write its line: `Some(n)`, where `n`
    /// lines were suppressed since the last one written (say so with
    /// [`suppressed_note`]), or `None`, counted as suppressed.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.quiet_until.is_some_and(|until| now < until) {
            self.suppressed += 1;
            return None;
        }
        self.quiet_until = Some(now + self.interval);
        Some(std::mem::take(&mut self.suppressed))
    }

    /// The line reporting lines suppressed in an interval that has ended
    /// with no event to carry the count; call it now and then, so that the
    /// count of the end of a flood is not lost.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        let ended = self.quiet_until.is_some_and(|until| now >= until);
        if !ended || self.suppressed == 0 {
            return None;
        }
        let count = std::mem::take(&mut self.suppressed);
        Some(format!("{}: {count} more like this suppressed", self.what))
    }
}

/// `""`, or ` (N more like this suppressed)` to append to a line.
pub fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more like this suppressed)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn one_line_per_interval_and_the_rest_counted() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new("udp: reply dropped", SECOND);
        assert_eq!(throttle.admit(start), Some(0), "the first line is written");
        for ms in [1, 500, 999] {
            let at = start + Duration::from_millis(ms);
            assert_eq!(throttle.admit(at), None, "{ms} ms later");
        }
        assert_eq!(throttle.flush(start + Duration::from_millis(999)), None);
        assert_eq!(
            throttle.admit(start + SECOND),
            Some(3),
            "the next line after the interval carries the count"
        );
        assert_eq!(throttle.admit(start + SECOND), None);
        assert_eq!(throttle.admit(start + 2 * SECOND), Some(1));
    }

    #[test]
    fn a_flood_that_ends_is_still_reported_once() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new("udp: reply dropped", SECOND);
        assert_eq!(throttle.flush(start), None, "nothing written, nothing held");
        throttle.admit(start);
        throttle.admit(start);
        throttle.admit(start);
        assert_eq!(
            throttle.flush(start + SECOND / 2),
            None,
            "interval not over"
        );
        assert_eq!(
            throttle.flush(start + SECOND).as_deref(),
            Some("udp: reply dropped: 2 more like this suppressed")
        );
        assert_eq!(throttle.flush(start + 3 * SECOND), None, "reported once");
        assert_eq!(throttle.admit(start + 3 * SECOND), Some(0));
    }

    #[test]
    fn the_note_names_the_count_only_when_there_is_one() {
        assert_eq!(suppressed_note(0), "");
        assert_eq!(suppressed_note(7), " (7 more like this suppressed)");
    }
}
