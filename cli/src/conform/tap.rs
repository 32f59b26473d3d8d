//! What the suite's TCP connections ([`Conn`](super::Conn)) and UDP sockets
//! ([`Dgram`](super::Dgram)) share: a label (`c1`, `u2`) and a place in the
//! case's wire log, the way their failures are worded, how a reply is
//! addressed, and what an expected ERROR is.

use std::cell::RefCell;
use std::fmt::Display;
use std::rc::Rc;
use std::time::Instant;

use super::case::{CheckResult, Failure};
use super::wire_log::WireEvent;
use bytes::Bytes;

use upcase::wire::{Address, ErrorCode, ErrorPayload, Flags, FrameRepr, FrameType};

/// The wire log a case's connections and sockets share.
pub(super) type WireLog = Rc<RefCell<Vec<WireEvent>>>;

/// One connection's or socket's pen on its case's wire log.
pub(super) struct Tap {
    /// `c1`, `u2`: how the wire log and failure messages name it.
    pub(super) label: String,
    log: WireLog,
    started: Instant,
}

impl Tap {
    pub(super) fn new(label: String, log: WireLog, started: Instant) -> Tap {
        Tap {
            label,
            log,
            started,
        }
    }

    /// Add a line to the wire log, stamped with the time since the case began.
    pub(super) fn note(&self, line: impl AsRef<str>) {
        self.log.borrow_mut().push(self.event(line.as_ref()));
    }

    /// [`note`](Self::note) an entry about `bytes` (sent or received): the
    /// JSON report carries them in hex.
    pub(super) fn note_bytes(&self, line: impl AsRef<str>, bytes: &[u8]) {
        let event = self.event(line.as_ref()).with_bytes(bytes);
        self.log.borrow_mut().push(event);
    }

    fn event(&self, line: &str) -> WireEvent {
        let at = self.started.elapsed().as_secs_f64() * 1000.0;
        WireEvent::new(at, self.label.as_str(), line)
    }

    /// A failure without an expected/actual pair, named after this socket.
    pub(super) fn failure(&self, message: impl Display) -> Failure {
        Failure::new(format!("{}: {message}", self.label))
    }

    /// A difference from SPEC.md, named after this socket.
    pub(super) fn mismatch(
        &self,
        message: impl Display,
        expected: impl Display,
        actual: impl Display,
    ) -> Failure {
        Failure::mismatch(format!("{}: {message}", self.label), expected, actual)
    }

    /// `Ok` when what arrived is `right`; otherwise a [`mismatch`](Self::mismatch).
    pub(super) fn check(
        &self,
        right: bool,
        message: impl Display,
        expected: impl Display,
        actual: impl Display,
    ) -> CheckResult {
        if right {
            Ok(())
        } else {
            Err(self.mismatch(message, expected, actual))
        }
    }
}

/// An expected ERROR as a failure shows it: only the code is normative, so
/// any message text is accepted.
pub(super) fn expected_error(code: ErrorCode, src: Address, dst: Address) -> String {
    format!(
        "ERROR src={src} dst={dst} {code} ({}): <any message>",
        code.0
    )
}

/// Whether `frame` is an ERROR with `code`, no flags, and destination `dst`
/// (the source is the caller's to check: UDP allows a wildcard one).
pub(super) fn is_error(frame: &FrameRepr, code: ErrorCode, dst: Address) -> bool {
    frame.frame_type == FrameType::Error
        && frame.flags == Flags::default()
        && frame.dst == dst
        && ErrorPayload::parse(&frame.data).is_ok_and(|payload| payload.code == code)
}

/// Reply (source, destination) for a request from `src` to `dst`, sent on a
/// socket from `client` to `server` (SPEC.md §5.5, §8.5): swapped, and the
/// unspecified ones filled in with what the server sees.
pub(super) fn reply_addresses(
    (src, dst): (Address, Address),
    (server, client): (Address, Address),
) -> (Address, Address) {
    (dst.or_else(server), src.or_else(client))
}

/// The reply to `request` as [`reply_addresses`] addresses it, without flags.
pub(super) fn reply(
    request: &FrameRepr,
    (server, client): (Address, Address),
    frame_type: FrameType,
    data: impl Into<Bytes>,
) -> FrameRepr {
    let (src, dst) = reply_addresses((request.src, request.dst), (server, client));
    FrameRepr {
        src,
        dst,
        ..FrameRepr::new(frame_type, data)
    }
}
