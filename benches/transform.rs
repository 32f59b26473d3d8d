//! The streaming upper-caser against std's one-shot functions, on ~1 MiB
//! corpora. `cargo bench --bench transform`.
//!
//! Targets: streaming Unicode (lossless and strict, 1 KiB and 64 KiB chunks)
//! ≥ 1.0× `str::to_uppercase` of the whole input; ASCII ≥ 0.9×
//! `make_ascii_uppercase` on a copy.

#[path = "support/measure.rs"]
mod measure;

use std::hint::black_box;

use bytes::BytesMut;
use upcase::transform::{CaseMode, Upcaser};

const CORPUS_LEN: usize = 1 << 20;

fn corpus(pattern: &str) -> String {
    let mut text = String::with_capacity(CORPUS_LEN + pattern.len());
    while text.len() < CORPUS_LEN {
        text.push_str(pattern);
    }
    text
}

fn corpora() -> Vec<(&'static str, String)> {
    vec![
        (
            "english",
            corpus(
                "It was the best of times, it was the worst of times, it was the age of \
                 wisdom, it was the age of foolishness, it was the epoch of belief, it was \
                 the epoch of incredulity, it was the season of Light, it was the season of \
                 Darkness.\n",
            ),
        ),
        (
            "chinese",
            corpus(
                "天下大勢，分久必合，合久必分。周末七國分爭，并入於秦。及秦滅之後，楚、漢分爭，又并入於漢。\n",
            ),
        ),
        (
            "mixed",
            corpus(
                "The café in Zürich served crème brûlée; straße means street. \
                 Ελληνικά: η γρήγορη καφέ αλεπού. Emoji: 🦀🚀✨ done.\n",
            ),
        ),
        ("worst (ΐ)", "ΐ".repeat(CORPUS_LEN / 2)),
    ]
}

fn stream(mode: CaseMode, input: &[u8], chunk: usize, out: &mut BytesMut) {
    out.clear();
    let mut upcaser = Upcaser::new(mode);
    for piece in input.chunks(chunk) {
        upcaser.push(piece, out).expect("the corpora are UTF-8");
    }
    upcaser.finish(out).expect("the corpora are UTF-8");
    black_box(&out[..]);
}

fn gib_per_s(bytes: usize, ns: f64) -> String {
    format!("{:.2} GiB/s", bytes as f64 / ns / 1.073_741_824)
}

fn main() {
    measure::header(
        "transform: streaming Upcaser vs std one-shot (input ~1 MiB, throughput of input bytes)",
        "baseline",
    );
    for (name, text) in corpora() {
        let input = text.as_bytes();
        let mut out = BytesMut::with_capacity(3 * input.len());
        // Check once that the streaming output is the baseline's output.
        stream(CaseMode::UnicodeLossless, input, 1024, &mut out);
        assert_eq!(&out[..], text.to_uppercase().as_bytes(), "{name}");
        for (mode, mode_name) in [
            (CaseMode::UnicodeLossless, "lossless"),
            (CaseMode::UnicodeStrict, "strict"),
        ] {
            for chunk in [1024, 64 * 1024] {
                let (ours, baseline) = measure::compare(
                    || stream(mode, input, chunk, &mut out),
                    || {
                        black_box(black_box(text.as_str()).to_uppercase());
                    },
                );
                measure::report(
                    &format!(
                        "{name}: {mode_name}, {} KiB chunks vs to_uppercase",
                        chunk / 1024
                    ),
                    &gib_per_s(input.len(), ours),
                    &gib_per_s(input.len(), baseline),
                    baseline / ours,
                    Some(1.0),
                );
            }
        }
        let (ours, baseline) = measure::compare(
            || stream(CaseMode::Ascii, input, 64 * 1024, &mut out),
            || {
                let mut copy = black_box(input).to_vec();
                copy.make_ascii_uppercase();
                black_box(copy);
            },
        );
        measure::report(
            &format!("{name}: ascii, 64 KiB chunks vs make_ascii_upper"),
            &gib_per_s(input.len(), ours),
            &gib_per_s(input.len(), baseline),
            baseline / ours,
            Some(0.9),
        );
    }
}
