//! A server connection driven through arbitrary peer actions, clock moves
//! and shutdowns answers exactly as SPEC.md says (see
//! `upcase::properties::server_ops::check_server_ops`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use upcase::properties::server_ops::{Op, ServerOpsConfig, check_server_ops};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    config: ServerOpsConfig,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    check_server_ops(&input.config, &input.ops);
});
