//! SPEC.md §8.1, §8.3, §8.4: raw datagrams — classification, lossless upper
//! case of the whole datagram (an incomplete tail copied), the empty
//! datagram, and replies too large for a datagram dropped.

use std::time::Duration;

use super::frame;
use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::datagram::Dgram;
use crate::conform::oracle::{self, INVALID, Sample, TRUNCATED, VALID};
use upcase::conn::ServerMode;
use upcase::wire::{FrameType, PREFACE};

pub const CASES: &[Case] = &[
    Case {
        name: "udp/8.3/raw-upper-cased",
        description: "a raw datagram of valid UTF-8 (every width, the special mappings) comes back upper-cased",
        unicode_dependent: false,
        needs: Needs::RawDatagrams,
        check: raw_valid,
    },
    Case {
        name: "udp/8.3/raw-invalid-bytes-kept",
        description: "invalid UTF-8 in a raw datagram is copied unchanged, split the way Utf8Chunks splits it",
        unicode_dependent: false,
        needs: Needs::RawDatagrams,
        check: raw_invalid,
    },
    Case {
        name: "udp/8.3/raw-incomplete-tail-copied",
        description: "a raw datagram ending inside a code point gets that tail copied unchanged (the datagram is the whole input)",
        unicode_dependent: false,
        needs: Needs::RawDatagrams,
        check: raw_truncated,
    },
    Case {
        name: "udp/8.3/raw-empty-datagram",
        description: "an empty datagram gets an empty reply",
        unicode_dependent: false,
        needs: Needs::RawDatagrams,
        check: raw_empty,
    },
    Case {
        name: "udp/8.1/not-the-magic-is-raw",
        description: "datagrams shorter than 8 bytes or not starting with the magic are raw, 0xC0 and the magic alone included",
        unicode_dependent: false,
        needs: Needs::RawDatagrams,
        check: not_the_magic,
    },
    Case {
        name: "udp/8.4/raw-reply-at-limit-sent",
        description: "a raw datagram whose upper case is exactly 65,507 bytes is answered",
        unicode_dependent: false,
        needs: Needs::UnicodeRawDatagrams,
        check: raw_at_limit,
    },
    Case {
        name: "udp/8.4/raw-reply-over-limit-dropped",
        description: "a raw datagram whose upper case would be 65,508 bytes gets no reply; the server still answers the next one",
        unicode_dependent: false,
        needs: Needs::UnicodeRawDatagrams,
        check: raw_over_limit,
    },
    Case {
        name: "udp/8.1/framed-only-drops-raw",
        description: "a framed-only server drops raw datagrams without reply and answers framed ones",
        unicode_dependent: false,
        needs: Needs::ServerMode(ServerMode::Framed),
        check: framed_only_drops_raw,
    },
    Case {
        name: "udp/8.1/raw-only-treats-preface-as-raw",
        description: "a raw-only server answers a framed datagram as raw input: the preface and header come back unchanged, the text upper-cased",
        unicode_dependent: false,
        needs: Needs::ServerMode(ServerMode::Raw),
        check: raw_only_preface,
    },
];

/// How long a case waits to be sure a datagram is dropped: short, so the
/// suite stays fast (loopback replies take well under a millisecond).
const DROP_WAIT: Duration = Duration::from_millis(300);

/// The largest UDP payload (SPEC.md §8.4).
const MAX_PAYLOAD: usize = 65_507;

/// `ΐ` (U+0390, 2 bytes) upper-cases to 6 bytes: the best growth there is.
const GROWS: &str = "\u{390}";

/// What the server must answer to a raw datagram: L, or A with `--raw-ascii`.
fn raw_oracle(ctx: &Ctx, datagram: &[u8]) -> Vec<u8> {
    if ctx.options.raw_ascii {
        oracle::ascii_upper(datagram)
    } else {
        oracle::lossless_upper(datagram)
    }
}

fn each_sample(ctx: &mut Ctx, samples: &[Sample]) -> CheckResult {
    for sample in samples {
        let expected = raw_oracle(ctx, sample.bytes);
        ctx.datagram()?.expect_raw(
            sample.bytes,
            &expected,
            &format!("a raw datagram ({})", sample.name),
        )?;
    }
    Ok(())
}

fn raw_valid(ctx: &mut Ctx) -> CheckResult {
    each_sample(ctx, VALID)
}

fn raw_invalid(ctx: &mut Ctx) -> CheckResult {
    each_sample(ctx, INVALID)
}

fn raw_truncated(ctx: &mut Ctx) -> CheckResult {
    let example = b"hello \xc3"; // SPEC.md §12.10
    let expected = raw_oracle(ctx, example);
    ctx.datagram()?
        .expect_raw(example, &expected, "the §12.10 raw datagram")?;
    each_sample(ctx, TRUNCATED)
}

fn raw_empty(ctx: &mut Ctx) -> CheckResult {
    ctx.datagram()?.expect_raw(b"", b"", "an empty datagram")
}

fn not_the_magic(ctx: &mut Ctx) -> CheckResult {
    let lower_magic: &[u8] = b"\xc0upcase\x01";
    let datagrams: [(&[u8], &str); 4] = [
        (b"\xc0", "a lone 0xC0"),
        (&PREFACE[..7], "the 7-byte magic without a version"),
        (b"\xc0UPx y", "0xC0 \"UP\" then a differing byte"),
        (lower_magic, "0xC0 \"upcase\" 01 (8 bytes, not the magic)"),
    ];
    for (datagram, what) in datagrams {
        let expected = raw_oracle(ctx, datagram);
        ctx.datagram()?.expect_raw(datagram, &expected, what)?;
    }
    Ok(())
}

/// A raw datagram whose lossless upper case is `reply_len` bytes.
fn growing(reply_len: usize) -> Vec<u8> {
    let copies = reply_len / 6;
    let mut datagram = GROWS.repeat(copies).into_bytes();
    datagram.resize(datagram.len() + reply_len % 6, b'a');
    datagram
}

fn raw_at_limit(ctx: &mut Ctx) -> CheckResult {
    let datagram = growing(MAX_PAYLOAD);
    let expected = oracle::lossless_upper(&datagram);
    debug_assert_eq!(expected.len(), MAX_PAYLOAD);
    let what = format!(
        "a raw datagram of {} bytes whose upper case is {MAX_PAYLOAD}",
        datagram.len()
    );
    ctx.datagram()?.expect_raw(&datagram, &expected, &what)
}

fn raw_over_limit(ctx: &mut Ctx) -> CheckResult {
    let datagram = growing(MAX_PAYLOAD + 1);
    let socket = ctx.datagram()?;
    let what = format!(
        "a raw datagram of {} bytes whose upper case is {} bytes",
        datagram.len(),
        MAX_PAYLOAD + 1
    );
    socket.expect_no_reply(&datagram, DROP_WAIT.min(ctx.options.timeout), &what)?;
    socket.expect_raw(
        b"still there?",
        &raw_oracle(ctx, b"still there?"),
        "a small raw datagram after the dropped one",
    )
}

fn framed_only_drops_raw(ctx: &mut Ctx) -> CheckResult {
    let socket = ctx.datagram()?;
    socket.expect_no_reply(
        b"hello",
        DROP_WAIT.min(ctx.options.timeout),
        "a raw datagram",
    )?;
    let ping = frame(FrameType::Ping, false, b"framed");
    let pong = socket.reply_to(&ping, FrameType::Pong, &b"framed"[..]);
    socket.expect_frame(&ping, &pong, "a framed PING after the raw datagram")
}

fn raw_only_preface(ctx: &mut Ctx) -> CheckResult {
    let datagram = Dgram::framed(&frame(FrameType::Text, false, b"hi"));
    let expected = raw_oracle(ctx, &datagram);
    ctx.datagram()?.expect_raw(
        &datagram,
        &expected,
        "a framed datagram (preface + TEXT \"hi\")",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn growing_datagrams_reach_the_asked_size() {
        for len in [super::MAX_PAYLOAD, super::MAX_PAYLOAD + 1] {
            let datagram = super::growing(len);
            assert_eq!(super::oracle::lossless_upper(&datagram).len(), len);
            assert!(datagram.len() < 30_000);
        }
    }
}
