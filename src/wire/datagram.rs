//! A framed datagram (SPEC.md §8.2): the preface, then exactly one frame that
//! ends where the datagram ends. What a UDP client checks a reply against.

use super::frame::{Frame, HEADER_LEN};
use super::preface::{PREFACE_LEN, PrefaceMatch, VERSION, match_preface};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameRepr, FrameType, PREFACE};

    fn datagram(data: &'static [u8]) -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        out.extend_from_slice(&FrameRepr::new(FrameType::Text, data).to_bytes());
        out
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
        long.push(0);
        assert_eq!(
            framed_datagram(&long).unwrap_err(),
            FramedDatagramError::LengthMismatch { len: 2, actual: 3 }
        );
    }
}
