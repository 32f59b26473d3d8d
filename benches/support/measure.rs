#![allow(dead_code)] // Shared by every bench; each uses only part of it.
//! A tiny measurement helper (no criterion): each case and its baseline are
//! timed in alternating samples in the same run, so that load from other
//! processes hits both alike; the median of the samples is reported.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Samples per case (odd, so the median is one sample).
const SAMPLES: usize = 11;
/// Time each sample aims for.
const SAMPLE_TIME: Duration = Duration::from_millis(40);

/// Nanoseconds per call of `ours` and of `baseline`, each the median of
/// [`SAMPLES`] samples with an iteration count calibrated to [`SAMPLE_TIME`]
/// per routine; the samples of the two alternate.
pub fn compare(mut ours: impl FnMut(), mut baseline: impl FnMut()) -> (f64, f64) {
    let ours_iters = calibrate(&mut ours);
    let baseline_iters = calibrate(&mut baseline);
    let mut ours_ns = Vec::with_capacity(SAMPLES);
    let mut baseline_ns = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        ours_ns.push(sample(&mut ours, ours_iters));
        baseline_ns.push(sample(&mut baseline, baseline_iters));
    }
    (median(ours_ns), median(baseline_ns))
}

/// Like [`compare`] for routines that consume an input built by `setup`:
/// only the routine is timed. Each sample runs `batches` setups.
pub fn compare_batched<S, T>(
    batches: usize,
    mut setup_ours: impl FnMut() -> S,
    mut ours: impl FnMut(S),
    mut setup_baseline: impl FnMut() -> T,
    mut baseline: impl FnMut(T),
) -> (f64, f64) {
    let mut ours_ns = Vec::with_capacity(SAMPLES);
    let mut baseline_ns = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        ours_ns.push(sample_batched(batches, &mut setup_ours, &mut ours));
        baseline_ns.push(sample_batched(batches, &mut setup_baseline, &mut baseline));
    }
    (median(ours_ns), median(baseline_ns))
}

fn calibrate(routine: &mut impl FnMut()) -> u64 {
    let mut iters = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            routine();
        }
        let elapsed = start.elapsed();
        if elapsed >= SAMPLE_TIME / 4 {
            let per_iter = elapsed.as_secs_f64() / iters as f64;
            return ((SAMPLE_TIME.as_secs_f64() / per_iter) as u64).max(1);
        }
        iters *= 4;
    }
}

fn sample(routine: &mut impl FnMut(), iters: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        routine();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn sample_batched<S>(
    batches: usize,
    setup: &mut impl FnMut() -> S,
    routine: &mut impl FnMut(S),
) -> f64 {
    let mut total = Duration::ZERO;
    for _ in 0..batches {
        let input = black_box(setup());
        let start = Instant::now();
        routine(input);
        total += start.elapsed();
    }
    total.as_nanos() as f64 / batches as f64
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Print one result line: ours, the baseline, the ratio (higher is better
/// for us), the target and whether it is met.
pub fn report(case: &str, ours: &str, baseline: &str, ratio: f64, target: Option<f64>) {
    let verdict = match target {
        Some(target) if ratio >= target => format!("≥ {target:.1}×  met"),
        Some(target) => format!("≥ {target:.1}×  MISSED"),
        None => "—".to_string(),
    };
    println!("{case:<44} {ours:>14} {baseline:>14} {ratio:>7.2}×  {verdict}");
}

/// Print the column headings.
pub fn header(title: &str, baseline: &str) {
    println!();
    println!("{title}");
    println!(
        "{:<44} {:>14} {:>14} {:>8}  target",
        "case", "ours", baseline, "ratio"
    );
}
