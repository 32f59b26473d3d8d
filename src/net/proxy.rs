//! The PROXY protocol (HAProxy's, v1 text and v2 binary, TCP only): the
//! header a load balancer puts in front of a connection's bytes to say whom
//! the connection really came from, and to whom.
//!
//! Behind a balancer every connection comes from the balancer, so without
//! this the server fills in replies' addresses (SPEC.md §5.5), logs and
//! per-address limits with the balancer's address. With `--proxy-protocol`
//! the shell runs a connection's first bytes through a [`ProxyHeaderReader`]
//! before the protocol core sees anything, and creates the core's
//! connection with the addresses the header names.
//!
//! The reader is sans-IO, like the core: feed it what the socket read, and
//! it says whether it needs more, found a header (and how much of the bytes
//! fed were the header), or found something that is not a valid header. It
//! never holds more than [`MAX_V2_HEADER`] bytes, and decides a v1 header
//! within [`MAX_V1_HEADER`] bytes, so a peer that sends garbage costs a
//! bounded buffer until the shell's header timeout.
//!
//! Parsing is the `ppp` crate's (maintained, used by proxies); this module
//! only frames it: it waits for a whole header before asking `ppp` (whose
//! streaming answer calls a v1 line cut right after its source port, e.g.
//! `PROXY TCP4 1.2.3.4 5.6.7.8 1 `, invalid rather than incomplete), caps
//! the size, and turns the result into socket addresses.
//!
//! Only [trusted](Cidr) peers may send a header: anyone else could claim
//! any address. The shell closes a connection from any other peer.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use ppp::{v1, v2};

/// The longest v1 header, CRLF included (the PROXY protocol spec, §2.1).
pub const MAX_V1_HEADER: usize = 107;

/// The longest v2 header accepted: the 16-byte fixed part and up to 520
/// bytes of addresses and TLVs. IPv6 TCP addresses take 36 of those;
/// HAProxy's optional TLVs (ALPN, authority, unique id, SSL details) fit
/// in the rest.
pub const MAX_V2_HEADER: usize = 16 + 520;

/// The v1 header's first bytes.
const V1_PREFIX: &[u8] = b"PROXY ";

/// The v1 header's end.
const CRLF: &[u8] = b"\r\n";

/// What a PROXY header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxiedAddresses {
    /// The balancer relays a client: `source` is the client, `destination`
    /// the address the client connected to (on the balancer).
    Proxied {
        /// The real client.
        source: SocketAddr,
        /// Where the client connected.
        destination: SocketAddr,
    },
    /// v2 LOCAL: the balancer speaks for itself (a health check); the
    /// socket's own addresses apply.
    Local,
    /// v1 UNKNOWN, or a v2 PROXY of a family other than IPv4/IPv6 (UNIX,
    /// unspecified): the balancer does not know; the socket's own addresses
    /// apply.
    Unknown,
}

/// A complete, valid PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    /// What it says.
    pub addresses: ProxiedAddresses,
}

impl ProxyHeader {
    /// The `(local, peer)` addresses the connection should use: the
    /// header's destination and source, or the socket's own when the header
    /// names none.
    pub fn resolve(
        &self,
        socket_local: SocketAddr,
        socket_peer: SocketAddr,
    ) -> (SocketAddr, SocketAddr) {
        match self.addresses {
            ProxiedAddresses::Proxied {
                source,
                destination,
            } => (destination, source),
            ProxiedAddresses::Local | ProxiedAddresses::Unknown => (socket_local, socket_peer),
        }
    }
}

impl fmt::Display for ProxyHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addresses {
            ProxiedAddresses::Proxied {
                source,
                destination,
            } => write!(f, "PROXY v{} from {source} to {destination}", self.version),
            ProxiedAddresses::Local => write!(f, "PROXY v{} LOCAL", self.version),
            ProxiedAddresses::Unknown => write!(f, "PROXY v{} UNKNOWN", self.version),
        }
    }
}

/// Why the bytes are not a usable PROXY header. The connection must be
/// closed: what follows cannot be told apart from the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyHeaderError {
    /// The first bytes are neither `PROXY ` nor the v2 signature.
    #[error(
        "no PROXY protocol header: the connection did not start with \"PROXY \" (v1) or the v2 signature; make the load balancer send one (HAProxy: send-proxy or send-proxy-v2), or serve without --proxy-protocol"
    )]
    Missing,
    /// A v1 header without its CRLF within 107 bytes.
    #[error("PROXY v1 header without CRLF within {MAX_V1_HEADER} bytes")]
    V1TooLong,
    /// A v1 line that `ppp` rejects.
    #[error("malformed PROXY v1 header: {0}")]
    V1(String),
    /// A v2 header announcing more than [`MAX_V2_HEADER`] bytes.
    #[error("PROXY v2 header of {0} bytes; at most {MAX_V2_HEADER} are accepted")]
    V2TooLong(usize),
    /// A v2 header that `ppp` rejects.
    #[error("malformed PROXY v2 header: {0}")]
    V2(String),
    /// A v2 PROXY header for a datagram (UDP) connection, on TCP.
    #[error("PROXY v2 header describes a datagram (UDP) connection, but this is TCP")]
    NotStream,
}

/// What the bytes so far are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyHeaderStatus {
    /// A header may still come: read more.
    NeedMore,
    /// A complete header; the bytes after it belong to the protocol.
    Done {
        /// The header.
        header: ProxyHeader,
        /// How many of the bytes given were the header's (for
        /// [`ProxyHeaderReader::feed`]: of the bytes fed in that call).
        consumed: usize,
    },
    /// Not a valid header: close the connection.
    Invalid(ProxyHeaderError),
}

/// Decide what `input`, a connection's first bytes, starts with.
pub fn parse_proxy_header(input: &[u8]) -> ProxyHeaderStatus {
    if input.is_empty() {
        return ProxyHeaderStatus::NeedMore;
    }
    if is_prefix_either_way(input, v2::PROTOCOL_PREFIX) {
        parse_v2(input)
    } else if is_prefix_either_way(input, V1_PREFIX) {
        parse_v1(input)
    } else {
        ProxyHeaderStatus::Invalid(ProxyHeaderError::Missing)
    }
}

/// Whether one of `a`, `b` starts with the other.
fn is_prefix_either_way(a: &[u8], b: &[u8]) -> bool {
    let common = a.len().min(b.len());
    a[..common] == b[..common]
}

/// v1: a line of at most 107 bytes ending in CRLF. Wait for the CRLF, then
/// let `ppp` judge the whole line.
fn parse_v1(input: &[u8]) -> ProxyHeaderStatus {
    let window = &input[..input.len().min(MAX_V1_HEADER)];
    let Some(end) = window.windows(CRLF.len()).position(|pair| pair == CRLF) else {
        return if input.len() >= MAX_V1_HEADER {
            ProxyHeaderStatus::Invalid(ProxyHeaderError::V1TooLong)
        } else {
            ProxyHeaderStatus::NeedMore
        };
    };
    let consumed = end + CRLF.len();
    let header = match v1::Header::try_from(&input[..consumed]) {
        Ok(header) => header,
        Err(error) => return ProxyHeaderStatus::Invalid(ProxyHeaderError::V1(error.to_string())),
    };
    let addresses = match header.addresses {
        v1::Addresses::Tcp4(ip) => ProxiedAddresses::Proxied {
            source: SocketAddr::from((ip.source_address, ip.source_port)),
            destination: SocketAddr::from((ip.destination_address, ip.destination_port)),
        },
        v1::Addresses::Tcp6(ip) => ProxiedAddresses::Proxied {
            source: SocketAddr::from((ip.source_address, ip.source_port)),
            destination: SocketAddr::from((ip.destination_address, ip.destination_port)),
        },
        v1::Addresses::Unknown => ProxiedAddresses::Unknown,
    };
    ProxyHeaderStatus::Done {
        header: ProxyHeader {
            version: 1,
            addresses,
        },
        consumed,
    }
}

/// v2: 16 fixed bytes whose last two give the length of the rest.
fn parse_v2(input: &[u8]) -> ProxyHeaderStatus {
    const FIXED: usize = 16;
    if input.len() < FIXED {
        return ProxyHeaderStatus::NeedMore;
    }
    let total = FIXED + usize::from(u16::from_be_bytes([input[14], input[15]]));
    if total > MAX_V2_HEADER {
        return ProxyHeaderStatus::Invalid(ProxyHeaderError::V2TooLong(total));
    }
    if input.len() < total {
        return ProxyHeaderStatus::NeedMore;
    }
    let header = match v2::Header::try_from(&input[..total]) {
        Ok(header) => header,
        Err(error) => return ProxyHeaderStatus::Invalid(ProxyHeaderError::V2(error.to_string())),
    };
    // `ppp` reads the TLVs only when asked: a TLV announcing more bytes than
    // the header has left (or a stray 1–2 bytes after the last) is a
    // malformed header too (SPEC.md §13).
    if let Some(Err(error)) = header.tlvs().find(Result::is_err) {
        return ProxyHeaderStatus::Invalid(ProxyHeaderError::V2(error.to_string()));
    }
    let addresses = match header.command {
        v2::Command::Local => ProxiedAddresses::Local,
        v2::Command::Proxy => {
            let ip = |source: SocketAddr, destination: SocketAddr| {
                if header.protocol == v2::Protocol::Datagram {
                    Err(ProxyHeaderError::NotStream)
                } else {
                    Ok(ProxiedAddresses::Proxied {
                        source,
                        destination,
                    })
                }
            };
            let addresses = match header.addresses {
                v2::Addresses::IPv4(a) => ip(
                    (a.source_address, a.source_port).into(),
                    (a.destination_address, a.destination_port).into(),
                ),
                v2::Addresses::IPv6(a) => ip(
                    (a.source_address, a.source_port).into(),
                    (a.destination_address, a.destination_port).into(),
                ),
                v2::Addresses::Unspecified | v2::Addresses::Unix(_) => {
                    Ok(ProxiedAddresses::Unknown)
                }
            };
            match addresses {
                Ok(addresses) => addresses,
                Err(error) => return ProxyHeaderStatus::Invalid(error),
            }
        }
    };
    ProxyHeaderStatus::Done {
        header: ProxyHeader {
            version: 2,
            addresses,
        },
        consumed: total,
    }
}

/// Reads a PROXY header from a connection's first reads, holding at most
/// [`MAX_V2_HEADER`] bytes across them.
#[derive(Debug, Default)]
pub struct ProxyHeaderReader {
    buffered: Vec<u8>,
}

impl ProxyHeaderReader {
    /// A reader that has seen nothing.
    pub fn new() -> ProxyHeaderReader {
        ProxyHeaderReader::default()
    }

    /// Feed the next bytes read. On [`ProxyHeaderStatus::Done`], `consumed`
    /// counts the bytes of `data` that completed the header: hand
    /// `&data[consumed..]` to the protocol. After `Done` or `Invalid` the
    /// reader is finished; feeding it again starts a new header.
    pub fn feed(&mut self, data: &[u8]) -> ProxyHeaderStatus {
        let before = self.buffered.len();
        let room = MAX_V2_HEADER - before;
        self.buffered
            .extend_from_slice(&data[..data.len().min(room)]);
        match parse_proxy_header(&self.buffered) {
            ProxyHeaderStatus::NeedMore => ProxyHeaderStatus::NeedMore,
            ProxyHeaderStatus::Done { header, consumed } => {
                self.buffered = Vec::new();
                ProxyHeaderStatus::Done {
                    header,
                    consumed: consumed - before,
                }
            }
            invalid @ ProxyHeaderStatus::Invalid(_) => {
                self.buffered = Vec::new();
                invalid
            }
        }
    }

    /// Bytes held so far (at most [`MAX_V2_HEADER`]).
    pub fn buffered(&self) -> usize {
        self.buffered.len()
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), or a
/// single address (`127.0.0.1` means `127.0.0.1/32`): a `--trusted-proxy`.
///
/// The `ipnet` crate does the parsing and the matching; this type adds the
/// bare-address form and matches IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`)
/// as the IPv4 address they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// Whether any of `networks` contains `ip`.
    pub fn any_contains(networks: &[Cidr], ip: IpAddr) -> bool {
        networks.iter().any(|network| network.contains(ip))
    }
}

/// A string that is neither a CIDR network nor an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP network (10.0.0.0/8, 2001:db8::/32) or address (127.0.0.1)")]
pub struct CidrParseError(String);

impl FromStr for Cidr {
    type Err = CidrParseError;

    fn from_str(text: &str) -> Result<Cidr, CidrParseError> {
        if let Ok(network) = text.parse::<IpNet>() {
            return Ok(Cidr(network));
        }
        text.parse::<IpAddr>()
            .map(|ip| Cidr(IpNet::from(ip)))
            .map_err(|_| CidrParseError(text.to_string()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests;
