//! What `#[roomcast::room]` writes for [`Room::initial_state`](super::Room::initial_state):
//! `T::default()` for an `Encoder<T>` state whose `T` is `Default`, `None`
//! for any other state. Not public API.
//!
//! The choice is made where the macro expands, on the room's concrete
//! state type, by method resolution: a method of `&Initial<Encoder<T>>`
//! (`T: Default`) is found before the fallback of `Initial<S>`, which
//! needs one more auto-reference.

use std::marker::PhantomData;

use roomcast_schema::{Encoder, Schema};

/// The probe: `(&&Initial::<S>::new()).initial_state()`.
pub struct Initial<S>(PhantomData<S>);

impl<S> Initial<S> {
    /// The probe for state type `S`.
    #[must_use]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<S> Default for Initial<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// A state of default data: the room starts with it.
pub trait ViaDefault<S> {
    /// `Some(Encoder::new(T::default()))`.
    fn initial_state(&self) -> Option<S>;
}

impl<T> ViaDefault<Encoder<T>> for &Initial<Encoder<T>>
where
    T: Schema + Default,
{
    fn initial_state(&self) -> Option<Encoder<T>> {
        Some(Encoder::new(T::default()))
    }
}

/// Any other state: none until `set_state`.
pub trait NoInitial<S> {
    /// `None`.
    fn initial_state(&self) -> Option<S>;
}

impl<S> NoInitial<S> for Initial<S> {
    fn initial_state(&self) -> Option<S> {
        None
    }
}
