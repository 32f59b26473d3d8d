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
    let own = FIXED_DESCRIPTORS + (threads as u64) * (listeners as u64 + 3) + 16;
    let left = descriptors.saturating_sub(own);
    // max + max / 8 <= left
    usize::try_from(left * 8 / 9).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_leaves_room_for_refusals_and_the_servers_own_descriptors() {
        let fit = connections_for_descriptors(20_000, 2, 1);
        assert!(fit >= 15_000, "{fit}");
        let fds = fit as u64 + fit as u64 / 8 + 16 + 32 + 2 * 4;
        assert!(fds <= 20_000, "{fds} descriptors needed");
        assert_eq!(connections_for_descriptors(10, 2, 1), 1);
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_least_where_it_was() {
        let (before, after) = raise_descriptor_limit().unwrap();
        assert!(after >= before, "{before} -> {after}");
    }
}
