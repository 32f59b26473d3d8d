//! Fitting the connection limit to the descriptors the process may open.
//!
//! Why: every connection is a descriptor, and a connection limit above the
//! descriptor limit makes `accept` fail with EMFILE instead of answering
//! BUSY. So `upcase serve`, like Redis with `maxclients`, first raises the
//! soft `RLIMIT_NOFILE` to the hard limit, then lowers `--max-connections`
//! to what fits, and says so.

use std::io;

/// The most the soft limit is raised to when the hard limit is "unlimited"
/// (Linux's default `fs.nr_open`).
const UNLIMITED_CAP: u64 = 1 << 20;

/// Descriptors a server needs besides its connections: standard streams,
/// log files, each loop's poll, waker and spare, the UDP sockets, slack.
const FIXED_DESCRIPTORS: u64 = 32;

/// Raise the soft descriptor limit to the hard limit. Returns the soft
/// limit before and after.
///
/// # Errors
/// When the limits cannot be read or set.
pub fn raise_descriptor_limit() -> io::Result<(u64, u64)> {
    let (before, _) = rlimit::Resource::NOFILE.get()?;
    let after = rlimit::increase_nofile_limit(UNLIMITED_CAP)?;
    Ok((before.min(UNLIMITED_CAP), after))
}

/// The most connections a server with `threads` loops and `listeners`
/// listen addresses can hold within `descriptors`: one each, plus the
/// connections it refuses at once (an eighth of the limit and 16 more,
/// SPEC.md §9.3), plus its own.
pub fn connections_for_descriptors(descriptors: u64, threads: usize, listeners: usize) -> usize {
    let left = descriptors.saturating_sub(own_descriptors(threads, listeners));
    // max + max / 8 <= left
    usize::try_from(left * 8 / 9).unwrap_or(usize::MAX).max(1)
}

/// How many connections (served and refused) a server with `threads`
/// loops and `listeners` listen addresses may hold open under the current
/// soft descriptor limit. A loop closes newcomers at once beyond it, so
/// that `accept` does not fail with EMFILE and leave clients waiting in the
/// queue; `upcase serve` fits its limit below it anyway.
pub(crate) fn connection_descriptors(threads: usize, listeners: usize) -> usize {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, _)) => {
            let left = soft.saturating_sub(own_descriptors(threads, listeners));
            usize::try_from(left).unwrap_or(usize::MAX)
        }
        Err(_) => usize::MAX,
    }
}

/// Descriptors a server holds besides its connections: the fixed ones,
/// each loop's listeners, poll, waker and spare, and each loop's one
/// accept in flight.
fn own_descriptors(threads: usize, listeners: usize) -> u64 {
    FIXED_DESCRIPTORS + (threads as u64) * (listeners as u64 + 4) + 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_room_for_refusals_and_the_servers_own_descriptors() {
        let fit = connections_for_descriptors(20_000, 2, 1);
        assert!(fit >= 15_000, "{fit}");
        // own_descriptors counts the 16 refusals beyond an eighth too.
        let fds = fit as u64 + fit as u64 / 8 + own_descriptors(2, 1);
        assert!(fds <= 20_000, "{fds} descriptors needed");
        assert_eq!(connections_for_descriptors(10, 2, 1), 1);
    }

    #[test]
    fn the_fitted_limit_is_eight_ninths_of_what_the_server_leaves() {
        // (20 000 - (32 + 2 loops × (1 listener + 4) + 16)) × 8 / 9
        assert_eq!(connections_for_descriptors(20_000, 2, 1), 17_726);
        // (20 000 - (32 + 4 × (3 + 4) + 16)) × 8 / 9
        assert_eq!(connections_for_descriptors(20_000, 4, 3), 17_710);
    }

    #[test]
    fn the_server_keeps_its_fixed_descriptors_and_each_loops_and_listeners() {
        assert_eq!(own_descriptors(1, 1), 32 + 5 + 16);
        assert_eq!(own_descriptors(2, 1), 32 + 2 * 5 + 16);
        assert_eq!(own_descriptors(4, 3), 32 + 4 * 7 + 16);
    }

    #[test]
    fn connections_may_hold_every_descriptor_the_server_does_not() {
        // The soft limit only grows (raise_descriptor_limit may run
        // meanwhile): read it before and after.
        let (soft_before, _) = rlimit::Resource::NOFILE.get().unwrap();
        let room = connection_descriptors(2, 1) as u64;
        let (soft_after, _) = rlimit::Resource::NOFILE.get().unwrap();
        let own = 32 + 2 * 5 + 16;
        assert!(
            (soft_before.saturating_sub(own)..=soft_after.saturating_sub(own)).contains(&room),
            "{room} connections under a soft limit of {soft_before}..={soft_after}"
        );
    }

    #[test]
    fn raising_reports_the_soft_limit_before_and_sets_it_to_the_hard_limit() {
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        let (before, after) = raise_descriptor_limit().unwrap();
        assert_eq!(before, soft.min(1 << 20));
        let (soft_now, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(after, soft_now, "what it says is what it set");
        assert!(after >= before, "{before} -> {after}");
        if hard <= 1 << 20 {
            assert_eq!(after, hard, "raised to the hard limit");
        }
    }
}
