//! One request head, read into a bounded buffer and parsed by `httparse`.
//!
//! Why bounded and scanned: a scraper's head is a few hundred bytes, so
//! the buffer never holds more than [`Limits::max_head`](super::Limits)
//! (8 KiB by default, what nginx allows one request line or header line
//! in its default `large_client_header_buffers 4 8k`), however much a
//! peer sends: what lies beyond is never read. And httparse is asked only
//! once the blank line that ends a head has arrived, found by looking at
//! the new bytes alone, so a peer trickling one byte at a time costs a
//! scan of each byte once, not a parse of the whole buffer at each byte.

use std::io::{self, Read};

use super::super::METRICS_PATH;

/// Headers httparse may find in one head; more is answered 431.
const MAX_HEADERS: usize = 64;

/// What a complete (or given-up) head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// GET (or HEAD, `head_only`) of the metrics path.
    Metrics { head_only: bool },
    /// Another method at the metrics path.
    WrongMethod,
    /// Any method at another path.
    NotFound,
    /// Not an HTTP/1.x request head.
    Malformed,
    /// No complete head within the bound, or too many headers.
    TooLarge,
}

/// What a [`HeadBuffer::fill`] ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fill {
    /// The socket has nothing more now.
    WouldBlock,
    /// The buffer holds `max` bytes; nothing more is read.
    Full,
    /// The peer closed its side.
    Closed,
}

/// The bytes of one head received so far.
#[derive(Debug, Default)]
pub(super) struct HeadBuffer {
    bytes: Vec<u8>,
    /// Bytes already searched for the blank line that ends a head.
    scanned: usize,
}

impl HeadBuffer {
    /// Read from `source` until it would block, the peer closes, or `max`
    /// bytes are held, through `scratch` (so the buffer grows by what was
    /// received, not by `max` at once).
    ///
    /// # Errors
    /// A read error other than `WouldBlock` and `Interrupted`.
    pub(super) fn fill(
        &mut self,
        source: &mut impl Read,
        max: usize,
        scratch: &mut [u8],
    ) -> io::Result<Fill> {
        loop {
            let room = max.saturating_sub(self.bytes.len()).min(scratch.len());
            if room == 0 {
                return Ok(Fill::Full);
            }
            match source.read(&mut scratch[..room]) {
                Ok(0) => return Ok(Fill::Closed),
                Ok(read) => self.bytes.extend_from_slice(&scratch[..read]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Fill::WouldBlock);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// What the head asks for, once it is complete; `None` while it may
    /// still be. `full`: no more bytes will be read, so an incomplete head
    /// is [`Request::TooLarge`] (or malformed, if httparse can tell).
    pub(super) fn request(&mut self, full: bool) -> Option<Request> {
        if !full && !self.blank_line_arrived() {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Request::new(&mut headers);
        match head.parse(&self.bytes) {
            Ok(httparse::Status::Complete(_)) => Some(classify(head.method, head.path)),
            // A blank line before the request line (RFC 9112 §2.2 lets a
            // server skip those): wait for the rest.
            Ok(httparse::Status::Partial) if !full => None,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                Some(Request::TooLarge)
            }
            Err(_) => Some(Request::Malformed),
        }
    }

    /// Whether a line ending followed by an empty line (`\n\n` or
    /// `\n\r\n`) is in the buffer, looking only at bytes not seen before
    /// (and the two before them, where such an ending may have begun).
    fn blank_line_arrived(&mut self) -> bool {
        let from = self.scanned.saturating_sub(2);
        self.scanned = self.bytes.len();
        let new = &self.bytes[from..];
        new.windows(2).any(|pair| pair == b"\n\n") || new.windows(3).any(|t| t == b"\n\r\n")
    }
}

fn classify(method: Option<&str>, target: Option<&str>) -> Request {
    let path = target.unwrap_or_default().split('?').next();
    match (method, path) {
        (Some("GET"), Some(METRICS_PATH)) => Request::Metrics { head_only: false },
        (Some("HEAD"), Some(METRICS_PATH)) => Request::Metrics { head_only: true },
        (_, Some(METRICS_PATH)) => Request::WrongMethod,
        _ => Request::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `chunks` one at a time, as reads would bring them; the first
    /// answer and after how many chunks it came.
    fn answer(chunks: &[&[u8]], max: usize) -> Option<(Request, usize)> {
        let mut head = HeadBuffer::default();
        let mut scratch = [0; 64];
        for (count, chunk) in chunks.iter().enumerate() {
            let fill = head.fill(&mut &chunk[..], max, &mut scratch).unwrap();
            if let Some(request) = head.request(fill == Fill::Full) {
                return Some((request, count + 1));
            }
        }
        None
    }

    #[test]
    fn a_scrape_is_answered_whatever_the_split() {
        let scrape = b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        for split in 0..=scrape.len() {
            let (first, second) = scrape.split_at(split);
            assert_eq!(
                answer(&[first, second], 8192).map(|(request, _)| request),
                Some(Request::Metrics { head_only: false }),
                "split at {split}"
            );
        }
    }

    #[test]
    fn methods_and_paths_are_told_apart() {
        for (head, expected) in [
            (
                &b"HEAD /metrics HTTP/1.0\n\n"[..],
                Request::Metrics { head_only: true },
            ),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Request::WrongMethod),
            (b"GET / HTTP/1.1\r\n\r\n", Request::NotFound),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Request::NotFound),
            (b"GET /metrics HTTP/2.0\r\n\r\n", Request::Malformed),
            (b"\x16\x03\x01\x02\x00\x01\n\n", Request::Malformed),
        ] {
            assert_eq!(
                answer(&[head], 8192).map(|(request, _)| request),
                Some(expected),
                "{head:?}"
            );
        }
    }

    #[test]
    fn a_head_is_not_answered_before_its_blank_line() {
        let line = b"GET /metrics HTTP/1.1\r\nHost: a\r\n";
        assert_eq!(answer(&[line, b"X-A: b\r\n"], 8192), None);
        // The blank line split over three reads.
        assert_eq!(
            answer(&[line, b"\r", b"\n"], 8192),
            Some((Request::Metrics { head_only: false }, 3))
        );
    }

    #[test]
    fn a_head_over_the_bound_is_too_large_and_nothing_more_is_read() {
        let mut head = HeadBuffer::default();
        let mut endless = std::io::repeat(b'a').take(1 << 20);
        let mut source = b"GET /metrics HTTP/1.1\r\nX-Long: ".chain(&mut endless);
        let fill = head.fill(&mut source, 100, &mut [0; 64]).unwrap();
        assert_eq!(fill, Fill::Full);
        assert_eq!(head.bytes.len(), 100);
        assert_eq!(head.request(true), Some(Request::TooLarge));
    }

    #[test]
    fn too_many_headers_are_too_large() {
        let mut text = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            text.extend_from_slice(b"a: b\r\n");
        }
        text.extend_from_slice(b"\r\n");
        assert_eq!(
            answer(&[&text], 8192).map(|(request, _)| request),
            Some(Request::TooLarge)
        );
    }

    #[test]
    fn garbage_that_fills_the_buffer_is_malformed() {
        let garbage = [0xff; 200];
        assert_eq!(
            answer(&[&garbage], 100).map(|(request, _)| request),
            Some(Request::Malformed)
        );
    }
}
