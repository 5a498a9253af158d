//! Bytes of the Colyseus schema wire format (spec `schema-wire.md` §2–§3).
//!
//! This module knows bytes, not `Schema`: operation codes, the primitive
//! encodings and their decoders. Everything above it is built on these leaf
//! codecs.

pub mod decode;
pub(crate) mod encode;
pub mod spec;

pub use decode::{DecodeError, DecodeErrorKind, Reader};
pub use encode::*;
