//! The key of a [`MapSchema`](super::MapSchema) entry: short keys inline,
//! long ones in one heap allocation.
//!
//! Colyseus map keys are mostly short (a 9-character session id, `"e123"`,
//! a small number), and a decoder rebuilding a map of thousands of entries
//! from a full state paid one allocation per key for a `Box<str>` (and one
//! free when the map was dropped). An [`EcoString`] is the same 16 bytes as
//! the `Box<str>`, keeps up to 15 bytes inline, and a longer key in one
//! allocation (a 16-byte header, then the bytes; the string points at the
//! bytes: no second indirection).
//!
//! Chosen by measurement against the `Box<str>` keys (callgrind
//! instructions, N = 1000; wall time of `benches/compare.sh` for S1):
//!
//! | | own enum, 24 B | `compact_str`, 24 B | `ecow`, 16 B |
//! | --- | ---: | ---: | ---: |
//! | D3 typed full-state decode | −5.5 % | −5.5 % | −5.4 % |
//! | S1 (`for_each_mut` + patch), instructions | **+66 %** | −0.8 % | 0 % |
//! | S1, wall time, N = 1000 and 10,000 | | **+5 to +8 %** | 0 % |
//! | S3 (`encode_all`) | +1.2 % | +2.4 % | +0.9 % |
//! | S4 (churn, new keys) | −0.9 % | −0.8 % | −1.0 % |
//!
//! With `unsafe_code = "forbid"` an enum of our own (`Inline { len, buf:
//! [u8; 22] } | Heap(Box<str>)`) can only hand out an inline key as `&str`
//! through `str::from_utf8`, which every `iter`, `keys` and `for_each_mut`
//! pays (about 70 instructions a key). `compact_str` hands it out without a
//! check, but its 8 more bytes per entry cost S1 more L1 misses (cachegrind:
//! +7 %, as much as the entries grew). `ecow` (maintained by the typst
//! authors, no dependencies) has neither cost. What it costs instead: keys
//! of 16 bytes and more take a 16-byte header on the heap, and
//! `MapSchema::insert` of a long `String` copies it rather than keeping its
//! buffer.

use std::fmt;
use std::hash::{Hash, Hasher};

use ecow::EcoString;

/// A map key: equal keys compare and hash as their bytes, whichever form
/// they are in.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct MapKey(EcoString);

impl MapKey {
    /// The key's bytes (UTF-8).
    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The key.
    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<&str> for MapKey {
    #[inline]
    fn from(s: &str) -> Self {
        Self(EcoString::from(s))
    }
}

/// Copies the `String` (inline, or into a buffer with the header) and frees
/// its buffer.
impl From<String> for MapKey {
    #[inline]
    fn from(s: String) -> Self {
        Self(EcoString::from(s))
    }
}

/// Hashes as its bytes, as `MapSchema`'s index does
/// (`hash_one(key.as_bytes())`).
impl Hash for MapKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for MapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::indexed::Key;
    use crate::wire;
    use std::hash::BuildHasher;

    /// Bytes a key holds inline.
    const INLINE: usize = EcoString::INLINE_LIMIT;

    fn hash_of<T: Hash + ?Sized>(t: &T) -> u64 {
        // One fixed seed for both sides of a comparison.
        foldhash::fast::FixedState::with_seed(7).hash_one(t)
    }

    /// Both constructors, checked against `s`.
    fn check(s: &str, inline: bool) {
        for k in [MapKey::from(s), MapKey::from(s.to_owned())] {
            assert_eq!(k.0.is_inline(), inline, "{s:?}");
            assert_eq!(k.as_str(), s);
            assert_eq!(k.as_bytes(), s.as_bytes());
            assert_eq!(k, MapKey::from(s));
            assert_eq!(hash_of(&k), hash_of(s.as_bytes()));
            let (mut out, mut expected) = (Vec::new(), Vec::new());
            k.encode(&mut out);
            wire::encode_str(&mut expected, s);
            assert_eq!(out, expected);
        }
    }

    #[test]
    #[cfg(all(target_pointer_width = "64", target_endian = "little"))]
    fn as_small_as_a_box_str() {
        use crate::collections::indexed::Slot;
        use std::mem::size_of;
        assert_eq!(INLINE, 15);
        assert_eq!(size_of::<MapKey>(), size_of::<Box<str>>());
        // `EcoString` leaves no niche for `Option`, but the slot has one.
        assert_eq!(
            size_of::<Option<Slot<MapKey, String>>>(),
            size_of::<Option<Slot<Box<str>, String>>>()
        );
        assert_eq!(
            size_of::<Option<Slot<MapKey, f32>>>(),
            size_of::<Option<Slot<Box<str>, f32>>>()
        );
    }

    #[test]
    fn boundary_lengths() {
        check("", true);
        check("e123", true);
        check("p7Kq2xZ_a", true); // a Colyseus session id
        check(&"a".repeat(INLINE - 1), true);
        check(&"a".repeat(INLINE), true);
        check(&"a".repeat(INLINE + 1), false);
        check(&"a".repeat(300), false);
        assert_eq!(MapKey::default().as_str(), "");
    }

    #[test]
    fn multi_byte_utf8_at_the_boundary() {
        // The last character ends on the last inline byte.
        check(&format!("{}é", "a".repeat(INLINE - 2)), true);
        check(&format!("{}€", "a".repeat(INLINE - 3)), true);
        check(&format!("{}\u{10FFFF}", "a".repeat(INLINE - 4)), true);
        // One byte too many: the whole key on the heap.
        let over = format!("{}€", "a".repeat(INLINE - 2));
        assert_eq!(over.len(), INLINE + 1);
        check(&over, false);
        check(&format!("{}😀", "a".repeat(INLINE - 3)), false);
        check(&"é".repeat(INLINE / 2), true);
        check(&"é".repeat(INLINE / 2 + 1), false);
    }

    #[test]
    fn equality_and_hash_agree_across_forms() {
        let long = "k".repeat(INLINE + 1);
        let short = MapKey::from("ann");
        assert_ne!(short, MapKey::from(long.as_str()));
        assert_ne!(MapKey::from(""), MapKey::from("a".repeat(INLINE)));
        // A short key on the heap (never made by `From`) equals and hashes
        // as the inline one.
        let mut heap = EcoString::with_capacity(64);
        heap.push_str("ann");
        assert!(!heap.is_inline());
        let heap = MapKey(heap);
        assert_eq!(short, heap);
        assert_eq!(hash_of(&short), hash_of(&heap));
        // A long key, from `&str` and from a `String` with spare capacity.
        let mut spare = String::with_capacity(100);
        spare.push_str(&long);
        let (a, b) = (MapKey::from(long.as_str()), MapKey::from(spare));
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
    }

    #[test]
    fn take_leaves_the_empty_key() {
        let mut k = MapKey::from("x".repeat(40));
        let taken = std::mem::take(&mut k);
        assert_eq!(taken.as_str(), "x".repeat(40));
        assert_eq!(k.as_str(), "");
        assert!(k.0.is_inline());
    }
}
