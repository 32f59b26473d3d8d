//! UDP requests: one datagram each, numbered so that replies can be matched
//! to requests.
//!
//! Datagrams in flight can be lost, or answered out of order, and a raw
//! reply carries nothing but upper-case text. So the first [`SEQ_WIDTH`]
//! bytes of every payload are the request's sequence number in decimal
//! (digits are their own upper case, so the oracle's answer keeps them). A
//! reply is matched by those digits, then the rest is compared with the
//! oracle's answer, computed once by [`Workload`].
//!
//! ```text
//!   raw:     00000042 the quick brown fox, straße…\n
//!   framed:  preface │ header (TEXT, N) │ 00000042 the quick brown fox…
//! ```

use upcase::wire::{
    FrameRepr, FrameType, FramedDatagramError, HEADER_LEN, PREFACE_LEN, framed_datagram,
};
use upcase::wire::{MAX_REPLY_DATA, MAX_UDP_PAYLOAD, encode_framed_datagram};

use super::check::{ReplyCheck, compare, frame_problem};
use super::workload::{RequestMode, Workload};

/// Digits of the sequence number at the start of every payload.
pub const SEQ_WIDTH: usize = 8;
/// Sequence numbers are written modulo this (10^[`SEQ_WIDTH`]).
pub const SEQ_MODULUS: u64 = 100_000_000;

/// The request datagram of one client, rewritten in place for each
/// sequence number, and what its replies must look like.
#[derive(Debug, Clone)]
pub struct Datagrams {
    mode: RequestMode,
    frame_type: FrameType,
    /// The whole datagram (preface and frame header included when framed).
    request: Vec<u8>,
    /// Where the payload (and so the sequence digits) starts in `request`.
    payload_at: usize,
    /// The oracle's reply payload; its first [`SEQ_WIDTH`] bytes are
    /// replaced by the matched reply's number before a mismatch is described.
    expected: Vec<u8>,
}

/// What a reply datagram says.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// It carries sequence number `seq` (modulo [`SEQ_MODULUS`]); the rest
    /// of it is right or wrong.
    Numbered {
        /// The number in the reply's first digits.
        seq: u64,
        /// The reply compared with the oracle's answer for that number.
        check: ReplyCheck,
    },
    /// It cannot be matched to a request (an ERROR frame, no digits, not a
    /// datagram of the expected mode): a wrong reply.
    Unnumbered(String),
}

impl Datagrams {
    /// Number the payloads of `workload`.
    ///
    /// # Errors
    /// A message saying which `--size` to use when the payload has no room
    /// for the number, or the request or its reply would not fit a datagram.
    pub fn new(workload: &Workload) -> Result<Datagrams, String> {
        let min_size = match workload.mode {
            RequestMode::Raw => SEQ_WIDTH + 1,
            RequestMode::Framed => SEQ_WIDTH,
        };
        if workload.payload.len() < min_size {
            return Err(format!(
                "--udp needs --size {min_size} or more: each payload starts with an \
                 {SEQ_WIDTH}-digit sequence number{}",
                if workload.mode == RequestMode::Raw {
                    " and raw lines end with a newline"
                } else {
                    ""
                }
            ));
        }
        // Every workload starts with ASCII characters other than the newline,
        // so replacing them with digits keeps the oracle's answer right.
        assert!(
            workload.payload[..SEQ_WIDTH]
                .iter()
                .all(|b| b.is_ascii() && *b != b'\n'),
            "workload payloads start with {SEQ_WIDTH} ASCII bytes"
        );
        let (overhead, reply_limit) = match workload.mode {
            RequestMode::Raw => (0, MAX_UDP_PAYLOAD),
            RequestMode::Framed => (PREFACE_LEN + HEADER_LEN, MAX_REPLY_DATA),
        };
        let max_size = MAX_UDP_PAYLOAD - overhead;
        if workload.payload.len() > max_size {
            return Err(format!(
                "a {}-byte payload does not fit a UDP datagram ({MAX_UDP_PAYLOAD} bytes at most): \
                 use --size {max_size} or less with --udp",
                workload.payload.len()
            ));
        }
        if workload.expected.len() > reply_limit {
            return Err(format!(
                "the reply to a {}-byte payload is {} bytes (text grows when upper-cased), \
                 over the {reply_limit} that fit a UDP reply: use a smaller --size or --type bytes",
                workload.payload.len(),
                workload.expected.len()
            ));
        }
        let mut request = Vec::with_capacity(overhead + workload.payload.len());
        if workload.mode == RequestMode::Framed {
            request.extend_from_slice(&encode_framed_datagram(&FrameRepr::new(
                workload.frame_type,
                workload.payload.clone(),
            )));
        } else {
            request.extend_from_slice(&workload.payload);
        }
        Ok(Datagrams {
            mode: workload.mode,
            frame_type: workload.frame_type,
            payload_at: request.len() - workload.payload.len(),
            request,
            expected: workload.expected.to_vec(),
        })
    }

    /// The request datagram numbered `seq` (modulo [`SEQ_MODULUS`]).
    pub fn request(&mut self, seq: u64) -> &[u8] {
        write_seq(
            &mut self.request[self.payload_at..self.payload_at + SEQ_WIDTH],
            seq,
        );
        &self.request
    }

    /// The largest reply expected, in bytes (for sizing receive buffers).
    pub fn reply_len(&self) -> usize {
        self.payload_at + self.expected.len()
    }

    /// Read a reply datagram: its number, and whether it is right.
    pub fn check(&mut self, datagram: &[u8]) -> Reply {
        let data = match self.mode {
            RequestMode::Raw => datagram,
            RequestMode::Framed => match self.frame_data(datagram) {
                Ok(data) => data,
                Err(what) => return Reply::Unnumbered(what),
            },
        };
        let Some(seq) = data.get(..SEQ_WIDTH).and_then(read_seq) else {
            return Reply::Unnumbered(format!(
                "a reply does not start with a {SEQ_WIDTH}-digit request number \
                 (got {:?}): it matches no request",
                String::from_utf8_lossy(&data[..data.len().min(24)])
            ));
        };
        let check = if data[SEQ_WIDTH..] == self.expected[SEQ_WIDTH..] {
            ReplyCheck::Right
        } else {
            write_seq(&mut self.expected[..SEQ_WIDTH], seq);
            compare(&self.expected, data)
        };
        Reply::Numbered { seq, check }
    }

    /// The data of a framed reply: the preface and exactly one frame of the
    /// request's type, without flags.
    fn frame_data<'a>(&self, datagram: &'a [u8]) -> Result<&'a [u8], String> {
        let frame = framed_datagram(datagram).map_err(|error| match error {
            FramedDatagramError::NoPreface => "a reply datagram does not start with the UPCASE/1 \
                 preface (is it a raw-only server? try --mode raw)"
                .to_string(),
            other => format!("a reply datagram is not one frame: {other}"),
        })?;
        // framed_datagram checked that the data runs to the datagram's end.
        let data = &datagram[PREFACE_LEN + HEADER_LEN..];
        match frame_problem(self.frame_type, frame.frame_type(), frame.flags().0, data) {
            Some(problem) => Err(problem),
            None => Ok(data),
        }
    }
}

/// Write `seq` modulo [`SEQ_MODULUS`] as zero-padded decimal into `digits`.
fn write_seq(digits: &mut [u8], mut seq: u64) {
    seq %= SEQ_MODULUS;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
}

/// The number written by [`write_seq`], if `digits` are all decimal.
fn read_seq(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |seq, &digit| {
        digit
            .is_ascii_digit()
            .then(|| seq * 10 + u64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::workload::{Expect, PayloadType};
    use upcase::wire::ErrorPayload;
    use upcase::wire::{PREFACE, parse_header};

    fn datagrams(mode: RequestMode, kind: PayloadType, size: usize) -> Datagrams {
        Datagrams::new(&Workload::new(mode, kind, size, Expect::Upper).unwrap()).unwrap()
    }

    #[test]
    fn raw_payloads_start_with_their_number_and_keep_the_size() {
        let mut d = datagrams(RequestMode::Raw, PayloadType::Text, 64);
        let request = d.request(42).to_vec();
        assert_eq!(request.len(), 64);
        assert!(request.starts_with(b"00000042"), "{request:?}");
        assert!(request.ends_with(b"\n"));
        assert!(std::str::from_utf8(&request).is_ok());
        assert!(d.request(SEQ_MODULUS + 7).starts_with(b"00000007"));
    }

    #[test]
    fn framed_requests_are_preface_and_one_frame_with_the_number() {
        let mut d = datagrams(RequestMode::Framed, PayloadType::Bytes, 100);
        let request = d.request(12_345_678).to_vec();
        assert_eq!(request.len(), PREFACE_LEN + HEADER_LEN + 100);
        assert_eq!(request[..PREFACE_LEN], PREFACE);
        let header = parse_header(&request[PREFACE_LEN..]).unwrap();
        assert_eq!(
            (header.frame_type, header.data_len),
            (FrameType::Bytes, 100)
        );
        assert_eq!(
            &request[PREFACE_LEN + HEADER_LEN..][..SEQ_WIDTH],
            b"12345678"
        );
    }

    #[test]
    fn the_upper_case_of_a_request_matches_its_number() {
        let mut d = datagrams(RequestMode::Raw, PayloadType::Text, 64);
        let upper = String::from_utf8(d.request(9).to_vec())
            .unwrap()
            .to_uppercase();
        assert_eq!(
            d.check(upper.as_bytes()),
            Reply::Numbered {
                seq: 9,
                check: ReplyCheck::Right
            }
        );
        // The request itself (not upper-cased) has the number but is wrong.
        let request = d.request(10).to_vec();
        let Reply::Numbered {
            seq: 10,
            check: ReplyCheck::Wrong(what),
        } = d.check(&request)
        else {
            panic!("a lower-case reply was not matched and found wrong");
        };
        assert!(what.contains("at byte 8"), "{what}");
    }

    #[test]
    fn replies_without_a_number_match_no_request() {
        let mut d = datagrams(RequestMode::Raw, PayloadType::Text, 64);
        assert!(matches!(d.check(b"HELLO\n"), Reply::Unnumbered(_)));
        assert!(matches!(d.check(b"0000"), Reply::Unnumbered(_)));
    }

    #[test]
    fn framed_errors_and_raw_replies_match_no_request() {
        let mut d = datagrams(RequestMode::Framed, PayloadType::Text, 64);
        let payload = ErrorPayload::new(upcase::wire::ErrorCode(4), "bad").to_bytes();
        let error = encode_framed_datagram(&FrameRepr::new(FrameType::Error, payload));
        let Reply::Unnumbered(what) = d.check(&error) else {
            panic!("an ERROR was matched");
        };
        assert!(what.contains("ERROR 4") && what.contains("bad"), "{what}");
        let Reply::Unnumbered(what) = d.check(b"00000001 THE QUICK") else {
            panic!("a raw reply to a framed request was matched");
        };
        assert!(what.contains("preface"), "{what}");
    }

    #[test]
    fn sizes_that_do_not_fit_are_refused_with_the_limit() {
        let build = |mode, kind, size| {
            Datagrams::new(&Workload::new(mode, kind, size, Expect::Upper).unwrap())
        };
        let error = build(RequestMode::Raw, PayloadType::Text, 8).unwrap_err();
        assert!(error.contains("--size 9"), "{error}");
        assert!(build(RequestMode::Framed, PayloadType::Bytes, 8).is_ok());
        assert!(build(RequestMode::Raw, PayloadType::Bytes, 65_507).is_ok());
        let error = build(RequestMode::Raw, PayloadType::Bytes, 65_508).unwrap_err();
        assert!(error.contains("--size 65507"), "{error}");
        let error = build(RequestMode::Framed, PayloadType::Bytes, 65_458).unwrap_err();
        assert!(error.contains("--size 65457"), "{error}");
        // Text grows when upper-cased (ß → SS): its reply would not fit.
        let error = build(RequestMode::Raw, PayloadType::Text, 65_000).unwrap_err();
        assert!(error.contains("--type bytes"), "{error}");
    }

    #[test]
    fn numbers_round_trip() {
        let mut digits = [0u8; SEQ_WIDTH];
        for seq in [0, 1, 99, 12_345_678, SEQ_MODULUS - 1] {
            write_seq(&mut digits, seq);
            assert_eq!(read_seq(&digits), Some(seq));
        }
        assert_eq!(read_seq(b"0000000x"), None);
    }
}
