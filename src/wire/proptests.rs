//! Property tests of the codec: round trips and split-invariance.

use bytes::Bytes;
use proptest::prelude::*;

use super::{Address, Flags, FrameRepr, FrameType};
use crate::properties::{decode_reencodes_consumed_bytes, frame_survives_emit_then_parse};

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![
        Just(Address::UNSPECIFIED),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| Address {
            ip: std::net::Ipv4Addr::from(ip).to_ipv6_mapped(),
            port
        }),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| Address {
            ip: ip.into(),
            port
        }),
    ]
}

fn frame() -> impl Strategy<Value = FrameRepr> {
    let data = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => proptest::collection::vec(any::<u8>(), 0..70_000),
    ];
    (address(), address(), any::<u8>(), any::<u8>(), data).prop_map(
        |(src, dst, frame_type, flags, data)| FrameRepr {
            src,
            dst,
            frame_type: FrameType::from(frame_type),
            flags: Flags(flags),
            data: Bytes::from(data),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn emit_then_parse_is_identity(frame in frame(), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
        frame_survives_emit_then_parse(&frame, &cuts);
    }

    #[test]
    fn decode_of_arbitrary_bytes_reencodes_what_it_consumed(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        limit in prop_oneof![Just(0u32), Just(16), Just(u32::MAX)],
    ) {
        decode_reencodes_consumed_bytes(&bytes, limit);
    }

    #[test]
    fn decode_of_encoded_frames_reencodes_them(
        frames in proptest::collection::vec(frame(), 1..4),
        tail in proptest::collection::vec(any::<u8>(), 0..50),
    ) {
        let mut bytes = Vec::new();
        for frame in &frames {
            bytes.extend_from_slice(&frame.to_bytes());
        }
        bytes.extend_from_slice(&tail);
        decode_reencodes_consumed_bytes(&bytes, u32::MAX);
    }
}
