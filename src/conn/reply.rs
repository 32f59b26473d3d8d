//! Writing reply frames straight into the output buffer.

use std::fmt::Write;

use bytes::BytesMut;

use super::error::ProtocolViolation;
use crate::wire::{Address, Flags, Frame, FrameHeader, FrameType, HEADER_LEN, encode_header};

/// The addresses of a reply (SPEC.md §5.5): swapped, with unspecified ones
/// filled from the socket's local and peer addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyAddresses {
    /// The reply's source.
    pub src: Address,
    /// The reply's destination.
    pub dst: Address,
}

impl ReplyAddresses {
    /// The addresses of a reply to a frame from `request_src` to `request_dst`.
    pub fn for_request(
        request_src: Address,
        request_dst: Address,
        local: Address,
        peer: Address,
    ) -> ReplyAddresses {
        ReplyAddresses {
            src: request_dst.or_else(local),
            dst: request_src.or_else(peer),
        }
    }

    /// The header of a reply with these addresses.
    fn header(self, frame_type: FrameType, flags: Flags, data_len: usize) -> FrameHeader {
        FrameHeader {
            src: self.src,
            dst: self.dst,
            frame_type,
            flags,
            data_len: u32::try_from(data_len).expect("reply data fits u32"),
        }
    }
}

/// Starts a frame whose data is appended by the caller, then patches the
/// length in: the reply's data is written once, in place.
pub struct FrameWriter {
    header_at: usize,
}

impl FrameWriter {
    /// Reserve the header at the end of `out`.
    pub fn begin(out: &mut BytesMut) -> FrameWriter {
        let header_at = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        FrameWriter { header_at }
    }

    /// Undo: drop the header and any data written since `begin`.
    pub fn abandon(self, out: &mut BytesMut) {
        out.truncate(self.header_at);
    }

    /// Fill in the header now that the data is in place.
    pub fn finish(
        self,
        out: &mut BytesMut,
        addresses: ReplyAddresses,
        frame_type: FrameType,
        flags: Flags,
    ) {
        let data_len = out.len() - self.header_at - HEADER_LEN;
        addresses
            .header(frame_type, flags, data_len)
            .emit(&mut Frame::new_unchecked(&mut out[self.header_at..]));
    }
}

/// Append a whole frame with the given data.
pub fn write_frame(
    out: &mut BytesMut,
    addresses: ReplyAddresses,
    frame_type: FrameType,
    flags: Flags,
    data: &[u8],
) {
    encode_header(&addresses.header(frame_type, flags, data.len()), out);
    out.extend_from_slice(data);
}

/// Append the ERROR frame that answers `violation`.
///
/// The code and message are written straight into `out`, with no string or
/// buffer of their own: a client sending nothing but frames that earn an
/// ERROR (unknown types, PONGs) then costs about what one sending PINGs
/// does (issue 17).
pub fn write_error(out: &mut BytesMut, addresses: ReplyAddresses, violation: &ProtocolViolation) {
    let writer = FrameWriter::begin(out);
    out.extend_from_slice(&violation.code().0.to_be_bytes());
    // Writing to a BytesMut cannot fail.
    let _ = write!(out, "{violation}");
    writer.finish(out, addresses, FrameType::Error, Flags::default());
}
