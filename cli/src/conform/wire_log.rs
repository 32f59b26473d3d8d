//! A case's wire log: what each connection or socket sent and received, in
//! order, as structured entries (JSON) that also print as the familiar
//! lines (`    12.3 ms c1 → TEXT …`).

use std::fmt;

use serde::Serialize;

/// One entry of a wire log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireEvent {
    /// Milliseconds since the case began.
    pub at_ms: f64,
    /// Which connection (`c1`) or UDP socket (`u2`) it concerns; `--` for
    /// the case as a whole (a warning, a rerun).
    pub peer: String,
    /// Sent, received, or a note of the suite's.
    pub direction: Direction,
    /// What happened, as people read it (frames decoded, bytes in hex).
    pub text: String,
    /// The bytes sent or received, when the entry is about bytes: their
    /// length, and their hex (`c05550…`, the first 64 KiB at most).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<WireBytes>,
}

/// Raw bytes in a report: the whole length, and hex of (up to 64 KiB of) them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireBytes {
    /// How many bytes.
    pub len: usize,
    /// Lowercase hex, two digits a byte, no separators.
    pub hex: String,
}

impl WireBytes {
    /// `bytes` as a report holds them.
    pub fn new(bytes: &[u8]) -> WireBytes {
        WireBytes {
            len: bytes.len(),
            hex: hex(bytes),
        }
    }
}

/// `bytes` as lowercase hex without separators (`c05550`), for machines:
/// at most [`HEX_LIMIT`] bytes of them (a report says the whole length
/// beside it).
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 * bytes.len().min(HEX_LIMIT));
    for byte in bytes.iter().take(HEX_LIMIT) {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// How many bytes [`hex`] writes out: a case that sends a 1 MiB frame
/// keeps its report readable; the length is always whole.
const HEX_LIMIT: usize = 64 * 1024;

/// Which way an entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the suite to the server (`→`).
    Sent,
    /// From the server (`←`), or what the suite saw of it (a close, a timeout).
    Received,
    /// Neither: a note of the suite's (connected, a warning, a retry).
    Note,
}

impl WireEvent {
    /// An entry from a log line: a line starting with `→` is sent, with `←`
    /// received (the arrows are the log's own vocabulary, written by `Conn`
    /// and `Dgram`), anything else a note.
    pub fn new(at_ms: f64, peer: impl Into<String>, line: &str) -> WireEvent {
        let (direction, text) = if let Some(text) = line.strip_prefix("→ ") {
            (Direction::Sent, text)
        } else if let Some(text) = line.strip_prefix("← ") {
            (Direction::Received, text)
        } else {
            (Direction::Note, line)
        };
        WireEvent {
            at_ms,
            peer: peer.into(),
            direction,
            text: text.to_string(),
            bytes: None,
        }
    }

    /// The same entry, carrying the bytes it is about.
    pub fn with_bytes(mut self, bytes: &[u8]) -> WireEvent {
        self.bytes = Some(WireBytes::new(bytes));
        self
    }
}

impl fmt::Display for WireEvent {
    /// `    12.3 ms c1 → TEXT …`: the line the text and HTML reports show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match self.direction {
            Direction::Sent => "→ ",
            Direction::Received => "← ",
            Direction::Note => "",
        };
        write!(
            f,
            "{:8.1} ms {} {arrow}{}",
            self.at_ms, self.peer, self.text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_pairs_cut_at_the_limit() {
        assert_eq!(hex(b"\xc0UP"), "c05550");
        assert_eq!(hex(b""), "");
        assert_eq!(hex(&vec![0xab; HEX_LIMIT + 10]).len(), 2 * HEX_LIMIT);
    }

    #[test]
    fn arrows_give_the_direction_and_print_back() {
        let sent = WireEvent::new(1.5, "c1", "→ PING").with_bytes(b"\x01\x02");
        assert_eq!(sent.direction, Direction::Sent);
        assert_eq!(sent.text, "PING");
        assert_eq!(sent.to_string(), "     1.5 ms c1 → PING");
        assert_eq!(
            sent.bytes,
            Some(WireBytes {
                len: 2,
                hex: "0102".into()
            })
        );
        let received = WireEvent::new(0.0, "u2", "← connection reset");
        assert_eq!(received.direction, Direction::Received);
        let note = WireEvent::new(0.0, "--", "warning: slow");
        assert_eq!(note.direction, Direction::Note);
        assert_eq!(note.to_string(), "     0.0 ms -- warning: slow");
    }
}
