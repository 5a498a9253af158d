//! `SetSchema` and `CollectionSchema`: values with server-assigned indexes
//! (spec `schema-wire.md` §6).

use std::fmt;

use super::indexed::Indexed;
use super::map::describe_collection;
use crate::encoder::{FullWriter, PatchWriter};
use crate::moved::Moved;
use crate::schema::{Describer, Field, FieldView};
use crate::tracked::Tick;
use crate::types::{CollectionKind, NamedFieldType, Primitive};
use crate::wire;

macro_rules! indexed_collection {
    (
        $(#[$doc:meta])*
        $name:ident, $view:ident, $kind:ident, unique = $unique:expr, reset_on_clear = $reset:expr, send_cleared = $sent:expr
    ) => {
        $(#[$doc])*
        pub struct $name<V: Field> {
            pub(crate) inner: Indexed<(), V>,
        }

        impl<V: Field> Default for $name<V> {
            fn default() -> Self {
                Self { inner: Indexed::default() }
            }
        }

        /// Cloning gives an untracked copy: same values, no identity.
        impl<V: Field + Clone> Clone for $name<V> {
            fn clone(&self) -> Self {
                let mut c = Self::new();
                for v in self.iter() {
                    c.inner.push_untracked((), v.clone());
                }
                c
            }
        }

        impl<V: Field + fmt::Debug> fmt::Debug for $name<V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }

        impl<V: Field> $name<V> {
            /// An empty collection.
            #[must_use]
            pub fn new() -> Self {
                Self::default()
            }

            /// Number of values.
            #[must_use]
            pub fn len(&self) -> usize {
                self.inner.len()
            }

            /// Whether it is empty.
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.inner.len() == 0
            }

            /// Values in insertion order.
            pub fn iter(&self) -> impl Iterator<Item = &V> + '_ {
                self.inner.iter().map(|s| &s.value)
            }

            /// Adds a value while building an untracked collection; returns
            /// whether it was added.
            pub fn add(&mut self, value: V) -> bool {
                if $unique && self.inner.iter().any(|s| s.value.__same(&value)) {
                    return false;
                }
                self.inner.push_untracked((), value);
                true
            }
        }

        impl<V: Field> FromIterator<V> for $name<V> {
            fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Self {
                let mut c = Self::new();
                for v in iter {
                    c.add(v);
                }
                c
            }
        }

        /// The view of a tracked collection: every change is recorded.
        pub struct $view<'a, V: Field> {
            pub(crate) coll: &'a mut $name<V>,
            pub(crate) tick: &'a mut Tick,
        }

        impl<V: Field + fmt::Debug> fmt::Debug for $view<'_, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.coll.fmt(f)
            }
        }

        impl<V: Field> std::ops::Deref for $view<'_, V> {
            type Target = $name<V>;

            fn deref(&self) -> &$name<V> {
                self.coll
            }
        }

        impl<'a, V: Field> $view<'a, V> {
            #[doc(hidden)]
            pub fn __new(coll: &'a mut $name<V>, tick: &'a mut Tick) -> Self {
                Self { coll, tick }
            }

            /// Adds a value (an ADD with a new index); returns whether it was
            /// added.
            pub fn add(&mut self, value: V) -> bool {
                self.add_moved(Moved::new(value))
            }

            /// [`add`](Self::add) of a value taken out of this state with
            /// its identity (see [`Moved`]).
            pub fn add_moved(&mut self, value: Moved<V>) -> bool {
                if $unique && self.coll.inner.iter().any(|s| s.value.__same(value.get())) {
                    return false;
                }
                self.coll.inner.push((), value, None, self.tick);
                true
            }

            /// Removes the first value for which `matches` returns true.
            pub fn remove_where(&mut self, matches: impl FnMut(&V) -> bool) -> Option<V> {
                self.take_where(matches).map(Moved::into_inner)
            }

            /// [`remove_where`](Self::remove_where), returning the value
            /// with its identity, to be placed elsewhere in this state (see
            /// [`Moved`]).
            pub fn take_where(&mut self, mut matches: impl FnMut(&V) -> bool) -> Option<Moved<V>> {
                let pos = self
                    .coll
                    .inner
                    .slots
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|s| matches(&s.value)))?;
                let slot = self.coll.inner.remove(pos as u32, self.tick);
                Some(Moved::taken(slot.value, slot.track, self.tick))
            }

            /// Removes every value (a CLEAR).
            pub fn clear(&mut self) {
                self.coll.inner.clear($reset, $sent, self.tick);
            }
        }

        impl<V: Field + PartialEq> $view<'_, V> {
            /// Removes the first value equal to `value`.
            pub fn remove(&mut self, value: &V) -> Option<V> {
                self.remove_where(|v| v == value)
            }
        }

        impl<V: FieldView> $view<'_, V> {
            /// Calls `f` with the view of every instance, in insertion order.
            pub fn for_each_mut(&mut self, mut f: impl FnMut(V::View<'_>)) {
                for slot in self.coll.inner.queue_all().iter_mut().flatten() {
                    f(FieldView::__view_of(&mut slot.value, &mut slot.track, self.tick));
                }
            }
        }

        impl<V: Field> FieldView for $name<V> {
            type View<'a>
                = $view<'a, V>
            where
                V: 'a;

            #[inline]
            fn __view_of<'a>(value: &'a mut Self, _: &'a mut (), tick: &'a mut Tick) -> $view<'a, V> {
                $view::__new(value, tick)
            }
        }

        impl<V: Field> Field for $name<V> {
            type Track = ();
            const DEFAULT_WIRE: Option<Primitive> = None;

            fn __describe(d: &mut Describer, wire: Option<Primitive>) -> NamedFieldType {
                describe_collection::<V>(d, CollectionKind::$kind, wire)
            }

            fn __same(&self, _: &Self) -> bool {
                false
            }

            fn __encode(&self, _: &(), _: Option<Primitive>, out: &mut Vec<u8>) {
                wire::encode_varint(out, self.inner.meta.id());
            }

            #[inline]
            fn __ref_id(&self, _: &()) -> Option<u32> {
                Some(self.inner.meta.id())
            }

            fn __attach(&mut self, _: &mut (), tick: &mut Tick) {
                self.inner.attach(tick);
            }

            fn __detach(&mut self, _: &mut (), tick: &mut Tick) {
                self.inner.detach(tick);
            }

            fn __encode_patch(&mut self, _: &mut (), w: &mut PatchWriter<'_>) {
                self.inner.encode_patch(w);
                self.inner.compact();
            }

            fn __encode_full(&self, _: &(), w: &mut FullWriter<'_>) {
                self.inner.encode_full(w);
            }

            fn __with_node(&self, _: &(), f: &mut dyn FnMut(&dyn crate::view::Node)) {
                f(&self.inner);
            }
        }

        impl<V: Field> crate::schema::TrackedMut for $view<'_, V> {
            fn __target(&mut self) -> (u32, &mut Tick) {
                (self.coll.inner.meta.id(), self.tick)
            }
        }
    };
}

indexed_collection! {
    /// A set of unique values (primitives compared by value; every struct
    /// instance is distinct), in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_schema::SetSchema;
    /// let tags: SetSchema<String> = ["red".to_owned(), "red".to_owned()].into_iter().collect();
    /// assert_eq!(tags.len(), 1);
    /// ```
    SetSchema, SetMut, Set, unique = true, reset_on_clear = false, send_cleared = true
}

indexed_collection! {
    /// A bag of values (duplicates allowed) in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_schema::CollectionSchema;
    /// let c: CollectionSchema<u8> = [5, 5, 6].into_iter().collect();
    /// assert_eq!(c.len(), 3);
    /// ```
    CollectionSchema, CollectionMut, Collection, unique = false, reset_on_clear = false, send_cleared = false
}
