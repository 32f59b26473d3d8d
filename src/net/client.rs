//! A blocking framed client over one TCP connection.

use std::fmt::Display;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::conn::{ClientConnection, ClientEvent, PeerError, UsageError};
use crate::wire::{ErrorCode, FrameRepr, FrameType};

/// Why a [`Client`] call failed. Each message says what to try next.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens at the address.
    #[error(
        "could not connect to {addr}: connection refused; is a server running? start one with `upcase serve`"
    )]
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
    /// The server did not answer in time.
    #[error(
        "no answer from the server within {timeout:?}; is it an UPCASE/1 server? (for a raw-only server use `--raw`)"
    )]
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
        "no reply datagram from {server} within {timeout:?}; is an UPCASE server answering UDP there (`upcase serve` does unless --no-udp)? datagrams can be lost: try again"
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
    Usage(#[from] UsageError),
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
            PeerError::Server(payload) => ClientError::Server {
                code: payload.code,
                message: payload.message,
            },
            other => ClientError::Protocol(other),
        }
    }
}

/// A blocking UPCASE/1 client speaking frames, one request at a time or
/// pipelined ([`send`](Self::send) several, then [`receive`](Self::receive)
/// their replies in order). Every wait is bounded by the timeout given to
/// [`connect`](Self::connect).
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
        let stream = connect_stream(addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(timeout))?;
        let mut client = Client {
            stream,
            conn: ClientConnection::default(),
            timeout,
            read_buffer: vec![0; 16 * 1024],
        };
        client.flush()?;
        Ok(client)
    }

    /// The upper case of `text` (a TEXT request).
    ///
    /// # Errors
    /// Any [`ClientError`]; an ERROR reply is [`ClientError::Server`].
    pub fn upcase(&mut self, text: &str) -> Result<String, ClientError> {
        let reply = self.request(FrameRepr::new(FrameType::Text, text.as_bytes().to_vec()))?;
        String::from_utf8(reply).map_err(|_| ClientError::NotUtf8)
    }

    /// The ASCII upper case of `data` (a BYTES request).
    ///
    /// # Errors
    /// As [`upcase`](Self::upcase).
    pub fn upcase_bytes(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.request(FrameRepr::new(FrameType::Bytes, data.to_vec()))
    }

    /// Send a PING with `data`; the PONG's data (the same bytes).
    ///
    /// # Errors
    /// As [`upcase`](Self::upcase).
    pub fn ping(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.request(FrameRepr::new(FrameType::Ping, data.to_vec()))
    }

    /// Send a request without waiting for its reply (pipelining). Replies
    /// come back in order from [`receive`](Self::receive). Keep the number of
    /// unanswered requests bounded: a client that only writes while the
    /// server waits for it to read would block both.
    ///
    /// # Errors
    /// [`ClientError::Usage`] after BYE; a socket error or timeout while writing.
    pub fn send(&mut self, frame: FrameRepr) -> Result<(), ClientError> {
        self.conn.send(frame)?;
        self.flush()
    }

    /// Requests sent and not yet answered.
    pub fn waiting(&self) -> usize {
        self.conn.waiting()
    }

    /// The data of the reply to the oldest unanswered request.
    ///
    /// # Errors
    /// [`ClientError::Server`] for an ERROR reply, [`ClientError::ServerBye`]
    /// when the server is shutting down, a timeout, a protocol or socket error.
    pub fn receive(&mut self) -> Result<Vec<u8>, ClientError> {
        match self.next_event()? {
            ClientEvent::Reply { frame, .. } => Ok(frame.data.to_vec()),
            ClientEvent::Error { error, .. } => Err(error.into()),
            ClientEvent::ServerBye { reason, .. } => Err(ClientError::ServerBye { reason }),
        }
    }

    /// End the session the polite way: send BYE, wait for the server's BYE,
    /// then close (the client closes first, so the server does not linger).
    ///
    /// # Errors
    /// As [`receive`](Self::receive); the socket is closed in any case.
    pub fn bye(mut self) -> Result<(), ClientError> {
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
            }
        }
    }

    fn request(&mut self, frame: FrameRepr) -> Result<Vec<u8>, ClientError> {
        self.send(frame)?;
        while self.conn.waiting() > 1 {
            self.receive()?;
        }
        self.receive()
    }

    fn flush(&mut self) -> Result<(), ClientError> {
        while !self.conn.pending_output().is_empty() {
            match self.stream.write(self.conn.pending_output()) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(sent) => self.conn.mark_sent(sent)?,
                Err(error) if is_timeout(&error) => {
                    return Err(ClientError::Timeout {
                        timeout: self.timeout,
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Read until the connection reports an event, within the timeout.
    fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(event) = self.conn.poll_event() {
                return Ok(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    timeout: self.timeout,
                });
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut self.read_buffer) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(read) => {
                    if let Err(error) = self.conn.handle_input(&self.read_buffer[..read]) {
                        // A fatal ERROR is an event too: report events first.
                        return self.conn.poll_event().ok_or(error.into());
                    }
                }
                Err(error) if is_timeout(&error) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
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
