//! The decoders' core: the parse pass, which validates a whole message
//! against the state before anything structural is applied
//! ([`parse`]), refId tables and reference counts ([`reference_tracker`]),
//! the undo log of the writes made while parsing ([`undo`]), and the
//! values ([`value`], [`array_items`], [`ordered_map`]).
//!
//! It imports nothing of the decoders built on it (`crate::wire`,
//! `crate::types` and `crate::quantize` only): a typed value is reached
//! through [`parse::TypedFields`], which the typed decoder implements.

pub(crate) mod array_items;
pub(crate) mod ordered_map;
pub(crate) mod parse;
pub(crate) mod reference_tracker;
pub(crate) mod undo;
pub(crate) mod value;

#[cfg(test)]
mod layering {
    /// The core's files import nothing of the decoders above it.
    #[test]
    fn the_core_imports_only_wire_types_and_itself() {
        let files = [
            ("array_items", include_str!("array_items.rs")),
            ("ordered_map", include_str!("ordered_map.rs")),
            ("parse", include_str!("parse.rs")),
            ("reference_tracker", include_str!("reference_tracker.rs")),
            ("undo", include_str!("undo.rs")),
            ("value", include_str!("value.rs")),
        ];
        let allowed = [
            "crate::decoder::base::",
            "crate::wire",
            "crate::types",
            "crate::quantize",
        ];
        for (name, text) in files {
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at..];
                assert!(
                    allowed.iter().any(|a| rest.starts_with(a)),
                    "{name}.rs imports {}",
                    rest.lines().next().unwrap_or_default()
                );
            }
            assert!(
                !text.contains("super::super"),
                "{name}.rs reaches above the core"
            );
        }
    }
}
