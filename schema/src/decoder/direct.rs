//! The typed decoder's direct mode: messages applied straight to `T`.
//!
//! A [`Decoder<T>`](crate::decoder::Decoder) starts in this mode. Each
//! message is parsed and validated by the parse pass every decoder shares,
//! then applied to `T` with, beside it, only the wire bookkeeping that `T`
//! cannot hold: a lean table giving each refId its shape, its place in `T`
//! (a field of its parent, or an entry handle of its parent collection —
//! an array element's handle is its position), its child refIds, and for a
//! map the key of each wire index. There is no dynamic value tree: a full
//! state builds `T` and this table, nothing else.
//!
//! The mode covers field changes; structures created and attached where
//! the message first references them; map, set and collection entries
//! added, replaced, deleted and cleared; every array operation (by index,
//! by refId, REVERSE, CLEAR, with the reference's semantics: a block runs
//! on a model of the elements with holes, then the array in `T` is set
//! once); structures released (dropped with their subtree, which in this
//! mode nothing else can hold; while callbacks are registered, detached at
//! once and dropped after they ran). A message that references a structure
//! the state already holds (a move between parents or positions, an
//! instance shared by two), or an array operation with the 3.x / 4.x
//! semantics, makes the decoder switch for good to the shadow mode
//! (`typed.rs`): the dynamic value tree is built from `T` and the table,
//! then the message is applied there. Either way a message is applied
//! entirely or not at all: the parse pass validates it before anything is
//! written.

use std::any::TypeId as RustTypeId;

use crate::decoder::base::array_items::ArrayItems;
use crate::decoder::base::parse::{
    key_at, key_bytes_at, read_primitive, Parser, Scalar, Shape, ShapeSource, Step, NO_KEY,
};
use crate::decoder::base::reference_tracker::{RefId, RefMap};
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
            Place::Root | Place::Detached => return None,
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

/// What became of a message.
pub(crate) enum Outcome {
    Applied,
    /// Outside this mode (nothing was applied).
    NeedsShadow,
}

/// The direct mode's state (everything but `T`).
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
    /// Decode like `@colyseus/schema` 3.x / 4.x (passed on to the shadow).
    pub(crate) legacy: bool,
    /// Changes the Rust types could not hold.
    pub(crate) unrepresentable: u64,
    /// The fast path's state.
    pub(crate) fast: Fast,
    /// The change callbacks (taken by the shadow mode when it starts).
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
    /// Whether a message was applied: before, the root's fields have no
    /// value yet (for the callbacks, as in the dynamic decoder).
    pub(crate) started: bool,
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
            Place::Detached => return false,
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
        Place::Root | Place::Detached => {}
    }
    found
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
type Rec<'r> = (&'r mut Vec<Recorded>, RefId, bool);

/// [`write_run`] recording each change (value before and after) for the
/// callbacks.
fn write_run_recorded(
    n: &mut dyn DecodeNode,
    bytes: &[u8],
    (start, end): (u32, u32),
    defs: &[FieldDef],
    (recorded, id, fresh): Rec<'_>,
) -> u64 {
    let Some(head) = bytes.get(..end as usize) else {
        return 0;
    };
    let mut r = Reader::new(head);
    let mut pos = start as usize;
    let mut failed = 0;
    // Fields of a new struct written so far (the others had no value).
    let mut written = 0u64;
    while let Some(&byte) = head.get(pos) {
        let index = byte & 0x3f;
        let Some(FieldType::Primitive(p)) = defs.get(usize::from(index)).map(|f| f.ty) else {
            break;
        };
        let previous = if fresh && written & (1 << index) == 0 {
            None
        } else {
            n.__decode_read_field(index, p)
        };
        written |= 1 << index;
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
/// primitive's [`Value`] for it to borrow).
fn input_of<'v>(
    scalar: Scalar,
    bytes: &'v [u8],
    value: &'v mut Option<Value>,
    rust_types: &[Option<RustTypeId>],
    created: &RefMap<Shape>,
) -> (FieldInput<'v>, Option<(RefId, Shape)>) {
    match scalar {
        Scalar::Child { id, .. } => match created.get(id) {
            Some(&shape) => (
                FieldInput::New(rust_type(rust_types, shape)),
                Some((id, shape)),
            ),
            None => (FieldInput::Delete, None),
        },
        Scalar::None => (FieldInput::Delete, None),
        Scalar::Str { .. } => (
            FieldInput::Str(scalar.str_in(bytes).unwrap_or_default()),
            None,
        ),
        s => {
            *value = s.primitive_value(bytes, |_| Value::Bool(false));
            match value {
                Some(v) => (FieldInput::Primitive(v), None),
                None => (FieldInput::Delete, None),
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
            started: false,
        }
    }

    /// Parses `bytes` and, if this mode covers the message, applies it to
    /// `root`.
    pub(crate) fn decode(
        &mut self,
        bytes: &[u8],
        root: &mut dyn DecodeNode,
        rust_types: &[Option<RustTypeId>],
    ) -> Result<Outcome, DecodeError> {
        // Primitive fields of the structs `T` holds are written while
        // parsing (put back if the message is rejected or not covered),
        // unless callbacks need every change in message order.
        self.callbacks.merge();
        self.recording = self.callbacks.is_active();
        self.parser.eager = !self.recording;
        self.parser.notify = false;
        let mut lookup = Lookup::new(&self.nodes, &mut *root, &mut self.path);
        self.parser.parse(bytes, &self.types, &mut lookup)?;
        if !covered(&self.parser, &self.nodes, self.legacy) {
            self.parser.undo(&mut lookup);
            return Ok(Outcome::NeedsShadow);
        }
        self.unrepresentable += self.parser.typed_failed;
        let steps = std::mem::take(&mut self.parser.steps);
        self.apply(bytes, &steps, root, rust_types);
        self.parser.steps = steps;
        if self.recording {
            self.dispatch(root);
        }
        self.started = true;
        Ok(Outcome::Applied)
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
        let deferred = std::mem::take(&mut self.deferred);
        for &id in &deferred {
            self.drop_subtree(id);
        }
        self.deferred = deferred;
        self.deferred.clear();
        for &id in &self.released {
            self.callbacks.forget(id);
        }
        self.released.clear();
        self.gone.clear();
    }

    /// Records a removal for every entry of collection `id` (the
    /// collection replaced in its field), from its value in `T`.
    fn record_removal_of_all(&mut self, root: &mut dyn DecodeNode, id: RefId) {
        let mut path = std::mem::take(&mut self.path);
        if path_to(&self.nodes, id, &mut path) {
            let (nodes, recorded) = (&self.nodes, &mut self.recorded);
            descend(root, &path, &mut |c| {
                record_removals(nodes, c, id, recorded);
            });
        }
        self.path = path;
    }
}

/// Whether the direct mode covers the message `parser` parsed against
/// `nodes` (`legacy`: with 3.x / 4.x semantics, whose array operations
/// keep references to children nothing holds any more).
fn covered(parser: &Parser, nodes: &RefMap<Lean>, legacy: bool) -> bool {
    {
        let moves = |v: Scalar| matches!(v, Scalar::Child { create: false, .. });
        let mut array = false;
        for step in &parser.steps {
            match *step {
                Step::Switch(id) => {
                    let shape = match parser.created.get(id) {
                        Some(&s) => Some(s),
                        None => nodes.get(id).map(|n| n.shape),
                    };
                    array = matches!(shape, Some(Shape::Collection(CollectionKind::Array, _)));
                }
                Step::Fields { .. } => {}
                Step::Field { value, .. } => {
                    if moves(value) {
                        return false;
                    }
                }
                Step::Entry { value, .. } => {
                    if (array && legacy) || moves(value) {
                        return false;
                    }
                }
                Step::Clear | Step::Reverse | Step::DeleteByRefId(_) => {
                    if array && legacy {
                        return false;
                    }
                }
                Step::AddByRefId(_, value) => {
                    if legacy || moves(value) {
                        return false;
                    }
                }
            }
        }
        true
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
        // creates, and the root's in the first message.)
        let fresh = |id: RefId| created.contains(id) || (id == RefId::ROOT && !started);
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
                if !path_to(nodes, parent, &mut self.path) {
                    continue;
                }
                let run = &pending[first..i];
                descend(root, &self.path, &mut |p| {
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
                            let rec = recording.then(|| (&mut *recorded, id, fresh(id)));
                            failed += write_run(e, bytes, (start, end), defs, rec);
                        });
                    }
                });
            } else if path_to(nodes, id, &mut self.path) {
                let defs = types.fields(ty);
                descend(root, &self.path, &mut |n| {
                    let rec = recording.then(|| (&mut *recorded, id, fresh(id)));
                    failed += write_run(n, bytes, (start, end), defs, rec);
                });
            } else if recording {
                // A struct `T` does not hold (released by the message, or
                // of a type it has no place for): its changes are still
                // reported, from no previous value.
                let rec = (&mut *recorded, id, true);
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
        let fresh =
            self.parser.created.contains(current) || (current == RefId::ROOT && !self.started);
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
        let mut previous = prev.map(Value::Ref);
        let mut storage = None;
        let (input, child) = input_of(
            scalar,
            bytes,
            &mut storage,
            rust_types,
            &self.parser.created,
        );
        let mut ok = false;
        let place = self.nodes.get(current).map_or(Place::Detached, |n| n.place);
        if place != Place::Detached && path_to(&self.nodes, current, &mut self.path) {
            let mut input = Some(input);
            descend(root, &self.path, &mut |n| {
                if let Some(input) = input.take() {
                    if let (Some(p), false) = (primitive, fresh) {
                        previous = n.__decode_read_field(index, p);
                    }
                    ok = n.__decode_field(index, input);
                }
            });
            if !ok {
                self.unrepresentable += 1;
            }
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
        if let Some((id, shape)) = child {
            let place = if ok {
                Place::Field(index)
            } else {
                Place::Detached
            };
            self.nodes.insert(id, Lean::new(shape, current, place));
        }
        self.release_replaced(prev, child);
    }

    /// A run of entry operations (and CLEARs) on collection `current`.
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
        let attached = node.place != Place::Detached;
        let array = matches!(node.data(), Some(LeanData::Array(_)));
        let mut path = std::mem::take(&mut self.path);
        let mut done = false;
        if attached && path_to(&self.nodes, current, &mut path) {
            // A map or set the message creates: room for its entries at
            // once.
            let size = self.parser.map_sizes.get(current).map(|&n| n as usize);
            descend(root, &path, &mut |c| {
                if array {
                    self.array_block(bytes, rust_types, Some(&mut *c), current, run);
                } else {
                    if let Some(n) = size {
                        c.__decode_reserve(n);
                    }
                    for &step in run {
                        self.entry(bytes, rust_types, Some(&mut *c), current, step);
                    }
                }
                done = true;
            });
        }
        if !done {
            if array {
                self.array_block(bytes, rust_types, None, current, run);
            } else {
                for &step in run {
                    self.entry(bytes, rust_types, None, current, step);
                }
            }
        }
        self.path = path;
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
        if let Some(c) = c {
            if self.recording {
                record_removals(&self.nodes, c, current, &mut self.recorded);
            }
            c.__decode_clear_all();
        }
        let mut released = Vec::new();
        match self.nodes.get_mut(current).and_then(Lean::data_mut) {
            Some(LeanData::Map(m)) => {
                m.indexes.clear();
                released.extend(m.children.iter().map(|(_, &c)| c));
                released.extend(m.orphans.drain(..).map(|o| o.1));
                m.children.clear();
            }
            Some(LeanData::Indexed(x)) => {
                released.extend(x.by_index.iter().filter_map(|(_, e)| e.1));
                x.by_index.clear();
                x.by_handle.clear();
            }
            _ => {}
        }
        for id in released {
            self.release(id);
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
        let Some(LeanData::Map(m)) = self.nodes.get_mut(current).and_then(Lean::data_mut) else {
            return;
        };
        let mut c = c;
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
                self.release(old);
            }
            return;
        }
        let new_value = if recording {
            scalar_value(value, bytes)
        } else {
            None
        };
        let mut storage = None;
        let (input, child) = input_of(value, bytes, &mut storage, rust_types, &self.parser.created);
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
        self.map_placed(current, attached, old, after, child, orphan);
    }

    /// The bookkeeping of a map entry set: `old` was under the key, the
    /// entry now has handle `after` (`None`: `T` could not hold it; a new
    /// child is then kept under `orphan`, its key).
    fn map_placed(
        &mut self,
        current: RefId,
        attached: bool,
        old: Option<RefId>,
        after: Option<u32>,
        child: Option<(RefId, Shape)>,
        orphan: Option<Str>,
    ) {
        if attached && after.is_none() {
            self.unrepresentable += 1;
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
            self.nodes.insert(id, Lean::new(shape, current, place));
        }
        self.release_replaced(old, child);
    }

    /// Releases `old`, the child a slot held, unless it is `child`, the
    /// one it holds now.
    fn release_replaced(&mut self, old: Option<RefId>, child: Option<(RefId, Shape)>) {
        if let Some(old) = old {
            if Some(old) != child.map(|c| c.0) {
                self.release(old);
            }
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
                self.release(child);
            }
            return;
        }
        if x.by_index.contains(RefId(index)) {
            // (A new child given here is never attached: nothing holds it.)
            return;
        }
        if recording {
            let key = Key::Index(u64::from(index));
            let new = scalar_value(value, bytes);
            record_entry(&mut self.recorded, current, op, key, None, new);
        }
        let mut storage = None;
        let (input, child) = input_of(value, bytes, &mut storage, rust_types, &self.parser.created);
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
            self.nodes.insert(id, Lean::new(shape, current, place));
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
        let Some(node) = self.nodes.get_mut(current) else {
            return;
        };
        let p = element_primitive(node.shape);
        let Some(LeanData::Array(before)) = node.data_mut() else {
            return;
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
            c,
            ..
        } = block;
        if !changed {
            if let Some(LeanData::Array(b)) = self.nodes.get_mut(current).and_then(Lean::data_mut) {
                *b = before;
            }
            return;
        }
        items.compact();
        let after = items.take_all();
        self.array_placed(rust_types, c, current, (&before, &tpos), &after);
        if self.recording {
            // Children the block made and dropped: callbacks saw them
            // added (and may register on them).
            made.retain(|id| !after.iter().any(|s| matches!(*s, Slot::New(n) if n == *id)));
            for id in made {
                if let Some(&shape) = self.parser.created.get(id) {
                    self.nodes
                        .insert(id, Lean::new(shape, current, Place::Detached));
                    self.release(id);
                }
            }
        }
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
        let len = items.len() as u32;
        let mut last = None;
        for step in run {
            match *step {
                Step::Entry {
                    op: DELETE, index, ..
                } if index < len => {}
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
                released.extend(e.child);
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
        for id in released {
            self.release(id);
        }
        true
    }

    /// Sets array `current` in `T` (`c`) and in the table from its
    /// elements `after` the block (`before` it: the table's elements and
    /// their positions in `T`); releases the children it no longer holds.
    fn array_placed(
        &mut self,
        rust_types: &[Option<RustTypeId>],
        c: Option<&mut dyn DecodeNode>,
        current: RefId,
        (before, tpos): (&[ArrayElem], &[u32]),
        after: &[Slot],
    ) {
        let created = &self.parser.created;
        let attached = c.is_some();
        let mut fitted = Vec::new();
        if let Some(c) = c {
            let mut plan: Vec<Planned<'_>> = Vec::new();
            for s in after {
                let entry = match *s {
                    Slot::Old(k) => {
                        let Some(&q) = before
                            .get(k as usize)
                            .filter(|e| e.held)
                            .and_then(|_| tpos.get(k as usize))
                        else {
                            continue;
                        };
                        // (Runs of consecutive elements kept: one entry.)
                        if let Some(Planned::Keeps(start, len)) = plan.last_mut() {
                            if *start + *len == q as usize {
                                *len += 1;
                                continue;
                            }
                        }
                        Planned::Keeps(q as usize, 1)
                    }
                    Slot::Prim(ref v) => Planned::Primitive(v),
                    Slot::New(id) => {
                        let shape = created.get(id).copied();
                        Planned::New(shape.and_then(|s| rust_type(rust_types, s)))
                    }
                };
                plan.push(entry);
            }
            c.__decode_set_elements(plan, &mut fitted);
        }
        let mut fit = fitted.into_iter();
        let mut kept = vec![false; before.len()];
        let mut elems = Vec::with_capacity(after.len());
        let mut q = 0;
        for s in after {
            let (child, planned, new) = match *s {
                Slot::Old(k) => {
                    let e = before.get(k as usize).copied();
                    if let Some(seen) = kept.get_mut(k as usize) {
                        *seen = true;
                    }
                    (e.and_then(|e| e.child), e.is_some_and(|e| e.held), false)
                }
                Slot::Prim(_) => (None, true, false),
                Slot::New(id) => (Some(id), true, true),
            };
            let held = attached && planned && fit.next().unwrap_or(false);
            if attached && planned && !held {
                self.unrepresentable += 1;
            }
            if let Some(id) = child {
                let place = if held {
                    Place::Entry(q)
                } else {
                    Place::Detached
                };
                if new {
                    if let Some(&shape) = self.parser.created.get(id) {
                        self.nodes.insert(id, Lean::new(shape, current, place));
                    }
                } else if let Some(n) = self.nodes.get_mut(id) {
                    n.place = place;
                }
            }
            q += u32::from(held);
            elems.push(ArrayElem { child, held });
        }
        if let Some(LeanData::Array(b)) = self.nodes.get_mut(current).and_then(Lean::data_mut) {
            *b = elems;
        }
        for (e, kept) in before.iter().zip(kept) {
            if let (Some(child), false) = (e.child, kept) {
                self.release(child);
            }
        }
    }

    /// Releases structure `id` and everything under it (nothing else can
    /// hold them in this mode; their values left `T` with their holder's):
    /// dropped now, or detached until the callbacks ran.
    fn release(&mut self, id: RefId) {
        if !self.recording {
            self.drop_subtree(id);
            return;
        }
        if let Some(n) = self.nodes.get_mut(id) {
            if let (Place::Field(i), Shape::Collection(..)) = (n.place, n.shape) {
                self.gone.push((id, n.parent, i));
            }
            n.place = Place::Detached;
            self.deferred.push(id);
        }
    }

    /// Drops structure `id` and everything under it.
    fn drop_subtree(&mut self, id: RefId) {
        self.stack.push(id);
        while let Some(id) = self.stack.pop() {
            if id == RefId::ROOT {
                continue;
            }
            let Some(node) = self.nodes.remove(id) else {
                continue;
            };
            if self.recording {
                self.released.push(id);
            }
            let Some(data) = node.data else {
                continue;
            };
            match *data {
                LeanData::Struct(children) => self.stack.extend(children.iter().map(|c| c.1)),
                LeanData::Map(m) => {
                    self.stack.extend(m.children.iter().map(|(_, &c)| c));
                    self.stack.extend(m.orphans.iter().map(|o| o.1));
                }
                LeanData::Indexed(x) => {
                    self.stack
                        .extend(x.by_index.iter().filter_map(|(_, e)| e.1));
                }
                LeanData::Array(items) => {
                    self.stack.extend(items.iter().filter_map(|e| e.child));
                }
            }
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
                if op == ADD && prev.is_some() {
                    // ADD at an occupied index inserts.
                    self.items.insert(i, slot);
                    self.record(op, i, None, value);
                } else {
                    let old = self.items.set(i, slot);
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
        let removed = self.recorded_value(removed.as_ref());
        self.record(DELETE, i, removed.as_ref(), None);
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
