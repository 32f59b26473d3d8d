//! UPCASE/1 reference implementation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conn;
pub mod loadgen;
pub mod transform;
pub mod wire;

#[cfg(any(test, feature = "arbitrary"))]
#[doc(hidden)]
pub mod properties;
