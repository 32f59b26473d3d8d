//! The scripted server's UDP side (SPEC.md §8, `--udp` clients): one
//! socket, the client's datagrams read until the case's deadline, replies
//! sent to their source.

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use upcase::wire::{
    Address, FrameRepr, FrameType, MAX_UDP_PAYLOAD, encode_framed_datagram, framed_datagram,
};

use super::Log;
use crate::conform::case::Failure;
use crate::conform::show;

/// The socket the client under test sends its datagrams to.
pub struct DatagramPeer {
    socket: UdpSocket,
    deadline: Instant,
    /// Where the last datagram came from.
    client: Option<SocketAddr>,
    /// What was sent and received.
    pub log: Log,
}

impl DatagramPeer {
    /// Serve on `socket` until `deadline`.
    pub fn new(socket: UdpSocket, deadline: Instant, log: Log) -> DatagramPeer {
        DatagramPeer {
            socket,
            deadline,
            client: None,
            log,
        }
    }

    /// The client's next request: a datagram that must be the preface and
    /// one frame, MORE clear (C17).
    pub fn next_request(&mut self) -> Result<FrameRepr, Failure> {
        let mut buffer = vec![0; MAX_UDP_PAYLOAD + 1];
        let left = super::time_left(self.deadline, "no datagram")?;
        self.socket
            .set_read_timeout(Some(left))
            .map_err(|e| Failure::new(format!("cannot set a read timeout: {e}")))?;
        let (len, from) = self
            .socket
            .recv_from(&mut buffer)
            .map_err(|_| Failure::new("the client sent no datagram before the case's deadline"))?;
        self.client = Some(from);
        let datagram = &buffer[..len];
        let frame = framed_datagram(datagram)
            .map(|view| FrameRepr::parse(&view))
            .map_err(|error| {
                Failure::mismatch(
                    "C17: the client's datagram is not the preface and one frame",
                    "preface + one frame (SPEC.md §8.2)",
                    format!("{error}: {}", show::datagram(datagram)),
                )
            })?
            .map_err(|e| Failure::new(format!("the client's frame does not parse: {e:?}")))?;
        self.log
            .push(format!("← datagram: {}", show::frame(&frame)));
        if frame.flags.0 != 0 {
            return Err(Failure::mismatch(
                "C17: the client's datagram frame has flags set (MORE is MALFORMED in a datagram)",
                "flags 00",
                format!("flags 0x{:02x}", frame.flags.0),
            ));
        }
        Ok(frame)
    }

    /// A reply to `request` (addresses swapped, filled in from the socket).
    pub fn reply_to(
        &self,
        request: &FrameRepr,
        frame_type: FrameType,
        data: impl Into<bytes::Bytes>,
    ) -> FrameRepr {
        let local = self
            .socket
            .local_addr()
            .map(Address::from)
            .unwrap_or(Address::UNSPECIFIED);
        let peer = self
            .client
            .map(Address::from)
            .unwrap_or(Address::UNSPECIFIED);
        let mut reply = FrameRepr::new(frame_type, data);
        reply.src = request.dst.or_else(local);
        reply.dst = request.src.or_else(peer);
        reply
    }

    /// Send the preface and `frame` to the client.
    pub fn send(&mut self, frame: &FrameRepr) -> Result<(), Failure> {
        self.log.push(format!("→ datagram: {}", show::frame(frame)));
        self.send_bytes(&encode_framed_datagram(frame))
    }

    /// Send `bytes` as one datagram, as they are.
    pub fn send_raw(&mut self, bytes: &[u8], what: &str) -> Result<(), Failure> {
        self.log
            .push(format!("→ datagram: {what} {}", show::datagram(bytes)));
        self.send_bytes(bytes)
    }

    fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let to = self
            .client
            .ok_or_else(|| Failure::new("no datagram to answer yet"))?;
        self.socket
            .send_to(bytes, to)
            .map(drop)
            .map_err(|e| Failure::new(format!("cannot send a datagram to the client: {e}")))
    }
}
