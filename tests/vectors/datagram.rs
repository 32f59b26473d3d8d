//! datagram.json: one datagram to the server and its reply (SPEC.md §8),
//! checked against [`respond_to_datagram`].

use std::net::SocketAddr;

use serde::Deserialize;
use upcase::conn::{DatagramConfig, respond_to_datagram};

use super::{ServerSpec, hex, load, report, server_config, show};

#[derive(Deserialize)]
struct DatagramFile {
    vectors: Vec<DatagramVector>,
}

#[derive(Deserialize)]
struct DatagramVector {
    name: String,
    server: ServerSpec,
    datagram_hex: String,
    reply_hex: Option<String>,
}

fn check(v: &DatagramVector) -> Result<(), String> {
    let server = server_config(&v.server);
    let config = DatagramConfig {
        mode: server.mode,
        raw_case: server.raw_case,
        max_data_len: server.max_data_len,
    };
    let local: SocketAddr = v.server.local.parse().expect("local address");
    let peer: SocketAddr = v.server.peer.parse().expect("peer address");
    let reply = respond_to_datagram(&hex(&v.datagram_hex), local, peer, &config);
    let got = reply.bytes().map(show);
    if got != v.reply_hex {
        return Err(format!(
            "{}: reply {got:?}, expected {:?} ({reply:?})",
            v.name, v.reply_hex
        ));
    }
    Ok(())
}

#[test]
fn datagram_vectors_get_the_expected_reply_or_none() {
    let file: DatagramFile = load("datagram.json");
    let failures: Vec<String> = file.vectors.iter().filter_map(|v| check(v).err()).collect();
    report("datagram.json", file.vectors.len(), failures);
}
