//! The frame: a zero-copy view over a buffer ([`Frame`]) and its owned,
//! high-level representation ([`FrameRepr`]), in the style of smoltcp's wire
//! module. `FrameRepr::parse` checks, `FrameRepr::emit` writes; neither
//! allocates for the data.

use bytes::{BufMut, Bytes, BytesMut};

use super::address::{ADDRESS_LEN, Address};
use super::frame_type::FrameType;

/// Byte ranges of the header fields (SPEC.md §3.1).
pub mod field {
    /// A range of header bytes.
    pub type Field = core::ops::Range<usize>;

    /// Source IP (16 bytes, IPv6 or IPv4-mapped).
    pub const SRC_IP: Field = 0..16;
    /// Source port.
    pub const SRC_PORT: Field = 16..18;
    /// Source address: IP and port together.
    pub const SRC_ADDR: Field = 0..18;
    /// Destination IP.
    pub const DST_IP: Field = 18..34;
    /// Destination port.
    pub const DST_PORT: Field = 34..36;
    /// Destination address: IP and port together.
    pub const DST_ADDR: Field = 18..36;
    /// The type byte.
    pub const TYPE: usize = 36;
    /// The flags byte.
    pub const FLAGS: usize = 37;
    /// The data length, u32 big-endian.
    pub const LENGTH: Field = 38..42;
    /// Where the data starts.
    pub const DATA: usize = LENGTH.end;
}

/// Size of the fixed header: every field sits at a constant offset.
pub const HEADER_LEN: usize = field::DATA;

/// The flags byte: bit 0 is MORE, bits 1..7 are reserved and must be zero.
/// The raw byte is kept so a frame with reserved bits still round-trips and
/// can be rejected with MALFORMED by the layer that knows the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Flags(pub u8);

impl Flags {
    /// The MORE bit: the message continues in the next data frame.
    pub const MORE: u8 = 0x01;
    /// The bits that must be zero.
    pub const RESERVED: u8 = !Flags::MORE;

    /// Flags with only MORE set or clear.
    pub fn more_if(more: bool) -> Flags {
        Flags(if more { Flags::MORE } else { 0 })
    }

    /// Whether MORE is set.
    pub fn more(self) -> bool {
        self.0 & Flags::MORE != 0
    }

    /// The reserved bits that are set (zero on a well-formed frame).
    pub fn reserved(self) -> u8 {
        self.0 & Flags::RESERVED
    }
}

/// The buffer is shorter than the header, or than the header plus the data
/// length it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("truncated frame: {needed} bytes needed, {available} available")]
pub struct Truncated {
    /// Bytes the frame needs.
    pub needed: usize,
    /// Bytes the buffer has.
    pub available: usize,
}

/// A read/write view of a frame in a byte buffer.
///
/// After [`Frame::new_checked`] (or a successful [`Frame::check_len`]) no
/// accessor panics. Bytes after the frame's end are ignored.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap a buffer without checking it; accessors may panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wrap a buffer that holds at least one whole frame.
    ///
    /// # Errors
    /// [`Truncated`] when the header or the data is incomplete.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, Truncated> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Check that the buffer holds the header and all the data it announces.
    ///
    /// # Errors
    /// [`Truncated`] with the number of bytes still needed.
    pub fn check_len(&self) -> Result<(), Truncated> {
        let available = self.buffer.as_ref().len();
        if available < HEADER_LEN {
            return Err(Truncated {
                needed: HEADER_LEN,
                available,
            });
        }
        let needed = self.total_len();
        if available < needed {
            return Err(Truncated { needed, available });
        }
        Ok(())
    }

    /// Give back the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Return the source address.
    pub fn src_addr(&self) -> Address {
        Address::from_bytes(self.array(field::SRC_ADDR))
    }

    /// Return the destination address.
    pub fn dst_addr(&self) -> Address {
        Address::from_bytes(self.array(field::DST_ADDR))
    }

    /// Return the type.
    pub fn frame_type(&self) -> FrameType {
        FrameType::from(self.buffer.as_ref()[field::TYPE])
    }

    /// Return the flags byte.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Return the data length the header announces.
    pub fn data_len(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Return the header plus data length: how many bytes this frame occupies.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.data_len() as usize
    }

    fn array(&self, range: field::Field) -> &[u8; ADDRESS_LEN] {
        self.buffer.as_ref()[range]
            .try_into()
            .expect("address fields are ADDRESS_LEN bytes")
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// Return the data. It borrows the buffer, not the view, so it outlives
    /// a view made on the spot (as smoltcp's `Packet<&'a T>::payload`).
    pub fn data(&self) -> &'a [u8] {
        let buffer: &'a [u8] = self.buffer.as_ref();
        &buffer[field::DATA..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Set the source address.
    pub fn set_src_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.to_bytes());
    }

    /// Set the destination address.
    pub fn set_dst_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.to_bytes());
    }

    /// Set the type.
    pub fn set_frame_type(&mut self, frame_type: FrameType) {
        self.buffer.as_mut()[field::TYPE] = frame_type.into();
    }

    /// Set the flags byte.
    pub fn set_flags(&mut self, flags: Flags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Set the data length.
    pub fn set_data_len(&mut self, len: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Return the data, mutably (its length is the header's length field).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[field::DATA..end]
    }
}

/// The header fields of a frame, without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Source address.
    pub src: Address,
    /// Destination address.
    pub dst: Address,
    /// Type.
    pub frame_type: FrameType,
    /// Flags byte.
    pub flags: Flags,
    /// Data length.
    pub data_len: u32,
}

impl FrameHeader {
    /// Write these fields into the header of `frame` (its data untouched).
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src);
        frame.set_dst_addr(self.dst);
        frame.set_frame_type(self.frame_type);
        frame.set_flags(self.flags);
        frame.set_data_len(self.data_len);
    }

    /// Read the header fields of a view whose header is complete.
    ///
    /// # Panics
    /// If the buffer is shorter than [`HEADER_LEN`].
    pub fn read<T: AsRef<[u8]>>(frame: &Frame<T>) -> FrameHeader {
        FrameHeader {
            src: frame.src_addr(),
            dst: frame.dst_addr(),
            frame_type: frame.frame_type(),
            flags: frame.flags(),
            data_len: frame.data_len(),
        }
    }
}

/// A frame as values: what a program builds and inspects.
///
/// The data is [`Bytes`], so a frame decoded from a `BytesMut` shares its
/// memory instead of copying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRepr {
    /// Source address.
    pub src: Address,
    /// Destination address.
    pub dst: Address,
    /// Type.
    pub frame_type: FrameType,
    /// Flags byte (MORE and the reserved bits as received).
    pub flags: Flags,
    /// Data.
    pub data: Bytes,
}

impl FrameRepr {
    /// A frame with unspecified addresses and no flags.
    pub fn new(frame_type: FrameType, data: impl Into<Bytes>) -> FrameRepr {
        FrameRepr {
            src: Address::UNSPECIFIED,
            dst: Address::UNSPECIFIED,
            frame_type,
            flags: Flags::default(),
            data: data.into(),
        }
    }

    /// Copy a checked view into a representation. This copies the data; use
    /// [`FrameDecoder`](super::FrameDecoder) for zero-copy decoding.
    ///
    /// # Errors
    /// [`Truncated`] when the view does not hold a whole frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<FrameRepr, Truncated> {
        frame.check_len()?;
        let header = FrameHeader::read(frame);
        let data = &frame.buffer.as_ref()[field::DATA..frame.total_len()];
        Ok(FrameRepr::from_header(header, Bytes::copy_from_slice(data)))
    }

    /// Join a header and its data.
    pub fn from_header(header: FrameHeader, data: Bytes) -> FrameRepr {
        FrameRepr {
            src: header.src,
            dst: header.dst,
            frame_type: header.frame_type,
            flags: header.flags,
            data,
        }
    }

    /// Return the header fields.
    ///
    /// # Panics
    /// If the data is longer than `u32::MAX` bytes.
    pub fn header(&self) -> FrameHeader {
        FrameHeader {
            src: self.src,
            dst: self.dst,
            frame_type: self.frame_type,
            flags: self.flags,
            data_len: u32::try_from(self.data.len()).expect("frame data longer than u32::MAX"),
        }
    }

    /// Return how many bytes [`FrameRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Write this frame into a view whose buffer is at least
    /// [`FrameRepr::buffer_len`] bytes long.
    ///
    /// # Panics
    /// If the buffer is too short, or the data is longer than `u32::MAX`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        self.header().emit(frame);
        frame.data_mut().copy_from_slice(&self.data);
    }

    /// Append this frame's bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        encode_header(&self.header(), out);
        out.put_slice(&self.data);
    }

    /// Return this frame's bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.buffer_len());
        self.encode(&mut out);
        out.freeze()
    }
}

/// The header at the front of `buf`, if all 42 bytes are there (the data
/// need not be).
pub fn parse_header(buf: &[u8]) -> Option<FrameHeader> {
    (buf.len() >= HEADER_LEN).then(|| FrameHeader::read(&Frame::new_unchecked(buf)))
}

/// Append the 42 header bytes of `header` to `out`; the data is the caller's to append.
pub fn encode_header(header: &FrameHeader, out: &mut BytesMut) {
    let mut bytes = [0u8; HEADER_LEN];
    header.emit(&mut Frame::new_unchecked(&mut bytes[..]));
    out.put_slice(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TEXT frame "hi" from 127.0.0.1:50000 to 127.0.0.1:9999, one field per line.
    const TEXT_HI: [u8; 44] = [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, // source IP ::ffff:127.0.0.1
        0xc3, 0x50, // source port 50000
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, // destination IP
        0x27, 0x0f, // destination port 9999
        0x01, // type TEXT
        0x01, // flags: MORE
        0, 0, 0, 2, // length 2
        b'h', b'i', // data
    ];

    fn text_hi_repr() -> FrameRepr {
        FrameRepr {
            src: Address::from("127.0.0.1:50000".parse::<std::net::SocketAddr>().unwrap()),
            dst: Address::from("127.0.0.1:9999".parse::<std::net::SocketAddr>().unwrap()),
            frame_type: FrameType::Text,
            flags: Flags::more_if(true),
            data: Bytes::from_static(b"hi"),
        }
    }

    #[test]
    fn view_reads_every_field() {
        let frame = Frame::new_checked(&TEXT_HI[..]).unwrap();
        assert_eq!(frame.src_addr().to_string(), "127.0.0.1:50000");
        assert_eq!(frame.dst_addr().to_string(), "127.0.0.1:9999");
        assert_eq!(frame.frame_type(), FrameType::Text);
        assert!(frame.flags().more());
        assert_eq!(frame.flags().reserved(), 0);
        assert_eq!(frame.data_len(), 2);
        assert_eq!(frame.data(), b"hi");
    }

    #[test]
    fn data_borrows_the_buffer_not_the_view() {
        // The view is a temporary: `data` outlives it.
        let data = Frame::new_checked(&TEXT_HI[..]).unwrap().data();
        assert_eq!(data, b"hi");
    }

    #[test]
    fn parse_header_needs_the_42_header_bytes_only() {
        assert_eq!(parse_header(&TEXT_HI[..HEADER_LEN - 1]), None);
        let header = parse_header(&TEXT_HI[..HEADER_LEN]).unwrap();
        assert_eq!(header, text_hi_repr().header());
    }

    #[test]
    fn parse_then_emit_into_a5_filled_buffer_writes_every_byte() {
        let repr = FrameRepr::parse(&Frame::new_checked(&TEXT_HI[..]).unwrap()).unwrap();
        assert_eq!(repr, text_hi_repr());
        let mut buffer = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Frame::new_unchecked(&mut buffer[..]));
        assert_eq!(buffer, TEXT_HI);
        assert_eq!(repr.to_bytes(), &TEXT_HI[..]);
    }

    #[test]
    fn check_len_rejects_short_header_and_short_data() {
        assert_eq!(
            Frame::new_checked(&TEXT_HI[..41]).unwrap_err(),
            Truncated {
                needed: 42,
                available: 41
            }
        );
        assert_eq!(
            Frame::new_checked(&TEXT_HI[..43]).unwrap_err(),
            Truncated {
                needed: 44,
                available: 43
            }
        );
    }

    #[test]
    fn reserved_bits_are_kept() {
        let mut bytes = TEXT_HI;
        bytes[field::FLAGS] = 0x83;
        let repr = FrameRepr::parse(&Frame::new_checked(&bytes[..]).unwrap()).unwrap();
        assert!(repr.flags.more());
        assert_eq!(repr.flags.reserved(), 0x82);
        assert_eq!(repr.to_bytes(), &bytes[..]);
    }
}
