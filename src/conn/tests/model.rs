//! Model-based test of the framed server: arbitrary client frames against a
//! small, obviously correct model of SPEC.md's reply rules (the
//! [`ReplyModel`](crate::properties::server_ops::ReplyModel) the fuzz target
//! uses too), comparing the whole reply sequence.

use proptest::prelude::*;

use super::harness::*;
use crate::conn::ServerConfig;
use crate::properties::chunks_at;
use crate::properties::server_ops::expected_replies;
use crate::wire::{Address, ErrorCode, Flags, FrameRepr, FrameType};

const LIMIT: u32 = 64;

/// Panic unless `replies` are, one for one and no more, what the model
/// expects for `frames`.
fn assert_replies_match_model(replies: &[FrameRepr], frames: &[FrameRepr]) {
    let expected = expected_replies(frames, LIMIT);
    assert_eq!(
        replies.len(),
        expected.len(),
        "replies {replies:?}, the model expects {expected:?}"
    );
    for ((reply, expected), request) in replies.iter().zip(&expected).zip(frames) {
        expected.assert_matches(reply, request);
    }
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"a".to_vec()),
        Just("ß".as_bytes().to_vec()),
        Just("\u{390}".as_bytes().to_vec()),
        Just("€".as_bytes().to_vec()),
        Just("😀".as_bytes().to_vec()),
        Just(b"\xe2".to_vec()),
        Just(b"\x82\xac".to_vec()),
        Just(b"\xf0\x9f".to_vec()),
        Just(b"\x98\x80".to_vec()),
        Just(b"\xff".to_vec()),
    ];
    prop_oneof![
        10 => proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat()),
        1 => proptest::collection::vec(any::<u8>(), 60..70),
    ]
}

fn client_frame() -> impl Strategy<Value = FrameRepr> {
    let frame_type = prop_oneof![
        8 => Just(FrameType::Text),
        3 => Just(FrameType::Bytes),
        2 => Just(FrameType::Ping),
        1 => Just(FrameType::Bye),
        1 => Just(FrameType::Pong),
        1 => Just(FrameType::Error),
        1 => (7u8..=255).prop_map(FrameType::Unknown),
    ];
    let flags = prop_oneof![8 => Just(0u8), 8 => Just(1u8), 1 => any::<u8>()];
    (frame_type, flags, data()).prop_map(|(frame_type, flags, data)| FrameRepr {
        src: Address::UNSPECIFIED,
        dst: Address::UNSPECIFIED,
        frame_type,
        flags: Flags(flags),
        data: data.into(),
    })
}

/// One TEXT message: a fragment per chunk, MORE on all but the last.
fn text_message(fragments: &[&[u8]]) -> Vec<FrameRepr> {
    let last = fragments.len() - 1;
    fragments
        .iter()
        .enumerate()
        .map(|(i, chunk)| frame(FrameType::Text, i != last, chunk))
        .collect()
}

proptest! {
    #[test]
    fn server_replies_match_the_model_for_any_tcp_split(
        frames in proptest::collection::vec(client_frame(), 0..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let config = ServerConfig { max_data_len: LIMIT, ..ServerConfig::default() };
        let input = framed_input(&frames);
        let mut whole = Pair::new(config.clone());
        whole.feed(&input);
        let mut split = Pair::new(config);
        for chunk in chunks_at(&input, &cuts) {
            split.feed(chunk);
        }
        prop_assert_eq!(&whole.sent, &split.sent, "output depends on the TCP split");
        assert_replies_match_model(&whole.frames(), &frames);
    }

    #[test]
    fn fragmented_text_replies_concatenate_to_to_uppercase(
        text in "[a-zß\u{390}\u{3b0}ŉﬃéΣ中😀]{0,24}",
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let frames = text_message(&chunks_at(text.as_bytes(), &cuts));
        let mut harness = Pair::new(ServerConfig::default());
        harness.feed(&framed_input(&frames));
        let replies = harness.frames();
        prop_assert_eq!(replies.len(), frames.len(), "one reply per fragment");
        let joined: Vec<u8> = replies.iter().flat_map(|r| r.data.to_vec()).collect();
        prop_assert_eq!(joined, text.to_uppercase().into_bytes());
    }

    #[test]
    fn an_invalid_byte_is_reported_in_the_fragment_that_shows_it(
        text in "[aß€😀]{0,8}",
        bad in prop_oneof![Just(0xffu8), Just(0x80), Just(0xc0), Just(0xf5)],
        at in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        // Insert the bad byte at a code point boundary so it alone breaks the text.
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        let position = boundaries[at.index(boundaries.len())];
        let mut message = text.as_bytes().to_vec();
        message.insert(position, bad);
        let fragments = chunks_at(&message, &cuts);
        let frames = text_message(&fragments);
        let mut harness = Pair::new(ServerConfig::default());
        harness.feed(&framed_input(&frames));
        let replies = harness.frames();
        // The fragment holding the bad byte is the one whose end passes `position`.
        let mut end = 0;
        let showing = fragments.iter().position(|f| { end += f.len(); end > position }).unwrap();
        prop_assert_eq!(replies.len(), showing + 1, "nothing after the ERROR");
        prop_assert_eq!(error_code(&replies[showing]), ErrorCode::INVALID_UTF8);
        prop_assert_eq!(
            error_message(&replies[showing]),
            format!("invalid UTF-8 at byte {position} of the message")
        );
    }
}
