//! A blocking framed client over one TCP connection.

use std::fmt::Display;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::conn::{ClientConfig, ClientConnection, ClientEvent, ClientUsageError, PeerError};
use crate::wire::{ErrorCode, ErrorPayload, FrameRepr, FrameType};

/// Why a [`Client`] call failed. Each message says what happened and, where
/// the library knows, what to check; a program adds its own advice.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens at the address.
    #[error("could not connect to {addr}: connection refused; is a server running there?")]
    Refused {
        /// The address tried.
        addr: SocketAddr,
    },
    /// The address did not resolve, or resolved to nothing.
    #[error("cannot resolve {addr}: {reason}; give an address like 127.0.0.1:9999")]
    Resolve {
        /// The address as given.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection was not established in time.
    #[error(
        "could not connect to {addr} within {timeout:?}; check the address, or raise the timeout"
    )]
    ConnectTimeout {
        /// The address tried.
        addr: SocketAddr,
        /// The time allowed.
        timeout: Duration,
    },
    /// The server did not answer (or take our bytes) in time.
    #[error("no answer from the server within {timeout:?}; is it an UPCASE/1 server?")]
    Timeout {
        /// The time allowed.
        timeout: Duration,
    },
    /// The server answered with an ERROR frame.
    #[error("server error {code}: {message}")]
    Server {
        /// The ERROR code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server said BYE on its own (it is shutting down).
    #[error("the server closed the session ({reason}); connect again later")]
    ServerBye {
        /// The server's reason.
        reason: String,
    },
    /// No datagram came back (UDP): lost, or nobody answers UDP there.
    #[error(
        "no reply datagram from {server} within {timeout:?}; is an UPCASE server answering UDP there? datagrams can be lost: try again"
    )]
    NoDatagramReply {
        /// The server's address.
        server: SocketAddr,
        /// The time waited.
        timeout: Duration,
    },
    /// The server closed the connection without a word.
    #[error("the server closed the connection before answering")]
    Closed,
    /// The server broke the protocol.
    #[error(transparent)]
    Protocol(PeerError),
    /// A request this client cannot send (too long, or after BYE).
    #[error(transparent)]
    Usage(#[from] ClientUsageError),
    /// A TEXT reply that is not UTF-8 (the server is broken).
    #[error("the server's TEXT reply is not UTF-8")]
    NotUtf8,
    /// The socket failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
}

impl From<PeerError> for ClientError {
    fn from(error: PeerError) -> ClientError {
        match error {
            PeerError::Server(payload) => payload.into(),
            PeerError::Timeout { timeout } => ClientError::Timeout { timeout },
            PeerError::Closed => ClientError::Closed,
            other => ClientError::Protocol(other),
        }
    }
}

impl From<ErrorPayload> for ClientError {
    fn from(payload: ErrorPayload) -> ClientError {
        ClientError::Server {
            code: payload.code,
            message: payload.message,
        }
    }
}

/// What a request got, from [`Client::receive_answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Its reply's data (the replies to its fragments joined).
    Data(Vec<u8>),
    /// An ERROR that replaced its reply, the connection going on.
    Error(ErrorPayload),
}

/// A blocking UPCASE/1 client speaking frames, one request at a time or
/// pipelined ([`send_text`](Self::send_text) several, then
/// [`receive`](Self::receive) their replies in order). Every wait is bounded
/// by the timeout given to [`connect`](Self::connect). Long text goes out as
/// fragments, and the replies SPEC.md allows are accepted whatever their
/// length (see [`ClientConnection`], which this drives).
///
/// ```
/// use upcase::net::{Client, Server};
/// use std::time::Duration;
///
/// let handle = Server::builder().listen("127.0.0.1:0".parse()?).bind()?.spawn()?;
/// let mut client = Client::connect(handle.local_addrs()[0], Duration::from_secs(5))?;
/// assert_eq!(client.upcase("hello")?, "HELLO");
/// assert_eq!(client.upcase_bytes(b"caf\xc3\xa9")?, b"CAF\xc3\xa9");
/// assert_eq!(client.ping(b"are you there")?, b"are you there");
/// client.bye()?;
/// handle.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    conn: ClientConnection,
    timeout: Duration,
    read_buffer: Vec<u8>,
    /// Requests sent whose reply (or ERROR) the caller has not taken yet.
    /// The core's own count drops as soon as a reply arrives, while the
    /// reply may still wait among its events.
    untaken: usize,
}

impl Client {
    /// Connect to `addr` (the first address it resolves to that answers)
    /// and send the preface. `timeout` bounds the connect and every later wait.
    ///
    /// # Errors
    /// [`ClientError::Refused`], [`ClientError::ConnectTimeout`],
    /// [`ClientError::Resolve`] or another I/O error.
    pub fn connect(
        addr: impl ToSocketAddrs + Display,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let config = ClientConfig {
            reply_timeout: timeout,
            ..ClientConfig::default()
        };
        Client::connect_with(addr, timeout, config)
    }

    /// [`connect`](Self::connect) with the connection's settings (its
    /// fragment size, window and limits); `timeout` bounds the connect and
    /// every write.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_with(
        addr: impl ToSocketAddrs + Display,
        timeout: Duration,
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let stream = connect_stream(addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut client = Client {
            stream,
            conn: ClientConnection::new(Instant::now(), config),
            timeout,
            read_buffer: vec![0; 64 * 1024],
            untaken: 0,
        };
        client.flush()?;
        Ok(client)
    }

    /// The upper case of `text` (a TEXT request, in fragments if it is long).
    ///
    /// # Errors
    /// Any [`ClientError`]; an ERROR reply is [`ClientError::Server`].
    pub fn upcase(&mut self, text: &str) -> Result<String, ClientError> {
        self.send_text(text)?;
        let reply = self.receive_last()?;
        String::from_utf8(reply).map_err(|_| ClientError::NotUtf8)
    }

    /// The ASCII upper case of `data` (a BYTES request).
    ///
    /// # Errors
    /// As [`upcase`](Self::upcase).
    pub fn upcase_bytes(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.send_bytes(data)?;
        self.receive_last()
    }

    /// Send a PING with `data`; the PONG's data (the same bytes).
    ///
    /// # Errors
    /// As [`upcase`](Self::upcase).
    pub fn ping(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.conn.ping(data)?;
        self.flush_request()?;
        self.receive_last()
    }

    /// Send a TEXT request without waiting for its reply (pipelining);
    /// replies come back in order from [`receive`](Self::receive).
    ///
    /// # Errors
    /// [`ClientError::Usage`] after BYE; a socket error, a timeout, or a
    /// failure reported while reading replies to make room.
    pub fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.conn.send_text(text)?;
        self.flush_request()
    }

    /// Send a BYTES request without waiting for its reply.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send_bytes(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.conn.send_bytes(data)?;
        self.flush_request()
    }

    /// Send one frame as it is, without waiting for its reply.
    ///
    /// # Errors
    /// As [`send_text`](Self::send_text).
    pub fn send(&mut self, frame: FrameRepr) -> Result<(), ClientError> {
        self.conn.send(frame)?;
        self.flush_request()
    }

    /// Count the request just queued in the core as one whose reply the
    /// caller has yet to take, and send it.
    fn flush_request(&mut self) -> Result<(), ClientError> {
        self.untaken += 1;
        self.flush()
    }

    /// Requests sent whose replies [`receive`](Self::receive) has not
    /// returned yet (none once the connection is over).
    pub fn waiting(&self) -> usize {
        self.untaken
    }

    /// The data of the reply to the oldest unanswered request (its
    /// fragments' replies joined).
    ///
    /// # Errors
    /// [`ClientError::Server`] for an ERROR reply, [`ClientError::ServerBye`]
    /// when the server is shutting down, a timeout, a protocol or socket error.
    pub fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        match self.receive_answer()? {
            Answer::Data(data) => Ok(data),
            Answer::Error(error) => Err(error.into()),
        }
    }

    /// Like [`receive`](Self::receive), but an ERROR the connection survives
    /// (a non-fatal code, or one this client does not know: SPEC.md §6.6)
    /// is an [`Answer::Error`], not an `Err`: the caller goes on with the
    /// next reply, and learns that the ERROR was fatal only if the server
    /// closes. A fatal ERROR of a known code is still
    /// [`ClientError::Server`].
    ///
    /// # Errors
    /// As [`receive`](Self::receive), except for the ERRORs above.
    pub fn receive_answer(&mut self) -> Result<Answer, ClientError> {
        let mut data = Vec::new();
        loop {
            let event = self.next_event()?;
            if matches!(
                event,
                ClientEvent::ServerBye { .. } | ClientEvent::ConnectionLost { .. }
            ) {
                // The connection is over: nothing more will be answered.
                self.untaken = 0;
            }
            match event {
                ClientEvent::Reply { frame, last, .. } => {
                    data.extend_from_slice(&frame.data);
                    if last {
                        self.untaken = self.untaken.saturating_sub(1);
                        return Ok(Answer::Data(data));
                    }
                }
                ClientEvent::Error { error, .. } => {
                    self.untaken = self.untaken.saturating_sub(1);
                    return Ok(Answer::Error(error));
                }
                ClientEvent::ServerBye { reason, .. } => {
                    return Err(ClientError::ServerBye { reason });
                }
                ClientEvent::ConnectionLost { error, .. } => return Err(error.into()),
            }
        }
    }

    /// End the session the polite way: send BYE, wait for the server's BYE,
    /// then close (the client closes first, so the server does not linger).
    ///
    /// # Errors
    /// As [`receive`](Self::receive); the socket is closed in any case.
    pub fn bye(mut self) -> Result<(), ClientError> {
        if self.conn.is_closed() {
            return self.ended_before_bye();
        }
        self.conn.bye()?;
        self.flush()?;
        loop {
            match self.next_event()? {
                ClientEvent::Reply { frame, .. } if frame.frame_type == FrameType::Bye => {
                    return Ok(());
                }
                ClientEvent::Reply { .. } => {} // an earlier request's reply
                ClientEvent::Error { error, .. } => return Err(error.into()),
                // The server was closing anyway: the session is over just the same.
                ClientEvent::ServerBye { .. } => return Ok(()),
                ClientEvent::ConnectionLost { error, .. } => return Err(error.into()),
            }
        }
    }

    /// The connection ended before our BYE could go: a server BYE that
    /// left nothing unanswered is a normal end (SPEC.md §5.4), anything
    /// else the failure it was.
    fn ended_before_bye(&mut self) -> Result<(), ClientError> {
        loop {
            match self.next_event()? {
                ClientEvent::Reply { .. } | ClientEvent::Error { .. } => {}
                ClientEvent::ServerBye { unanswered, .. } if unanswered.is_empty() => {
                    return Ok(());
                }
                ClientEvent::ServerBye { reason, .. } => {
                    return Err(ClientError::ServerBye { reason });
                }
                ClientEvent::ConnectionLost { error, .. } => return Err(error.into()),
            }
        }
    }

    /// The reply to the request just sent: earlier replies are dropped
    /// (counted by what the caller has not taken, not by what the server
    /// has not answered: replies that arrived may still wait as events).
    fn receive_last(&mut self) -> Result<Vec<u8>, ClientError> {
        while self.untaken > 1 {
            self.receive()?;
        }
        self.receive()
    }

    /// Write all pending output; while requests are held back for replies,
    /// read those replies (they wait as events) and write what they release.
    fn flush(&mut self) -> Result<(), ClientError> {
        loop {
            while !self.conn.pending_output().is_empty() {
                match self.stream.write(self.conn.pending_output()) {
                    Ok(0) => return Err(ClientError::Closed),
                    Ok(sent) => self.conn.mark_sent(Instant::now(), sent)?,
                    Err(error) if is_timeout(&error) => {
                        return Err(ClientError::Timeout {
                            timeout: self.timeout,
                        });
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error.into()),
                }
            }
            if !self.conn.has_held_requests() || self.conn.is_closed() {
                return Ok(());
            }
            self.read()?;
        }
    }

    /// Read until the connection reports an event.
    fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(event) = self.conn.poll_event() {
                return Ok(event);
            }
            if self.conn.is_closed() {
                return Err(ClientError::Closed);
            }
            self.read()?;
        }
    }

    /// One read from the socket into the connection, bounded by its reply
    /// timer (or by the timeout when nothing is due).
    fn read(&mut self) -> Result<(), ClientError> {
        let now = Instant::now();
        let deadline = self.conn.poll_timeout();
        if deadline.is_some_and(|deadline| deadline <= now) {
            self.conn.handle_timeout(now);
            return Ok(());
        }
        let wait = deadline.map_or(self.timeout, |deadline| deadline - now);
        // Never `None` (which blocks forever): a zero wait was handled above.
        self.stream.set_read_timeout(Some(wait))?;
        match self.stream.read(&mut self.read_buffer) {
            Ok(0) => self.conn.handle_eof(Instant::now()),
            Ok(read) => self
                .conn
                .handle_input(Instant::now(), &self.read_buffer[..read]),
            Err(error) if is_timeout(&error) => {
                if deadline.is_none() {
                    return Err(ClientError::Timeout {
                        timeout: self.timeout,
                    });
                }
                self.conn.handle_timeout(Instant::now());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
        Ok(())
    }
}

/// Connect to the first of `addr`'s addresses that accepts, within `timeout` each.
///
/// # Errors
/// As [`Client::connect`]; for several addresses, the last one's error.
pub fn connect_stream(
    addr: impl ToSocketAddrs + Display,
    timeout: Duration,
) -> Result<TcpStream, ClientError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|error| ClientError::Resolve {
            addr: addr.to_string(),
            reason: error.to_string(),
        })?
        .collect();
    let mut last = ClientError::Resolve {
        addr: addr.to_string(),
        reason: "it names no address".into(),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                last = match error.kind() {
                    io::ErrorKind::ConnectionRefused => ClientError::Refused { addr },
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                        ClientError::ConnectTimeout { addr, timeout }
                    }
                    _ => ClientError::Io(error),
                };
            }
        }
    }
    Err(last)
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
