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
//! address is an IPv4 address or an IPv6 /64, as for UDP sources
//! (SPEC.md §8.6).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use super::peer::Peer;

/// The address group `ip` counts in: itself (IPv4, IPv4-mapped IPv6 as
/// IPv4), or its /64 prefix (IPv6).
pub(super) fn address_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// The slot to give a newcomer from `newcomer` when every slot is taken,
/// or `None` to refuse it.
pub(super) fn victim(peers: &[Option<Peer>], newcomer: IpAddr) -> Option<usize> {
    let mut held: HashMap<IpAddr, usize> = HashMap::new();
    for peer in peers.iter().flatten() {
        *held.entry(peer.group()).or_default() += 1;
    }
    let (&crowded, &most) = held.iter().max_by_key(|&(_, &count)| count)?;
    let own = held.get(&address_group(newcomer)).copied().unwrap_or(0);
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
        assert_eq!(address_group(a), address_group(b));
        assert_ne!(address_group(a), address_group(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            address_group(mapped),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }
}
