//! `ArraySchema`: a positional list (spec `schema-wire.md` §5).
//!
//! The change tracking reproduces the reference's (5.0.34) recording model,
//! so that a tick's ops are byte for byte what it sends:
//!
//! * a staged wire layout (`tmp`, the reference's `tmpItems`): the client's
//!   array as of the previous patch with this tick's removals kept as
//!   flagged slots (`deleted`) and inserts spliced in;
//! * an ordered op record per wire index (`Recorder`, its `collDirty` map)
//!   with the same merge rules, plus CLEAR/REVERSE placed by the record's
//!   size when they were made;
//! * elements carry a uid (the reference compares by JavaScript identity),
//!   and the values of removed elements are kept for the tick (`gone`), as
//!   the reference may still send or compare them.
//!
//! Before a block is sent, its ops are replayed on a model of the client's
//! decoder (spec §5.1; a 3.x client for the legacy dialect). Where the
//! reference's own client would end with a wrong array
//! (`reference-pitfalls.md`), the block is replaced by CLEAR and an ADD of
//! every element, which every decoder applies correctly.

use std::fmt;

use super::map::describe_collection;
use crate::encoder::{ArrayOp, ArrayScratch, Dialect, FullWriter, PatchWriter};
use crate::moved::Moved;
use crate::schema::{Describer, Field, FieldView};
use crate::tracked::{RefMeta, Tick, NO_SEQ};
use crate::types::{CollectionKind, NamedFieldType, Primitive};
use crate::wire::{self, spec};

const NONE: u32 = u32::MAX;
/// A value location (`ArrayOp.2`) naming a `gone` record, not a live item.
const GONE: u32 = 1 << 31;
/// A removed record entry (JavaScript's `Map.delete`).
const DEAD: u8 = 0xff;
/// Past this many record entries, lookups go through an index.
const INDEXED: usize = 32;
/// A refcount of an instance the client does not know.
const UNKNOWN: i32 = i32::MIN;

struct Item<V: Field> {
    value: V,
    track: V::Track,
    /// Identity of this element within the array (JavaScript identity).
    uid: u32,
}

/// A slot of the staged wire layout: the element's uid and refId.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Staged {
    uid: u32,
    refid: u32,
}

/// An empty slot (JavaScript `undefined` in `tmpItems`).
const HOLE: Staged = Staged {
    uid: NONE,
    refid: NONE,
};

/// An element removed this tick: what the client may still hold.
#[derive(Debug, Clone, Copy)]
struct Gone {
    uid: u32,
    refid: u32,
    nan: bool,
    zero: bool,
    /// Its encoded value in `gone_bytes`.
    start: u32,
    end: u32,
}

/// An element of the model of the client's array (see `client_agrees`):
/// the uid of the element it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientEl(u32);

#[derive(Debug, Clone, Copy)]
struct Entry {
    index: u32,
    op: u8,
}

/// The reference's per-collection op record (`ChangeTree.collDirty`, a
/// JavaScript `Map` from wire index to op, iterated in insertion order, and
/// `collPureOps`).
#[derive(Debug, Default)]
struct Recorder {
    entries: Vec<Entry>,
    /// Entries not removed.
    live: u32,
    /// Position in `entries` by wire index, once `entries` is long.
    at: Vec<u32>,
    indexed: bool,
    /// CLEAR / REVERSE with the record's size when they were made.
    pure: Vec<(u32, u8)>,
}

impl Recorder {
    fn find(&self, index: u32) -> Option<usize> {
        if self.indexed {
            return self
                .at
                .get(index as usize)
                .copied()
                .filter(|&p| p != NONE)
                .map(|p| p as usize);
        }
        self.entries
            .iter()
            .rposition(|e| e.index == index && e.op != DEAD)
    }

    fn get(&self, index: u32) -> Option<u8> {
        self.find(index).map(|p| self.entries[p].op)
    }

    fn has(&self) -> bool {
        self.live > 0 || !self.pure.is_empty()
    }

    /// `Map.set`: overwrites in place, or appends.
    fn set(&mut self, index: u32, op: u8) {
        if let Some(p) = self.find(index) {
            self.entries[p].op = op;
            return;
        }
        self.entries.push(Entry { index, op });
        self.live += 1;
        if self.indexed {
            self.index_one(self.entries.len() - 1);
        } else if self.entries.len() > INDEXED {
            self.reindex();
        }
    }

    /// `record`: a write merged with the op already there.
    fn record(&mut self, index: u32, op: u8) {
        let merged = match self.get(index) {
            None => op,
            Some(spec::DELETE) => spec::DELETE_AND_ADD,
            Some(spec::ADD) if op == spec::DELETE_AND_ADD => spec::DELETE_AND_ADD,
            Some(prev) => prev,
        };
        self.set(index, merged);
    }

    /// `Map.delete`.
    fn remove(&mut self, index: u32) {
        if let Some(p) = self.find(index) {
            self.entries[p].op = DEAD;
            self.live -= 1;
            if self.indexed {
                self.at[index as usize] = NONE;
            }
        }
    }

    fn index_one(&mut self, p: usize) {
        let i = self.entries[p].index as usize;
        if self.at.len() <= i {
            self.at.resize(i + 1, NONE);
        }
        self.at[i] = p as u32;
    }

    fn reindex(&mut self) {
        self.at.clear();
        self.indexed = self.entries.len() > INDEXED;
        if self.indexed {
            for p in 0..self.entries.len() {
                if self.entries[p].op != DEAD {
                    self.index_one(p);
                }
            }
        }
    }

    /// `insertAt`: entries below `at`, then ADDs of the new slots, then the
    /// entries at or above `at` moved up, each group in its order.
    fn insert_at(&mut self, at: u32, count: u32) {
        let old = std::mem::take(&mut self.entries);
        let live = old.iter().filter(|e| e.op != DEAD);
        self.entries
            .extend(live.clone().filter(|e| e.index < at).copied());
        self.entries.extend((at..at + count).map(|index| Entry {
            index,
            op: spec::ADD,
        }));
        self.entries
            .extend(live.filter(|e| e.index >= at).map(|e| Entry {
                index: e.index + count,
                op: e.op,
            }));
        self.live = self.entries.len() as u32;
        self.reindex();
    }

    /// `removeAt`: drops the entries of `[at, at + count)`, moving the ones
    /// above down.
    fn remove_at(&mut self, at: u32, count: u32) {
        let end = at + count;
        if !self.entries.iter().any(|e| e.op != DEAD && e.index >= end) {
            for i in at..end {
                self.remove(i);
            }
            return;
        }
        let old = std::mem::take(&mut self.entries);
        self.entries.extend(old.iter().filter_map(|e| match e.op {
            DEAD => None,
            _ if e.index < at => Some(*e),
            _ if e.index >= end => Some(Entry {
                index: e.index - count,
                op: e.op,
            }),
            _ => None,
        }));
        self.live = self.entries.len() as u32;
        self.reindex();
    }

    fn pure(&mut self, op: u8) {
        self.pure.push((self.live, op));
    }

    fn reset(&mut self) {
        self.entries.clear();
        self.live = 0;
        self.pure.clear();
        if self.indexed {
            self.at.clear();
            self.indexed = false;
        }
    }
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
    items: Vec<Item<V>>,
    /// The staged wire layout (`tmpItems`).
    tmp: Vec<Staged>,
    /// Staged slots removed this tick (`deletedIndexes`; its length matters).
    deleted: Vec<bool>,
    rec: Recorder,
    gone: Vec<Gone>,
    gone_bytes: Vec<u8>,
    /// Length of the client's array at the previous patch (it holds the
    /// elements of uid `0..snapshot_len` in that order).
    snapshot_len: u32,
    next_uid: u32,
    /// The staged layout could not be followed (a sort over staged
    /// removals): the block is sent as CLEAR + re-ADD.
    unfaithful: bool,
    /// Detached with changes a client holding it has not had (see
    /// `__detach`).
    resend: bool,
    /// Some child element may hold changes.
    children_dirty: bool,
}

impl<V: Field> Default for ArraySchema<V> {
    fn default() -> Self {
        Self {
            meta: RefMeta::default(),
            items: Vec::new(),
            tmp: Vec::new(),
            deleted: Vec::new(),
            rec: Recorder::default(),
            gone: Vec::new(),
            gone_bytes: Vec::new(),
            snapshot_len: 0,
            next_uid: 0,
            unfaithful: false,
            resend: false,
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
        self.items.len()
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &V> + '_ {
        self.items.iter().map(|i| &i.value)
    }

    /// The element at `index`.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&V> {
        self.items.get(index).map(|i| &i.value)
    }

    /// Appends while building an untracked array.
    pub fn push(&mut self, value: V) {
        let item = self.new_item(value);
        self.push_item(item);
    }

    /// Replaces the elements in `range` (within the array) by `values`,
    /// recording no change: for the typed decoder's arrays, which are
    /// never encoded (their elements need no identity: uid 0). Returns
    /// the elements removed.
    pub(crate) fn splice_untracked(
        &mut self,
        range: std::ops::Range<usize>,
        values: impl IntoIterator<Item = V>,
    ) -> Vec<V> {
        let new = values.into_iter().map(|value| Item {
            value,
            track: V::Track::default(),
            uid: 0,
        });
        self.items.splice(range, new).map(|i| i.value).collect()
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

    fn staged(item: &Item<V>) -> Staged {
        Staged {
            uid: item.uid,
            refid: item.value.__ref_id(&item.track).unwrap_or(NONE),
        }
    }

    /// `push`: an ADD at the end of the staged layout.
    fn push_item(&mut self, item: Item<V>) {
        self.rec.set(self.tmp.len() as u32, spec::ADD);
        self.tmp.push(Self::staged(&item));
        self.items.push(item);
    }

    fn is_deleted(&self, i: u32) -> bool {
        self.deleted.get(i as usize) == Some(&true)
    }

    fn set_deleted(&mut self, i: u32, v: bool) {
        let i = i as usize;
        if self.deleted.len() <= i {
            self.deleted.resize(i + 1, false);
        }
        self.deleted[i] = v;
    }

    fn set_tmp(&mut self, i: u32, s: Staged) {
        let i = i as usize;
        if self.tmp.len() <= i {
            self.tmp.resize(i + 1, HOLE);
        }
        self.tmp[i] = s;
    }

    /// `$wireIndex`: the staged slot of the element at `index`.
    fn wire_index(&self, index: usize) -> u32 {
        if self.deleted.is_empty() {
            return index as u32;
        }
        let mut live = 0;
        for i in 0..self.tmp.len() {
            if !self.is_deleted(i as u32) {
                if live == index {
                    return i as u32;
                }
                live += 1;
            }
        }
        (self.tmp.len() + (index - live)) as u32
    }

    /// `$isUnsentAdd`: a ref slot added this tick, erased when removed.
    fn is_unsent_add(&self, at: u32, is_ref: bool) -> bool {
        is_ref && self.rec.get(at) == Some(spec::ADD)
    }

    /// The removal of staged slot `at` (`pop`, `shift`): a DELETE is
    /// recorded, then an unsent ref ADD is cancelled, else the slot is
    /// marked deleted.
    fn remove_staged(&mut self, at: u32, is_ref: bool) {
        let cancel = self.is_unsent_add(at, is_ref);
        self.rec.set(at, spec::DELETE);
        if cancel {
            self.cancel_add(at);
        } else {
            self.set_deleted(at, true);
        }
    }

    /// `$cancelAdd`: the slot never existed.
    fn cancel_add(&mut self, at: u32) {
        let a = at as usize;
        if a < self.tmp.len() {
            self.tmp.remove(a);
        }
        if a < self.deleted.len() {
            self.deleted.remove(a);
        }
        self.rec.remove_at(at, 1);
    }

    /// Keeps what the client may still hold of a removed element.
    fn bury(&mut self, item: &Item<V>) {
        let start = self.gone_bytes.len() as u32;
        item.value
            .__encode(&item.track, V::DEFAULT_WIRE, &mut self.gone_bytes);
        self.gone.push(Gone {
            uid: item.uid,
            refid: item.value.__ref_id(&item.track).unwrap_or(NONE),
            nan: !item.value.__same(&item.value),
            zero: item.value.__is_zero(),
            start,
            end: self.gone_bytes.len() as u32,
        });
    }

    /// Whether the elements are refs.
    fn holds_refs(&self) -> bool {
        match (self.items.first(), self.gone.first()) {
            (Some(i), _) => i.value.__is_ref(),
            (None, Some(g)) => g.refid != NONE,
            (None, None) => self.tmp.iter().any(|s| s.refid != NONE) || V::DEFAULT_WIRE.is_none(),
        }
    }

    // ----- encoding ---------------------------------------------------

    /// The element the reference writes for wire index `index`
    /// (`$getByIndex`): the live element there if the slot was removed,
    /// else the staged one.
    fn value_uid(&self, index: u32) -> Option<u32> {
        let live = || self.items.get(index as usize).map(|i| i.uid);
        if self.is_deleted(index) {
            return live();
        }
        match self.tmp.get(index as usize) {
            Some(s) if s.uid != NONE => Some(s.uid),
            _ => live(),
        }
    }

    /// Fills `loc` (by uid: item position, `GONE | record`, or NONE).
    fn locate(&self, loc: &mut Vec<u32>) {
        loc.clear();
        loc.resize(self.next_uid as usize, NONE);
        for (p, it) in self.items.iter().enumerate() {
            loc[it.uid as usize] = p as u32;
        }
        for (g, gone) in self.gone.iter().enumerate() {
            if let Some(l) = loc.get_mut(gone.uid as usize) {
                if *l == NONE {
                    *l = GONE | g as u32;
                }
            }
        }
    }

    /// The tick's ops as the reference writes them: `(op, wire index or
    /// refId, value location)`. `false` if one cannot be written.
    fn resolve(
        &self,
        dialect: Dialect,
        ops: &mut Vec<ArrayOp>,
        loc: &[u32],
        buf: &mut Vec<u8>,
    ) -> bool {
        ops.clear();
        let refs = self.holds_refs();
        let pure = &self.rec.pure;
        let mut next_pure = 0;
        let mut n = 0;
        for e in &self.rec.entries {
            if e.op == DEAD {
                continue;
            }
            while next_pure < pure.len() && pure[next_pure].0 <= n {
                ops.push((pure[next_pure].1, 0, NONE));
                next_pure += 1;
            }
            n += 1;
            if e.op == spec::DELETE {
                if !refs {
                    ops.push((spec::DELETE, e.index, NONE));
                    continue;
                }
                // By identity: the staged element's refId.
                match self.tmp.get(e.index as usize) {
                    Some(s) if s.uid != NONE => match dialect {
                        Dialect::Modern => ops.push((spec::DELETE_BY_REFID, s.refid, NONE)),
                        Dialect::Legacy => ops.push((spec::DELETE, e.index, NONE)),
                    },
                    _ => {}
                }
                continue;
            }
            let Some(mut uid) = self.value_uid(e.index) else {
                return false;
            };
            let live = self.items.get(e.index as usize).map(|i| i.uid);
            if live != Some(uid) && !self.is_deleted(e.index) {
                // `tmpItems[i] || items[i]`: a falsy staged value is
                // passed over.
                let l = loc[uid as usize];
                if l == NONE {
                    return false;
                }
                if self.is_falsy(l, buf) {
                    // Else `undefined`, written as the falsy value itself
                    // is (`0`, `false`, `""`; the fixed-width floats write
                    // NaN, which their client would keep: the value sent
                    // here is the right one).
                    if let Some(live) = live {
                        uid = live;
                    }
                }
            }
            let l = loc[uid as usize];
            if l == NONE {
                return false;
            }
            ops.push((e.op, e.index, l));
        }
        for &(_, op) in &pure[next_pure..] {
            ops.push((op, 0, NONE));
        }
        true
    }

    /// Whether the primitive at location `l` is falsy in JavaScript (`0`,
    /// `-0`, `NaN`, `false`, `""`, `0n`), as far as its encoding tells.
    fn is_falsy(&self, l: u32, buf: &mut Vec<u8>) -> bool {
        if self.loc_info(l).2 {
            return false;
        }
        let (nan, zero) = self.loc_flags(l);
        if nan || zero {
            return true;
        }
        buf.clear();
        self.write_value(l, buf);
        let empty_str =
            buf[..] == [0xa0] && matches!(V::DEFAULT_WIRE, None | Some(Primitive::String));
        empty_str || buf.iter().all(|&b| b == 0)
    }

    /// Writes the value at location `l`.
    fn write_value(&self, l: u32, out: &mut Vec<u8>) {
        if l & GONE != 0 && l != NONE {
            let g = &self.gone[(l & !GONE) as usize];
            out.extend_from_slice(&self.gone_bytes[g.start as usize..g.end as usize]);
        } else {
            let item = &self.items[l as usize];
            item.value.__encode(&item.track, V::DEFAULT_WIRE, out);
        }
    }

    /// `(uid, refId, is a ref)` of the value at location `l`.
    fn loc_info(&self, l: u32) -> (u32, u32, bool) {
        if l & GONE != 0 {
            let g = &self.gone[(l & !GONE) as usize];
            (g.uid, g.refid, g.refid != NONE)
        } else {
            let i = &self.items[l as usize];
            let refid = i.value.__ref_id(&i.track).unwrap_or(NONE);
            (i.uid, refid, i.value.__is_ref())
        }
    }

    /// `(NaN, ±0)` of the primitive at location `l`.
    fn loc_flags(&self, l: u32) -> (bool, bool) {
        if l & GONE != 0 {
            let g = &self.gone[(l & !GONE) as usize];
            (g.nan, g.zero)
        } else {
            let v = &self.items[l as usize].value;
            (!v.__same(v), v.__is_zero())
        }
    }

    /// Whether the client sees the values of uids `a` and `b` as equal:
    /// JavaScript `===` of what it decoded (`exact`: the same bytes), or
    /// `None` when a value is unknown.
    fn client_eq(
        &self,
        a: u32,
        b: u32,
        loc: &[u32],
        buf: &mut Vec<u8>,
        exact: bool,
    ) -> Option<bool> {
        if a == b {
            return Some(true);
        }
        let la = *loc.get(a as usize)?;
        let lb = *loc.get(b as usize)?;
        if la == NONE || lb == NONE {
            return None;
        }
        let (_, _, ra) = self.loc_info(la);
        let (_, _, rb) = self.loc_info(lb);
        if ra || rb {
            return Some(false);
        }
        if !exact {
            let (na, za) = self.loc_flags(la);
            let (nb, zb) = self.loc_flags(lb);
            if na || nb {
                return Some(false);
            }
            if za && zb {
                return Some(true);
            }
        }
        buf.clear();
        self.write_value(la, buf);
        let mid = buf.len();
        self.write_value(lb, buf);
        let (a, b) = buf.split_at(mid);
        Some(a == b || (!exact && number_eq(a, b)))
    }

    /// Replays `ops` on a model of the client's decoder (spec §5.1; a 3.x
    /// client inserts only at index 0) from its array as of the previous
    /// patch, and checks that it ends with this array.
    fn client_agrees(
        &self,
        dialect: Dialect,
        ops: &[ArrayOp],
        loc: &[u32],
        client: &mut Vec<Option<ClientEl>>,
        buf: &mut Vec<u8>,
        counts: &mut Vec<i32>,
    ) -> bool {
        client.clear();
        if !self.meta.fresh {
            client.extend((0..self.snapshot_len).map(|u| Some(ClientEl(u))));
        }
        // Refcounts of ref elements (`UNKNOWN`: a refId the client has not
        // seen), which the decoder keeps per op and collects at the end.
        let refs = self.holds_refs();
        counts.clear();
        if refs {
            counts.resize(self.next_uid as usize, UNKNOWN);
            for c in client.iter().flatten() {
                counts[c.0 as usize] = 1;
            }
        }
        let inc = |counts: &mut Vec<i32>, u: u32| {
            if let Some(c) = counts.get_mut(u as usize) {
                *c = if *c == UNKNOWN { 1 } else { *c + 1 };
            }
        };
        // `false`: the decoder warns of a refcount going below zero.
        let dec = |counts: &mut Vec<i32>, u: u32| match counts.get_mut(u as usize) {
            Some(c) if *c != UNKNOWN => {
                *c -= 1;
                *c >= 0
            }
            _ => true,
        };
        // A 3.x client keeps its pre-tick copy for refcounts and equality
        // checks while applying ops to the shifted array: after an insert,
        // no positional op is safe for it.
        let legacy = dialect == Dialect::Legacy;
        let mut legacy_inserted = false;
        for &(op, arg, l) in ops {
            if legacy_inserted {
                return false;
            }
            let i = arg as usize;
            match op {
                spec::CLEAR => {
                    if refs && !client.iter().flatten().all(|c| dec(counts, c.0)) {
                        return false;
                    }
                    client.clear();
                }
                spec::REVERSE => client.reverse(),
                spec::DELETE_BY_REFID => {
                    let uid = loc.iter().enumerate().find_map(|(u, &l)| {
                        (l != NONE && self.loc_info(l).1 == arg).then_some(u as u32)
                    });
                    let Some(uid) = uid else { continue };
                    if !dec(counts, uid) {
                        return false;
                    }
                    if let Some(p) = client.iter().position(|c| *c == Some(ClientEl(uid))) {
                        client[p] = None;
                    }
                }
                spec::DELETE => {
                    if let Some(c) = client.get_mut(i) {
                        if let Some(p) = c.take() {
                            if refs && !dec(counts, p.0) {
                                return false;
                            }
                        }
                    }
                }
                _ => {
                    let (uid, _, is_ref) = self.loc_info(l);
                    let prev = client.get(i).copied().flatten();
                    let same = match prev {
                        Some(p) => match self.client_eq(p.0, uid, loc, buf, false) {
                            Some(s) => s,
                            None => return false,
                        },
                        None => false,
                    };
                    if legacy {
                        // 3.x compares with its pre-tick element there.
                        let pre = (arg < self.snapshot_len && !self.meta.fresh).then_some(arg);
                        let pre_same = match pre {
                            Some(p) => self.client_eq(p, uid, loc, buf, false),
                            None => Some(false),
                        };
                        if pre_same != Some(same) {
                            return false;
                        }
                    }
                    if is_ref {
                        if op == spec::REPLACE {
                            // Resolved by refId, without counting: only
                            // for an instance the client holds.
                            if counts.get(uid as usize).is_none_or(|&c| c <= 0) {
                                return false;
                            }
                        } else {
                            if op == spec::DELETE_AND_ADD {
                                if let Some(p) = prev {
                                    if !dec(counts, p.0) {
                                        return false;
                                    }
                                }
                            }
                            if !same || op == spec::DELETE_AND_ADD {
                                inc(counts, uid);
                            }
                        }
                    }
                    if same {
                        continue;
                    }
                    let v = Some(ClientEl(uid));
                    if op == spec::ADD && prev.is_some() {
                        if legacy && i != 0 {
                            // 3.x overwrites here without releasing the old
                            // element: a leaked ref whose refId may be reused.
                            if is_ref {
                                return false;
                            }
                            client[i] = v;
                        } else {
                            legacy_inserted = legacy;
                            client.insert(i, v);
                        }
                    } else {
                        if client.len() <= i {
                            client.resize(i + 1, None);
                        }
                        client[i] = v;
                    }
                }
            }
        }
        if refs {
            // Each element held once; the others collected.
            for c in client.iter().flatten() {
                if counts[c.0 as usize] != 1 {
                    return false;
                }
                counts[c.0 as usize] = 0;
            }
            if counts.iter().any(|&c| c > 0) {
                return false;
            }
        }
        let mut ours = self.items.iter();
        for c in client.iter().flatten() {
            match ours.next() {
                // The same element (the common case, checked inline: this
                // loop runs over the whole array every tick it changes).
                Some(item) if item.uid == c.0 => {}
                Some(item) if self.client_eq(c.0, item.uid, loc, buf, true) == Some(true) => {}
                _ => return false,
            }
        }
        ours.next().is_none()
    }

    /// An ADD of every element at its position.
    fn write_all(&self, out: &mut Vec<u8>) {
        for (i, item) in self.items.iter().enumerate() {
            out.push(spec::ADD);
            wire::encode_varint(out, i as u32);
            item.value.__encode(&item.track, V::DEFAULT_WIRE, out);
        }
    }

    fn write_resolved(&self, ops: &[ArrayOp], out: &mut Vec<u8>) {
        for &(op, arg, l) in ops {
            out.push(op);
            match op {
                spec::CLEAR | spec::REVERSE => {}
                spec::DELETE | spec::DELETE_BY_REFID => wire::encode_varint(out, arg),
                _ => {
                    wire::encode_varint(out, arg);
                    match self.loc_info(l) {
                        // A REPLACE names an instance by refId alone (no
                        // TYPE_ID: the decoder reads one only with an ADD).
                        (_, refid, true) if op == spec::REPLACE => {
                            wire::encode_varint(out, refid);
                        }
                        _ => self.write_value(l, out),
                    }
                }
            }
        }
    }

    /// Writes the block's ops for `dialect` (does not settle).
    fn write_ops(&self, dialect: Dialect, out: &mut Vec<u8>, scratch: &mut ArrayScratch) {
        let ArrayScratch {
            ops,
            loc,
            client,
            value,
            counts,
        } = scratch;
        self.locate(loc);
        let ok = !self.unfaithful
            && self.resolve(dialect, ops, loc, value)
            && self.client_agrees(dialect, ops, loc, client, value, counts);
        if ok {
            self.write_resolved(ops, out);
        } else {
            // Anything the client would misapply: start over.
            out.push(spec::CLEAR);
            self.write_all(out);
        }
    }

    /// View support: writes this tick's ops for `dialect` (what the shared
    /// patch sends) for a client whose copy as of the previous patch has
    /// `held_len` elements, `held(i)` at position `i`. Returns `false`
    /// (nothing written) when that is not the array's previous state as far
    /// as the array knows it.
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
        let ArrayScratch { loc, value, .. } = &mut *scratch;
        self.locate(loc);
        for uid in 0..self.snapshot_len {
            let l = loc[uid as usize];
            if l == NONE {
                // Removed by a CLEAR: its value no longer matters.
                continue;
            }
            value.clear();
            self.write_value(l, value);
            if held(uid) != Some(value.as_slice()) {
                return false;
            }
        }
        self.write_ops(dialect, out, scratch);
        true
    }

    /// View support: writes this tick's ops when re-applying them to a
    /// client that already holds the current array changes nothing (each
    /// writes, where it is, the value already there, which the decoder
    /// skips as `===`). The reference sends them after the snapshot of an
    /// array shown in the same tick. Returns whether it did.
    fn idempotent_ops(&self, out: &mut Vec<u8>, scratch: &mut ArrayScratch) -> bool {
        if self.meta.seq == NO_SEQ
            || self.meta.fresh
            || self.unfaithful
            || !self.rec.pure.is_empty()
            || self.holds_refs()
        {
            return false;
        }
        let ArrayScratch {
            ops, loc, value, ..
        } = scratch;
        self.locate(loc);
        if !self.resolve(Dialect::Modern, ops, loc, value) || ops.is_empty() {
            return false;
        }
        let ok = ops.iter().all(|&(op, arg, l)| {
            matches!(op, spec::ADD | spec::REPLACE | spec::DELETE_AND_ADD)
                && self.items.get(arg as usize).is_some_and(|cur| {
                    let uid = self.loc_info(l).0;
                    self.client_eq(cur.uid, uid, loc, value, false) == Some(true)
                        && self.client_eq(cur.uid, uid, loc, value, true) == Some(true)
                })
        });
        if ok {
            self.write_resolved(ops, out);
        }
        ok
    }

    /// Forgets the tick: the current array becomes the client's.
    fn settle(&mut self) {
        self.tmp.clear();
        self.deleted.clear();
        self.rec.reset();
        self.gone.clear();
        self.gone_bytes.clear();
        self.unfaithful = false;
        for (i, item) in self.items.iter_mut().enumerate() {
            item.uid = i as u32;
        }
        let staged = self.items.iter().map(Self::staged);
        self.tmp.extend(staged);
        self.next_uid = self.items.len() as u32;
        self.snapshot_len = self.items.len() as u32;
        self.meta.settle();
    }
}

/// Whether `a` and `b` are both a `number` that decodes to the same
/// JavaScript number (a float32 `1e-300` is `0`).
fn number_eq(a: &[u8], b: &[u8]) -> bool {
    let number = |x: &[u8]| {
        let mut r = wire::Reader::new(x);
        r.decode_number().ok().filter(|_| r.is_empty())
    };
    #[allow(clippy::float_cmp, reason = "JavaScript `===` semantics")]
    let same = matches!((number(a), number(b)), (Some(x), Some(y)) if x == y);
    same
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
        let item = self.arr.items.get_mut(index)?;
        self.arr.children_dirty = true;
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

    fn attach_new(&mut self, value: Moved<V>) -> Item<V> {
        // The array's op comes before the new child's block.
        self.arr.meta.touch(self.tick);
        let (value, track) = value.attach(self.tick);
        let mut item = self.arr.new_item(value);
        item.track = track;
        self.arr.children_dirty = true;
        item
    }

    /// Takes a removed element out: its value is kept for the tick, its
    /// subtree released.
    fn release(&mut self, mut item: Item<V>) -> Moved<V> {
        self.arr.bury(&item);
        let departed = &mut self.tick.views.departed;
        departed.from(self.arr.meta.id(), crate::view::KEY_SELF);
        item.value.__detach(&mut item.track, self.tick);
        self.tick.views.departed.done();
        Moved::taken(item.value, item.track, self.tick)
    }

    /// Appends a value.
    pub fn push(&mut self, value: V) {
        self.push_moved(Moved::new(value));
    }

    /// [`push`](Self::push) of a value taken out of this state with its
    /// identity (see [`Moved`]).
    pub fn push_moved(&mut self, value: Moved<V>) {
        let item = self.attach_new(value);
        self.arr.push_item(item);
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> Option<V> {
        self.take_last().map(Moved::into_inner)
    }

    /// [`pop`](Self::pop), returning the element with its identity, to be
    /// placed elsewhere in this state (see [`Moved`]).
    pub fn take_last(&mut self) -> Option<Moved<V>> {
        let arr = &mut *self.arr;
        let is_ref = arr.items.last()?.value.__is_ref();
        arr.meta.touch(self.tick);
        match (0..arr.tmp.len() as u32)
            .rev()
            .find(|&i| !arr.is_deleted(i))
        {
            Some(index) => arr.remove_staged(index, is_ref),
            None => arr.unfaithful = true,
        }
        let item = self.arr.items.pop()?;
        Some(self.release(item))
    }

    /// Removes and returns the first element.
    pub fn shift(&mut self) -> Option<V> {
        self.take_first().map(Moved::into_inner)
    }

    /// [`shift`](Self::shift), returning the element with its identity, to
    /// be placed elsewhere in this state (see [`Moved`]).
    pub fn take_first(&mut self) -> Option<Moved<V>> {
        let arr = &mut *self.arr;
        let is_ref = arr.items.first()?.value.__is_ref();
        arr.meta.touch(self.tick);
        let mut index = 0;
        while arr.is_deleted(index) {
            index += 1;
        }
        arr.remove_staged(index, is_ref);
        let item = self.arr.items.remove(0);
        Some(self.release(item))
    }

    /// Inserts a value at the front (JavaScript `unshift`).
    pub fn unshift(&mut self, value: V) {
        self.insert(0, value);
    }

    /// Inserts a value at `index`, shifting later elements, as JavaScript's
    /// `unshift` inserts its values: right after the element before it, so
    /// that `insert(0, a); insert(1, b)` is `unshift(a, b)` (for an insert
    /// placed as `splice` places it, use [`splice`](Self::splice)).
    ///
    /// # Panics
    ///
    /// If `index > len`.
    pub fn insert(&mut self, index: usize, value: V) {
        self.insert_moved(index, Moved::new(value));
    }

    /// [`insert`](Self::insert) of a value taken out of this state with its
    /// identity (see [`Moved`]).
    ///
    /// # Panics
    ///
    /// If `index > len`.
    pub fn insert_moved(&mut self, index: usize, value: Moved<V>) {
        assert!(
            index <= self.arr.len(),
            "insert index {index} out of bounds"
        );
        let at = match index {
            0 => 0,
            _ => self.arr.wire_index(index - 1) + 1,
        };
        let item = self.attach_new(value);
        let arr = &mut *self.arr;
        arr.rec.insert_at(at, 1);
        if !arr.deleted.is_empty() {
            let d = (at as usize).min(arr.deleted.len());
            arr.deleted.insert(d, false);
        }
        let t = (at as usize).min(arr.tmp.len());
        arr.tmp.insert(t, ArraySchema::staged(&item));
        arr.items.insert(index, item);
    }

    /// Removes and returns the element at `index` (`splice(index, 1)`).
    ///
    /// # Panics
    ///
    /// If `index >= len`.
    pub fn remove(&mut self, index: usize) -> V {
        self.take(index).into_inner()
    }

    /// [`remove`](Self::remove), returning the element with its identity,
    /// to be placed elsewhere in this state (see [`Moved`]).
    ///
    /// # Panics
    ///
    /// If `index >= len`.
    pub fn take(&mut self, index: usize) -> Moved<V> {
        assert!(index < self.arr.len(), "remove index out of bounds");
        self.splice_moved(index, 1, [])
            .pop()
            .expect("one element removed")
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
        self.splice_moved(start, delete_count, values.into_iter().map(Moved::new))
            .into_iter()
            .map(Moved::into_inner)
            .collect()
    }

    /// [`splice`](Self::splice) of values that may have been taken out of
    /// this state with their identity, returning the removed elements with
    /// theirs (see [`Moved`]).
    ///
    /// # Panics
    ///
    /// If `start > len`.
    pub fn splice_moved(
        &mut self,
        start: usize,
        delete_count: usize,
        values: impl IntoIterator<Item = Moved<V>>,
    ) -> Vec<Moved<V>> {
        let items_len = self.arr.len();
        assert!(start <= items_len, "splice start {start} out of bounds");
        let count = delete_count.min(items_len - start);
        self.arr.meta.touch(self.tick);
        let arr = &mut *self.arr;
        // Live staged slots, in order.
        let indexes: Vec<u32> = (0..arr.tmp.len() as u32)
            .filter(|&i| !arr.is_deleted(i))
            .collect();
        let mut unsent: Vec<u32> = Vec::new();
        if count > 0 {
            let is_ref = arr.items[start].value.__is_ref();
            for i in start..start + count {
                let Some(&index) = indexes.get(i) else {
                    arr.unfaithful = true;
                    continue;
                };
                let cancel = arr.is_unsent_add(index, is_ref);
                arr.rec.set(index, spec::DELETE);
                if cancel {
                    unsent.push(index);
                } else {
                    arr.set_deleted(index, true);
                }
            }
        }
        let removed: Vec<Item<V>> = arr.items.drain(start..start + count).collect();
        let removed: Vec<Moved<V>> = removed.into_iter().map(|i| self.release(i)).collect();
        let new: Vec<Item<V>> = values.into_iter().map(|v| self.attach_new(v)).collect();
        let arr = &mut *self.arr;
        if !new.is_empty() {
            let base = indexes.get(start).copied().unwrap_or(items_len as u32);
            let reuse = new.len().min(count);
            for (i, item) in new[..reuse].iter().enumerate() {
                let add = base + i as u32;
                let op = if let Some(u) = unsent.iter().position(|&x| x == add) {
                    unsent.remove(u);
                    spec::ADD
                } else if arr.is_deleted(add) {
                    spec::DELETE_AND_ADD
                } else {
                    spec::ADD
                };
                arr.rec.set(add, op);
                arr.set_tmp(add, ArraySchema::staged(item));
                arr.set_deleted(add, false);
            }
            let extra = (new.len() - reuse) as u32;
            if extra > 0 {
                let at = base + reuse as u32;
                arr.rec.insert_at(at, extra);
                if !arr.deleted.is_empty() {
                    let d = (at as usize).min(arr.deleted.len());
                    arr.deleted
                        .splice(d..d, std::iter::repeat_n(false, extra as usize));
                }
                let t = (at as usize).min(arr.tmp.len());
                let staged: Vec<Staged> = new[reuse..].iter().map(ArraySchema::staged).collect();
                arr.tmp.splice(t..t, staged);
            }
        }
        for &u in unsent.iter().rev() {
            arr.cancel_add(u);
        }
        arr.items.splice(start..start, new);
        removed
    }

    /// Replaces the element at `index`; returns the previous one. A
    /// primitive equal to the current one changes nothing.
    ///
    /// # Panics
    ///
    /// If `index >= len`.
    pub fn set(&mut self, index: usize, value: V) -> V {
        self.set_moved(index, Moved::new(value)).into_inner()
    }

    /// [`set`](Self::set) of a value taken out of this state with its
    /// identity, returning the previous element with its own (see
    /// [`Moved`]).
    ///
    /// # Panics
    ///
    /// If `index >= len`.
    pub fn set_moved(&mut self, index: usize, value: Moved<V>) -> Moved<V> {
        assert!(index < self.arr.len(), "set index out of bounds");
        let is_ref = value.get().__is_ref();
        if !is_ref && self.arr.items[index].value.__same(value.get()) {
            return value;
        }
        let wire = self.arr.wire_index(index);
        let item = if is_ref {
            self.attach_new(value)
        } else {
            self.arr.meta.touch(self.tick);
            self.arr.new_item(value.into_inner())
        };
        let arr = &mut *self.arr;
        let op = if is_ref {
            spec::DELETE_AND_ADD
        } else {
            spec::REPLACE
        };
        arr.rec.record(wire, op);
        arr.set_tmp(wire, ArraySchema::staged(&item));
        let old = std::mem::replace(&mut arr.items[index], item);
        self.release(old)
    }

    /// Removes every element (a CLEAR; nothing on an empty array).
    pub fn clear(&mut self) {
        if self.arr.items.is_empty() {
            return;
        }
        let id = self.arr.meta.id();
        for item in &mut self.arr.items {
            self.tick.views.departed.from(id, crate::view::KEY_SELF);
            item.value.__detach(&mut item.track, self.tick);
        }
        self.tick.views.departed.done();
        let arr = &mut *self.arr;
        arr.items.clear();
        arr.tmp.clear();
        arr.deleted.clear();
        arr.rec.reset();
        arr.rec.pure(spec::CLEAR);
        arr.unfaithful = false;
        arr.meta.touch(self.tick);
    }

    /// Reverses the order: a REVERSE op, or, after other changes in the
    /// tick, a CLEAR and an ADD of every element (as the reference).
    pub fn reverse(&mut self) {
        let arr = &mut *self.arr;
        arr.meta.touch(self.tick);
        if arr.rec.has() || !arr.deleted.is_empty() {
            if arr.items.is_empty() {
                return;
            }
            arr.items.reverse();
            arr.tmp.clear();
            arr.deleted.clear();
            arr.rec.reset();
            arr.rec.pure(spec::CLEAR);
            arr.unfaithful = false;
            for i in 0..arr.items.len() {
                arr.rec.set(i as u32, spec::ADD);
                let s = ArraySchema::staged(&arr.items[i]);
                arr.tmp.push(s);
            }
            // The reference re-sends every element in full after the
            // CLEAR (blocks in the new order, each element's subtree after
            // it), under the same refIds: the new ones too, whose blocks
            // move to their new place. Each node of those subtrees keeps
            // the ops it recorded this tick, its present fields added.
            if V::DEFAULT_WIRE.is_none() {
                self.tick.refresh(|tick| {
                    for item in &mut arr.items {
                        item.value.__attach(&mut item.track, tick);
                    }
                });
                arr.children_dirty = true;
            }
            return;
        }
        arr.rec.pure(spec::REVERSE);
        arr.items.reverse();
        arr.tmp.reverse();
    }

    /// Sorts the elements with `cmp` (every position is rewritten).
    pub fn sort_by(&mut self, mut cmp: impl FnMut(&V, &V) -> std::cmp::Ordering) {
        let arr = &mut *self.arr;
        if arr.items.is_empty() {
            return;
        }
        arr.meta.touch(self.tick);
        // The reference sorts its staged layout too: followed only when it
        // is the array itself.
        let staged_is_items = arr.tmp.len() == arr.items.len()
            && arr.tmp.iter().zip(&arr.items).all(|(s, i)| s.uid == i.uid);
        arr.items.sort_by(|a, b| cmp(&a.value, &b.value));
        for i in 0..arr.items.len() {
            arr.rec.record(i as u32, spec::REPLACE);
        }
        if staged_is_items {
            for (s, i) in arr.tmp.iter_mut().zip(&arr.items) {
                *s = ArraySchema::staged(i);
            }
        } else {
            arr.unfaithful = true;
        }
    }
}

impl<V: FieldView> ArrayMut<'_, V> {
    /// The view of the instance at `index`.
    pub fn get_mut(&mut self, index: usize) -> Option<V::View<'_>> {
        let item = self.arr.items.get_mut(index)?;
        self.arr.children_dirty = true;
        Some(FieldView::__view_of(
            &mut item.value,
            &mut item.track,
            self.tick,
        ))
    }

    /// Calls `f` with the view of every instance, in order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(V::View<'_>)) {
        self.arr.children_dirty = true;
        for item in &mut self.arr.items {
            f(FieldView::__view_of(
                &mut item.value,
                &mut item.track,
                self.tick,
            ));
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
        if self.meta.attach(tick) == crate::tracked::Back::SameTick && self.resend {
            // Back under its refId with changes a client holding it has
            // not had: the whole array again.
            self.unfaithful = true;
        }
        self.resend = false;
        for item in &mut self.items {
            item.value.__attach(&mut item.track, tick);
        }
        // The staged refIds are the ones just given.
        if self.tmp.len() == self.items.len()
            && self
                .tmp
                .iter()
                .zip(&self.items)
                .all(|(s, i)| s.uid == i.uid)
        {
            for (s, i) in self.tmp.iter_mut().zip(&self.items) {
                *s = Self::staged(i);
            }
        } else {
            self.unfaithful = true;
        }
        self.children_dirty = true;
    }

    fn __detach(&mut self, _: &mut (), tick: &mut Tick) {
        // Re-attached, it is a new array to the client: what it holds is
        // recorded as added, as by the constructor. (Settled first: the
        // detached meta keeps its refId where the tick's order was.) Put
        // back under its refId (a `Moved` value), a client may still hold
        // it: if it changed since the last patch, it goes whole again.
        let resend = self.meta.seq != NO_SEQ && !self.meta.fresh;
        self.settle();
        self.resend = resend;
        self.snapshot_len = 0;
        for i in 0..self.items.len() as u32 {
            self.rec.set(i, spec::ADD);
        }
        let id = self.meta.id();
        self.meta.detach(tick);
        tick.views
            .departed
            .collection(id, crate::view::NodeKind::Array);
        for item in &mut self.items {
            tick.views.departed.from(id, crate::view::KEY_SELF);
            item.value.__detach(&mut item.track, tick);
        }
        tick.views.departed.done();
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
            for item in &mut self.items {
                item.value.__encode_patch(&mut item.track, w);
            }
        }
        self.children_dirty = false;
    }

    fn __encode_full(&self, _: &(), w: &mut FullWriter<'_>) {
        let block = w.begin(self.meta.id());
        self.write_all(&mut w.out);
        w.end(block);
        for item in &self.items {
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
        match self.items.first() {
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
        for (pos, item) in self.items.iter().enumerate() {
            scratch.clear();
            item.value.__encode(&item.track, V::DEFAULT_WIRE, scratch);
            let moved = item.uid as usize != pos || item.uid >= self.snapshot_len;
            f(crate::view::Entry {
                index: pos as u32,
                key: None,
                value: scratch,
                child: item.value.__ref_id(&item.track),
                dirty: self.meta.fresh || moved || self.rec.get(pos as u32).is_some(),
            });
        }
    }
    fn children(&self, f: &mut dyn FnMut(u32, &dyn crate::view::Node)) {
        for (pos, item) in self.items.iter().enumerate() {
            item.value
                .__with_node(&item.track, &mut |n| f(pos as u32, n));
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
