//! The client connection driven through arbitrary requests, deliveries,
//! clock moves and a server that may misbehave, against a server that
//! answers with the [`ReplyModel`]: one property for proptest and the
//! `client_connection` fuzz target.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::server_ops::{Expected, ReplyModel};
use crate::conn::{
    ClientConfig, ClientConnection, ClientEvent, ClientUsageError, PeerError, RequestId,
};
use crate::wire::{
    ErrorPayload, FrameDecoder, FrameRepr, FrameType, PREFACE, PREFACE_LEN, PrefaceMatch,
    match_preface,
};

/// Characters a text request is made of: ASCII, and characters whose upper
/// case is longer (ß → SS, ΐ → three code points, ﬃ → FFI) or that are 2,
/// 3 and 4 bytes long, so that fragments and replies change length.
const LETTERS: [&str; 10] = ["a", "z", " ", "ß", "ΐ", "é", "ﬃ", "中", "😀", "ǅ"];

/// The client settings of one run; small values make fragments, the window
/// and the timer matter within a few ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientOpsConfig {
    /// The limit on ERROR and BYE data (replies are bounded by their requests).
    pub max_data_len: u8,
    /// The longest data frame, minus one (so it is never zero).
    pub max_fragment_len: u8,
    /// The request data in flight before frames are held.
    pub max_in_flight: u8,
    /// The reply timeout in milliseconds, minus one.
    pub reply_timeout_ms: u8,
}

impl ClientOpsConfig {
    /// The connection settings this stands for.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            max_data_len: u32::from(self.max_data_len),
            max_fragment_len: u32::from(self.max_fragment_len) + 1,
            max_in_flight: usize::from(self.max_in_flight),
            reply_timeout: Duration::from_millis(u64::from(self.reply_timeout_ms) + 1),
            probe: false,
        }
    }
}

/// One thing that happens to a client connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ClientOp {
    /// Queue a TEXT request; each byte picks one of `LETTERS`.
    Text(Vec<u8>),
    /// Queue a BYTES request.
    Bytes(Vec<u8>),
    /// Queue a PING.
    Ping(Vec<u8>),
    /// Queue BYE.
    Bye,
    /// The server takes up to this many bytes of the client's output and
    /// answers every complete frame (the model's reply).
    ServerReads(u16),
    /// The client receives up to this many bytes of the server's output.
    ClientReads(u16),
    /// The server sends these bytes of its own: from here on it may be
    /// broken, and only what must hold for any server is checked.
    Inject(Vec<u8>),
    /// The clock moves on by this many milliseconds (firing a due timer).
    AdvanceTime(u16),
    /// The server closes once the client has read everything it sent.
    Eof,
}

/// A request the client accepted, and what its replies should add up to.
#[derive(Debug)]
struct Request {
    id: RequestId,
    expected: Vec<u8>,
    received: Vec<u8>,
    done: bool,
    /// An ERROR answered one of its frames. A request sent in fragments
    /// gets one reply per frame (SPEC.md §5.1), so when a hostile ERROR
    /// answered an early fragment, the server's replies to the later ones
    /// still come, and belong to this request.
    errored: bool,
}

/// The model server: it reads the client's bytes and answers each frame.
#[derive(Debug, Default)]
struct ModelServer {
    input: BytesMut,
    preface_seen: bool,
    model: ReplyModel,
    /// After its last frame (a terminal reply) the server reads and ignores.
    done: bool,
    /// What the server sent and the client has not read yet.
    to_client: Vec<u8>,
    closed: bool,
}

impl ModelServer {
    fn receive(&mut self, bytes: &[u8], max_fragment_len: usize) {
        self.input.extend_from_slice(bytes);
        if !self.preface_seen {
            if self.input.len() < PREFACE_LEN {
                return;
            }
            assert!(
                matches!(
                    match_preface(&self.input),
                    PrefaceMatch::Complete { version: 1 }
                ),
                "the client's first bytes are the preface"
            );
            let _ = self.input.split_to(PREFACE_LEN);
            self.preface_seen = true;
        }
        let decoder = FrameDecoder::new(u32::MAX);
        while let Some(frame) = decoder.decode(&mut self.input).expect("no limit") {
            if frame.frame_type.is_data() {
                assert!(
                    frame.data.len() <= max_fragment_len,
                    "a {}-byte fragment over the {max_fragment_len}-byte limit",
                    frame.data.len()
                );
            }
            if frame.frame_type == FrameType::Text && max_fragment_len >= 4 {
                assert!(
                    std::str::from_utf8(&frame.data).is_ok(),
                    "TEXT fragments are cut at code points when one fits"
                );
            }
            if self.done {
                continue;
            }
            let expected = self.model.expect(&frame);
            self.done = expected.is_terminal();
            let reply = match expected {
                Expected::Frame {
                    frame_type,
                    more,
                    data,
                } => {
                    let mut reply = FrameRepr::new(frame_type, data);
                    reply.flags = crate::wire::Flags::more_if(more);
                    reply
                }
                Expected::Error(code, message) => FrameRepr::new(
                    FrameType::Error,
                    ErrorPayload::new(code, message.unwrap_or_default()).to_bytes(),
                ),
            };
            self.to_client.extend_from_slice(&reply.to_bytes());
        }
    }
}

/// The state of one run.
struct Run {
    client: ClientConnection,
    config: ClientConfig,
    now: Instant,
    server: ModelServer,
    requests: Vec<Request>,
    /// The server sent bytes of its own (or closed early): it may be broken.
    hostile: bool,
    /// Whether BYE was queued.
    bye: bool,
    /// The event that ended the connection, once there is one.
    ended: Option<ClientEvent>,
    /// Replies in the order they came, to check they follow request order.
    last_reply: Option<RequestId>,
}

impl Run {
    fn new(config: &ClientOpsConfig) -> Run {
        let now = Instant::now();
        let config = config.client_config();
        let mut server = ModelServer::default();
        server.to_client.extend_from_slice(&PREFACE);
        Run {
            client: ClientConnection::new(now, config.clone()),
            config,
            now,
            server,
            requests: Vec::new(),
            hostile: false,
            bye: false,
            ended: None,
            last_reply: None,
        }
    }

    fn queue(&mut self, result: Result<RequestId, ClientUsageError>, expected: Vec<u8>) {
        let closing = self.bye || self.client.is_closed();
        match result {
            Ok(id) => {
                assert!(!closing, "a request accepted after BYE or the close");
                self.requests.push(Request {
                    id,
                    expected,
                    received: Vec::new(),
                    done: false,
                    errored: false,
                });
            }
            Err(error) => {
                assert_eq!(error, ClientUsageError::Closing);
                assert!(closing, "a request refused while open");
            }
        }
    }

    fn apply(&mut self, op: &ClientOp) {
        match op {
            ClientOp::Text(letters) => {
                let text: String = letters
                    .iter()
                    .map(|&b| LETTERS[usize::from(b) % LETTERS.len()])
                    .collect();
                let result = self.client.send_text(&text);
                self.queue(result, text.to_uppercase().into_bytes());
            }
            ClientOp::Bytes(data) => {
                let result = self.client.send_bytes(data);
                self.queue(result, data.to_ascii_uppercase());
            }
            ClientOp::Ping(data) => {
                let result = self.client.ping(data);
                self.queue(result, data.clone());
            }
            ClientOp::Bye => {
                let result = self.client.bye();
                self.queue(result, Vec::new());
                self.bye = true;
            }
            ClientOp::ServerReads(n) => self.server_reads(usize::from(*n)),
            ClientOp::ClientReads(n) => self.client_reads(usize::from(*n)),
            ClientOp::Inject(bytes) => {
                if !self.server.closed {
                    self.server.to_client.extend_from_slice(bytes);
                    self.hostile |= !bytes.is_empty();
                }
            }
            ClientOp::AdvanceTime(ms) => {
                self.now += Duration::from_millis(u64::from(*ms));
                if self.client.poll_timeout().is_some_and(|at| at <= self.now) {
                    self.client.handle_timeout(self.now);
                }
            }
            ClientOp::Eof => {
                if self.server.to_client.is_empty() && !self.server.closed {
                    self.server.closed = true;
                    self.client.handle_eof(self.now);
                }
            }
        }
        self.observe();
    }

    fn server_reads(&mut self, n: usize) {
        let take = n.min(self.client.pending_output().len());
        let bytes = self.client.pending_output()[..take].to_vec();
        self.client
            .mark_sent(self.now, take)
            .expect("marked what was pending");
        if !self.server.closed {
            let max = self.config.max_fragment_len as usize;
            self.server.receive(&bytes, max);
        }
    }

    fn client_reads(&mut self, n: usize) {
        let take = n.min(self.server.to_client.len());
        let bytes: Vec<u8> = self.server.to_client.drain(..take).collect();
        self.client.handle_input(self.now, &bytes);
    }

    /// Check every new event against the requests and the rules.
    fn observe(&mut self) {
        while let Some(event) = self.client.poll_event() {
            assert!(
                self.ended.is_none(),
                "{event:?} after the connection ended with {:?}",
                self.ended
            );
            match &event {
                ClientEvent::Reply {
                    request,
                    frame,
                    last,
                } => {
                    self.check_order(*request);
                    let entry = self.request(*request);
                    assert!(
                        !entry.done || entry.errored,
                        "a reply after the last one of {request:?}"
                    );
                    entry.received.extend_from_slice(&frame.data);
                    entry.done = *last;
                    if frame.frame_type == FrameType::Bye {
                        self.ended = Some(event);
                    }
                }
                ClientEvent::Error { request, error } => {
                    self.check_order(*request);
                    assert!(self.hostile, "a well-formed request got ERROR {error:?}");
                    let entry = self.request(*request);
                    entry.done = true;
                    entry.errored = true;
                }
                ClientEvent::ServerBye { .. } => {
                    assert!(self.hostile, "the model server never says BYE first");
                    self.ended = Some(event);
                }
                ClientEvent::ConnectionLost { error, .. } => {
                    let expected = matches!(error, PeerError::Timeout { .. })
                        || (matches!(error, PeerError::Closed) && self.server.closed);
                    assert!(
                        expected || self.hostile,
                        "a well-behaved server lost the connection: {error:?}"
                    );
                    self.ended = Some(event);
                }
            }
        }
        if self.ended.is_some() {
            assert!(self.client.is_closed(), "ended but not closed");
        }
        if self.client.is_closed() {
            assert!(self.ended.is_some(), "closed without an event saying why");
            assert_eq!(self.client.poll_timeout(), None, "a timer after the close");
            assert_eq!(self.client.waiting(), 0);
        }
    }

    fn check_order(&mut self, request: RequestId) {
        if let Some(last) = self.last_reply {
            assert!(request >= last, "{request:?} answered after {last:?}");
        }
        for earlier in self.requests.iter().filter(|r| r.id < request) {
            assert!(earlier.done, "{request:?} answered before {:?}", earlier.id);
        }
        self.last_reply = Some(request);
    }

    fn request(&mut self, id: RequestId) -> &mut Request {
        self.requests
            .iter_mut()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("a reply to {id:?}, which was never sent"))
    }

    /// Let a well-behaved server answer everything; then every request has
    /// its whole reply, equal to the oracle's.
    fn finish(&mut self) {
        if self.hostile || self.server.closed {
            return;
        }
        for _ in 0..10_000 {
            if self.client.is_closed()
                || (self.client.pending_output().is_empty() && self.server.to_client.is_empty())
            {
                break;
            }
            self.apply(&ClientOp::ServerReads(u16::MAX));
            self.apply(&ClientOp::ClientReads(u16::MAX));
        }
        if let Some(ClientEvent::ConnectionLost { .. }) = self.ended {
            return; // a timeout before the end: checked when it came
        }
        assert!(
            !self.client.has_held_requests(),
            "frames held with nothing in flight"
        );
        for request in &self.requests {
            assert!(request.done, "{:?} never answered in full", request.id);
            assert_eq!(
                request.received, request.expected,
                "the replies to {:?}",
                request.id
            );
        }
        assert_eq!(self.client.waiting(), 0);
    }
}

/// Drive a client connection through `ops` and check it: no panic; the
/// preface first, then frames, data frames no longer than the fragment
/// limit and TEXT ones cut at code points; requests refused exactly after
/// BYE or the close; replies in request order, none for a request never
/// sent or after a request's last; nothing after the event that ends the
/// connection, which comes exactly once and leaves no timer; against the
/// model server, no error but a due timeout or the server closing, and at
/// the end every request's replies join to the std-library upper case of
/// what it sent, whatever the reply limit (SPEC.md §3.4).
pub fn check_client_ops(config: &ClientOpsConfig, ops: &[ClientOp]) {
    let mut run = Run::new(config);
    for op in ops {
        run.apply(op);
    }
    run.finish();
}

/// Feed arbitrary server bytes, cut at `cuts`, to a client with requests in
/// flight: no panic, at most one ending event, nothing after it.
pub fn client_survives_any_server_bytes(requests: &[ClientOp], bytes: &[u8], cuts: &[usize]) {
    let mut ops: Vec<ClientOp> = requests.to_vec();
    ops.push(ClientOp::ServerReads(u16::MAX));
    for chunk in super::chunks_at(bytes, cuts) {
        ops.push(ClientOp::Inject(chunk.to_vec()));
        ops.push(ClientOp::ClientReads(u16::MAX));
    }
    let config = ClientOpsConfig {
        max_data_len: 64,
        max_fragment_len: 15,
        max_in_flight: 32,
        reply_timeout_ms: 100,
    };
    check_client_ops(&config, &ops);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> impl Strategy<Value = ClientOpsConfig> {
        (
            any::<u8>(),
            prop_oneof![Just(u8::MAX), 0u8..12],
            prop_oneof![Just(u8::MAX), 0u8..40],
            any::<u8>(),
        )
            .prop_map(
                |(max_data_len, max_fragment_len, max_in_flight, reply_timeout_ms)| {
                    ClientOpsConfig {
                        max_data_len,
                        max_fragment_len,
                        max_in_flight,
                        reply_timeout_ms,
                    }
                },
            )
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    fn op() -> impl Strategy<Value = ClientOp> {
        prop_oneof![
            4 => bytes(40).prop_map(ClientOp::Text),
            2 => bytes(40).prop_map(ClientOp::Bytes),
            1 => bytes(8).prop_map(ClientOp::Ping),
            1 => Just(ClientOp::Bye),
            4 => any::<u16>().prop_map(|n| ClientOp::ServerReads(n % 200)),
            4 => any::<u16>().prop_map(|n| ClientOp::ClientReads(n % 200)),
            1 => bytes(60).prop_map(ClientOp::Inject),
            1 => any::<u16>().prop_map(|n| ClientOp::AdvanceTime(n % 300)),
            1 => Just(ClientOp::Eof),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn client_connection_survives_any_ops(
            config in config(),
            ops in prop::collection::vec(op(), 0..24),
        ) {
            check_client_ops(&config, &ops);
        }

        /// Only requests and deliveries: the model server answers all, and
        /// every reply must be accepted.
        #[test]
        fn client_accepts_every_reply_the_model_sends(
            config in config(),
            ops in prop::collection::vec(
                prop_oneof![
                    4 => bytes(40).prop_map(ClientOp::Text),
                    2 => bytes(40).prop_map(ClientOp::Bytes),
                    1 => bytes(8).prop_map(ClientOp::Ping),
                    4 => any::<u16>().prop_map(|n| ClientOp::ServerReads(n % 200)),
                    4 => any::<u16>().prop_map(|n| ClientOp::ClientReads(n % 200)),
                ],
                0..24,
            ),
        ) {
            check_client_ops(&config, &ops);
        }

        #[test]
        fn client_survives_arbitrary_server_bytes(
            requests in prop::collection::vec(op(), 0..6),
            bytes in bytes(200),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            client_survives_any_server_bytes(&requests, &bytes, &cuts);
        }
    }

    /// The §3.4 case that a fixed decoder limit got wrong: ΐ triples, over
    /// a 0-byte limit for unbounded frames.
    #[test]
    fn a_tripled_reply_is_accepted_over_the_client_limit() {
        let config = ClientOpsConfig {
            max_data_len: 0,
            max_fragment_len: u8::MAX,
            max_in_flight: u8::MAX,
            reply_timeout_ms: u8::MAX,
        };
        let ops = [
            ClientOp::Text(vec![4; 100]), // 100 × ΐ
            ClientOp::ServerReads(u16::MAX),
            ClientOp::ClientReads(u16::MAX),
        ];
        let mut run = Run::new(&config);
        for op in &ops {
            run.apply(op);
        }
        assert!(run.ended.is_none());
        assert_eq!(run.requests[0].received.len(), 600);
        assert!(run.requests[0].done);
    }
}
