//! One check per rule the derive enforces before expanding.

use crate::ast::Struct;
use crate::ctxt::Ctxt;

/// Indexes 0..=62: index 63 would collide with SWITCH_TO_STRUCTURE.
pub(crate) const MAX_FIELDS: usize = 63;

pub(crate) fn check(cx: &Ctxt, cont: &Struct<'_>) {
    check_field_count(cx, cont);
    check_generics(cx, cont);
}

/// At most 63 fields (spec `schema-wire.md` §3.1). Inherited fields count
/// too; that part is checked at compile time of the expansion.
fn check_field_count(cx: &Ctxt, cont: &Struct<'_>) {
    if cont.fields.len() > MAX_FIELDS {
        cx.error_spanned_by(
            cont.all[cont.all.len() - cont.fields.len() + MAX_FIELDS],
            format!(
                "a Schema struct has at most {MAX_FIELDS} fields; `{}` has {} (field index 63 would collide with SWITCH_TO_STRUCTURE)",
                cont.ident,
                cont.fields.len()
            ),
        );
    }
}

/// Generic structs cannot be described to clients (one type per name).
fn check_generics(cx: &Ctxt, cont: &Struct<'_>) {
    if !cont.input.generics.params.is_empty() {
        cx.error_spanned_by(
            &cont.input.generics,
            "#[derive(Schema)] does not support generic structs",
        );
    }
}
