//! Change callbacks, in the spirit of the JS SDK's `Callbacks`
//! (`Callbacks.ts` of the reference).
//!
//! Register closures through [`DynamicDecoder::callbacks`](crate::decoder::DynamicDecoder::callbacks)
//! or [`Decoder::callbacks`](crate::decoder::Decoder::callbacks) (or, inside a
//! callback, through its [`Cx`]). Both decoders make the same calls with
//! the same values on the same messages; a dynamic decoder's callbacks read
//! its tree ([`Cx::node`]), a typed decoder's the typed state
//! ([`Cx::state`]).
//!
//! * [`Cx::listen`]: a field of one struct instance changed (current and
//!   previous value);
//! * [`Cx::on_change`]: anything changed in one struct instance (once per
//!   message), or an entry of a collection changed (with its key and new
//!   value);
//! * [`Cx::on_add`] / [`Cx::on_remove`]: an entry was added to / removed
//!   from a collection.
//!
//! A target is a structure ([`At::Ref`]: the root is [`RefId::ROOT`], a
//! nested instance is found through the state or received in another
//! callback) or, for collections, a struct field ([`At::Field`]): such a
//! callback follows whatever collection the field holds, including one
//! assigned later or replacing the current one.
//!
//! # When and in which order
//!
//! Callbacks run after the whole message has been applied, before the
//! structures it released are garbage-collected (so a removed child can still
//! be read from a dynamic decoder's tree; a typed state no longer holds
//! it). Changes are visited in the order of the message; for each
//! change, in this order: the instance's `on_change` (struct instances: only
//! at its first change in the message), the field's `listen` callbacks; for
//! collection entries: `on_remove` (removal, or the removed half of a
//! DELETE_AND_ADD), `on_add`, then `on_change`. Callbacks of one target run
//! in registration order. A callback registered during dispatch sees the
//! changes that follow in the same message. Unlike the JS SDK, registering
//! does not replay the current state: read it right after registering.
//!
//! # Typed values
//!
//! A typed decoder reports the values its Rust types hold. A field that is
//! not an `Option` always has a value: in a structure created by an
//! earlier message, the first value the server sends for it is compared
//! with the Rust default (no call when it is the default, the default as
//! the previous value otherwise), where a dynamic decoder reports a first
//! value. Fields of the structures a message creates, and the root's in
//! the first message, have no previous value in both.
//!
//! # Cost
//!
//! With no callback registered the decoder records nothing. With callbacks,
//! it records each change with a copy of its value (strings are cloned). A
//! typed decoder with callbacks skips its fast path: its
//! general path records the changes as it writes them into `T`, on par
//! with the dynamic decoder (`benches/benches/decode.rs`, `*_callbacks`).

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::decoder::base::parse::Shape;
use crate::decoder::base::reference_tracker::{RefId, RefIdHasherBuilder};
use crate::decoder::base::value::Value;
use crate::decoder::dynamic::{NodeRef, Nodes};
use crate::types::{FieldType, TypeRegistry};
use crate::wire::spec::{ADD, DELETE};

/// The key of a collection entry in a callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A map key (or, in [`NodeRef::entries`], a struct field name).
    Str(Arc<str>),
    /// An array position or a set / collection index.
    Index(u64),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Index(i) => write!(f, "{i}"),
        }
    }
}

/// A change as recorded while a message is applied.
#[derive(Debug, Clone)]
pub(crate) enum Recorded {
    Field {
        instance: RefId,
        index: u8,
        value: Option<Value>,
        previous: Option<Value>,
    },
    Added {
        collection: RefId,
        key: Key,
        value: Value,
    },
    Removed {
        collection: RefId,
        key: Key,
        value: Value,
    },
    EntryChanged {
        collection: RefId,
        key: Key,
        value: Option<Value>,
    },
}

/// Records a collection entry change the way the reference reports it
/// (`Callbacks.ts` `triggerChanges`): `prev` was under `key`, `new` is now
/// (`None`: nothing).
#[inline]
pub(crate) fn record_entry(
    rec: &mut Vec<Recorded>,
    collection: RefId,
    op: u8,
    key: Key,
    prev: Option<&Value>,
    new: Option<Value>,
) {
    let changed = match (prev, &new) {
        (Some(p), Some(n)) => !p.js_same(n),
        (None, None) => false,
        _ => true,
    };
    if op & DELETE == DELETE {
        if let Some(p) = prev {
            rec.push(Recorded::Removed {
                collection,
                key: key.clone(),
                value: p.clone(),
            });
        }
        if op & ADD == ADD {
            if let Some(n) = &new {
                rec.push(Recorded::Added {
                    collection,
                    key: key.clone(),
                    value: n.clone(),
                });
            }
        }
    } else if op & ADD == ADD && changed {
        if let Some(n) = &new {
            rec.push(Recorded::Added {
                collection,
                key: key.clone(),
                value: n.clone(),
            });
        }
    }
    if changed {
        rec.push(Recorded::EntryChanged {
            collection,
            key,
            value: new,
        });
    }
}

/// Records a struct field change (`listen`, the instance's `on_change`)
/// unless the value is the same one (JavaScript `===`).
#[inline]
pub(crate) fn record_field(
    rec: &mut Vec<Recorded>,
    instance: RefId,
    index: u8,
    previous: Option<Value>,
    value: Option<Value>,
) {
    let changed = match (&previous, &value) {
        (Some(p), Some(n)) => !p.js_same(n),
        (None, None) => false,
        _ => true,
    };
    if changed {
        rec.push(Recorded::Field {
            instance,
            index,
            value,
            previous,
        });
    }
}

/// The structures of a decoder as its callbacks see them.
pub(crate) trait Structures {
    /// The shape of structure `id`.
    fn shape(&self, id: RefId) -> Option<Shape>;
    /// The struct field that holds collection `id`.
    fn owner(&self, id: RefId) -> Option<(RefId, u8)>;
}

impl Structures for Nodes {
    fn shape(&self, id: RefId) -> Option<Shape> {
        self.map.get(id).map(|n| n.shape)
    }

    fn owner(&self, id: RefId) -> Option<(RefId, u8)> {
        self.map.get(id).and_then(|n| n.owner)
    }
}

/// What callbacks see of a decoder: its structures, and its state (a
/// dynamic tree, or a typed state).
#[derive(Clone, Copy)]
pub(crate) struct Tree<'a> {
    structures: &'a dyn Structures,
    /// A dynamic decoder's tree.
    nodes: Option<&'a Nodes>,
    /// A typed decoder's state.
    typed: Option<&'a (dyn Any + Send)>,
}

impl<'a> Tree<'a> {
    /// A dynamic decoder's.
    pub(crate) fn dynamic(nodes: &'a Nodes) -> Self {
        Self {
            structures: nodes,
            nodes: Some(nodes),
            typed: None,
        }
    }

    /// A typed decoder's: its structures and its state.
    pub(crate) fn typed(structures: &'a dyn Structures, typed: &'a (dyn Any + Send)) -> Self {
        Self {
            structures,
            nodes: None,
            typed: Some(typed),
        }
    }
}

/// Where a callback is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At<'a> {
    /// A structure, by refId.
    Ref(RefId),
    /// The collection held by a field of a struct instance (now or later).
    Field(RefId, &'a str),
}

/// Identifies a registered callback, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackHandle(u64);

/// Why a callback could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The decoder holds no structure with this refId.
    #[error("refId {0} not found")]
    UnknownRef(RefId),
    /// The instance's type has no field of this name.
    #[error("no such field")]
    UnknownField,
    /// The field or structure is not of the kind the callback needs (e.g.
    /// `on_add` on a primitive field).
    #[error("the target is not of the required kind")]
    WrongKind,
}

type ListenFn = Box<dyn FnMut(&mut Cx<'_>, Option<&Value>, Option<&Value>) + Send>;
type InstanceFn = Box<dyn FnMut(&mut Cx<'_>) + Send>;
type EntryFn = Box<dyn FnMut(&mut Cx<'_>, &Key, &Value) + Send>;
type EntryChangeFn = Box<dyn FnMut(&mut Cx<'_>, &Key, Option<&Value>) + Send>;

enum Kind {
    Listen(u8, ListenFn),
    Instance(InstanceFn),
    Add(EntryFn),
    Remove(EntryFn),
    EntryChange(EntryChangeFn),
}

struct Handler {
    id: u64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Ref(RefId),
    Field(RefId, u8),
}

/// Registrations waiting to be merged, and the id counter.
#[derive(Default)]
pub(crate) struct Staging {
    next_id: u64,
    added: Vec<(Target, Handler)>,
    removed: Vec<u64>,
}

/// The callbacks registered on a decoder.
#[derive(Default)]
pub(crate) struct Callbacks {
    on_ref: HashMap<RefId, Vec<Handler>, RefIdHasherBuilder>,
    on_field: HashMap<(RefId, u8), Vec<Handler>, RefIdHasherBuilder>,
    staging: Staging,
    /// Structures already reported by `on_change` in this message.
    seen: HashSet<RefId, RefIdHasherBuilder>,
}

impl fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("refs", &self.on_ref.len())
            .field("fields", &self.on_field.len())
            .finish_non_exhaustive()
    }
}

/// What a callback can do: read the state, register or remove callbacks.
pub struct Cx<'a> {
    types: &'a TypeRegistry,
    tree: Tree<'a>,
    staging: &'a mut Staging,
}

impl fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx").finish_non_exhaustive()
    }
}

impl<'a> Cx<'a> {
    pub(crate) fn new(types: &'a TypeRegistry, tree: Tree<'a>, staging: &'a mut Staging) -> Self {
        Self {
            types,
            tree,
            staging,
        }
    }

    /// A structure of a [`DynamicDecoder`](crate::decoder::DynamicDecoder),
    /// with its state after the whole message (`None` in the callbacks of
    /// a typed [`Decoder`](crate::decoder::Decoder): read
    /// [`state`](Self::state) there).
    #[must_use]
    pub fn node(&self, id: RefId) -> Option<NodeRef<'a>> {
        NodeRef::new(self.types, self.tree.nodes?, id)
    }

    /// The root state of a [`DynamicDecoder`](crate::decoder::DynamicDecoder)
    /// (see [`node`](Self::node)).
    #[must_use]
    pub fn root(&self) -> Option<NodeRef<'a>> {
        self.node(RefId::ROOT)
    }

    /// The typed state of a [`Decoder<S>`](crate::decoder::Decoder), after
    /// the whole message (`None` for another `S`, or in the callbacks of a
    /// dynamic decoder).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// use roomcast_schema::decoder::{At, Decoder, RefId};
    /// use roomcast_schema::{Encoder, MapSchema, Schema};
    ///
    /// #[derive(Schema, Default, Debug)]
    /// #[schema(decode)]
    /// struct Player {
    ///     hp: u8,
    /// }
    ///
    /// #[derive(Schema, Default, Debug)]
    /// #[schema(decode)]
    /// struct Game {
    ///     players: MapSchema<Player>,
    /// }
    ///
    /// let mut decoder = Decoder::<Game>::new()?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = Arc::clone(&seen);
    /// decoder.callbacks().on_add(At::Field(RefId::ROOT, "players"), move |cx, key, _| {
    ///     let game = cx.state::<Game>().expect("a Decoder<Game>");
    ///     let hp = game.players.get(&key.to_string()).map(|p| p.hp);
    ///     sink.lock().unwrap().push((key.to_string(), hp));
    /// })?;
    ///
    /// let mut game = Game::default();
    /// game.players.insert("ana", Player { hp: 7 });
    /// decoder.decode(Encoder::new(game).encode_all())?;
    /// assert_eq!(*seen.lock().unwrap(), [("ana".to_owned(), Some(7))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn state<S: Any>(&self) -> Option<&'a S> {
        let typed: &'a (dyn Any + Send) = self.tree.typed?;
        (typed as &'a dyn Any).downcast_ref::<S>()
    }

    /// Calls `f` with the current and previous value whenever field `field`
    /// of struct instance `instance` changes.
    ///
    /// # Errors
    ///
    /// Unknown instance or field.
    pub fn listen(
        &mut self,
        instance: RefId,
        field: &str,
        f: impl FnMut(&mut Cx<'_>, Option<&Value>, Option<&Value>) + Send + 'static,
    ) -> Result<CallbackHandle, CallbackError> {
        let index = self.field_index(instance, field)?;
        Ok(self.stage(Target::Ref(instance), |_| Kind::Listen(index, Box::new(f))))
    }

    /// Calls `f` once per message in which struct instance `instance`
    /// changes; for a collection target, calls it on every entry change
    /// with the entry's key and new value (`None`: removed).
    ///
    /// # Errors
    ///
    /// Unknown instance or field.
    pub fn on_change(
        &mut self,
        at: At<'_>,
        f: impl FnMut(&mut Cx<'_>, Option<(&Key, Option<&Value>)>) + Send + 'static,
    ) -> Result<CallbackHandle, CallbackError> {
        let target = self.target(at, false)?;
        let is_collection = match target {
            Target::Field(..) => true,
            Target::Ref(id) => matches!(self.shape(id)?, Shape::Collection(..)),
        };
        let mut f = f;
        Ok(if is_collection {
            self.stage(target, |_| {
                Kind::EntryChange(Box::new(
                    move |cx: &mut Cx<'_>, k: &Key, v: Option<&Value>| f(cx, Some((k, v))),
                ))
            })
        } else {
            self.stage(target, |_| {
                Kind::Instance(Box::new(move |cx: &mut Cx<'_>| f(cx, None)))
            })
        })
    }

    /// Calls `f` with the key and value of every entry added to a
    /// collection.
    ///
    /// # Errors
    ///
    /// Unknown target, or not a collection.
    pub fn on_add(
        &mut self,
        at: At<'_>,
        f: impl FnMut(&mut Cx<'_>, &Key, &Value) + Send + 'static,
    ) -> Result<CallbackHandle, CallbackError> {
        let target = self.target(at, true)?;
        Ok(self.stage(target, |_| Kind::Add(Box::new(f))))
    }

    /// Calls `f` with the key and previous value of every entry removed
    /// from a collection (CLEAR and a replaced collection included).
    ///
    /// # Errors
    ///
    /// Unknown target, or not a collection.
    pub fn on_remove(
        &mut self,
        at: At<'_>,
        f: impl FnMut(&mut Cx<'_>, &Key, &Value) + Send + 'static,
    ) -> Result<CallbackHandle, CallbackError> {
        let target = self.target(at, true)?;
        Ok(self.stage(target, |_| Kind::Remove(Box::new(f))))
    }

    /// Unregisters a callback (it still runs if it was already due in the
    /// current dispatch of the same change).
    pub fn remove(&mut self, handle: CallbackHandle) {
        self.staging.removed.push(handle.0);
    }

    fn shape(&self, id: RefId) -> Result<Shape, CallbackError> {
        self.tree
            .structures
            .shape(id)
            .ok_or(CallbackError::UnknownRef(id))
    }

    fn field_index(&self, instance: RefId, field: &str) -> Result<u8, CallbackError> {
        let Shape::Struct(t) = self.shape(instance)? else {
            return Err(CallbackError::WrongKind);
        };
        let i = self
            .types
            .fields(t)
            .iter()
            .position(|f| f.name == field)
            .ok_or(CallbackError::UnknownField)?;
        Ok(i as u8)
    }

    fn target(&self, at: At<'_>, collection: bool) -> Result<Target, CallbackError> {
        match at {
            At::Ref(id) => {
                let shape = self.shape(id)?;
                if collection && !matches!(shape, Shape::Collection(..)) {
                    return Err(CallbackError::WrongKind);
                }
                Ok(Target::Ref(id))
            }
            At::Field(instance, field) => {
                let index = self.field_index(instance, field)?;
                let Shape::Struct(t) = self.shape(instance)? else {
                    return Err(CallbackError::WrongKind);
                };
                match self.types.fields(t)[usize::from(index)].ty {
                    FieldType::Collection(..) => Ok(Target::Field(instance, index)),
                    _ => Err(CallbackError::WrongKind),
                }
            }
        }
    }

    fn stage(&mut self, target: Target, kind: impl FnOnce(u64) -> Kind) -> CallbackHandle {
        let id = self.staging.next_id;
        self.staging.next_id += 1;
        self.staging
            .added
            .push((target, Handler { id, kind: kind(id) }));
        CallbackHandle(id)
    }
}

impl Callbacks {
    /// Whether any callback is registered (the decoder records changes only
    /// then).
    pub(crate) fn is_active(&self) -> bool {
        !self.on_ref.is_empty() || !self.on_field.is_empty()
    }

    pub(crate) fn staging(&mut self) -> &mut Staging {
        &mut self.staging
    }

    /// Applies staged registrations and removals.
    pub(crate) fn merge(&mut self) {
        if self.staging.added.is_empty() && self.staging.removed.is_empty() {
            return;
        }
        for (target, handler) in self.staging.added.drain(..) {
            match target {
                Target::Ref(id) => self.on_ref.entry(id).or_default().push(handler),
                Target::Field(id, i) => self.on_field.entry((id, i)).or_default().push(handler),
            }
        }
        if !self.staging.removed.is_empty() {
            let removed = std::mem::take(&mut self.staging.removed);
            for list in self.on_ref.values_mut().chain(self.on_field.values_mut()) {
                list.retain(|h| !removed.contains(&h.id));
            }
            self.on_ref.retain(|_, l| !l.is_empty());
            self.on_field.retain(|_, l| !l.is_empty());
        }
    }

    /// Drops the callbacks of a garbage-collected structure.
    pub(crate) fn forget(&mut self, id: RefId) {
        if self.is_active() {
            self.on_ref.remove(&id);
            self.on_field.retain(|&(r, _), _| r != id);
        }
    }

    /// Runs the callbacks for the changes of one message.
    pub(crate) fn dispatch(&mut self, types: &TypeRegistry, tree: Tree<'_>, changes: &[Recorded]) {
        self.seen.clear();
        for change in changes {
            let mut cx = Cx::new(types, tree, &mut self.staging);
            match change {
                Recorded::Field {
                    instance,
                    index,
                    value,
                    previous,
                } => {
                    let first = self.seen.insert(*instance);
                    if let Some(list) = self.on_ref.get_mut(instance) {
                        if first {
                            for h in list.iter_mut() {
                                if let Kind::Instance(f) = &mut h.kind {
                                    f(&mut cx);
                                }
                            }
                        }
                        for h in list.iter_mut() {
                            if let Kind::Listen(i, f) = &mut h.kind {
                                if i == index {
                                    f(&mut cx, value.as_ref(), previous.as_ref());
                                }
                            }
                        }
                    }
                }
                Recorded::Added {
                    collection,
                    key,
                    value,
                }
                | Recorded::Removed {
                    collection,
                    key,
                    value,
                } => {
                    let added = matches!(change, Recorded::Added { .. });
                    let owner = tree.structures.owner(*collection);
                    if let Some(list) = self.on_ref.get_mut(collection) {
                        run_entry(list, &mut cx, added, key, value);
                    }
                    if let Some((r, i)) = owner {
                        if let Some(list) = self.on_field.get_mut(&(r, i)) {
                            run_entry(list, &mut cx, added, key, value);
                        }
                    }
                }
                Recorded::EntryChanged {
                    collection,
                    key,
                    value,
                } => {
                    let owner = tree.structures.owner(*collection);
                    if let Some(list) = self.on_ref.get_mut(collection) {
                        run_entry_change(list, &mut cx, key, value.as_ref());
                    }
                    if let Some((r, i)) = owner {
                        if let Some(list) = self.on_field.get_mut(&(r, i)) {
                            run_entry_change(list, &mut cx, key, value.as_ref());
                        }
                    }
                }
            }
            self.merge();
        }
    }
}

fn run_entry(list: &mut [Handler], cx: &mut Cx<'_>, added: bool, key: &Key, value: &Value) {
    for h in list {
        match &mut h.kind {
            Kind::Add(f) if added => f(cx, key, value),
            Kind::Remove(f) if !added => f(cx, key, value),
            _ => {}
        }
    }
}

fn run_entry_change(list: &mut [Handler], cx: &mut Cx<'_>, key: &Key, value: Option<&Value>) {
    for h in list {
        if let Kind::EntryChange(f) = &mut h.kind {
            f(cx, key, value);
        }
    }
}
