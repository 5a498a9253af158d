//! `vec!`-like constructors of the collections.

/// Builds an [`ArraySchema`](crate::ArraySchema) from its elements, as
/// `vec!` builds a `Vec` (Colyseus `new ArraySchema(a, b, c)`).
///
/// ```
/// use roomcast_schema::{array_schema, ArraySchema};
/// let a: ArraySchema<u8> = array_schema![1, 2, 3];
/// assert_eq!(a.iter().copied().collect::<Vec<_>>(), [1, 2, 3]);
/// let empty: ArraySchema<String> = array_schema![];
/// assert!(empty.is_empty());
/// ```
#[macro_export]
macro_rules! array_schema {
    () => {
        $crate::ArraySchema::new()
    };
    ($($value:expr),+ $(,)?) => {
        <$crate::ArraySchema<_> as ::core::iter::FromIterator<_>>::from_iter([$($value),+])
    };
}

/// Builds a [`MapSchema`](crate::MapSchema) from `key => value` pairs, in
/// that order (Colyseus `new MapSchema({ a: 1 })`); a key is anything a
/// `String` converts `From` (`&str`, `String`, `char`).
///
/// ```
/// use roomcast_schema::{map_schema, MapSchema};
/// let m: MapSchema<u8> = map_schema! { "a" => 1, "b" => 2 };
/// assert_eq!(m.get("b"), Some(&2));
/// ```
#[macro_export]
macro_rules! map_schema {
    () => {
        $crate::MapSchema::new()
    };
    ($($key:expr => $value:expr),+ $(,)?) => {
        <$crate::MapSchema<_> as ::core::iter::FromIterator<(::std::string::String, _)>>::from_iter(
            [$((::std::string::String::from($key), $value)),+],
        )
    };
}
