//! What changed: per-ref identity and dirtiness, and the per-tick context
//! that hands out refIds and first-change sequence numbers.
//!
//! Every tracked value (a Schema struct or a collection) carries a
//! [`RefMeta`]. A mutation flips a bit in the owner's `u64` mask (a `u64` is
//! cheaper than any bit-vector crate for ≤ 63 fields) and, the first time the
//! ref changes in a tick, takes the next sequence number from the [`Tick`]:
//! blocks are emitted in that order (spec `schema-wire.md` §16).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// No sequence number: the ref has not changed this tick.
pub(crate) const NO_SEQ: u32 = u32::MAX;
/// No refId: the value is not attached to an encoder's tree.
pub(crate) const NO_ID: u32 = u32::MAX;

/// Identity and tick state of one tracked ref (`pub` only so that the view
/// walk's `Node` trait can hand it out; the module is private).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefMeta {
    /// refId, or [`NO_ID`] while detached.
    pub(crate) id: u32,
    /// While attached: order of the first change this tick, or [`NO_SEQ`].
    /// While detached: the refId the ref had (its "kept" id, which a
    /// [`Moved`](crate::Moved) value takes back when it is placed again),
    /// or [`NO_ID`] (equal to [`NO_SEQ`]).
    pub(crate) seq: u32,
    /// Attached this tick: its whole content is sent, not its changes.
    pub(crate) fresh: bool,
}

impl Default for RefMeta {
    fn default() -> Self {
        Self {
            id: NO_ID,
            seq: NO_SEQ,
            fresh: false,
        }
    }
}

impl RefMeta {
    /// Records a change; the first one of the tick takes a sequence number.
    #[inline]
    pub(crate) fn touch(&mut self, tick: &mut Tick) {
        if self.seq == NO_SEQ {
            self.seq = tick.next_seq();
        }
    }

    /// Gives the ref an id and marks it as sent in full by the next patch
    /// (an attached ref keeps its id while [`Tick::refresh`] runs; a
    /// detached one takes back the id it had while a `Moved` value is
    /// placed, if that id is still free). Returns whether it took back its
    /// id, and when it had left (see [`Back`]).
    #[inline]
    pub(crate) fn attach(&mut self, tick: &mut Tick) -> Back {
        let mut back = Back::New;
        if self.id == NO_ID {
            let kept = self.seq;
            back = match (kept != NO_ID).then(|| tick.reclaim(kept)).flatten() {
                None => Back::New,
                Some(true) => Back::SameTick,
                Some(false) => Back::Later,
            };
            self.id = if back == Back::New {
                tick.alloc_id()
            } else {
                kept
            };
        } else if tick.keep_ids {
            back = Back::Refreshed;
        } else {
            self.id = tick.alloc_id();
        }
        self.seq = tick.next_seq();
        self.fresh = true;
        back
    }

    /// Releases the id once the current patch has gone out; the ref keeps
    /// it as its "kept" id (see [`RefMeta::seq`]).
    #[inline]
    pub(crate) fn detach(&mut self, tick: &mut Tick) {
        let kept = if self.id == NO_ID {
            self.seq
        } else {
            tick.left.push(self.id);
            tick.left_sorted = false;
            tick.release_id(self.id);
            if tick.views.active() {
                tick.views.detached.push(self.id);
                if tick.views.departed.noting() {
                    tick.views.departed.detached(self.id);
                }
            }
            self.id
        };
        *self = Self {
            id: NO_ID,
            seq: kept,
            fresh: false,
        };
    }

    /// Forgets this tick's state after a patch was written.
    #[inline]
    pub(crate) fn settle(&mut self) {
        self.seq = NO_SEQ;
        self.fresh = false;
    }

    /// The refId (meaningful only while attached).
    #[inline]
    pub(crate) fn id(&self) -> u32 {
        self.id
    }
}

/// How a ref came back when it was attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Back {
    /// With a new refId.
    New,
    /// Attached already, sent in full again under its refId (see
    /// [`Tick::refresh`]): the changes it recorded this tick still go out,
    /// as the reference re-stages every present field over them.
    Refreshed,
    /// With the refId it left in this tick: clients still hold the
    /// instance under that id, as of the last patch, so the ref sends the
    /// changes it recorded since then as well as its content.
    SameTick,
    /// With the refId it left in an earlier tick: clients dropped the
    /// instance; the reference still sends the ops it recorded and did not
    /// send (harmless to a new instance), as structs do here.
    Later,
}

/// Tracking state of one Schema struct instance: its identity, which
/// fields changed, and which child fields hold something changed further
/// down.
#[doc(hidden)]
#[derive(Debug, Default, Clone)]
pub struct TrackState {
    pub(crate) meta: RefMeta,
    /// Fields to send in the next patch.
    pub(crate) dirty: u64,
    /// Child fields whose previous instance was replaced (DELETE_AND_ADD).
    pub(crate) replaced: u64,
    /// Child fields to descend into when encoding the next patch.
    pub(crate) child_dirty: u64,
}

impl TrackState {
    /// The instance's refId.
    #[doc(hidden)]
    #[inline]
    #[must_use]
    pub fn __id(&self) -> u32 {
        self.meta.id()
    }

    /// Records a change of field `index`.
    #[doc(hidden)]
    #[inline]
    pub fn mark(&mut self, index: u32, tick: &mut Tick) {
        self.dirty |= 1 << index;
        self.meta.touch(tick);
    }

    /// Records that a child field may hold changes.
    #[doc(hidden)]
    #[inline]
    pub fn mark_child(&mut self, index: u32) {
        self.child_dirty |= 1 << index;
    }

    /// Records an assignment of child field `index`; `had_one` says whether
    /// it held an instance before. Once it did, the field stays "replaced"
    /// for the rest of the tick, since the client may still hold that
    /// instance: a new one then goes as DELETE_AND_ADD, which releases it,
    /// even after an intermediate `None`.
    #[inline]
    pub(crate) fn mark_replaced(&mut self, index: u32, had_one: bool, tick: &mut Tick) {
        if had_one {
            self.replaced |= 1 << index;
        }
        self.child_dirty |= 1 << index;
        self.mark_set(index, had_one, tick);
    }

    /// Records an assignment of field `index` that changed it; `was_present`
    /// says whether it held a value before. A value given to a field whose
    /// DELETE is pending this tick goes as DELETE_AND_ADD, as the
    /// reference merges a DELETE and a later ADD of one field.
    #[inline]
    pub(crate) fn mark_set(&mut self, index: u32, was_present: bool, tick: &mut Tick) {
        let bit = 1 << index;
        if !was_present && self.dirty & bit != 0 {
            self.replaced |= bit;
        }
        self.dirty |= bit;
        self.meta.touch(tick);
    }
}

/// Tracking state of a Schema struct and the tracks of its child fields
/// (generated per type).
#[doc(hidden)]
#[derive(Debug, Default, Clone)]
pub struct StructTrack<C> {
    pub(crate) state: TrackState,
    /// Tracks of the child fields.
    pub children: C,
}

/// The per-encoder context of a tick: refId allocation and first-change
/// order. Views carry a `&mut Tick`; nothing else can reach tracked state
/// mutably.
#[derive(Debug, Default)]
pub struct Tick {
    next_seq: u32,
    next_id: u32,
    /// Ids free for reuse, lowest first (keeps refIds and their varints
    /// small); a set, so that a `Moved` value can take its id back.
    free: BTreeSet<u32>,
    /// Whether released ids are reused (see `EncoderOptions`).
    reuse: bool,
    /// Type ids of the state's Rust types (TYPE_ID of polymorphic children).
    types: Vec<(std::any::TypeId, u32)>,
    /// Ids released this tick, free once the patch that deletes them is out.
    released: Vec<u32>,
    /// Attaching keeps the ids of attached refs (see [`Tick::refresh`]).
    keep_ids: bool,
    /// The encoder's views (`StateView`s).
    pub(crate) views: crate::view::Views,
    /// This encoder's identity (a `Moved` value goes back only to the
    /// encoder it left with its refIds).
    owner: u64,
    /// A `Moved` value is being placed: detached refs take back their ids.
    reclaiming: bool,
    /// Ids detached since the last patch (a `Moved` value placed in the
    /// tick it left is one clients still hold).
    left: Vec<u32>,
    /// Whether `left` is sorted.
    left_sorted: bool,
}

/// Source of [`Tick::owner`].
static OWNERS: AtomicU64 = AtomicU64::new(1);

impl Tick {
    pub(crate) fn new(reuse_ids: bool, types: Vec<(std::any::TypeId, u32)>) -> Self {
        Self {
            reuse: reuse_ids,
            types,
            owner: OWNERS.fetch_add(1, Ordering::Relaxed),
            ..Self::default()
        }
    }

    /// This encoder's identity.
    pub(crate) fn owner(&self) -> u64 {
        self.owner
    }

    /// Runs `f` (an `__attach` of a value taken out of this encoder as a
    /// `Moved`) so that its refs take back the refIds they had: each one
    /// that is still free (always, when ids are not reused).
    pub(crate) fn reattach(&mut self, f: impl FnOnce(&mut Self)) {
        self.reclaiming = true;
        f(self);
        self.reclaiming = false;
    }

    /// Takes back `id`, the kept id of a ref being re-attached, if that is
    /// allowed now ([`Tick::reattach`]) and the id was not given to
    /// another ref since; `Some(true)` if the ref left in this tick.
    fn reclaim(&mut self, id: u32) -> Option<bool> {
        if !self.reclaiming {
            return None;
        }
        if self.reuse {
            if let Some(p) = self.released.iter().position(|&r| r == id) {
                self.released.swap_remove(p);
            } else if !self.free.remove(&id) {
                return None;
            }
        } else if id >= self.next_id {
            // (Ids are never handed out twice: any id below is this ref's.)
            return None;
        }
        // Back in the tree this tick: no view forgets it.
        if let Some(p) = self.views.detached.iter().position(|&r| r == id) {
            self.views.detached.swap_remove(p);
        }
        if !self.left_sorted {
            self.left.sort_unstable();
            self.left_sorted = true;
        }
        Some(self.left.binary_search(&id).is_ok())
    }

    /// Runs `f` (an `__attach` of attached refs) so that it marks them to be
    /// sent in full again, under the refIds they have, with new change
    /// orders: what the reference does for the elements an array re-adds
    /// after a CLEAR.
    pub(crate) fn refresh(&mut self, f: impl FnOnce(&mut Self)) {
        self.keep_ids = true;
        f(self);
        self.keep_ids = false;
    }

    /// Called by a struct's generated `__detach_children` before it detaches
    /// field `index` (where a removed instance was, for views).
    #[doc(hidden)]
    #[inline]
    pub fn __detach_field(&mut self, index: u32) {
        self.views.departed.field(index);
    }

    /// The type id of Rust type `T` in this state's registry.
    #[doc(hidden)]
    #[must_use]
    pub fn type_id_of<T: 'static>(&self) -> Option<u32> {
        let want = std::any::TypeId::of::<T>();
        self.types
            .iter()
            .find(|(t, _)| *t == want)
            .map(|(_, id)| *id)
    }

    /// The change order the next first change of the tick gets.
    #[inline]
    pub(crate) fn seq_now(&self) -> u32 {
        self.next_seq
    }

    #[inline]
    pub(crate) fn next_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    #[inline]
    pub(crate) fn alloc_id(&mut self) -> u32 {
        if let Some(id) = self.free.pop_first() {
            id
        } else {
            let id = self.next_id;
            // Past 2^32 refs without reuse the ids wrap, as the reference's would.
            self.next_id = self.next_id.wrapping_add(1);
            id
        }
    }

    #[inline]
    pub(crate) fn release_id(&mut self, id: u32) {
        if self.reuse {
            self.released.push(id);
        }
    }

    /// Called after a patch went out: released ids become reusable and the
    /// order restarts.
    pub(crate) fn end_patch(&mut self) {
        self.free.extend(self.released.drain(..));
        self.left.clear();
        self.next_seq = 0;
    }

    /// Number of refIds ever handed out and not reusable: the high-water mark
    /// of live refs (a measure of tracking memory).
    #[must_use]
    pub fn id_high_water(&self) -> u32 {
        self.next_id
    }

    /// Number of refIds waiting for reuse.
    #[must_use]
    pub fn free_ids(&self) -> usize {
        self.free.len() + self.released.len()
    }
}
