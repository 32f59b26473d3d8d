//! A client connection driven through arbitrary requests, deliveries, clock
//! moves and server bytes keeps its promises (see
//! `upcase::properties::client_ops::check_client_ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use upcase::properties::client_ops::{ClientOp, ClientOpsConfig, check_client_ops};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    config: ClientOpsConfig,
    ops: Vec<ClientOp>,
}

fuzz_target!(|input: Input| {
    check_client_ops(&input.config, &input.ops);
});
