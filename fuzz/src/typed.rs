//! The typed decoder's fuzz check, on a state with every collection kind.
//!
//! The decode impls come from `#[schema(decode)]`.

use std::sync::{Arc, Mutex};

use roomcast_schema::decoder::{At, Cx, Decoder, DynamicDecoder, NodeRef, RefId, Value, ValueRef};
use roomcast_schema::types::TypeRegistry;
use roomcast_schema::{
    registry_of, ArraySchema, CollectionSchema, Dialect, Field, MapSchema, Schema, SetSchema,
};

/// A card.
#[derive(Schema, Default, Debug)]
#[schema(decode)]
pub struct Card {
    suit: Option<String>,
    rank: Option<u8>,
    next: Option<Box2>,
}

/// A second struct type, so that a field can hold a struct.
#[derive(Schema, Default, Debug)]
#[schema(decode)]
pub struct Box2 {
    #[schema(number)]
    n: Option<f64>,
    big: Option<i64>,
}

/// A hand.
#[derive(Schema, Default, Debug)]
#[schema(decode)]
pub struct Hand {
    cards: Option<ArraySchema<Card>>,
    tags: Option<SetSchema<String>>,
    marks: Option<CollectionSchema<u8>>,
    flag: Option<bool>,
}

/// The state.
#[derive(Schema, Default, Debug)]
#[schema(decode)]
pub struct Table {
    hands: Option<MapSchema<Hand>>,
    deck: Option<ArraySchema<Card>>,
    log: Option<ArraySchema<String>>,
    best: Option<Card>,
    scores: Option<MapSchema<u16>>,
}

/// Whether a typed value equals the dynamic decoder's value.
trait Same {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool;
}

fn prim<'a>(v: Option<ValueRef<'a>>) -> Option<&'a Value> {
    v?.primitive()
}

impl Same for String {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        prim(v).and_then(Value::as_str) == Some(self.as_str())
    }
}

macro_rules! same_number {
    ($($t:ty),*) => {$(
        impl Same for $t {
            #[allow(clippy::float_cmp, reason = "exact copies")]
            fn same(&self, v: Option<ValueRef<'_>>) -> bool {
                match prim(v) {
                    Some(Value::Int(i)) => *i as $t == *self,
                    Some(Value::Uint(u)) => *u as $t == *self,
                    Some(Value::Number(n)) => (*n as $t == *self) || (n.is_nan() && (*self as f64).is_nan()),
                    _ => false,
                }
            }
        }
    )*};
}
same_number!(u8, u16, i64, f64);

impl Same for bool {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        prim(v).and_then(Value::as_bool) == Some(*self)
    }
}

impl<T: Same> Same for Option<T> {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        match self {
            Some(x) => x.same(v),
            None => v.is_none(),
        }
    }
}

fn same_list<'a, V: Same + 'a>(
    items: impl Iterator<Item = &'a V>,
    len: usize,
    v: Option<ValueRef<'_>>,
) -> bool {
    let Some(node) = v.and_then(ValueRef::node) else {
        return false;
    };
    node.len() == len && items.enumerate().all(|(i, x)| x.same(node.at(i)))
}

impl<V: Same + Field> Same for ArraySchema<V> {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        same_list(self.iter(), self.len(), v)
    }
}

impl<V: Same + Field> Same for SetSchema<V> {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        same_list(self.iter(), self.len(), v)
    }
}

impl<V: Same + Field> Same for CollectionSchema<V> {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        same_list(self.iter(), self.len(), v)
    }
}

impl<V: Same + Field> Same for MapSchema<V> {
    fn same(&self, v: Option<ValueRef<'_>>) -> bool {
        let Some(node) = v.and_then(ValueRef::node) else {
            return false;
        };
        node.len() == self.len()
            && node
                .entries()
                .zip(self.iter())
                .all(|((k, x), (key, value))| k.to_string() == key && value.same(Some(x)))
    }
}

macro_rules! same_struct {
    ($ty:ident { $($f:ident),* }) => {
        impl Same for $ty {
            fn same(&self, v: Option<ValueRef<'_>>) -> bool {
                let Some(node) = v.and_then(ValueRef::node) else { return false };
                $(self.$f.same(node.field(stringify!($f))))&&*
            }
        }
    };
}
same_struct!(Card { suit, rank, next });
same_struct!(Box2 { n, big });
same_struct!(Hand {
    cards,
    tags,
    marks,
    flag
});
same_struct!(Table {
    hands,
    deck,
    log,
    best,
    scores
});

/// Whether `typed` equals the dynamic tree `tree`.
fn same_as(typed: &Table, tree: &DynamicDecoder) -> bool {
    let root: NodeRef<'_> = tree.root();
    typed.same(Some(ValueRef::Node(root)))
}

/// A log of callback calls.
type Log = Arc<Mutex<Vec<String>>>;

/// A value in a log line: numbers as numbers whatever their wire type,
/// children by refId.
fn show(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(v) => match (v.as_ref_id(), v.as_f64(), v.as_str(), v.as_bool()) {
            (Some(r), ..) => format!("#{}", r.0),
            (_, Some(n), ..) => format!("{n}"),
            (_, _, Some(s), _) => format!("{s:?}"),
            (_, _, _, Some(b)) => format!("{b}"),
            _ => format!("{v:?}"),
        },
    }
}

fn push(log: &Log, line: String) {
    log.lock().expect("log").push(line);
}

/// `listen` on `fields` of `at`, and its `on_change`.
fn listen(cx: &mut Cx<'_>, at: RefId, fields: &[&'static str], log: &Log) {
    for &f in fields {
        let l = Arc::clone(log);
        let _ = cx.listen(at, f, move |_, now, before| {
            push(
                &l,
                format!("{}.{f} = {} was {}", at.0, show(now), show(before)),
            );
        });
    }
    let l = Arc::clone(log);
    let _ = cx.on_change(At::Ref(at), move |_, _| {
        push(&l, format!("{} changed", at.0))
    });
}

/// Entry callbacks on the collection of field `field` of `at`; `nested`
/// registers on each child added.
fn entries(
    cx: &mut Cx<'_>,
    at: RefId,
    field: &'static str,
    log: &Log,
    nested: fn(&mut Cx<'_>, RefId, &Log),
) {
    let l = Arc::clone(log);
    let _ = cx.on_add(At::Field(at, field), move |cx, k, v| {
        push(&l, format!("{}.{field} add {k} {}", at.0, show(Some(v))));
        if let Some(id) = v.as_ref_id() {
            nested(cx, id, &l);
        }
    });
    let l = Arc::clone(log);
    let _ = cx.on_remove(At::Field(at, field), move |_, k, v| {
        push(&l, format!("{}.{field} remove {k} {}", at.0, show(Some(v))));
    });
    let l = Arc::clone(log);
    let _ = cx.on_change(At::Field(at, field), move |_, c| {
        if let Some((k, v)) = c {
            push(&l, format!("{}.{field} change {k} {}", at.0, show(v)));
        }
    });
}

fn card(cx: &mut Cx<'_>, id: RefId, log: &Log) {
    listen(cx, id, &["suit", "rank", "next"], log);
}

fn hand(cx: &mut Cx<'_>, id: RefId, log: &Log) {
    listen(cx, id, &["cards", "tags", "marks", "flag"], log);
    entries(cx, id, "cards", log, card);
    entries(cx, id, "tags", log, |_, _, _| {});
    entries(cx, id, "marks", log, |_, _, _| {});
}

/// Callbacks on every field and collection of [`Table`], nested ones
/// registered from the callbacks as children are added.
fn table_callbacks(mut cx: Cx<'_>, log: &Log) {
    listen(
        &mut cx,
        RefId::ROOT,
        &["hands", "deck", "log", "best", "scores"],
        log,
    );
    entries(&mut cx, RefId::ROOT, "hands", log, hand);
    entries(&mut cx, RefId::ROOT, "deck", log, card);
    entries(&mut cx, RefId::ROOT, "log", log, |_, _, _| {});
    entries(&mut cx, RefId::ROOT, "scores", log, |_, _, _| {});
}

/// Fuzz check for the typed decoder: messages as in [`crate::dynamic`]
/// (without the schema byte), into a typed decoder (with its fast path)
/// and a [`DynamicDecoder`] of the same types, in each dialect. They must
/// accept and reject the same messages with the same errors, a rejected
/// message must leave the state as it was, and the typed state, and the
/// dynamic copy built from it, must equal the dynamic tree.
pub fn typed(data: &[u8]) {
    let mut modern = Pair::new(Dialect::Modern);
    let mut legacy = Pair::new(Dialect::Legacy);
    // Callbacks on a typed decoder and on a dynamic one: the same calls
    // with the same values.
    let (typed_log, dynamic_log): (Log, Log) = Default::default();
    let mut watched = Decoder::<Table>::new().expect("types");
    table_callbacks(watched.callbacks(), &typed_log);
    let mut watched_tree = DynamicDecoder::new(table_types());
    table_callbacks(watched_tree.callbacks(), &dynamic_log);
    for msg in crate::messages(data) {
        let a = modern.decode(msg);
        // (Checked inside, like the 5.x pair.)
        let _ = legacy.decode(msg);
        assert_eq!(
            watched.decode(msg),
            a,
            "callbacks changed what the decoder accepts"
        );
        assert_eq!(
            watched_tree.decode(msg),
            a,
            "callbacks changed what the decoder accepts"
        );
        if watched.unrepresentable() == 0 {
            assert!(
                same_as(watched.state(), &modern.tree),
                "the state of the decoder with callbacks differs:\n{:?}\n{}",
                watched.state(),
                modern.tree.to_json()
            );
            assert_eq!(
                *typed_log.lock().expect("log"),
                *dynamic_log.lock().expect("log"),
                "the typed and the dynamic decoder's callbacks differ"
            );
        }
    }
}

/// A typed and a dynamic decoder of one dialect.
struct Pair {
    typed: Decoder<Table>,
    tree: DynamicDecoder,
    dialect: Dialect,
}

impl Pair {
    fn new(dialect: Dialect) -> Self {
        let mut typed = Decoder::<Table>::new().expect("types");
        typed.set_dialect(dialect);
        let mut tree = DynamicDecoder::new(table_types());
        tree.set_dialect(dialect);
        Self {
            typed,
            tree,
            dialect,
        }
    }

    /// Decodes `msg` into both: they must accept or reject it alike, a
    /// rejected message leaves the typed state as it was, and the typed
    /// state and its dynamic copy equal the dynamic tree.
    fn decode(&mut self, msg: &[u8]) -> Result<(), roomcast_schema::wire::DecodeError> {
        let d = self.dialect;
        let before = format!("{:?}", self.typed.state());
        let a = self.typed.decode(msg);
        assert_eq!(
            a,
            self.tree.decode(msg),
            "the typed and the dynamic decoder disagree ({d:?})"
        );
        if a.is_err() {
            assert_eq!(
                format!("{:?}", self.typed.state()),
                before,
                "a rejected message changed the typed state ({d:?})"
            );
        }
        if self.typed.unrepresentable() == 0 {
            assert!(
                same_as(self.typed.state(), &self.tree),
                "the typed state differs from the dynamic decoder's ({d:?}):\n{:?}\n{}",
                self.typed.state(),
                self.tree.to_json()
            );
            assert_eq!(
                self.typed.to_dynamic().to_json(),
                self.tree.to_json(),
                "the dynamic copy of the typed state differs ({d:?})"
            );
        }
        a
    }
}

/// The Reflection-free registry of [`Table`], for seeds.
pub fn table_types() -> TypeRegistry {
    registry_of::<Table>().expect("types")
}
