//! UPCASE/1 reference implementation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod wire;
