//! The streaming upper-caser on ~1 MiB corpora, each against our own ASCII
//! path and against std's one-shot `str::to_uppercase`, in the same run.
//! `cargo bench --bench transform` (`-- chinese worst` for some corpora).
//!
//! Targets (issue 20), as a share of the throughput of the English (ASCII)
//! corpus through the same mode and chunk size, measured in alternating
//! samples with it: caseless scripts ≥ 25 %, cased scripts and emoji
//! ≥ 10 %, the worst case (every code point 2 → 6 bytes) ≥ 5 %. Against
//! std (issue 3): ≥ 1.0× `to_uppercase` of the whole input; ASCII mode
//! ≥ 0.9× `make_ascii_uppercase` on a copy.

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

/// A corpus and its target share of the ASCII path's throughput.
struct Corpus {
    name: &'static str,
    text: String,
    /// `None` for the ASCII corpus itself.
    share_of_ascii: Option<f64>,
}

fn corpora() -> Vec<Corpus> {
    let corpus_with = |name, share, pattern: &str| Corpus {
        name,
        text: corpus(pattern),
        share_of_ascii: Some(share),
    };
    vec![
        Corpus {
            name: "english",
            text: corpus(
                "It was the best of times, it was the worst of times, it was the age of \
                 wisdom, it was the age of foolishness, it was the epoch of belief, it was \
                 the epoch of incredulity, it was the season of Light, it was the season of \
                 Darkness.\n",
            ),
            share_of_ascii: None,
        },
        corpus_with(
            "chinese",
            0.25,
            "天下大勢，分久必合，合久必分。周末七國分爭，并入於秦。及秦滅之後，楚、漢分爭，又并入於漢。\n",
        ),
        // CJK, kana, Hangul, Thai, Devanagari: scripts without case, with the
        // spaces and punctuation their text has.
        corpus_with(
            "caseless scripts",
            0.25,
            "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。\
             대한민국은 민주공화국이다. 모든 국민은 인간으로서의 존엄과 가치를 가진다.\n\
             ภาษาไทยเป็นภาษาที่มีระดับเสียงของคำแน่นอน \
             सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।\n",
        ),
        corpus_with(
            "mixed",
            0.10,
            "The café in Zürich served crème brûlée; straße means street. \
             Ελληνικά: η γρήγορη καφέ αλεπού. Emoji: 🦀🚀✨ done.\n",
        ),
        // Running text in cased scripts: almost every letter changes.
        corpus_with(
            "cased scripts",
            0.10,
            "Příliš žluťoučký kůň úpěl ďábelské ódy; à bientôt, garçon. \
             Τάχιστη αλώπηξ βαφής ψημένη γη, δρασκελίζει υπέρ νωθρού κυνός. \
             Съешь же ещё этих мягких французских булок, да выпей чаю. \
             Բարեւ ձեզ, ինչպե՞ս եք։ ქართული ენა ძალიან ლამაზია.\n",
        ),
        corpus_with(
            "emoji",
            0.10,
            "🦀🚀✨ ok 👍🏽 🇫🇷🇯🇵 👨‍👩‍👧‍👦 🎉🎉 lol 😂😂😂 ❤️ 🐍 → 🦀\n",
        ),
        corpus_with("worst (ΐ)", 0.05, &"ΐ".repeat(64)),
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

/// Input bytes per nanosecond, in GiB/s.
fn gib_per_s(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns / 1.073_741_824
}

/// Print one corpus against the ASCII path: both throughputs, the share
/// and its target.
fn report_share(case: &str, ours: f64, ascii: f64, target: f64) {
    let share = ours / ascii;
    let verdict = if share >= target { "met" } else { "MISSED" };
    println!(
        "{:<44} {:>9.2} GiB/s {:>9.2} GiB/s {:>6.1} %  ≥ {:.0} %  {verdict}",
        format!("{case} / ASCII path"),
        ours,
        ascii,
        share * 100.0,
        target * 100.0
    );
}

fn main() {
    // `cargo bench --bench transform -- chinese emoji`: only those corpora
    // (cargo passes `--bench` itself).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let corpora = corpora();
    let english = corpora[0].text.as_bytes();
    let mut english_out = BytesMut::with_capacity(3 * english.len());
    measure::header(
        "transform: streaming Upcaser (input ~1 MiB, GiB/s of input); \
         baseline: English through the same mode and chunks (share of it), or std",
        "baseline",
    );
    for Corpus {
        name,
        text,
        share_of_ascii,
    } in &corpora
    {
        if !only.is_empty() && !only.iter().any(|o| name.starts_with(o.as_str())) {
            continue;
        }
        let input = text.as_bytes();
        let mut out = BytesMut::with_capacity(3 * input.len());
        // Check once that the streaming output is the baseline's output.
        for mode in [CaseMode::UnicodeLossless, CaseMode::UnicodeStrict] {
            stream(mode, input, 1024, &mut out);
            assert_eq!(&out[..], text.to_uppercase().as_bytes(), "{name}");
        }
        for (mode, mode_name) in [
            (CaseMode::UnicodeLossless, "lossless"),
            (CaseMode::UnicodeStrict, "strict"),
        ] {
            for chunk in [1024, 64 * 1024] {
                let case = format!("{name}: {mode_name}, {} KiB", chunk / 1024);
                if let Some(share) = share_of_ascii {
                    let (ours, ascii) = measure::compare(
                        || stream(mode, input, chunk, &mut out),
                        || stream(mode, english, chunk, &mut english_out),
                    );
                    let ours = gib_per_s(input.len(), ours);
                    let ascii = gib_per_s(english.len(), ascii);
                    report_share(&case, ours, ascii, *share);
                }
                let (ours, baseline) = measure::compare(
                    || stream(mode, input, chunk, &mut out),
                    || {
                        black_box(black_box(text.as_str()).to_uppercase());
                    },
                );
                measure::report(
                    &format!("{case} vs to_uppercase"),
                    &format!("{:.2} GiB/s", gib_per_s(input.len(), ours)),
                    &format!("{:.2} GiB/s", gib_per_s(input.len(), baseline)),
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
            &format!("{name}: ascii, 64 KiB vs make_ascii_upper"),
            &format!("{:.2} GiB/s", gib_per_s(input.len(), ours)),
            &format!("{:.2} GiB/s", gib_per_s(input.len(), baseline)),
            baseline / ours,
            Some(0.9),
        );
    }
}
