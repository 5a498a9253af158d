//! `ArraySchema`: a positional list (spec `schema-wire.md` §5).
//!
//! The client applies array ops positionally against its copy as of the
//! previous patch, with holes, then compacts (§5.1). The storage here is that
//! same "working" array: removing an element the client knows leaves a hole,
//! inserting shifts later slots, and every op is logged against a slot, so a
//! slot's wire index is simply its position when the patch is written.
//!
//! The log reproduces the reference's op choice and order for the sequences
//! it gets right (vectors `array_*`). Before a block is sent, the ops are
//! replayed on a model of the client's decoder; if the result would differ
//! from the server's array (the sequences of `reference-pitfalls.md`, or
//! anything else unusual), the block is replaced by CLEAR and an ADD of every
//! element, which every decoder applies correctly.

use std::fmt;

use super::map::describe_collection;
use crate::encoder::{ArrayOp, ArrayScratch, Dialect, FullWriter, PatchWriter};
use crate::schema::{Describer, Field, FieldView};
use crate::tracked::{RefMeta, Tick, NO_SEQ};
use crate::types::{CollectionKind, NamedFieldType, Primitive};
use crate::wire::{self, spec};

const NONE: u32 = u32::MAX;

struct Item<V: Field> {
    value: V,
    track: V::Track,
    /// Identity of this element within the array (stable across moves).
    uid: u32,
}

struct Slot<V: Field> {
    item: Option<Item<V>>,
    /// Position of this slot in the client's array at the previous patch, or
    /// [`NONE`] for a slot created this tick.
    origin: u32,
    /// uid of the element the client holds at `origin`.
    origin_uid: u32,
    /// Position of this slot's op in the log, or [`NONE`].
    op: u32,
    /// Whether the element's value changed in place this tick.
    dirty: bool,
}

/// An element of the model of the client's array (see `client_agrees`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientEl {
    uid: u32,
    /// Working index of a slot holding the same value, if known.
    known: u32,
    written: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogOp {
    /// Positional op on a slot (`op` byte, slot uid).
    At(u8),
    /// DELETE_BY_REFID of an element removed from `origin`.
    ByRef,
    Dead,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    op: LogOp,
    /// Slot identity: index into `slot_ids` resolution at encode time.
    slot: u32,
    /// For DELETE_BY_REFID: the removed element's refId and client position.
    refid: u32,
    origin: u32,
}

/// A list of values, synchronized position by position.
///
/// Build one freely (`push`, `FromIterator`); once it is part of an
/// [`Encoder`](crate::Encoder)'s state it changes only through its view,
/// [`ArrayMut`].
///
/// # Examples
///
/// ```
/// use roomcast_schema::ArraySchema;
/// let a: ArraySchema<u16> = [1, 2, 3].into_iter().collect();
/// assert_eq!(a.get(1), Some(&2));
/// ```
pub struct ArraySchema<V: Field> {
    meta: RefMeta,
    slots: Vec<Slot<V>>,
    /// Stable id of each slot (parallel to `slots`), referenced by the log.
    slot_ids: Vec<u32>,
    live: usize,
    next_uid: u32,
    next_slot_id: u32,
    /// Length of the client's array at the previous patch.
    snapshot_len: u32,
    log: Vec<Entry>,
    cleared: bool,
    reversed: bool,
    /// Elements were reordered in place (sort): rewrite every slot.
    reordered: bool,
    /// Some child element may hold changes.
    children_dirty: bool,
}

impl<V: Field> Default for ArraySchema<V> {
    fn default() -> Self {
        Self {
            meta: RefMeta::default(),
            slots: Vec::new(),
            slot_ids: Vec::new(),
            live: 0,
            next_uid: 0,
            next_slot_id: 0,
            snapshot_len: 0,
            log: Vec::new(),
            cleared: false,
            reversed: false,
            reordered: false,
            children_dirty: false,
        }
    }
}

/// Cloning gives an untracked copy: same elements, no identity.
impl<V: Field + Clone> Clone for ArraySchema<V> {
    fn clone(&self) -> Self {
        self.iter().cloned().collect()
    }
}

impl<V: Field + fmt::Debug> fmt::Debug for ArraySchema<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<V: Field> ArraySchema<V> {
    /// An empty array.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &V> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.item.as_ref().map(|i| &i.value))
    }

    /// The element at `index`.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&V> {
        let w = self.working_index(index)?;
        self.slots[w].item.as_ref().map(|i| &i.value)
    }

    /// Appends while building an untracked array.
    pub fn push(&mut self, value: V) {
        let item = self.new_item(value);
        self.push_slot(Some(item), NONE, NONE);
    }

    fn new_item(&mut self, value: V) -> Item<V> {
        let uid = self.next_uid;
        self.next_uid += 1;
        Item {
            value,
            track: V::Track::default(),
            uid,
        }
    }

    fn push_slot(&mut self, item: Option<Item<V>>, origin: u32, origin_uid: u32) {
        self.insert_slot(self.slots.len(), item, origin, origin_uid);
    }

    fn insert_slot(&mut self, at: usize, item: Option<Item<V>>, origin: u32, origin_uid: u32) {
        if item.is_some() {
            self.live += 1;
        }
        self.slots.insert(
            at,
            Slot {
                item,
                origin,
                origin_uid,
                op: NONE,
                dirty: false,
            },
        );
        self.slot_ids.insert(at, self.next_slot_id);
        self.next_slot_id += 1;
    }

    /// Working index of the element at `index` (holes skipped).
    fn working_index(&self, index: usize) -> Option<usize> {
        if self.live == self.slots.len() {
            return (index < self.live).then_some(index);
        }
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.item.is_some())
            .nth(index)
            .map(|(w, _)| w)
    }

    /// Whether the elements are refs (decided by the first element).
    fn holds_refs(&self) -> bool {
        self.slots
            .iter()
            .find_map(|s| s.item.as_ref())
            .is_some_and(|i| i.value.__is_ref())
    }

    // ----- change log -------------------------------------------------

    /// Records `op` for the slot at working index `w` (first touch appends;
    /// later touches update in place).
    fn log_at(&mut self, w: usize, op: u8) {
        let slot_id = self.slot_ids[w];
        let pos = self.slots[w].op;
        if pos == NONE {
            self.slots[w].op = self.log.len() as u32;
            self.log.push(Entry {
                op: LogOp::At(op),
                slot: slot_id,
                refid: NONE,
                origin: NONE,
            });
        } else {
            let e = &mut self.log[pos as usize];
            match e.op {
                // An index first added this tick keeps its ADD.
                LogOp::At(spec::ADD) if op != spec::DELETE => {}
                _ => e.op = LogOp::At(op),
            }
        }
    }

    /// Records an insert at working index `w`, placed before any logged op
    /// at a higher index so the decoder applies inserts lowest-first.
    fn log_insert(&mut self, w: usize) {
        let slot_id = self.slot_ids[w];
        let entry = Entry {
            op: LogOp::At(spec::ADD),
            slot: slot_id,
            refid: NONE,
            origin: NONE,
        };
        // Positions of logged slots, to find the first op at a higher index.
        let mut at = self.log.len();
        for (i, e) in self.log.iter().enumerate() {
            if let LogOp::At(_) = e.op {
                if let Some(p) = self.slot_ids.iter().position(|&s| s == e.slot) {
                    if p > w {
                        at = i;
                        break;
                    }
                }
            }
        }
        self.log.insert(at, entry);
        for s in &mut self.slots {
            if s.op != NONE && s.op as usize >= at {
                s.op += 1;
            }
        }
        self.slots[w].op = at as u32;
    }

    /// Removes the element at working index `w`; returns it.
    fn remove_at(&mut self, w: usize, tick: &mut Tick) -> V {
        self.meta.touch(tick);
        let mut item = self.slots[w].item.take().expect("live slot");
        self.live -= 1;
        let refid = item.value.__ref_id(&item.track);
        item.value.__detach(&mut item.track, tick);
        let slot = &mut self.slots[w];
        if slot.origin == NONE {
            // Created this tick: the client never saw it; forget the slot.
            if slot.op != NONE {
                self.log[slot.op as usize].op = LogOp::Dead;
            }
            self.slots.remove(w);
            self.slot_ids.remove(w);
            return item.value;
        }
        slot.dirty = false;
        match refid {
            Some(refid) if slot.origin_uid == item.uid => {
                // The element the client holds: DELETE_BY_REFID (5.x form).
                if slot.op != NONE {
                    self.log[slot.op as usize].op = LogOp::Dead;
                }
                slot.op = self.log.len() as u32;
                let origin = slot.origin;
                self.log.push(Entry {
                    op: LogOp::ByRef,
                    slot: self.slot_ids[w],
                    refid,
                    origin,
                });
            }
            _ => self.log_at(w, spec::DELETE),
        }
        item.value
    }

    /// Fills the hole at working index `w` with a new element.
    fn fill(&mut self, w: usize, item: Item<V>) {
        self.slots[w].item = Some(item);
        self.live += 1;
        let pos = self.slots[w].op;
        if pos != NONE && self.log[pos as usize].op == LogOp::ByRef {
            self.log[pos as usize].op = LogOp::At(spec::DELETE_AND_ADD);
        } else {
            self.log_at(w, spec::DELETE_AND_ADD);
        }
    }

    /// Working index where an element inserted at `index` goes.
    fn insert_point(&self, index: usize) -> usize {
        self.working_index(index).unwrap_or(self.slots.len())
    }

    // ----- encoding ---------------------------------------------------

    /// Resolves the log into `(op, wire index or refId, slot)` triples.
    fn resolve(&self, dialect: Dialect, ops: &mut Vec<ArrayOp>, pos_of: &mut Vec<u32>) {
        pos_of.clear();
        pos_of.resize(self.next_slot_id as usize, NONE);
        for (w, &id) in self.slot_ids.iter().enumerate() {
            pos_of[id as usize] = w as u32;
        }
        ops.clear();
        if self.cleared {
            ops.push((spec::CLEAR, 0, NONE));
        }
        for e in &self.log {
            let w = pos_of[e.slot as usize];
            match e.op {
                LogOp::At(op) => ops.push((op, w, w)),
                LogOp::ByRef => match dialect {
                    Dialect::Modern => ops.push((spec::DELETE_BY_REFID, e.refid, w)),
                    Dialect::Legacy => ops.push((spec::DELETE, w, w)),
                },
                LogOp::Dead => {}
            }
        }
        if self.reordered {
            for (w, slot) in self.slots.iter().enumerate() {
                if slot.item.is_some() && slot.op == NONE {
                    ops.push((spec::REPLACE, w as u32, w as u32));
                }
            }
        }
    }

    /// Replays `ops` on a model of the client's decoder (spec §5.1; 3.x
    /// inserts only at index 0) and checks that it ends with this array.
    fn client_agrees(
        &self,
        dialect: Dialect,
        ops: &[ArrayOp],
        client: &mut Vec<Option<ClientEl>>,
    ) -> bool {
        type El = ClientEl;
        client.clear();
        client.resize(self.snapshot_len as usize, None);
        for (w, slot) in self.slots.iter().enumerate() {
            if slot.origin != NONE {
                let same = slot
                    .item
                    .as_ref()
                    .is_some_and(|i| i.uid == slot.origin_uid && !slot.dirty);
                client[slot.origin as usize] = Some(El {
                    uid: slot.origin_uid,
                    known: if same { w as u32 } else { NONE },
                    written: false,
                });
            }
        }
        let uid_by_ref = |refid: u32| {
            self.slots.iter().find_map(|s| {
                (s.origin != NONE
                    && self
                        .log
                        .iter()
                        .any(|e| e.op == LogOp::ByRef && e.refid == refid && e.origin == s.origin))
                .then_some(s.origin_uid)
            })
        };
        // A 3.x client keeps its pre-tick copy for refcounts and equality
        // checks while applying ops to the shifted array: after an insert,
        // no positional op is safe for it.
        let mut legacy_inserted = false;
        for &(op, arg, w) in ops {
            if legacy_inserted {
                return false;
            }
            let w_us = w as usize;
            let incoming = || {
                self.slots
                    .get(w_us)
                    .and_then(|s| s.item.as_ref())
                    .map(|i| El {
                        uid: i.uid,
                        known: w,
                        written: true,
                    })
            };
            match op {
                spec::CLEAR => client.clear(),
                spec::REVERSE => client.reverse(),
                spec::DELETE_BY_REFID => {
                    let Some(uid) = uid_by_ref(arg) else {
                        return false;
                    };
                    if let Some(c) = client.iter_mut().find(|c| c.is_some_and(|c| c.uid == uid)) {
                        *c = None;
                    }
                }
                spec::DELETE => {
                    if let Some(c) = client.get_mut(arg as usize) {
                        *c = None;
                    }
                }
                spec::ADD => {
                    let Some(v) = incoming() else { return false };
                    let i = arg as usize;
                    if i >= client.len() {
                        client.resize(i + 1, None);
                        client[i] = Some(v);
                    } else if let Some(cur) = client[i] {
                        let same = if self.holds_refs() {
                            cur.uid == v.uid
                        } else if cur.known == NONE {
                            // Unknown old value: it could be equal, which
                            // makes the decoder drop the insert.
                            return false;
                        } else {
                            let (a, b) = (self.value_at(cur.known as usize), self.value_at(w_us));
                            if a.zip(b)
                                .is_some_and(|(a, b)| a.__same(b) && !a.__identical(b))
                            {
                                // Dropped as "the same", though it is not.
                                return false;
                            }
                            a.zip(b).is_some_and(|(a, b)| a.__same(b))
                        };
                        if same {
                            // The decoder ignores an ADD of what is there.
                            if cur.uid != v.uid {
                                return false;
                            }
                        } else if dialect == Dialect::Legacy && i != 0 {
                            // 3.x overwrites here without releasing the old
                            // element: a leaked ref whose refId may be reused.
                            if self.holds_refs() {
                                return false;
                            }
                            client[i] = Some(v);
                        } else {
                            legacy_inserted = dialect == Dialect::Legacy;
                            client.insert(i, Some(v));
                        }
                    } else {
                        client[i] = Some(v);
                    }
                }
                _ => {
                    // REPLACE, DELETE_AND_ADD: overwrite, except that the
                    // decoder skips a primitive `===` to the current one.
                    let Some(v) = incoming() else { return false };
                    let i = arg as usize;
                    if i >= client.len() {
                        client.resize(i + 1, None);
                    }
                    if let (Some(cur), Some(new)) = (client[i], self.value_at(w_us)) {
                        if !new.__is_ref() {
                            match self
                                .value_at(cur.known as usize)
                                .filter(|_| cur.known != NONE)
                            {
                                // -0 over 0 (or back) would be skipped.
                                Some(old) if old.__same(new) && !old.__identical(new) => {
                                    return false
                                }
                                // An unknown old value might be the other zero.
                                None if new.__is_zero() => return false,
                                _ => {}
                            }
                        }
                    }
                    client[i] = Some(v);
                }
            }
        }
        let mut ours = self
            .slots
            .iter()
            .filter_map(|s| s.item.as_ref().map(|i| (i, s.dirty)));
        for c in client.iter().flatten() {
            match ours.next() {
                Some((item, dirty)) if item.uid == c.uid && (c.written || !dirty) => {}
                _ => return false,
            }
        }
        ours.next().is_none()
    }

    fn value_at(&self, w: usize) -> Option<&V> {
        self.slots.get(w)?.item.as_ref().map(|i| &i.value)
    }

    /// An ADD of every element at its position.
    fn write_all(&self, out: &mut Vec<u8>) {
        for (i, item) in self
            .slots
            .iter()
            .filter_map(|s| s.item.as_ref())
            .enumerate()
        {
            out.push(spec::ADD);
            wire::encode_varint(out, i as u32);
            item.value.__encode(&item.track, V::DEFAULT_WIRE, out);
        }
    }

    /// Writes the block's ops for `dialect` (does not settle).
    fn write_ops(&self, dialect: Dialect, out: &mut Vec<u8>, scratch: &mut ArrayScratch) {
        let (ops, pos_of, client) = scratch.parts();
        if self.meta.fresh {
            self.write_all(out);
            return;
        }
        let live_log = self.log.iter().any(|e| e.op != LogOp::Dead);
        if self.reversed && !live_log && !self.cleared && !self.reordered {
            // Only reverses happened (and changes since undone): the order
            // is the client's, its reverse, or (reverse with other changes
            // undone) something a CLEAR + re-ADD has to send.
            let origins = self.slots.iter().map(|s| s.origin);
            if origins
                .clone()
                .zip(origins.clone().skip(1))
                .all(|(a, b)| a < b)
            {
                return;
            }
            if origins.clone().zip(origins.skip(1)).all(|(a, b)| a > b)
                && self.slots.len() == self.snapshot_len as usize
            {
                out.push(spec::REVERSE);
                return;
            }
        }
        self.resolve(dialect, ops, pos_of);
        let reordered_refs = self.holds_refs() && self.reordered;
        let simple = !self.reversed && !reordered_refs && self.client_agrees(dialect, ops, client);
        if simple {
            for &(op, arg, w) in ops.iter() {
                out.push(op);
                match op {
                    spec::CLEAR | spec::REVERSE => {}
                    spec::DELETE | spec::DELETE_BY_REFID => wire::encode_varint(out, arg),
                    _ => {
                        wire::encode_varint(out, arg);
                        let item = self.slots[w as usize].item.as_ref().expect("live slot");
                        item.value.__encode(&item.track, V::DEFAULT_WIRE, out);
                    }
                }
            }
        } else {
            // Anything the client could misapply: start over.
            out.push(spec::CLEAR);
            self.write_all(out);
        }
    }

    /// View support: writes this tick's ops for `dialect` (what the shared
    /// patch sends) for a client whose copy as of the previous patch has
    /// `held_len` elements, `held(i)` at position `i`. Returns `false`
    /// (nothing written) when that is not the array's previous state as far
    /// as the array knows it (values overwritten or removed this tick are
    /// unknown; the op model treats them conservatively anyway).
    fn ops_for_client<'h>(
        &self,
        dialect: Dialect,
        held_len: u32,
        held: &dyn Fn(u32) -> Option<&'h [u8]>,
        out: &mut Vec<u8>,
        scratch: &mut ArrayScratch,
    ) -> bool {
        if self.meta.seq == NO_SEQ || self.meta.fresh || held_len != self.snapshot_len {
            return false;
        }
        for slot in &self.slots {
            if slot.origin == NONE {
                continue;
            }
            let Some(item) = slot
                .item
                .as_ref()
                .filter(|i| i.uid == slot.origin_uid && !slot.dirty)
            else {
                continue;
            };
            scratch.value.clear();
            item.value
                .__encode(&item.track, V::DEFAULT_WIRE, &mut scratch.value);
            if held(slot.origin) != Some(scratch.value.as_slice()) {
                return false;
            }
        }
        self.write_ops(dialect, out, scratch);
        true
    }

    /// View support: writes this tick's ops when re-applying them to a
    /// client that already holds the current array changes nothing (each
    /// writes, where no hole precedes it, the value already there, which
    /// the decoder skips as `===`). The reference sends them after the
    /// snapshot of an array shown in the same tick. Returns whether it did.
    fn idempotent_ops(&self, out: &mut Vec<u8>, scratch: &mut ArrayScratch) -> bool {
        if self.meta.seq == NO_SEQ
            || self.meta.fresh
            || self.cleared
            || self.reversed
            || self.holds_refs()
        {
            return false;
        }
        let (ops, pos_of, _) = scratch.parts();
        self.resolve(Dialect::Modern, ops, pos_of);
        let first_hole = self
            .slots
            .iter()
            .position(|s| s.item.is_none())
            .unwrap_or(self.slots.len());
        let ok = !ops.is_empty()
            && ops.iter().all(|&(op, arg, w)| {
                matches!(op, spec::ADD | spec::REPLACE | spec::DELETE_AND_ADD)
                    && arg == w
                    && (w as usize) < first_hole
                    && self.value_at(w as usize).is_some_and(|v| v.__same(v))
            });
        if !ok {
            return false;
        }
        for &(op, arg, w) in ops.iter() {
            out.push(op);
            wire::encode_varint(out, arg);
            let item = self.slots[w as usize].item.as_ref().expect("live slot");
            item.value.__encode(&item.track, V::DEFAULT_WIRE, out);
        }
        true
    }

    /// Forgets the tick: compacts holes, and the current array becomes the
    /// client's.
    fn settle(&mut self) {
        self.slots.retain(|s| s.item.is_some());
        // Renumbering keeps uids (and slot ids) below the array's size plus
        // one tick of inserts: they never wrap.
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(item) = slot.item.as_mut() {
                item.uid = i as u32;
            }
            slot.origin = i as u32;
            slot.origin_uid = i as u32;
            slot.op = NONE;
            slot.dirty = false;
        }
        self.slot_ids.clear();
        self.slot_ids.extend(0..self.slots.len() as u32);
        self.next_slot_id = self.slots.len() as u32;
        self.next_uid = self.slots.len() as u32;
        self.snapshot_len = self.slots.len() as u32;
        self.log.clear();
        self.cleared = false;
        self.reversed = false;
        self.reordered = false;
        self.meta.settle();
    }
}

impl<V: Field> FromIterator<V> for ArraySchema<V> {
    fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Self {
        let mut a = Self::new();
        for v in iter {
            a.push(v);
        }
        a
    }
}

/// The view of a tracked [`ArraySchema`]: every change is recorded.
pub struct ArrayMut<'a, V: Field> {
    arr: &'a mut ArraySchema<V>,
    tick: &'a mut Tick,
}

impl<'a, V: Field> ArrayMut<'a, V> {
    /// The element at `index` with its track, marked as possibly changed.
    pub(crate) fn element_mut(
        &mut self,
        index: usize,
    ) -> Option<(&mut V, &mut V::Track, &mut Tick)> {
        let w = self.arr.working_index(index)?;
        self.arr.children_dirty = true;
        let item = self.arr.slots[w].item.as_mut()?;
        Some((&mut item.value, &mut item.track, &mut *self.tick))
    }
}

impl<V: Field + fmt::Debug> fmt::Debug for ArrayMut<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.arr.fmt(f)
    }
}

impl<V: Field> std::ops::Deref for ArrayMut<'_, V> {
    type Target = ArraySchema<V>;

    fn deref(&self) -> &ArraySchema<V> {
        self.arr
    }
}

impl<'a, V: Field> ArrayMut<'a, V> {
    #[doc(hidden)]
    pub fn __new(arr: &'a mut ArraySchema<V>, tick: &'a mut Tick) -> Self {
        Self { arr, tick }
    }

    fn attach_new(&mut self, value: V) -> Item<V> {
        // The array's op comes before the new child's block.
        self.arr.meta.touch(self.tick);
        let mut item = self.arr.new_item(value);
        item.value.__attach(&mut item.track, self.tick);
        self.arr.children_dirty = true;
        item
    }

    /// Appends a value.
    pub fn push(&mut self, value: V) {
        let item = self.attach_new(value);
        let w = self.arr.slots.len();
        self.arr.push_slot(Some(item), NONE, NONE);
        self.arr.log_at(w, spec::ADD);
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<V> {
        let w = self.arr.slots.iter().rposition(|s| s.item.is_some())?;
        Some(self.arr.remove_at(w, self.tick))
    }

    /// Removes and returns the first element.
    pub fn shift(&mut self) -> Option<V> {
        let w = self.arr.slots.iter().position(|s| s.item.is_some())?;
        Some(self.arr.remove_at(w, self.tick))
    }

    /// Inserts a value at the front.
    pub fn unshift(&mut self, value: V) {
        self.insert(0, value);
    }

    /// Inserts a value at `index`, shifting later elements.
    ///
    /// # Panics
    ///
    /// If `index > len`.
    pub fn insert(&mut self, index: usize, value: V) {
        assert!(
            index <= self.arr.len(),
            "insert index {index} out of bounds"
        );
        let item = self.attach_new(value);
        let w = if index == 0 {
            0
        } else {
            self.arr.insert_point(index)
        };
        if w == self.arr.slots.len() {
            self.arr.push_slot(Some(item), NONE, NONE);
            self.arr.log_at(w, spec::ADD);
        } else {
            self.arr.insert_slot(w, Some(item), NONE, NONE);
            self.arr.log_insert(w);
        }
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Panics
    ///
    /// If `index >= len`.
    pub fn remove(&mut self, index: usize) -> V {
        let w = self
            .arr
            .working_index(index)
            .expect("remove index out of bounds");
        self.arr.remove_at(w, self.tick)
    }

    /// Removes `delete_count` elements from `start` and inserts `values`
    /// there, like JavaScript's `splice`; returns the removed elements.
    /// Removed positions are reused by the inserted values first.
    ///
    /// # Panics
    ///
    /// If `start > len`.
    pub fn splice(
        &mut self,
        start: usize,
        delete_count: usize,
        values: impl IntoIterator<Item = V>,
    ) -> Vec<V> {
        assert!(
            start <= self.arr.len(),
            "splice start {start} out of bounds"
        );
        let count = delete_count.min(self.arr.len() - start);
        let mut removed = Vec::with_capacity(count);
        let mut holes = Vec::new();
        for _ in 0..count {
            let w = self.arr.working_index(start).expect("counted");
            let had_origin = self.arr.slots[w].origin != NONE;
            removed.push(self.arr.remove_at(w, self.tick));
            if had_origin {
                holes.push(self.arr.slot_ids[w]);
            }
        }
        let mut holes = holes.into_iter();
        for (at, v) in (start..).zip(values) {
            let item = self.attach_new(v);
            if let Some(id) = holes.next() {
                let w = self
                    .arr
                    .slot_ids
                    .iter()
                    .position(|&s| s == id)
                    .expect("hole slot");
                self.arr.fill(w, item);
            } else {
                let w = self.arr.insert_point(at);
                if w == self.arr.slots.len() {
                    self.arr.push_slot(Some(item), NONE, NONE);
                    self.arr.log_at(w, spec::ADD);
                } else {
                    self.arr.insert_slot(w, Some(item), NONE, NONE);
                    self.arr.log_insert(w);
                }
            }
        }
        removed
    }

    /// Replaces the element at `index`; returns the previous one. A
    /// primitive equal to the current one changes nothing.
    ///
    /// # Panics
    ///
    /// If `index >= len`.
    pub fn set(&mut self, index: usize, value: V) -> V {
        let w = self
            .arr
            .working_index(index)
            .expect("set index out of bounds");
        let is_ref = value.__is_ref();
        let slot = &mut self.arr.slots[w];
        let cur = slot.item.as_mut().expect("live slot");
        if !is_ref {
            if cur.value.__same(&value) {
                return value;
            }
            let old = std::mem::replace(&mut cur.value, value);
            slot.dirty = true;
            self.arr.meta.touch(self.tick);
            self.arr.log_at(w, spec::REPLACE);
            return old;
        }
        let item = self.attach_new(value);
        let slot = &mut self.arr.slots[w];
        let mut old = std::mem::replace(slot.item.as_mut().expect("live slot"), item);
        old.value.__detach(&mut old.track, self.tick);
        self.arr.log_at(w, spec::DELETE_AND_ADD);
        old.value
    }

    /// Removes every element (a CLEAR).
    pub fn clear(&mut self) {
        for slot in &mut self.arr.slots {
            if let Some(item) = slot.item.as_mut() {
                item.value.__detach(&mut item.track, self.tick);
            }
        }
        let arr = &mut *self.arr;
        arr.slots.clear();
        arr.slot_ids.clear();
        arr.log.clear();
        arr.live = 0;
        arr.reordered = false;
        arr.reversed = false;
        arr.cleared |= arr.snapshot_len > 0;
        arr.meta.touch(self.tick);
    }

    /// Reverses the order (a single REVERSE op when nothing else changed in
    /// the tick).
    pub fn reverse(&mut self) {
        self.arr.slots.reverse();
        self.arr.slot_ids.reverse();
        self.arr.reversed = true;
        self.arr.meta.touch(self.tick);
    }

    /// Sorts the elements with `cmp` (every position is rewritten).
    pub fn sort_by(&mut self, mut cmp: impl FnMut(&V, &V) -> std::cmp::Ordering) {
        let arr = &mut *self.arr;
        let live: Vec<usize> = (0..arr.slots.len())
            .filter(|&w| arr.slots[w].item.is_some())
            .collect();
        let mut items: Vec<Item<V>> = live
            .iter()
            .filter_map(|&w| arr.slots[w].item.take())
            .collect();
        items.sort_by(|a, b| cmp(&a.value, &b.value));
        for (w, item) in live.into_iter().zip(items) {
            arr.slots[w].item = Some(item);
        }
        arr.reordered = true;
        arr.meta.touch(self.tick);
    }
}

impl<V: FieldView> ArrayMut<'_, V> {
    /// The view of the instance at `index`.
    pub fn get_mut(&mut self, index: usize) -> Option<V::View<'_>> {
        let w = self.arr.working_index(index)?;
        self.arr.children_dirty = true;
        let item = self.arr.slots[w].item.as_mut()?;
        Some(FieldView::__view_of(
            &mut item.value,
            &mut item.track,
            self.tick,
        ))
    }

    /// Calls `f` with the view of every instance, in order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(V::View<'_>)) {
        self.arr.children_dirty = true;
        for slot in &mut self.arr.slots {
            if let Some(item) = slot.item.as_mut() {
                f(FieldView::__view_of(
                    &mut item.value,
                    &mut item.track,
                    self.tick,
                ));
            }
        }
    }
}

impl<V: Field> Field for ArraySchema<V> {
    type Track = ();
    const DEFAULT_WIRE: Option<Primitive> = None;

    fn __describe(d: &mut Describer, wire: Option<Primitive>) -> NamedFieldType {
        describe_collection::<V>(d, CollectionKind::Array, wire)
    }

    fn __same(&self, _: &Self) -> bool {
        false
    }

    fn __encode(&self, _: &(), _: Option<Primitive>, out: &mut Vec<u8>) {
        wire::encode_varint(out, self.meta.id());
    }

    #[inline]
    fn __ref_id(&self, _: &()) -> Option<u32> {
        Some(self.meta.id())
    }

    fn __attach(&mut self, _: &mut (), tick: &mut Tick) {
        self.meta.attach(tick);
        for slot in &mut self.slots {
            if let Some(item) = slot.item.as_mut() {
                item.value.__attach(&mut item.track, tick);
            }
        }
        self.children_dirty = true;
    }

    fn __detach(&mut self, _: &mut (), tick: &mut Tick) {
        self.meta.detach(tick);
        for slot in &mut self.slots {
            if let Some(item) = slot.item.as_mut() {
                item.value.__detach(&mut item.track, tick);
            }
        }
        self.settle();
        self.snapshot_len = 0;
        for slot in &mut self.slots {
            slot.origin = NONE;
        }
    }

    fn __encode_patch(&mut self, _: &mut (), w: &mut PatchWriter<'_>) {
        if self.meta.seq != NO_SEQ {
            let block = w.begin(&self.meta);
            let dialect = w.dialect;
            let (out, scratch) = w.array_scratch();
            self.write_ops(dialect, out, scratch);
            w.end_per_dialect(block, |d, out, scratch| self.write_ops(d, out, scratch));
        }
        let fresh = self.meta.fresh;
        if self.meta.seq != NO_SEQ {
            self.settle();
        }
        if self.children_dirty || fresh {
            for slot in &mut self.slots {
                if let Some(item) = slot.item.as_mut() {
                    item.value.__encode_patch(&mut item.track, w);
                }
            }
        }
        self.children_dirty = false;
    }

    fn __encode_full(&self, _: &(), w: &mut FullWriter<'_>) {
        let block = w.begin(self.meta.id());
        self.write_all(&mut w.out);
        w.end(block);
        for item in self.slots.iter().filter_map(|s| s.item.as_ref()) {
            item.value.__encode_full(&item.track, w);
        }
    }

    fn __with_node(&self, _: &(), f: &mut dyn FnMut(&dyn crate::view::Node)) {
        f(self);
    }
}

impl<V: Field> crate::view::Node for ArraySchema<V> {
    fn meta(&self) -> &crate::tracked::RefMeta {
        &self.meta
    }
    fn kind(&self) -> crate::view::NodeKind {
        crate::view::NodeKind::Array
    }
    fn primitive_elements(&self) -> bool {
        match self.slots.iter().find_map(|s| s.item.as_ref()) {
            Some(i) => !i.value.__is_ref(),
            None => V::DEFAULT_WIRE.is_some(),
        }
    }
    fn array_ops<'h>(
        &self,
        dialect: Dialect,
        held_len: u32,
        held: &dyn Fn(u32) -> Option<&'h [u8]>,
        out: &mut Vec<u8>,
        scratch: &mut ArrayScratch,
    ) -> bool {
        self.ops_for_client(dialect, held_len, held, out, scratch)
    }
    fn array_idempotent_ops(&self, out: &mut Vec<u8>, scratch: &mut ArrayScratch) -> bool {
        self.idempotent_ops(out, scratch)
    }
    fn changed_children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        if self.children_dirty || self.meta.fresh {
            crate::view::Node::children(self, f);
        }
    }
    fn entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(crate::view::Entry<'_>)) {
        let mut pos = 0;
        for slot in &self.slots {
            if let Some(item) = slot.item.as_ref() {
                scratch.clear();
                item.value.__encode(&item.track, V::DEFAULT_WIRE, scratch);
                f(crate::view::Entry {
                    index: pos,
                    key: None,
                    value: scratch,
                    child: item.value.__ref_id(&item.track),
                    dirty: self.meta.fresh || slot.dirty || slot.op != NONE,
                });
                pos += 1;
            }
        }
    }
    fn children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        let mut pos = 0;
        for slot in &self.slots {
            if let Some(item) = slot.item.as_ref() {
                item.value.__with_node(&item.track, &mut |n| f(pos, n));
                pos += 1;
            }
        }
    }
}

impl<V: Field> crate::schema::TrackedMut for ArrayMut<'_, V> {
    fn __target(&mut self) -> (u32, &mut Tick) {
        (self.arr.meta.id(), self.tick)
    }
}

impl<V: Field> FieldView for ArraySchema<V> {
    type View<'a>
        = ArrayMut<'a, V>
    where
        V: 'a;

    #[inline]
    fn __view_of<'a>(value: &'a mut Self, _: &'a mut (), tick: &'a mut Tick) -> ArrayMut<'a, V> {
        ArrayMut::__new(value, tick)
    }
}
