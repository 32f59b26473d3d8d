//! Deliberately broken UDP responders: tiny loops on 127.0.0.1:0 that answer
//! with our `respond_to_datagram` and then get one thing wrong.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use upcase::conn::{DatagramConfig, respond_to_datagram};
use upcase::wire::{HEADER_LEN, PREFACE_LEN, PREFACE_MAGIC, field};

/// What the responder gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Framed replies lack the preface: just the frame.
    NoPreface,
    /// Raw datagrams are upper-cased byte by byte, each byte decoded lossily
    /// (non-ASCII bytes become U+FFFD): the naive per-byte loop.
    BytewiseLossy,
    /// A frame length that does not match the datagram is trusted as the
    /// datagram's: the header's length is rewritten before answering.
    IgnoresLengthMismatch,
    /// Not a bug: the first copy of each distinct datagram is lost, as UDP
    /// may lose it. Keyed by content, not by sender, so that a port the OS
    /// hands out again cannot make a case's first datagram get through.
    LosesFirstDatagram,
}

pub struct BrokenUdp {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BrokenUdp {
    pub fn start(bug: Bug) -> BrokenUdp {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let mut seen = std::collections::HashSet::new();
            while !stopping.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if bug == Bug::LosesFirstDatagram && seen.insert(buf[..n].to_vec()) {
                    continue;
                }
                if let Some(reply) = answer(bug, &buf[..n], addr, peer) {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        BrokenUdp {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BrokenUdp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn is_framed(datagram: &[u8]) -> bool {
    datagram.len() >= PREFACE_LEN && datagram.starts_with(&PREFACE_MAGIC)
}

fn answer(bug: Bug, datagram: &[u8], local: SocketAddr, peer: SocketAddr) -> Option<Vec<u8>> {
    let correct = |datagram: &[u8]| {
        respond_to_datagram(datagram, local, peer, &DatagramConfig::default())
            .bytes()
            .map(<[u8]>::to_vec)
    };
    match bug {
        Bug::NoPreface if is_framed(datagram) => {
            correct(datagram).map(|reply| reply[PREFACE_LEN..].to_vec())
        }
        Bug::BytewiseLossy if !is_framed(datagram) => Some(
            datagram
                .iter()
                .flat_map(|&b| String::from_utf8_lossy(&[b]).to_uppercase().into_bytes())
                .collect(),
        ),
        Bug::IgnoresLengthMismatch if datagram.len() >= PREFACE_LEN + HEADER_LEN => {
            let mut fixed = datagram.to_vec();
            let actual = (datagram.len() - PREFACE_LEN - HEADER_LEN) as u32;
            let length = PREFACE_LEN + field::LENGTH.start..PREFACE_LEN + field::LENGTH.end;
            let announced = u32::from_be_bytes(fixed[length.clone()].try_into().expect("4 bytes"));
            // Over-limit lengths are still caught: only the mismatch is ignored.
            if announced <= upcase::wire::DEFAULT_MAX_DATA_LEN {
                fixed[length].copy_from_slice(&actual.to_be_bytes());
            }
            correct(&fixed)
        }
        _ => correct(datagram),
    }
}
