//! Streaming frame decoder: cuts frames off the front of a `BytesMut`.

use bytes::{Buf, BytesMut};

use super::frame::{FrameHeader, FrameRepr, HEADER_LEN, parse_header};

/// The default receive limit on a frame's data: 1 MiB (SPEC.md §3.4).
pub const DEFAULT_MAX_DATA_LEN: u32 = 1024 * 1024;

/// A header announced more data than the receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame length {} exceeds the limit of {limit} bytes", .header.data_len)]
pub struct FrameTooLarge {
    /// The offending header (its addresses address the ERROR reply).
    pub header: FrameHeader,
    /// The receiver's limit.
    pub limit: u32,
}

/// Decodes frames from a stream, enforcing a limit on the data length.
///
/// Every strict prefix of a frame is "need more" (`Ok(None)`); the limit is
/// checked as soon as the 42 header bytes are there, before any data is
/// buffered, so a peer cannot make the receiver hold more than
/// `HEADER_LEN + limit` bytes for one frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_data_len: u32,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(DEFAULT_MAX_DATA_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames whose data is longer than `max_data_len`.
    pub fn new(max_data_len: u32) -> FrameDecoder {
        FrameDecoder { max_data_len }
    }

    /// The limit on a frame's data length.
    pub fn max_data_len(&self) -> u32 {
        self.max_data_len
    }

    /// How many more bytes `buf` needs before [`FrameDecoder::decode`] can
    /// return a frame (0 when one is complete or the header is over the limit).
    pub fn bytes_needed(&self, buf: &[u8]) -> usize {
        match parse_header(buf) {
            None => HEADER_LEN - buf.len(),
            Some(header) if header.data_len > self.max_data_len => 0,
            Some(header) => (HEADER_LEN + header.data_len as usize).saturating_sub(buf.len()),
        }
    }

    /// Take one frame off the front of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds only a strict prefix of a frame.
    /// The returned frame's data shares `buf`'s memory (no copy). On error
    /// nothing is consumed.
    ///
    /// # Errors
    /// [`FrameTooLarge`] when the header announces more data than the limit.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<FrameRepr>, FrameTooLarge> {
        let Some(header) = parse_header(buf) else {
            return Ok(None);
        };
        if header.data_len > self.max_data_len {
            return Err(FrameTooLarge {
                header,
                limit: self.max_data_len,
            });
        }
        let total = HEADER_LEN + header.data_len as usize;
        if buf.len() < total {
            // No `reserve(total)` here: memory follows the bytes that really
            // arrive, so a header alone cannot make the receiver allocate
            // its whole limit.
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let data = buf.split_to(header.data_len as usize).freeze();
        Ok(Some(FrameRepr::from_header(header, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Address, Flags, FrameType};
    use bytes::Bytes;

    fn frame(data: &'static [u8]) -> FrameRepr {
        FrameRepr {
            src: Address::UNSPECIFIED,
            dst: Address::UNSPECIFIED,
            frame_type: FrameType::Bytes,
            flags: Flags::default(),
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn every_strict_prefix_needs_more() {
        let bytes = frame(b"abc").to_bytes();
        let decoder = FrameDecoder::default();
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(decoder.decode(&mut buf), Ok(None), "prefix of {cut} bytes");
            assert_eq!(buf.len(), cut, "nothing consumed");
            let known_len = if cut < HEADER_LEN {
                HEADER_LEN
            } else {
                bytes.len()
            };
            assert_eq!(decoder.bytes_needed(&buf), known_len - cut);
        }
    }

    #[test]
    fn decodes_back_to_back_frames() {
        let mut buf = BytesMut::new();
        frame(b"one").encode(&mut buf);
        frame(b"").encode(&mut buf);
        buf.extend_from_slice(&[1, 2]);
        let decoder = FrameDecoder::default();
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(frame(b"one")));
        assert_eq!(decoder.decode(&mut buf).unwrap(), Some(frame(b"")));
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert_eq!(&buf[..], &[1, 2]);
    }

    #[test]
    fn over_limit_is_rejected_from_the_header_alone() {
        let decoder = FrameDecoder::new(4);
        let mut header_only = BytesMut::from(&frame(b"12345").to_bytes()[..HEADER_LEN]);
        let err = decoder.decode(&mut header_only).unwrap_err();
        assert_eq!(err.header.data_len, 5);
        assert_eq!(err.limit, 4);
        assert_eq!(
            err.to_string(),
            "frame length 5 exceeds the limit of 4 bytes"
        );
        assert_eq!(decoder.bytes_needed(&header_only), 0);
        let mut at_limit = BytesMut::from(&frame(b"1234").to_bytes()[..]);
        assert_eq!(decoder.decode(&mut at_limit).unwrap(), Some(frame(b"1234")));
    }

    #[test]
    fn a_header_alone_does_not_allocate_its_announced_length() {
        let mut header_only = BytesMut::from(&frame(b"").to_bytes()[..]);
        header_only[38..42].copy_from_slice(&u32::MAX.to_be_bytes());
        let capacity = header_only.capacity();
        assert_eq!(
            FrameDecoder::new(u32::MAX).decode(&mut header_only),
            Ok(None)
        );
        assert_eq!(header_only.capacity(), capacity);
    }

    #[test]
    fn decoded_data_shares_the_input_buffer() {
        let mut buf = BytesMut::from(&frame(&[7u8; 4096]).to_bytes()[..]);
        let start = buf.as_ptr() as usize;
        let decoded = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(decoded.data.as_ptr() as usize, start + HEADER_LEN);
    }
}
