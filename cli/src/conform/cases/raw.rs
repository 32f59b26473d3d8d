//! SPEC.md §7: raw mode — lossless Unicode upper case of a byte stream,
//! independent of how TCP split it; the ASCII option.

use crate::conform::case::{Case, CheckResult, Needs};
use crate::conform::client::Ctx;
use crate::conform::oracle::{self, INVALID, Sample, TRUNCATED, VALID};
use upcase::wire::PREFACE;

pub const CASES: &[Case] = &[
    Case {
        name: "raw/7.2/interactive-replies",
        description: "each line is answered as soon as it arrives, without the client closing",
        unicode_dependent: false,
        needs: Needs::UnicodeRaw,
        check: interactive,
    },
    Case {
        name: "raw/7.1/utf8-classes-upper-cased",
        description: "valid UTF-8 of every width and the special mappings gets str::to_uppercase",
        unicode_dependent: false,
        needs: Needs::UnicodeRaw,
        check: valid_classes,
    },
    Case {
        name: "raw/7.1/invalid-bytes-kept",
        description: "invalid UTF-8 is copied unchanged, split the way Utf8Chunks splits; valid text around it is upper-cased",
        unicode_dependent: false,
        needs: Needs::UnicodeRaw,
        check: invalid_bytes_kept,
    },
    Case {
        name: "raw/7.3/incomplete-at-eof-copied",
        description: "a sequence still incomplete is held while the stream is open and copied unchanged at end of input",
        unicode_dependent: false,
        needs: Needs::UnicodeRaw,
        check: incomplete_at_eof,
    },
    Case {
        name: "raw/7.2/split-at-every-offset",
        description: "every UTF-8 class split into two TCP writes at every offset: output so far and in total match the unsplit stream",
        unicode_dependent: false,
        needs: Needs::UnicodeRaw,
        check: split_every_offset,
    },
    Case {
        name: "raw/2.1/preface-after-start-is-text",
        description: "once raw, a preface later in the stream is just bytes (0xC0 kept, \"upcase\" upper-cased)",
        unicode_dependent: false,
        needs: Needs::UnicodeRaw,
        check: preface_after_start,
    },
    Case {
        name: "raw/7.4/ascii-option",
        description: "a server in ASCII raw mode upper-cases a–z only (bytes.upper()), split code points included",
        unicode_dependent: false,
        needs: Needs::RawAscii,
        check: ascii_option,
    },
];

fn interactive(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    for line in ["hello\n", "stra\u{df}e\n", "again\n"] {
        conn.write(line.as_bytes())?;
        conn.expect_raw(
            &oracle::text_upper(line.as_bytes()),
            "reply to a line (the client stays open)",
        )?;
    }
    Ok(())
}

fn valid_classes(ctx: &mut Ctx) -> CheckResult {
    for sample in VALID {
        let mut conn = ctx.connect()?;
        conn.write(sample.bytes)?;
        let what = format!("raw reply ({})", sample.name);
        conn.expect_raw(&oracle::text_upper(sample.bytes), &what)?;
    }
    Ok(())
}

fn invalid_bytes_kept(ctx: &mut Ctx) -> CheckResult {
    for sample in INVALID {
        let mut conn = ctx.connect()?;
        conn.write(sample.bytes)?;
        let what = format!("raw reply ({})", sample.name);
        conn.expect_raw_then_eof(&oracle::lossless_upper(sample.bytes), &what)?;
    }
    Ok(())
}

fn incomplete_at_eof(ctx: &mut Ctx) -> CheckResult {
    for sample in TRUNCATED {
        let mut conn = ctx.connect()?;
        conn.write(sample.bytes)?;
        let what = format!("raw reply while {} is incomplete", sample.name);
        conn.expect_raw(&oracle::lossless_upper_so_far(sample.bytes), &what)?;
        let held = &sample.bytes[oracle::complete_prefix_len(sample.bytes)..];
        conn.expect_raw_then_eof(held, "the held bytes, copied at end of input")?;
    }
    Ok(())
}

/// The stream a split case sends: an ASCII byte first (so the server has
/// output to show after the first write), then the sample, then an ASCII
/// byte, except for truncated samples, which must end the stream.
fn framed_sample(sample: &Sample, truncated: bool) -> Vec<u8> {
    let mut stream = b"<".to_vec();
    stream.extend_from_slice(sample.bytes);
    if !truncated {
        stream.push(b'>');
    }
    stream
}

fn split_every_offset(ctx: &mut Ctx) -> CheckResult {
    let samples = VALID
        .iter()
        .map(|s| (s, false))
        .chain(INVALID.iter().map(|s| (s, false)))
        .chain(TRUNCATED.iter().map(|s| (s, true)));
    for (sample, truncated) in samples {
        let stream = framed_sample(sample, truncated);
        let whole = oracle::lossless_upper(&stream);
        for cut in 1..stream.len() {
            let mut conn = ctx.connect()?;
            let (head, tail) = stream.split_at(cut);
            conn.write(head)?;
            // Read what the first write must produce before sending the rest,
            // so the server really saw the split.
            let so_far = oracle::lossless_upper_so_far(head);
            let what = format!(
                "output after the first {cut} bytes of {} ({})",
                crate::conform::show::hex(&stream),
                sample.name
            );
            conn.expect_raw(&so_far, &what)?;
            conn.write(tail)?;
            let what = format!(
                "output after the rest (split at {cut}) of {} ({})",
                crate::conform::show::hex(&stream),
                sample.name
            );
            conn.expect_raw_then_eof(&whole[so_far.len()..], &what)?;
        }
    }
    Ok(())
}

fn preface_after_start(ctx: &mut Ctx) -> CheckResult {
    let mut conn = ctx.connect()?;
    let mut stream = b"ab".to_vec();
    stream.extend_from_slice(&PREFACE);
    conn.write(&stream)?;
    conn.expect_raw_then_eof(&oracle::lossless_upper(&stream), "raw reply")
}

fn ascii_option(ctx: &mut Ctx) -> CheckResult {
    let stream = "stra\u{df}e \u{e9}t\u{e9} \u{1c6} \u{3c3} \u{ff} abc\n".as_bytes();
    for cut in [0, 5, 6, stream.len() - 1] {
        let mut conn = ctx.connect()?;
        let (head, tail) = stream.split_at(cut);
        if !head.is_empty() {
            conn.write(head)?;
            conn.expect_raw(
                &oracle::ascii_upper(head),
                "ASCII raw reply to the first write",
            )?;
        }
        conn.write(tail)?;
        conn.expect_raw_then_eof(&oracle::ascii_upper(tail), "ASCII raw reply")?;
    }
    Ok(())
}
