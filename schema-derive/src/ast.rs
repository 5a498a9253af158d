//! The derive input, parsed into what the expansion needs.

use crate::attr::FieldAttrs;
use crate::ctxt::Ctxt;

/// How a field is changed through the view.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A primitive (or `Option` of one): a setter only.
    Primitive,
    /// A struct, collection or `Option` of one: a setter and a `_mut` view.
    Ref,
}

pub(crate) struct Field<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) ty: &'a syn::Type,
    pub(crate) attrs: FieldAttrs,
    pub(crate) kind: Kind,
    pub(crate) original: &'a syn::Field,
}

pub(crate) struct Container<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) fields: Vec<Field<'a>>,
    pub(crate) input: &'a syn::DeriveInput,
}

const PRIMITIVES: &[&str] = &[
    "String", "bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64",
];

/// Whether a type is a primitive by its spelling (`Option<_>` unwrapped).
fn kind_of(ty: &syn::Type, attrs: &FieldAttrs) -> Kind {
    if attrs.wire.is_some() {
        return Kind::Primitive;
    }
    let syn::Type::Path(p) = ty else {
        return Kind::Ref;
    };
    let Some(last) = p.path.segments.last() else {
        return Kind::Ref;
    };
    if last.ident == "Option" {
        if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
            if let Some(syn::GenericArgument::Type(inner)) = args.args.first() {
                return kind_of(inner, attrs);
            }
        }
    }
    if PRIMITIVES.iter().any(|n| last.ident == n) && last.arguments.is_empty() {
        Kind::Primitive
    } else {
        Kind::Ref
    }
}

impl<'a> Container<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput) -> Option<Self> {
        let data = match &input.data {
            syn::Data::Struct(s) => s,
            syn::Data::Enum(e) => {
                cx.error_spanned_by(
                    e.enum_token,
                    "#[derive(Schema)] supports structs with named fields only",
                );
                return None;
            }
            syn::Data::Union(u) => {
                cx.error_spanned_by(
                    u.union_token,
                    "#[derive(Schema)] supports structs with named fields only",
                );
                return None;
            }
        };
        let syn::Fields::Named(named) = &data.fields else {
            cx.error_spanned_by(
                &input.ident,
                "#[derive(Schema)] needs named fields (`struct S { a: u8 }`)",
            );
            return None;
        };
        let fields = named
            .named
            .iter()
            .map(|f| {
                let attrs = FieldAttrs::parse(cx, &f.attrs);
                let kind = kind_of(&f.ty, &attrs);
                Field {
                    ident: f.ident.as_ref().expect("named field"),
                    ty: &f.ty,
                    attrs,
                    kind,
                    original: f,
                }
            })
            .collect();
        Some(Self {
            ident: &input.ident,
            vis: &input.vis,
            fields,
            input,
        })
    }
}
