//! Frame decode + encode. `cargo bench --bench codec`.
//!
//! Target: ≥ 10 M 64-byte frames/s (decode + encode) on one core; decoding a
//! 64 KiB frame costs about what a 64-byte one does (the data is not copied).
//! Baseline: a minimal relay that reads the length at its offset and copies
//! the whole frame to the output, the least a codec that copies can do.

#[path = "support/measure.rs"]
mod measure;

use std::hint::black_box;

use bytes::{Buf, Bytes, BytesMut};
use upcase::wire::{Address, FrameDecoder, FrameRepr, FrameType, HEADER_LEN, field};

/// Bytes of frames per batch: enough that a batch takes well over the
/// clock's resolution.
const BATCH_BYTES: usize = 8 << 20;

fn frames(data_len: usize) -> (Bytes, usize) {
    let addr = |text: &str| Address::from(text.parse::<std::net::SocketAddr>().unwrap());
    let frame = FrameRepr {
        src: addr("127.0.0.1:50000"),
        dst: addr("127.0.0.1:9999"),
        ..FrameRepr::new(FrameType::Bytes, vec![b'a'; data_len])
    };
    let count = (BATCH_BYTES / (HEADER_LEN + data_len)).max(64);
    let mut wire = BytesMut::new();
    for _ in 0..count {
        frame.encode(&mut wire);
    }
    (wire.freeze(), count)
}

/// Decode every frame and encode a reply (addresses swapped, same data).
fn decode_encode(mut input: BytesMut, out: &mut BytesMut) {
    let decoder = FrameDecoder::default();
    out.clear();
    while let Some(frame) = decoder.decode(&mut input).expect("frames within the limit") {
        let reply = FrameRepr {
            src: frame.dst,
            dst: frame.src,
            ..frame
        };
        reply.encode(out);
    }
    black_box(&out[..]);
}

/// Decode every frame, keep only the data's length.
fn decode_only(mut input: BytesMut) {
    let decoder = FrameDecoder::default();
    let mut total = 0;
    while let Some(frame) = decoder.decode(&mut input).expect("frames within the limit") {
        total += black_box(frame).data.len();
    }
    black_box(total);
}

/// The baseline: find each frame's length and copy the frame out.
fn relay(mut input: BytesMut, out: &mut BytesMut) {
    out.clear();
    while input.len() >= HEADER_LEN {
        let len = u32::from_be_bytes(input[field::LENGTH].try_into().unwrap()) as usize;
        out.extend_from_slice(&input[..HEADER_LEN + len]);
        input.advance(HEADER_LEN + len);
    }
    black_box(&out[..]);
}

fn main() {
    measure::header(
        "codec: ns per frame (median of 11 samples); ratio = baseline / ours",
        "copy relay",
    );
    let mut decode_ns = Vec::new();
    for data_len in [64, 64 * 1024] {
        let (wire, count) = frames(data_len);
        let fresh = || BytesMut::from(&wire[..]);
        let mut out = BytesMut::with_capacity(wire.len());
        let mut relay_out = BytesMut::with_capacity(wire.len());
        let (ours, baseline) = measure::compare_batched(
            5,
            fresh,
            |input| decode_encode(input, &mut out),
            fresh,
            |input| relay(input, &mut relay_out),
        );
        let (ours, baseline) = (ours / count as f64, baseline / count as f64);
        measure::report(
            &format!("decode+encode {data_len} B frames ({:.1} M/s)", 1e3 / ours),
            &format!("{ours:.1} ns"),
            &format!("{baseline:.1} ns"),
            baseline / ours,
            None,
        );
        if data_len == 64 {
            let verdict = if ours <= 100.0 { "met" } else { "MISSED" };
            println!(
                "  target ≥ 10 M frames/s (≤ 100 ns/frame): {:.1} M/s, {verdict}",
                1e3 / ours
            );
        }
        let (decode, baseline) = measure::compare_batched(5, fresh, decode_only, fresh, |input| {
            relay(input, &mut relay_out)
        });
        let (decode, baseline) = (decode / count as f64, baseline / count as f64);
        measure::report(
            &format!("decode only {data_len} B frames"),
            &format!("{decode:.1} ns"),
            &format!("{baseline:.1} ns"),
            baseline / decode,
            None,
        );
        decode_ns.push(decode);
    }
    let ratio = decode_ns[1] / decode_ns[0];
    println!(
        "  zero copy: decoding a 64 KiB frame costs {ratio:.2}× a 64 B one ({:.1} vs {:.1} ns), {}",
        decode_ns[1],
        decode_ns[0],
        if ratio < 2.0 {
            "met (no per-byte cost)"
        } else {
            "MISSED (cost grows with size)"
        }
    );
}
