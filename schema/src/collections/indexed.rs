//! The storage and change log shared by `MapSchema`, `SetSchema` and
//! `CollectionSchema`: entries in insertion order, each with a per-instance
//! wire index (spec `schema-wire.md` §4, §6).
//!
//! Removed entries leave a tombstone so that positions stay stable within a
//! tick (the change log and the dirty-children queue refer to positions);
//! tombstones are compacted after a patch once they outnumber live entries.

use super::map_key::MapKey;
use crate::encoder::{Dialect, FullWriter, Orphans, PatchWriter};
use crate::moved::Moved;
use crate::schema::Field;
use crate::tracked::{RefMeta, Tick, NO_SEQ};
use crate::wire::{self, spec};

pub(crate) const NONE: u32 = u32::MAX;

/// What an entry's key writes after the wire index on ADD.
pub(crate) trait Key {
    /// Whether a 3.x client numbers these entries itself.
    ///
    /// A 3.x client numbers Set and Collection entries with its own counter,
    /// one per ADD it applies (never reset, not even by CLEAR), and resolves
    /// DELETEs through that numbering, which an index consumed by a value
    /// added and removed in one tick (the 5.x numbering, sent as is to
    /// modern clients) puts out of step. So the legacy dialect sends a
    /// removal from a Set or Collection as CLEAR + re-ADD. Maps carry their
    /// keys.
    const CLIENT_NUMBERED: bool;

    fn encode(&self, out: &mut Vec<u8>);

    /// The key as a string (maps).
    fn as_str(&self) -> Option<&str> {
        None
    }
}

impl Key for () {
    const CLIENT_NUMBERED: bool = true;

    #[inline]
    fn encode(&self, _: &mut Vec<u8>) {}
}

impl Key for MapKey {
    const CLIENT_NUMBERED: bool = false;

    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        wire::encode_str(out, self.as_str());
    }

    fn as_str(&self) -> Option<&str> {
        // The inherent `MapKey::as_str`.
        Some(self.as_str())
    }
}

pub(crate) struct Slot<K, V: Field> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) track: V::Track,
    pub(crate) wire: u32,
    /// Position of this entry's op in the change log, or [`NONE`].
    change: u32,
    /// Whether the position is in the dirty-children queue.
    queued: bool,
    /// This entry's place in the handle table.
    pub(crate) loc: u32,
}

/// A stable reference to an entry of a collection, valid until the entry is
/// removed: an O(1) alternative to a key lookup, like holding the object
/// itself in JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryHandle {
    idx: u32,
    gen: u32,
}

/// Where an entry is: positions change when tombstones are compacted,
/// handles do not.
#[derive(Debug, Clone, Copy, Default)]
struct Loc {
    pos: u32,
    /// Bumped when the entry is removed, so stale handles miss.
    gen: u32,
}

#[derive(Debug, Clone, Copy)]
struct Change {
    wire: u32,
    op: u8,
    /// Position of the entry holding the value, or [`NONE`] for a DELETE.
    slot: u32,
    /// A DELETE's removed instance (its refId), or [`NONE`] (a primitive).
    gone: u32,
}

/// A key deleted this tick: re-adding it in the same tick reuses its index
/// and becomes DELETE_AND_ADD (the entry itself goes to the end, as in a
/// JS `Map`).
pub(crate) struct Deleted<K> {
    pub(crate) key: K,
    wire: u32,
    change: u32,
}

pub(crate) struct Indexed<K, V: Field> {
    pub(crate) meta: RefMeta,
    pub(crate) slots: Vec<Option<Slot<K, V>>>,
    live: usize,
    next_wire: u32,
    changes: Vec<Change>,
    queued: Vec<u32>,
    /// Every entry may hold changes (a `for_each_mut`): walk them all rather
    /// than queueing each position.
    queued_all: bool,
    cleared: bool,
    pub(crate) deleted: Vec<Deleted<K>>,
    /// A re-added key kept its wire index but went to the end: positions
    /// are no longer in wire-index order (full states list entries by
    /// wire index, their children by position).
    reordered: bool,
    locs: Vec<Loc>,
    free_locs: Vec<u32>,
    /// The blocks of entries removed by a `clear()` this tick that held
    /// changes: the reference still sends them (see [`Orphans`]).
    orphans: Option<Box<Orphans>>,
    /// Re-attached with the refId it had (a `Moved` value) that clients
    /// may hold: its recorded ops go out, then an ADD of every other entry
    /// (the reference's re-staging of a tree added again). While detached:
    /// whether it was sent before.
    restaged: bool,
}

impl<K, V: Field> Default for Indexed<K, V> {
    fn default() -> Self {
        Self {
            meta: RefMeta::default(),
            slots: Vec::new(),
            live: 0,
            next_wire: 0,
            changes: Vec::new(),
            queued: Vec::new(),
            queued_all: false,
            cleared: false,
            deleted: Vec::new(),
            reordered: false,
            locs: Vec::new(),
            free_locs: Vec::new(),
            orphans: None,
            restaged: false,
        }
    }
}

impl<K: Key, V: Field> Indexed<K, V> {
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot<K, V>> + '_ {
        self.slots.iter().flatten()
    }

    fn attached(&self) -> bool {
        self.meta.id() != crate::tracked::NO_ID
    }

    /// A handle-table place for a new entry at `pos`.
    fn alloc_loc(&mut self, pos: u32) -> u32 {
        if let Some(idx) = self.free_locs.pop() {
            self.locs[idx as usize].pos = pos;
            idx
        } else {
            self.locs.push(Loc { pos, gen: 0 });
            self.locs.len() as u32 - 1
        }
    }

    fn free_loc(&mut self, idx: u32) {
        let loc = &mut self.locs[idx as usize];
        loc.gen = loc.gen.wrapping_add(1);
        self.free_locs.push(idx);
    }

    /// The handle of the entry at `pos`.
    pub(crate) fn handle(&self, pos: u32) -> Option<EntryHandle> {
        let slot = self.slots.get(pos as usize)?.as_ref()?;
        Some(EntryHandle {
            idx: slot.loc,
            gen: self.locs[slot.loc as usize].gen,
        })
    }

    /// The handle-table place of the live entry at `pos`.
    #[inline]
    pub(crate) fn loc_of(&self, pos: u32) -> u32 {
        self.slots[pos as usize].as_ref().expect("live slot").loc
    }

    /// The position of the entry at handle-table place `idx` (which the
    /// caller knows to be live).
    #[inline]
    pub(crate) fn pos_at(&self, idx: u32) -> u32 {
        self.locs[idx as usize].pos
    }

    /// The position of a handle's entry, if it is still there.
    #[inline]
    pub(crate) fn pos_of(&self, h: EntryHandle) -> Option<u32> {
        let loc = self.locs.get(h.idx as usize)?;
        (loc.gen == h.gen).then_some(loc.pos)
    }

    fn take_index(&mut self) -> u32 {
        let w = self.next_wire;
        self.next_wire = self.next_wire.wrapping_add(1);
        w
    }

    /// Room for `n` more entries.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.locs.reserve(n);
    }

    /// Appends an entry while building (not tracked).
    pub(crate) fn push_untracked(&mut self, key: K, value: V) -> u32 {
        let pos = self.slots.len() as u32;
        let wire = self.take_index();
        let loc = self.alloc_loc(pos);
        self.slots.push(Some(Slot {
            key,
            value,
            track: V::Track::default(),
            wire,
            change: NONE,
            queued: false,
            loc,
        }));
        self.live += 1;
        pos
    }

    /// The value of the live entry at handle-table place `idx`.
    #[inline]
    pub(crate) fn value_at_place(&mut self, idx: u32) -> Option<&mut V> {
        let pos = self.locs.get(idx as usize)?.pos;
        let slot = self.slots.get_mut(pos as usize)?.as_mut()?;
        (slot.loc == idx).then_some(&mut slot.value)
    }

    /// Removes the entry at handle-table place `idx` without recording it
    /// (the client side, which no encoder watches); `None` if no live entry
    /// is there. Tombstones are dropped once they outnumber live entries.
    pub(crate) fn remove_untracked(&mut self, idx: u32) -> Option<Slot<K, V>> {
        let pos = self.locs.get(idx as usize)?.pos;
        let slot = self
            .slots
            .get_mut(pos as usize)?
            .take_if(|s| s.loc == idx)?;
        self.live -= 1;
        self.free_loc(idx);
        self.compact();
        Some(slot)
    }

    /// Removes every entry without recording it (the client side).
    pub(crate) fn clear_untracked(&mut self) {
        for slot in self.slots.iter().flatten() {
            let loc = &mut self.locs[slot.loc as usize];
            loc.gen = loc.gen.wrapping_add(1);
            self.free_locs.push(slot.loc);
        }
        self.slots.clear();
        self.live = 0;
    }

    /// Drops every tombstone: positions are then the order of the live
    /// entries (the client side's rebuilt collections have none).
    pub(crate) fn compact_all(&mut self) {
        if self.slots.len() != self.live {
            self.slots.retain(Option::is_some);
            for (pos, slot) in self.slots.iter().enumerate() {
                if let Some(slot) = slot {
                    self.locs[slot.loc as usize].pos = pos as u32;
                }
            }
        }
    }

    /// Appends a new entry and records its ADD (or DELETE_AND_ADD when the
    /// same key was deleted this tick: `reuse`).
    pub(crate) fn push(
        &mut self,
        key: K,
        value: Moved<V>,
        reuse: Option<usize>,
        tick: &mut Tick,
    ) -> u32 {
        let (wire, change, pos) = match reuse {
            Some(d) => {
                let d = self.deleted.swap_remove(d);
                self.reordered = true;
                (d.wire, d.change, self.slots.len() as u32)
            }
            None => (self.take_index(), NONE, self.slots.len() as u32),
        };
        self.meta.touch(tick);
        let change = if change == NONE {
            self.changes.push(Change {
                wire,
                op: spec::ADD,
                slot: pos,
                gone: NONE,
            });
            self.changes.len() as u32 - 1
        } else {
            let c = &mut self.changes[change as usize];
            c.op = spec::DELETE_AND_ADD;
            c.slot = pos;
            change
        };
        let (value, track) = value.attach(tick);
        let loc = self.alloc_loc(pos);
        let slot = Some(Slot {
            key,
            value,
            track,
            wire,
            change,
            queued: true,
            loc,
        });
        if pos as usize == self.slots.len() {
            self.slots.push(slot);
        } else {
            self.slots[pos as usize] = slot;
        }
        self.queued.push(pos);
        self.live += 1;
        pos
    }

    /// Replaces the value at `pos`; returns the previous one.
    pub(crate) fn replace(&mut self, pos: u32, value: Moved<V>, tick: &mut Tick) -> Moved<V> {
        // The parent's op comes before the new child's block.
        self.meta.touch(tick);
        let slot = self.slots[pos as usize].as_mut().expect("live slot");
        let (value, track) = value.attach(tick);
        let mut old = std::mem::replace(&mut slot.value, value);
        let mut old_track = std::mem::replace(&mut slot.track, track);
        tick.views.departed.from(self.meta.id(), slot.wire);
        old.__detach(&mut old_track, tick);
        tick.views.departed.done();
        let old = Moved::taken(old, old_track, tick);
        // A new child instance replaces the old one: DELETE_AND_ADD; a
        // primitive value: REPLACE. An index first added this tick keeps
        // its ADD for a primitive and turns DELETE_AND_ADD for an instance
        // (the reference's rule for ops merged in one tick).
        let op = if slot.value.__is_ref() {
            spec::DELETE_AND_ADD
        } else {
            spec::REPLACE
        };
        if slot.change == NONE {
            self.changes.push(Change {
                wire: slot.wire,
                op,
                slot: pos,
                gone: NONE,
            });
            slot.change = self.changes.len() as u32 - 1;
        } else {
            // A key re-added this tick keeps its DELETE_AND_ADD; an ADD of
            // this tick stays one for a primitive.
            let c = &mut self.changes[slot.change as usize];
            if (c.op != spec::ADD || op == spec::DELETE_AND_ADD) && c.op != spec::DELETE_AND_ADD {
                c.op = op;
            }
        }
        if !slot.queued {
            slot.queued = true;
            self.queued.push(pos);
        }
        old
    }

    /// Removes the entry at `pos` and records its DELETE.
    pub(crate) fn remove(&mut self, pos: u32, tick: &mut Tick) -> Slot<K, V> {
        let mut slot = self.slots[pos as usize].take().expect("live slot");
        self.live -= 1;
        self.meta.touch(tick);
        let gone = slot.value.__ref_id(&slot.track).unwrap_or(NONE);
        let change = if slot.change == NONE {
            self.changes.push(Change {
                wire: slot.wire,
                op: spec::DELETE,
                slot: NONE,
                gone,
            });
            self.changes.len() as u32 - 1
        } else {
            let c = &mut self.changes[slot.change as usize];
            c.op = spec::DELETE;
            c.slot = NONE;
            c.gone = gone;
            slot.change
        };
        tick.views.departed.from(self.meta.id(), slot.wire);
        slot.value.__detach(&mut slot.track, tick);
        tick.views.departed.done();
        slot.change = change;
        self.free_loc(slot.loc);
        slot
    }

    /// Remembers a deleted key for DELETE_AND_ADD on a same-tick re-add.
    pub(crate) fn remember_deleted(&mut self, slot: &Slot<K, V>, key: K) {
        self.deleted.push(Deleted {
            key,
            wire: slot.wire,
            change: slot.change,
        });
    }

    /// Removes every entry and records a CLEAR. `send_changed`: the
    /// entries' changes of the tick still go out (the reference's
    /// `SetSchema.clear()` leaves them queued; Map and Collection drop
    /// them).
    pub(crate) fn clear(&mut self, reset_index: bool, send_changed: bool, tick: &mut Tick) {
        if self.live == 0 && !self.attached() {
            return;
        }
        if send_changed && self.attached() && !self.meta.fresh && V::DEFAULT_WIRE.is_none() {
            // Entries the client holds that changed this tick: their
            // blocks still go out, before they leave the tree. (The
            // reference also sends the blocks of entries added this tick,
            // which no client has heard of: its decoder skips them with a
            // "refId not found" warning, others fail; not those.)
            let (slots, orphans) = (&mut self.slots, &mut self.orphans);
            let mut orphan = |slot: &mut Slot<K, V>| {
                let mut fresh = true;
                slot.value
                    .__with_node(&slot.track, &mut |n| fresh = n.fresh());
                if !fresh {
                    let o = orphans.get_or_insert_with(Box::default);
                    o.write(|w| slot.value.__encode_patch(&mut slot.track, w));
                }
            };
            if self.queued_all {
                slots.iter_mut().flatten().for_each(&mut orphan);
            } else {
                for &pos in &self.queued {
                    if let Some(slot) = slots[pos as usize].as_mut() {
                        orphan(slot);
                    }
                }
            }
        }
        self.queued_all = false;
        let id = self.meta.id();
        for slot in self.slots.iter_mut().flatten() {
            tick.views.departed.from(id, slot.wire);
            slot.value.__detach(&mut slot.track, tick);
            let loc = &mut self.locs[slot.loc as usize];
            loc.gen = loc.gen.wrapping_add(1);
            self.free_locs.push(slot.loc);
        }
        tick.views.departed.done();
        self.slots.clear();
        self.changes.clear();
        self.queued.clear();
        self.deleted.clear();
        self.reordered = false;
        self.live = 0;
        self.cleared = true;
        if reset_index {
            self.next_wire = 0;
        }
        self.meta.touch(tick);
    }

    /// Position of the `n`-th live entry.
    pub(crate) fn nth_pos(&self, n: usize) -> Option<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .nth(n)
            .map(|(p, _)| p as u32)
    }

    /// Marks the entry at `pos` as possibly holding changes further down.
    #[inline]
    pub(crate) fn queue(&mut self, pos: u32) -> &mut Slot<K, V> {
        let slot = self.slots[pos as usize].as_mut().expect("live slot");
        if !slot.queued {
            slot.queued = true;
            self.queued.push(pos);
        }
        slot
    }

    pub(crate) fn attach(&mut self, tick: &mut Tick) {
        let was_fresh = self.meta.fresh;
        let back = self.meta.attach(tick);
        let refresh = back == crate::tracked::Back::Refreshed;
        let restage = back == crate::tracked::Back::SameTick;
        if !refresh && !restage {
            // (A refreshed collection keeps the tick's ops: its client
            // holds entries they remove; so does a moved one.)
            self.forget_changes();
        }
        // Refreshed, the reference re-stages every entry as an ADD after
        // the ops recorded this tick (they keep their place and op). A
        // collection new this tick recorded an op for every entry already:
        // it stays as it was.
        self.restaged = (refresh && !was_fresh) || (self.restaged && (restage || refresh));
        for slot in self.slots.iter_mut().flatten() {
            slot.value.__attach(&mut slot.track, tick);
        }
    }

    pub(crate) fn detach(&mut self, tick: &mut Tick) {
        // Clients hold it unless it was new this tick; its ops not sent
        // yet are kept for a `Moved` value placed back in this tick
        // (forgotten when it is attached as a new one, see `attach`).
        self.restaged = !self.meta.fresh;
        let id = self.meta.id();
        self.meta.detach(tick);
        tick.views
            .departed
            .collection(id, crate::view::Node::kind(self));
        for slot in self.slots.iter_mut().flatten() {
            tick.views.departed.from(id, slot.wire);
            slot.value.__detach(&mut slot.track, tick);
        }
        tick.views.departed.done();
    }

    /// Drops the tick's record of changes (the whole collection is sent, or
    /// gone, as a unit).
    fn forget_changes(&mut self) {
        self.orphans = None;
        self.changes.clear();
        self.queued.clear();
        self.queued_all = false;
        self.deleted.clear();
        self.cleared = false;
        for slot in self.slots.iter_mut().flatten() {
            slot.change = NONE;
            slot.queued = false;
        }
    }

    fn write_value(out: &mut Vec<u8>, slot: &Slot<K, V>) {
        slot.value.__encode(&slot.track, V::DEFAULT_WIRE, out);
    }

    /// Writes one op at wire index `wire`: the entry's key (but for a
    /// REPLACE) and value follow unless it is a DELETE (`slot` is `None`).
    fn write_op(out: &mut Vec<u8>, op: u8, wire: u32, slot: Option<&Slot<K, V>>) {
        out.push(op);
        wire::encode_varint(out, wire);
        if let Some(slot) = slot {
            if op != spec::REPLACE {
                slot.key.encode(out);
            }
            Self::write_value(out, slot);
        }
    }

    /// The live entry at position `pos` of an op that is not a DELETE.
    fn op_slot(&self, op: u8, pos: u32) -> Option<&Slot<K, V>> {
        (op != spec::DELETE).then(|| self.slots[pos as usize].as_ref().expect("live slot"))
    }

    pub(crate) fn encode_patch(&mut self, w: &mut PatchWriter<'_>) {
        if self.meta.seq != NO_SEQ {
            let block = w.begin(&self.meta);
            let dialect = w.dialect;
            self.write_ops(dialect, &mut w.out);
            if self.differs_per_dialect() {
                w.end_per_dialect(block, |d, out, _| self.write_ops(d, out));
            } else {
                w.end(block);
            }
        }
        if let Some(o) = self.orphans.take() {
            w.append_orphans(&o);
        }
        let fresh = self.meta.fresh;
        self.meta.settle();
        for c in &self.changes {
            if c.slot != NONE {
                if let Some(slot) = self.slots[c.slot as usize].as_mut() {
                    slot.change = NONE;
                }
            }
        }
        self.changes.clear();
        self.deleted.clear();
        self.cleared = false;
        self.restaged = false;
        {
            if fresh || self.queued_all {
                for slot in self.slots.iter_mut().flatten() {
                    slot.queued = false;
                    slot.value.__encode_patch(&mut slot.track, w);
                }
            } else {
                for &pos in &self.queued {
                    if let Some(slot) = self.slots[pos as usize].as_mut() {
                        slot.queued = false;
                        slot.value.__encode_patch(&mut slot.track, w);
                    }
                }
            }
        }
        self.queued.clear();
        self.queued_all = false;
    }

    /// Whether the block's ops depend on the dialect: a 3.x client numbers
    /// Set/Collection entries itself (see [`Key::CLIENT_NUMBERED`]), so
    /// clients that joined at different times disagree on the number of an
    /// entry and no positional DELETE suits them all.
    fn differs_per_dialect(&self) -> bool {
        if self.meta.fresh {
            // A new collection changed after it was attached: modern
            // clients get the recorded ops, 3.x clients its entries.
            return self.restaged || self.fresh_changed();
        }
        K::CLIENT_NUMBERED && self.changes.iter().any(|c| c.op == spec::DELETE)
    }

    /// Writes the block's ops for `dialect`.
    fn write_ops(&self, dialect: Dialect, out: &mut Vec<u8>) {
        if self.meta.fresh && self.restaged {
            return self.write_restaged_ops(dialect, out);
        }
        if self.meta.fresh && dialect == Dialect::Modern && self.fresh_changed() {
            return self.write_fresh_ops(out);
        }
        if self.meta.fresh || (dialect == Dialect::Legacy && self.differs_per_dialect()) {
            // Legacy Set/Collection with a removal: CLEAR and re-ADD every
            // entry (3.x ignores ADD indexes), which every 3.x client applies
            // the same way.
            if !self.meta.fresh {
                out.push(spec::CLEAR);
            }
            for slot in self.slots.iter().flatten() {
                Self::write_op(out, spec::ADD, slot.wire, Some(slot));
            }
            return;
        }
        if self.cleared {
            out.push(spec::CLEAR);
        }
        for c in &self.changes {
            Self::write_op(out, c.op, c.wire, self.op_slot(c.op, c.slot));
        }
    }

    /// Writes the ops of a collection re-attached with the refId it had: a
    /// client may still hold it as of the last patch that reached it. The
    /// reference sends the ops recorded since, then an ADD of every other
    /// entry; a 3.x client gets a CLEAR and every entry.
    fn write_restaged_ops(&self, dialect: Dialect, out: &mut Vec<u8>) {
        if dialect == Dialect::Legacy || self.cleared {
            out.push(spec::CLEAR);
        }
        if dialect == Dialect::Modern {
            for c in &self.changes {
                Self::write_op(out, c.op, c.wire, self.op_slot(c.op, c.slot));
            }
        }
        for slot in self.slots.iter().flatten() {
            if dialect == Dialect::Legacy || slot.change == NONE {
                Self::write_op(out, spec::ADD, slot.wire, Some(slot));
            }
        }
    }

    /// Whether a new collection changed after it was attached (an entry
    /// added, replaced or removed, or a CLEAR).
    fn fresh_changed(&self) -> bool {
        self.cleared || !self.changes.is_empty()
    }

    /// Writes the ops of a new collection changed after it was attached, as
    /// the reference records them from its construction on: one op per
    /// wire index, in index order (the order indexes were first used): an
    /// ADD for an entry, a DELETE for an entry removed since, a
    /// DELETE_AND_ADD for a key removed and given again or an instance
    /// replaced. (A primitive replaced keeps its ADD.)
    fn write_fresh_ops(&self, out: &mut Vec<u8>) {
        if self.cleared {
            out.push(spec::CLEAR);
        }
        let mut ops: Vec<(u32, u8, u32)> = Vec::with_capacity(self.live + self.changes.len());
        for (pos, slot) in self.slots.iter().enumerate() {
            if let Some(slot) = slot {
                let op = match self.changes.get(slot.change as usize) {
                    Some(c) if c.op == spec::DELETE_AND_ADD => spec::DELETE_AND_ADD,
                    _ => spec::ADD,
                };
                ops.push((slot.wire, op, pos as u32));
            }
        }
        ops.extend(
            self.changes
                .iter()
                .filter(|c| c.op == spec::DELETE)
                .map(|c| (c.wire, spec::DELETE, NONE)),
        );
        ops.sort_unstable_by_key(|&(wire, ..)| wire);
        for (wire, op, pos) in ops {
            Self::write_op(out, op, wire, self.op_slot(op, pos));
        }
    }

    /// Marks every entry as possibly holding changes further down; returns
    /// the slots.
    #[inline]
    pub(crate) fn queue_all(&mut self) -> &mut [Option<Slot<K, V>>] {
        self.queued_all = true;
        &mut self.slots
    }

    /// Drops tombstones once they outnumber live entries; returns whether
    /// positions changed.
    pub(crate) fn compact(&mut self) -> bool {
        if self.slots.len() > 2 * self.live + 8 {
            self.slots.retain(Option::is_some);
            for (pos, slot) in self.slots.iter().enumerate() {
                let slot = slot.as_ref().expect("compacted");
                self.locs[slot.loc as usize].pos = pos as u32;
            }
            true
        } else {
            false
        }
    }

    pub(crate) fn encode_full(&self, w: &mut FullWriter<'_>) {
        w.with_children(self.meta.id(), |out, kids| {
            if self.reordered {
                // Entries by wire index, as the reference's index journal
                // lists them (rare: a key re-added in the tick it was
                // removed); the children stay in slot order.
                let mut by_wire: Vec<&Slot<K, V>> = self.slots.iter().flatten().collect();
                by_wire.sort_by_key(|slot| slot.wire);
                for slot in by_wire {
                    Self::write_op(out, spec::ADD, slot.wire, Some(slot));
                }
                for slot in self.slots.iter().flatten() {
                    slot.value.__encode_full(&slot.track, kids);
                }
            } else {
                for slot in self.slots.iter().flatten() {
                    Self::write_op(out, spec::ADD, slot.wire, Some(slot));
                    slot.value.__encode_full(&slot.track, kids);
                }
            }
        });
    }
}

impl<K: Key, V: Field> crate::view::Node for Indexed<K, V> {
    fn meta(&self) -> &crate::tracked::RefMeta {
        &self.meta
    }
    fn kind(&self) -> crate::view::NodeKind {
        if K::CLIENT_NUMBERED {
            crate::view::NodeKind::Indexed
        } else {
            crate::view::NodeKind::Map
        }
    }
    fn cleared(&self) -> bool {
        self.cleared
    }
    fn deleted_this_tick(&self, f: &mut dyn FnMut(u32, Option<u32>)) {
        for c in self.changes.iter().filter(|c| c.op == spec::DELETE) {
            f(c.wire, (c.gone != NONE).then_some(c.gone));
        }
    }
    fn primitive_elements(&self) -> bool {
        match self.iter().next() {
            Some(s) => !s.value.__is_ref(),
            None => V::DEFAULT_WIRE.is_some(),
        }
    }
    fn changed_children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        if self.meta.fresh || self.queued_all {
            // Every entry.
            return crate::view::Node::children(self, f);
        }
        let mut each = |pos: u32| {
            if let Some(slot) = self.slots.get(pos as usize).and_then(Option::as_ref) {
                slot.value
                    .__with_node(&slot.track, &mut |n| f(slot.wire, n));
            }
        };
        let q = &self.queued;
        if q.windows(2).all(|w| w[0] < w[1]) {
            q.iter().for_each(|&p| each(p));
        } else if q.len() <= 64 {
            let mut buf = [0u32; 64];
            buf[..q.len()].copy_from_slice(q);
            let sorted = &mut buf[..q.len()];
            sorted.sort_unstable();
            let mut last = None;
            for &p in sorted.iter() {
                if last != Some(p) {
                    each(p);
                    last = Some(p);
                }
            }
        } else {
            for (pos, slot) in self.slots.iter().enumerate() {
                if slot.as_ref().is_some_and(|s| s.queued) {
                    each(pos as u32);
                }
            }
        }
    }
    fn entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(crate::view::Entry<'_>)) {
        for slot in self.slots.iter().flatten() {
            let index = slot.wire;
            scratch.clear();
            Self::write_value(scratch, slot);
            f(crate::view::Entry {
                index,
                key: slot.key.as_str(),
                value: scratch,
                child: slot.value.__ref_id(&slot.track),
                dirty: self.meta.fresh || slot.change != NONE,
            });
        }
    }
    fn children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        for slot in self.slots.iter().flatten() {
            slot.value
                .__with_node(&slot.track, &mut |n| f(slot.wire, n));
        }
    }
}
