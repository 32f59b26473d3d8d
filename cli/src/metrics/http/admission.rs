//! Who gets a slot when all [`Limits::max_connections`](super::Limits)
//! are taken.
//!
//! Why not first come, first served alone: one host holding every slot
//! with half-sent requests (re-opened as fast as they are closed) would
//! blind Prometheus, which scrapes from an address of its own. So, as
//! for UPCASE connections (SPEC.md §9.3), an address crowds out only
//! itself: a newcomer from an address holding fewer slots than the
//! address holding the most takes the slot of that address's peer that
//! has waited longest for its head; a newcomer from the address holding
//! the most (or when no such peer is still reading) is refused. An
//! address is an IPv4 address or an IPv6 /64: the library's
//! [`SourceKey`], the group of UDP sources (SPEC.md §8.6) and of UPCASE
//! connections (§9.3).

use std::collections::HashMap;
use std::net::IpAddr;

use upcase::net::SourceKey;

use super::peer::Peer;

/// The slot to give a newcomer from `newcomer` when every slot is taken,
/// or `None` to refuse it.
pub(super) fn victim(peers: &[Option<Peer>], newcomer: IpAddr) -> Option<usize> {
    let mut held: HashMap<SourceKey, usize> = HashMap::new();
    for peer in peers.iter().flatten() {
        *held.entry(peer.group()).or_default() += 1;
    }
    let (&crowded, &most) = held.iter().max_by_key(|&(_, &count)| count)?;
    let own = held.get(&SourceKey::of(newcomer)).copied().unwrap_or(0);
    if most <= own {
        return None;
    }
    peers
        .iter()
        .enumerate()
        .filter_map(|(slot, peer)| Some((slot, peer.as_ref()?)))
        .filter(|(_, peer)| peer.group() == crowded && peer.is_reading())
        .min_by_key(|(_, peer)| peer.accepted())
        .map(|(slot, _)| slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_address_counts_in_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(SourceKey::of(a), SourceKey::of(b));
        assert_ne!(SourceKey::of(a), SourceKey::of(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(SourceKey::of(mapped), SourceKey::of(v4));
    }
}
