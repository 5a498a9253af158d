//! The decoder's model of an `ArraySchema` while a block is applied
//! (spec `schema-wire.md` §5.1).
//!
//! Within one block the client array is mutated positionally, with holes:
//! a DELETE leaves a hole, an ADD fills a hole or inserts, and the holes are
//! removed when the decoder leaves the block ([`ArrayItems::compact`]). The
//! positions of the JavaScript array are emulated exactly, including writes
//! past the end (gap writes) and the `length` bookkeeping of
//! `items[i] = undefined`.
//!
//! Hostile indexes cannot make it allocate: a write far past the end switches
//! to a sparse representation (an ordered map) until the next compaction.

use std::collections::BTreeMap;

/// Gap writes of up to this many slots past the end are stored densely.
const DENSE_GAP: u64 = 1024;

#[derive(Debug, Clone)]
enum Repr<V> {
    /// `items.len()` is the JavaScript `length`; `None` is a hole.
    Dense { items: Vec<Option<V>>, holes: usize },
    /// Only the defined positions, with an explicit `length`.
    Sparse { items: BTreeMap<u64, V>, len: u64 },
}

/// A JavaScript-like array with holes.
#[derive(Debug, Clone)]
pub(crate) struct ArrayItems<V> {
    repr: Repr<V>,
}

impl<V> Default for ArrayItems<V> {
    fn default() -> Self {
        Self {
            repr: Repr::Dense {
                items: Vec::new(),
                holes: 0,
            },
        }
    }
}

impl<V> ArrayItems<V> {
    /// An array holding `values` in order, without holes.
    pub(crate) fn from_values(values: Vec<V>) -> Self {
        Self {
            repr: Repr::Dense {
                items: values.into_iter().map(Some).collect(),
                holes: 0,
            },
        }
    }

    /// JavaScript `length` (holes included).
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        match &self.repr {
            Repr::Dense { items, .. } => items.len() as u64,
            Repr::Sparse { len, .. } => *len,
        }
    }

    /// Number of defined elements.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        match &self.repr {
            Repr::Dense { items, holes } => items.len() - holes,
            Repr::Sparse { items, .. } => items.len(),
        }
    }

    #[inline]
    pub(crate) fn get(&self, i: u64) -> Option<&V> {
        match &self.repr {
            Repr::Dense { items, .. } => items.get(usize::try_from(i).ok()?)?.as_ref(),
            Repr::Sparse { items, .. } => items.get(&i),
        }
    }

    /// Makes sure position `i` exists (JavaScript `length = max(length, i + 1)`),
    /// switching to the sparse form for a far gap.
    fn reach(&mut self, i: u64) {
        if let Repr::Dense { items, holes } = &mut self.repr {
            let len = items.len() as u64;
            if i < len {
                return;
            }
            if i - len <= DENSE_GAP {
                let new_len = (i + 1) as usize;
                *holes += new_len - items.len();
                items.resize_with(new_len, || None);
                return;
            }
            let dense = std::mem::take(items);
            let map: BTreeMap<u64, V> = dense
                .into_iter()
                .enumerate()
                .filter_map(|(p, v)| v.map(|v| (p as u64, v)))
                .collect();
            self.repr = Repr::Sparse { items: map, len };
        }
        if let Repr::Sparse { len, .. } = &mut self.repr {
            *len = (*len).max(i + 1);
        }
    }

    /// `items[i] = v`; returns the previous value.
    pub(crate) fn set(&mut self, i: u64, v: V) -> Option<V> {
        self.reach(i);
        match &mut self.repr {
            Repr::Dense { items, holes } => {
                let slot = &mut items[i as usize];
                let prev = slot.replace(v);
                if prev.is_none() {
                    *holes -= 1;
                }
                prev
            }
            Repr::Sparse { items, .. } => items.insert(i, v),
        }
    }

    /// `items[i] = undefined`: leaves a hole (and, like JavaScript, extends
    /// `length` when `i` is past the end). Returns the removed value.
    pub(crate) fn delete(&mut self, i: u64) -> Option<V> {
        self.reach(i);
        match &mut self.repr {
            Repr::Dense { items, holes } => {
                let prev = items[i as usize].take();
                if prev.is_some() {
                    *holes += 1;
                }
                prev
            }
            Repr::Sparse { items, .. } => items.remove(&i),
        }
    }

    /// `splice(i, 0, v)`: inserts before position `i` (clamped to `length`).
    pub(crate) fn insert(&mut self, i: u64, v: V) {
        match &mut self.repr {
            Repr::Dense { items, .. } => {
                let i = (i as usize).min(items.len());
                items.insert(i, Some(v));
            }
            Repr::Sparse { items, len } => {
                let i = i.min(*len);
                let tail = items.split_off(&i);
                items.extend(tail.into_iter().map(|(p, v)| (p + 1, v)));
                items.insert(i, v);
                *len += 1;
            }
        }
    }

    /// `splice(i, 1)`: removes position `i` (a value or a hole) and shifts
    /// the rest down; nothing when `i` is past the end.
    pub(crate) fn remove(&mut self, i: u64) -> Option<V> {
        match &mut self.repr {
            Repr::Dense { items, holes } => {
                let i = usize::try_from(i).ok().filter(|&i| i < items.len())?;
                let prev = items.remove(i);
                if prev.is_none() {
                    *holes -= 1;
                }
                prev
            }
            Repr::Sparse { items, len } => {
                if i >= *len {
                    return None;
                }
                let mut tail = items.split_off(&i);
                let prev = tail.remove(&i);
                items.extend(tail.into_iter().map(|(p, v)| (p - 1, v)));
                *len -= 1;
                prev
            }
        }
    }

    /// `reverse()`: position `p` moves to `length - 1 - p`.
    pub(crate) fn reverse(&mut self) {
        match &mut self.repr {
            Repr::Dense { items, .. } => items.reverse(),
            Repr::Sparse { items, len } => {
                let Some(last) = len.checked_sub(1) else {
                    return;
                };
                let old = std::mem::take(items);
                items.extend(old.into_iter().map(|(p, v)| (last - p, v)));
            }
        }
    }

    /// Drops every element, returning them in order.
    pub(crate) fn take_all(&mut self) -> Vec<V> {
        let out = match &mut self.repr {
            Repr::Dense { items, .. } => std::mem::take(items).into_iter().flatten().collect(),
            Repr::Sparse { items, .. } => std::mem::take(items).into_values().collect(),
        };
        self.repr = Repr::Dense {
            items: Vec::new(),
            holes: 0,
        };
        out
    }

    /// Removes every hole (end of the array's block).
    pub(crate) fn compact(&mut self) {
        match &mut self.repr {
            Repr::Dense { items, holes } => {
                if *holes > 0 {
                    items.retain(Option::is_some);
                    *holes = 0;
                }
            }
            Repr::Sparse { items, .. } => {
                let values: Vec<Option<V>> =
                    std::mem::take(items).into_values().map(Some).collect();
                self.repr = Repr::Dense {
                    items: values,
                    holes: 0,
                };
            }
        }
    }

    /// First position whose value satisfies `pred`.
    pub(crate) fn position(&self, mut pred: impl FnMut(&V) -> bool) -> Option<u64> {
        match &self.repr {
            Repr::Dense { items, .. } => items
                .iter()
                .position(|v| v.as_ref().is_some_and(&mut pred))
                .map(|p| p as u64),
            Repr::Sparse { items, .. } => items.iter().find(|(_, v)| pred(v)).map(|(&p, _)| p),
        }
    }

    /// The defined values in position order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &V> + '_ {
        let (dense, sparse) = match &self.repr {
            Repr::Dense { items, .. } => (Some(items.iter().flatten()), None),
            Repr::Sparse { items, .. } => (None, Some(items.values())),
        };
        dense
            .into_iter()
            .flatten()
            .chain(sparse.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A literal model of a JavaScript array: `length` and defined positions.
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Model {
        len: u64,
        items: BTreeMap<u64, u32>,
    }

    impl Model {
        fn apply(&mut self, op: &Op) {
            match *op {
                Op::Set(i, v) => {
                    self.items.insert(i, v);
                    self.len = self.len.max(i + 1);
                }
                Op::Delete(i) => {
                    self.items.remove(&i);
                    self.len = self.len.max(i + 1);
                }
                Op::Insert(i, v) => {
                    let i = i.min(self.len);
                    let tail = self.items.split_off(&i);
                    self.items.extend(tail.into_iter().map(|(p, v)| (p + 1, v)));
                    self.items.insert(i, v);
                    self.len += 1;
                }
                Op::Remove(i) => {
                    if i < self.len {
                        let mut tail = self.items.split_off(&i);
                        tail.remove(&i);
                        self.items.extend(tail.into_iter().map(|(p, v)| (p - 1, v)));
                        self.len -= 1;
                    }
                }
                Op::Reverse => {
                    let old = std::mem::take(&mut self.items);
                    let len = self.len;
                    self.items
                        .extend(old.into_iter().map(|(p, v)| (len - 1 - p, v)));
                }
                Op::Compact => {
                    let values: Vec<u32> = std::mem::take(&mut self.items).into_values().collect();
                    self.len = values.len() as u64;
                    self.items = values
                        .into_iter()
                        .enumerate()
                        .map(|(p, v)| (p as u64, v))
                        .collect();
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u64, u32),
        Delete(u64),
        Insert(u64, u32),
        Remove(u64),
        Reverse,
        Compact,
    }

    fn index() -> impl Strategy<Value = u64> {
        prop_oneof![
            6 => 0u64..12,
            1 => 1000u64..1100,
            1 => 100_000u64..100_010,
            1 => Just(u64::from(u32::MAX)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (index(), any::<u32>()).prop_map(|(i, v)| Op::Set(i, v)),
            index().prop_map(Op::Delete),
            (index(), any::<u32>()).prop_map(|(i, v)| Op::Insert(i, v)),
            index().prop_map(Op::Remove),
            Just(Op::Reverse),
            Just(Op::Compact),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_javascript_array(ops in proptest::collection::vec(op(), 0..40)) {
            let mut model = Model::default();
            let mut items = ArrayItems::default();
            for op in &ops {
                model.apply(op);
                match *op {
                    Op::Set(i, v) => { items.set(i, v); }
                    Op::Delete(i) => { items.delete(i); }
                    Op::Insert(i, v) => items.insert(i, v),
                    Op::Remove(i) => { items.remove(i); }
                    Op::Reverse => items.reverse(),
                    Op::Compact => items.compact(),
                }
                prop_assert_eq!(items.len(), model.len);
                prop_assert_eq!(items.count(), model.items.len());
                let got: Vec<u32> = items.iter().copied().collect();
                let want: Vec<u32> = model.items.values().copied().collect();
                prop_assert_eq!(got, want);
                for (&p, v) in &model.items {
                    prop_assert_eq!(items.get(p), Some(v));
                }
            }
        }
    }

    #[test]
    fn far_gap_write_does_not_allocate_the_gap() {
        let mut items = ArrayItems::default();
        items.set(0, 1u8);
        items.set(u64::from(u32::MAX), 2);
        assert_eq!(items.len(), u64::from(u32::MAX) + 1);
        items.insert(5, 3);
        items.compact();
        assert_eq!(items.iter().copied().collect::<Vec<_>>(), [1, 3, 2]);
        assert_eq!(items.len(), 3);
    }
}
