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
//! refId (memory proportional to what the view sees). At each patch the
//! encoder walks the state (only when a view has pending `show`/`hide` calls
//! or the state changed), computes what the view should see (its
//! *projection*, the same rule the full state uses) and sends the difference.
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
//! visible; children attached later through an untagged field of a filtered
//! instance (or to a collection whose field has a custom tag) share their
//! parent's visibility; elements of a collection behind a default-tag
//! `#[schema(view)]` field must each be shown. An instance removed from the
//! state leaves every view.
//!
//! [`Encoder::encode_patch`]: crate::Encoder::encode_patch
//! [`Encoder::encode_all`]: crate::Encoder::encode_all
//! [`Encoder::create_view`]: crate::Encoder::create_view
//! [`Encoder::view_patch`]: crate::Encoder::view_patch
//! [`Encoder::encode_all_view`]: crate::Encoder::encode_all_view

use std::collections::{HashMap, HashSet};

use crate::tracked::{Tick, NO_SEQ};
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
    /// refId.
    fn id(&self) -> u32;
    /// First-change order this tick, or `u32::MAX`.
    fn seq(&self) -> u32;
    /// Attached this tick.
    fn fresh(&self) -> bool;
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
    /// Every child ref with the index of the entry holding it.
    fn children(&self, f: &mut dyn FnMut(u32, &dyn Node));
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
}

/// A field or entry the client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    index: u32,
    value: Box<[u8]>,
    child: Option<u32>,
}

/// The state of one view.
#[derive(Debug, Default)]
pub(crate) struct ViewState {
    /// Instances marked visible (explicitly or by a `show` of an ancestor
    /// or descendant).
    marks: HashSet<u32>,
    /// Custom tag bits per instance.
    tags: HashMap<u32, u64>,
    pending: Vec<Pending>,
    /// What the client holds of each filtered instance (and of the view
    /// fields of shared instances). A filtered instance is held iff present.
    mirror: HashMap<u32, Vec<Held>>,
    /// The view part of the last patch.
    out: Vec<u8>,
    /// The view part of the last full state.
    full: Vec<u8>,
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
}

impl Views {
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.live != 0
    }

    pub(crate) fn create(&mut self) -> ViewId {
        self.live += 1;
        let mut view = Box::<ViewState>::default();
        view.mirror.insert(0, Vec::new());
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
                slot.view = None;
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

    /// Forgets detached instances in every view.
    fn purge(&mut self) {
        if self.detached.is_empty() {
            return;
        }
        let gone: HashSet<u32> = self.detached.drain(..).collect();
        for v in self.slots.iter_mut().filter_map(|s| s.view.as_deref_mut()) {
            v.marks.retain(|id| !gone.contains(id));
            v.tags.retain(|id, _| !gone.contains(id));
            v.pending.retain(|p| !gone.contains(&p.id));
        }
    }
}

impl ViewState {
    pub(crate) fn patch(&self) -> &[u8] {
        &self.out
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
        let (id, tick) = self.__target();
        if let Some(v) = tick.views.get_mut(view) {
            v.pending.push(Pending {
                id,
                show: true,
                tag,
            });
        }
    }

    /// `view.remove(obj)`: hides this instance (and its subtree) from `view`.
    fn hide_from(&mut self, view: ViewId) {
        self.hide_from_tagged(view, DEFAULT_VIEW_TAG);
    }

    /// `view.remove(obj, tag)`: hides the fields of that tag only.
    fn hide_from_tagged(&mut self, view: ViewId, tag: i64) {
        let (id, tick) = self.__target();
        if let Some(v) = tick.views.get_mut(view) {
            v.pending.push(Pending {
                id,
                show: false,
                tag,
            });
        }
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

/// Whether the view sees a child, given its parent's context.
fn child_ctx(view: &ViewState, parent: &dyn Node, pctx: Ctx, index: u32, child: u32) -> Ctx {
    let marked = view.marks.contains(&child);
    match parent.kind() {
        NodeKind::Struct => {
            let tag = parent.field_tag(index);
            let filtered = pctx.filtered || tag.is_some();
            let shares = pctx.filtered && tag.is_none();
            Ctx {
                filtered,
                visible: marked || (shares && pctx.visible),
                holder_tag: tag,
            }
        }
        _ => {
            let shares = pctx.filtered && pctx.holder_tag != Some(DEFAULT_VIEW_TAG);
            Ctx {
                filtered: pctx.filtered,
                visible: marked || (shares && pctx.visible),
                holder_tag: None,
            }
        }
    }
}

/// Whether a struct field with `tag` goes to a view that sees the struct.
fn field_shown(view: &ViewState, id: u32, tag: Option<i64>, filtered: bool) -> bool {
    match tag {
        None => filtered,
        Some(DEFAULT_VIEW_TAG) => true,
        Some(t) => view.tags.get(&id).is_some_and(|b| b & tag_bits(t) != 0),
    }
}

/// The entries a view should hold of a node: `(index, value, child)`, where
/// `index` is the array element's refId for arrays of refs.
fn projection(view: &ViewState, node: &dyn Node, ctx: Ctx, scratch: &mut Vec<u8>) -> Vec<Held> {
    let mut out = Vec::new();
    if !ctx.visible {
        return out;
    }
    let kind = node.kind();
    if kind != NodeKind::Struct && !ctx.filtered {
        return out;
    }
    let prim = node.primitive_elements();
    let id = node.id();
    let share = ctx.filtered && ctx.holder_tag != Some(DEFAULT_VIEW_TAG);
    node.entries(scratch, &mut |e| {
        let keep = match kind {
            NodeKind::Struct => field_shown(view, id, node.field_tag(e.index), ctx.filtered),
            _ => prim || e.child.is_some_and(|c| share || view.marks.contains(&c)),
        };
        if keep {
            let index = match (kind, e.child) {
                (NodeKind::Array, Some(c)) if !prim => c,
                _ => e.index,
            };
            out.push(Held {
                index,
                value: e.value.into(),
                child: e.child,
            });
        }
    });
    out
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
fn forget(mirror: &mut HashMap<u32, Vec<Held>>, id: u32) {
    let mut stack = vec![id];
    while let Some(id) = stack.pop() {
        if let Some(held) = mirror.remove(&id) {
            stack.extend(held.iter().filter_map(|h| h.child));
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
}

#[derive(Debug)]
struct SubNode {
    id: u32,
    depth: u32,
    /// Tag of the struct field holding it (in its parent).
    edge_tag: Option<i64>,
    fresh: bool,
    kind: NodeKind,
    /// Present entries: (index, field tag); index is the element refId for
    /// arrays of refs.
    entries: Vec<(u32, Option<i64>)>,
    /// Struct view fields: (index, tag).
    view_fields: Vec<(u32, i64)>,
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
fn find_targets(root: &dyn Node, targets: &HashSet<u32>, found: &mut HashMap<u32, Found>) {
    let mut chain = Vec::new();
    find_in(root, false, false, targets, found, &mut chain);
}

fn find_in(
    node: &dyn Node,
    filtered: bool,
    in_collection: bool,
    targets: &HashSet<u32>,
    found: &mut HashMap<u32, Found>,
    chain: &mut Vec<(u32, NodeKind, u32, bool, Option<i64>)>,
) {
    if targets.contains(&node.id()) {
        let mut f = Found {
            chain: chain.clone(),
            in_collection,
            filtered,
            ..Found::default()
        };
        collect_subtree(node, 0, None, &mut f.subtree);
        found.insert(node.id(), f);
    }
    let kind = node.kind();
    let has_filtered = filtered || node.has_view_fields();
    let prim = node.primitive_elements();
    node.children(&mut |index, child| {
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
        );
        chain.pop();
    });
}

fn collect_subtree(node: &dyn Node, depth: u32, edge_tag: Option<i64>, out: &mut Vec<SubNode>) {
    let kind = node.kind();
    let prim = node.primitive_elements();
    let mut entries = Vec::new();
    let mut view_fields = Vec::new();
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
        entries.push((index, tag));
        if let Some(t) = tag {
            view_fields.push((e.index, t));
        }
    });
    out.push(SubNode {
        id: node.id(),
        depth,
        edge_tag,
        fresh: node.fresh(),
        kind,
        entries,
        view_fields,
    });
    node.children(&mut |index, child| {
        let tag = if kind == NodeKind::Struct {
            node.field_tag(index)
        } else {
            None
        };
        collect_subtree(child, depth + 1, tag, out);
    });
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
        if p.show {
            show(view, f, p.tag, forced);
        } else {
            hide(view, f, p.tag, forced);
        }
    }
}

fn show(view: &mut ViewState, f: &Found, tag: i64, forced: &mut Forced) {
    let target = &f.subtree[0];
    let was_visible = view.marks.contains(&target.id);
    view.marks.insert(target.id);
    // Parent chain, root first.
    for (i, &(id, kind, key, has_filtered, field_tag)) in f.chain.iter().enumerate() {
        view.marks.insert(id);
        if !has_filtered {
            continue;
        }
        let _ = (i, kind);
        if let Some(t) = field_tag {
            if t != DEFAULT_VIEW_TAG && tag != DEFAULT_VIEW_TAG && tag_bits(t) & tag_bits(tag) != 0
            {
                *view.tags.entry(id).or_default() |= tag_bits(tag);
            }
        }
        forced_set(forced, id, Some((key, true)));
    }
    add_node(view, &f.subtree, 0, tag, forced, was_visible);
}

/// The reference's `_add` on `sub[at]` (children follow it in DFS order).
fn add_node(
    view: &mut ViewState,
    sub: &[SubNode],
    at: usize,
    tag: i64,
    forced: &mut Forced,
    was_visible: bool,
) -> bool {
    let n = &sub[at];
    view.marks.insert(n.id);
    if tag == DEFAULT_VIEW_TAG && n.fresh {
        // Sent in full by the patch anyway: mark the subtree.
        mark_subtree(view, sub, at, tag);
        return false;
    }
    forced_set(forced, n.id, None);
    let mut child_added = false;
    let mut c = at + 1;
    while c < sub.len() && sub[c].depth > n.depth {
        if sub[c].depth == n.depth + 1 && tag_admits(sub[c].edge_tag, tag) {
            let child_was = view.marks.contains(&sub[c].id);
            if add_node(view, sub, c, tag, forced, child_was) {
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
        for &(i, t) in &n.entries {
            if n.kind != NodeKind::Struct || tag_admits(t, tag) {
                forced_set(forced, n.id, Some((i, true)));
                child_added = true;
            }
        }
    }
    child_added
}

fn mark_subtree(view: &mut ViewState, sub: &[SubNode], at: usize, tag: i64) {
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
        if n.depth > depth && !tag_admits(n.edge_tag, tag) {
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
                    }
                }
            }
        } else {
            for &(i, _) in &target.view_fields {
                forced_set(forced, target.id, Some((i, false)));
            }
            // Fields' subtrees leave the view.
            let depth = target.depth;
            for n in f.subtree.iter().skip(1) {
                if n.depth > depth {
                    view.marks.remove(&n.id);
                }
            }
        }
        view.tags.remove(&target.id);
    } else {
        for &(i, t) in &target.view_fields {
            if t != DEFAULT_VIEW_TAG && tag_bits(t) & tag_bits(tag) != 0 {
                forced_set(forced, target.id, Some((i, false)));
            }
        }
        if let Some(b) = view.tags.get_mut(&target.id) {
            *b &= !tag_bits(tag);
        }
    }
}

/// Rendered blocks of a view patch, ordered at the end.
#[derive(Debug, Default)]
struct Blocks {
    /// Forced ops per refId (rendered when the walk meets the node).
    forced: HashMap<u32, Vec<u8>>,
    /// Diff blocks: (order key, bytes).
    diff: Vec<((u32, u32), Vec<u8>)>,
}

/// An entry copied out of a node: (index, key, value, child).
type Owned = (u32, Option<String>, Vec<u8>, Option<u32>);

/// Walks the state for one view: renders forced ops and the diff against
/// the mirror, updating it.
struct PatchWalk<'v> {
    view: &'v mut ViewState,
    forced: &'v Forced,
    blocks: Blocks,
    scratch: Vec<u8>,
    dfs: u32,
}

impl PatchWalk<'_> {
    fn visit(&mut self, node: &dyn Node, ctx: Ctx, order: u32, introduced: bool) {
        let id = node.id();
        let held = !ctx.filtered || self.view.mirror.contains_key(&id);
        if !held {
            return;
        }
        let kind = node.kind();
        let prim = node.primitive_elements();
        let projected = projection(self.view, node, ctx, &mut self.scratch);

        // Forced ops first (the reference's `view.changes`).
        if let Some((_, keys)) = self.forced.iter().find(|(r, _)| *r == id) {
            let mut out = Vec::new();
            let mut scratch = std::mem::take(&mut self.scratch);
            let mut all: Vec<Owned> = Vec::new();
            node.entries(&mut scratch, &mut |e| {
                let index = match (kind, e.child) {
                    (NodeKind::Array, Some(c)) if !prim => c,
                    _ => e.index,
                };
                all.push((index, e.key.map(str::to_owned), e.value.to_vec(), e.child));
            });
            self.scratch = scratch;
            for &(k, add) in keys {
                let now = all.iter().find(|a| a.0 == k);
                match (add, now) {
                    (true, Some((index, key, value, child))) => {
                        let wire_index = self.wire_index(kind, prim, *index, node);
                        write_op(
                            &mut out,
                            kind,
                            prim,
                            spec::ADD,
                            wire_index,
                            key.as_deref(),
                            value,
                        );
                        if projected.iter().any(|h| h.index == *index) {
                            self.hold(
                                id,
                                Held {
                                    index: *index,
                                    value: value.clone().into(),
                                    child: *child,
                                },
                            );
                        }
                    }
                    _ => {
                        write_op(&mut out, kind, prim, spec::DELETE, k, None, &[]);
                        self.release(id, k);
                    }
                }
            }
            self.blocks.forced.insert(id, out);
        }

        // Then the difference between the projection and what is held.
        let mut block = Vec::new();
        let held_now = self.view.mirror.get(&id).cloned().unwrap_or_default();
        let mut dirty: HashSet<u32> = HashSet::new();
        let mut keys: HashMap<u32, Option<String>> = HashMap::new();
        let mut fresh_children: HashSet<u32> = HashSet::new();
        {
            let mut scratch = std::mem::take(&mut self.scratch);
            node.entries(&mut scratch, &mut |e| {
                let index = match (kind, e.child) {
                    (NodeKind::Array, Some(c)) if !prim => c,
                    _ => e.index,
                };
                if e.dirty {
                    dirty.insert(index);
                }
                if kind == NodeKind::Map {
                    keys.insert(index, e.key.map(str::to_owned));
                }
            });
            self.scratch = scratch;
            node.children(&mut |_, c| {
                if c.fresh() {
                    fresh_children.insert(c.id());
                }
            });
        }
        if kind == NodeKind::Array && prim && (ctx.filtered || !projected.is_empty()) {
            // Positional: CLEAR and re-ADD when anything differs.
            if projected != held_now {
                if !held_now.is_empty() {
                    block.push(spec::CLEAR);
                }
                for h in &projected {
                    write_op(&mut block, kind, prim, spec::ADD, h.index, None, &h.value);
                }
                self.view.mirror.insert(id, projected.clone());
            }
        } else {
            let mut next: Vec<Held> = Vec::with_capacity(projected.len());
            for p in &projected {
                let before = held_now.iter().find(|h| h.index == p.index);
                let key = keys.get(&p.index).cloned().flatten();
                let wire_index = self.wire_index(kind, prim, p.index, node);
                match before {
                    None => {
                        write_op(
                            &mut block,
                            kind,
                            prim,
                            spec::ADD,
                            wire_index,
                            key.as_deref(),
                            &p.value,
                        );
                    }
                    Some(b) if b.value != p.value => {
                        let op = match (kind, b.child.is_some()) {
                            (_, true) => spec::DELETE_AND_ADD,
                            (NodeKind::Struct, false) => spec::ADD,
                            (_, false) => spec::REPLACE,
                        };
                        write_op(
                            &mut block,
                            kind,
                            prim,
                            op,
                            wire_index,
                            key.as_deref(),
                            &p.value,
                        );
                        if let Some(c) = b.child {
                            forget(&mut self.view.mirror, c);
                        }
                    }
                    Some(_) => {
                        // Unchanged for the client; the reference still
                        // sends a field (or a new entry) changed this tick.
                        let resend = dirty.contains(&p.index)
                            && (kind == NodeKind::Struct
                                || p.child.is_some_and(|c| fresh_children.contains(&c)));
                        if resend {
                            write_op(
                                &mut block,
                                kind,
                                prim,
                                spec::ADD,
                                wire_index,
                                key.as_deref(),
                                &p.value,
                            );
                        }
                    }
                }
                if let Some(c) = p.child {
                    self.view.mirror.entry(c).or_default();
                }
                next.push(p.clone());
            }
            for h in &held_now {
                if !projected.iter().any(|p| p.index == h.index) {
                    write_op(&mut block, kind, prim, spec::DELETE, h.index, None, &[]);
                    if let Some(c) = h.child {
                        forget(&mut self.view.mirror, c);
                    }
                }
            }
            if next.is_empty() && !ctx.filtered {
                self.view.mirror.remove(&id);
            } else {
                self.view.mirror.insert(id, next);
            }
        }
        self.dfs += 1;
        let seq = node.seq();
        let own = if seq == NO_SEQ { NO_SEQ } else { seq };
        let key = if introduced { own.max(order) } else { own };
        if !block.is_empty() {
            let mut out = Vec::with_capacity(block.len() + 6);
            header(&mut out, id);
            out.extend_from_slice(&block);
            self.blocks.diff.push(((key, self.dfs), out));
        }
        let introduced_now: HashSet<u32> = projected
            .iter()
            .filter(|p| {
                !held_now
                    .iter()
                    .any(|h| h.index == p.index && h.value == p.value)
            })
            .filter_map(|p| p.child)
            .collect();
        let view = &*self.view;
        let mut kids: Vec<(u32, Ctx, bool)> = Vec::new();
        node.children(&mut |index, c| {
            let cctx = child_ctx(view, node, ctx, index, c.id());
            kids.push((index, cctx, introduced_now.contains(&c.id())));
        });
        let mut i = 0;
        node.children(&mut |_, c| {
            let (_, cctx, intro) = kids[i];
            i += 1;
            self.visit(c, cctx, key, intro);
        });
    }

    /// The wire index of an entry (arrays of refs go by refId).
    fn wire_index(&self, _kind: NodeKind, _prim: bool, index: u32, _node: &dyn Node) -> u32 {
        index
    }

    fn hold(&mut self, id: u32, h: Held) {
        let list = self.view.mirror.entry(id).or_default();
        if let Some(c) = h.child {
            if let Some(old) = list.iter().find(|x| x.index == h.index) {
                if old.child != Some(c) {
                    if let Some(oc) = old.child {
                        forget(&mut self.view.mirror, oc);
                    }
                }
            }
            self.view.mirror.entry(c).or_default();
        }
        let list = self.view.mirror.entry(id).or_default();
        match list.iter_mut().find(|x| x.index == h.index) {
            Some(x) => *x = h,
            None => {
                list.push(h);
                list.sort_by_key(|x| x.index);
            }
        }
    }

    fn release(&mut self, id: u32, index: u32) {
        let Some(list) = self.view.mirror.get_mut(&id) else {
            return;
        };
        if let Some(p) = list.iter().position(|x| x.index == index) {
            let h = list.remove(p);
            if let Some(c) = h.child {
                forget(&mut self.view.mirror, c);
            }
        }
    }
}

/// Encodes the view part of the patch of every view (before the shared walk
/// settles the tick's changes).
pub(crate) fn encode_views(root: &dyn Node, tick: &mut Tick) {
    let views = &mut tick.views;
    views.purge();
    let targets: HashSet<u32> = views
        .each_mut()
        .flat_map(|v| v.pending.iter().map(|p| p.id))
        .collect();
    let mut found = HashMap::new();
    if !targets.is_empty() {
        find_targets(root, &targets, &mut found);
    }
    for view in views.each_mut() {
        let mut forced = Forced::new();
        apply_pending(view, &found, &mut forced);
        let mut walk = PatchWalk {
            view,
            forced: &forced,
            blocks: Blocks::default(),
            scratch: Vec::new(),
            dfs: 0,
        };
        let ctx = Ctx {
            visible: walk.view.marks.contains(&root.id()),
            ..ROOT_CTX
        };
        walk.visit(root, ctx, 0, false);
        let mut blocks = walk.blocks;
        let out = &mut view.out;
        out.clear();
        for (id, _) in &forced {
            if let Some(bytes) = blocks.forced.remove(id) {
                if !bytes.is_empty() {
                    header(out, *id);
                    out.extend_from_slice(&bytes);
                }
            }
        }
        blocks.diff.sort_by_key(|(k, _)| *k);
        for (_, bytes) in blocks.diff {
            out.extend_from_slice(&bytes);
        }
    }
}

/// Encodes the view part of a full state, and makes it what the view's
/// client holds.
pub(crate) fn encode_all_view(root: &dyn Node, tick: &mut Tick, id: ViewId) -> Option<()> {
    let views = &mut tick.views;
    views.purge();
    let view = views.get_mut(id)?;
    if !view.pending.is_empty() {
        let targets: HashSet<u32> = view.pending.iter().map(|p| p.id).collect();
        let mut found = HashMap::new();
        find_targets(root, &targets, &mut found);
        let mut forced = Forced::new();
        apply_pending(view, &found, &mut forced);
    }
    view.mirror.clear();
    view.mirror.insert(root.id(), Vec::new());
    let mut out = std::mem::take(&mut view.full);
    out.clear();
    let mut scratch = Vec::new();
    let ctx = Ctx {
        visible: view.marks.contains(&root.id()),
        ..ROOT_CTX
    };
    full_visit(view, root, ctx, &mut out, &mut scratch);
    view.full = out;
    view.out.clear();
    Some(())
}

fn full_visit(
    view: &mut ViewState,
    node: &dyn Node,
    ctx: Ctx,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    let id = node.id();
    let held = !ctx.filtered || view.mirror.contains_key(&id);
    if held {
        let projected = projection(view, node, ctx, scratch);
        let kind = node.kind();
        let prim = node.primitive_elements();
        if !projected.is_empty() {
            let mut keys: HashMap<u32, String> = HashMap::new();
            if kind == NodeKind::Map {
                node.entries(scratch, &mut |e| {
                    if let Some(k) = e.key {
                        keys.insert(e.index, k.to_owned());
                    }
                });
            }
            header(out, id);
            for p in &projected {
                write_op(
                    out,
                    kind,
                    prim,
                    spec::ADD,
                    p.index,
                    keys.get(&p.index).map(String::as_str),
                    &p.value,
                );
                if let Some(c) = p.child {
                    view.mirror.entry(c).or_default();
                }
            }
        }
        if !projected.is_empty() || ctx.filtered {
            view.mirror.insert(id, projected);
        }
    }
    let mut kids: Vec<Ctx> = Vec::new();
    {
        let v = &*view;
        node.children(&mut |index, c| kids.push(child_ctx(v, node, ctx, index, c.id())));
    }
    let mut i = 0;
    node.children(&mut |_, c| {
        let cctx = kids[i];
        i += 1;
        full_visit(view, c, cctx, out, scratch);
    });
}

impl Views {
    pub(crate) fn create_view(&mut self) -> ViewId {
        self.create()
    }
}
