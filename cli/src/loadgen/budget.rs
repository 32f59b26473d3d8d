//! When a client stops issuing requests, and how long it waits for a reply.

use std::time::{Duration, Instant};

/// How every client of a run behaves.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Requests in flight per client.
    pub pipeline: usize,
    /// TCP: the connect and reply timeout. UDP: how long a request waits
    /// for its reply before it counts as lost.
    pub timeout: Duration,
    /// The run's length, counted from when every client has connected.
    pub duration: Option<Duration>,
}

/// When one client stops issuing requests.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Issue no request after this instant (`None`: no time limit).
    pub deadline: Option<Instant>,
    /// Issue at most this many requests.
    pub requests: u64,
}

impl Budget {
    /// A budget of `requests` and, if `settings` set a duration, that long
    /// from `start`.
    pub fn new(settings: &Settings, requests: u64, start: Instant) -> Budget {
        Budget {
            deadline: settings.duration.map(|duration| start + duration),
            requests,
        }
    }

    /// Whether request number `issued` (counting from 0) may be sent at `now`.
    pub fn allows(&self, issued: u64, now: Instant) -> bool {
        issued < self.requests && self.deadline.is_none_or(|deadline| now < deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_ends_at_its_count_or_its_deadline() {
        let start = Instant::now();
        let settings = Settings {
            pipeline: 1,
            timeout: Duration::from_secs(1),
            duration: Some(Duration::from_secs(2)),
        };
        let budget = Budget::new(&settings, 3, start);
        assert!(budget.allows(2, start));
        assert!(!budget.allows(3, start));
        assert!(!budget.allows(0, start + Duration::from_secs(2)));
        let unlimited = Budget::new(
            &Settings {
                duration: None,
                ..settings
            },
            u64::MAX,
            start,
        );
        assert!(unlimited.allows(1 << 40, start + Duration::from_secs(3600)));
    }
}
