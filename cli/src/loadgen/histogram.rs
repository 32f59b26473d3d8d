//! A log-bucketed latency histogram (HDR-like): fixed memory, about 0.8 %
//! relative precision, mergeable across client threads.
//!
//! Values below [`SUB_BUCKETS`] are counted exactly; above, each power of two
//! is split into [`SUB_BUCKETS`] equal buckets, so a bucket is at most
//! 1/128 of its value wide. A quantile reports the top of its bucket, never
//! less than the true value.

/// Buckets per power of two (and the exactly counted low range).
pub const SUB_BUCKETS: u64 = 128;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Values are clamped to below 2^MAX_BITS (2^40 ns is about 18 minutes).
const MAX_BITS: u32 = 40;
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) * SUB_BUCKETS as usize;

/// Counts of values (nanoseconds, for latencies) in log-spaced buckets.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
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
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Count one value.
    pub fn record(&mut self, value: u64) {
        let value = value.min((1 << MAX_BITS) - 1);
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += u128::from(value);
    }

    /// Add every value counted by `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many values were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value counted (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 { 0 } else { self.min }
    }

    /// The mean of the counted values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the top of the bucket holding
    /// the `ceil(q × count)`-th smallest value, capped at the maximum.
    /// 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_top(bucket).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

/// The bucket index of `value` (below 2^MAX_BITS).
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) - SUB_BUCKETS;
    ((shift as u64 + 1) * SUB_BUCKETS + sub) as usize
}

/// The largest value that falls in `bucket`.
fn bucket_top(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let sub = bucket % SUB_BUCKETS;
    ((SUB_BUCKETS + sub + 1) << shift) - 1
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
    fn every_value_lies_in_its_bucket_within_one_percent() {
        let mut value = 1u64;
        while value < 1 << MAX_BITS {
            for v in [value, value + 1, value * 3 / 2] {
                let bucket = bucket_of(v);
                let top = bucket_top(bucket);
                let bottom = if bucket == 0 {
                    0
                } else {
                    bucket_top(bucket - 1) + 1
                };
                assert!(bottom <= v && v <= top, "{v} outside [{bottom}, {top}]");
                assert!(
                    (top - bottom) as f64 <= v as f64 / 100.0 + 1.0,
                    "bucket of {v} too wide"
                );
            }
            value *= 2;
        }
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
