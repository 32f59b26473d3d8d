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
    fn raising_leaves_the_soft_limit_at_least_where_it_was() {
        let (before, after) = raise_descriptor_limit().unwrap();
        assert!(after >= before, "{before} -> {after}");
    }
}
