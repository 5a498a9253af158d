//! The typed decoder's fuzz check, on a state with every collection kind.
//!
//! The decode impls come from `#[schema(decode)]`.

use roomcast_schema::decoder::{Decoder, DynamicDecoder, NodeRef, Value, ValueRef};
use roomcast_schema::types::TypeRegistry;
use roomcast_schema::{
    registry_of, ArraySchema, CollectionSchema, Field, MapSchema, Schema, SetSchema,
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

/// Whether a typed value equals the shadow's value.
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

/// Fuzz check for the typed decoder: messages as in [`crate::dynamic`]
/// (without the schema byte), into a typed decoder in its direct mode
/// (with its fast path), one in its shadow mode and
/// a [`DynamicDecoder`] of the same types. They must accept and reject the
/// same messages with the same errors, a rejected message must leave the
/// state as it was, and both typed states must equal the dynamic tree.
pub fn typed(data: &[u8]) {
    let mut direct = Decoder::<Table>::new().expect("types");
    let mut shadow = Decoder::<Table>::new().expect("types");
    shadow.__enter_shadow();
    let mut tree = DynamicDecoder::new(table_types());
    for msg in crate::messages(data) {
        let before = format!("{:?}", direct.state());
        let a = direct.decode(msg);
        let b = shadow.decode(msg);
        let c = tree.decode(msg);
        assert_eq!(a, b, "the two modes disagree");
        assert_eq!(a, c, "the typed and the dynamic decoder disagree");
        if a.is_err() {
            assert_eq!(
                format!("{:?}", direct.state()),
                before,
                "a rejected message changed the typed state"
            );
        }
        if direct.unrepresentable() == 0 && shadow.unrepresentable() == 0 {
            assert!(
                same_as(shadow.state(), &tree),
                "the shadow mode's state differs from the dynamic decoder's:\n{:?}\n{}",
                shadow.state(),
                tree.to_json()
            );
            assert!(
                same_as(direct.state(), &tree),
                "the direct mode's state differs from the dynamic decoder's:\n{:?}\n{}",
                direct.state(),
                tree.to_json()
            );
        }
    }
}

/// The Reflection-free registry of [`Table`], for seeds.
pub fn table_types() -> TypeRegistry {
    registry_of::<Table>().expect("types")
}
