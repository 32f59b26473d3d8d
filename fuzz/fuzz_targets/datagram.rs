//! Any datagram gets a reply that fits UDP: preface plus exactly one
//! well-formed frame when it starts with the preface, else its upper case
//! (see `upcase::properties::server_ops::check_datagram`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use upcase::conn::{RawCase, ServerMode};
use upcase::properties::server_ops::check_datagram;

/// Input layout: 4 bytes choosing the server mode, 4 choosing the raw case,
/// 4 bytes of frame limit (little-endian), then the datagram.
#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    mode: ServerMode,
    raw_case: RawCase,
    max_data_len: u32,
    datagram: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    check_datagram(
        input.datagram,
        input.mode,
        input.raw_case,
        input.max_data_len,
    );
});
