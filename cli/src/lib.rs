//! The `upcase` command's library half: the conformance suite
//! ([`conform`], `upcase conform`) and the load generator ([`loadgen`],
//! `upcase bench`). Both talk to any UPCASE/1 server over sockets; they live
//! here, apart from the `upcase` library, so that a program embedding the
//! protocol core does not pull in clap, serde or signal handling.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conform;
pub mod loadgen;
pub mod metrics;
pub mod provenance;
