//! The properties this crate promises, each written once as a plain function
//! that panics when the property fails. The proptest suites (`cargo test`) and
//! the cargo-fuzz targets (`fuzz/`) both call these, so the two always check
//! the same thing. Compiled for tests and with the `arbitrary` feature.

use bytes::BytesMut;

pub mod client_ops;
pub mod server_ops;

use crate::transform::{CaseMode, InvalidUtf8, LosslessMode, LosslessUpcaser, Upcaser};
use crate::wire::{FrameDecoder, FrameRepr, HEADER_LEN};

/// Cut `input` into chunks at `cuts` (taken modulo `input.len() + 1`, sorted;
/// repeated cuts give empty chunks).
pub fn chunks_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    chunks
}

/// What the std library says the whole transform of `input` is.
pub fn transform_oracle(mode: CaseMode, input: &[u8]) -> Result<Vec<u8>, InvalidUtf8> {
    match mode {
        CaseMode::Ascii => Ok(input.to_ascii_uppercase()),
        CaseMode::UnicodeStrict => match std::str::from_utf8(input) {
            Ok(text) => Ok(text.to_uppercase().into_bytes()),
            Err(error) => Err(InvalidUtf8 {
                offset: error.valid_up_to() as u64,
            }),
        },
        CaseMode::UnicodeLossless => {
            let mut out = Vec::new();
            for chunk in input.utf8_chunks() {
                out.extend_from_slice(chunk.valid().to_uppercase().as_bytes());
                out.extend_from_slice(chunk.invalid());
            }
            Ok(out)
        }
    }
}

/// Stream `chunks` through one [`Upcaser`], checking the output bound on
/// every call; return the output or the first error.
pub fn transform_chunks(mode: CaseMode, chunks: &[&[u8]]) -> Result<Vec<u8>, InvalidUtf8> {
    let mut upcaser = Upcaser::new(mode);
    let mut out = BytesMut::new();
    for chunk in chunks {
        let bound = upcaser
            .max_output_len(chunk.len())
            .expect("test inputs are small");
        let before = out.len();
        upcaser.push(chunk, &mut out)?;
        assert!(out.len() - before <= bound, "push wrote past its bound");
        assert!(upcaser.carried().len() < 4, "carried a whole code point");
    }
    let bound = upcaser
        .max_output_len(0)
        .expect("a carry is at most 3 bytes");
    let before = out.len();
    upcaser.finish(&mut out)?;
    assert!(out.len() - before <= bound, "finish wrote past its bound");
    if let Some(lossless) = lossless_mode(mode) {
        assert_eq!(
            transform_lossless_chunks(lossless, chunks),
            out,
            "LosslessUpcaser into a Vec differs from Upcaser into BytesMut"
        );
    }
    Ok(out.to_vec())
}

/// The [`LosslessMode`] equal to `mode`, if it cannot fail.
fn lossless_mode(mode: CaseMode) -> Option<LosslessMode> {
    match mode {
        CaseMode::UnicodeStrict => None,
        CaseMode::UnicodeLossless => Some(LosslessMode::Unicode),
        CaseMode::Ascii => Some(LosslessMode::Ascii),
    }
}

/// Stream `chunks` through one [`LosslessUpcaser`] into a `Vec`.
fn transform_lossless_chunks(mode: LosslessMode, chunks: &[&[u8]]) -> Vec<u8> {
    let mut upcaser = LosslessUpcaser::new(mode);
    let mut out = Vec::new();
    for chunk in chunks {
        upcaser.push(chunk, &mut out);
    }
    upcaser.finish(&mut out);
    out
}

/// Any split of any input gives the std oracle's output (or its error).
pub fn transform_matches_oracle_for_any_split(mode: CaseMode, input: &[u8], cuts: &[usize]) {
    let expected = transform_oracle(mode, input);
    let chunks = chunks_at(input, cuts);
    assert_eq!(
        transform_chunks(mode, &chunks),
        expected,
        "chunks {chunks:x?}"
    );
    assert_eq!(transform_chunks(mode, &[input]), expected, "whole input");
}

/// Lossless mode keeps every invalid byte, in place: where the oracle's
/// chunking says a byte is invalid, the same byte sits at the matching
/// position of the output.
pub fn lossless_keeps_invalid_bytes_in_place(input: &[u8], cuts: &[usize]) {
    let out = transform_chunks(CaseMode::UnicodeLossless, &chunks_at(input, cuts))
        .expect("lossless mode never fails");
    let mut position = 0;
    for chunk in input.utf8_chunks() {
        position += chunk.valid().to_uppercase().len();
        let invalid = chunk.invalid();
        assert_eq!(&out[position..position + invalid.len()], invalid);
        position += invalid.len();
    }
    assert_eq!(position, out.len());
}

/// Decoding arbitrary bytes never panics; every decoded frame re-encodes to
/// exactly the bytes it was decoded from, and nothing is read past the input.
pub fn decode_reencodes_consumed_bytes(input: &[u8], max_data_len: u32) {
    let decoder = FrameDecoder::new(max_data_len);
    let mut buf = BytesMut::from(input);
    let mut offset = 0;
    loop {
        let before = buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(frame)) => {
                let consumed = before - buf.len();
                assert!(consumed >= HEADER_LEN && offset + consumed <= input.len());
                assert!(frame.data.len() <= max_data_len as usize);
                assert_eq!(&frame.to_bytes()[..], &input[offset..offset + consumed]);
                offset += consumed;
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "need-more consumed bytes");
                assert_eq!(&buf[..], &input[offset..]);
                assert!(decoder.bytes_needed(&buf) > 0);
                return;
            }
            Err(too_large) => {
                assert_eq!(buf.len(), before, "an error consumed bytes");
                assert!(too_large.header.data_len > max_data_len);
                return;
            }
        }
    }
}

/// Emit then parse gives back the frame; so does emit then stream-decode,
/// however the encoded bytes are split.
pub fn frame_survives_emit_then_parse(frame: &FrameRepr, cuts: &[usize]) {
    let bytes = frame.to_bytes();
    assert_eq!(bytes.len(), frame.buffer_len());
    let view = crate::wire::Frame::new_checked(&bytes[..]).expect("emitted frame is complete");
    assert_eq!(&FrameRepr::parse(&view).expect("complete"), frame);
    let decoder = FrameDecoder::new(u32::MAX);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    for chunk in chunks_at(&bytes, cuts) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = decoder.decode(&mut buf).expect("no limit") {
            decoded.push(frame);
        }
    }
    assert_eq!(decoded, vec![frame.clone()]);
    assert!(buf.is_empty());
}
