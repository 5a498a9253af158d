//! `StateView`: per-client filtering of `#[schema(view)]` fields (spec
//! `schema-wire.md` §11, Colyseus 0.16+ `@view()`).
//!
//! A field marked `#[schema(view)]` (or `#[schema(view = TAG)]`) is left out
//! of the shared encoding ([`Encoder::encode_patch`], [`Encoder::encode_all`]);
//! so is everything reachable only through it (a *filtered* subtree). A view
//! ([`ViewId`], created by [`Encoder::create_view`]) says which instances one
//! client sees; that client receives the shared bytes followed by its view
//! part ([`Encoder::view_patch`], [`Encoder::encode_all_view`]).
//!
//! # How the view part is computed
//!
//! Every view keeps a *mirror*: the filtered entries its client holds, per
//! refId (memory proportional to what the view sees), and its marks (one
//! bit per refId). At each patch one walk serves every view: it follows the
//! refs that changed this tick (the paths the shared patch follows) and the
//! subtrees of pending `show`/`hide` calls, and at each ref that matters to
//! views (a changed ref behind a view field, a struct whose view field
//! changed, a target of a call and its parent chain, or a ref a view's
//! client learns of in this patch) computes, per view, what it should see
//! (its *projection*, the same rule the full state uses) and sends the
//! difference with the mirror. A ref whose content, marks and ancestors'
//! visibility did not change projects what its client already holds, so it
//! is skipped; `Encoder::__exhaustive_view_walk` turns the skipping off,
//! and the random-sequence tests check both walks write the same bytes.
//!
//! Costs per patch: O(changed refs) once, plus per view O(refs above that
//! concern it) — a bit test for a shared struct it does not see; a filtered
//! collection it holds is diffed whole. `show`/`hide` cost the target's
//! subtree. Steady ticks allocate nothing (held values up to 15 bytes are
//! inline; buffers are reused). [`Encoder::encode_all_view`] (a join) walks
//! the state once.
//!
//! A filtered array of primitives is positional: a client holding it as of
//! the previous patch gets the array's own ops (those a shared patch would
//! carry, checked against what the client holds); otherwise CLEAR and
//! re-ADD. The view part is computed for the dialects of the patch: where
//! 3.x decodes an op differently, the legacy part has that block in a form
//! 3.x applies exactly ([`Encoder::view_patch_as`]):
//!
//! - an insert at an occupied array index other than 0 (3.x overwrites):
//!   CLEAR + re-ADD;
//! - a DELETE (or an op on a held entry) in a Set/Collection, forced by a
//!   `hide` or found by the diff: 3.x numbers the entries itself, so the
//!   server's index may name another one; CLEAR + re-ADD of what the client
//!   keeps. An ADD of an entry the client holds (a second `show`, the
//!   re-sent ADD of an entry shown in the tick it is added) is left out: a
//!   3.x Collection would hold it twice;
//! - a DELETE_BY_REFID in an array of structs (a `hide` or a removal): 3.x
//!   applies it without lowering the element's refcount, so it keeps the
//!   instance under that refId, and a new instance given the refId again
//!   (refIds are reused by default) would be that stale instance; CLEAR +
//!   re-ADD (ADD_BY_REFID) of what the client keeps, which 3.x counts
//!   exactly.
//!
//! A client following the view patches therefore always holds what a fresh
//! client decoding [`Encoder::encode_all_view`] holds. On top of that, the
//! ops `@colyseus/schema` 5.0.34 sends when an instance is added to a view
//! (the parent chain's ADDs, a snapshot of its fields, in call order) are
//! reproduced, so the bytes are the reference's wherever the reference's
//! patch stream agrees with its own full state (`tests/fixtures/`
//! `view-differences.md` lists where it does not).
//!
//! Visibility follows the reference: `show` makes an instance, its subtree
//! (fields whose tag does not match are skipped) and its parent chain
//! visible (a view field on that chain is the view's whatever its tag: the
//! reference's patches send it, and its full states then send the field's
//! content without the field, which no decoder can attach; ours send the
//! field in both); children attached later through an untagged field of a filtered
//! instance (or to a collection whose field has a custom tag) share their
//! parent's visibility if they are structs or collections of structs (a
//! Map/Array/Set/Collection of primitives is seen only once shown itself,
//! e.g. with the subtree of a `show`); an element of such a collection
//! shares it only if attached while the collection is visible (elements
//! already there when the collection becomes visible through the parent
//! chain of a `show` stay hidden until shown); elements of a collection
//! behind a default-tag `#[schema(view)]` field must each be shown. An
//! instance removed from the state leaves every view.
//!
//! [`Encoder::encode_patch`]: crate::Encoder::encode_patch
//! [`Encoder::encode_all`]: crate::Encoder::encode_all
//! [`Encoder::create_view`]: crate::Encoder::create_view
//! [`Encoder::view_patch`]: crate::Encoder::view_patch
//! [`Encoder::view_patch_as`]: crate::Encoder::view_patch_as
//! [`Encoder::encode_all_view`]: crate::Encoder::encode_all_view

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::encoder::{ArrayScratch, Dialect};
use crate::tracked::{RefMeta, Tick, NO_ID, NO_SEQ};
use crate::wire::{self, spec};

/// The reference's `DEFAULT_VIEW_TAG`: the tag of `@view()` /
/// `#[schema(view)]` fields, and of [`ViewTarget::show_to`].
pub const DEFAULT_VIEW_TAG: i64 = -1;

/// One client's view, created by [`Encoder::create_view`](crate::Encoder::create_view).
///
/// A handle: copying it does not copy the view. A handle of a dropped view
/// is ignored by every method (it never reaches a newer view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewId {
    idx: u32,
    gen: u32,
}

/// What a tracked instance is, for the view walk.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A Schema struct.
    Struct,
    /// A `MapSchema` (entries carry a key).
    Map,
    /// A `SetSchema` or `CollectionSchema`.
    Indexed,
    /// An `ArraySchema`.
    Array,
}

/// One present field or entry of a tracked instance.
#[doc(hidden)]
#[derive(Debug)]
pub struct Entry<'a> {
    /// Field index, wire index (map/set/collection) or position (array).
    pub index: u32,
    /// Map key.
    pub key: Option<&'a str>,
    /// The encoded value (a ref's refId, with its TYPE_ID if any).
    pub value: &'a [u8],
    /// The refId of a ref value.
    pub child: Option<u32>,
    /// Changed this tick.
    pub dirty: bool,
}

/// A tracked instance as the view walk sees it (read only).
#[doc(hidden)]
pub trait Node {
    /// Identity and tick state.
    fn meta(&self) -> &RefMeta;
    /// refId.
    fn id(&self) -> u32 {
        self.meta().id()
    }
    /// First-change order this tick, or `u32::MAX`.
    fn seq(&self) -> u32 {
        self.meta().seq
    }
    /// Attached this tick.
    fn fresh(&self) -> bool {
        self.meta().fresh
    }
    /// The kind.
    fn kind(&self) -> NodeKind;
    /// A collection of primitives.
    fn primitive_elements(&self) -> bool {
        false
    }
    /// Struct: the tag of field `index` (`None` = not a view field).
    fn field_tag(&self, _index: u32) -> Option<i64> {
        None
    }
    /// Struct: whether any field is a view field.
    fn has_view_fields(&self) -> bool {
        false
    }
    /// Every present field or entry, in wire order.
    fn entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(Entry<'_>));
    /// Struct: its present view fields, in index order (the others are
    /// not encoded).
    fn view_field_entries(&self, scratch: &mut Vec<u8>, f: &mut dyn FnMut(Entry<'_>)) {
        self.entries(scratch, &mut |e| {
            if self.field_tag(e.index).is_some() {
                f(e);
            }
        });
    }
    /// Every child ref with the index of the entry holding it.
    fn children(&self, f: &mut dyn FnMut(u32, &dyn Node));
    /// The children that may hold changes this tick (a superset of them,
    /// in [`children`](Self::children) order).
    fn changed_children(&self, f: &mut dyn FnMut(u32, &dyn Node)) {
        self.children(f);
    }
    /// Struct: the fields unset this tick (a DELETE recorded).
    fn unset_this_tick(&self) -> u64 {
        0
    }
    /// Struct: the fields whose instance was replaced this tick (a
    /// DELETE_AND_ADD recorded).
    fn replaced_this_tick(&self) -> u64 {
        0
    }
    /// The fields or wire indexes with a DELETE recorded this tick, each
    /// with the refId of the instance it removed, if any.
    fn deleted_this_tick(&self, f: &mut dyn FnMut(u32, Option<u32>)) {
        let mut unset = self.unset_this_tick();
        while unset != 0 {
            f(unset.trailing_zeros(), None);
            unset &= unset - 1;
        }
    }
    /// Struct: attached this tick or a view field changed.
    fn view_dirty(&self) -> bool {
        false
    }
    /// Whether [`changed_children`](Self::changed_children) may call back
    /// (`false`: no child holds changes).
    fn may_have_changed_children(&self) -> bool {
        true
    }
    /// Map, Set or Collection: cleared this tick.
    fn cleared(&self) -> bool {
        false
    }
    /// Array of primitives changed this tick: writes the ops the shared
    /// patch sends for it, in `dialect`, for a client whose copy as of the
    /// previous patch has `held_len` elements (`held(i)` at `i`); `false`
    /// (nothing written) when that copy is not the array's previous state.
    fn array_ops<'h>(
        &self,
        _dialect: Dialect,
        _held_len: u32,
        _held: &dyn Fn(u32) -> Option<&'h [u8]>,
        _out: &mut Vec<u8>,
        _scratch: &mut ArrayScratch,
    ) -> bool {
        false
    }
    /// Array of primitives changed this tick: writes its ops if a client
    /// already holding the current array would skip every one of them.
    fn array_idempotent_ops(&self, _out: &mut Vec<u8>, _scratch: &mut ArrayScratch) -> bool {
        false
    }
}

/// A custom tag's bits as stored per view (the default tag is visibility).
fn tag_bits(tag: i64) -> u64 {
    if tag == DEFAULT_VIEW_TAG {
        0
    } else {
        tag as u64 & 0x7fff_ffff
    }
}

/// A pending `show`/`hide` call.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u32,
    show: bool,
    tag: i64,
    /// The tick's change order when it was called: instances attached
    /// later are not part of the subtree it shows.
    at: u32,
}

/// An encoded value kept by a mirror: inline up to 15 bytes (every
/// primitive but long strings), so updating a held value allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Val {
    Inline(u8, [u8; 15]),
    Heap(Box<[u8]>),
}

impl Val {
    const EMPTY: Self = Self::Inline(0, [0; 15]);

    fn new(b: &[u8]) -> Self {
        if b.len() <= 15 {
            let mut a = [0; 15];
            a[..b.len()].copy_from_slice(b);
            Self::Inline(b.len() as u8, a)
        } else {
            Self::Heap(b.into())
        }
    }

    /// Replaces the value, in place when both fit inline (the bytes past
    /// the value stay zero, as [`Val::new`] leaves them): no temporary to
    /// copy, whose read-back right after a short `memcpy` stalls.
    fn set(&mut self, b: &[u8]) {
        match self {
            Self::Inline(n, a) if b.len() <= a.len() => {
                let old = usize::from(*n);
                a[..b.len()].copy_from_slice(b);
                if old > b.len() {
                    a[b.len()..old].fill(0);
                }
                *n = b.len() as u8;
            }
            _ => *self = Self::new(b),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Inline(n, a) => &a[..*n as usize],
            Self::Heap(b) => b,
        }
    }
}

/// A field or entry the client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    index: u32,
    value: Val,
    child: Option<u32>,
}

/// The entries a client holds of one ref: inline up to one (a struct with
/// one view field, the common case), so reading them costs no second
/// cache miss after the hash table's.
type HeldList = smallvec::SmallVec<[Held; 1]>;

/// What a view's client holds: per refId, its entries. Logs the refIds
/// that become or stop being keys, for the index of [`Watchers`].
#[derive(Debug, Default)]
struct Mirror {
    map: HashMap<u32, HeldList, foldhash::fast::RandomState>,
    /// refIds inserted or removed since the last [`Views::sync_watchers`].
    log: Vec<u32>,
}

impl Mirror {
    #[inline]
    fn get(&self, id: &u32) -> Option<&HeldList> {
        self.map.get(id)
    }

    #[inline]
    fn get_mut(&mut self, id: &u32) -> Option<&mut HeldList> {
        self.map.get_mut(id)
    }

    #[inline]
    fn contains_key(&self, id: &u32) -> bool {
        self.map.contains_key(id)
    }

    fn insert(&mut self, id: u32, list: HeldList) -> Option<HeldList> {
        let old = self.map.insert(id, list);
        if old.is_none() {
            self.log.push(id);
        }
        old
    }

    fn remove(&mut self, id: &u32) -> Option<HeldList> {
        let old = self.map.remove(id);
        if old.is_some() {
            self.log.push(*id);
        }
        old
    }

    /// The entries held under `id`, an empty list inserted if none.
    fn entry_or_default(&mut self, id: u32) -> &mut HeldList {
        let Self { map, log } = self;
        map.entry(id).or_insert_with(|| {
            log.push(id);
            HeldList::new()
        })
    }

    fn clear(&mut self) {
        self.log.extend(self.map.keys().copied());
        self.map.clear();
    }
}

/// The marks of a view, logging the refIds whose mark changes, for the
/// index of [`Watchers`].
#[derive(Debug, Default)]
struct Marks {
    set: IdSet,
    /// refIds marked or unmarked since the last [`Views::sync_watchers`].
    log: Vec<u32>,
}

impl Marks {
    #[inline]
    fn contains(&self, id: &u32) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: u32) {
        if id != crate::tracked::NO_ID && !self.set.contains(&id) {
            self.set.insert(id);
            self.log.push(id);
        }
    }

    fn remove(&mut self, id: &u32) {
        if self.set.contains(id) {
            self.set.remove(id);
            self.log.push(*id);
        }
    }
}

/// Per refId, the views (slot indexes) that mark it or hold entries of it:
/// the only views a changed ref can concern, unless a `show`/`hide` names
/// it or its parent introduces it in this patch. Lets the patch walk visit
/// a changed ref for the views that see it, not for every view.
#[derive(Debug, Default)]
struct Watchers {
    /// Indexed by refId, each list sorted: the walk reads one list per
    /// changed ref, in refId order, so a dense table (a list of up to four
    /// views inline) costs it one memory access where a hash table cost
    /// two or three cache misses. Grows with the highest refId watched,
    /// like the views' [`IdSet`]s (refIds are reused by default).
    by_id: Vec<WatchList>,
}

/// The views watching one refId (inline up to four: an entity a few
/// clients own).
type WatchList = smallvec::SmallVec<[u32; 4]>;

/// A view's custom tags per struct refId (their bits, see [`tag_bits`]).
type Tags = HashMap<u32, u64, foldhash::fast::RandomState>;

impl Watchers {
    #[inline]
    fn of(&self, id: u32) -> &[u32] {
        self.by_id.get(id as usize).map_or(&[], |l| l.as_slice())
    }

    fn add(&mut self, id: u32, view: u32) {
        if id == NO_ID {
            return;
        }
        let i = id as usize;
        if i >= self.by_id.len() {
            self.by_id.resize_with(i + 1, WatchList::new);
        }
        let list = &mut self.by_id[i];
        if let Err(p) = list.binary_search(&view) {
            list.insert(p, view);
        }
    }

    fn remove(&mut self, id: u32, view: u32) {
        if let Some(list) = self.by_id.get_mut(id as usize) {
            if let Ok(p) = list.binary_search(&view) {
                list.remove(p);
            }
            if list.is_empty() {
                // Frees a list that had spilled to the heap.
                *list = WatchList::new();
            }
        }
    }
}

/// A set of refIds, one bit each (refIds are dense: they are reused by
/// default; without reuse the set grows with the highest refId shown).
#[derive(Debug, Default, Clone)]
pub(crate) struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    #[inline]
    pub(crate) fn contains(&self, id: &u32) -> bool {
        self.words
            .get((*id >> 6) as usize)
            .is_some_and(|w| w & (1 << (id & 63)) != 0)
    }

    fn insert(&mut self, id: u32) {
        if id == crate::tracked::NO_ID {
            return;
        }
        let i = (id >> 6) as usize;
        if i >= self.words.len() {
            self.words.resize(i + 1, 0);
        }
        self.words[i] |= 1 << (id & 63);
    }

    fn remove(&mut self, id: &u32) {
        if let Some(w) = self.words.get_mut((*id >> 6) as usize) {
            *w &= !(1 << (id & 63));
        }
    }

    /// Every refId in the set.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some((i as u32) << 6 | b)
            })
        })
    }
}

/// The state of one view.
#[derive(Debug, Default)]
pub(crate) struct ViewState {
    /// Instances marked visible (explicitly or by a `show` of an ancestor
    /// or descendant).
    marks: Marks,
    /// Elements of a filtered collection the client holds because they
    /// were attached while the collection was visible to it (the
    /// reference's `isVisibilitySharedWithParent`); structs among them are
    /// marked too, collections of primitives are held but not seen.
    shared: IdSet,
    /// The refIds under which [`Views::watchers`] lists this view (marked
    /// or held, as of the last [`Views::sync_watchers`]).
    watched: IdSet,
    /// Instances on the parent chain of a shown one, held by a struct
    /// field: the field is the view's whatever its tag (the chain leads
    /// to what was shown).
    chained: IdSet,
    /// Custom tag bits per instance.
    tags: Tags,
    pending: Vec<Pending>,
    /// What the client holds of each filtered instance (and of the view
    /// fields of shared instances). A filtered instance is held iff present.
    mirror: Mirror,
    /// The view part of the last patch.
    out: Vec<u8>,
    /// The view part of the last full state.
    full: Vec<u8>,
    /// This patch's forced ops (the reference's `view.changes`).
    forced: Forced,
    /// Rendered forced blocks: (refId, range in `arena`, range of its
    /// legacy form in `arena2` or `NO_ALT`).
    fblocks: Vec<(u32, u32, u32, u32, u32)>,
    /// Rendered diff blocks: (order key, DFS rank, range in `arena`,
    /// range of its legacy form in `arena2` or `NO_ALT`).
    dblocks: Vec<(u32, u32, u32, u32, u32, u32)>,
    arena: Vec<u8>,
    /// Legacy forms of the blocks whose ops depend on the dialect.
    arena2: Vec<u8>,
    /// The view part of the last patch for the second dialect.
    out2: Vec<u8>,
    dfs: u32,
}

#[derive(Debug, Default)]
struct Slot {
    gen: u32,
    view: Option<Box<ViewState>>,
}

/// Every view of an encoder (kept in its [`Tick`], so instance views can
/// register `show`/`hide` calls).
#[derive(Debug, Default)]
pub(crate) struct Views {
    slots: Vec<Slot>,
    live: usize,
    /// refIds detached since the last patch: they leave every view.
    pub(crate) detached: Vec<u32>,
    /// The patch walk's reused buffers.
    walker: Walker,
    /// The dialects of the last patch: `out`'s and `out2`'s.
    dialects: (Dialect, Option<Dialect>),
    /// Which views mark or hold each refId.
    watchers: Watchers,
    /// Where the instances detached since a `show` call were (V9).
    pub(crate) departed: Departed,
}

/// Where instances detached in a tick with pending `show` calls were held.
///
/// The reference's `view.add(x)` makes `x`'s parent chain visible when it
/// is called; removing `x` later in the same tick does not undo that. The
/// walk finds a target by walking the state at encode time, and a removed
/// target is not there: these records give its former parent chain. Kept
/// only while a `show` is pending (`noting`), so a tick without one pays a
/// branch per detached ref.
#[derive(Debug)]
pub(crate) struct Departed {
    /// A `show` is pending in some view.
    noting: bool,
    /// The struct whose fields are being detached.
    owner: u32,
    /// Set by a parent right before it detaches a child: (parent, key).
    from: Option<(u32, u32)>,
    /// Detached refId → (former parent, key in it); the last detach wins.
    links: HashMap<u32, (u32, u32), foldhash::fast::RandomState>,
    /// Detached instances: refId → (kind, a struct's field tags), read
    /// only for the former parents of a removed target.
    nodes: HashMap<u32, (NodeKind, Option<FieldTags>), foldhash::fast::RandomState>,
}

/// A struct type's field tags (`Schema::__field_tag`).
type FieldTags = fn(u32) -> Option<i64>;

impl Default for Departed {
    fn default() -> Self {
        Self {
            noting: false,
            owner: NO_ID,
            from: None,
            links: HashMap::default(),
            nodes: HashMap::default(),
        }
    }
}

/// Key of an element of an array of refs in a parent chain: its refId.
pub(crate) const KEY_SELF: u32 = u32::MAX;

impl Departed {
    #[inline]
    pub(crate) fn noting(&self) -> bool {
        self.noting
    }

    /// A parent is about to detach its child at `key`.
    #[inline]
    pub(crate) fn from(&mut self, parent: u32, key: u32) {
        if self.noting {
            self.from = Some((parent, key));
        }
    }

    /// The struct being detached is about to detach its field `index`.
    #[inline]
    pub(crate) fn field(&mut self, index: u32) {
        if self.noting && self.owner != NO_ID {
            self.from = Some((self.owner, index));
        }
    }

    /// A parent's loop over its children is over.
    #[inline]
    pub(crate) fn done(&mut self) {
        self.from = None;
    }

    /// `id` detaches: it was held where the last [`Departed::from`] said.
    pub(crate) fn detached(&mut self, id: u32) {
        if let Some((parent, key)) = self.from.take() {
            let key = if key == KEY_SELF { id } else { key };
            self.links.insert(id, (parent, key));
        }
    }

    /// A struct detaches; its fields follow. Returns the previous owner.
    pub(crate) fn enter_struct(&mut self, id: u32, tags: FieldTags) -> u32 {
        self.nodes.insert(id, (NodeKind::Struct, Some(tags)));
        std::mem::replace(&mut self.owner, id)
    }

    pub(crate) fn leave_struct(&mut self, owner: u32) {
        self.owner = owner;
        self.from = None;
    }

    /// A collection detaches.
    pub(crate) fn collection(&mut self, id: u32, kind: NodeKind) {
        if self.noting {
            self.nodes.insert(id, (kind, None));
        }
    }

    fn parent_of(&self, id: u32) -> Option<(u32, u32)> {
        self.links.get(&id).copied()
    }

    /// A detached instance's kind and view fields' tags.
    fn node(&self, id: u32) -> Option<(NodeKind, Vec<(u32, i64)>)> {
        let &(kind, tags) = self.nodes.get(&id)?;
        Some((kind, tags.map_or_else(Vec::new, view_field_tags)))
    }

    fn clear(&mut self) {
        self.noting = false;
        self.from = None;
        self.links.clear();
        self.nodes.clear();
    }
}

impl Views {
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.live != 0
    }

    pub(crate) fn create(&mut self) -> ViewId {
        self.live += 1;
        let mut view = Box::<ViewState>::default();
        view.mirror.insert(0, HeldList::new());
        if let Some(idx) = self.slots.iter().position(|s| s.view.is_none()) {
            let slot = &mut self.slots[idx];
            slot.view = Some(view);
            return ViewId {
                idx: idx as u32,
                gen: slot.gen,
            };
        }
        self.slots.push(Slot {
            gen: 0,
            view: Some(view),
        });
        ViewId {
            idx: self.slots.len() as u32 - 1,
            gen: 0,
        }
    }

    pub(crate) fn drop_view(&mut self, id: ViewId) -> bool {
        match self.slots.get_mut(id.idx as usize) {
            Some(slot) if slot.gen == id.gen && slot.view.is_some() => {
                if let Some(view) = slot.view.take() {
                    for r in view.watched.iter() {
                        self.watchers.remove(r, id.idx);
                    }
                }
                slot.gen = slot.gen.wrapping_add(1);
                self.live -= 1;
                if self.live == 0 {
                    self.detached = Vec::new();
                }
                true
            }
            _ => false,
        }
    }

    /// The view part of the last patch for `dialect` (empty if that patch
    /// was not encoded for it).
    pub(crate) fn patch_as(&self, id: ViewId, dialect: Dialect) -> &[u8] {
        self.get(id)
            .map_or(&[], |v| v.patch_as(self.dialects, dialect))
    }

    pub(crate) fn get(&self, id: ViewId) -> Option<&ViewState> {
        let slot = self.slots.get(id.idx as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        slot.view.as_deref()
    }

    fn get_mut(&mut self, id: ViewId) -> Option<&mut ViewState> {
        let slot = self.slots.get_mut(id.idx as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        slot.view.as_deref_mut()
    }

    fn each_mut(&mut self) -> impl Iterator<Item = &mut ViewState> {
        self.slots.iter_mut().filter_map(|s| s.view.as_deref_mut())
    }

    /// Brings [`Self::watchers`] up to date with the views' marks and
    /// mirrors: O(marks and mirror keys changed since the last call).
    fn sync_watchers(&mut self) {
        let watchers = &mut self.watchers;
        for (vi, slot) in self.slots.iter_mut().enumerate() {
            let Some(view) = slot.view.as_deref_mut() else {
                continue;
            };
            if view.marks.log.is_empty() && view.mirror.log.is_empty() {
                continue;
            }
            let ViewState {
                marks,
                mirror,
                watched,
                ..
            } = view;
            let (mut l1, mut l2) = (
                std::mem::take(&mut marks.log),
                std::mem::take(&mut mirror.log),
            );
            for &id in l1.iter().chain(l2.iter()) {
                let now = marks.contains(&id) || mirror.contains_key(&id);
                if now != watched.contains(&id) {
                    if now {
                        watched.insert(id);
                        watchers.add(id, vi as u32);
                    } else {
                        watched.remove(&id);
                        watchers.remove(id, vi as u32);
                    }
                }
            }
            // Keep the logs' buffers.
            l1.clear();
            l2.clear();
            marks.log = l1;
            mirror.log = l2;
        }
    }

    /// Forgets detached instances in every view: O(detached × views).
    fn purge(&mut self) {
        if self.detached.is_empty() {
            return;
        }
        let gone = &mut self.detached;
        gone.sort_unstable();
        gone.dedup();
        for v in self.slots.iter_mut().filter_map(|s| s.view.as_deref_mut()) {
            for id in gone.iter() {
                v.marks.remove(id);
                v.shared.remove(id);
                v.chained.remove(id);
                v.tags.remove(id);
                v.mirror.remove(id);
            }
            if !v.pending.is_empty() {
                // A `show` of a removed instance still shows where it was.
                let departed = &self.departed;
                v.pending.retain(|p| {
                    gone.binary_search(&p.id).is_err()
                        || (p.show && departed.parent_of(p.id).is_some())
                });
            }
        }
        gone.clear();
    }
}

impl ViewState {
    pub(crate) fn patch(&self) -> &[u8] {
        &self.out
    }

    pub(crate) fn patch_as(&self, dialects: (Dialect, Option<Dialect>), d: Dialect) -> &[u8] {
        if d == dialects.0 {
            &self.out
        } else if Some(d) == dialects.1 {
            &self.out2
        } else {
            &[]
        }
    }

    pub(crate) fn full(&self) -> &[u8] {
        &self.full
    }
}

/// A tracked instance that can be shown to a view: the view of a struct
/// (`PlayerMut`), of a collection (`MapMut`, …) or of a dynamic value.
///
/// The calls take effect at the next [`Encoder::encode_patch`]
/// (or [`Encoder::encode_all_view`]).
///
/// # Examples
///
/// ```
/// use roomcast_schema::{Encoder, MapSchema, Schema, ViewTarget};
///
/// #[derive(Schema, Default)]
/// struct Player {
///     name: String,
///     #[schema(view)]
///     hand: u8,
/// }
///
/// #[derive(Schema, Default)]
/// struct State {
///     players: MapSchema<Player>,
/// }
///
/// let mut enc = Encoder::new(State::default());
/// let alice = enc.create_view();
/// let mut state = enc.state_mut();
/// let mut players = state.players_mut();
/// players.insert("a", Player { name: "Alice".into(), hand: 7 });
/// players.get_mut("a").unwrap().show_to(alice);
///
/// let shared = enc.encode_patch().to_vec(); // `hand` is not in there
/// let alice_part = enc.view_patch(alice).to_vec(); // it is in here
/// assert!(!alice_part.is_empty());
/// // Alice's client receives `shared` followed by `alice_part`.
/// # let _ = shared;
/// ```
///
/// [`Encoder::encode_patch`]: crate::Encoder::encode_patch
/// [`Encoder::encode_all_view`]: crate::Encoder::encode_all_view
pub trait ViewTarget: crate::schema::TrackedMut {
    /// Shows this instance, its subtree and its parent chain to `view`,
    /// with the default tag (`view.add(obj)`).
    fn show_to(&mut self, view: ViewId) {
        self.show_to_tagged(view, DEFAULT_VIEW_TAG);
    }

    /// `view.add(obj, tag)`: also shows the fields marked
    /// `#[schema(view = T)]` with `T & tag != 0`.
    fn show_to_tagged(&mut self, view: ViewId, tag: i64) {
        queue_pending(self, view, true, tag);
    }

    /// `view.remove(obj)`: hides this instance (and its subtree) from `view`.
    fn hide_from(&mut self, view: ViewId) {
        self.hide_from_tagged(view, DEFAULT_VIEW_TAG);
    }

    /// `view.remove(obj, tag)`: hides the fields of that tag, and, as the
    /// reference does, the instance itself (its default-tag view fields;
    /// an element of a filtered collection leaves the view): what stays
    /// visible is what a parent's visibility gives it.
    fn hide_from_tagged(&mut self, view: ViewId, tag: i64) {
        queue_pending(self, view, false, tag);
    }

    /// `view.has(obj)`: whether `view` sees this instance, counting the
    /// `show`/`hide` calls not encoded yet.
    fn is_shown_to(&mut self, view: ViewId) -> bool {
        let (id, tick) = self.__target();
        let Some(v) = tick.views.get(view) else {
            return false;
        };
        match v
            .pending
            .iter()
            .rev()
            .find(|p| p.id == id && p.tag == DEFAULT_VIEW_TAG)
        {
            Some(p) => p.show,
            None => v.marks.contains(&id),
        }
    }
}

impl<T: crate::schema::TrackedMut + ?Sized> ViewTarget for T {}

/// Queues a `show` (or hide) of `target` in `view`, applied by the next
/// walk (a view that no longer exists ignores it).
fn queue_pending<T: crate::schema::TrackedMut + ?Sized>(
    target: &mut T,
    view: ViewId,
    show: bool,
    tag: i64,
) {
    let (id, tick) = target.__target();
    let at = tick.seq_now();
    if let Some(v) = tick.views.get_mut(view) {
        v.pending.push(Pending { id, show, tag, at });
        tick.views.departed.noting |= show;
    }
}

// ---------------------------------------------------------------------------
// The walk.

/// Where a node sits, for one view.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Reachable only through a view field.
    filtered: bool,
    /// Seen by the view.
    visible: bool,
    /// For a collection: the tag of the struct field holding it.
    holder_tag: Option<i64>,
}

const ROOT_CTX: Ctx = Ctx {
    filtered: false,
    visible: false,
    holder_tag: None,
};

/// Whether a child may share its parent's visibility: a struct, or a
/// collection of structs. A collection of primitives is seen only when
/// shown itself (with the subtree of a `show`), as in the reference.
fn shares_eligible(child: &dyn Node) -> bool {
    child.kind() == NodeKind::Struct || !child.primitive_elements()
}

/// Whether the view sees a child, given its parent's context.
fn child_ctx(view: &ViewState, parent: &dyn Node, pctx: Ctx, index: u32, child: &dyn Node) -> Ctx {
    let marked = view.marks.contains(&child.id());
    let eligible = shares_eligible(child);
    match parent.kind() {
        NodeKind::Struct => {
            let tag = parent.field_tag(index);
            let filtered = pctx.filtered || tag.is_some();
            let shares = pctx.filtered && tag.is_none() && eligible;
            Ctx {
                filtered,
                visible: marked || (shares && pctx.visible),
                holder_tag: tag,
            }
        }
        _ => {
            // An element shares its collection's visibility only when it
            // is attached while the collection is visible (then the walk
            // marks it): elements already there when the collection
            // becomes visible through a parent chain stay hidden.
            let shares = pctx.filtered
                && pctx.holder_tag != Some(DEFAULT_VIEW_TAG)
                && eligible
                && child.fresh();
            Ctx {
                filtered: pctx.filtered,
                visible: marked || (shares && pctx.visible),
                holder_tag: None,
            }
        }
    }
}

/// Whether a struct field with `tag` goes to a view (its `tags`) that sees
/// the struct.
fn field_shown(tags: &Tags, id: u32, tag: Option<i64>, filtered: bool) -> bool {
    match tag {
        None => filtered,
        Some(DEFAULT_VIEW_TAG) => true,
        Some(t) => tags.get(&id).is_some_and(|b| b & tag_bits(t) != 0),
    }
}

/// Where a node sits, for every view (only `visible` depends on the view).
#[derive(Debug, Clone, Copy)]
struct G {
    filtered: bool,
    /// Its visibility follows its parent's (besides its own mark).
    shares: bool,
    /// An element of a collection: it shares its parent's visibility only
    /// in the tick it is attached, and is marked then.
    elem: bool,
    holder_tag: Option<i64>,
}

fn child_g(parent: &dyn Node, kind: NodeKind, g: G, index: u32, child: &dyn Node) -> G {
    let eligible = shares_eligible(child);
    if kind == NodeKind::Struct {
        let tag = parent.field_tag(index);
        G {
            filtered: g.filtered || tag.is_some(),
            shares: g.filtered && tag.is_none() && eligible,
            elem: false,
            holder_tag: tag,
        }
    } else {
        G {
            filtered: g.filtered,
            shares: g.filtered && g.holder_tag != Some(DEFAULT_VIEW_TAG) && eligible,
            elem: true,
            holder_tag: None,
        }
    }
}

/// Writes one op of a node's block.
fn write_op(
    out: &mut Vec<u8>,
    kind: NodeKind,
    prim: bool,
    op: u8,
    index: u32,
    key: Option<&str>,
    value: &[u8],
) {
    match kind {
        NodeKind::Struct => {
            out.push(op | index as u8);
            if op != spec::DELETE {
                out.extend_from_slice(value);
            }
        }
        NodeKind::Array if !prim => {
            // Filtered arrays of refs go by refId (each client holds a
            // different subset).
            if op == spec::DELETE {
                out.push(spec::DELETE_BY_REFID);
                wire::encode_varint(out, index);
            } else {
                out.push(spec::ADD_BY_REFID);
                wire::encode_varint(out, index);
                out.extend_from_slice(value);
            }
        }
        _ => {
            out.push(op);
            wire::encode_varint(out, index);
            if op != spec::DELETE {
                if op & spec::ADD == spec::ADD {
                    if let Some(k) = key {
                        wire::encode_str(out, k);
                    }
                }
                out.extend_from_slice(value);
            }
        }
    }
}

fn header(out: &mut Vec<u8>, id: u32) {
    out.push(spec::SWITCH_TO_STRUCTURE);
    wire::encode_varint(out, id);
}

/// Drops what the client held under `id` (it garbage-collects it).
fn forget(mirror: &mut Mirror, id: u32) {
    if let Some(held) = mirror.remove(&id) {
        for c in held.iter().filter_map(|h| h.child) {
            forget(mirror, c);
        }
    }
}

/// Structure of a `show`/`hide` target found by the pre-walk.
#[derive(Debug, Default)]
struct Found {
    /// Ancestors, root first: (refId, kind, index of the entry holding the
    /// next one (element refId for arrays of refs), has filtered fields,
    /// tag of that field).
    chain: Vec<(u32, NodeKind, u32, bool, Option<i64>)>,
    /// The target's subtree in DFS pre-order.
    subtree: Vec<SubNode>,
    /// Whether the target is filtered and held by a collection.
    in_collection: bool,
    filtered: bool,
    /// How many of `chain`'s first entries are still in the state: fewer
    /// than `chain.len()` for a target removed after its `show` (V9),
    /// whose chain is where it was.
    live: usize,
    /// The target left the state after its `show`: only the live part of
    /// its former parent chain becomes visible.
    departed: bool,
}

#[derive(Debug)]
struct SubNode {
    id: u32,
    depth: u32,
    /// Tag of the struct field holding it (in its parent).
    edge_tag: Option<i64>,
    fresh: bool,
    /// Change order in the tick (attach order for a fresh node).
    seq: u32,
    kind: NodeKind,
    /// Present entries: (index, field tag, child refId); index is the
    /// element refId for arrays of refs.
    entries: Vec<(u32, Option<i64>, Option<u32>)>,
    /// Struct view fields a tagged `show` forces: (index, tag), every
    /// declared one, set or not (one unset goes as a DELETE), but not one
    /// unset this tick (the reference skips a field whose op is DELETE).
    view_fields: Vec<(u32, i64)>,
    /// Every view field the struct's type declares, set or not: a hide
    /// deletes them all, as the reference does.
    declared_view_fields: Vec<(u32, i64)>,
    /// Struct: fields whose instance was replaced this tick.
    replaced: u64,
    /// Fields or wire indexes deleted this tick (not arrays).
    deletes: Vec<u32>,
}

/// One forced op of a `show`/`hide` (the reference's `view.changes`).
type Forced = Vec<(u32, Vec<(u32, bool)>)>;

fn forced_set(forced: &mut Forced, id: u32, key: Option<(u32, bool)>) {
    let pos = match forced.iter().position(|(r, _)| *r == id) {
        Some(p) => p,
        None => {
            forced.push((id, Vec::new()));
            forced.len() - 1
        }
    };
    if let Some((k, add)) = key {
        let list = &mut forced[pos].1;
        match list.iter_mut().find(|(i, _)| *i == k) {
            Some(e) => e.1 = add,
            None => list.push((k, add)),
        }
    }
}

fn forced_drop(forced: &mut Forced, ids: &HashSet<u32>) {
    forced.retain(|(r, _)| !ids.contains(r));
}

/// Pre-walk: finds the targets of pending calls.
/// `full == false` looks along the changed paths only (where every
/// instance reached through a `…_mut` view lies until the next patch).
fn find_targets(
    root: &dyn Node,
    targets: &HashMap<u32, bool>,
    found: &mut HashMap<u32, Found>,
    full: bool,
) {
    let mut chain = Vec::new();
    find_in(root, false, false, targets, found, &mut chain, full);
}

fn find_in(
    node: &dyn Node,
    filtered: bool,
    in_collection: bool,
    targets: &HashMap<u32, bool>,
    found: &mut HashMap<u32, Found>,
    chain: &mut Vec<(u32, NodeKind, u32, bool, Option<i64>)>,
    full: bool,
) {
    if let Some(&whole) = targets.get(&node.id()) {
        if let std::collections::hash_map::Entry::Vacant(slot) = found.entry(node.id()) {
            let mut f = Found {
                chain: chain.clone(),
                in_collection,
                filtered,
                ..Found::default()
            };
            if whole {
                collect_subtree(node, 0, None, &mut f.subtree);
            } else {
                f.subtree.push(collect_node(node, 0, None));
            }
            f.live = f.chain.len();
            slot.insert(f);
        }
    }
    let kind = node.kind();
    let has_filtered = filtered || node.has_view_fields();
    let prim = node.primitive_elements();
    let mut each = |index: u32, child: &dyn Node| {
        let tag = if kind == NodeKind::Struct {
            node.field_tag(index)
        } else {
            None
        };
        let key = if kind == NodeKind::Array && !prim {
            child.id()
        } else {
            index
        };
        chain.push((node.id(), kind, key, has_filtered, tag));
        find_in(
            child,
            filtered || tag.is_some(),
            kind != NodeKind::Struct,
            targets,
            found,
            chain,
            full,
        );
        chain.pop();
    };
    if full {
        node.children(&mut each);
    } else {
        node.changed_children(&mut each);
    }
}

fn collect_subtree(node: &dyn Node, depth: u32, edge_tag: Option<i64>, out: &mut Vec<SubNode>) {
    out.push(collect_node(node, depth, edge_tag));
    let kind = node.kind();
    node.children(&mut |index, child| {
        let tag = if kind == NodeKind::Struct {
            node.field_tag(index)
        } else {
            None
        };
        collect_subtree(child, depth + 1, tag, out);
    });
}

/// A struct's view fields and their tags, from its `field_tag` (field
/// indexes are below 64, the wire's field byte).
fn view_field_tags(field_tag: impl Fn(u32) -> Option<i64>) -> Vec<(u32, i64)> {
    (0..64)
        .filter_map(|i| field_tag(i).map(|t| (i, t)))
        .collect()
}

/// One node of a target's subtree (or the parent of a departed target).
fn collect_node(node: &dyn Node, depth: u32, edge_tag: Option<i64>) -> SubNode {
    let kind = node.kind();
    let prim = node.primitive_elements();
    let mut entries = Vec::new();
    let mut scratch = Vec::new();
    node.entries(&mut scratch, &mut |e| {
        let tag = if kind == NodeKind::Struct {
            node.field_tag(e.index)
        } else {
            None
        };
        let index = match (kind, e.child) {
            (NodeKind::Array, Some(c)) if !prim => c,
            _ => e.index,
        };
        entries.push((index, tag, e.child));
    });
    let declared_view_fields = if kind == NodeKind::Struct && node.has_view_fields() {
        view_field_tags(|i| node.field_tag(i))
    } else {
        Vec::new()
    };
    let mut deletes = Vec::new();
    if kind != NodeKind::Array && node.seq() != NO_SEQ {
        node.deleted_this_tick(&mut |k, _| deletes.push(k));
    }
    let unset = node.unset_this_tick();
    let view_fields = declared_view_fields
        .iter()
        .copied()
        .filter(|&(i, _)| unset & (1 << i) == 0)
        .collect();
    SubNode {
        id: node.id(),
        depth,
        edge_tag,
        fresh: node.fresh(),
        seq: node.seq(),
        kind,
        entries,
        view_fields,
        declared_view_fields,
        replaced: node.replaced_this_tick(),
        deletes,
    }
}

/// Whether a field tag admits a `show` with `tag` (the reference's
/// `_add` filter).
fn tag_admits(field_tag: Option<i64>, tag: i64) -> bool {
    match field_tag {
        None | Some(DEFAULT_VIEW_TAG) => true,
        Some(t) => tag != DEFAULT_VIEW_TAG && tag_bits(t) & tag_bits(tag) != 0,
    }
}

/// Applies the pending calls of a view in call order: marks, tags and the
/// reference's forced ops.
fn apply_pending(view: &mut ViewState, found: &HashMap<u32, Found>, forced: &mut Forced) {
    let pending = std::mem::take(&mut view.pending);
    for p in pending {
        let Some(f) = found.get(&p.id) else { continue };
        if f.departed && !p.show {
            continue;
        }
        if p.show {
            show(view, f, p.tag, p.at, forced);
        } else {
            hide(view, f, p.tag, forced);
        }
    }
}

/// `after`: instances attached from this change order on (after the call)
/// are not shown with the subtree: as in the reference, `show` covers the
/// subtree as it is when called; what is attached later is seen only if it
/// shares its parent's visibility.
fn show(view: &mut ViewState, f: &Found, tag: i64, after: u32, forced: &mut Forced) {
    let target = &f.subtree[0];
    let was_visible = view.marks.contains(&target.id);
    if !f.departed {
        view.marks.insert(target.id);
    }
    // Parent chain, root first (its part still in the state).
    for (i, &(id, kind, key, has_filtered, field_tag)) in f.chain[..f.live].iter().enumerate() {
        view.marks.insert(id);
        if kind == NodeKind::Struct && (i + 1 < f.live || !f.departed) {
            let child = f.chain.get(i + 1).map_or(target.id, |c| c.0);
            view.chained.insert(child);
        }
        if !has_filtered {
            continue;
        }
        if let Some(t) = field_tag {
            if t != DEFAULT_VIEW_TAG && tag != DEFAULT_VIEW_TAG && tag_bits(t) & tag_bits(tag) != 0
            {
                *view.tags.entry(id).or_default() |= tag_bits(tag);
            }
        }
        forced_set(forced, id, Some((key, true)));
    }
    if !f.departed {
        add_node(view, &f.subtree, 0, (tag, after), forced, was_visible);
    }
}

impl SubNode {
    /// Attached after a `show` called at change order `after`.
    fn late(&self, after: u32) -> bool {
        self.fresh && self.seq != NO_SEQ && self.seq >= after
    }
}

/// The reference's `_add` on `sub[at]` (children follow it in DFS order).
fn add_node(
    view: &mut ViewState,
    sub: &[SubNode],
    at: usize,
    (tag, after): (i64, u32),
    forced: &mut Forced,
    was_visible: bool,
) -> bool {
    let n = &sub[at];
    view.marks.insert(n.id);
    if tag == DEFAULT_VIEW_TAG && n.fresh {
        // Sent in full by the patch anyway: mark the subtree.
        mark_subtree(view, sub, at, tag, after);
        return false;
    }
    forced_set(forced, n.id, None);
    let mut child_added = false;
    // Children attached after the call: their entries are not the show's.
    let mut late = Vec::new();
    let mut c = at + 1;
    while c < sub.len() && sub[c].depth > n.depth {
        if sub[c].depth == n.depth + 1 && sub[c].late(after) {
            late.push(sub[c].id);
        } else if sub[c].depth == n.depth + 1 && tag_admits(sub[c].edge_tag, tag) {
            let child_was = view.marks.contains(&sub[c].id);
            if add_node(view, sub, c, (tag, after), forced, child_was) {
                child_added = true;
            }
        }
        c += 1;
    }
    if tag != DEFAULT_VIEW_TAG {
        *view.tags.entry(n.id).or_default() |= tag_bits(tag);
        let mut by_tag: Vec<u32> = Vec::new();
        // Bit by bit, as the reference walks `$fieldIndexesByViewTag`.
        let mut bits = tag_bits(tag);
        while bits != 0 {
            let b = bits & bits.wrapping_neg();
            bits &= bits - 1;
            for &(i, t) in &n.view_fields {
                if t != DEFAULT_VIEW_TAG && tag_bits(t) & b != 0 && !by_tag.contains(&i) {
                    by_tag.push(i);
                }
            }
        }
        for i in by_tag {
            forced_set(forced, n.id, Some((i, true)));
        }
    }
    if (tag == DEFAULT_VIEW_TAG || !was_visible) && (!n.fresh || child_added) {
        let mut keys = Vec::with_capacity(n.entries.len());
        for &(i, t, child) in &n.entries {
            // (A struct field whose instance was replaced after the call
            // was there at the call: its ADD goes out, with what it holds
            // now, as the reference resolves the index at encode time.)
            let replaced = n.kind == NodeKind::Struct && n.replaced & (1 << i) != 0;
            if child.is_some_and(|c| late.contains(&c)) && !replaced {
                continue;
            }
            if n.kind != NodeKind::Struct || tag_admits(t, tag) {
                keys.push(i);
                child_added = true;
            }
        }
        // Entries deleted after the call were there at the call: the
        // reference finds nothing at their index when it encodes and sends
        // a DELETE. (Known only when the node's first change of the tick
        // came after the call; earlier, they may have gone before it.)
        if n.seq != NO_SEQ && n.seq >= after && !n.deletes.is_empty() {
            let tag_of = |i: u32| {
                n.declared_view_fields
                    .iter()
                    .find(|&&(f, _)| f == i)
                    .map(|&(_, t)| t)
            };
            let before = keys.len();
            keys.extend(
                n.deletes
                    .iter()
                    .copied()
                    .filter(|&i| n.kind != NodeKind::Struct || tag_admits(tag_of(i), tag)),
            );
            if keys.len() > before {
                // In index order, as the reference walks the live indexes.
                keys.sort_unstable();
                keys.dedup();
                child_added = true;
            }
        }
        for i in keys {
            forced_set(forced, n.id, Some((i, true)));
        }
    }
    child_added
}

fn mark_subtree(view: &mut ViewState, sub: &[SubNode], at: usize, tag: i64, after: u32) {
    let depth = sub[at].depth;
    let mut skip_below: Option<u32> = None;
    for n in &sub[at..] {
        if n.depth < depth || (n.depth == depth && n.id != sub[at].id) {
            break;
        }
        if let Some(d) = skip_below {
            if n.depth > d {
                continue;
            }
            skip_below = None;
        }
        if n.depth > depth && (!tag_admits(n.edge_tag, tag) || n.late(after)) {
            skip_below = Some(n.depth);
            continue;
        }
        view.marks.insert(n.id);
    }
}

fn hide(view: &mut ViewState, f: &Found, tag: i64, forced: &mut Forced) {
    let target = &f.subtree[0];
    // Ancestors keep their place before the target's entries.
    for &(id, _, _, has_filtered, _) in &f.chain {
        if has_filtered && !forced.iter().any(|(r, _)| *r == id) {
            forced_set(forced, id, None);
        }
    }
    if tag == DEFAULT_VIEW_TAG {
        view.marks.remove(&target.id);
        view.shared.remove(&target.id);
        view.chained.remove(&target.id);
        forced_set(forced, target.id, None);
        if f.in_collection && f.filtered {
            if let Some(&(pid, _, key, _, _)) = f.chain.last() {
                let pending_add = forced
                    .iter()
                    .find(|(r, _)| *r == pid)
                    .is_some_and(|(_, l)| l.iter().any(|&(k, a)| k == key && a));
                let subtree: HashSet<u32> = f.subtree.iter().map(|n| n.id).collect();
                if pending_add {
                    forced_drop(forced, &subtree);
                }
                forced_set(forced, pid, Some((key, false)));
                for id in &subtree {
                    if *id != target.id {
                        view.marks.remove(id);
                        view.shared.remove(id);
                    }
                }
            }
        } else {
            for &(i, _) in &target.declared_view_fields {
                forced_set(forced, target.id, Some((i, false)));
            }
            // The view fields' subtrees leave the view; what hangs below
            // the other fields stays visible (the reference hides the
            // target and its view fields only).
            let depth = target.depth;
            let mut hiding = false;
            for n in f.subtree.iter().skip(1) {
                if n.depth <= depth {
                    break;
                }
                if n.depth == depth + 1 {
                    hiding = n.edge_tag.is_some();
                }
                if hiding {
                    view.marks.remove(&n.id);
                    view.shared.remove(&n.id);
                }
            }
        }
        view.tags.remove(&target.id);
    } else {
        // The reference's `remove(obj, tag)` unmarks the instance too: its
        // default-tag view fields leave the view with the tag's (deleted
        // where the client holds them; the reference leaves those to the
        // client, which its own full state then disagrees with).
        view.marks.remove(&target.id);
        let held = view.mirror.get(&target.id);
        for &(i, t) in &target.declared_view_fields {
            let tagged = t != DEFAULT_VIEW_TAG && tag_bits(t) & tag_bits(tag) != 0;
            let default_held =
                t == DEFAULT_VIEW_TAG && held.is_some_and(|l| l.iter().any(|h| h.index == i));
            if tagged || default_held {
                forced_set(forced, target.id, Some((i, false)));
            } else if t == DEFAULT_VIEW_TAG {
                // An ADD a `show` of this tick queued: never sent.
                if let Some((_, list)) = forced.iter_mut().find(|(r, _)| *r == target.id) {
                    list.retain(|&(k, add)| !(k == i && add));
                }
            }
        }
        if let Some(b) = view.tags.get_mut(&target.id) {
            *b &= !tag_bits(tag);
        }
    }
}

// ---------------------------------------------------------------------------
// The patch walk: once per tick for every view at once, over the refs that
// changed and the subtrees of pending `show`/`hide` calls.

/// One present field or entry of the node being processed.
#[derive(Debug, Clone, Copy)]
struct Ent {
    /// Field index, wire index, or element refId (arrays of refs).
    index: u32,
    /// The entry's own index (an array element's position).
    pos: u32,
    /// Struct field tag.
    tag: Option<i64>,
    key: Option<(u32, u32)>,
    val: (u32, u32),
    child: Option<u32>,
    dirty: bool,
}

/// The entries of the node being processed, read once for every view.
#[derive(Debug)]
struct NodeData {
    id: u32,
    seq: u32,
    kind: NodeKind,
    prim: bool,
    ents: Vec<Ent>,
    bytes: Vec<u8>,
    /// Children attached this tick (collections), sorted.
    fresh_kids: Vec<u32>,
    /// A Map, Set or Collection cleared this tick.
    cleared: bool,
    /// Fields or wire indexes deleted this tick, with the refId of the
    /// instance removed, if any.
    deletes: Vec<(u32, Option<u32>)>,
    /// Struct: fields whose instance was replaced this tick.
    replaced: u64,
    scratch: Vec<u8>,
}

impl Default for NodeData {
    fn default() -> Self {
        Self {
            id: 0,
            seq: NO_SEQ,
            kind: NodeKind::Struct,
            prim: false,
            ents: Vec::new(),
            bytes: Vec::new(),
            fresh_kids: Vec::new(),
            cleared: false,
            deletes: Vec::new(),
            replaced: 0,
            scratch: Vec::new(),
        }
    }
}

impl NodeData {
    /// Reads `node`'s entries; with `tagged_only`, only a struct's view
    /// fields (all a shared struct no call names shows a view).
    fn load(&mut self, node: &dyn Node, tagged_only: bool) {
        self.id = node.id();
        self.seq = node.seq();
        self.kind = node.kind();
        self.prim = node.primitive_elements();
        self.cleared = node.cleared();
        self.deletes.clear();
        self.replaced = node.replaced_this_tick();
        if self.seq != NO_SEQ {
            let deletes = &mut self.deletes;
            node.deleted_this_tick(&mut |k, gone| deletes.push((k, gone)));
        }
        self.ents.clear();
        self.bytes.clear();
        self.fresh_kids.clear();
        let (kind, prim) = (self.kind, self.prim);
        let (ents, bytes) = (&mut self.ents, &mut self.bytes);
        let mut any_dirty_child = false;
        let mut each = |e: Entry<'_>| {
            let tag = if kind == NodeKind::Struct {
                node.field_tag(e.index)
            } else {
                None
            };
            if tagged_only && tag.is_none() {
                return;
            }
            let key = e.key.map(|k| {
                let s = bytes.len() as u32;
                bytes.extend_from_slice(k.as_bytes());
                (s, bytes.len() as u32)
            });
            let s = bytes.len() as u32;
            bytes.extend_from_slice(e.value);
            let index = match (kind, e.child) {
                (NodeKind::Array, Some(c)) if !prim => c,
                _ => e.index,
            };
            any_dirty_child |= e.dirty && e.child.is_some();
            ents.push(Ent {
                index,
                pos: e.index,
                tag,
                key,
                val: (s, bytes.len() as u32),
                child: e.child,
                dirty: e.dirty,
            });
        };
        if tagged_only && kind == NodeKind::Struct {
            node.view_field_entries(&mut self.scratch, &mut each);
        } else {
            node.entries(&mut self.scratch, &mut each);
        }
        if kind != NodeKind::Struct && any_dirty_child {
            let kids = &mut self.fresh_kids;
            node.children(&mut |_, c| {
                if c.fresh() {
                    kids.push(c.id());
                }
            });
            kids.sort_unstable();
        }
    }

    /// The op of a diff's ADD of `e`: a struct field whose instance was
    /// replaced this tick goes as the DELETE_AND_ADD it recorded.
    fn add_op(&self, e: &Ent) -> u8 {
        if self.kind == NodeKind::Struct && e.dirty && self.replaced & (1 << e.index) != 0 {
            spec::DELETE_AND_ADD
        } else {
            spec::ADD
        }
    }

    fn val(&self, e: &Ent) -> &[u8] {
        &self.bytes[e.val.0 as usize..e.val.1 as usize]
    }

    fn key(&self, e: &Ent) -> Option<&str> {
        let (s, t) = e.key?;
        std::str::from_utf8(&self.bytes[s as usize..t as usize]).ok()
    }

    fn find(&self, index: u32) -> Option<usize> {
        self.ents.iter().position(|e| e.index == index)
    }
}

/// Positions of `index` values, for lookups in long lists (short ones are
/// searched linearly).
#[derive(Debug, Default)]
struct Lookup {
    sorted: Vec<(u32, u32)>,
    linear: bool,
}

impl Lookup {
    fn build(&mut self, indexes: impl ExactSizeIterator<Item = u32>) {
        self.sorted.clear();
        self.linear = indexes.len() <= 8;
        self.sorted
            .extend(indexes.enumerate().map(|(p, i)| (i, p as u32)));
        if !self.linear {
            self.sorted.sort_unstable();
        }
    }

    fn get(&self, index: u32) -> Option<usize> {
        if self.linear {
            self.sorted
                .iter()
                .find(|(i, _)| *i == index)
                .map(|&(_, p)| p as usize)
        } else {
            self.sorted
                .binary_search_by_key(&index, |&(i, _)| i)
                .ok()
                .map(|k| self.sorted[k].1 as usize)
        }
    }
}

/// A view's share of the walk at a node: its key (block order), for the
/// children.
#[derive(Debug, Clone, Copy)]
struct Frame {
    view: u32,
    key: u32,
}

/// Nodes a view must process this tick beyond the changed ones: targets'
/// parent chains (`subtree == false`) and subtrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Work {
    id: u32,
    view: u32,
    subtree: bool,
}

#[derive(Debug, Default)]
struct Walker {
    /// The walk's ancestors, the current node last: refId, whether it
    /// shares its parent's visibility (an element of a collection only in
    /// the tick it is attached).
    anc: Vec<(u32, bool)>,
    frames: Vec<Frame>,
    /// (view, child) introduced by its parent's diff block in this patch;
    /// with [`REACHED`] set in the view: the client got the child's ref
    /// from a forced op (it is visited, but its ops keep their order).
    intro: Vec<(u32, u32)>,
    work: Vec<Work>,
    /// Targets were found off the changed paths: chains are walked in full.
    full_chains: bool,
    /// Every view processes every node (the O(state × views) walk the
    /// incremental one must equal; for tests).
    exhaustive: bool,
    nd: NodeData,
    proj: Vec<u32>,
    cands: Vec<u32>,
    held_ix: Lookup,
    proj_ix: Lookup,
    next: HeldList,
    /// The array encoder's buffers (filtered arrays of primitives).
    arrays: ArrayScratch,
    /// Also write the legacy form of dialect-dependent blocks.
    legacy: bool,
    tmp: Vec<u8>,
}

impl Walker {
    fn visible(&self, view: &ViewState) -> bool {
        for &(id, shares) in self.anc.iter().rev() {
            if view.marks.contains(&id) {
                return true;
            }
            if !shares {
                return false;
            }
        }
        false
    }

    fn walk(
        &mut self,
        slots: &mut [Slot],
        watchers: &Watchers,
        node: &dyn Node,
        g: G,
        pf: Range<usize>,
        pi: Range<usize>,
    ) {
        if !self.exhaustive
            && !g.filtered
            && pi.is_empty()
            && self.work.is_empty()
            && !node.view_dirty()
            && !node.may_have_changed_children()
        {
            // A shared ref whose view fields did not change, named by no
            // call and introduced by no parent, without changed children
            // (most changed refs of a tick): nothing for any view.
            return;
        }
        let id = node.id();
        self.anc.push((id, g.shares && (!g.elem || node.fresh())));
        let (f0, i0) = (self.frames.len(), self.intro.len());
        let kind = node.kind();
        let lo = self.work.partition_point(|w| w.id < id);
        let hi = lo + self.work[lo..].partition_point(|w| w.id == id);
        let subtree = self.work[lo..hi].iter().any(|w| w.subtree);
        // A shared instance without view fields matters to a view only when
        // a show names it: the reference then re-sends its fields.
        if g.filtered || node.has_view_fields() || lo < hi {
            let relevant = node.seq() != NO_SEQ && (g.filtered || node.view_dirty());
            self.cands.clear();
            if self.exhaustive {
                self.cands.extend(
                    slots
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.view.is_some())
                        .map(|(i, _)| i as u32),
                );
            } else {
                // A changed ref concerns the views that mark it or hold
                // entries of it; any other view, unless a call names it or
                // its parent introduces it, would skip it (a filtered ref
                // it does not hold, a shared one it does not see).
                if relevant {
                    self.cands.extend_from_slice(watchers.of(id));
                }
                let n = self.cands.len();
                self.cands.extend(self.work[lo..hi].iter().map(|w| w.view));
                self.cands.extend(
                    self.intro[pi.clone()]
                        .iter()
                        .filter(|(_, c)| *c == id)
                        .map(|(v, _)| *v & !REACHED),
                );
                if self.cands.len() > n {
                    // A watcher list is sorted already.
                    self.cands.sort_unstable();
                    self.cands.dedup();
                }
            }
            if !self.cands.is_empty() {
                // A shared struct no call names: only its view fields can
                // reach a view (its other fields go to everyone).
                let tagged_only = !g.filtered && lo == hi && kind == NodeKind::Struct;
                self.nd.load(node, tagged_only);
                let cands = std::mem::take(&mut self.cands);
                if cands.len() > 1 {
                    // Read what each view holds of this ref first: the
                    // lookups are independent, so their cache misses
                    // overlap instead of coming one per `process`.
                    let mut touched = 0usize;
                    for &v in &cands {
                        if let Some(view) = slots[v as usize].view.as_deref() {
                            touched += view.mirror.get(&id).map_or(0, |l| l.len())
                                + usize::from(view.marks.contains(&id));
                        }
                    }
                    std::hint::black_box(touched);
                }
                for &v in &cands {
                    let Some(view) = slots[v as usize].view.as_deref_mut() else {
                        continue;
                    };
                    let introduced = self.intro[pi.clone()].contains(&(v, id));
                    let order = self.frames[pf.clone()]
                        .iter()
                        .find(|f| f.view == v)
                        .map_or(0, |f| f.key);
                    let visible = self.visible(view);
                    if visible && g.elem && g.shares && node.fresh() {
                        // Seen from now on, like the reference's lazy
                        // `isVisibilitySharedWithParent` check.
                        view.marks.insert(id);
                    }
                    let ctx = Ctx {
                        filtered: g.filtered,
                        visible,
                        holder_tag: g.holder_tag,
                    };
                    if let Some(key) = self.process(node, v, view, ctx, order, introduced) {
                        self.frames.push(Frame { view: v, key });
                    }
                }
                self.cands = cands;
            }
        }
        let full =
            self.exhaustive || subtree || self.intro.len() > i0 || (self.full_chains && hi > lo);
        let (pf2, pi2) = (f0..self.frames.len(), i0..self.intro.len());
        let mut visit = |index: u32, child: &dyn Node| {
            let cg = child_g(node, kind, g, index, child);
            self.walk(slots, watchers, child, cg, pf2.clone(), pi2.clone());
        };
        if full {
            node.children(&mut visit);
        } else {
            node.changed_children(&mut visit);
        }
        self.frames.truncate(f0);
        self.intro.truncate(i0);
        self.anc.pop();
    }

    /// The entries of the loaded node `view` should hold (positions in
    /// `nd.ents`) into `proj`.
    fn project(&mut self, view: &ViewState, ctx: Ctx) {
        self.proj.clear();
        let nd = &self.nd;
        if !ctx.visible || (nd.kind != NodeKind::Struct && !ctx.filtered) {
            return;
        }
        let share = ctx.filtered && ctx.holder_tag != Some(DEFAULT_VIEW_TAG);
        for (p, e) in nd.ents.iter().enumerate() {
            let keep = match nd.kind {
                NodeKind::Struct => {
                    field_shown(&view.tags, nd.id, e.tag, ctx.filtered)
                        || (e.tag.is_some() && e.child.is_some_and(|c| view.chained.contains(&c)))
                }
                _ => {
                    nd.prim
                        || e.child.is_some_and(|c| {
                            view.marks.contains(&c)
                                || (share
                                    && (view.shared.contains(&c)
                                        || nd.fresh_kids.binary_search(&c).is_ok()))
                        })
                }
            };
            if keep {
                self.proj.push(p as u32);
            }
        }
    }

    /// One view's part at the loaded node: forced ops, then the difference
    /// between its projection and what its client holds. Returns the
    /// node's order key when the view holds it.
    fn process(
        &mut self,
        node: &dyn Node,
        v: u32,
        view: &mut ViewState,
        ctx: Ctx,
        order: u32,
        introduced: bool,
    ) -> Option<u32> {
        let id = self.nd.id;
        if ctx.filtered && !view.mirror.contains_key(&id) {
            return None;
        }
        if !ctx.visible && !ctx.filtered {
            // A shared instance this view does not see (the common case):
            // nothing to send unless its client still holds view fields.
            let holds = view.mirror.get(&id).is_some_and(|l| !l.is_empty());
            if !holds && !view.forced.iter().any(|(r, _)| *r == id) {
                view.dfs += 1;
                return Some(if introduced {
                    self.nd.seq.max(order)
                } else {
                    self.nd.seq
                });
            }
        }
        self.project(view, ctx);
        if self.nd.kind != NodeKind::Struct
            && ctx.filtered
            && ctx.holder_tag != Some(DEFAULT_VIEW_TAG)
            && !self.nd.fresh_kids.is_empty()
        {
            // Attached while the collection is visible: held from now on.
            for &p in &self.proj {
                if let Some(c) = self.nd.ents[p as usize].child {
                    if self.nd.fresh_kids.binary_search(&c).is_ok() {
                        view.shared.insert(c);
                    }
                }
            }
        }
        let nd = &self.nd;
        let kind = nd.kind;
        // An empty collection tells nothing of its elements: what the
        // client holds does.
        let prim = nd.prim
            || (kind != NodeKind::Struct
                && nd.ents.is_empty()
                && view
                    .mirror
                    .get(&id)
                    .and_then(|l| l.first())
                    .is_some_and(|h| h.child.is_none()));

        // Forced ops first (the reference's `view.changes`).
        // A node the client learns of in this very patch (a diff block of
        // its parent adds it) gets them in its own diff block, after that.
        let block = view.arena.len();
        if introduced {
            header(&mut view.arena, id);
        }
        let body = view.arena.len();
        let had_forced = view.forced.iter().any(|(r, _)| *r == id);
        // 3.x numbers Set/Collection entries itself (a positional op may hit
        // another entry; an ADD of a held entry adds a Collection entry
        // twice) and applies DELETE_BY_REFID without lowering the refcount
        // (a reused refId would map to the stale instance): the legacy form
        // of such blocks never deletes by position or refId.
        let legacy_coll =
            self.legacy && (kind == NodeKind::Indexed || (kind == NodeKind::Array && !prim));
        if let Some(fi) = view.forced.iter().position(|(r, _)| *r == id) {
            let start = view.arena.len() as u32;
            // The legacy form: the same ops, but CLEAR + re-ADD of what the
            // client holds after them if one is a DELETE (`reset`), and
            // without ADDs of held entries (`differs`).
            self.tmp.clear();
            let (mut reset, mut differs) = (false, false);
            for j in 0..view.forced[fi].1.len() {
                let (k, add) = view.forced[fi].1[j];
                // Whether the client holds `k`, and with the current value.
                let held_val = view
                    .mirror
                    .get(&id)
                    .and_then(|l| l.iter().find(|h| h.index == k))
                    .map(|h| {
                        nd.find(k)
                            .is_some_and(|p| h.value.bytes() == nd.val(&nd.ents[p]))
                    });
                // An array ADD at a position the client holds would insert
                // beside it: the diff below replaces what differs instead.
                let held_pos = kind == NodeKind::Array && prim && held_val.is_some();
                match (add, nd.find(k)) {
                    (true, Some(_)) if held_pos => {}
                    // Not the view's once the tick's calls are applied (a
                    // show undone by a hide): sending it would give the
                    // client what a joining client would not get.
                    (true, Some(p))
                        if !self.proj.contains(&(p as u32))
                            && (ctx.filtered || nd.ents[p].tag.is_some())
                            && nd.ents[p].child.is_some_and(|c| {
                                !view.marks.contains(&c) && !view.chained.contains(&c)
                            }) => {}
                    (true, Some(p)) => {
                        let e = nd.ents[p];
                        let at = view.arena.len();
                        // An element of an array every client holds whole
                        // goes where it is, as the shared patch's ops do:
                        // only filtered arrays of refs go by refId.
                        let (wkind, windex) = if kind == NodeKind::Array && !prim && !ctx.filtered {
                            (NodeKind::Indexed, e.pos)
                        } else {
                            (kind, e.index)
                        };
                        write_op(
                            &mut view.arena,
                            wkind,
                            prim,
                            spec::ADD,
                            windex,
                            nd.key(&e),
                            nd.val(&e),
                        );
                        if legacy_coll {
                            match held_val {
                                Some(same) if kind == NodeKind::Indexed => {
                                    differs = true;
                                    reset |= !same;
                                }
                                // A new entry, or an array element 3.x
                                // finds by refId.
                                _ => self.tmp.extend_from_slice(&view.arena[at..]),
                            }
                        }
                        if self.proj.contains(&(p as u32)) {
                            hold(
                                &mut view.mirror,
                                id,
                                Held {
                                    index: e.index,
                                    value: Val::new(nd.val(&e)),
                                    child: e.child,
                                },
                            );
                            // The client learns of the child here (the
                            // diff below then finds it held): its content
                            // follows in this patch.
                            if let (None, Some(c)) = (held_val, e.child) {
                                // Inside the diff block of a node the client
                                // learns of now: introduced like by a diff op.
                                let flag = if introduced { 0 } else { REACHED };
                                self.intro.push((v | flag, c));
                            }
                        }
                    }
                    // A ref field the client holds and keeps after the
                    // calls (a hidden struct still seen through its parent
                    // keeps its view fields): the reference's DELETE, then
                    // the diff's ADD, would leave the client the child's old
                    // content, as a decoder keeps an instance re-added before
                    // the patch ends (random_2_499 15). The diff below
                    // updates what the child shows instead.
                    (false, Some(p))
                        if kind == NodeKind::Struct
                            && held_val == Some(true)
                            && nd.ents[p].child.is_some()
                            && self.proj.contains(&(p as u32)) => {}
                    _ => {
                        // The reference deletes what a hide names, held by
                        // the client or not (a field it never had, an entry
                        // shown and hidden in one tick): harmless to the
                        // decoder, which knows this ref.
                        write_op(&mut view.arena, kind, prim, spec::DELETE, k, None, &[]);
                        if held_val.is_some() {
                            release(&mut view.mirror, id, k);
                            reset |= legacy_coll;
                        } else {
                            // 3.x would delete whichever entry it numbers
                            // so: its form leaves the op out.
                            differs |= legacy_coll;
                        }
                    }
                }
            }
            if !introduced {
                let (s2, e2) = if reset || differs {
                    let s2 = view.arena2.len();
                    if reset {
                        view.arena2.push(spec::CLEAR);
                        for h in view.mirror.get(&id).into_iter().flatten() {
                            write_op(
                                &mut view.arena2,
                                kind,
                                prim,
                                spec::ADD,
                                h.index,
                                None,
                                h.value.bytes(),
                            );
                        }
                    } else {
                        view.arena2.extend_from_slice(&self.tmp);
                    }
                    (s2 as u32, view.arena2.len() as u32)
                } else {
                    (NO_ALT, NO_ALT)
                };
                view.fblocks
                    .push((id, start, view.arena.len() as u32, s2, e2));
            }
        }

        // Then the difference between the projection and what is held.
        if !introduced && !had_forced {
            if let Some(key) = self.diff_held_struct(view, order) {
                return Some(key);
            }
        }
        let nd = &self.nd;
        // Taken out of its slot (the key stays: no hash table churn), put
        // back or removed below.
        let (knew, mut held) = match view.mirror.get_mut(&id) {
            Some(list) => (true, std::mem::take(list)),
            None => (false, HeldList::new()),
        };
        let (block, body) = if introduced {
            (block, body)
        } else {
            let block = view.arena.len();
            header(&mut view.arena, id);
            (block, view.arena.len())
        };
        let out = &mut view.arena;
        let mirror = &mut view.mirror;
        let diff_start = out.len();
        // The legacy form of this block, if it differs: (written to `tmp`).
        let mut alt = false;
        if kind == NodeKind::Array && prim && (ctx.filtered || !self.proj.is_empty()) {
            // A client holding the array as of the previous patch gets the
            // ops the shared patch would send (the reference's bytes).
            let synced =
                ctx.visible && ctx.filtered && !had_forced && !introduced && nd.seq != NO_SEQ && {
                    let h = &held;
                    let at = |i: u32| {
                        h.get(i as usize)
                            .filter(|x| x.index == i)
                            .map(|x| x.value.bytes())
                    };
                    node.array_ops(Dialect::Modern, h.len() as u32, &at, out, &mut self.arrays)
                        && (!self.legacy || {
                            // 3.x inserts only at index 0: its ops may differ.
                            self.tmp.clear();
                            node.array_ops(
                                Dialect::Legacy,
                                h.len() as u32,
                                &at,
                                &mut self.tmp,
                                &mut self.arrays,
                            );
                            alt = self.tmp[..] != out[diff_start..];
                            true
                        })
                };
            if synced {
                held.clear();
                for &p in &self.proj {
                    let e = &nd.ents[p as usize];
                    held.push(Held {
                        index: e.index,
                        value: Val::new(nd.val(e)),
                        child: e.child,
                    });
                }
                put_back(mirror, id, held);
            } else {
                // Positional: CLEAR and re-ADD when anything differs.
                let same = held.len() == self.proj.len()
                    && held.iter().zip(&self.proj).all(|(h, &p)| {
                        let e = &nd.ents[p as usize];
                        h.index == e.index && h.child == e.child && h.value.bytes() == nd.val(e)
                    });
                if !same {
                    if !held.is_empty() {
                        out.push(spec::CLEAR);
                    }
                    held.clear();
                    for &p in &self.proj {
                        let e = &nd.ents[p as usize];
                        write_op(out, kind, prim, spec::ADD, e.index, None, nd.val(e));
                        held.push(Held {
                            index: e.index,
                            value: Val::new(nd.val(e)),
                            child: e.child,
                        });
                    }
                } else if ctx.visible && ctx.filtered {
                    // The client holds the current array (a snapshot of
                    // this patch): the reference still sends the tick's
                    // ops, harmless when each is skipped as `===`.
                    node.array_idempotent_ops(out, &mut self.arrays);
                }
                put_back(mirror, id, held);
            }
        } else {
            if nd.cleared && ctx.visible && ctx.filtered && knew && !introduced {
                // A client holding a cleared collection gets the CLEAR (and
                // then whatever it is to see of the entries added since), as
                // the reference sends it to every view that sees the
                // collection, held entries or not.
                out.push(spec::CLEAR);
                for h in held.drain(..) {
                    if let Some(c) = h.child {
                        forget(mirror, c);
                    }
                }
            }
            self.tmp.clear();
            self.held_ix.build(held.iter().map(|h| h.index));
            self.next.clear();
            // The legacy form (`legacy_coll`): the same ops without
            // re-sent ADDs of held Set/Collection entries (`skipped`), or
            // CLEAR + re-ADD when an op names a held entry (`reset`).
            let (mut reset, mut skipped) = (false, false);
            for &p in &self.proj {
                let e = &nd.ents[p as usize];
                let val = nd.val(e);
                let key = nd.key(e);
                let before = self.held_ix.get(e.index);
                let at = out.len();
                let same = match before {
                    None => {
                        write_op(out, kind, prim, nd.add_op(e), e.index, key, val);
                        false
                    }
                    Some(b) if held[b].value.bytes() != val => {
                        let op = match (kind, held[b].child.is_some()) {
                            (_, true) => spec::DELETE_AND_ADD,
                            (NodeKind::Struct, false) => spec::ADD,
                            (_, false) => spec::REPLACE,
                        };
                        write_op(out, kind, prim, op, e.index, key, val);
                        reset |= legacy_coll;
                        if let Some(c) = held[b].child {
                            forget(mirror, c);
                        }
                        false
                    }
                    Some(_) => {
                        // Unchanged for the client; the reference still
                        // sends a field (or a new entry) changed this tick.
                        let resend = e.dirty
                            && (kind == NodeKind::Struct
                                || e.child
                                    .is_some_and(|c| nd.fresh_kids.binary_search(&c).is_ok()));
                        if resend {
                            write_op(out, kind, prim, nd.add_op(e), e.index, key, val);
                            skipped |= legacy_coll && kind == NodeKind::Indexed;
                        }
                        true
                    }
                };
                if legacy_coll && !(same && kind == NodeKind::Indexed) {
                    self.tmp.extend_from_slice(&out[at..]);
                }
                if let Some(c) = e.child {
                    mirror.entry_or_default(c);
                    if !same {
                        self.intro.push((v, c));
                    }
                }
                let value = match before {
                    Some(b) if same => std::mem::replace(&mut held[b].value, Val::EMPTY),
                    _ => Val::new(val),
                };
                self.next.push(Held {
                    index: e.index,
                    value,
                    child: e.child,
                });
            }
            self.proj_ix
                .build(self.proj.iter().map(|&p| nd.ents[p as usize].index));
            let mut deleted = false;
            for h in &held {
                if self.proj_ix.get(h.index).is_none() {
                    write_op(out, kind, prim, spec::DELETE, h.index, None, &[]);
                    deleted = true;
                    if let Some(c) = h.child {
                        forget(mirror, c);
                    }
                }
            }
            if ctx.visible && ctx.filtered && kind != NodeKind::Array {
                // The reference sends a visible filtered node's DELETEs of
                // the tick to its view, of entries the client held or not
                // (harmless to the decoder, which knows the node); those of
                // instances only to views that saw them.
                for &(k, gone) in &nd.deletes {
                    let shown = match kind {
                        NodeKind::Struct => field_shown(&view.tags, id, node.field_tag(k), true),
                        _ => gone.is_none_or(|c| view.marks.contains(&c)),
                    };
                    if shown && self.held_ix.get(k).is_none() && self.proj_ix.get(k).is_none() {
                        write_op(out, kind, prim, spec::DELETE, k, None, &[]);
                        deleted |= legacy_coll;
                    }
                }
            }
            if legacy_coll && (deleted || reset) {
                // No positional DELETE, DELETE_BY_REFID or op on a held
                // Set/Collection entry is safe for 3.x: CLEAR and re-ADD
                // (as the shared legacy patch does for sets).
                alt = true;
                self.tmp.clear();
                self.tmp.push(spec::CLEAR);
                for &p in &self.proj {
                    let e = &nd.ents[p as usize];
                    write_op(
                        &mut self.tmp,
                        kind,
                        prim,
                        spec::ADD,
                        e.index,
                        nd.key(e),
                        nd.val(e),
                    );
                }
            } else if skipped {
                alt = true;
            }
            if !self.next.is_empty() || ctx.filtered {
                // `next` becomes the held list (`held`'s old entries are
                // dropped with the swap's clear).
                std::mem::swap(&mut held, &mut self.next);
                self.next.clear();
                put_back(mirror, id, held);
            } else if knew {
                mirror.remove(&id);
            }
        }
        let alt = alt.then_some((diff_start, &self.tmp[..]));
        Some(close_block(
            view, nd.seq, introduced, order, block, body, alt,
        ))
    }

    /// The diff of a struct its client holds with exactly the projected
    /// fields, none a ref (an entity whose fields changed, the common case
    /// of a room's tick): updated in place, without the general diff's
    /// indexes and list swap. `None` (nothing written) when not that case.
    /// Writes the same ops as the general diff would.
    fn diff_held_struct(&self, view: &mut ViewState, order: u32) -> Option<u32> {
        let nd = &self.nd;
        if nd.kind != NodeKind::Struct || self.proj.is_empty() {
            return None;
        }
        let held = view.mirror.get_mut(&nd.id)?;
        let matches = held.len() == self.proj.len()
            && held.iter().zip(&self.proj).all(|(h, &p)| {
                let e = &nd.ents[p as usize];
                h.index == e.index && h.child.is_none() && e.child.is_none()
            });
        if !matches {
            return None;
        }
        let out = &mut view.arena;
        let block = out.len();
        header(out, nd.id);
        let body = out.len();
        for (h, &p) in held.iter_mut().zip(&self.proj) {
            let e = &nd.ents[p as usize];
            let val = nd.val(e);
            if h.value.bytes() != val {
                h.value.set(val);
            } else if !e.dirty {
                // Unchanged for the client and not changed this tick.
                continue;
            }
            write_op(
                out,
                NodeKind::Struct,
                nd.prim,
                spec::ADD,
                e.index,
                None,
                val,
            );
        }
        Some(close_block(view, nd.seq, false, order, block, body, None))
    }
}

/// Ends a view's diff block of a node (its header at `block`, its ops from
/// `body`): dropped when empty and without a legacy form, else recorded.
/// `alt`: the legacy form, as the block's ops from the given offset
/// replaced by the given bytes. Returns the node's order key.
fn close_block(
    view: &mut ViewState,
    seq: u32,
    introduced: bool,
    order: u32,
    block: usize,
    body: usize,
    alt: Option<(usize, &[u8])>,
) -> u32 {
    view.dfs += 1;
    let key = if introduced { seq.max(order) } else { seq };
    if view.arena.len() == body && alt.is_none() {
        view.arena.truncate(block);
    } else {
        let (s2, e2) = if let Some((diff_start, ops)) = alt {
            let s2 = view.arena2.len();
            view.arena2
                .extend_from_slice(&view.arena[block..diff_start]);
            view.arena2.extend_from_slice(ops);
            (s2 as u32, view.arena2.len() as u32)
        } else {
            (NO_ALT, NO_ALT)
        };
        view.dblocks
            .push((key, view.dfs, block as u32, view.arena.len() as u32, s2, e2));
    }
    key
}

/// Stores `held` under `id` (in place when the slot is there).
fn put_back(mirror: &mut Mirror, id: u32, held: HeldList) {
    match mirror.get_mut(&id) {
        Some(slot) => *slot = held,
        None => {
            mirror.insert(id, held);
        }
    }
}

fn hold(mirror: &mut Mirror, id: u32, h: Held) {
    if let Some(c) = h.child {
        let old = mirror
            .get(&id)
            .and_then(|l| l.iter().find(|x| x.index == h.index))
            .and_then(|x| x.child);
        if let Some(oc) = old.filter(|&oc| oc != c) {
            forget(mirror, oc);
        }
        mirror.entry_or_default(c);
    }
    let list = mirror.entry_or_default(id);
    match list.iter_mut().find(|x| x.index == h.index) {
        Some(x) => *x = h,
        None => {
            list.push(h);
            list.sort_by_key(|x| x.index);
        }
    }
}

fn release(mirror: &mut Mirror, id: u32, index: u32) {
    let Some(list) = mirror.get_mut(&id) else {
        return;
    };
    if let Some(p) = list.iter().position(|x| x.index == index) {
        let h = list.remove(p);
        if let Some(c) = h.child {
            forget(mirror, c);
        }
    }
}

/// Finds the targets of pending calls (`ids`), and the former parents of
/// those removed since (`departed`). Returns them and whether the whole
/// state had to be searched.
fn resolve(root: &dyn Node, ids: &[u32], departed: &Departed) -> (HashMap<u32, Found>, bool) {
    let mut targets: HashMap<u32, bool> = ids.iter().map(|&id| (id, true)).collect();
    if !departed.links.is_empty() {
        for &id in ids {
            let mut at = id;
            // Bounded: instances moved back and forth in one tick can leave
            // links that form a cycle.
            for _ in 0..departed.links.len() {
                let Some((parent, _)) = departed.parent_of(at) else {
                    break;
                };
                targets.entry(parent).or_insert(false);
                at = parent;
            }
        }
    }
    let mut found = HashMap::new();
    let missing = |found: &HashMap<u32, Found>| {
        targets
            .keys()
            .any(|id| !found.contains_key(id) && departed.parent_of(*id).is_none())
    };
    find_targets(root, &targets, &mut found, false);
    let full = missing(&found);
    if full {
        // A target off the changed paths (not reached through a `…_mut`
        // view): look in the whole state.
        find_targets(root, &targets, &mut found, true);
    }
    for &id in ids {
        if !found.contains_key(&id) {
            if let Some(f) = departed_found(id, departed, &found) {
                found.insert(id, f);
            }
        }
    }
    (found, full)
}

/// Where `id`, removed from the state after a `show`, was: its former
/// parent chain, down from the part still in the state.
fn departed_found(id: u32, departed: &Departed, found: &HashMap<u32, Found>) -> Option<Found> {
    departed_found_within(id, departed, found, departed.links.len())
}

/// [`departed_found`] following at most `steps` links (see [`resolve`]).
fn departed_found_within(
    id: u32,
    departed: &Departed,
    found: &HashMap<u32, Found>,
    steps: usize,
) -> Option<Found> {
    let steps = steps.checked_sub(1)?;
    let (parent, key) = departed.parent_of(id)?;
    let (mut chain, live, kind, tags, filtered) = match found.get(&parent) {
        Some(p) if !p.departed => {
            let n = &p.subtree[0];
            let tags = n.declared_view_fields.clone();
            (p.chain.clone(), p.chain.len() + 1, n.kind, tags, p.filtered)
        }
        _ => {
            let p = departed_found_within(parent, departed, found, steps)?;
            let (kind, tags) = departed.node(parent)?;
            (p.chain, p.live, kind, tags, p.filtered)
        }
    };
    let tag = if kind == NodeKind::Struct {
        tags.iter().find(|t| t.0 == key).map(|t| t.1)
    } else {
        None
    };
    chain.push((parent, kind, key, filtered || !tags.is_empty(), tag));
    let (own_kind, own_tags) = departed.node(id).unwrap_or((NodeKind::Struct, Vec::new()));
    Some(Found {
        chain,
        subtree: vec![SubNode {
            id,
            depth: 0,
            edge_tag: None,
            fresh: false,
            seq: NO_SEQ,
            kind: own_kind,
            entries: Vec::new(),
            view_fields: Vec::new(),
            declared_view_fields: own_tags,
            replaced: 0,
            deletes: Vec::new(),
        }],
        in_collection: kind != NodeKind::Struct,
        filtered: filtered || tag.is_some(),
        live,
        departed: true,
    })
}

/// Applies every view's pending calls; returns the work list (chains and
/// subtrees of the targets, per view, sorted by refId) in `w.work`.
fn prepare(root: &dyn Node, views: &mut Views, w: &mut Walker) {
    w.work.clear();
    w.full_chains = false;
    if views.each_mut().all(|v| v.pending.is_empty()) {
        return;
    }
    let ids: Vec<u32> = views
        .each_mut()
        .flat_map(|v| v.pending.iter().map(|p| p.id))
        .collect();
    let (found, full) = resolve(root, &ids, &views.departed);
    w.full_chains = full;
    for (vi, slot) in views.slots.iter_mut().enumerate() {
        let Some(view) = slot.view.as_deref_mut() else {
            continue;
        };
        if view.pending.is_empty() {
            continue;
        }
        let mut forced = std::mem::take(&mut view.forced);
        for p in &view.pending {
            if let Some(f) = found.get(&p.id) {
                for c in &f.chain[..f.live] {
                    w.work.push(Work {
                        id: c.0,
                        view: vi as u32,
                        subtree: false,
                    });
                }
                for n in f.subtree.iter().filter(|_| !f.departed) {
                    w.work.push(Work {
                        id: n.id,
                        view: vi as u32,
                        subtree: true,
                    });
                }
            }
        }
        apply_pending(view, &found, &mut forced);
        for (id, _) in &forced {
            w.work.push(Work {
                id: *id,
                view: vi as u32,
                subtree: false,
            });
        }
        view.forced = forced;
    }
    w.work.sort_unstable();
    w.work.dedup();
}

/// Flag of an [`Walker::intro`] entry whose child was reached by a forced op.
const REACHED: u32 = 1 << 31;

/// No legacy form (a [`ViewState::dblocks`] range).
const NO_ALT: u32 = u32::MAX;

/// Encodes the view part of the patch of every view (before the shared walk
/// settles the tick's changes), for `dialect` and, if any, `second`.
pub(crate) fn encode_views(
    root: &dyn Node,
    tick: &mut Tick,
    dialect: Dialect,
    second: Option<Dialect>,
) {
    let views = &mut tick.views;
    views.purge();
    views.dialects = (dialect, second);
    let mut w = std::mem::take(&mut views.walker);
    w.legacy = dialect == Dialect::Legacy || second == Some(Dialect::Legacy);
    prepare(root, views, &mut w);
    views.sync_watchers();
    let g = G {
        filtered: false,
        shares: false,
        elem: false,
        holder_tag: None,
    };
    views.departed.clear();
    w.walk(&mut views.slots, &views.watchers, root, g, 0..0, 0..0);
    for view in views.each_mut() {
        view.dblocks.sort_unstable_by_key(|b| (b.0, b.1));
        // The common part (diff blocks only, written in order, one
        // dialect) is the arena itself: taken, not copied.
        let in_place = second.is_none()
            && view.forced.is_empty()
            && view.fblocks.is_empty()
            && (dialect != Dialect::Legacy || view.dblocks.iter().all(|b| b.4 == NO_ALT))
            && view.dblocks.first().is_none_or(|b| b.2 == 0)
            && view
                .dblocks
                .last()
                .is_none_or(|b| b.3 as usize == view.arena.len())
            && view.dblocks.windows(2).all(|p| p[0].3 == p[1].2);
        if in_place {
            if view.dblocks.is_empty() {
                view.out.clear();
            } else {
                std::mem::swap(&mut view.out, &mut view.arena);
            }
        } else {
            let mut out = std::mem::take(&mut view.out);
            assemble(view, &mut out, dialect == Dialect::Legacy);
            view.out = out;
        }
        let mut out2 = std::mem::take(&mut view.out2);
        out2.clear();
        if let Some(d) = second {
            assemble(view, &mut out2, d == Dialect::Legacy);
        }
        view.out2 = out2;
        view.forced.clear();
        view.fblocks.clear();
        view.dblocks.clear();
        view.arena.clear();
        view.arena2.clear();
        view.dfs = 0;
    }
    views.walker = w;
}

/// Puts a view's part together: forced blocks in call order, then the diff
/// blocks (sorted), in their legacy form when `legacy` and one exists.
fn assemble(view: &ViewState, out: &mut Vec<u8>, legacy: bool) {
    out.clear();
    for (id, _) in &view.forced {
        if let Some(&(_, s, e, s2, e2)) = view.fblocks.iter().find(|b| b.0 == *id) {
            let ops = if legacy && s2 != NO_ALT {
                &view.arena2[s2 as usize..e2 as usize]
            } else {
                &view.arena[s as usize..e as usize]
            };
            if !ops.is_empty() {
                header(out, *id);
                out.extend_from_slice(ops);
            }
        }
    }
    for &(_, _, s, e, s2, e2) in &view.dblocks {
        if legacy && s2 != NO_ALT {
            out.extend_from_slice(&view.arena2[s2 as usize..e2 as usize]);
        } else {
            out.extend_from_slice(&view.arena[s as usize..e as usize]);
        }
    }
}

/// Encodes the view part of a full state, and makes it what the view's
/// client holds. Walks the state (a join-time cost, like `encode_all`).
pub(crate) fn encode_all_view(root: &dyn Node, tick: &mut Tick, id: ViewId) -> Option<()> {
    let views = &mut tick.views;
    views.purge();
    views.get_mut(id)?;
    let mut w = std::mem::take(&mut views.walker);
    let departed = std::mem::take(&mut views.departed);
    let view = views.get_mut(id)?;
    if !view.pending.is_empty() {
        let ids: Vec<u32> = view.pending.iter().map(|p| p.id).collect();
        let (found, _) = resolve(root, &ids, &departed);
        let mut forced = Forced::new();
        apply_pending(view, &found, &mut forced);
    }
    view.mirror.clear();
    view.mirror.insert(root.id(), HeldList::new());
    let mut out = std::mem::take(&mut view.full);
    out.clear();
    let ctx = Ctx {
        visible: view.marks.contains(&root.id()),
        ..ROOT_CTX
    };
    full_visit(&mut w, view, root, ctx, &mut out);
    view.full = out;
    view.out.clear();
    view.out2.clear();
    views.walker = w;
    views.departed = departed;
    Some(())
}

fn full_visit(w: &mut Walker, view: &mut ViewState, node: &dyn Node, ctx: Ctx, out: &mut Vec<u8>) {
    let id = node.id();
    let held = !ctx.filtered || view.mirror.contains_key(&id);
    if held && (ctx.filtered || node.has_view_fields()) && ctx.visible {
        w.nd.load(node, false);
        w.project(view, ctx);
        let nd = &w.nd;
        if !w.proj.is_empty() {
            header(out, id);
            for &p in &w.proj {
                let e = &nd.ents[p as usize];
                write_op(
                    out,
                    nd.kind,
                    nd.prim,
                    spec::ADD,
                    e.index,
                    nd.key(e),
                    nd.val(e),
                );
                if let Some(c) = e.child {
                    view.mirror.entry_or_default(c);
                }
            }
        }
        if !w.proj.is_empty() || ctx.filtered {
            let list = w
                .proj
                .iter()
                .map(|&p| {
                    let e = &nd.ents[p as usize];
                    Held {
                        index: e.index,
                        value: Val::new(nd.val(e)),
                        child: e.child,
                    }
                })
                .collect();
            view.mirror.insert(id, list);
        }
    } else if held && ctx.filtered {
        view.mirror.insert(id, HeldList::new());
    }
    let v = &*view;
    let mut kids: Vec<Ctx> = Vec::new();
    node.children(&mut |index, c| kids.push(child_ctx(v, node, ctx, index, c)));
    let mut i = 0;
    node.children(&mut |_, c| {
        let cctx = kids[i];
        i += 1;
        full_visit(w, view, c, cctx, out);
    });
}

impl Views {
    pub(crate) fn create_view(&mut self) -> ViewId {
        self.create()
    }

    pub(crate) fn set_exhaustive(&mut self, on: bool) {
        self.walker.exhaustive = on;
    }
}
