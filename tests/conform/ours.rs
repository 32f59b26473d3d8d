//! Our real server, `upcase::net::Server`, on 127.0.0.1:0 (TCP and UDP on
//! one port), stopped on drop.

use std::net::SocketAddr;
use std::time::Duration;

use upcase::conn::ServerConfig;
use upcase::net::{Server, ServerHandle};

pub struct OurServer {
    pub addr: SocketAddr,
    handle: Option<ServerHandle>,
}

impl OurServer {
    /// Default settings.
    pub fn start() -> OurServer {
        OurServer::with(ServerConfig::default(), 1024)
    }

    pub fn with(config: ServerConfig, max_connections: usize) -> OurServer {
        let server = Server::builder()
            .listen("127.0.0.1:0".parse().expect("literal"))
            .config(config)
            .max_connections(max_connections)
            .bind()
            .expect("bind 127.0.0.1:0");
        let addr = server.local_addrs()[0];
        assert_eq!(server.udp_addrs(), [addr], "UDP on the TCP port");
        let handle = server.spawn().expect("spawn");
        OurServer {
            addr,
            handle: Some(handle),
        }
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.begin_shutdown();
            // Connections linger at most 2 s; never hang a test on one.
            handle.wait(Some(Duration::from_secs(10)));
        }
    }
}
