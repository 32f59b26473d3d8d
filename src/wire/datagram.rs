//! A framed datagram (SPEC.md §8.2): the preface, then exactly one frame that
//! ends where the datagram ends; and the sizes a datagram can have (§8.4).

use bytes::{BufMut, BytesMut};

use super::frame::{Frame, FrameRepr, HEADER_LEN};
use super::preface::{PREFACE, PREFACE_LEN, PrefaceMatch, VERSION, match_preface};

/// The largest UDP payload over IPv4: 65,535 − 8 (UDP header) − 20 (IP header)
/// (SPEC.md §8.4).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// The most data a framed datagram can carry: the payload limit less the
/// preface and the header (SPEC.md §8.4).
pub const MAX_REPLY_DATA: usize = MAX_UDP_PAYLOAD - PREFACE_LEN - HEADER_LEN;

/// Why a datagram is not a well-formed framed datagram of version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramedDatagramError {
    /// The datagram does not start with the preface's magic.
    #[error("the datagram does not start with the UPCASE preface")]
    NoPreface,
    /// The preface names another version.
    #[error("the datagram speaks UPCASE version {0}, not {VERSION}")]
    Version(u8),
    /// Fewer than 42 bytes follow the preface.
    #[error("the datagram ends inside the frame header")]
    ShortHeader,
    /// The header's length is not what follows it.
    #[error("the frame says {len} data bytes but the datagram holds {actual}")]
    LengthMismatch {
        /// The header's data length.
        len: u32,
        /// The data bytes the datagram holds.
        actual: usize,
    },
}

/// The frame a framed datagram carries, as a view over it (nothing copied).
///
/// # Errors
/// [`FramedDatagramError`] when the datagram is not the version-1 preface
/// followed by exactly one frame.
pub fn framed_datagram(datagram: &[u8]) -> Result<Frame<&[u8]>, FramedDatagramError> {
    match match_preface(datagram) {
        PrefaceMatch::Complete { version } if version == VERSION => {}
        PrefaceMatch::Complete { version } => return Err(FramedDatagramError::Version(version)),
        PrefaceMatch::Partial | PrefaceMatch::Mismatch => {
            return Err(FramedDatagramError::NoPreface);
        }
    }
    let bytes = &datagram[PREFACE_LEN..];
    if bytes.len() < HEADER_LEN {
        return Err(FramedDatagramError::ShortHeader);
    }
    let frame = Frame::new_unchecked(bytes);
    let actual = bytes.len() - HEADER_LEN;
    if frame.data_len() as usize != actual {
        return Err(FramedDatagramError::LengthMismatch {
            len: frame.data_len(),
            actual,
        });
    }
    Ok(frame)
}

/// The framed datagram that carries `frame`: the preface, then the frame
/// (what [`framed_datagram`] parses). Nothing checks that it fits
/// [`MAX_UDP_PAYLOAD`]: tests send oversized ones on purpose.
pub fn encode_framed_datagram(frame: &FrameRepr) -> BytesMut {
    let mut out = BytesMut::with_capacity(PREFACE_LEN + frame.buffer_len());
    out.put_slice(&PREFACE);
    frame.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameType;

    fn datagram(data: &'static [u8]) -> BytesMut {
        encode_framed_datagram(&FrameRepr::new(FrameType::Text, data))
    }

    #[test]
    fn encoding_is_the_preface_then_the_frame() {
        let frame = FrameRepr::new(FrameType::Ping, &b"p"[..]);
        let bytes = encode_framed_datagram(&frame);
        assert_eq!(bytes[..PREFACE_LEN], PREFACE);
        assert_eq!(bytes[PREFACE_LEN..], frame.to_bytes()[..]);
        assert_eq!(MAX_REPLY_DATA, 65_457, "SPEC.md §8.4's number");
    }

    #[test]
    fn one_whole_frame_after_the_preface_is_accepted() {
        let whole = datagram(b"hi");
        assert_eq!(framed_datagram(&whole).unwrap().data(), b"hi");
    }

    #[test]
    fn every_other_shape_is_named() {
        let whole = datagram(b"hi");
        assert_eq!(
            framed_datagram(b"HI").unwrap_err(),
            FramedDatagramError::NoPreface
        );
        let mut v2 = whole.clone();
        v2[7] = 2;
        assert_eq!(
            framed_datagram(&v2).unwrap_err(),
            FramedDatagramError::Version(2)
        );
        assert_eq!(
            framed_datagram(&whole[..PREFACE_LEN + 41]).unwrap_err(),
            FramedDatagramError::ShortHeader
        );
        assert_eq!(
            framed_datagram(&whole[..whole.len() - 1]).unwrap_err(),
            FramedDatagramError::LengthMismatch { len: 2, actual: 1 }
        );
        let mut long = whole.clone();
        long.extend_from_slice(&[0]);
        assert_eq!(
            framed_datagram(&long).unwrap_err(),
            FramedDatagramError::LengthMismatch { len: 2, actual: 3 }
        );
    }
}
