//! `serde::Serialize` in the shape of the client's `state.toJSON()`: a
//! `MapSchema` as an object, the other collections as arrays (the derive
//! writes structs as objects of their present fields).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::{ArraySchema, CollectionSchema, MapSchema, SetSchema};
use crate::schema::{Field, Schema};
use crate::Encoder;

impl<V: Field + Serialize> Serialize for MapSchema<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

fn seq<'a, V: Serialize + 'a, S: Serializer>(
    s: S,
    len: usize,
    items: impl Iterator<Item = &'a V>,
) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(len))?;
    for item in items {
        seq.serialize_element(item)?;
    }
    seq.end()
}

impl<V: Field + Serialize> Serialize for ArraySchema<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        seq(s, self.len(), self.iter())
    }
}

impl<V: Field + Serialize> Serialize for SetSchema<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        seq(s, self.len(), self.iter())
    }
}

impl<V: Field + Serialize> Serialize for CollectionSchema<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        seq(s, self.len(), self.iter())
    }
}

/// The encoder's state, as the state's own `Serialize` writes it.
impl<T: Schema + Serialize> Serialize for Encoder<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.state().serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ArraySchema, CollectionSchema, MapSchema, SetSchema};

    #[test]
    fn collections_serialize_as_to_json_does() {
        let mut m: MapSchema<u8> = MapSchema::new();
        m.insert("b", 2);
        m.insert("a", 1);
        let a: ArraySchema<String> = ["x".to_owned(), "y".to_owned()].into_iter().collect();
        let s: SetSchema<u8> = [3, 3, 4].into_iter().collect();
        let c: CollectionSchema<u8> = [5, 5].into_iter().collect();
        // Maps keep insertion order, as a JS Map (and toJSON) do.
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"b":2,"a":1}"#);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"["x","y"]"#);
        assert_eq!(serde_json::to_string(&s).unwrap(), "[3,4]");
        assert_eq!(serde_json::to_string(&c).unwrap(), "[5,5]");
    }
}
