//! Rate-limited log lines: at most a few lines per interval for one kind of
//! event, and a count of the lines held back ("N more like this
//! suppressed"), so that a flood of bad input cannot flood the log too.
//!
//! The UDP service, and `upcase serve`'s metrics endpoint, keep a
//! [`LogThrottle`] per kind of line. The TCP lines a peer can repeat at
//! will (protocol errors, connects, closes, PROXY rejections) are
//! throttled per [`TcpLine`] kind and per event loop: each loop is one
//! thread, so its throttles live in a thread-local and cost no lock and
//! no plumbing through every call that logs.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::{Duration, Instant};

use log::Level;

use super::metrics::{ERROR_SLOTS, ProxyOutcome, error_slot};
use crate::wire::ErrorCode;

/// How often a throttled kind of line may be written.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Lines of one [`TcpLine`] kind one event loop writes per [`LOG_INTERVAL`].
pub(crate) const TCP_LINES_PER_INTERVAL: u32 = 5;

/// The throttle of one kind of log line.
#[derive(Debug)]
pub struct LogThrottle {
    /// What the lines are about, for the line that reports suppressed ones.
    what: Cow<'static, str>,
    interval: Duration,
    /// Lines written per window of `interval`.
    lines_per_interval: u32,
    /// The end of the window the last line opened; `None` before the first.
    window_end: Option<Instant>,
    /// Lines written in that window.
    written: u32,
    suppressed: u64,
}

impl LogThrottle {
    /// A throttle of lines about `what`, one per `interval`.
    pub fn new(what: impl Into<Cow<'static, str>>, interval: Duration) -> LogThrottle {
        LogThrottle {
            what: what.into(),
            interval,
            lines_per_interval: 1,
            window_end: None,
            written: 0,
            suppressed: 0,
        }
    }

    /// Allow `lines` (at least one) per interval instead of one.
    pub fn lines_per_interval(mut self, lines: u32) -> LogThrottle {
        self.lines_per_interval = lines.max(1);
        self
    }

    /// Whether an event at `now` may write its line: `Some(n)`, where `n`
    /// lines were suppressed since the last one written (say so with
    /// [`suppressed_note`]), or `None`, counted as suppressed. The first
    /// line after a window has ended opens the next one.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.window_end.is_none_or(|end| now >= end) {
            self.window_end = Some(now + self.interval);
            self.written = 0;
        }
        if self.written == self.lines_per_interval {
            self.suppressed += 1;
            return None;
        }
        self.written += 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// The line reporting lines suppressed in an interval that has ended
    /// with no event to carry the count; call it now and then, so that the
    /// count of the end of a flood is not lost.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        let ended = self.window_end.is_some_and(|end| now >= end);
        if !ended || self.suppressed == 0 {
            return None;
        }
        let count = std::mem::take(&mut self.suppressed);
        Some(format!("{}: {count} more like this suppressed", self.what))
    }

    /// When [`flush`](Self::flush) will have a line to report, if it will.
    pub fn flush_due(&self) -> Option<Instant> {
        self.window_end.filter(|_| self.suppressed > 0)
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

/// A kind of TCP log line that a peer can make the server repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpLine {
    /// A protocol error, one kind per ERROR code (SPEC.md §6.2).
    ProtocolError(ErrorCode),
    /// A connection was accepted and is served.
    Connected,
    /// A connection over the limit, to be told BUSY or closed.
    OverLimit,
    /// A connection over the limit closed at once.
    DroppedOverLimit,
    /// A connection evicted to make room for another.
    Evicted,
    /// A connection's end, with its counters.
    Closed,
    /// A socket closed before it was served, for its PROXY header.
    ProxyRejected(ProxyOutcome),
}

/// The kinds without a code or an outcome, in the order of their throttles.
const CONNECTION_LINES: [TcpLine; 5] = [
    TcpLine::Connected,
    TcpLine::OverLimit,
    TcpLine::DroppedOverLimit,
    TcpLine::Evicted,
    TcpLine::Closed,
];

impl TcpLine {
    /// Whether this event may write its line now: `Some(note)` to append
    /// to it ([`suppressed_note`]), or `None`, counted as suppressed (see
    /// [`LogThrottle::admit`]). A line the log level leaves out is neither
    /// written nor counted.
    pub(crate) fn admit(self) -> Option<String> {
        if self.level() > log::max_level() {
            return None;
        }
        let suppressed = TCP_LINES.with_borrow_mut(|lines| lines.admit(self, Instant::now()))?;
        Some(suppressed_note(suppressed))
    }

    fn level(self) -> Level {
        match self {
            TcpLine::ProtocolError(_) | TcpLine::ProxyRejected(_) => Level::Warn,
            _ => Level::Info,
        }
    }

    /// Its throttle's place in [`TcpLines`]: ERROR slots, then the
    /// connection lines, then the PROXY outcomes.
    fn index(self) -> usize {
        match self {
            TcpLine::ProtocolError(code) => error_slot(code),
            TcpLine::ProxyRejected(outcome) => {
                ERROR_SLOTS + CONNECTION_LINES.len() + outcome as usize
            }
            line => {
                let at = CONNECTION_LINES.iter().position(|&kind| kind == line);
                ERROR_SLOTS + at.expect("every other kind is a connection line")
            }
        }
    }

    /// What its lines are about, for the line that reports suppressed ones.
    fn what(self) -> Cow<'static, str> {
        match self {
            TcpLine::ProtocolError(code) if error_slot(code) == 0 => {
                "protocol error with a code SPEC.md does not define".into()
            }
            TcpLine::ProtocolError(code) => format!("protocol error {code} ({})", code.0).into(),
            TcpLine::Connected => "tcp: connected".into(),
            TcpLine::OverLimit => "tcp: connected over the connection limit".into(),
            TcpLine::DroppedOverLimit => "tcp: dropped over the connection limit".into(),
            TcpLine::Evicted => "tcp: evicted (server full)".into(),
            TcpLine::Closed => "tcp: closed".into(),
            TcpLine::ProxyRejected(outcome) => format!(
                "tcp: closed before being served (PROXY header {})",
                outcome.name()
            )
            .into(),
        }
    }

    /// Every kind, one per throttle, in [`index`](Self::index) order (an
    /// undefined ERROR code stands for slot 0).
    fn all() -> impl Iterator<Item = TcpLine> {
        let codes = (0..ERROR_SLOTS)
            .map(|slot| TcpLine::ProtocolError(ErrorCode(u16::try_from(slot).expect("ten slots"))));
        let outcomes = ProxyOutcome::ALL.into_iter().map(TcpLine::ProxyRejected);
        codes.chain(CONNECTION_LINES).chain(outcomes)
    }
}

thread_local! {
    /// This event loop's TCP throttles (see the module docs).
    static TCP_LINES: RefCell<TcpLines> = RefCell::new(TcpLines::new());
}

/// Write the lines of suppressed TCP log lines whose interval has ended
/// (this loop's); call it once a turn.
pub(crate) fn flush_tcp_lines(now: Instant) {
    TCP_LINES.with_borrow_mut(|lines| lines.flush(now, |level, line| log::log!(level, "{line}")));
}

/// When [`flush_tcp_lines`] will have a line to write, if it will: a
/// deadline for the loop's `poll`, so the count of a flood's end is not
/// held until the next event.
pub(crate) fn next_tcp_flush() -> Option<Instant> {
    TCP_LINES.with_borrow(TcpLines::flush_due)
}

/// One loop's throttles, one per [`TcpLine`] kind.
#[derive(Debug)]
struct TcpLines {
    throttles: Vec<(Level, LogThrottle)>,
}

impl TcpLines {
    fn new() -> TcpLines {
        let throttles = TcpLine::all().map(|line| {
            let throttle = LogThrottle::new(line.what(), LOG_INTERVAL)
                .lines_per_interval(TCP_LINES_PER_INTERVAL);
            (line.level(), throttle)
        });
        TcpLines {
            throttles: throttles.collect(),
        }
    }

    fn admit(&mut self, line: TcpLine, now: Instant) -> Option<u64> {
        self.throttles[line.index()].1.admit(now)
    }

    fn flush(&mut self, now: Instant, mut write: impl FnMut(Level, &str)) {
        for (level, throttle) in &mut self.throttles {
            if let Some(line) = throttle.flush(now) {
                write(*level, &line);
            }
        }
    }

    fn flush_due(&self) -> Option<Instant> {
        let due = self
            .throttles
            .iter()
            .map(|(_, throttle)| throttle.flush_due());
        due.flatten().min()
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

    #[test]
    fn a_window_admits_its_lines_and_the_next_window_carries_the_count() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new("tcp: closed", SECOND).lines_per_interval(3);
        for ms in [0, 1, 998] {
            let at = start + Duration::from_millis(ms);
            assert_eq!(throttle.admit(at), Some(0), "line {ms} ms in: within three");
        }
        for ms in [998, 999] {
            let at = start + Duration::from_millis(ms);
            assert_eq!(throttle.admit(at), None, "{ms} ms in: over three");
        }
        assert_eq!(throttle.admit(start + SECOND), Some(2), "the window ended");
        assert_eq!(throttle.admit(start + SECOND), Some(0));
        assert_eq!(throttle.admit(start + SECOND), Some(0));
        assert_eq!(
            throttle.admit(start + SECOND),
            None,
            "three in this one too"
        );
    }

    #[test]
    fn a_window_opens_at_the_first_line_after_a_quiet_spell() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new("tcp: connected", SECOND).lines_per_interval(2);
        throttle.admit(start);
        // Long after: the window is the line's, not a fixed tick's.
        let later = start + Duration::from_millis(5_700);
        assert_eq!(throttle.admit(later), Some(0));
        assert_eq!(throttle.admit(later + Duration::from_millis(999)), Some(0));
        assert_eq!(throttle.admit(later + Duration::from_millis(999)), None);
        assert_eq!(throttle.admit(later + SECOND), Some(1));
    }

    #[test]
    fn a_flush_is_due_only_when_lines_were_suppressed() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new("tcp: closed", SECOND);
        assert_eq!(throttle.flush_due(), None, "nothing written");
        throttle.admit(start);
        assert_eq!(throttle.flush_due(), None, "nothing suppressed");
        throttle.admit(start + Duration::from_millis(10));
        assert_eq!(
            throttle.flush_due(),
            Some(start + SECOND),
            "the window's end"
        );
        assert!(throttle.flush(start + SECOND).is_some());
        assert_eq!(throttle.flush_due(), None, "reported");
    }

    const UNKNOWN: TcpLine = TcpLine::ProtocolError(ErrorCode::UNKNOWN_TYPE);

    /// Lines of `kind` admitted out of `tries` at `now`.
    fn admitted(lines: &mut TcpLines, kind: TcpLine, tries: usize, now: Instant) -> usize {
        (0..tries)
            .filter(|_| lines.admit(kind, now).is_some())
            .count()
    }

    #[test]
    fn each_tcp_kind_is_throttled_apart() {
        let now = Instant::now();
        let mut lines = TcpLines::new();
        let allowance = TCP_LINES_PER_INTERVAL as usize;
        assert_eq!(admitted(&mut lines, UNKNOWN, 1000, now), allowance);
        for other in [
            TcpLine::ProtocolError(ErrorCode::UNEXPECTED_TYPE),
            TcpLine::Connected,
            TcpLine::OverLimit,
            TcpLine::DroppedOverLimit,
            TcpLine::Evicted,
            TcpLine::Closed,
            TcpLine::ProxyRejected(ProxyOutcome::Untrusted),
            TcpLine::ProxyRejected(ProxyOutcome::Timeout),
        ] {
            assert_eq!(
                admitted(&mut lines, other, 1000, now),
                allowance,
                "{other:?} after a flood of UNKNOWN_TYPE"
            );
        }
    }

    #[test]
    fn every_tcp_kind_has_a_throttle_of_its_own() {
        let kinds: Vec<TcpLine> = TcpLine::all().collect();
        assert_eq!(kinds.len(), TcpLines::new().throttles.len());
        for (at, kind) in kinds.iter().enumerate() {
            assert_eq!(kind.index(), at, "{kind:?}");
        }
        let undefined = TcpLine::ProtocolError(ErrorCode(4000));
        assert_eq!(
            undefined.index(),
            0,
            "codes SPEC.md does not define share slot 0"
        );
    }

    #[test]
    fn the_end_of_a_flood_is_reported_per_kind_at_its_level() {
        let start = Instant::now();
        let mut lines = TcpLines::new();
        let allowance = TCP_LINES_PER_INTERVAL as usize;
        admitted(&mut lines, UNKNOWN, allowance + 7, start);
        admitted(&mut lines, TcpLine::Closed, allowance + 2, start);
        admitted(&mut lines, TcpLine::Connected, allowance, start);
        assert_eq!(lines.flush_due(), Some(start + LOG_INTERVAL));
        let mut written = Vec::new();
        lines.flush(start + LOG_INTERVAL, |level, line| {
            written.push((level, line.to_string()))
        });
        assert_eq!(
            written,
            [
                (
                    Level::Warn,
                    "protocol error UNKNOWN_TYPE (5): 7 more like this suppressed".to_string()
                ),
                (
                    Level::Info,
                    "tcp: closed: 2 more like this suppressed".to_string()
                ),
            ]
        );
        assert_eq!(lines.flush_due(), None, "all reported");
    }

    #[test]
    fn a_loops_lines_are_throttled_only_at_a_level_the_log_writes() {
        // No logger is installed in unit tests; only the level matters.
        log::set_max_level(log::LevelFilter::Error);
        assert_eq!(TcpLine::Closed.admit(), None, "info lines are off");
        assert_eq!(UNKNOWN.admit(), None, "warn lines are off");
        assert_eq!(next_tcp_flush(), None, "and were not counted");

        log::set_max_level(log::LevelFilter::Info);
        let start = Instant::now();
        let notes: Vec<String> = (0..100).filter_map(|_| TcpLine::Closed.admit()).collect();
        let allowance = TCP_LINES_PER_INTERVAL as usize;
        // A second may pass between two calls on a loaded machine.
        assert!(
            (allowance..=2 * allowance).contains(&notes.len()),
            "{notes:?}"
        );
        assert_eq!(notes[0], "", "nothing suppressed before the first");
        let due = next_tcp_flush().expect("suppressed lines to report");
        assert!(
            due > start && due <= Instant::now() + LOG_INTERVAL,
            "{due:?}"
        );
        flush_tcp_lines(due);
        assert_eq!(next_tcp_flush(), None, "reported");
    }
}
