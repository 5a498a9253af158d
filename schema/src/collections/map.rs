//! `MapSchema`: string keys in insertion order (spec `schema-wire.md` §4).

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::indexed::{EntryHandle, Indexed, Slot};
use super::map_key::MapKey;
use crate::encoder::{FullWriter, PatchWriter};
use crate::moved::Moved;
use crate::schema::{Describer, Field, FieldView};
use crate::tracked::Tick;
use crate::types::{CollectionKind, NamedFieldType, Primitive};
use crate::wire;

/// A map from string keys to values, synchronized entry by entry.
///
/// Build one freely (`insert`, `FromIterator`); once it is part of an
/// [`Encoder`](crate::Encoder)'s state it changes only through its view,
/// [`MapMut`].
///
/// # Examples
///
/// ```
/// use roomcast_schema::MapSchema;
/// let mut scores: MapSchema<u32> = MapSchema::new();
/// scores.insert("ann", 3);
/// assert_eq!(scores.get("ann"), Some(&3));
/// ```
pub struct MapSchema<V: Field> {
    pub(crate) inner: Indexed<MapKey, V>,
    /// Key → handle-table place of its entry (stable across compaction),
    /// the key itself being read from the entry: one copy of each key.
    index: HashTable<u32>,
    /// Seeded foldhash: keys may come from clients, and SipHash was most
    /// of a key lookup's cost.
    hasher: foldhash::fast::RandomState,
}

impl<V: Field> Default for MapSchema<V> {
    fn default() -> Self {
        Self {
            inner: Indexed::default(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// Cloning gives an untracked copy: same entries, no identity.
impl<V: Field + Clone> Clone for MapSchema<V> {
    fn clone(&self) -> Self {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }
}

impl<V: Field + fmt::Debug> fmt::Debug for MapSchema<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Field> MapSchema<V> {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the map is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// The value under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&V> {
        let pos = self.pos(key)?;
        self.inner.slots[pos as usize].as_ref().map(|s| &s.value)
    }

    /// Makes room for `n` more entries, so that building a map of known
    /// size (e.g. from a decoded message) allocates once.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_schema::MapSchema;
    /// let mut m: MapSchema<u8> = MapSchema::new();
    /// m.reserve(100);
    /// m.insert("a", 1);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn reserve(&mut self, n: usize) {
        self.inner.reserve(n);
        let (inner, hasher) = (&self.inner, &self.hasher);
        self.index
            .reserve(n, |&l| hasher.hash_one(key_of(inner, l)));
    }

    /// Position of `key`'s entry.
    #[inline]
    pub(crate) fn pos(&self, key: &str) -> Option<u32> {
        Some(self.inner.pos_at(self.find(key)?))
    }

    /// The handle-table place of `key`'s entry.
    #[inline]
    fn find(&self, key: &str) -> Option<u32> {
        let inner = &self.inner;
        self.index
            .find(self.hasher.hash_one(key.as_bytes()), |&loc| {
                key_of(inner, loc) == key.as_bytes()
            })
            .copied()
    }

    /// Indexes the entry at handle-table place `loc` (its key not indexed
    /// yet).
    fn index_new(&mut self, hash: u64, loc: u32) {
        let (inner, hasher) = (&self.inner, &self.hasher);
        self.index
            .insert_unique(hash, loc, |&l| hasher.hash_one(key_of(inner, l)));
    }

    /// A handle to `key`'s entry: O(1) access without hashing the key, valid
    /// until the entry is removed (see [`MapMut::get_mut_by`]).
    #[must_use]
    pub fn handle(&self, key: &str) -> Option<EntryHandle> {
        self.inner.handle(self.pos(key)?)
    }

    /// The value a handle refers to, if its entry is still there.
    #[must_use]
    pub fn get_by(&self, handle: EntryHandle) -> Option<&V> {
        let pos = self.inner.pos_of(handle)?;
        self.inner.slots[pos as usize].as_ref().map(|s| &s.value)
    }

    /// Whether `key` is present.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> + '_ {
        self.inner.iter().map(|s| (s.key.as_str(), &s.value))
    }

    /// Keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.iter().map(|s| s.key.as_str())
    }

    /// Values in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.inner.iter().map(|s| &s.value)
    }

    /// Inserts while building an untracked map (a replaced key keeps its
    /// position); returns the previous value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: V) -> Option<V> {
        self.insert_str(key.as_ref(), value)
    }

    /// [`insert`](Self::insert) of a borrowed key.
    pub(crate) fn insert_str(&mut self, key: &str, value: V) -> Option<V> {
        // One hash for the lookup and the insertion.
        let hash = self.hasher.hash_one(key.as_bytes());
        let inner = &self.inner;
        if let Some(&loc) = self
            .index
            .find(hash, |&l| key_of(inner, l) == key.as_bytes())
        {
            let pos = self.inner.pos_at(loc);
            let slot = self.inner.slots[pos as usize]
                .as_mut()
                .expect("indexed slot");
            return Some(std::mem::replace(&mut slot.value, value));
        }
        self.push_new(hash, key, value);
        None
    }

    /// Inserts `key`, absent, with one hash: the handle-table place of
    /// its entry; `None` (nothing changed) if the map has the key.
    pub(crate) fn insert_absent(&mut self, key: &str, value: V) -> Option<u32> {
        let hash = self.hasher.hash_one(key.as_bytes());
        let inner = &self.inner;
        if self
            .index
            .find(hash, |&l| key_of(inner, l) == key.as_bytes())
            .is_some()
        {
            return None;
        }
        Some(self.push_new(hash, key, value))
    }

    /// Appends the new entry `key` of hash `hash`; its handle-table place.
    fn push_new(&mut self, hash: u64, key: &str, value: V) -> u32 {
        let pos = self.inner.push_untracked(MapKey::default(), value);
        // The key is copied into its slot rather than built and moved
        // there: the move read a just-copied short key back in wider loads
        // than the copy's stores (a store-forwarding stall), which made a
        // full-state decode's map building a third slower (perf samples).
        self.inner.slots[pos as usize]
            .as_mut()
            .expect("pushed slot")
            .key
            .set(key);
        let loc = self.inner.loc_of(pos);
        self.index_new(hash, loc);
        loc
    }

    /// The handle-table place of `key`'s entry (the client side).
    #[inline]
    pub(crate) fn place(&self, key: &str) -> Option<u32> {
        self.find(key)
    }

    /// Removes `key` without recording it (the client side, which no
    /// encoder watches); the handle-table place its entry had.
    pub(crate) fn remove_untracked(&mut self, key: &str) -> Option<u32> {
        let idx = self.unindex(key)?;
        self.inner.remove_untracked(idx);
        Some(idx)
    }

    /// Takes `key` out of the key index; the handle-table place of its
    /// entry, which the caller removes.
    #[inline]
    fn unindex(&mut self, key: &str) -> Option<u32> {
        let inner = &self.inner;
        let entry = self
            .index
            .find_entry(self.hasher.hash_one(key.as_bytes()), |&l| {
                key_of(inner, l) == key.as_bytes()
            })
            .ok()?;
        Some(entry.remove().0)
    }

    /// Removes every entry without recording it (the client side).
    pub(crate) fn clear_untracked(&mut self) {
        self.index.clear();
        self.inner.clear_untracked();
    }
}

/// The key of the live entry at handle-table place `loc`, as bytes (keys
/// are hashed and compared as bytes).
#[inline]
fn key_of<V: Field>(inner: &Indexed<MapKey, V>, loc: u32) -> &[u8] {
    inner.slots[inner.pos_at(loc) as usize]
        .as_ref()
        .map_or(&[], |s| s.key.as_bytes())
}

impl<V: Field> FromIterator<(String, V)> for MapSchema<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut m = Self::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// The view of a tracked [`MapSchema`]: every change is recorded.
pub struct MapMut<'a, V: Field> {
    pub(crate) map: &'a mut MapSchema<V>,
    pub(crate) tick: &'a mut Tick,
}

impl<V: Field + fmt::Debug> fmt::Debug for MapMut<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map.fmt(f)
    }
}

impl<V: Field> std::ops::Deref for MapMut<'_, V> {
    type Target = MapSchema<V>;

    fn deref(&self) -> &MapSchema<V> {
        self.map
    }
}

impl<'a, V: Field> MapMut<'a, V> {
    #[doc(hidden)]
    pub fn __new(map: &'a mut MapSchema<V>, tick: &'a mut Tick) -> Self {
        Self { map, tick }
    }

    /// Sets `key` to `value`; returns the previous value.
    ///
    /// A primitive replacing another is a REPLACE; a new instance replacing
    /// another is a DELETE_AND_ADD; a new key is an ADD with a new index. A
    /// key deleted earlier in the same tick keeps its old index, and goes to
    /// the end of the map's order (as in a JS `Map`).
    pub fn insert(&mut self, key: impl AsRef<str>, value: V) -> Option<V> {
        self.insert_moved(key, Moved::new(value))
            .map(Moved::into_inner)
    }

    /// [`insert`](Self::insert) of a value taken out of this state with
    /// its identity (see [`Moved`]); returns the previous value with its
    /// own.
    pub fn insert_moved(&mut self, key: impl AsRef<str>, value: Moved<V>) -> Option<Moved<V>> {
        let key = key.as_ref();
        let map = &mut *self.map;
        if let Some(pos) = map.pos(key) {
            let slot = map.inner.slots[pos as usize]
                .as_ref()
                .expect("indexed slot");
            if value.get().__same(&slot.value) {
                return Some(value);
            }
            return Some(map.inner.replace(pos, value, self.tick));
        }
        let reuse = map
            .inner
            .deleted
            .iter()
            .position(|d| d.key.as_bytes() == key.as_bytes());
        let hash = map.hasher.hash_one(key.as_bytes());
        let pos = map.inner.push(MapKey::from(key), value, reuse, self.tick);
        map.index_new(hash, map.inner.loc_of(pos));
        None
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.take(key).map(Moved::into_inner)
    }

    /// [`remove`](Self::remove), returning the value with its identity, to
    /// be placed elsewhere in this state (see [`Moved`]).
    pub fn take(&mut self, key: &str) -> Option<Moved<V>> {
        let idx = self.map.unindex(key)?;
        Some(self.take_place(idx))
    }

    /// Removes the entry at handle-table place `idx`, already out of the
    /// key index, and records its DELETE.
    fn take_place(&mut self, idx: u32) -> Moved<V> {
        let map = &mut *self.map;
        let pos = map.inner.pos_at(idx);
        let mut slot: Slot<MapKey, V> = map.inner.remove(pos, self.tick);
        let key = std::mem::take(&mut slot.key);
        map.inner.remember_deleted(&slot, key);
        Moved::taken(slot.value, slot.track, self.tick)
    }

    /// Removes every entry (a CLEAR; indexes restart at 0).
    pub fn clear(&mut self) {
        self.map.index.clear();
        self.map.inner.clear(true, false, self.tick);
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        // The doomed entries' handle-table places, not copies of their keys.
        let doomed: Vec<u32> = self
            .map
            .inner
            .iter()
            .filter(|s| !keep(s.key.as_str(), &s.value))
            .map(|s| s.loc)
            .collect();
        for idx in doomed {
            let map = &mut *self.map;
            let key = key_of(&map.inner, idx);
            if let Ok(entry) = map
                .index
                .find_entry(map.hasher.hash_one(key), |&l| l == idx)
            {
                entry.remove();
                self.take_place(idx);
            }
        }
    }
}

impl<V: FieldView> MapMut<'_, V> {
    /// The view of the instance under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<V::View<'_>> {
        let pos = self.map.pos(key)?;
        let slot = self.map.inner.queue(pos);
        Some(FieldView::__view_of(
            &mut slot.value,
            &mut slot.track,
            self.tick,
        ))
    }

    /// The view of the instance a handle refers to, if its entry is still
    /// there (see [`MapSchema::handle`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_schema::{Encoder, MapSchema, Schema};
    /// #[derive(Schema, Default)]
    /// struct Unit { x: f32 }
    /// #[derive(Schema, Default)]
    /// struct State { units: MapSchema<Unit> }
    ///
    /// let mut enc = Encoder::new(State::default());
    /// enc.state_mut().units_mut().insert("u1", Unit::default());
    /// let u1 = enc.state().units.handle("u1").unwrap();
    /// enc.state_mut().units_mut().get_mut_by(u1).unwrap().set_x(3.0);
    /// assert_eq!(enc.state().units.get_by(u1).unwrap().x, 3.0);
    /// ```
    pub fn get_mut_by(&mut self, handle: EntryHandle) -> Option<V::View<'_>> {
        let pos = self.map.inner.pos_of(handle)?;
        let slot = self.map.inner.queue(pos);
        Some(FieldView::__view_of(
            &mut slot.value,
            &mut slot.track,
            self.tick,
        ))
    }

    /// Calls `f` with the view of every instance, in insertion order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&str, V::View<'_>)) {
        for slot in self.map.inner.queue_all().iter_mut().flatten() {
            f(
                slot.key.as_str(),
                FieldView::__view_of(&mut slot.value, &mut slot.track, self.tick),
            );
        }
    }
}

pub(crate) fn describe_collection<V: Field>(
    d: &mut Describer,
    kind: CollectionKind,
    wire: Option<Primitive>,
) -> NamedFieldType {
    match V::__describe(d, wire) {
        NamedFieldType::Primitive(p) => NamedFieldType::PrimitiveCollection(kind, p),
        NamedFieldType::Schema(n) => NamedFieldType::SchemaCollection(kind, n),
        other => other,
    }
}

impl<V: Field> Field for MapSchema<V> {
    type Track = ();
    const DEFAULT_WIRE: Option<Primitive> = None;

    fn __describe(d: &mut Describer, wire: Option<Primitive>) -> NamedFieldType {
        describe_collection::<V>(d, CollectionKind::Map, wire)
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

impl<V: Field> crate::schema::TrackedMut for MapMut<'_, V> {
    fn __target(&mut self) -> (u32, &mut Tick) {
        (self.map.inner.meta.id(), self.tick)
    }
}

impl<V: Field> FieldView for MapSchema<V> {
    type View<'a>
        = MapMut<'a, V>
    where
        V: 'a;

    #[inline]
    fn __view_of<'a>(value: &'a mut Self, _: &'a mut (), tick: &'a mut Tick) -> MapMut<'a, V> {
        MapMut::__new(value, tick)
    }
}
