//! An insertion-ordered map with the semantics of a JavaScript `Map`: a key
//! that is set again keeps its position, a deleted key leaves the order, and
//! iteration follows first insertion. The dynamic decoder keeps `MapSchema`
//! entries (string keys) and `SetSchema` / `CollectionSchema` entries (wire
//! indexes) in it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Deleted slots are compacted away once there are more of them than this
/// and than live entries (amortized O(1) removal).
const TOMBSTONE_SLACK: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct OrderedMap<K, V, S> {
    slots: Vec<Option<(K, V)>>,
    index: HashMap<K, usize, S>,
}

impl<K, V, S: Default> Default for OrderedMap<K, V, S> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher> OrderedMap<K, V, S> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    #[inline]
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let &i = self.index.get(key)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    #[inline]
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let &i = self.index.get(key)?;
        self.slots[i].as_mut().map(|(_, v)| v)
    }

    /// Room for `n` more entries.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.index.reserve(n);
    }

    /// Sets `key` to `value`; an existing key keeps its position. Returns the
    /// previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.index.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                if let Some((_, v)) = self.slots.get_mut(*e.get()).and_then(Option::as_mut) {
                    return Some(std::mem::replace(v, value));
                }
                None
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                let key = e.key().clone();
                e.insert(self.slots.len());
                self.slots.push(Some((key, value)));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.index.remove(key)?;
        let (_, v) = self.slots[i].take()?;
        let dead = self.slots.len() - self.index.len();
        if dead > TOMBSTONE_SLACK && dead > self.index.len() {
            self.compact();
        }
        Some(v)
    }

    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some((k, _)) = slot {
                if let Some(p) = self.index.get_mut(k) {
                    *p = i;
                }
            }
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
        assert_eq!(m.remove("b"), Some(2));
        m.insert("b".into(), 4);
        let got: Vec<(&str, u32)> = m.iter().map(|(k, v)| (&**k, *v)).collect();
        assert_eq!(got, [("a", 10), ("c", 3), ("b", 4)]);
        assert_eq!(m.get("c"), Some(&3));
        assert!(m.get("z").is_none());
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
