//! refIds, reference counts and the once-per-message garbage collection
//! (spec `schema-wire.md` §9; `ReferenceTracker.ts` of the reference).
//!
//! Every structure the decoder holds (the root, each struct instance, each
//! collection) lives under its refId in a [`RefMap`]. A child gains a count
//! each time a slot starts holding it and loses one when a slot stops; at
//! zero it becomes a *candidate* for collection, but it is only forgotten at
//! the end of the message if its count is still zero then. That is what
//! keeps a child alive when a patch removes it from one parent and adds it
//! to another (in either order).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// The identity of a structure on the wire: the root is `RefId(0)`, every
/// other struct instance or collection gets a number from the encoder when
/// it is first attached (spec §9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefId(pub u32);

impl RefId {
    /// The root state.
    pub const ROOT: Self = Self(0);
}

impl fmt::Display for RefId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A keyed hasher for refIds. refIds come from the network, so the hash is
/// seeded per map (an attacker cannot precompute colliding refIds), and it
/// mixes all bits (the table uses both the low and the high bits).
#[derive(Debug, Clone)]
pub(crate) struct RefIdHasherBuilder {
    seed: u64,
}

impl Default for RefIdHasherBuilder {
    fn default() -> Self {
        Self {
            seed: RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl BuildHasher for RefIdHasherBuilder {
    type Hasher = RefIdHasher;
    #[inline]
    fn build_hasher(&self) -> RefIdHasher {
        RefIdHasher(self.seed)
    }
}

pub(crate) struct RefIdHasher(u64);

impl Hasher for RefIdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // splitmix64 finalizer.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

/// refIds below this are always stored densely.
const DENSE_FLOOR: usize = 1024;

/// A map from refId to `T`, fast for the dense, monotonic refIds encoders
/// hand out, and bounded for hostile ones: refIds below
/// `max(1024, 2 × len)` live in a vector, the others in a seeded hash map,
/// so memory stays proportional to the number of entries whatever the
/// refIds are.
pub(crate) struct RefMap<T> {
    dense: Vec<Option<T>>,
    sparse: HashMap<u32, T, RefIdHasherBuilder>,
    len: usize,
}

impl<T: Clone> Clone for RefMap<T> {
    fn clone(&self) -> Self {
        Self {
            dense: self.dense.clone(),
            sparse: self.sparse.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for RefMap<T> {
    fn default() -> Self {
        Self {
            dense: Vec::new(),
            sparse: HashMap::default(),
            len: 0,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for RefMap<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T> RefMap<T> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The refIds below this are stored densely.
    #[inline]
    pub(crate) fn dense_len(&self) -> usize {
        self.dense.len()
    }

    #[inline]
    pub(crate) fn get(&self, id: RefId) -> Option<&T> {
        let i = id.0 as usize;
        if i < self.dense.len() {
            self.dense[i].as_ref()
        } else if self.sparse.is_empty() {
            None
        } else {
            self.sparse.get(&id.0)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: RefId) -> Option<&mut T> {
        let i = id.0 as usize;
        if i < self.dense.len() {
            self.dense[i].as_mut()
        } else if self.sparse.is_empty() {
            None
        } else {
            self.sparse.get_mut(&id.0)
        }
    }

    #[inline]
    pub(crate) fn contains(&self, id: RefId) -> bool {
        self.get(id).is_some()
    }

    /// Before inserting refIds past the dense range: when the dense vector
    /// is full, room for `extra` more (at least doubling), so that a state
    /// filled from empty does not copy the vector at each doubling.
    #[inline]
    pub(crate) fn reserve_dense(&mut self, extra: usize) {
        if self.dense.len() == self.dense.capacity() {
            self.dense.reserve(extra.max(self.dense.len()));
        }
    }

    /// Inserts or replaces the entry of `id`.
    pub(crate) fn insert(&mut self, id: RefId, value: T) {
        self.insert_replacing(id, value);
    }

    /// Inserts or replaces the entry of `id`, returning the one replaced.
    #[inline]
    pub(crate) fn insert_replacing(&mut self, id: RefId, value: T) -> Option<T> {
        let i = id.0 as usize;
        if let Some(slot) = self.dense.get_mut(i) {
            // The common case: within the dense range (often made for the
            // message beforehand, `reserve_dense`).
            let previous = slot.replace(value);
            if previous.is_none() {
                self.len += 1;
            }
            return previous;
        }
        if i == self.dense.len()
            && self.sparse.is_empty()
            && i < DENSE_FLOOR.max(2 * (self.len + 1))
        {
            // The next refId of an encoder counting up.
            self.dense.push(Some(value));
            self.len += 1;
            return None;
        }
        self.insert_other(id, value)
    }

    /// [`insert_replacing`](Self::insert_replacing) of a refId past the
    /// dense range (out of line: keeps the common cases small enough to
    /// inline).
    #[inline(never)]
    fn insert_other(&mut self, id: RefId, value: T) -> Option<T> {
        let i = id.0 as usize;
        if i >= self.dense.len() {
            let limit = DENSE_FLOOR.max(2 * (self.len + 1));
            if i < limit {
                // Grow to `i` (the vector's capacity grows geometrically;
                // refIds mostly come in order, so the slots are written
                // once, as they are filled); with sparse entries, grow
                // geometrically, up to the limit, and move those that now
                // fall in the dense range (a sweep per doubling).
                let new_len = if self.sparse.is_empty() {
                    i + 1
                } else {
                    (i + 1).max(2 * self.dense.len()).min(limit)
                };
                self.dense.resize_with(new_len, || None);
                if !self.sparse.is_empty() {
                    let moved: Vec<u32> = self
                        .sparse
                        .keys()
                        .copied()
                        .filter(|&k| (k as usize) < new_len)
                        .collect();
                    for k in moved {
                        if let Some(v) = self.sparse.remove(&k) {
                            self.dense[k as usize] = Some(v);
                        }
                    }
                }
            }
        }
        let previous = if i < self.dense.len() {
            self.dense[i].replace(value)
        } else {
            self.sparse.insert(id.0, value)
        };
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    pub(crate) fn remove(&mut self, id: RefId) -> Option<T> {
        let i = id.0 as usize;
        let out = if i < self.dense.len() {
            self.dense[i].take()
        } else {
            self.sparse.remove(&id.0)
        };
        if out.is_some() {
            self.len -= 1;
        }
        out
    }

    pub(crate) fn clear(&mut self) {
        self.dense.clear();
        self.sparse.clear();
        self.len = 0;
    }

    /// Every entry: dense ones in refId order, then the sparse ones in no
    /// particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (RefId, &T)> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (RefId(i as u32), v)))
            .chain(self.sparse.iter().map(|(&k, v)| (RefId(k), v)))
    }
}

/// Reference-count bookkeeping of one structure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RefCount {
    /// Number of slots holding the structure.
    pub(crate) count: u32,
    /// Whether the refId is on the garbage list of the current message.
    pub(crate) pending: bool,
}

/// The garbage list: refIds whose count reached zero during the current
/// message. Processed once at the end of the message by the owner of the
/// structures (it knows how to find their children).
#[derive(Debug, Default)]
pub(crate) struct GarbageList {
    ids: Vec<RefId>,
}

impl GarbageList {
    /// A slot started holding the structure: one more reference.
    #[inline]
    pub(crate) fn add_ref(rc: &mut RefCount) {
        rc.count = rc.count.saturating_add(1);
        // Re-attached before the end of the message: no longer garbage
        // (its stale entry in `ids` is skipped at collection time).
        rc.pending = false;
    }

    /// A structure just created, not held by any slot yet: a candidate
    /// until a slot takes it.
    #[inline]
    pub(crate) fn track_new(&mut self, id: RefId, rc: &mut RefCount) {
        rc.count = 0;
        rc.pending = true;
        self.ids.push(id);
    }

    /// A slot stopped holding the structure. Counts never go below zero
    /// (the reference warns and ignores such a removal).
    #[inline]
    pub(crate) fn remove_ref(&mut self, id: RefId, rc: &mut RefCount) {
        if rc.count == 0 {
            return;
        }
        rc.count -= 1;
        if rc.count == 0 && !rc.pending {
            rc.pending = true;
            self.ids.push(id);
        }
    }

    /// The candidate at position `i`, if any; the list may grow while it is
    /// walked (cascading removals).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<RefId> {
        self.ids.get(i).copied()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.ids.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_map_dense_and_sparse() {
        let mut m = RefMap::default();
        for i in 0..5000u32 {
            m.insert(RefId(i), i);
        }
        m.insert(RefId(u32::MAX), 7);
        m.insert(RefId(4_000_000_000), 8);
        assert_eq!(m.len(), 5002);
        assert!(m.dense.len() <= 2 * 5002 + DENSE_FLOOR);
        assert_eq!(m.get(RefId(4999)), Some(&4999));
        assert_eq!(m.get(RefId(u32::MAX)), Some(&7));
        assert_eq!(m.remove(RefId(4_000_000_000)), Some(8));
        assert_eq!(m.remove(RefId(4_000_000_000)), None);
        assert_eq!(m.len(), 5001);
        assert_eq!(m.iter().count(), 5001);
    }

    #[test]
    fn hostile_ref_ids_stay_sparse() {
        let mut m = RefMap::default();
        for i in 0..1000u32 {
            m.insert(RefId(i << 20), i);
        }
        assert!(m.dense.len() <= DENSE_FLOOR);
        for i in 0..1000u32 {
            assert_eq!(m.get(RefId(i << 20)), Some(&i));
        }
    }

    #[test]
    fn sparse_entries_move_to_dense_when_it_grows() {
        let mut m = RefMap::default();
        m.insert(RefId(1500), 1);
        assert!(m.dense.len() <= DENSE_FLOOR);
        for i in 0..1000u32 {
            m.insert(RefId(i), i);
        }
        assert_eq!(m.get(RefId(1500)), Some(&1));
        assert_eq!(m.len(), 1001);
    }
}
