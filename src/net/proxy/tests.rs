//! The PROXY header reader against headers written out byte by byte from the
//! PROXY protocol spec (not by `ppp`'s builder), cut at every offset.

use std::net::{IpAddr, SocketAddr};

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// The v2 signature (spec §2.2).
const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// A v2 header: signature, version/command, family/protocol, length, body.
fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut header = SIGNATURE.to_vec();
    header.push(0x20 | command);
    header.push(family);
    header.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    header.extend_from_slice(body);
    header
}

/// PROXY TCP over IPv4 from 192.0.2.1:56324 to 198.51.100.2:443.
fn v2_tcp4() -> Vec<u8> {
    let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2];
    body.extend_from_slice(&56324u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    v2(0x1, 0x11, &body)
}

/// PROXY TCP over IPv6 from [2001:db8::1]:1000 to [2001:db8::2]:2000, with a
/// NOOP TLV (type 0x04) of 3 bytes, as balancers may add.
fn v2_tcp6_with_tlv() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    body.extend_from_slice(
        &"2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    body.extend_from_slice(&1000u16.to_be_bytes());
    body.extend_from_slice(&2000u16.to_be_bytes());
    body.extend_from_slice(&[0x04, 0x00, 0x03, b'a', b'b', b'c']);
    v2(0x1, 0x21, &body)
}

/// LOCAL, as a balancer's health check sends it: no addresses.
fn v2_local() -> Vec<u8> {
    v2(0x0, 0x00, &[])
}

const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
const V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 2000\r\n";
const V1_UNKNOWN: &[u8] = b"PROXY UNKNOWN\r\n";
const V1_UNKNOWN_WITH_JUNK: &[u8] = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";

fn done(status: ProxyHeaderStatus) -> (ProxyHeader, usize) {
    match status {
        ProxyHeaderStatus::Done { header, consumed } => (header, consumed),
        other => panic!("expected a complete header, got {other:?}"),
    }
}

fn invalid(input: &[u8]) -> ProxyHeaderError {
    match parse_proxy_header(input) {
        ProxyHeaderStatus::Invalid(error) => error,
        other => panic!("expected {input:?} to be invalid, got {other:?}"),
    }
}

fn proxied(source: &str, destination: &str) -> ProxiedAddresses {
    ProxiedAddresses::Proxied {
        source: addr(source),
        destination: addr(destination),
    }
}

/// Every valid header of these tests, with what it must parse to.
fn valid_headers() -> Vec<(Vec<u8>, ProxyHeader)> {
    let v1 = |addresses| ProxyHeader {
        version: 1,
        addresses,
    };
    let v2 = |addresses| ProxyHeader {
        version: 2,
        addresses,
    };
    vec![
        (
            V1_TCP4.to_vec(),
            v1(proxied("192.0.2.1:56324", "198.51.100.2:443")),
        ),
        (
            V1_TCP6.to_vec(),
            v1(proxied("[2001:db8::1]:1000", "[2001:db8::2]:2000")),
        ),
        (V1_UNKNOWN.to_vec(), v1(ProxiedAddresses::Unknown)),
        (V1_UNKNOWN_WITH_JUNK.to_vec(), v1(ProxiedAddresses::Unknown)),
        (
            v2_tcp4(),
            v2(proxied("192.0.2.1:56324", "198.51.100.2:443")),
        ),
        (
            v2_tcp6_with_tlv(),
            v2(proxied("[2001:db8::1]:1000", "[2001:db8::2]:2000")),
        ),
        (v2_local(), v2(ProxiedAddresses::Local)),
    ]
}

#[test]
fn each_valid_header_parses_to_its_addresses_and_length() {
    for (bytes, expected) in valid_headers() {
        let (header, consumed) = done(parse_proxy_header(&bytes));
        assert_eq!(header, expected, "{bytes:?}");
        assert_eq!(consumed, bytes.len(), "{bytes:?}");
    }
}

#[test]
fn the_protocol_bytes_after_a_header_are_not_consumed() {
    for (bytes, expected) in valid_headers() {
        let mut input = bytes.clone();
        input.extend_from_slice(b"UPCASE/1\x01rest");
        let (header, consumed) = done(parse_proxy_header(&input));
        assert_eq!(header, expected);
        assert_eq!(&input[consumed..], b"UPCASE/1\x01rest");
    }
}

#[test]
fn a_header_cut_at_any_offset_needs_more() {
    for (bytes, _) in valid_headers() {
        for cut in 0..bytes.len() {
            assert_eq!(
                parse_proxy_header(&bytes[..cut]),
                ProxyHeaderStatus::NeedMore,
                "{:?} cut at {cut}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn the_reader_fed_byte_by_byte_finishes_on_the_last_byte() {
    for (bytes, expected) in valid_headers() {
        let mut reader = ProxyHeaderReader::new();
        let (last, rest) = bytes.split_last().unwrap();
        for byte in rest {
            assert_eq!(
                reader.feed(std::slice::from_ref(byte)),
                ProxyHeaderStatus::NeedMore
            );
        }
        assert_eq!(
            reader.feed(std::slice::from_ref(last)),
            ProxyHeaderStatus::Done {
                header: expected,
                consumed: 1
            }
        );
        assert_eq!(reader.buffered(), 0);
    }
}

#[test]
fn the_reader_counts_consumed_bytes_of_the_last_chunk_only() {
    let mut input = v2_tcp4();
    input.extend_from_slice(b"hello");
    let mut reader = ProxyHeaderReader::new();
    assert_eq!(reader.feed(&input[..10]), ProxyHeaderStatus::NeedMore);
    let (_, consumed) = done(reader.feed(&input[10..]));
    assert_eq!(&input[10 + consumed..], b"hello");
}

#[test]
fn a_connection_without_a_header_is_refused_at_its_first_byte() {
    assert_eq!(invalid(b"U"), ProxyHeaderError::Missing);
    assert_eq!(invalid(b"UPCASE/1\x01"), ProxyHeaderError::Missing);
    assert_eq!(invalid(b"GET / HTTP/1.1\r\n"), ProxyHeaderError::Missing);
    assert_eq!(invalid(b"PROXY-"), ProxyHeaderError::Missing);
    assert_eq!(invalid(b"\r\n\r\n\0\r\nQUIX"), ProxyHeaderError::Missing);
}

#[test]
fn malformed_v1_lines_are_invalid() {
    for line in [
        &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
        b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 99999 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n",
        b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n\r\n",
    ] {
        assert!(
            matches!(invalid(line), ProxyHeaderError::V1(_)),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn a_v1_line_without_crlf_is_invalid_at_107_bytes_not_before() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(MAX_V1_HEADER - 1, b'x');
    assert_eq!(parse_proxy_header(&line), ProxyHeaderStatus::NeedMore);
    line.push(b'x');
    assert_eq!(invalid(&line), ProxyHeaderError::V1TooLong);
    // A CRLF past byte 107 does not rescue it.
    line.extend_from_slice(b"\r\n");
    assert_eq!(invalid(&line), ProxyHeaderError::V1TooLong);
}

#[test]
fn a_v1_line_of_exactly_107_bytes_is_accepted() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(MAX_V1_HEADER - 2, b'x');
    line.extend_from_slice(b"\r\n");
    let (header, consumed) = done(parse_proxy_header(&line));
    assert_eq!(header.addresses, ProxiedAddresses::Unknown);
    assert_eq!(consumed, MAX_V1_HEADER);
}

#[test]
fn malformed_v2_headers_are_invalid() {
    let mut wrong_version = v2_tcp4();
    wrong_version[12] = 0x11;
    assert!(matches!(invalid(&wrong_version), ProxyHeaderError::V2(_)));
    let mut wrong_command = v2_tcp4();
    wrong_command[12] = 0x2F;
    assert!(matches!(invalid(&wrong_command), ProxyHeaderError::V2(_)));
    // IPv4 needs 12 bytes of addresses; 4 cannot hold them.
    assert!(matches!(
        invalid(&v2(0x1, 0x11, &[1, 2, 3, 4])),
        ProxyHeaderError::V2(_)
    ));
}

/// IPv4 TCP addresses (12 bytes) followed by `tlvs`, in a v2 PROXY header.
fn v2_tcp4_with(tlvs: &[u8]) -> Vec<u8> {
    let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2];
    body.extend_from_slice(tlvs);
    v2(0x1, 0x11, &body)
}

#[test]
fn a_v2_tlv_longer_than_what_remains_is_invalid() {
    // A NOOP TLV announcing 255 bytes where none remain (issue 17).
    let announced_past_the_end = v2_tcp4_with(&[0x04, 0x00, 0xFF]);
    assert!(matches!(
        invalid(&announced_past_the_end),
        ProxyHeaderError::V2(_)
    ));
    // One byte short: 3 announced, 2 present.
    assert!(matches!(
        invalid(&v2_tcp4_with(&[0x04, 0x00, 0x03, b'a', b'b'])),
        ProxyHeaderError::V2(_)
    ));
    // Two stray bytes after the addresses: too short for a TLV's header.
    assert!(matches!(
        invalid(&v2_tcp4_with(&[0x04, 0x00])),
        ProxyHeaderError::V2(_)
    ));
    // A LOCAL header's TLVs are checked too (after IPv4 addresses; with an
    // unspecified family every byte is address bytes, to be skipped).
    let mut local = v2_tcp4_with(&[0x04, 0x00, 0x09]);
    local[12] = 0x20;
    assert!(matches!(invalid(&local), ProxyHeaderError::V2(_)));
}

#[test]
fn v2_tlvs_that_fill_the_header_exactly_are_accepted() {
    let (header, consumed) = done(parse_proxy_header(&v2_tcp4_with(&[
        0x04, 0x00, 0x02, b'a', b'b', 0x04, 0x00, 0x00,
    ])));
    assert_eq!(header.addresses, proxied("192.0.2.1:1", "198.51.100.2:2"));
    assert_eq!(consumed, 16 + 12 + 8);
}

#[test]
fn a_v2_header_over_the_size_cap_is_refused_before_it_is_read() {
    let mut header = SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11]);
    header.extend_from_slice(&600u16.to_be_bytes());
    assert_eq!(invalid(&header), ProxyHeaderError::V2TooLong(616));
}

#[test]
fn a_v2_udp_header_on_tcp_is_invalid() {
    let mut body = vec![192, 0, 2, 1, 198, 51, 100, 2];
    body.extend_from_slice(&[0, 1, 0, 2]);
    assert_eq!(invalid(&v2(0x1, 0x12, &body)), ProxyHeaderError::NotStream);
}

#[test]
fn a_v2_unix_or_unspecified_proxy_header_names_no_addresses() {
    let (header, _) = done(parse_proxy_header(&v2(0x1, 0x00, &[])));
    assert_eq!(header.addresses, ProxiedAddresses::Unknown);
    let (header, _) = done(parse_proxy_header(&v2(0x1, 0x31, &[0; 216])));
    assert_eq!(header.addresses, ProxiedAddresses::Unknown);
}

#[test]
fn the_reader_holds_at_most_the_v2_cap_whatever_it_is_fed() {
    let mut reader = ProxyHeaderReader::new();
    let mut header = SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x11]);
    header.extend_from_slice(&((MAX_V2_HEADER - 16) as u16).to_be_bytes());
    assert_eq!(reader.feed(&header), ProxyHeaderStatus::NeedMore);
    assert_eq!(reader.feed(&[0; 100]), ProxyHeaderStatus::NeedMore);
    assert!(reader.buffered() <= MAX_V2_HEADER);
}

#[test]
fn the_reader_holds_what_it_was_fed_until_the_header_is_decided() {
    let mut reader = ProxyHeaderReader::new();
    assert_eq!(reader.buffered(), 0);
    assert_eq!(reader.feed(b"PROXY TCP4 "), ProxyHeaderStatus::NeedMore);
    assert_eq!(reader.buffered(), 11);
    assert!(matches!(
        reader.feed(b"192.0.2.1 198.51.100.2 56324 443\r\n"),
        ProxyHeaderStatus::Done { .. }
    ));
    assert_eq!(reader.buffered(), 0, "a finished reader holds nothing");
}

#[test]
fn resolve_uses_the_header_addresses_or_the_sockets() {
    let socket_local = addr("127.0.0.1:9999");
    let socket_peer = addr("127.0.0.2:40000");
    let header = ProxyHeader {
        version: 2,
        addresses: proxied("192.0.2.1:56324", "198.51.100.2:443"),
    };
    assert_eq!(
        header.resolve(socket_local, socket_peer),
        (addr("198.51.100.2:443"), addr("192.0.2.1:56324"))
    );
    for addresses in [ProxiedAddresses::Local, ProxiedAddresses::Unknown] {
        let header = ProxyHeader {
            version: 2,
            addresses,
        };
        assert_eq!(
            header.resolve(socket_local, socket_peer),
            (socket_local, socket_peer)
        );
    }
}

#[test]
fn a_header_displays_its_version_and_what_it_says() {
    let proxied_v1 = ProxyHeader {
        version: 1,
        addresses: proxied("192.0.2.1:56324", "198.51.100.2:443"),
    };
    assert_eq!(
        proxied_v1.to_string(),
        "PROXY v1 from 192.0.2.1:56324 to 198.51.100.2:443"
    );
    let local = ProxyHeader {
        version: 2,
        addresses: ProxiedAddresses::Local,
    };
    assert_eq!(local.to_string(), "PROXY v2 LOCAL");
    let unknown = ProxyHeader {
        version: 1,
        addresses: ProxiedAddresses::Unknown,
    };
    assert_eq!(unknown.to_string(), "PROXY v1 UNKNOWN");
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn cidr_networks_contain_their_addresses_only() {
    let net: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(net.contains(ip("10.1.2.3")));
    assert!(!net.contains(ip("11.0.0.1")));
    assert!(!net.contains(ip("::1")));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains(ip("2001:db8:1::5")));
    assert!(!v6.contains(ip("2001:db9::5")));
}

#[test]
fn a_bare_address_is_a_network_of_one() {
    let one: Cidr = "127.0.0.1".parse().unwrap();
    assert!(one.contains(ip("127.0.0.1")));
    assert!(!one.contains(ip("127.0.0.2")));
    assert_eq!(one.to_string(), "127.0.0.1/32");
    let one_v6: Cidr = "::1".parse().unwrap();
    assert!(one_v6.contains(ip("::1")));
    assert_eq!(one_v6.to_string(), "::1/128");
}

#[test]
fn an_ipv4_mapped_peer_matches_its_ipv4_network() {
    let net: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(net.contains(ip("::ffff:10.1.2.3")));
}

#[test]
fn bad_networks_are_refused_with_their_text() {
    for text in ["10.0.0.0/33", "example.com", "", "10.0.0/8", "::1/129"] {
        let error = text.parse::<Cidr>().unwrap_err();
        assert!(error.to_string().contains(&format!("{text:?}")), "{error}");
    }
}

#[test]
fn only_peers_inside_a_trusted_network_are_trusted() {
    let trusted: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
    assert!(Cidr::any_contains(&trusted, ip("127.0.0.1")));
    assert!(Cidr::any_contains(&trusted, ip("10.9.9.9")));
    assert!(!Cidr::any_contains(&trusted, ip("127.0.0.2")));
    assert!(!Cidr::any_contains(&[], ip("127.0.0.1")));
}

mod properties {
    //! Whatever the bytes: no panic, and the answer for a prefix agrees with
    //! the answer for the whole (a stream cut anywhere reads the same).

    use proptest::prelude::*;

    use super::super::*;
    use super::{V1_TCP4, v2_local, v2_tcp4, v2_tcp6_with_tlv};

    /// Bytes that often start like a header: a valid header's prefix with
    /// random bytes after or instead of its tail, or plain random bytes.
    fn inputs() -> impl Strategy<Value = Vec<u8>> {
        let headers = vec![V1_TCP4.to_vec(), v2_tcp4(), v2_tcp6_with_tlv(), v2_local()];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..700),
            (
                proptest::sample::select(headers),
                any::<prop::sample::Index>(),
                proptest::collection::vec(any::<u8>(), 0..120),
            )
                .prop_map(|(header, cut, tail)| {
                    let mut bytes = header[..cut.index(header.len() + 1)].to_vec();
                    bytes.extend(tail);
                    bytes
                }),
        ]
    }

    proptest! {
        #[test]
        fn answers_are_consistent_over_prefixes(input in inputs()) {
            let whole = parse_proxy_header(&input);
            match &whole {
                ProxyHeaderStatus::Done { consumed, .. } => {
                    prop_assert!(*consumed <= input.len());
                    prop_assert!(*consumed <= MAX_V2_HEADER);
                    // The header is decided by its own bytes only.
                    prop_assert_eq!(&parse_proxy_header(&input[..*consumed]), &whole);
                    for cut in 0..*consumed {
                        prop_assert_eq!(parse_proxy_header(&input[..cut]), ProxyHeaderStatus::NeedMore);
                    }
                }
                ProxyHeaderStatus::NeedMore => prop_assert!(input.len() < MAX_V2_HEADER),
                ProxyHeaderStatus::Invalid(_) => {
                    // More bytes never make an invalid start valid.
                    let mut longer = input.clone();
                    longer.extend_from_slice(b"\r\n\r\nmore");
                    prop_assert!(matches!(parse_proxy_header(&longer), ProxyHeaderStatus::Invalid(_)));
                }
            }
        }

        #[test]
        fn the_reader_agrees_with_the_parser_however_the_bytes_are_split(
            input in inputs(),
            split in any::<prop::sample::Index>(),
        ) {
            let split = split.index(input.len() + 1);
            let mut reader = ProxyHeaderReader::new();
            let first = reader.feed(&input[..split]);
            let status = match first {
                ProxyHeaderStatus::NeedMore => match reader.feed(&input[split..]) {
                    ProxyHeaderStatus::Done { header, consumed } => {
                        ProxyHeaderStatus::Done { header, consumed: consumed + split }
                    }
                    other => other,
                },
                done_or_invalid => done_or_invalid,
            };
            prop_assert_eq!(status, parse_proxy_header(&input));
        }
    }
}
