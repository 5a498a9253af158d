//! Moving an instance from one place of a state to another with its
//! identity (its refId), as the reference does when the same JavaScript
//! object is removed from one collection and put in another.

use std::fmt;

use crate::schema::Field;
use crate::tracked::Tick;

/// A value taken out of an [`Encoder`](crate::Encoder)'s state together
/// with its identity, to be placed again elsewhere in the same state.
///
/// The `take` methods of the views ([`MapMut::take`](crate::MapMut::take),
/// [`ArrayMut::take`](crate::ArrayMut::take), …, a struct's `replace_<field>`)
/// remove a value as their plain counterparts do, and return it as a
/// `Moved`; the `_moved` methods ([`MapMut::insert_moved`](crate::MapMut::insert_moved),
/// [`ArrayMut::push_moved`](crate::ArrayMut::push_moved), …) place it. Placed
/// in the encoder it came from, the instance and every instance below it
/// keep their refIds, in the same tick or a later one, as
/// `@colyseus/schema` keeps them: the old place sends its DELETE, the new
/// one an ADD of the same refId, followed by the instance's full content
/// (clients dropped it, or will drop it, with the DELETE). A refId given
/// to another instance meanwhile (only possible when the encoder reuses
/// refIds, see [`EncoderOptions::reuse_ref_ids`](crate::EncoderOptions::reuse_ref_ids))
/// is not taken back: that instance gets a new one, as does a `Moved`
/// placed in another encoder. Dropping a `Moved` just drops the value.
///
/// Placed back in the tick it left, clients still hold the instance: what
/// changed in it during the tick goes out too (a struct's changed fields, a
/// collection's ops, as the reference sends them; an array changed in
/// that tick is sent whole after a CLEAR, where the reference sends its
/// ops). A [`StateView`](crate::ViewTarget) keeps seeing an instance placed
/// back in the same tick; one placed back a later tick is new to views
/// (the reference's views still see it).
///
/// [`Moved::new`] wraps a value that has no identity yet, so that the
/// `_moved` methods also take new values.
///
/// # Examples
///
/// ```
/// use roomcast_schema::{Encoder, MapSchema, Schema};
/// #[derive(Schema, Default)]
/// struct Unit { hp: u8 }
/// #[derive(Schema, Default)]
/// struct State { alive: MapSchema<Unit>, dead: MapSchema<Unit> }
///
/// let mut enc = Encoder::new(State::default());
/// enc.state_mut().alive_mut().insert("u1", Unit { hp: 3 });
/// enc.encode_patch();
///
/// let mut state = enc.state_mut();
/// let unit = state.alive_mut().take("u1").unwrap();
/// assert_eq!(unit.get().hp, 3);
/// state.dead_mut().insert_moved("u1", unit);
/// // alive (refId 1): DELETE index 0; dead (refId 2): ADD index 0 "u1"
/// // refId 3, the unit it already had; the unit (3): its fields.
/// assert_eq!(
///     enc.encode_patch(),
///     [0xff, 1, 0x40, 0, 0xff, 2, 0x80, 0, 0xa2, b'u', b'1', 3, 0xff, 3, 0x80, 3]
/// );
/// ```
pub struct Moved<V: Field> {
    pub(crate) value: V,
    pub(crate) track: V::Track,
    /// The encoder the value left ([`Tick::owner`]), or 0.
    owner: u64,
}

impl<V: Field> Moved<V> {
    /// A value with no identity yet (placed, it gets new refIds).
    #[must_use]
    pub fn new(value: V) -> Self {
        Self {
            value,
            track: V::Track::default(),
            owner: 0,
        }
    }

    /// A value just detached from `tick`'s state, with its track.
    pub(crate) fn taken(value: V, track: V::Track, tick: &Tick) -> Self {
        Self {
            value,
            track,
            owner: tick.owner(),
        }
    }

    /// The value.
    #[must_use]
    pub fn get(&self) -> &V {
        &self.value
    }

    /// The value, without its identity.
    #[must_use]
    pub fn into_inner(self) -> V {
        self.value
    }

    /// Attaches the value to `tick`'s state (its identity back if it came
    /// from there); returns it with its track, for its new slot.
    pub(crate) fn attach(mut self, tick: &mut Tick) -> (V, V::Track) {
        if self.owner == tick.owner() {
            tick.reattach(|t| self.value.__attach(&mut self.track, t));
        } else {
            self.value.__attach(&mut self.track, tick);
        }
        (self.value, self.track)
    }
}

impl<V: Field> Moved<Option<V>> {
    /// The value, if there is one, as a `Moved` of its own.
    #[must_use]
    pub fn transpose(self) -> Option<Moved<V>> {
        let Self {
            value,
            track,
            owner,
        } = self;
        value.map(|value| Moved {
            value,
            track,
            owner,
        })
    }
}

impl<V: Field> Moved<V> {
    /// The value as an optional one (for a field of type `Option<V>`).
    #[must_use]
    pub fn some(self) -> Moved<Option<V>> {
        Moved {
            value: Some(self.value),
            track: self.track,
            owner: self.owner,
        }
    }
}

impl<V: Field> From<V> for Moved<V> {
    fn from(value: V) -> Self {
        Self::new(value)
    }
}

impl<V: Field + fmt::Debug> fmt::Debug for Moved<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Moved").field(&self.value).finish()
    }
}
