//! Tests of the connection state machines: a harness on a fake clock,
//! example-based tests per rule, and a model-based property test.

mod client;
mod datagram;
mod ending;
mod harness;
mod model;
mod server;
