//! An insertion-ordered map with the semantics of a JavaScript `Map`: a key
//! that is set again keeps its position, a deleted key leaves the order, and
//! iteration follows first insertion. The dynamic decoder keeps `MapSchema`
//! entries (string keys) and `SetSchema` / `CollectionSchema` entries (wire
//! indexes) in it.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

/// Deleted slots are compacted away once there are more of them than this
/// and than live entries (amortized O(1) removal).
const TOMBSTONE_SLACK: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct OrderedMap<K, V, S> {
    slots: Vec<Option<(K, V)>>,
    /// Positions in `slots` of the live entries, hashed by key (each key is
    /// held once, in its slot).
    index: HashTable<u32>,
    hasher: S,
}

impl<K, V, S: Default> Default for OrderedMap<K, V, S> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: HashTable::new(),
            hasher: S::default(),
        }
    }
}

/// The key of the live slot at `pos`.
#[inline]
fn key_at<K, V>(slots: &[Option<(K, V)>], pos: u32) -> Option<&K> {
    slots.get(pos as usize)?.as_ref().map(|(k, _)| k)
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher> OrderedMap<K, V, S> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    #[inline]
    fn find(&self, key: &K) -> Option<u32> {
        self.find_hashed(self.hasher.hash_one(key), |k| k == key)
    }

    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let i = self.find(key)?;
        self.slots[i as usize].as_ref().map(|(_, v)| v)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key)?;
        self.slots[i as usize].as_mut().map(|(_, v)| v)
    }

    /// Room for `n` more entries.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .reserve(n, |&p| key_at(slots, p).map_or(0, |k| hasher.hash_one(k)));
    }

    /// Sets `key` to `value`; an existing key keeps its position. Returns the
    /// previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hasher.hash_one(&key);
        match self.find_hashed(hash, |k| *k == key) {
            Some(p) => self.replace_at(p, value),
            None => self.push_new(hash, key, value),
        }
    }

    /// [`insert`](Self::insert) of a key known by a borrowed form: `probe`
    /// hashes like the key, `is_key` tells the key, and `make` builds it,
    /// only when it is new. (A key built first, then hashed and moved in,
    /// was read back while its bytes were still being written: a
    /// store-forwarding stall per entry of a full state.)
    #[inline]
    pub(crate) fn insert_with(
        &mut self,
        probe: &impl Hash,
        is_key: impl Fn(&K) -> bool,
        make: impl FnOnce() -> K,
        value: V,
    ) -> Option<V> {
        let hash = self.hasher.hash_one(probe);
        match self.find_hashed(hash, is_key) {
            Some(p) => self.replace_at(p, value),
            None => self.push_new(hash, make(), value),
        }
    }

    #[inline]
    fn find_hashed(&self, hash: u64, is_key: impl Fn(&K) -> bool) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&p| key_at(slots, p).is_some_and(&is_key))
            .copied()
    }

    #[inline]
    fn replace_at(&mut self, p: u32, value: V) -> Option<V> {
        let (_, v) = self.slots.get_mut(p as usize)?.as_mut()?;
        Some(std::mem::replace(v, value))
    }

    #[inline]
    fn push_new(&mut self, hash: u64, key: K, value: V) -> Option<V> {
        let pos = self.slots.len() as u32;
        self.slots.push(Some((key, value)));
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, pos, |&p| {
            key_at(slots, p).map_or(0, |k| hasher.hash_one(k))
        });
        None
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(self.hasher.hash_one(key), |&p| {
                key_at(slots, p) == Some(key)
            })
            .ok()?;
        let (i, _) = entry.remove();
        let (_, v) = self.slots[i as usize].take()?;
        let dead = self.slots.len() - self.index.len();
        if dead > TOMBSTONE_SLACK && dead > self.index.len() {
            self.compact();
        }
        Some(v)
    }

    fn compact(&mut self) {
        // Old position → new position of the live slots.
        let mut moved = vec![0u32; self.slots.len()];
        let mut next = 0u32;
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.is_some() {
                moved[i] = next;
                next += 1;
            }
        }
        self.slots.retain(Option::is_some);
        for p in self.index.iter_mut() {
            *p = moved[*p as usize];
        }
    }

    /// Removes every entry, returning the values in order.
    pub(crate) fn drain_values(&mut self) -> Vec<V> {
        self.index.clear();
        std::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .map(|(_, v)| v)
            .collect()
    }

    /// Entries in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.slots.iter().flatten().map(|(k, v)| (k, v))
    }

    /// Values in insertion order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.slots.iter().flatten().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    #[test]
    fn javascript_map_order() {
        let mut m: OrderedMap<Box<str>, u32, RandomState> = OrderedMap::default();
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        m.insert("c".into(), 3);
        assert_eq!(m.insert("a".into(), 10), Some(1));
        assert_eq!(m.remove(&"b".into()), Some(2));
        m.insert("b".into(), 4);
        let got: Vec<(&str, u32)> = m.iter().map(|(k, v)| (&**k, *v)).collect();
        assert_eq!(got, [("a", 10), ("c", 3), ("b", 4)]);
        assert_eq!(m.get(&"c".into()), Some(&3));
        assert!(m.get(&"z".into()).is_none());
    }

    #[test]
    fn compaction_keeps_order() {
        let mut m: OrderedMap<u32, u32, RandomState> = OrderedMap::default();
        for i in 0..1000 {
            m.insert(i, i);
        }
        for i in (0..1000).filter(|i| i % 3 != 0) {
            assert_eq!(m.remove(&i), Some(i));
        }
        assert!(m.slots.len() < 700);
        let got: Vec<u32> = m.values().copied().collect();
        let want: Vec<u32> = (0..1000).filter(|i| i % 3 == 0).collect();
        assert_eq!(got, want);
        assert_eq!(m.get(&999), Some(&999));
        assert_eq!(m.drain_values().len(), 334);
        assert_eq!(m.len(), 0);
    }
}
