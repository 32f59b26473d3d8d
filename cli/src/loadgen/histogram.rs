//! The latency histogram: `hdrhistogram` (the HdrHistogram port) counts
//! the values in log-spaced buckets, fixed memory, about 0.8 % relative
//! precision, mergeable across client threads; this wrapper keeps the exact
//! minimum, maximum and sum beside it, so that `max` and `mean` in a report
//! are the values measured, not a bucket's edge or midpoint.
//!
//! With 2 significant digits the buckets are those an HDR histogram always
//! had: values below 256 are counted exactly; above, each power of two is
//! split into 128 equal buckets, so a bucket is at most 1/128 of its value
//! wide (4,352 counters from 1 ns to 2^40 ns). A quantile reports the top
//! of its bucket, never less than the true value (and never past the
//! maximum).

/// Values are clamped to below 2^MAX_BITS (2^40 ns is about 18 minutes).
const MAX_BITS: u32 = 40;

/// hdrhistogram's precision: 2 significant digits, 1/128 relative.
const SIGNIFICANT_DIGITS: u8 = 2;

/// Counts of values (nanoseconds, for latencies).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: hdrhistogram::Histogram<u64>,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        let counts =
            hdrhistogram::Histogram::new_with_bounds(1, (1 << MAX_BITS) - 1, SIGNIFICANT_DIGITS)
                .expect("the bounds and precision are valid constants");
        Histogram {
            counts,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Count one value (clamped to below 2^40).
    pub fn record(&mut self, value: u64) {
        let value = value.min((1 << MAX_BITS) - 1);
        self.counts.saturating_record(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += u128::from(value);
    }

    /// Add every value counted by `other`.
    pub fn merge(&mut self, other: &Histogram) {
        self.counts
            .add(&other.counts)
            .expect("histograms made by Histogram::new share their bounds");
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.counts.len()
    }

    /// The largest value counted (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value counted (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count() == 0 { 0 } else { self.min }
    }

    /// The mean of the counted values (0 when empty).
    pub fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            count => self.sum as f64 / count as f64,
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the top of the bucket holding
    /// the `ceil(q × count)`-th smallest value, kept within the minimum and
    /// the maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count() == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        // hdrhistogram gives the lowest value of the bucket for q = 0.
        let rank_one = q.max(f64::MIN_POSITIVE);
        self.counts
            .value_at_quantile(rank_one)
            .min(self.max)
            .max(self.min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in [0, 1, 5, 127] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.25), 0);
        assert_eq!(h.quantile(0.5), 1);
        assert_eq!(h.quantile(0.75), 5);
        assert_eq!(h.quantile(1.0), 127);
    }

    #[test]
    fn every_quantile_is_within_one_percent_above_its_value() {
        let mut value = 1u64;
        while value < 1 << (MAX_BITS - 1) {
            for v in [value, value + 1, value * 3 / 2] {
                // The median of {v, 2v} is v's bucket top.
                let mut h = Histogram::new();
                h.record(v);
                h.record(2 * v);
                let got = h.quantile(0.5);
                assert!(
                    v <= got && got as f64 <= v as f64 * 1.01 + 1.0,
                    "{v}: {got}"
                );
            }
            value *= 2;
        }
    }

    #[test]
    fn max_min_and_mean_are_exact_not_bucket_edges() {
        let mut h = Histogram::new();
        for v in [1_000_001, 2_000_003, 3_000_005] {
            h.record(v);
        }
        assert_eq!((h.min(), h.max()), (1_000_001, 3_000_005));
        assert!((h.mean() - 2_000_003.0).abs() < 1e-6);
        assert_eq!(h.quantile(1.0), 3_000_005);
    }

    #[test]
    fn quantiles_of_one_to_ten_thousand() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        for (q, exact) in [(0.5, 5_000_000.0), (0.9, 9_000_000.0), (0.99, 9_900_000.0)] {
            let got = h.quantile(q) as f64;
            assert!(
                got >= exact && got <= exact * 1.01,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.min(), 1000);
        assert_eq!(h.count(), 10_000);
        assert!((h.mean() - 5_000_500.0).abs() < 1.0);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(1_000_000);
        b.record(20);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.min(), 10);
        assert_eq!(a.max(), 1_000_000);
        assert_eq!(a.quantile(0.5), 20);
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let mut h = Histogram::new();
        h.record(u64::MAX);
        assert_eq!(h.count(), 1);
        assert_eq!(h.quantile(1.0), (1 << MAX_BITS) - 1);
    }

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::new();
        assert_eq!(
            (h.quantile(0.99), h.max(), h.min(), h.count()),
            (0, 0, 0, 0)
        );
    }
}
