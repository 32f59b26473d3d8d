//! SPEC.md §3.2, §5.5: the addresses a client sends and accepts (C10).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use upcase::wire::{Address, FrameRepr};

use super::{ClientCase, Flag, prefaces, serve_with};
use crate::conform::case::{CheckResult, Failure};
use crate::conform::client_suite::{Peer, Plan};

pub const CASES: &[ClientCase] = &[
    ClientCase {
        name: "client/3.2/request-addresses-unspecified-or-true",
        description: "C10: each request's source is unspecified or the client's address, its destination unspecified or the server's, IPv4-mapped, not swapped",
        needs: &[],
        plan: request_addresses,
    },
    ClientCase {
        name: "client/5.5/reply-addresses-not-checked",
        description: "C10: replies whose addresses name other hosts, or are unspecified, are accepted",
        needs: &[],
        plan: reply_addresses,
    },
];

fn request_addresses(_: &[Flag]) -> Plan {
    Plan::new(&["a", "b"], &["A", "B"], true, |peer: &mut Peer| {
        prefaces(peer)?;
        serve_with(peer, |peer, request, _| {
            check_address(
                request,
                "source",
                request.src,
                peer.client_addr,
                peer.server_addr,
            )?;
            check_address(
                request,
                "destination",
                request.dst,
                peer.server_addr,
                peer.client_addr,
            )
        })
    })
}

/// `sent` must be unspecified or `truth` (IPv4-mapped); name the usual mistakes.
fn check_address(
    frame: &FrameRepr,
    field: &str,
    sent: Address,
    truth: SocketAddr,
    other: SocketAddr,
) -> CheckResult {
    let truth_address = Address::from(truth);
    if sent.is_unspecified() || sent == truth_address {
        return Ok(());
    }
    let mistake = if sent == Address::from(other) {
        "swapped source and destination"
    } else if let IpAddr::V4(v4) = truth.ip()
        && sent.ip == Ipv6Addr::from_bits(u128::from(v4.to_bits()))
        && sent.port == truth.port()
    {
        "IPv4-compatible (::a.b.c.d) instead of IPv4-mapped (::ffff:a.b.c.d)"
    } else {
        "an address that is not the connection's"
    };
    Err(Failure::mismatch(
        format!("C10: the {} frame's {field} is {mistake}", frame.frame_type),
        format!("unspecified, or {truth_address}"),
        sent,
    ))
}

fn reply_addresses(_: &[Flag]) -> Plan {
    Plan::new(&["a", "b"], &["A", "B"], true, |peer: &mut Peer| {
        prefaces(peer)?;
        let elsewhere = |port| Address {
            ip: "2001:db8::1".parse().expect("an IPv6 address"),
            port,
        };
        serve_with(peer, |_, request, reply| {
            (reply.src, reply.dst) = if request.data.first() == Some(&b'a') {
                (elsewhere(7), elsewhere(8))
            } else {
                (Address::UNSPECIFIED, Address::UNSPECIFIED)
            };
            Ok(())
        })
    })
}
