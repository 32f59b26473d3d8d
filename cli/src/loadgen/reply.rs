//! Cut replies out of the bytes a TCP connection received, and check each
//! against the oracle.
//!
//! Raw replies are lines (the request's only newline, which upper case
//! keeps); framed replies are frames after the server's preface. The parser
//! holds the bytes of an incomplete reply between reads; a connection that
//! has received nothing holds no buffer.
//!
//! What it holds is bounded, whatever the server sends: a raw reply by what
//! the request can produce (3 × its length, SPEC.md §11), a frame by the
//! receive limit its header's type allows (§3.4: 3 × (*N* + 3) for TEXT,
//! *N* for BYTES, the default receive limit for ERROR), decided before its
//! data is awaited.

use bytes::{Buf, BytesMut};

use super::check::{ReplyCheck, check_frame, compare};
use super::workload::{RequestMode, Workload};
use upcase::wire::{
    DEFAULT_MAX_DATA_LEN, FrameDecoder, FrameType, PREFACE_LEN, PrefaceMatch, VERSION,
    match_preface, parse_header,
};

/// Replies of one connection, from its received bytes.
#[derive(Debug)]
pub struct ReplyParser {
    input: BytesMut,
    framing: Framing,
}

#[derive(Debug)]
enum Framing {
    /// Lines: `scanned` bytes of `input` hold no newline; a line longer
    /// than `limit` cannot be a reply.
    Raw { scanned: usize, limit: usize },
    /// Frames after the preface.
    Framed { preface_seen: bool },
}

/// The receive limit of a reply frame of `frame_type` to a request of
/// `request_len` data bytes (SPEC.md §3.4); 0 for types no request asks for.
fn receive_limit(frame_type: FrameType, request_len: usize) -> u32 {
    let limit = match frame_type {
        FrameType::Text => request_len.saturating_add(3).saturating_mul(3),
        FrameType::Bytes => request_len,
        FrameType::Error => return DEFAULT_MAX_DATA_LEN,
        _ => 0,
    };
    u32::try_from(limit).unwrap_or(u32::MAX)
}

/// Why the bytes received cannot be replies: the connection must end.
#[derive(Debug, PartialEq, Eq)]
pub struct StreamError(pub String);

impl ReplyParser {
    /// A parser for the replies of `workload`'s requests.
    pub fn new(workload: &Workload) -> ReplyParser {
        let framing = match workload.mode {
            RequestMode::Raw => Framing::Raw {
                scanned: 0,
                // An echo (--echo) needs the request's length, upper case 3 ×.
                limit: workload.payload.len().saturating_mul(3),
            },
            RequestMode::Framed => Framing::Framed {
                preface_seen: false,
            },
        };
        ReplyParser {
            input: BytesMut::new(),
            framing,
        }
    }

    /// Add bytes read from the socket.
    pub fn extend(&mut self, received: &[u8]) {
        self.input.extend_from_slice(received);
    }

    /// The next complete reply, checked; `Ok(None)` until one is complete.
    pub fn next(&mut self, workload: &Workload) -> Result<Option<ReplyCheck>, StreamError> {
        match &mut self.framing {
            Framing::Raw { scanned, limit } => {
                // A reply is a line: a wrong one is seen at once instead of
                // waiting for bytes that never come.
                let Some(at) = self.input[*scanned..].iter().position(|&b| b == b'\n') else {
                    *scanned = self.input.len();
                    if self.input.len() > *limit {
                        return Err(StreamError(format!(
                            "the server sent {} bytes without a newline, more than the {limit} a request of {} bytes can produce (3 × its length, SPEC.md §11); not read further",
                            self.input.len(),
                            workload.payload.len()
                        )));
                    }
                    return Ok(None);
                };
                let line = self.input.split_to(*scanned + at + 1);
                *scanned = 0;
                Ok(Some(compare(&workload.expected, &line)))
            }
            Framing::Framed { preface_seen } => {
                if !*preface_seen {
                    match match_preface(&self.input) {
                        PrefaceMatch::Partial => return Ok(None),
                        PrefaceMatch::Mismatch => {
                            return Err(StreamError(
                                "the server did not answer with the UPCASE/1 preface \
                                 (is it a raw-only server? try --mode raw)"
                                    .into(),
                            ));
                        }
                        PrefaceMatch::Complete { version } if version != VERSION => {
                            return Err(StreamError(format!(
                                "the server speaks UPCASE version {version}, not {VERSION}"
                            )));
                        }
                        PrefaceMatch::Complete { .. } => {
                            self.input.advance(PREFACE_LEN);
                            *preface_seen = true;
                        }
                    }
                }
                let Some(header) = parse_header(&self.input) else {
                    return Ok(None);
                };
                let limit = receive_limit(header.frame_type, workload.payload.len());
                match FrameDecoder::new(limit).decode(&mut self.input) {
                    Ok(Some(frame)) => Ok(Some(check_frame(
                        workload,
                        frame.frame_type,
                        frame.flags.0,
                        &frame.data,
                    ))),
                    Ok(None) => Ok(None),
                    Err(too_large) => Err(StreamError(format!(
                        "the server's {} frame announces {} data bytes, over the {limit} a reply to {} bytes may carry (SPEC.md §3.4); not read further",
                        header.frame_type,
                        too_large.header.data_len,
                        workload.payload.len()
                    ))),
                }
            }
        }
    }

    /// Whether no byte of an incomplete reply is held.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Give back the buffer's memory once nothing is pending in it (a
    /// connection between replies then holds no buffer).
    pub fn shrink_when_empty(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::workload::{Expect, PayloadType};
    use bytes::BytesMut;
    use upcase::wire::{FrameRepr, FrameType, PREFACE};

    fn workload(mode: RequestMode) -> Workload {
        Workload::new(mode, PayloadType::Text, 64, Expect::Upper).unwrap()
    }

    /// Feed `bytes` one byte at a time; collect every reply.
    fn parse_bytewise(workload: &Workload, bytes: &[u8]) -> Result<Vec<ReplyCheck>, StreamError> {
        let mut parser = ReplyParser::new(workload);
        let mut replies = vec![];
        for byte in bytes {
            parser.extend(&[*byte]);
            while let Some(check) = parser.next(workload)? {
                replies.push(check);
            }
        }
        Ok(replies)
    }

    #[test]
    fn raw_lines_split_anywhere_are_replies() {
        let w = workload(RequestMode::Raw);
        let mut stream = w.expected.to_vec();
        stream.extend_from_slice(&w.expected);
        stream.extend_from_slice(b"wrong\n");
        let replies = parse_bytewise(&w, &stream).unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[..2], [ReplyCheck::Right, ReplyCheck::Right]);
        assert!(matches!(&replies[2], ReplyCheck::Wrong(what) if what.contains("differs")));
    }

    #[test]
    fn framed_replies_follow_the_preface() {
        let w = workload(RequestMode::Framed);
        let mut stream = PREFACE.to_vec();
        let mut frame = BytesMut::new();
        FrameRepr::new(FrameType::Text, w.expected.clone()).encode(&mut frame);
        stream.extend_from_slice(&frame);
        stream.extend_from_slice(&frame);
        assert_eq!(
            parse_bytewise(&w, &stream).unwrap(),
            [ReplyCheck::Right, ReplyCheck::Right]
        );
    }

    #[test]
    fn a_raw_answer_to_a_framed_request_is_a_stream_error() {
        let w = workload(RequestMode::Framed);
        let error = parse_bytewise(&w, b"THE QUICK BROWN FOX\n").unwrap_err();
        assert!(error.0.contains("preface"), "{error:?}");
    }

    #[test]
    fn a_raw_line_longer_than_the_request_can_produce_is_a_stream_error() {
        let w = workload(RequestMode::Raw);
        let mut parser = ReplyParser::new(&w);
        let endless = vec![b'A'; 3 * w.payload.len() + 1];
        parser.extend(&endless[..3 * w.payload.len()]);
        assert_eq!(parser.next(&w), Ok(None), "3 × the request may still come");
        parser.extend(&endless[3 * w.payload.len()..]);
        let error = parser.next(&w).unwrap_err();
        assert!(error.0.contains("without a newline"), "{error:?}");
    }

    #[test]
    fn a_frame_header_over_the_reply_limit_is_a_stream_error_before_its_data() {
        let w = workload(RequestMode::Framed);
        let mut stream = PREFACE.to_vec();
        let mut header = BytesMut::new();
        FrameRepr::new(FrameType::Text, vec![0u8; 3 * (w.payload.len() + 3) + 1])
            .encode(&mut header);
        stream.extend_from_slice(&header[..upcase::wire::HEADER_LEN]);
        let error = parse_bytewise(&w, &stream).unwrap_err();
        assert!(error.0.contains("announces 202 data bytes"), "{error:?}");
    }

    #[test]
    fn the_buffer_is_given_back_between_replies() {
        let w = workload(RequestMode::Raw);
        let mut parser = ReplyParser::new(&w);
        parser.extend(&w.expected);
        assert_eq!(parser.next(&w), Ok(Some(ReplyCheck::Right)));
        parser.shrink_when_empty();
        assert_eq!(parser.input.capacity(), 0);
    }
}
