//! How the server's limits show at its edges, over loopback: binding a
//! port whose UDP twin is taken.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use upcase::net::Server;

/// A UDP socket on a port whose TCP twin is free (just checked).
fn udp_port_with_tcp_free() -> (UdpSocket, SocketAddr) {
    loop {
        let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return (holder, addr);
        }
    }
}

#[test]
fn a_fixed_port_whose_udp_is_taken_is_in_use_even_beside_port_0() {
    // Picking another port for the port-0 address cannot help: after its
    // few retries, bind says which address is in use (and returns).
    let (_holder, taken) = udp_port_with_tcp_free();
    let (done, bound) = mpsc::channel();
    thread::spawn(move || {
        let result = Server::builder()
            .listen("127.0.0.1:0".parse::<SocketAddr>().unwrap())
            .listen(taken)
            .bind();
        done.send(result.map(|_| ())).unwrap();
    });
    let result = bound
        .recv_timeout(Duration::from_secs(60))
        .expect("bind returns");
    let error = result.expect_err("the UDP port is taken");
    assert_eq!(error.kind(), ErrorKind::AddrInUse, "{error}");
    assert!(
        error.to_string().contains(&format!("udp {taken}")),
        "{error}"
    );
}
