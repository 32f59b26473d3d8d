//! The 18-byte address field: a 16-byte IPv6 address and a 2-byte port.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Encoded size of an address field: 16 bytes of IP, 2 of port.
pub const ADDRESS_LEN: usize = 18;

/// A frame's source or destination address.
///
/// IPv4 addresses travel IPv4-mapped (`::ffff:a.b.c.d`), so one fixed-size field
/// carries both families. The all-zero address is [`Address::UNSPECIFIED`]: a
/// sender that does not know (or does not care about) an address sends it, and
/// the server fills in what it sees on the socket (SPEC.md §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Address {
    /// The IP address; IPv4 is stored IPv4-mapped.
    pub ip: Ipv6Addr,
    /// The port.
    pub port: u16,
}

impl Address {
    /// The unspecified address: all 18 bytes zero.
    pub const UNSPECIFIED: Address = Address {
        ip: Ipv6Addr::UNSPECIFIED,
        port: 0,
    };

    /// Build an address from its 18 wire bytes.
    pub fn from_bytes(bytes: &[u8; ADDRESS_LEN]) -> Address {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&bytes[..16]);
        Address {
            ip: Ipv6Addr::from(ip),
            port: u16::from_be_bytes([bytes[16], bytes[17]]),
        }
    }

    /// The 18 wire bytes of this address.
    pub fn to_bytes(&self) -> [u8; ADDRESS_LEN] {
        let mut out = [0u8; ADDRESS_LEN];
        out[..16].copy_from_slice(&self.ip.octets());
        out[16..].copy_from_slice(&self.port.to_be_bytes());
        out
    }

    /// Whether all 18 bytes are zero.
    pub fn is_unspecified(&self) -> bool {
        *self == Address::UNSPECIFIED
    }

    /// This address, or `fallback` when this one is unspecified (the fill-in rule).
    pub fn or_else(self, fallback: Address) -> Address {
        if self.is_unspecified() {
            fallback
        } else {
            self
        }
    }

    /// The socket address this names; IPv4-mapped addresses become IPv4.
    pub fn to_socket_addr(&self) -> SocketAddr {
        let ip = match self.ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(self.ip),
        };
        SocketAddr::new(ip, self.port)
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Address {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        Address {
            ip,
            port: addr.port(),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_socket_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_travels_ipv4_mapped() {
        let addr = Address::from("127.0.0.1:9999".parse::<SocketAddr>().unwrap());
        assert_eq!(
            addr.to_bytes(),
            [
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, 0x27, 0x0f
            ]
        );
        assert_eq!(addr.to_socket_addr().to_string(), "127.0.0.1:9999");
    }

    #[test]
    fn ipv6_round_trips() {
        let sock: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let addr = Address::from(sock);
        assert_eq!(Address::from_bytes(&addr.to_bytes()), addr);
        assert_eq!(addr.to_socket_addr(), sock);
    }

    #[test]
    fn only_all_zero_is_unspecified() {
        assert!(Address::from_bytes(&[0; ADDRESS_LEN]).is_unspecified());
        let mut port_only = [0; ADDRESS_LEN];
        port_only[17] = 1;
        let port_only = Address::from_bytes(&port_only);
        assert!(!port_only.is_unspecified());
        let fallback = Address::from("10.0.0.1:1".parse::<SocketAddr>().unwrap());
        assert_eq!(port_only.or_else(fallback), port_only);
        assert_eq!(Address::UNSPECIFIED.or_else(fallback), fallback);
    }
}
