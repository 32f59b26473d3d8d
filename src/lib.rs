//! UPCASE/1 reference implementation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conform;
pub mod conn;
pub mod transform;
pub mod wire;

#[cfg(any(test, feature = "arbitrary"))]
#[doc(hidden)]
pub mod properties;
