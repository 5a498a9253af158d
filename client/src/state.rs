//! Which decoder a room uses: a typed [`Decoder<T>`] for a
//! `#[derive(Schema)]` state, or a [`DynamicDecoder`] built from the
//! server's Reflection ([`Dynamic`]).

use roomcast_schema::decoder::{Cx, DecodeState, Decoder, DynamicDecoder, ReflectionDialect};
use roomcast_schema::wire::DecodeError;

use crate::error::JoinError;

/// The state of a room as this client decodes it: either a
/// `#[derive(Schema, Default)]` type marked `#[schema(decode)]` (decoded by
/// roomcast-schema's [`Decoder<T>`]), or [`Dynamic`] (a [`DynamicDecoder`]
/// built from the Reflection the server sends in its handshake).
///
/// Sealed: implemented for those two only.
pub trait RoomState: sealed::Sealed + Sized + Send + 'static {
    /// The decoder the room keeps.
    type Decoder: Send;
    /// Whether the join asks the server to leave the Reflection out (the
    /// client already knows the types, as the SDK with a local state
    /// class).
    const SKIP_HANDSHAKE: bool;
    /// A decoder for the handshake's Reflection bytes (empty when the
    /// server sent none).
    #[doc(hidden)]
    fn __decoder(reflection: &[u8]) -> Result<Self::Decoder, JoinError>;
    /// Applies a ROOM_STATE / ROOM_STATE_PATCH body.
    #[doc(hidden)]
    fn __decode(decoder: &mut Self::Decoder, bytes: &[u8]) -> Result<(), DecodeError>;
    /// The decoder's callback registry (`None`: a dynamic room whose
    /// server sent no Reflection, so no state).
    #[doc(hidden)]
    fn __callbacks(decoder: &mut Self::Decoder) -> Option<Cx<'_>>;
}

mod sealed {
    pub trait Sealed {}
    impl<T: roomcast_schema::decoder::DecodeState> Sealed for T {}
    impl Sealed for super::Dynamic {}
}

impl<T: DecodeState + Send + 'static> RoomState for T {
    type Decoder = Decoder<T>;
    const SKIP_HANDSHAKE: bool = true;

    fn __decoder(_reflection: &[u8]) -> Result<Self::Decoder, JoinError> {
        Ok(Decoder::new()?)
    }

    fn __decode(decoder: &mut Self::Decoder, bytes: &[u8]) -> Result<(), DecodeError> {
        decoder.decode(bytes)
    }

    fn __callbacks(decoder: &mut Self::Decoder) -> Option<Cx<'_>> {
        Some(decoder.callbacks())
    }
}

/// A room state decoded without Rust types, from the Reflection bytes the
/// server sends in its handshake: `client.join_or_create::<Dynamic>(…)`,
/// then read it with [`Room::state`](crate::Room::state) as a
/// [`NodeRef`](roomcast_schema::decoder::NodeRef) (fields, entries, JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dynamic;

impl RoomState for Dynamic {
    type Decoder = Option<DynamicDecoder>;
    const SKIP_HANDSHAKE: bool = false;

    fn __decoder(reflection: &[u8]) -> Result<Self::Decoder, JoinError> {
        if reflection.is_empty() {
            return Ok(None);
        }
        Ok(Some(DynamicDecoder::from_reflection(
            reflection,
            ReflectionDialect::Auto,
        )?))
    }

    fn __decode(decoder: &mut Self::Decoder, bytes: &[u8]) -> Result<(), DecodeError> {
        match decoder {
            Some(d) => d.decode(bytes),
            None => Err(roomcast_schema::wire::Reader::error_at(
                0,
                roomcast_schema::wire::DecodeErrorKind::Unsupported(
                    "a state without the Reflection handshake",
                ),
            )),
        }
    }

    fn __callbacks(decoder: &mut Self::Decoder) -> Option<Cx<'_>> {
        decoder.as_mut().map(DynamicDecoder::callbacks)
    }
}
