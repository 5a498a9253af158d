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
//! Chosen by measurement against the `Box<str>` keys: callgrind
//! instructions at N = 1000, and wall time (2-core machine, alternate runs)
//! of `d3_profile typed` and `benches/compare.sh`:
//!
//! | | own enum, 24 B | `compact_str`, 24 B | `ecow`, 16 B |
//! | --- | ---: | ---: | ---: |
//! | D3 typed full-state decode, instructions | −5.5 % | −5.5 % | −4.9 % |
//! | D3 typed, wall, N = 1000 / 10,000 | — | −5 % / −4 % | −5 % / −7 % |
//! | S1 (`for_each_mut` + patch), instructions | **+66 %** | −0.8 % | 0 % |
//! | S1, wall, N = 1000 / 10,000 | **+63 % / +53 %** | **+5 % / +8 %** | −2 % / −5 % |
//! | S3 (`encode_all`), instructions | +1.2 % | +2.4 % | +0.9 % |
//! | S4 (churn, new keys), instructions | −0.9 % | −0.8 % | −1.0 % |
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

    /// Replaces the key by `s`, in place when both are short (see
    /// `MapSchema::insert_str`).
    #[inline]
    pub(crate) fn set(&mut self, s: &str) {
        if s.len() <= EcoString::INLINE_LIMIT && self.0.is_inline() {
            self.0.clear();
            self.0.push_str(s);
        } else {
            *self = Self::from(s);
        }
    }
}

impl From<&str> for MapKey {
    #[inline]
    fn from(s: &str) -> Self {
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

    /// Every way to make a key, checked against `s`.
    fn check(s: &str, inline: bool) {
        let mut set_empty = MapKey::default();
        set_empty.set(s);
        let mut set_short = MapKey::from("old");
        set_short.set(s);
        let mut set_long = MapKey::from("o".repeat(40).as_str());
        set_long.set(s);
        for k in [MapKey::from(s), set_empty, set_short, set_long] {
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
        assert_ne!(MapKey::from(""), MapKey::from("a".repeat(INLINE).as_str()));
        // A short key on the heap (never made by `From`) equals and hashes
        // as the inline one.
        let mut heap = EcoString::with_capacity(64);
        heap.push_str("ann");
        assert!(!heap.is_inline());
        let heap = MapKey(heap);
        assert_eq!(short, heap);
        assert_eq!(hash_of(&short), hash_of(&heap));
        // A long key made directly and set over a short one.
        let mut b = MapKey::from("ann");
        b.set(&long);
        let a = MapKey::from(long.as_str());
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
    }

    #[test]
    fn take_leaves_the_empty_key() {
        let mut k = MapKey::from("x".repeat(40).as_str());
        let taken = std::mem::take(&mut k);
        assert_eq!(taken.as_str(), "x".repeat(40));
        assert_eq!(k.as_str(), "");
        assert!(k.0.is_inline());
    }
}
