//! Typed states as JSON in the vectors' conventions (what the dynamic
//! decoder's `to_json` and the Node decoder print), for the decoder tests.

use roomcast_schema::{ArraySchema, CollectionSchema, Field, MapSchema, SetSchema};
use serde_json::{json, Value as Json};

/// The JSON of a value; `None` when the field is absent on the client.
pub(crate) trait ToJson {
    fn to_json(&self) -> Option<Json>;
}

macro_rules! json_leaf {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn to_json(&self) -> Option<Json> {
                Some(json!(self))
            }
        }
    )*};
}
json_leaf!(String, u8, u16, u32);

/// Integral numbers print as integers, like JavaScript's.
impl ToJson for f64 {
    fn to_json(&self) -> Option<Json> {
        Some(if self.fract() == 0.0 && self.abs() < 9e15 {
            json!(*self as i64)
        } else {
            json!(self)
        })
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Option<Json> {
        self.as_ref()?.to_json()
    }
}

impl<V: ToJson + Field> ToJson for MapSchema<V> {
    fn to_json(&self) -> Option<Json> {
        Some(Json::Object(
            self.iter()
                .map(|(k, v)| (k.to_owned(), v.to_json().unwrap_or(Json::Null)))
                .collect(),
        ))
    }
}

macro_rules! json_list {
    ($($c:ident),*) => {$(
        impl<V: ToJson + Field> ToJson for $c<V> {
            fn to_json(&self) -> Option<Json> {
                Some(Json::Array(self.iter().map(|v| v.to_json().unwrap_or(Json::Null)).collect()))
            }
        }
    )*};
}
json_list!(ArraySchema, SetSchema, CollectionSchema);

/// `ToJson` for a struct: its present fields under their names.
macro_rules! struct_json {
    ($ty:ident { $($f:ident),* $(,)? }) => {
        impl $crate::common::ToJson for $ty {
            fn to_json(&self) -> ::core::option::Option<::serde_json::Value> {
                let mut m = ::serde_json::Map::new();
                $(if let Some(v) = $crate::common::ToJson::to_json(&self.$f) {
                    m.insert(stringify!($f).to_owned(), v);
                })*
                Some(::serde_json::Value::Object(m))
            }
        }
    };
}
