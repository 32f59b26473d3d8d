//! The wire format (SPEC.md §2–§3): preface, frame header and data, types,
//! addresses, ERROR codes, and a streaming decoder. Pure functions over byte
//! buffers; no state machines here.

mod address;
mod datagram;
mod decoder;
mod error_code;
mod frame;
mod frame_type;
mod preface;

pub use address::{ADDRESS_LEN, Address};
pub use datagram::{
    FramedDatagramError, MAX_REPLY_DATA, MAX_UDP_PAYLOAD, encode_framed_datagram, framed_datagram,
};
pub use decoder::{DEFAULT_MAX_DATA_LEN, FrameDecoder, FrameTooLarge};
pub use error_code::{ErrorCode, ErrorPayload, ShortErrorPayload};
pub use frame::{
    Flags, Frame, FrameHeader, FrameRepr, HEADER_LEN, Truncated, encode_header, field, parse_header,
};
pub use frame_type::FrameType;
pub use preface::{PREFACE, PREFACE_LEN, PREFACE_MAGIC, PrefaceMatch, VERSION, match_preface};

#[cfg(test)]
mod boundaries;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod readable;
