//! A blocking UDP client (SPEC.md §8): one datagram out, one back, with a
//! receive timeout, since a datagram (or its answer) can be lost.

use std::fmt::Display;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use super::client::ClientError;
use crate::wire::{
    ErrorPayload, FrameRepr, FrameType, MAX_UDP_PAYLOAD, encode_framed_datagram, framed_datagram,
};

/// A UDP socket "connected" to one UPCASE server.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    server: SocketAddr,
    timeout: Duration,
    buffer: Vec<u8>,
}

impl UdpClient {
    /// A client for the server at `addr`, waiting at most `timeout` per reply.
    ///
    /// # Errors
    /// [`ClientError::Resolve`] when `addr` names no address; socket errors.
    pub fn connect(
        addr: impl ToSocketAddrs + Display,
        timeout: Duration,
    ) -> Result<UdpClient, ClientError> {
        let resolve_error = |reason: String| ClientError::Resolve {
            addr: addr.to_string(),
            reason,
        };
        let server = addr
            .to_socket_addrs()
            .map_err(|error| resolve_error(error.to_string()))?
            .next()
            .ok_or_else(|| resolve_error("it names no address".into()))?;
        let any: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid")
        } else {
            "[::]:0".parse().expect("valid")
        };
        let socket = UdpSocket::bind(any)?;
        socket.connect(server)?;
        socket.set_read_timeout(Some(timeout))?;
        Ok(UdpClient {
            socket,
            server,
            timeout,
            buffer: vec![0; MAX_UDP_PAYLOAD + 1],
        })
    }

    /// The local address datagrams are sent from.
    ///
    /// # Errors
    /// The socket's error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Send `datagram` as it is and return the reply datagram.
    ///
    /// # Errors
    /// [`ClientError::NoDatagramReply`] when nothing comes back in time.
    pub fn exchange(&mut self, datagram: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.send(datagram)?;
        self.receive_within(self.timeout)
    }

    /// Send `datagram` as it is, without waiting for a reply.
    ///
    /// # Errors
    /// The socket's error.
    pub fn send(&mut self, datagram: &[u8]) -> Result<(), ClientError> {
        self.socket.send(datagram)?;
        Ok(())
    }

    /// The next datagram from the server, waiting at most `wait` (a caller
    /// with a deadline passes what is left of it; zero waits not at all).
    ///
    /// # Errors
    /// [`ClientError::NoDatagramReply`] when nothing comes in time.
    pub fn receive_within(&mut self, wait: Duration) -> Result<Vec<u8>, ClientError> {
        let no_reply = ClientError::NoDatagramReply {
            server: self.server,
            timeout: self.timeout,
        };
        if wait.is_zero() {
            return Err(no_reply);
        }
        self.socket.set_read_timeout(Some(wait))?;
        match self.socket.recv(&mut self.buffer) {
            Ok(len) => Ok(self.buffer[..len].to_vec()),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(no_reply)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Send one frame (after the preface) and return the reply frame.
    ///
    /// # Errors
    /// [`ClientError::Server`] for an ERROR reply; an
    /// [`io::ErrorKind::InvalidData`] error when the reply is not a preface
    /// and one frame answering the request (flags clear, the right type, a
    /// TEXT reply in UTF-8).
    pub fn request(&mut self, request: &FrameRepr) -> Result<FrameRepr, ClientError> {
        let datagram = encode_framed_datagram(request);
        let reply = self.exchange(&datagram)?;
        Self::reply_frame(&reply, request.frame_type)
    }

    /// The frame of a framed reply datagram (preface and one frame) to a
    /// request of `request_type`.
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn reply_frame(reply: &[u8], request_type: FrameType) -> Result<FrameRepr, ClientError> {
        let malformed = |what: String| {
            ClientError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the server's reply: {what}; is it an UPCASE/1 server?"),
            ))
        };
        let view = framed_datagram(reply).map_err(|error| malformed(error.to_string()))?;
        let frame = FrameRepr::parse(&view).expect("framed_datagram checked the length");
        if frame.flags.0 != 0 {
            return Err(malformed(format!(
                "a {} frame with flags 0x{:02x} (a reply datagram has none)",
                frame.frame_type, frame.flags.0
            )));
        }
        if frame.frame_type == FrameType::Error {
            let payload =
                ErrorPayload::parse(&frame.data).map_err(|error| malformed(error.to_string()))?;
            return Err(ClientError::Server {
                code: payload.code,
                message: payload.message,
            });
        }
        // SPEC.md §2.4, §8.2: the reply's type answers the request's, and a
        // TEXT reply is the upper case of whole code points.
        let expected = match request_type {
            FrameType::Ping => FrameType::Pong,
            other => other,
        };
        if frame.frame_type != expected {
            return Err(malformed(format!(
                "a {} frame answering a {request_type}",
                frame.frame_type
            )));
        }
        if frame.frame_type == FrameType::Text && std::str::from_utf8(&frame.data).is_err() {
            return Err(malformed("a TEXT reply that is not UTF-8".into()));
        }
        Ok(frame)
    }
}
