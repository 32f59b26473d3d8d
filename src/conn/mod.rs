//! The sans-IO state machines (SPEC.md §2–§9): a server connection (mode
//! detection, raw and framed), a client connection, and the stateless
//! datagram responder. Time is passed in; nothing here touches a socket or
//! reads a clock.

mod client;
mod config;
mod datagram;
mod error;
mod events;
mod framed;
mod reply;
mod server;

pub use client::{ClientConnection, ClientEvent, RequestId};
pub use config::{ClientConfig, DEFAULT_MAX_FRAGMENT_LEN, RawCase, ServerConfig, ServerMode};
pub use datagram::{
    AMPLIFICATION_LIMIT, DatagramConfig, DatagramReply, SHORTEST_ERROR_REPLY, respond_to_datagram,
};
pub use error::{ClientUsageError, PeerError, ProtocolViolation, ServerUsageError};
pub use events::{CloseReason, ConnectionStats, FrameCounts, ServerEvent, WireMode};
pub use reply::ReplyAddresses;
pub use server::ServerConnection;

#[cfg(test)]
mod tests;
