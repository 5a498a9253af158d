//! The typed decoder's general path: messages applied straight to `T`.
//!
//! A message the fast path (`fast.rs`) does not take comes here. Each
//! message is parsed and validated by the parse pass every decoder shares,
//! then applied to `T` with, beside it, only the wire bookkeeping that `T`
//! cannot hold: a lean table giving each refId its shape, its place in `T`
//! (a field of its parent, or an entry handle of its parent collection —
//! an array element's handle is its position), its child refIds, and for a
//! map the key of each wire index. There is no dynamic value tree: a full
//! state builds `T` and this table, nothing else.
//!
//! It covers field changes; structures created and attached where
//! the message first references them; map, set and collection entries
//! added, replaced, deleted and cleared; every array operation (by index,
//! by refId, REVERSE, CLEAR, with the reference's semantics: a block runs
//! on a model of the elements with holes, then the array in `T` is set
//! once); structures moved between parents or positions and instances
//! held by two slots: each structure counts the slots referencing it; a
//! value the message moves (or that another slot still references) is
//! boxed into a limbo when its slot lets it go and taken from there by its
//! new slot; a slot referencing an instance whose value is elsewhere holds
//! a default value (a stand-in, given the value back if it comes to the
//! limbo) and counts as unrepresentable. Structures no slot references are
//! dropped at the end of the message (while callbacks are registered,
//! after they ran). A structure the message changes while nothing holds
//! its value (under one it released) has its changes dropped; moved back
//! into the state, or a collection of primitives whose removed values
//! callbacks would report, it counts as unrepresentable. The 3.x / 4.x
//! array semantics ([`Decoder::set_dialect`](crate::decoder::Decoder::set_dialect))
//! run in the same block model: an ADD at an occupied index but 0
//! overwrites, and the child it or DELETE_BY_REFID removes keeps its
//! reference (a leak later messages may rely on): its value goes to the
//! limbo, where those messages find it. A
//! message is applied entirely or not at all: the parse pass validates it
//! before anything is written.

use std::any::TypeId as RustTypeId;
use std::collections::{HashMap, HashSet};

use crate::decoder::base::array_items::ArrayItems;
use crate::decoder::base::parse::{
    key_at, key_bytes_at, read_primitive, Parser, Scalar, Shape, ShapeSource, Step, NO_KEY,
};
use crate::decoder::base::reference_tracker::{RefId, RefIdHasherBuilder, RefMap};
use crate::decoder::callbacks::{
    record_entry, record_field, Callbacks, Key, Recorded, Structures, Tree,
};
use crate::decoder::fast::Fast;
use crate::decoder::typed::{DecodeNode, FieldInput, Planned};
use crate::decoder::{Str, Value, MAX_DEPTH};
use crate::types::{CollectionKind, ElementType, FieldDef, FieldType, Primitive, TypeRegistry};
use crate::wire::spec::{ADD, ADD_BY_REFID, DELETE, DELETE_AND_ADD, DELETE_AND_MOVE, REPLACE};
use crate::wire::{DecodeError, Reader};

/// Where a structure lives in `T`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The root.
    Root,
    /// Field `i` of its parent struct.
    Field(u8),
    /// The entry of its parent collection at this handle-table place
    /// (stable while the entry lives).
    Entry(u32),
    /// Nowhere: the Rust types could not hold it (a polymorphic child of
    /// a type the field has no variant for), or its parent is nowhere. Its
    /// changes are dropped; the wire bookkeeping goes on.
    Detached,
    /// Boxed in the decoder's limbo: taken out of `T` by a message that
    /// moves it (until its new slot takes it), or released by the slot
    /// holding its value while another slot still references it.
    Limbo,
}

/// One structure of the state (small, and plain scalars when it holds no
/// child: a full state makes one per entity).
#[derive(Debug)]
pub(crate) struct Lean {
    pub(crate) shape: Shape,
    /// The structure holding it (the root: itself).
    pub(crate) parent: RefId,
    pub(crate) place: Place,
    /// What it holds beside its values in `T` (`None`: a struct without
    /// children).
    pub(crate) data: Option<Box<LeanData>>,
    /// The message of the fast path that made it (0: another path did);
    /// its fields need no undo record while that message is applied.
    pub(crate) born: u64,
    /// The slots of the state that reference it (one but for an instance
    /// moved or shared); at zero it is dropped at the end of the message.
    pub(crate) rc: u32,
}

/// What a structure holds beside its values in `T`.
#[derive(Debug)]
pub(crate) enum LeanData {
    /// Child fields: (field index, child).
    Struct(Vec<(u8, RefId)>),
    Map(Box<LeanMap>),
    /// `SetSchema` and `CollectionSchema`.
    Indexed(Box<LeanIndexed>),
    /// An array: its elements in order.
    Array(Vec<ArrayElem>),
}

/// One element of an array.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrayElem {
    /// The child it is (child element types).
    pub(crate) child: Option<RefId>,
    /// Whether `T` holds it: its position in `T` is then the number of
    /// held elements before it.
    pub(crate) held: bool,
}

#[derive(Debug, Default)]
pub(crate) struct LeanMap {
    /// Wire index → key (several indexes may name one key, as in the
    /// reference decoder).
    pub(crate) indexes: RefMap<Str>,
    /// Entry handle → child (child elements only).
    pub(crate) children: RefMap<RefId>,
    /// Children the element type could not hold, with their key.
    pub(crate) orphans: Vec<(Str, RefId)>,
}

#[derive(Debug, Default)]
pub(crate) struct LeanIndexed {
    /// Wire index → (entry handle, or [`NO_HANDLE`] when the element type
    /// could not hold the value; child).
    pub(crate) by_index: RefMap<(u32, Option<RefId>)>,
    /// Entry handle → wire index.
    pub(crate) by_handle: RefMap<u32>,
}

/// [`LeanIndexed::by_index`] of an entry `T` does not hold.
pub(crate) const NO_HANDLE: u32 = u32::MAX;

impl Lean {
    pub(crate) fn new(shape: Shape, parent: RefId, place: Place) -> Self {
        let data = match shape {
            Shape::Struct(_) => None,
            Shape::Collection(CollectionKind::Map, _) => {
                Some(Box::new(LeanData::Map(Box::default())))
            }
            Shape::Collection(CollectionKind::Array, _) => {
                Some(Box::new(LeanData::Array(Vec::new())))
            }
            Shape::Collection(CollectionKind::Set | CollectionKind::Collection, _) => {
                Some(Box::new(LeanData::Indexed(Box::default())))
            }
        };
        Self {
            shape,
            parent,
            place,
            data,
            born: 0,
            rc: 1,
        }
    }
}

impl Lean {
    #[inline]
    pub(crate) fn data(&self) -> Option<&LeanData> {
        self.data.as_deref()
    }

    #[inline]
    pub(crate) fn data_mut(&mut self) -> Option<&mut LeanData> {
        self.data.as_deref_mut()
    }

    /// A struct's child fields.
    #[inline]
    pub(crate) fn children(&self) -> &[(u8, RefId)] {
        match self.data() {
            Some(LeanData::Struct(c)) => c,
            _ => &[],
        }
    }

    /// A struct's child fields, to change.
    pub(crate) fn children_mut(&mut self) -> Option<&mut Vec<(u8, RefId)>> {
        if self.data.is_none() && matches!(self.shape, Shape::Struct(_)) {
            self.data = Some(Box::new(LeanData::Struct(Vec::new())));
        }
        match self.data_mut() {
            Some(LeanData::Struct(c)) => Some(c),
            _ => None,
        }
    }
}

/// The lean table and `T` as the parse pass sees them: it writes the
/// primitive fields of the structs `T` holds in place (and puts them back
/// if the message is rejected).
pub(crate) struct Lookup<'a> {
    nodes: &'a RefMap<Lean>,
    root: &'a mut dyn DecodeNode,
    path: &'a mut Vec<Place>,
    /// The structure whose path `path` holds (`None`: none yet); its
    /// siblings reuse all but the last step.
    last: Option<RefId>,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(
        nodes: &'a RefMap<Lean>,
        root: &'a mut dyn DecodeNode,
        path: &'a mut Vec<Place>,
    ) -> Self {
        Self {
            nodes,
            root,
            path,
            last: None,
        }
    }
}

impl ShapeSource for Lookup<'_> {
    type Typed = dyn DecodeNode;

    #[inline]
    fn shape_of(&self, id: RefId) -> Option<Shape> {
        self.nodes.get(id).map(|n| n.shape)
    }

    fn map_has_index(&self, map: RefId, index: u32) -> bool {
        matches!(
            self.nodes.get(map).and_then(Lean::data),
            Some(LeanData::Map(m)) if m.indexes.contains(RefId(index))
        )
    }

    fn typed_node(&mut self, id: RefId) -> Option<&mut dyn DecodeNode> {
        // A sibling of the last struct (a patch changing every entity of a
        // map): the same path but for its last step.
        let sibling = match (self.last, self.nodes.get(id)) {
            (Some(last), Some(n)) if last != id => {
                matches!(n.place, Place::Entry(_) | Place::Field(_))
                    && self.nodes.get(last).is_some_and(|l| l.parent == n.parent)
                    && self.path.last().is_some()
            }
            (Some(last), Some(_)) => last == id,
            _ => false,
        };
        if sibling {
            if let (Some(step), Some(n)) = (self.path.last_mut(), self.nodes.get(id)) {
                *step = n.place;
            }
        } else {
            self.last = None;
            if !path_to(self.nodes, id, self.path) {
                return None;
            }
        }
        self.last = Some(id);
        node_at(&mut *self.root, self.path)
    }
}

/// The node at the end of `path` from `node`.
fn node_at<'a>(node: &'a mut dyn DecodeNode, path: &[Place]) -> Option<&'a mut dyn DecodeNode> {
    let mut n = node;
    for p in path {
        n = match *p {
            Place::Field(i) => n.__decode_child_mut(i)?,
            Place::Entry(h) => n.__decode_handle_mut(h)?,
            Place::Root | Place::Detached | Place::Limbo => return None,
        };
    }
    Some(n)
}

/// The lean table as callbacks see it, with the collections the current
/// message released (and the struct field that held them).
struct LeanTree<'a> {
    nodes: &'a RefMap<Lean>,
    gone: &'a [(RefId, RefId, u8)],
}

impl Structures for RefMap<Lean> {
    fn shape(&self, id: RefId) -> Option<Shape> {
        self.get(id).map(|n| n.shape)
    }

    fn owner(&self, id: RefId) -> Option<(RefId, u8)> {
        LeanTree {
            nodes: self,
            gone: &[],
        }
        .owner(id)
    }
}

impl Structures for LeanTree<'_> {
    fn shape(&self, id: RefId) -> Option<Shape> {
        self.nodes.get(id).map(|n| n.shape)
    }

    fn owner(&self, id: RefId) -> Option<(RefId, u8)> {
        match self.nodes.get(id).map(|n| (n.place, n.parent)) {
            Some((Place::Field(i), parent)) => Some((parent, i)),
            _ => self.gone.iter().find(|g| g.0 == id).map(|g| (g.1, g.2)),
        }
    }
}

/// The typed decoder's state (everything but `T`).
#[derive(Debug)]
pub(crate) struct Direct {
    pub(crate) types: TypeRegistry,
    parser: Parser,
    pub(crate) nodes: RefMap<Lean>,
    /// Runs of primitive field writes waiting for one walk: (struct, start,
    /// end of the run in the message).
    pending: Vec<(RefId, u32, u32)>,
    /// Scratch: a path from the root.
    path: Vec<Place>,
    /// Scratch: structures being released.
    stack: Vec<RefId>,
    /// Decode like `@colyseus/schema` 3.x / 4.x.
    pub(crate) legacy: bool,
    /// Changes the Rust types could not hold.
    pub(crate) unrepresentable: u64,
    /// The fast path's state.
    pub(crate) fast: Fast,
    /// The change callbacks.
    pub(crate) callbacks: Callbacks,
    /// The changes of the current message, while callbacks are registered.
    recorded: Vec<Recorded>,
    /// Whether the current message records its changes.
    recording: bool,
    /// Collections the current message released, with the struct field
    /// that held them (for the callbacks registered on that field).
    gone: Vec<(RefId, RefId, u8)>,
    /// Structures the current message released (their callbacks are
    /// dropped after the dispatch).
    released: Vec<RefId>,
    /// Structures the current message released while callbacks are
    /// registered: detached from `T` at once, dropped after the dispatch
    /// (a callback may still register on them, as on a dynamic decoder's
    /// structures, collected after its dispatch).
    deferred: Vec<RefId>,
    /// While recording: the fields the current message wrote so far in
    /// each structure it creates (the others have no previous value).
    written: RefMap<u64>,
    /// Values taken out of `T` (see [`Place::Limbo`]).
    limbo: Limbo,
    /// Children the current message moves (references again), and, with
    /// their ancestors, the structures whose value must outlive their
    /// slot (boxed into the limbo when the slot lets them go).
    moved: Vec<RefId>,
    keep: HashSet<RefId, RefIdHasherBuilder>,
    /// Values of moved children taken for the current operation.
    hand: Limbo,
    /// Slots holding a default value for a child whose value is elsewhere
    /// (it was moved from there, or referenced there again): (child,
    /// parent, place). If the value ends in the limbo while the slot still
    /// references the child, it goes back there.
    standins: Vec<(RefId, RefId, Place)>,
    /// Whether a message was applied: before, the root's fields have no
    /// value yet (for the callbacks, as in the dynamic decoder).
    pub(crate) started: bool,
    /// References no slot holds (3.x / 4.x array semantics): they keep
    /// the child addressable for good.
    leaks: HashMap<RefId, u32, RefIdHasherBuilder>,
}

/// Calls `step` with each place from `id` up to the root's child (the
/// deepest first) and the refId that place holds; `false` when `id` is not
/// in `T` (or deeper than [`MAX_DEPTH`]).
pub(crate) fn steps_up(
    nodes: &RefMap<Lean>,
    mut id: RefId,
    mut step: impl FnMut(Place, RefId),
) -> bool {
    for _ in 0..=MAX_DEPTH {
        let Some(n) = nodes.get(id) else {
            return false;
        };
        match n.place {
            Place::Root => return true,
            Place::Detached | Place::Limbo => return false,
            p => step(p, id),
        }
        id = n.parent;
    }
    false
}

/// The places from the root down to `id` into `path`; `false` when `id`
/// is not in `T` (or deeper than [`MAX_DEPTH`]).
pub(crate) fn path_to(nodes: &RefMap<Lean>, id: RefId, path: &mut Vec<Place>) -> bool {
    path.clear();
    let found = steps_up(nodes, id, |p, _| path.push(p));
    path.reverse();
    found
}

/// Calls `f` with the node at the end of `path` from `node`; `false` if
/// `T` has no value there.
pub(crate) fn descend(
    node: &mut dyn DecodeNode,
    path: &[Place],
    f: &mut dyn FnMut(&mut dyn DecodeNode),
) -> bool {
    let Some((first, rest)) = path.split_first() else {
        f(node);
        return true;
    };
    let mut found = false;
    let mut inner = |n: &mut dyn DecodeNode| found = descend(n, rest, f);
    match *first {
        Place::Field(i) => node.__decode_visit_child(i, &mut inner),
        Place::Entry(h) => node.__decode_visit_handle(h, &mut inner),
        Place::Root | Place::Detached | Place::Limbo => {}
    }
    found
}

/// The values taken out of `T` (see [`Place::Limbo`]).
#[derive(Default)]
pub(crate) struct Limbo(HashMap<RefId, Box<dyn DecodeNode>, RefIdHasherBuilder>);

impl std::fmt::Debug for Limbo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Limbo").field(&self.0.len()).finish()
    }
}

/// The places from `id`'s anchor down to `id` into `path`, and the anchor:
/// the root, or a structure in the limbo (`None`: `id` has no value).
fn anchor_path(nodes: &RefMap<Lean>, mut id: RefId, path: &mut Vec<Place>) -> Option<RefId> {
    path.clear();
    for _ in 0..=MAX_DEPTH {
        let n = nodes.get(id)?;
        match n.place {
            Place::Root | Place::Limbo => {
                path.reverse();
                return Some(id);
            }
            Place::Detached => return None,
            p => path.push(p),
        }
        id = n.parent;
    }
    None
}

/// Calls `f` with the value of structure `id` (in `T`, or under a
/// structure in the limbo); `false` if it has none.
pub(crate) fn value_of(
    nodes: &RefMap<Lean>,
    limbo: &mut Limbo,
    root: &mut dyn DecodeNode,
    id: RefId,
    path: &mut Vec<Place>,
    f: &mut dyn FnMut(&mut dyn DecodeNode),
) -> bool {
    match anchor_path(nodes, id, path).and_then(|a| anchored(root, limbo, a)) {
        Some(anchor) => descend(anchor, path, f),
        None => false,
    }
}

/// The value of anchor `a` (see [`anchor_path`]).
fn anchored<'r>(
    root: &'r mut dyn DecodeNode,
    limbo: &'r mut Limbo,
    a: RefId,
) -> Option<&'r mut dyn DecodeNode> {
    if a == RefId::ROOT {
        return Some(root);
    }
    let value = limbo.0.get_mut(&a)?;
    Some(&mut **value)
}

/// The child at `place` of `parent`, moved out (a placeholder left).
fn take_at(parent: &mut dyn DecodeNode, place: Place) -> Option<Box<dyn DecodeNode>> {
    match place {
        Place::Field(i) => parent.__decode_take_child(i),
        Place::Entry(h) => parent.__decode_take_handle(h),
        Place::Root | Place::Detached | Place::Limbo => None,
    }
}

/// The Rust type of a new structure of this shape (`None`: a collection,
/// or a type the state's Rust types do not have).
fn rust_type(rust_types: &[Option<RustTypeId>], shape: Shape) -> Option<RustTypeId> {
    match shape {
        Shape::Struct(t) => rust_types.get(t.0 as usize).copied().flatten(),
        Shape::Collection(..) => None,
    }
}

/// Writes a run of primitive field operations (bytes `start..end` of the
/// message, validated by the parse pass) into `n`; the number of fields
/// that did not fit.
fn write_run(
    n: &mut dyn DecodeNode,
    bytes: &[u8],
    (start, end): (u32, u32),
    defs: &[FieldDef],
    rec: Option<Rec<'_>>,
) -> u64 {
    if let Some(rec) = rec {
        return write_run_recorded(n, bytes, (start, end), defs, rec);
    }
    let Some(head) = bytes.get(..end as usize) else {
        return 0;
    };
    // A reader over the message up to the end of the run, so that string
    // ranges are offsets in the message.
    let mut r = Reader::new(head);
    let mut pos = start as usize;
    let mut failed = 0;
    while let Some(&byte) = head.get(pos) {
        let index = byte & 0x3f;
        let Some(FieldType::Primitive(p)) = defs.get(usize::from(index)).map(|f| f.ty) else {
            break;
        };
        let ok = if byte & 0xc0 == DELETE {
            pos += 1;
            n.__decode_field(index, FieldInput::Delete)
        } else if let (Primitive::Float32, Some(&[a, b, c, d])) = (p, head.get(pos + 1..pos + 5)) {
            // The common case, inline.
            pos += 5;
            let v = Value::Number(f32::from_le_bytes([a, b, c, d]).into());
            n.__decode_field(index, FieldInput::Primitive(&v))
        } else {
            r.set_offset(pos + 1);
            let Ok(scalar) = read_primitive(&mut r, p) else {
                break;
            };
            pos = r.offset();
            match scalar.str_in(bytes) {
                Some(s) => n.__decode_field(index, FieldInput::Str(s)),
                None => match scalar.primitive_value(bytes, |_| Value::Bool(false)) {
                    Some(v) => n.__decode_field(index, FieldInput::Primitive(&v)),
                    None => break,
                },
            }
        };
        if !ok {
            failed += 1;
        }
    }
    failed
}

/// Where the changes of a run of field writes are recorded: the list, the
/// struct, and whether the message created it (its fields had no value).
type Rec<'r> = (&'r mut Vec<Recorded>, RefId, Option<&'r mut u64>);

/// [`write_run`] recording each change (value before and after) for the
/// callbacks.
fn write_run_recorded(
    n: &mut dyn DecodeNode,
    bytes: &[u8],
    (start, end): (u32, u32),
    defs: &[FieldDef],
    (recorded, id, mut fresh): Rec<'_>,
) -> u64 {
    let Some(head) = bytes.get(..end as usize) else {
        return 0;
    };
    let mut r = Reader::new(head);
    let mut pos = start as usize;
    let mut failed = 0;
    while let Some(&byte) = head.get(pos) {
        let index = byte & 0x3f;
        let Some(FieldType::Primitive(p)) = defs.get(usize::from(index)).map(|f| f.ty) else {
            break;
        };
        let previous = if unwritten(fresh.as_deref_mut(), index) {
            None
        } else {
            n.__decode_read_field(index, p)
        };
        let (ok, value) = if byte & 0xc0 == DELETE {
            pos += 1;
            (n.__decode_field(index, FieldInput::Delete), None)
        } else if let (Primitive::Float32, Some(&[a, b, c, d])) = (p, head.get(pos + 1..pos + 5)) {
            // The common case, inline.
            pos += 5;
            let v = Value::Number(f32::from_le_bytes([a, b, c, d]).into());
            (n.__decode_field(index, FieldInput::Primitive(&v)), Some(v))
        } else {
            r.set_offset(pos + 1);
            let Ok(scalar) = read_primitive(&mut r, p) else {
                break;
            };
            pos = r.offset();
            let Some(v) = scalar.primitive_value(bytes, |s| Value::String(Str::from(s))) else {
                break;
            };
            (n.__decode_field(index, FieldInput::Primitive(&v)), Some(v))
        };
        if !ok {
            failed += 1;
        }
        record_field(recorded, id, index, previous, value);
    }
    failed
}

/// Whether field `index` of a new structure (`fresh`: the fields the
/// message wrote in it so far) has no value yet; marks it written.
fn unwritten(fresh: Option<&mut u64>, index: u8) -> bool {
    let Some(written) = fresh else {
        return false;
    };
    let bit = 1u64 << (index & 0x3f);
    let first = *written & bit == 0;
    *written |= bit;
    first
}

/// The fields the message wrote so far in structure `id` if it has no
/// value before the message (one it creates, or the root in the first
/// message).
fn fresh_fields<'w>(
    written: &'w mut RefMap<u64>,
    created: &RefMap<Shape>,
    started: bool,
    id: RefId,
) -> Option<&'w mut u64> {
    if !(created.contains(id) || (id == RefId::ROOT && !started)) {
        return None;
    }
    if !written.contains(id) {
        written.insert(id, 0);
    }
    written.get_mut(id)
}

/// The value a callback reports for a value read by the parse pass.
fn scalar_value(scalar: Scalar, bytes: &[u8]) -> Option<Value> {
    match scalar {
        Scalar::Child { id, .. } => Some(Value::Ref(id)),
        Scalar::None => None,
        s => s.primitive_value(bytes, |s| Value::String(Str::from(s))),
    }
}

/// The primitive wire type of a collection's elements.
fn element_primitive(shape: Shape) -> Option<Primitive> {
    match shape {
        Shape::Collection(_, ElementType::Primitive(p)) => Some(p),
        Shape::Collection(..) | Shape::Struct(_) => None,
    }
}

/// Records a removal for every entry of collection `id`, whose value in
/// `T` is `c` (CLEAR, or the collection replaced in its field).
fn record_removals(
    nodes: &RefMap<Lean>,
    c: &mut dyn DecodeNode,
    id: RefId,
    recorded: &mut Vec<Recorded>,
) {
    let Some(node) = nodes.get(id) else {
        return;
    };
    let data = node.data();
    if let Some(LeanData::Array(items)) = data {
        let p = element_primitive(node.shape);
        let mut q = 0;
        for (i, e) in items.iter().enumerate() {
            let value = match (e.child, p, e.held) {
                (Some(child), ..) => Some(Value::Ref(child)),
                (None, Some(p), true) => c.__decode_handle_value(q, p),
                _ => None,
            };
            q += u32::from(e.held);
            if let Some(value) = value {
                recorded.push(Recorded::Removed {
                    collection: id,
                    key: Key::Index(i as u64),
                    value,
                });
            }
        }
        return;
    }
    c.__decode_each(element_primitive(node.shape), &mut |h, key, v| {
        let (key, child) = match data {
            Some(LeanData::Map(m)) => (
                Key::Str(key.unwrap_or_default().into()),
                m.children.get(RefId(h)).copied(),
            ),
            Some(LeanData::Indexed(x)) => {
                let Some(&index) = x.by_handle.get(RefId(h)) else {
                    return;
                };
                (
                    Key::Index(u64::from(index)),
                    x.by_index.get(RefId(index)).and_then(|e| e.1),
                )
            }
            _ => return,
        };
        if let Some(value) = child.map(Value::Ref).or(v) {
            recorded.push(Recorded::Removed {
                collection: id,
                key,
                value,
            });
        }
    });
}

/// The input that writes a value read by the parse pass (`value` holds a
/// primitive's [`Value`] for it to borrow), the child it references and
/// whether its value comes from `hand` (a child moved here).
fn input_of<'v>(
    scalar: Scalar,
    bytes: &'v [u8],
    value: &'v mut Option<Value>,
    rust_types: &[Option<RustTypeId>],
    (created, nodes): (&RefMap<Shape>, &RefMap<Lean>),
    hand: &mut Limbo,
) -> (FieldInput<'v>, Option<(RefId, Shape)>, bool) {
    match scalar {
        Scalar::Child { id, create } => {
            let shape = match create {
                true => created.get(id).copied(),
                false => nodes
                    .get(id)
                    .map(|n| n.shape)
                    .or_else(|| created.get(id).copied()),
            };
            let Some(shape) = shape else {
                return (FieldInput::Delete, None, false);
            };
            match hand.0.remove(&id) {
                Some(moved) => (FieldInput::Moved(moved), Some((id, shape)), true),
                None => (
                    FieldInput::New(rust_type(rust_types, shape)),
                    Some((id, shape)),
                    false,
                ),
            }
        }
        Scalar::None => (FieldInput::Delete, None, false),
        Scalar::Str { .. } => (
            FieldInput::Str(scalar.str_in(bytes).unwrap_or_default()),
            None,
            false,
        ),
        s => {
            *value = s.primitive_value(bytes, |_| Value::Bool(false));
            match value {
                Some(v) => (FieldInput::Primitive(v), None, false),
                None => (FieldInput::Delete, None, false),
            }
        }
    }
}

impl Direct {
    pub(crate) fn new(types: TypeRegistry) -> Self {
        let mut nodes = RefMap::default();
        nodes.insert(
            RefId::ROOT,
            Lean::new(Shape::Struct(types.root()), RefId::ROOT, Place::Root),
        );
        Self {
            types,
            parser: Parser::default(),
            nodes,
            pending: Vec::new(),
            path: Vec::new(),
            stack: Vec::new(),
            legacy: false,
            unrepresentable: 0,
            fast: Fast::default(),
            callbacks: Callbacks::default(),
            recorded: Vec::new(),
            recording: false,
            gone: Vec::new(),
            released: Vec::new(),
            deferred: Vec::new(),
            written: RefMap::default(),
            limbo: Limbo::default(),
            moved: Vec::new(),
            keep: HashSet::default(),
            hand: Limbo::default(),
            standins: Vec::new(),
            started: false,
            leaks: HashMap::default(),
        }
    }

    /// Parses `bytes` and applies them to `root` (nothing on `Err`).
    pub(crate) fn decode(
        &mut self,
        bytes: &[u8],
        root: &mut dyn DecodeNode,
        rust_types: &[Option<RustTypeId>],
    ) -> Result<(), DecodeError> {
        // Primitive fields of the structs `T` holds are written while
        // parsing (put back if the message is rejected),
        // unless callbacks need every change in message order.
        self.callbacks.merge();
        self.recording = self.callbacks.is_active();
        self.parser.eager = !self.recording;
        let mut lookup = Lookup::new(&self.nodes, &mut *root, &mut self.path);
        self.parser.parse(bytes, &self.types, &mut lookup)?;
        self.unrepresentable += self.parser.typed_failed;
        let steps = std::mem::take(&mut self.parser.steps);
        self.written.clear();
        self.find_moves(&steps);
        self.apply(bytes, &steps, root, rust_types);
        self.parser.steps = steps;
        if self.recording {
            self.dispatch(root);
        } else {
            self.collect();
        }
        if !self.moved.is_empty() {
            self.settle_moves(root);
        } else if !self.standins.is_empty() {
            self.restore(root);
        }
        self.started = true;
        Ok(())
    }

    /// The children the message references again (moves), and the
    /// structures whose value must outlive their slot for that: those
    /// children and their ancestors.
    fn find_moves(&mut self, steps: &[Step]) {
        for step in steps {
            if let Step::Field { value, .. }
            | Step::Entry { value, .. }
            | Step::AddByRefId(_, value) = *step
            {
                if let Scalar::Child { id, create: false } = value {
                    self.moved.push(id);
                }
            }
        }
        for &m in &self.moved {
            let mut id = m;
            for _ in 0..=MAX_DEPTH {
                if id == RefId::ROOT || !self.keep.insert(id) {
                    break;
                }
                match self.nodes.get(id) {
                    Some(n) => id = n.parent,
                    None => break,
                }
            }
        }
    }

    /// After a message with moves: an instance still referenced by two
    /// slots is held by one of them (the other has a default value).
    fn settle_moves(&mut self, root: &mut dyn DecodeNode) {
        self.restore(root);
        for &m in &self.moved {
            // (Shared, or referenced by a slot holding a default value
            // while its own value waits in the limbo.)
            let held = self
                .nodes
                .get(m)
                .map(|n| (slots(&self.leaks, m, n.rc), n.place));
            if held.is_some_and(|(s, place)| s > 1 || (s == 1 && place == Place::Limbo)) {
                self.unrepresentable += 1;
            }
        }
        self.moved.clear();
        self.keep.clear();
        // (Values no operation took: their slot let them go.)
        for (id, value) in self.hand.0.drain() {
            self.limbo.0.insert(id, value);
        }
    }

    /// Runs the callbacks of the changes recorded by the message, then
    /// drops those of the structures it released.
    fn dispatch(&mut self, root: &mut dyn DecodeNode) {
        if !self.recorded.is_empty() {
            let recorded = std::mem::take(&mut self.recorded);
            let typed: &dyn DecodeNode = &*root;
            let lean = LeanTree {
                nodes: &self.nodes,
                gone: &self.gone,
            };
            let tree = Tree::typed(&lean, typed);
            self.callbacks.dispatch(&self.types, tree, &recorded);
            self.recorded = recorded;
            self.recorded.clear();
        }
        self.collect();
        for &id in &self.released {
            self.callbacks.forget(id);
        }
        self.released.clear();
        self.gone.clear();
    }

    /// Records a removal for every entry of collection `id` (the
    /// collection replaced in its field), from its value in `T`.
    fn record_removal_of_all(&mut self, root: &mut dyn DecodeNode, id: RefId) {
        self.with_node(root, id, |d, c| {
            record_removals(&d.nodes, c, id, &mut d.recorded);
        });
    }
}

impl Direct {
    fn apply(
        &mut self,
        bytes: &[u8],
        steps: &[Step],
        root: &mut dyn DecodeNode,
        rust_types: &[Option<RustTypeId>],
    ) {
        if self.parser.created.len() != 0 {
            self.nodes.reserve_dense(self.parser.created.len());
        }
        let mut current = RefId::ROOT;
        let mut i = 0;
        while let Some(&step) = steps.get(i) {
            i += 1;
            match step {
                Step::Switch(id) => current = id,
                Step::Fields { start, end } => self.pending.push((current, start, end)),
                Step::Field { op, index, value } => {
                    self.flush(bytes, root);
                    self.field(bytes, root, rust_types, current, op, index, value);
                }
                Step::Entry { .. }
                | Step::Clear
                | Step::Reverse
                | Step::DeleteByRefId(_)
                | Step::AddByRefId(..) => {
                    // The block's run of collection operations, after one
                    // walk.
                    let start = i - 1;
                    while steps.get(i).is_some_and(|s| is_collection_step(*s)) {
                        i += 1;
                    }
                    self.flush(bytes, root);
                    self.entries(bytes, root, rust_types, current, &steps[start..i]);
                }
            }
        }
        self.flush(bytes, root);
    }

    /// Writes the queued runs of primitive fields: one walk per run of
    /// entries of one collection (a patch moving every entity of a map
    /// walks to the map once), one per struct elsewhere.
    fn flush(&mut self, bytes: &[u8], root: &mut dyn DecodeNode) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let nodes = &self.nodes;
        let types = &self.types;
        let recording = self.recording;
        let created = &self.parser.created;
        let started = self.started;
        // (Fields without a value: those of the structures the message
        // creates, and the root's in the first message, until written.)
        let written = &mut self.written;
        let recorded = &mut self.recorded;
        let mut failed = 0;
        let mut i = 0;
        while let Some(&(id, start, end)) = pending.get(i) {
            i += 1;
            // (A structure released earlier in the message has no value.)
            let Some(node) = nodes.get(id) else {
                continue;
            };
            let Shape::Struct(ty) = node.shape else {
                continue;
            };
            if let Place::Entry(_) = node.place {
                let parent = node.parent;
                let first = i - 1;
                while pending.get(i).is_some_and(|p| {
                    nodes
                        .get(p.0)
                        .is_some_and(|n| n.parent == parent && matches!(n.place, Place::Entry(_)))
                }) {
                    i += 1;
                }
                let Some(a) = anchor_path(nodes, parent, &mut self.path) else {
                    continue;
                };
                let Some(anchor) = anchored(&mut *root, &mut self.limbo, a) else {
                    continue;
                };
                let run = &pending[first..i];
                descend(anchor, &self.path, &mut |p| {
                    for &(id, start, end) in run {
                        let Some(&Lean {
                            place: Place::Entry(h),
                            shape: Shape::Struct(ty),
                            ..
                        }) = nodes.get(id)
                        else {
                            continue;
                        };
                        let defs = types.fields(ty);
                        p.__decode_visit_handle(h, &mut |e| {
                            let rec = recording.then(|| {
                                let fresh = fresh_fields(written, created, started, id);
                                (&mut *recorded, id, fresh)
                            });
                            failed += write_run(e, bytes, (start, end), defs, rec);
                        });
                    }
                });
            } else if let Some(anchor) = anchor_path(nodes, id, &mut self.path)
                .and_then(|a| anchored(&mut *root, &mut self.limbo, a))
            {
                let defs = types.fields(ty);
                descend(anchor, &self.path, &mut |n| {
                    let rec = recording.then(|| {
                        let fresh = fresh_fields(written, created, started, id);
                        (&mut *recorded, id, fresh)
                    });
                    failed += write_run(n, bytes, (start, end), defs, rec);
                });
            } else if recording {
                // A struct `T` does not hold (released by the message, or
                // of a type it has no place for): its changes are still
                // reported, from no previous value.
                let mut written = 0;
                let rec = (&mut *recorded, id, Some(&mut written));
                write_run(
                    &mut Unheld,
                    bytes,
                    (start, end),
                    types.fields(ty),
                    Some(rec),
                );
            }
        }
        self.unrepresentable += failed;
        self.pending = pending;
        self.pending.clear();
    }

    /// A field operation on struct `current` (other than a run of
    /// primitive writes).
    #[allow(clippy::too_many_arguments, reason = "the step's parts")]
    fn field(
        &mut self,
        bytes: &[u8],
        root: &mut dyn DecodeNode,
        rust_types: &[Option<RustTypeId>],
        current: RefId,
        op: u8,
        index: u8,
        value: Scalar,
    ) {
        let Some(node) = self.nodes.get(current) else {
            return;
        };
        if !matches!(node.shape, Shape::Struct(_)) {
            return;
        }
        let prev = node.children().iter().find(|c| c.0 == index).map(|c| c.1);
        let scalar = if op == DELETE { Scalar::None } else { value };
        let fresh = self.recording
            && unwritten(
                fresh_fields(
                    &mut self.written,
                    &self.parser.created,
                    self.started,
                    current,
                ),
                index,
            );
        let primitive = match (node.shape, self.recording) {
            (Shape::Struct(ty), true) => match self.types.fields(ty).get(usize::from(index)) {
                Some(FieldDef {
                    ty: FieldType::Primitive(p),
                    ..
                }) => Some(*p),
                Some(FieldDef {
                    ty: FieldType::Quantized(_),
                    ..
                }) => Some(Primitive::Float64),
                _ => None,
            },
            _ => None,
        };
        let new_value = if self.recording {
            scalar_value(scalar, bytes)
        } else {
            None
        };
        let new_child = match scalar {
            Scalar::Child { id, .. } => Some(id),
            _ => None,
        };
        if let (true, Some(p), Some(n)) = (self.recording, prev, new_child) {
            // A collection replaced by another: its entries are removed.
            if p != n {
                self.record_removal_of_all(root, p);
            }
        }
        if new_child.is_some() && new_child == prev {
            // The child the field holds: nothing changes.
            return;
        }
        self.take_in_hand(root, scalar);
        let mut previous = prev.map(Value::Ref);
        let mut storage = None;
        let (input, child, took) = input_of(
            scalar,
            bytes,
            &mut storage,
            rust_types,
            (&self.parser.created, &self.nodes),
            &mut self.hand,
        );
        let mut ok = false;
        let mut input = Some(input);
        let found = self.with_node(root, current, |d, n| {
            if let Some(input) = input.take() {
                if let (Some(p), false) = (primitive, fresh) {
                    previous = n.__decode_read_field(index, p);
                }
                if let Some(p) = prev {
                    d.keep_value(n, p, current, Place::Field(index));
                }
                ok = n.__decode_field(index, input);
            }
        });
        if found && !ok {
            self.unrepresentable += 1;
        }
        if self.recording {
            record_field(&mut self.recorded, current, index, previous, new_value);
        }
        if prev.is_some() || child.is_some() {
            if let Some(children) = self.nodes.get_mut(current).and_then(Lean::children_mut) {
                children.retain(|c| c.0 != index);
                if let Some((id, _)) = child {
                    children.push((index, id));
                }
            }
        }
        if let Some(p) = prev {
            self.unref(p, (current, Place::Field(index)));
        }
        if let Some((id, shape)) = child {
            // (Under a struct without a value the child has none either,
            // but keeps its field: callbacks find a collection by it.)
            let place = if ok || !found {
                Place::Field(index)
            } else {
                Place::Detached
            };
            self.attach(id, shape, current, place, took && ok);
        }
    }

    /// A run of collection operations on collection `current`.
    fn entries(
        &mut self,
        bytes: &[u8],
        root: &mut dyn DecodeNode,
        rust_types: &[Option<RustTypeId>],
        current: RefId,
        run: &[Step],
    ) {
        let Some(node) = self.nodes.get(current) else {
            return;
        };
        let array = matches!(node.data(), Some(LeanData::Array(_)));
        if self.recording
            && element_primitive(node.shape).is_some()
            && anchor_path(&self.nodes, current, &mut self.path).is_none()
        {
            // A collection of primitives without a value (under a
            // structure the message released): the values its operations
            // replace or remove, which callbacks report, are unknown.
            self.unrepresentable += 1;
        }
        let moves = !self.moved.is_empty()
            && run.iter().any(|s| {
                matches!(
                    s,
                    Step::Entry {
                        value: Scalar::Child { create: false, .. },
                        ..
                    } | Step::AddByRefId(_, Scalar::Child { create: false, .. })
                )
            });
        if array && moves {
            // An array of children: its elements after the block (refIds:
            // no value of `T` needed), then the values of the children it
            // moves in hand, then the array in `T` set.
            let Some(block) = self.array_model(bytes, None, current, run) else {
                return;
            };
            for s in &block.after {
                if let Slot::New(id) = *s {
                    self.take_in_hand(root, Scalar::Child { id, create: false });
                }
            }
            let found = self.with_node(root, current, |d, c| {
                d.array_placed(rust_types, Some(c), current, &block);
            });
            if !found {
                self.array_placed(rust_types, None, current, &block);
            }
        } else if array {
            let found = self.with_node(root, current, |d, c| {
                d.array_block(bytes, rust_types, Some(c), current, run);
            });
            if !found {
                self.array_block(bytes, rust_types, None, current, run);
            }
        } else if moves {
            // One operation at a time, the value of a child it moves in
            // hand first.
            for &step in run {
                if let Step::Entry {
                    op, index, value, ..
                } = step
                {
                    if self.takes(current, op, index) {
                        self.take_in_hand(root, value);
                    }
                }
                let found = self.with_node(root, current, |d, c| {
                    d.entry(bytes, rust_types, Some(c), current, step);
                });
                if !found {
                    self.entry(bytes, rust_types, None, current, step);
                }
            }
        } else {
            // A map or set the message creates: room for its entries at
            // once.
            let size = self.parser.map_sizes.get(current).map(|&n| n as usize);
            let found = self.with_node(root, current, |d, c| {
                if let Some(n) = size {
                    c.__decode_reserve(n);
                }
                for &step in run {
                    d.entry(bytes, rust_types, Some(&mut *c), current, step);
                }
            });
            if !found {
                for &step in run {
                    self.entry(bytes, rust_types, None, current, step);
                }
            }
        }
        // (Values no operation took: their slot let them go.)
        for (id, value) in self.hand.0.drain() {
            self.limbo.0.insert(id, value);
        }
    }

    /// The input of an entry operation that sets `value` ([`input_of`];
    /// nothing when it `sets_nothing`).
    fn entry_input<'v>(
        &mut self,
        sets_nothing: bool,
        value: Scalar,
        bytes: &'v [u8],
        storage: &'v mut Option<Value>,
        rust_types: &[Option<RustTypeId>],
    ) -> (FieldInput<'v>, Option<(RefId, Shape)>, bool) {
        if sets_nothing {
            return (FieldInput::Delete, None, false);
        }
        input_of(
            value,
            bytes,
            storage,
            rust_types,
            (&self.parser.created, &self.nodes),
            &mut self.hand,
        )
    }

    /// Whether entry operation `op` at wire index `index` of map, set or
    /// collection `current` sets a value.
    fn takes(&self, current: RefId, op: u8, index: u32) -> bool {
        match self.nodes.get(current).and_then(Lean::data) {
            Some(LeanData::Map(_)) => op != DELETE,
            Some(LeanData::Indexed(x)) => op != DELETE && !x.by_index.contains(RefId(index)),
            _ => false,
        }
    }

    /// One entry operation (or CLEAR) on collection `current`, whose typed
    /// value is `c` (`None`: it has none).
    fn entry(
        &mut self,
        bytes: &[u8],
        rust_types: &[Option<RustTypeId>],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        step: Step,
    ) {
        match step {
            Step::Clear => self.clear(c, current),
            Step::Entry {
                op,
                index,
                key,
                value,
            } => match self.nodes.get(current).and_then(Lean::data) {
                Some(LeanData::Map(_)) => {
                    self.map_entry(bytes, rust_types, c, current, (op, index, key), value);
                }
                Some(LeanData::Indexed(_)) => {
                    self.indexed_entry(bytes, rust_types, c, current, (op, index), value);
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn clear(&mut self, c: Option<&mut dyn DecodeNode>, current: RefId) {
        let mut c = c;
        if let (Some(c), true) = (c.as_deref_mut(), self.recording) {
            record_removals(&self.nodes, c, current, &mut self.recorded);
        }
        // Each child, with the place of its entry (orphans: none).
        let mut children: Vec<(RefId, Place)> = Vec::new();
        match self.nodes.get_mut(current).and_then(Lean::data_mut) {
            Some(LeanData::Map(m)) => {
                m.indexes.clear();
                children.extend(m.children.iter().map(|(h, &c)| (c, Place::Entry(h.0))));
                children.extend(m.orphans.drain(..).map(|o| (o.1, Place::Detached)));
                m.children.clear();
            }
            Some(LeanData::Indexed(x)) => {
                children.extend(x.by_index.iter().filter_map(|(_, e)| match *e {
                    (NO_HANDLE, c) => Some((c?, Place::Detached)),
                    (h, c) => Some((c?, Place::Entry(h))),
                }));
                x.by_index.clear();
                x.by_handle.clear();
            }
            _ => {}
        }
        if let Some(c) = c {
            for &(child, place) in &children {
                self.keep_value(c, child, current, place);
            }
            c.__decode_clear_all();
        }
        for (child, place) in children {
            self.unref(child, (current, place));
        }
    }

    /// A map operation (spec: ADD and DELETE_AND_ADD carry the key; DELETE
    /// and REPLACE name it by wire index).
    fn map_entry(
        &mut self,
        bytes: &[u8],
        rust_types: &[Option<RustTypeId>],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        (op, index, key): (u8, u32, u32),
        value: Scalar,
    ) {
        let recording = self.recording;
        let p = self
            .nodes
            .get(current)
            .and_then(|n| element_primitive(n.shape));
        let mut c = c;
        if let (false, Some(c)) = (self.keep.is_empty(), c.as_deref_mut()) {
            // The child under the key, if the message moves it or
            // something under it: its value out of `T` first.
            let k = if op & ADD == ADD && key != NO_KEY {
                Some(Str::from(key_at(bytes, key)))
            } else {
                match self.nodes.get(current).and_then(Lean::data) {
                    Some(LeanData::Map(m)) => m.indexes.get(RefId(index)).cloned(),
                    _ => None,
                }
            };
            let h = k.and_then(|k| c.__decode_map_handle(&k));
            let old = match (h, self.nodes.get(current).and_then(Lean::data)) {
                (Some(h), Some(LeanData::Map(m))) => m.children.get(RefId(h)).copied(),
                _ => None,
            };
            if let (Some(h), Some(old)) = (h, old) {
                self.keep_value(c, old, current, Place::Entry(h));
            }
        }
        let mut storage = None;
        let (input, child, took) =
            self.entry_input(op == DELETE, value, bytes, &mut storage, rust_types);
        let Some(LeanData::Map(m)) = self.nodes.get_mut(current).and_then(Lean::data_mut) else {
            return;
        };
        if op == DELETE {
            let Some(k) = m.indexes.remove(RefId(index)) else {
                return;
            };
            let before = match (recording, p, c.as_deref_mut()) {
                (true, Some(p), Some(c)) => c.__decode_map_value(&k, p),
                _ => None,
            };
            let handle = c.and_then(|c| c.__decode_map_remove(&k));
            let old = match handle {
                Some(h) => m.children.remove(RefId(h)),
                None => take_orphan(&mut m.orphans, &k),
            };
            if recording {
                let prev = old.map(Value::Ref).or(before);
                let key = Key::Str(k.as_str().into());
                record_entry(&mut self.recorded, current, op, key, prev.as_ref(), None);
            }
            if let Some(old) = old {
                let from = handle.map_or(Place::Detached, Place::Entry);
                self.unref(old, (current, from));
            }
            return;
        }
        let new_value = if recording {
            scalar_value(value, bytes)
        } else {
            None
        };
        let attached = c.is_some();
        let k = if op & ADD == ADD && key != NO_KEY {
            // (Checked by the parse pass.)
            let kb = key_bytes_at(bytes, key);
            if m.indexes
                .get(RefId(index))
                .is_none_or(|k| k.as_bytes() != kb)
            {
                m.indexes.insert(RefId(index), Str::from_checked(kb));
            }
            key_at(bytes, key)
        } else {
            // REPLACE of an index the parse pass found.
            match m.indexes.get(RefId(index)) {
                Some(k) => k.as_str(),
                None => return,
            }
        };
        let before_value = match (recording, p, c.as_deref_mut()) {
            (true, Some(p), Some(c)) => c.__decode_map_value(k, p),
            _ => None,
        };
        let (before, after) = c.map_or((None, None), |c| c.__decode_map_set(k, input));
        let old = match before {
            Some(h) => m.children.remove(RefId(h)),
            None => take_orphan(&mut m.orphans, k),
        };
        if recording {
            let prev = old.map(Value::Ref).or(before_value);
            let key = Key::Str(k.into());
            record_entry(
                &mut self.recorded,
                current,
                op,
                key,
                prev.as_ref(),
                new_value,
            );
        }
        // (A child the element type cannot hold waits under its key.)
        let orphan = (after.is_none() && child.is_some()).then(|| Str::from(k));
        let old = old.map(|o| (o, before.map_or(Place::Detached, Place::Entry)));
        self.map_placed(current, attached, old, (after, took), child, orphan);
    }

    /// The bookkeeping of a map entry set: `old` was under the key (at
    /// that place), the entry now has handle `after` (`None`: `T` could
    /// not hold it; a child is then kept under `orphan`, its key), its
    /// value moved from the hand if `took`.
    fn map_placed(
        &mut self,
        current: RefId,
        attached: bool,
        old: Option<(RefId, Place)>,
        (after, took): (Option<u32>, bool),
        child: Option<(RefId, Shape)>,
        orphan: Option<Str>,
    ) {
        if attached && after.is_none() {
            self.unrepresentable += 1;
        }
        if let Some((old, from)) = old {
            self.unref(old, (current, from));
        }
        if let Some((id, shape)) = child {
            let place = match after {
                Some(h) => Place::Entry(h),
                None => Place::Detached,
            };
            if let Some(LeanData::Map(m)) = self.nodes.get_mut(current).and_then(Lean::data_mut) {
                match (after, orphan) {
                    (Some(h), _) => m.children.insert(RefId(h), id),
                    (None, Some(key)) => m.orphans.push((key, id)),
                    (None, None) => {}
                }
            }
            self.attach(id, shape, current, place, took && after.is_some());
        }
    }

    /// A set / collection operation: DELETE removes the wire index, any
    /// other adds it unless it is there (an index present keeps its value,
    /// as in the reference decoder).
    fn indexed_entry(
        &mut self,
        bytes: &[u8],
        rust_types: &[Option<RustTypeId>],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        (op, index): (u8, u32),
        value: Scalar,
    ) {
        let recording = self.recording;
        let p = self
            .nodes
            .get(current)
            .and_then(|n| element_primitive(n.shape));
        let mut c = c;
        let entry = match self.nodes.get(current).and_then(Lean::data) {
            Some(LeanData::Indexed(x)) => x.by_index.get(RefId(index)).copied(),
            _ => return,
        };
        if let (DELETE, Some((h, Some(child))), Some(c)) = (op, entry, c.as_deref_mut()) {
            self.keep_value(c, child, current, Place::Entry(h));
        }
        let mut storage = None;
        let (input, child, took) = self.entry_input(
            op == DELETE || entry.is_some(),
            value,
            bytes,
            &mut storage,
            rust_types,
        );
        let Some(LeanData::Indexed(x)) = self.nodes.get_mut(current).and_then(Lean::data_mut)
        else {
            return;
        };
        if op == DELETE {
            let Some((h, child)) = x.by_index.remove(RefId(index)) else {
                return;
            };
            let mut before = None;
            if h != NO_HANDLE {
                x.by_handle.remove(RefId(h));
                if let Some(c) = c {
                    if let (true, Some(p)) = (recording, p) {
                        before = c.__decode_handle_value(h, p);
                    }
                    c.__decode_remove_handle(h);
                }
            }
            if recording {
                let prev = child.map(Value::Ref).or(before);
                let key = Key::Index(u64::from(index));
                record_entry(&mut self.recorded, current, op, key, prev.as_ref(), None);
            }
            if let Some(child) = child {
                let from = if h == NO_HANDLE {
                    Place::Detached
                } else {
                    Place::Entry(h)
                };
                self.unref(child, (current, from));
            }
            return;
        }
        if entry.is_some() {
            // (A new child given here is never attached: nothing holds it.)
            return;
        }
        if recording {
            let key = Key::Index(u64::from(index));
            let new = scalar_value(value, bytes);
            record_entry(&mut self.recorded, current, op, key, None, new);
        }
        let attached = c.is_some();
        let handle = c.and_then(|c| c.__decode_push(input));
        x.by_index.insert(
            RefId(index),
            (handle.unwrap_or(NO_HANDLE), child.map(|c| c.0)),
        );
        if let Some(h) = handle {
            x.by_handle.insert(RefId(h), index);
        } else if attached {
            self.unrepresentable += 1;
        }
        if let Some((id, shape)) = child {
            let place = handle.map_or(Place::Detached, Place::Entry);
            self.attach(id, shape, current, place, took && handle.is_some());
        }
    }

    /// A block of operations on array `current`, whose typed value is `c`
    /// (`None`: it has none), with the reference's array semantics (spec
    /// §5.1, as the dynamic decoder applies them): the operations run on
    /// a model of the elements with holes, then the array in `T` is set
    /// once from it.
    fn array_block(
        &mut self,
        bytes: &[u8],
        rust_types: &[Option<RustTypeId>],
        mut c: Option<&mut dyn DecodeNode>,
        current: RefId,
        run: &[Step],
    ) {
        if let Some(c) = c.as_deref_mut() {
            if self.array_edit(bytes, rust_types, c, current, run) {
                return;
            }
        }
        if let Some(block) = self.array_model(bytes, c.as_deref_mut(), current, run) {
            self.array_placed(rust_types, c, current, &block);
        }
    }

    /// The elements of array `current` after a block of operations (its
    /// typed value `c` gives the primitive values), with the changes
    /// recorded; `None` when the block changed nothing.
    fn array_model(
        &mut self,
        bytes: &[u8],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        run: &[Step],
    ) -> Option<ArrayAfter> {
        let node = self.nodes.get_mut(current)?;
        let p = element_primitive(node.shape);
        let Some(LeanData::Array(before)) = node.data_mut() else {
            return None;
        };
        let before = std::mem::take(before);
        let mut q = 0;
        let tpos: Vec<u32> = before
            .iter()
            .map(|e| {
                q += u32::from(e.held);
                if e.held {
                    q - 1
                } else {
                    NO_HANDLE
                }
            })
            .collect();
        let mut block = ArrayBlock {
            before: &before,
            tpos: &tpos,
            p,
            items: ArrayItems::from_values((0..before.len() as u32).map(Slot::Old).collect()),
            current,
            recorded: self.recording.then_some(&mut self.recorded),
            changed: false,
            c,
            legacy: self.legacy,
            leaked: Vec::new(),
        };
        // (The children the block makes.)
        let mut made = Vec::new();
        for &step in run {
            if let Step::Entry { value, .. } | Step::AddByRefId(_, value) = step {
                if let Scalar::Child { id, .. } = value {
                    made.push(id);
                }
            }
            match step {
                Step::Entry {
                    op, index, value, ..
                } => {
                    let new = new_slot(value, bytes);
                    block.positional(op, u64::from(index), new);
                }
                Step::Clear => block.clear(),
                Step::Reverse => {
                    block.items.reverse();
                    block.changed = true;
                }
                Step::DeleteByRefId(id) => block.delete_by_ref_id(id),
                Step::AddByRefId(id, value) => {
                    let new = new_slot(value, bytes);
                    let i = block.position_of(id).unwrap_or_else(|| block.items.len());
                    // ADD_BY_REFID overwrites the position it resolves to.
                    block.positional(ADD_BY_REFID, i, new);
                }
                Step::Switch(_) | Step::Fields { .. } | Step::Field { .. } => {}
            }
        }
        let ArrayBlock {
            mut items,
            changed,
            leaked,
            ..
        } = block;
        if !changed {
            if let Some(LeanData::Array(b)) = self.nodes.get_mut(current).and_then(Lean::data_mut) {
                *b = before;
            }
            return None;
        }
        items.compact();
        let after = items.take_all();
        // (Children the block made and dropped.)
        made.retain(|id| !after.iter().any(|s| matches!(*s, Slot::New(n) if n == *id)));
        Some(ArrayAfter {
            before,
            tpos,
            after,
            dropped: made,
            leaked,
        })
    }

    /// A block that only deletes elements the array had and appends past
    /// its end (a push, a shift), applied as an edit of the array in `T`
    /// (`c`, which holds every element) and in the table: what the model
    /// of [`array_block`](Self::array_block) would give, in time
    /// proportional to the block. `false` (nothing done) for any other.
    fn array_edit(
        &mut self,
        bytes: &[u8],
        rust_types: &[Option<RustTypeId>],
        c: &mut dyn DecodeNode,
        current: RefId,
        run: &[Step],
    ) -> bool {
        let Some(node) = self.nodes.get(current) else {
            return false;
        };
        let p = element_primitive(node.shape);
        let Some(LeanData::Array(items)) = node.data() else {
            return false;
        };
        // (A message that moves children, or a deleted child another slot
        // references too: the model, which keeps the values they need.)
        if !self.moved.is_empty() {
            return false;
        }
        let nodes = &self.nodes;
        let shared = |i: u32| {
            items
                .get(i as usize)
                .and_then(|e| e.child)
                .is_some_and(|c| nodes.get(c).is_none_or(|n| n.rc != 1))
        };
        let len = items.len() as u32;
        let mut last = None;
        for step in run {
            match *step {
                Step::Entry {
                    op: DELETE, index, ..
                } if index < len && !shared(index) => {}
                Step::Entry {
                    op, index, value, ..
                } if matches!(op, ADD | REPLACE | DELETE_AND_ADD)
                    && index >= len
                    && last.is_none_or(|l| index > l)
                    && !matches!(value, Scalar::None | Scalar::Child { create: false, .. }) =>
                {
                    last = Some(index);
                }
                _ => return false,
            }
        }
        if items.iter().any(|e| !e.held) {
            return false;
        }
        // The deleted positions (in order of the operations, then sorted)
        // and the appended elements, the changes recorded as they come.
        let mut gone: Vec<u32> = Vec::new();
        let mut appended: Vec<Slot> = Vec::new();
        for step in run {
            let Step::Entry {
                op, index, value, ..
            } = *step
            else {
                continue;
            };
            if op == DELETE {
                if gone.contains(&index) {
                    continue;
                }
                gone.push(index);
                if self.recording {
                    let child = match self.nodes.get(current).and_then(Lean::data) {
                        Some(LeanData::Array(items)) => {
                            items.get(index as usize).and_then(|e| e.child)
                        }
                        _ => None,
                    };
                    let prev = match (child, p) {
                        (Some(child), _) => Some(Value::Ref(child)),
                        (None, Some(p)) => c.__decode_handle_value(index, p),
                        (None, None) => None,
                    };
                    let key = Key::Index(u64::from(index));
                    record_entry(&mut self.recorded, current, op, key, prev.as_ref(), None);
                }
                continue;
            }
            let Some(slot) = new_slot(value, bytes) else {
                continue;
            };
            if self.recording {
                let new = match &slot {
                    Slot::New(id) => Some(Value::Ref(*id)),
                    Slot::Prim(v) => Some((**v).clone()),
                    Slot::Old(_) => None,
                };
                let key = Key::Index(u64::from(index));
                record_entry(&mut self.recorded, current, op, key, None, new);
            }
            appended.push(slot);
        }
        gone.sort_unstable();
        // `T`: the runs kept between the deleted positions, then the new
        // elements.
        let mut plan: Vec<Planned<'_>> = Vec::with_capacity(gone.len() + appended.len() + 1);
        let mut next = 0;
        for &g in gone.iter().chain(std::iter::once(&len)) {
            if g > next {
                plan.push(Planned::Keeps(next as usize, (g - next) as usize));
            }
            next = g + 1;
        }
        let created = &self.parser.created;
        for slot in &appended {
            plan.push(match slot {
                Slot::Prim(v) => Planned::Primitive(v),
                Slot::New(id) => {
                    let shape = created.get(*id).copied();
                    Planned::New(shape.and_then(|s| rust_type(rust_types, s)))
                }
                Slot::Old(_) => continue,
            });
        }
        let mut fitted = Vec::new();
        c.__decode_set_elements(plan, &mut fitted);
        let fitted = fitted
            .get((len as usize - gone.len())..)
            .unwrap_or_default();
        // The table: the same edit, the children's places from the first
        // deleted position on, the children deleted released.
        let mut released = Vec::new();
        let mut attached = Vec::new();
        if let Some(LeanData::Array(items)) = self.nodes.get_mut(current).and_then(Lean::data_mut) {
            for &g in gone.iter().rev() {
                let e = items.remove(g as usize);
                released.extend(e.child.map(|c| (c, Place::Entry(g))));
            }
            // (Every element is held: the next position is the length.)
            let mut q = items.len() as u32;
            for (slot, &held) in appended.iter().zip(fitted) {
                let child = match *slot {
                    Slot::New(id) => Some(id),
                    _ => None,
                };
                if let Some(id) = child {
                    let place = if held {
                        Place::Entry(q)
                    } else {
                        Place::Detached
                    };
                    attached.push((id, place));
                }
                q += u32::from(held);
                if !held {
                    self.unrepresentable += 1;
                }
                items.push(ArrayElem { child, held });
            }
            if let Some(&first) = gone.first() {
                let moved: Vec<(u32, RefId)> = items
                    .iter()
                    .enumerate()
                    .skip(first as usize)
                    .filter_map(|(q, e)| Some((q as u32, e.child?)))
                    .collect();
                for (q, id) in moved {
                    if let Some(n) = self.nodes.get_mut(id) {
                        n.place = Place::Entry(q);
                    }
                }
            }
        }
        for (id, place) in attached {
            if let Some(&shape) = self.parser.created.get(id) {
                self.nodes.insert(id, Lean::new(shape, current, place));
            }
        }
        for (id, from) in released {
            self.unref(id, (current, from));
        }
        true
    }

    /// Sets array `current` in `T` (`c`) and in the table from its
    /// elements after a block; the children it no longer holds lose a
    /// reference.
    fn array_placed(
        &mut self,
        rust_types: &[Option<RustTypeId>],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        block: &ArrayAfter,
    ) {
        let ArrayAfter {
            before,
            tpos,
            after,
            dropped,
            leaked,
        } = block;
        let mut c = c;
        let attached = c.is_some();
        let mut kept = vec![false; before.len()];
        for s in after {
            if let Slot::Old(k) = *s {
                if let Some(seen) = kept.get_mut(k as usize) {
                    *seen = true;
                }
            }
        }
        // (3.x / 4.x: elements removed that keep their reference.)
        let mut leaked_old = vec![false; before.len()];
        for s in leaked {
            if let Slot::Old(k) = *s {
                if let Some(l) = leaked_old.get_mut(k as usize) {
                    *l = true;
                }
            }
        }
        // The place in `T` an element had before the block.
        let was = |k: usize| match (before.get(k), tpos.get(k)) {
            (Some(e), Some(&q)) if e.held => Place::Entry(q),
            _ => Place::Detached,
        };
        let mut fitted = Vec::new();
        let mut took = Vec::new();
        if let Some(c) = c.as_deref_mut() {
            for (k, e) in before.iter().enumerate() {
                if let (Some(child), false) = (e.child, kept[k]) {
                    if leaked_old[k] {
                        self.box_value(c, child, current, was(k));
                    } else {
                        self.keep_value(c, child, current, was(k));
                    }
                }
            }
            let mut plan = Vec::with_capacity(after.len());
            for s in after {
                let entry = match *s {
                    Slot::Old(k) => {
                        let Place::Entry(q) = was(k as usize) else {
                            continue;
                        };
                        took.push(false);
                        // (Runs of consecutive elements kept: one entry.)
                        if let Some(Planned::Keeps(start, len)) = plan.last_mut() {
                            if *start + *len == q as usize {
                                *len += 1;
                                continue;
                            }
                        }
                        plan.push(Planned::Keeps(q as usize, 1));
                        continue;
                    }
                    Slot::Prim(ref v) => Planned::Primitive(v),
                    Slot::New(id) => match self.hand.0.remove(&id) {
                        Some(moved) => {
                            took.push(true);
                            plan.push(Planned::Moved(moved));
                            continue;
                        }
                        None => {
                            let shape = self
                                .nodes
                                .get(id)
                                .map(|n| n.shape)
                                .or_else(|| self.parser.created.get(id).copied());
                            Planned::New(shape.and_then(|s| rust_type(rust_types, s)))
                        }
                    },
                };
                took.push(false);
                plan.push(entry);
            }
            c.__decode_set_elements(plan, &mut fitted);
        }
        for (k, e) in before.iter().enumerate() {
            if let (Some(child), false) = (e.child, kept[k]) {
                if leaked_old[k] {
                    self.leak(child, (current, was(k)));
                } else {
                    self.unref(child, (current, was(k)));
                }
            }
        }
        let (mut fit, mut took) = (fitted.into_iter(), took.into_iter());
        let mut elems = Vec::with_capacity(after.len());
        // (New places of the children the array held, decided on the
        // places before the block, and the children it now references.)
        let mut moved_here = Vec::new();
        let mut attached_here = Vec::new();
        let mut q = 0;
        for s in after {
            let (child, planned, from) = match *s {
                Slot::Old(k) => {
                    let e = before.get(k as usize).copied();
                    let held = e.is_some_and(|e| e.held);
                    (e.and_then(|e| e.child), held, Some(was(k as usize)))
                }
                Slot::Prim(_) => (None, true, None),
                Slot::New(id) => (Some(id), true, None),
            };
            let (held, moved) = match (attached, planned) {
                (true, true) => (fit.next().unwrap_or(false), took.next().unwrap_or(false)),
                _ => (false, false),
            };
            if attached && planned && !held {
                self.unrepresentable += 1;
            }
            let place = if held {
                Place::Entry(q)
            } else {
                Place::Detached
            };
            match (child, from) {
                (Some(id), Some(from)) => {
                    if self
                        .nodes
                        .get(id)
                        .is_some_and(|n| n.parent == current && n.place == from)
                    {
                        moved_here.push((id, place));
                    }
                }
                (Some(id), None) => attached_here.push((id, place, moved && held)),
                (None, _) => {}
            }
            q += u32::from(held);
            elems.push(ArrayElem { child, held });
        }
        for (id, place) in moved_here {
            if let Some(n) = self.nodes.get_mut(id) {
                n.place = place;
            }
        }
        for (id, place, took) in attached_here {
            let shape = self
                .nodes
                .get(id)
                .map(|n| n.shape)
                .or_else(|| self.parser.created.get(id).copied());
            if let Some(shape) = shape {
                self.attach(id, shape, current, place, took);
            }
        }
        if let Some(LeanData::Array(b)) = self.nodes.get_mut(current).and_then(Lean::data_mut) {
            *b = elems;
        }
        for s in leaked {
            if let Slot::New(id) = *s {
                self.leak_new(rust_types, c.as_deref_mut(), current, id);
            }
        }
        if self.recording {
            // Children the block made and dropped: callbacks saw them
            // added (and may register on them).
            for &id in dropped {
                if let (Some(&shape), false) =
                    (self.parser.created.get(id), self.nodes.contains(id))
                {
                    let mut n = Lean::new(shape, current, Place::Detached);
                    n.rc = 0;
                    self.nodes.insert(id, n);
                    self.deferred.push(id);
                }
            }
        }
    }

    /// A slot of `from` (its parent and place) no longer references
    /// child `id`: its value left `T` with the slot, unless it was boxed
    /// into the limbo or lives elsewhere; unreferenced, it is dropped at
    /// the end of the message (while callbacks are registered, after they
    /// ran: they may still register on it, as on a dynamic decoder's
    /// structures, collected after its dispatch).
    fn unref(&mut self, id: RefId, from: (RefId, Place)) {
        let Some(n) = self.nodes.get_mut(id) else {
            return;
        };
        n.rc = n.rc.saturating_sub(1);
        if n.parent == from.0 && n.place == from.1 {
            if let (true, Place::Field(i), Shape::Collection(..)) =
                (self.recording, n.place, n.shape)
            {
                self.gone.push((id, n.parent, i));
            }
            n.place = Place::Detached;
            if slots(&self.leaks, id, n.rc) > 0 {
                // (Another slot references it, with a default value.)
                self.unrepresentable += 1;
            }
        } else if let (true, Place::Limbo, Place::Field(i), Shape::Collection(..)) = (
            self.recording && n.parent == from.0,
            n.place,
            from.1,
            n.shape,
        ) {
            // (Its value kept in the limbo as the field let it go: the
            // callbacks of the field still reach it.)
            self.gone.push((id, n.parent, i));
        }
        if n.rc == 0 {
            self.deferred.push(id);
        }
    }

    /// Gives the values waiting in the limbo back to a slot that still
    /// references their child and holds a default value for it; forgets
    /// the slots that no longer stand for a child.
    fn restore(&mut self, root: &mut dyn DecodeNode) {
        let mut standins = std::mem::take(&mut self.standins);
        standins.retain_mut(|standin| {
            let (id, parent) = (standin.0, standin.1);
            let Some(place) = self.slot_of(parent, standin.2, id) else {
                return false;
            };
            standin.2 = place;
            if self.nodes.get(id).is_none_or(|n| n.place != Place::Limbo) {
                // (Its value is in another slot.)
                return true;
            }
            let Some(value) = self.limbo.0.remove(&id) else {
                return true;
            };
            let mut value = Some(value);
            let mut put = false;
            self.with_node(root, parent, |_, p| {
                if let Some(v) = value.take() {
                    put = match place {
                        Place::Field(i) => p.__decode_field(i, FieldInput::Moved(v)),
                        Place::Entry(h) => p.__decode_put_handle(h, v),
                        Place::Root | Place::Detached | Place::Limbo => false,
                    };
                }
            });
            if let Some(v) = value {
                self.limbo.0.insert(id, v);
            }
            if put {
                if let Some(n) = self.nodes.get_mut(id) {
                    n.parent = parent;
                    n.place = place;
                }
                return false;
            }
            true
        });
        self.standins = standins;
    }

    /// Where the slot of `parent` that stood at `place` for child `id` is
    /// now (an array's elements change positions), if it still references
    /// it.
    fn slot_of(&self, parent: RefId, place: Place, id: RefId) -> Option<Place> {
        if self.references(parent, place, id) {
            return Some(place);
        }
        let Some(LeanData::Array(items)) = self.nodes.get(parent).and_then(Lean::data) else {
            return None;
        };
        let q = items
            .iter()
            .filter(|e| e.held)
            .position(|e| e.child == Some(id))?;
        Some(Place::Entry(q as u32))
    }

    /// Whether the slot at `place` of `parent` references child `id`.
    fn references(&self, parent: RefId, place: Place, id: RefId) -> bool {
        let Some(n) = self.nodes.get(parent) else {
            return false;
        };
        match (place, n.data()) {
            (Place::Field(i), _) => n.children().contains(&(i, id)),
            (Place::Entry(h), Some(LeanData::Map(m))) => m.children.get(RefId(h)) == Some(&id),
            (Place::Entry(h), Some(LeanData::Indexed(x))) => x
                .by_handle
                .get(RefId(h))
                .and_then(|i| x.by_index.get(RefId(*i)))
                .is_some_and(|e| e.1 == Some(id)),
            (Place::Entry(q), Some(LeanData::Array(items))) => items
                .iter()
                .filter(|e| e.held)
                .nth(q as usize)
                .is_some_and(|e| e.child == Some(id)),
            _ => false,
        }
    }

    /// Drops the structures the message left unreferenced, and those only
    /// they referenced.
    fn collect(&mut self) {
        let mut i = 0;
        while let Some(&id) = self.deferred.get(i) {
            i += 1;
            if id == RefId::ROOT || self.nodes.get(id).is_none_or(|n| n.rc != 0) {
                continue;
            }
            let Some(node) = self.nodes.remove(id) else {
                continue;
            };
            self.leaks.remove(&id);
            if let Some(mut value) = self.limbo.0.remove(&id) {
                // Its children go to the limbo first: one may live on in
                // another slot (or have a descendant that does).
                for (c, place) in lean_children(&node) {
                    if let Some(n) = self.nodes.get_mut(c) {
                        if n.parent == id && n.place == place {
                            if let Some(v) = take_at(&mut *value, place) {
                                self.limbo.0.insert(c, v);
                                n.place = Place::Limbo;
                            }
                        }
                    }
                }
            }
            if self.recording {
                self.released.push(id);
            }
            let Some(data) = node.data else {
                continue;
            };
            let mut children = std::mem::take(&mut self.stack);
            match *data {
                LeanData::Struct(c) => children.extend(c.iter().map(|c| c.1)),
                LeanData::Map(m) => {
                    children.extend(m.children.iter().map(|(_, &c)| c));
                    children.extend(m.orphans.iter().map(|o| o.1));
                }
                LeanData::Indexed(x) => {
                    children.extend(x.by_index.iter().filter_map(|(_, e)| e.1));
                }
                LeanData::Array(items) => children.extend(items.iter().filter_map(|e| e.child)),
            }
            for c in children.drain(..) {
                if let Some(n) = self.nodes.get_mut(c) {
                    n.rc = n.rc.saturating_sub(1);
                    if n.rc == 0 {
                        self.deferred.push(c);
                    }
                }
            }
            self.stack = children;
        }
        self.deferred.clear();
    }

    /// The table, and the values kept out of `T` (for
    /// [`value_of`]).
    pub(crate) fn table_and_limbo(&mut self) -> (&RefMap<Lean>, &mut Limbo) {
        (&self.nodes, &mut self.limbo)
    }

    /// Calls `f` with the decoder and the value of structure `id` (in `T`
    /// or under a structure in the limbo); `false` if it has none.
    fn with_node(
        &mut self,
        root: &mut dyn DecodeNode,
        id: RefId,
        f: impl FnOnce(&mut Self, &mut dyn DecodeNode),
    ) -> bool {
        let mut path = std::mem::take(&mut self.path);
        let mut f = Some(f);
        let found = match anchor_path(&self.nodes, id, &mut path) {
            Some(RefId::ROOT) => descend(root, &path, &mut |n| {
                if let Some(f) = f.take() {
                    f(self, n);
                }
            }),
            Some(a) => match self.limbo.0.remove(&a) {
                Some(mut boxed) => {
                    let found = descend(&mut *boxed, &path, &mut |n| {
                        if let Some(f) = f.take() {
                            f(self, n);
                        }
                    });
                    self.limbo.0.insert(a, boxed);
                    found
                }
                None => false,
            },
            None => false,
        };
        if self.path.capacity() < path.capacity() {
            self.path = path;
        }
        found
    }

    /// Moves the value of child `id` out of its slot into the limbo (a
    /// placeholder left; nothing when it has no value or is there).
    fn box_in_limbo(&mut self, root: &mut dyn DecodeNode, id: RefId) {
        let Some(&Lean { parent, place, .. }) = self.nodes.get(id) else {
            return;
        };
        if !matches!(place, Place::Field(_) | Place::Entry(_)) {
            return;
        }
        let mut taken = None;
        self.with_node(root, parent, |_, p| taken = take_at(p, place));
        if let Some(value) = taken {
            self.limbo.0.insert(id, value);
            self.standins.push((id, parent, place));
        }
        if let Some(n) = self.nodes.get_mut(id) {
            n.place = if self.limbo.0.contains_key(&id) {
                Place::Limbo
            } else {
                Place::Detached
            };
        }
    }

    /// Puts the value of child `id` in hand for the operation that moves
    /// it (`consumes`: whether the operation will take it).
    fn take_in_hand(&mut self, root: &mut dyn DecodeNode, value: Scalar) {
        if let Scalar::Child { id, create: false } = value {
            if self.nodes.contains(id) {
                self.box_in_limbo(root, id);
                if let Some(b) = self.limbo.0.remove(&id) {
                    self.hand.0.insert(id, b);
                }
            }
        }
    }

    /// Boxes the value of child `id`, which the slot at `place` of `parent`
    /// (value `p` in `T`) holds and is letting go, into the limbo if the
    /// message moves it or something under it.
    fn keep_value(&mut self, p: &mut dyn DecodeNode, id: RefId, parent: RefId, place: Place) {
        let Some(n) = self.nodes.get(id) else {
            return;
        };
        if n.parent != parent || n.place != place {
            return;
        }
        // (Moved, under something moved, or referenced by another slot or
        // a leak.)
        if n.rc < 2 && !self.moves_under(id) {
            return;
        }
        self.box_value(p, id, parent, place);
    }

    /// Boxes the value of child `id`, which the slot at `place` of
    /// `parent` (value `p` in `T`) holds and is letting go, into the limbo.
    fn box_value(&mut self, p: &mut dyn DecodeNode, id: RefId, parent: RefId, place: Place) {
        let Some(n) = self.nodes.get_mut(id) else {
            return;
        };
        if n.parent != parent || n.place != place {
            return;
        }
        if let Some(value) = take_at(p, place) {
            self.limbo.0.insert(id, value);
            n.place = Place::Limbo;
        }
    }

    /// A slot of `from` (its parent and place) let child `id` go without
    /// releasing its reference (3.x / 4.x array semantics): it lives on,
    /// its value in the limbo (boxed by [`box_value`](Self::box_value)
    /// when its slot had it), where later messages find it.
    fn leak(&mut self, id: RefId, from: (RefId, Place)) {
        *self.leaks.entry(id).or_insert(0) += 1;
        if let Some(n) = self.nodes.get_mut(id) {
            if n.parent == from.0 && n.place == from.1 {
                n.place = Place::Detached;
            }
        }
    }

    /// A child element the block added then let go without releasing its
    /// reference (3.x / 4.x): one more reference; made by the message, it
    /// lives on in the limbo (a value made by array `c`, which its changes
    /// go to).
    fn leak_new(
        &mut self,
        rust_types: &[Option<RustTypeId>],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        id: RefId,
    ) {
        *self.leaks.entry(id).or_insert(0) += 1;
        if let Some(n) = self.nodes.get_mut(id) {
            n.rc += 1;
            return;
        }
        let Some(&shape) = self.parser.created.get(id) else {
            return;
        };
        let mut n = Lean::new(shape, current, Place::Detached);
        if let Some(value) = c.and_then(|c| c.__decode_make(rust_type(rust_types, shape))) {
            self.limbo.0.insert(id, value);
            n.place = Place::Limbo;
        }
        self.nodes.insert(id, n);
    }

    /// Whether the message moves `id` or a structure under it.
    fn moves_under(&self, id: RefId) -> bool {
        if self.moved.is_empty() {
            return false;
        }
        if self.keep.contains(&id) {
            return true;
        }
        // (The structures the message made were not in the table when
        // `keep` was computed.)
        self.moved.iter().any(|&m| {
            let mut at = m;
            for _ in 0..=MAX_DEPTH {
                if at == id {
                    return true;
                }
                match self.nodes.get(at) {
                    Some(n) if at != RefId::ROOT => at = n.parent,
                    _ => return false,
                }
            }
            false
        })
    }

    /// Child `id` (shape `shape`) is now referenced by the slot at `place`
    /// of `parent` (`took`: its value moved there from the hand).
    fn attach(&mut self, id: RefId, shape: Shape, parent: RefId, place: Place, took: bool) {
        // (Whether its value is in `T` or in the limbo: not so for a
        // structure made or changed while nothing held its value, whose
        // changes were dropped.)
        let (valued, lost) = match self.nodes.contains(id) {
            true => {
                let mut path = Vec::new();
                let valued = anchor_path(&self.nodes, id, &mut path).is_some();
                let slot = place != Place::Detached
                    && anchor_path(&self.nodes, parent, &mut path).is_some();
                (valued, !took && !valued && slot)
            }
            false => (false, false),
        };
        match self.nodes.get_mut(id) {
            Some(n) => {
                n.rc += 1;
                if took || !valued {
                    if lost {
                        // (A default value in its new slot: what it held
                        // is lost.)
                        self.unrepresentable += 1;
                    }
                    n.parent = parent;
                    n.place = place;
                } else if place != Place::Detached {
                    // (A default value stands for it in that slot.)
                    self.standins.push((id, parent, place));
                }
            }
            None => self.nodes.insert(id, Lean::new(shape, parent, place)),
        }
    }
}

/// The slots referencing child `id`, whose reference count is `rc`: its
/// references but the leaked ones (see [`Direct::leak`]).
fn slots(leaks: &HashMap<RefId, u32, RefIdHasherBuilder>, id: RefId, rc: u32) -> u32 {
    rc.saturating_sub(leaks.get(&id).copied().unwrap_or(0))
}

/// The children a structure references, with the place of their slot.
fn lean_children(node: &Lean) -> Vec<(RefId, Place)> {
    match node.data() {
        None => Vec::new(),
        Some(LeanData::Struct(c)) => c.iter().map(|&(i, c)| (c, Place::Field(i))).collect(),
        Some(LeanData::Map(m)) => m
            .children
            .iter()
            .map(|(h, &c)| (c, Place::Entry(h.0)))
            .collect(),
        Some(LeanData::Indexed(x)) => x
            .by_index
            .iter()
            .filter_map(|(_, &(h, c))| Some((c?, Place::Entry(h))))
            .collect(),
        Some(LeanData::Array(items)) => {
            let mut q = 0;
            items
                .iter()
                .filter_map(|e| {
                    let place = if e.held {
                        Place::Entry(q)
                    } else {
                        Place::Detached
                    };
                    q += u32::from(e.held);
                    Some((e.child?, place))
                })
                .collect()
        }
    }
}

/// Takes the orphan child under `key`, if any.
fn take_orphan(orphans: &mut Vec<(Str, RefId)>, key: &str) -> Option<RefId> {
    let i = orphans.iter().position(|o| o.0.as_str() == key)?;
    Some(orphans.swap_remove(i).1)
}

/// The value of a struct `T` does not hold: writes go nowhere.
struct Unheld;

impl DecodeNode for Unheld {
    fn __decode_into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

/// Whether a step operates on a collection's elements.
fn is_collection_step(step: Step) -> bool {
    matches!(
        step,
        Step::Entry { .. }
            | Step::Clear
            | Step::Reverse
            | Step::DeleteByRefId(_)
            | Step::AddByRefId(..)
    )
}

/// An array after a block: its elements before (and their positions in
/// `T`) and after, and the children the block made and dropped.
struct ArrayAfter {
    before: Vec<ArrayElem>,
    tpos: Vec<u32>,
    after: Vec<Slot>,
    dropped: Vec<RefId>,
    /// Children removed without losing their reference (3.x / 4.x).
    leaked: Vec<Slot>,
}

/// An array element while a block of the array is applied.
#[derive(Debug, Clone)]
enum Slot {
    /// The element at this position before the block.
    Old(u32),
    /// A primitive written by the block (boxed: the model holds a slot
    /// per element).
    Prim(Box<Value>),
    /// A structure the message creates.
    New(RefId),
}

/// The element a value read by the parse pass makes (`None`: none).
fn new_slot(scalar: Scalar, bytes: &[u8]) -> Option<Slot> {
    match scalar {
        // (A child referenced again is a move: not covered.)
        Scalar::Child { id, .. } => Some(Slot::New(id)),
        Scalar::None => None,
        s => s
            .primitive_value(bytes, |s| Value::String(Str::from(s)))
            .map(|v| Slot::Prim(Box::new(v))),
    }
}

/// An array's block being applied: the elements before it (and their
/// positions in `T`, whose value `c` is unchanged until the block ends),
/// the model of the elements, and where changes are recorded.
struct ArrayBlock<'a, 'c> {
    before: &'a [ArrayElem],
    tpos: &'a [u32],
    /// The primitive wire type of the elements.
    p: Option<Primitive>,
    items: ArrayItems<Slot>,
    current: RefId,
    recorded: Option<&'a mut Vec<Recorded>>,
    /// Whether the elements changed.
    changed: bool,
    c: Option<&'c mut dyn DecodeNode>,
    /// The 3.x / 4.x semantics: an ADD at an occupied index but 0
    /// overwrites, and neither it nor DELETE_BY_REFID releases the child
    /// it removes.
    legacy: bool,
    /// The children removed without losing their reference (`legacy`).
    leaked: Vec<Slot>,
}

impl ArrayBlock<'_, '_> {
    /// The value an element has (a primitive, or a child's refId).
    fn value(&mut self, slot: &Slot) -> Option<Value> {
        match *slot {
            Slot::Old(k) => {
                let e = self.before.get(k as usize)?;
                if let Some(child) = e.child {
                    return Some(Value::Ref(child));
                }
                let q = *self.tpos.get(k as usize).filter(|&&q| q != NO_HANDLE)?;
                self.c.as_deref_mut()?.__decode_handle_value(q, self.p?)
            }
            Slot::Prim(ref v) => Some((**v).clone()),
            Slot::New(id) => Some(Value::Ref(id)),
        }
    }

    /// The value of an element, when callbacks are registered.
    fn recorded_value(&mut self, slot: Option<&Slot>) -> Option<Value> {
        match (slot, self.recorded.is_some()) {
            (Some(s), true) => self.value(s),
            _ => None,
        }
    }

    fn record(&mut self, op: u8, i: u64, prev: Option<&Value>, new: Option<Value>) {
        if let Some(rec) = self.recorded.as_deref_mut() {
            record_entry(rec, self.current, op, Key::Index(i), prev, new);
        }
    }

    /// The position of child `id`.
    fn position_of(&self, id: RefId) -> Option<u64> {
        let before = self.before;
        self.items.position(|s| match *s {
            Slot::Old(k) => before.get(k as usize).is_some_and(|e| e.child == Some(id)),
            Slot::New(n) => n == id,
            Slot::Prim(_) => false,
        })
    }

    /// An operation with a wire index.
    fn positional(&mut self, op: u8, i: u64, new: Option<Slot>) {
        let prev = self.items.get(i).cloned();
        match op {
            DELETE => {
                let removed = self.items.delete(i);
                self.changed = true;
                let removed = self.recorded_value(removed.as_ref());
                self.record(op, i, removed.as_ref(), None);
            }
            DELETE_AND_MOVE => {
                // Hole at `i`, then splice it out and overwrite what slid
                // in.
                let removed = self.items.delete(i);
                self.changed = true;
                let value = new.as_ref().and_then(|s| self.value(s));
                if let (Some(slot), Some(v)) = (new, &value) {
                    let same = prev
                        .as_ref()
                        .and_then(|p| self.value(p))
                        .is_some_and(|p| p.js_same(v));
                    if !same {
                        self.items.remove(i);
                        self.items.set(i, slot);
                    }
                }
                let removed = self.recorded_value(removed.as_ref());
                self.record(op, i, removed.as_ref(), value);
            }
            _ => {
                let Some(slot) = new else { return };
                let value = self.value(&slot);
                let before = prev.as_ref().and_then(|p| self.value(p));
                if before
                    .as_ref()
                    .zip(value.as_ref())
                    .is_some_and(|(b, v)| b.js_same(v))
                {
                    // The very value already there: nothing happens.
                    return;
                }
                self.changed = true;
                if op == ADD && prev.is_some() && (i == 0 || !self.legacy) {
                    // ADD at an occupied index inserts (3.x / 4.x: only at
                    // index 0).
                    self.items.insert(i, slot);
                    self.record(op, i, None, value);
                } else {
                    let old = self.items.set(i, slot);
                    if self.legacy && op == ADD {
                        // (3.x / 4.x do not release what an ADD overwrites.)
                        self.leak(old.as_ref());
                    }
                    let old = self.recorded_value(old.as_ref());
                    self.record(op, i, old.as_ref(), value);
                }
            }
        }
    }

    fn delete_by_ref_id(&mut self, id: RefId) {
        let Some(i) = self.position_of(id) else {
            return;
        };
        let removed = self.items.delete(i);
        self.changed = true;
        if self.legacy {
            // (3.x / 4.x keep the reference: a later message may still
            // address the child.)
            self.leak(removed.as_ref());
        }
        let removed = self.recorded_value(removed.as_ref());
        self.record(DELETE, i, removed.as_ref(), None);
    }

    /// A child element removed without losing its reference.
    fn leak(&mut self, slot: Option<&Slot>) {
        let child = match slot {
            Some(&Slot::Old(k)) => self
                .before
                .get(k as usize)
                .is_some_and(|e| e.child.is_some()),
            Some(Slot::New(_)) => true,
            Some(Slot::Prim(_)) | None => false,
        };
        if let (true, Some(s)) = (child, slot) {
            self.leaked.push(s.clone());
        }
    }

    fn clear(&mut self) {
        if self.recorded.is_some() {
            let slots: Vec<Slot> = self.items.iter().cloned().collect();
            for (i, s) in slots.iter().enumerate() {
                if let Some(value) = self.value(s) {
                    if let Some(rec) = self.recorded.as_deref_mut() {
                        rec.push(Recorded::Removed {
                            collection: self.current,
                            key: Key::Index(i as u64),
                            value,
                        });
                    }
                }
            }
        }
        self.items.take_all();
        self.changed = true;
    }
}
