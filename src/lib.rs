//! UPCASE/1 reference implementation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod wire;
pub mod transform;

#[cfg(any(test, feature = "arbitrary"))]
#[doc(hidden)]
pub mod properties;
