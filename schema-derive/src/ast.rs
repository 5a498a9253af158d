//! The derive input, parsed into what the expansion needs.

use crate::attr::{ContainerAttrs, FieldAttrs};
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
}

/// A `#[derive(Schema)]` struct.
pub(crate) struct Struct<'a> {
    pub(crate) attrs: ContainerAttrs,
    pub(crate) ident: &'a syn::Ident,
    pub(crate) vis: &'a syn::Visibility,
    /// The `#[schema(extends)]` field, if any.
    pub(crate) base: Option<Field<'a>>,
    /// Own fields, in index order after the inherited ones.
    pub(crate) fields: Vec<Field<'a>>,
    /// Every field as written (for checks).
    pub(crate) all: Vec<&'a syn::Field>,
    pub(crate) input: &'a syn::DeriveInput,
}

/// A `#[derive(Schema)]` enum: polymorphic children, one newtype variant
/// per concrete type; the first is the declared type.
pub(crate) struct Enum<'a> {
    pub(crate) attrs: ContainerAttrs,
    pub(crate) ident: &'a syn::Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) variants: Vec<(&'a syn::Ident, &'a syn::Type)>,
}

pub(crate) enum Container<'a> {
    Struct(Struct<'a>),
    Enum(Enum<'a>),
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
        match &input.data {
            syn::Data::Struct(data) => Struct::from_ast(cx, input, data).map(Self::Struct),
            syn::Data::Enum(data) => Enum::from_ast(cx, input, data).map(Self::Enum),
            syn::Data::Union(u) => {
                cx.error_spanned_by(
                    u.union_token,
                    "#[derive(Schema)] supports structs and enums of Schema types only",
                );
                None
            }
        }
    }
}

impl<'a> Struct<'a> {
    fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput, data: &'a syn::DataStruct) -> Option<Self> {
        let syn::Fields::Named(named) = &data.fields else {
            cx.error_spanned_by(
                &input.ident,
                "#[derive(Schema)] needs named fields (`struct S { a: u8 }`)",
            );
            return None;
        };
        let mut base = None;
        let mut fields = Vec::new();
        for (i, f) in named.named.iter().enumerate() {
            let attrs = FieldAttrs::parse(cx, &f.attrs);
            let kind = kind_of(&f.ty, &attrs);
            let field = Field {
                ident: f.ident.as_ref().expect("named field"),
                ty: &f.ty,
                kind,
                attrs,
            };
            if let Some(span) = field.attrs.extends {
                if i != 0 {
                    cx.syn_error(syn::Error::new(
                        span,
                        "`#[schema(extends)]` must be on the first field",
                    ));
                } else if field.attrs.wire.is_some()
                    || field.attrs.rename.is_some()
                    || field.attrs.view.is_some()
                {
                    cx.syn_error(syn::Error::new(
                        span,
                        "`#[schema(extends)]` takes no other attribute",
                    ));
                }
                base = Some(field);
            } else {
                fields.push(field);
            }
        }
        Some(Self {
            attrs: ContainerAttrs::parse(cx, &input.attrs),
            ident: &input.ident,
            vis: &input.vis,
            base,
            fields,
            all: named.named.iter().collect(),
            input,
        })
    }
}

impl<'a> Enum<'a> {
    fn from_ast(cx: &Ctxt, input: &'a syn::DeriveInput, data: &'a syn::DataEnum) -> Option<Self> {
        let mut variants = Vec::new();
        for v in &data.variants {
            match &v.fields {
                syn::Fields::Unnamed(u) if u.unnamed.len() == 1 => {
                    variants.push((&v.ident, &u.unnamed[0].ty));
                }
                _ => cx.error_spanned_by(
                    v,
                    "each variant of a Schema enum holds one Schema struct: `Hero(Hero)`",
                ),
            }
        }
        if data.variants.is_empty() {
            cx.error_spanned_by(
                &input.ident,
                "a Schema enum needs at least one variant (the declared type first)",
            );
        }
        if !input.generics.params.is_empty() {
            cx.error_spanned_by(
                &input.generics,
                "#[derive(Schema)] does not support generic enums",
            );
        }
        Some(Self {
            attrs: ContainerAttrs::parse(cx, &input.attrs),
            ident: &input.ident,
            vis: &input.vis,
            variants,
        })
    }
}
