//! Code generation for typed decoding: the `roomcast_schema::decoder`
//! traits `DecodeNode`, `DecodeStruct` and (structs) `DecodeState`, which
//! let `Decoder<T>` write decoded changes into a derived type.
//!
//! Standalone on purpose: it reads only what decoding needs from the input
//! (field order, the `#[schema(extends)]` base, enum variants, the
//! `#[schema(crate = "...")]` path) and leaves validation and error
//! reporting to the rest of the derive, which runs first.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// Whether a field carries `#[schema(extends)]`.
fn is_base(field: &syn::Field) -> bool {
    let mut base = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("schema")) {
        // Other keys (wire types, rename) are the main expansion's business;
        // only `extends` matters here.
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("extends") {
                base = true;
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren) {
                // `quantized(..)`
                meta.parse_nested_meta(|inner| {
                    if inner.input.peek(syn::Token![=]) {
                        let _: syn::Expr = inner.value()?.parse()?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        });
    }
    base
}

/// Generates the decode impls for a `#[derive(Schema)]` struct or enum.
///
/// # Errors
///
/// A union, a tuple struct, or an enum variant that is not a newtype (the
/// main expansion reports these too, with the same spans).
pub(crate) fn expand_decode(
    input: &syn::DeriveInput,
    krate: &syn::Path,
) -> syn::Result<TokenStream> {
    let body = match &input.data {
        syn::Data::Struct(data) => expand_struct(input, data, krate)?,
        syn::Data::Enum(data) => expand_enum(input, data, krate)?,
        syn::Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "#[derive(Schema)] supports structs and enums of Schema types only",
            ))
        }
    };
    Ok(quote! {
        const _: () = {
            #body
        };
    })
}

fn expand_struct(
    input: &syn::DeriveInput,
    data: &syn::DataStruct,
    krate: &syn::Path,
) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let syn::Fields::Named(named) = &data.fields else {
        return Err(syn::Error::new_spanned(
            ident,
            "#[derive(Schema)] needs named fields (`struct S { a: u8 }`)",
        ));
    };
    let dec = quote!(#krate::decoder);
    let mut base = None;
    let mut own = Vec::new();
    for (i, f) in named.named.iter().enumerate() {
        let name = f
            .ident
            .as_ref()
            .ok_or_else(|| syn::Error::new_spanned(f, "named field"))?;
        if i == 0 && is_base(f) {
            base = Some((name, &f.ty));
        } else {
            own.push(name);
        }
    }
    let indexes: Vec<Literal> = (0..own.len())
        .map(|i| Literal::u8_unsuffixed(i as u8))
        .collect();
    // Inherited fields come first: indexes below the parent's field count
    // go to the parent (`call` is the same method on it), the others are
    // renumbered from 0.
    let to_base = |call: TokenStream| match base {
        Some((_, bty)) => quote! {
            let __n = <#bty as #krate::Schema>::FIELD_COUNT as u8;
            if index < __n {
                return #call;
            }
            let index = index - __n;
        },
        None => TokenStream::new(),
    };
    let base_field = base.map(|(b, _)| b);
    let field_base =
        to_base(quote!(#dec::DecodeNode::__decode_field(&mut self.#base_field, index, input)));
    let child_base =
        to_base(quote!(#dec::DecodeNode::__decode_visit_child(&mut self.#base_field, index, f)));
    let take_base =
        to_base(quote!(#dec::DecodeNode::__decode_take_child(&mut self.#base_field, index)));
    let fast_at_base = to_base(quote!(#dec::FastNode::__fast_at(
        &mut self.#base_field,
        me,
        path,
        cx
    )));
    let fast_field_base = to_base(quote!(#dec::FastNode::__fast_field(
        &mut self.#base_field,
        wire,
        index,
        op,
        ty,
        cx
    )));
    let logged_base = to_base(quote!(#dec::DecodeNode::__decode_field_logged(
        &mut self.#base_field,
        index,
        input,
        p
    )));
    let child_mut_base =
        to_base(quote!(#dec::DecodeNode::__decode_child_mut(&mut self.#base_field, index)));
    let read_base =
        to_base(quote!(#dec::DecodeNode::__decode_read_field(&mut self.#base_field, index, p)));
    Ok(quote! {
        #[automatically_derived]
        impl #dec::DecodeNode for #ident {
            fn __decode_field(&mut self, index: u8, input: #dec::FieldInput<'_>) -> bool {
                #field_base
                match index {
                    #( #indexes => #dec::decode_set(&mut self.#own, input), )*
                    _ => false,
                }
            }

            fn __decode_visit_child(
                &mut self,
                index: u8,
                f: &mut dyn ::core::ops::FnMut(&mut dyn #dec::DecodeNode),
            ) {
                #child_base
                let node: ::core::option::Option<&mut dyn #dec::DecodeNode> = match index {
                    #( #indexes => #dec::DecodeField::__decode_node(&mut self.#own), )*
                    _ => ::core::option::Option::None,
                };
                if let ::core::option::Option::Some(node) = node {
                    f(node);
                }
            }

            fn __decode_take_child(
                &mut self,
                index: u8,
            ) -> ::core::option::Option<::std::boxed::Box<dyn #dec::DecodeNode>> {
                #take_base
                match index {
                    #( #indexes => #dec::DecodeField::__decode_take(&mut self.#own), )*
                    _ => ::core::option::Option::None,
                }
            }

            fn __decode_field_logged(
                &mut self,
                index: u8,
                input: #dec::FieldInput<'_>,
                p: #krate::types::Primitive,
            ) -> (bool, ::core::option::Option<#dec::Value>) {
                #logged_base
                match index {
                    #( #indexes => {
                        let old = #dec::DecodeField::__decode_value(&self.#own, p);
                        (#dec::decode_set(&mut self.#own, input), old)
                    } )*
                    _ => (false, ::core::option::Option::None),
                }
            }

            fn __decode_child_mut(
                &mut self,
                index: u8,
            ) -> ::core::option::Option<&mut dyn #dec::DecodeNode> {
                #child_mut_base
                match index {
                    #( #indexes => #dec::DecodeField::__decode_node(&mut self.#own), )*
                    _ => ::core::option::Option::None,
                }
            }

            fn __decode_read_field(
                &mut self,
                index: u8,
                p: #krate::types::Primitive,
            ) -> ::core::option::Option<#dec::Value> {
                #read_base
                match index {
                    #( #indexes => #dec::DecodeField::__decode_value(&self.#own, p), )*
                    _ => ::core::option::Option::None,
                }
            }

            fn __decode_into_any(
                self: ::std::boxed::Box<Self>,
            ) -> ::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send> {
                self
            }
        }

        #[automatically_derived]
        impl #dec::FastNode for #ident {
            #[inline]
            fn __fast_at(
                &mut self,
                me: #dec::RefId,
                path: &[(#dec::Place, #dec::RefId)],
                cx: &mut #dec::FastCx<'_>,
            ) -> ::core::result::Result<(), #dec::Bail> {
                match path.split_first() {
                    ::core::option::Option::None => #dec::fast_struct_block(self, cx),
                    ::core::option::Option::Some((&(#dec::Place::Field(index), id), rest)) => {
                        #fast_at_base
                        match index {
                            #( #indexes => #dec::FastField::__fast_at(&mut self.#own, id, rest, cx), )*
                            _ => ::core::result::Result::Err(#dec::Bail),
                        }
                    }
                    ::core::option::Option::Some(_) => ::core::result::Result::Err(#dec::Bail),
                }
            }

            #[inline]
            fn __fast_field(
                &mut self,
                wire: u8,
                index: u8,
                op: u8,
                ty: #krate::types::FieldType,
                cx: &mut #dec::FastCx<'_>,
            ) -> ::core::result::Result<(), #dec::Bail> {
                #fast_field_base
                match index {
                    #( #indexes => cx.field(&mut self.#own, wire, op, ty), )*
                    _ => ::core::result::Result::Err(#dec::Bail),
                }
            }
        }

        #[automatically_derived]
        impl #dec::DecodeStruct for #ident {
            fn __decode_new_struct(ty: ::core::any::TypeId) -> ::core::option::Option<Self> {
                if ty == ::core::any::TypeId::of::<Self>() {
                    ::core::option::Option::Some(<Self as ::core::default::Default>::default())
                } else {
                    ::core::option::Option::None
                }
            }

            fn __decode_placeholder() -> Self {
                <Self as ::core::default::Default>::default()
            }
        }

        #[automatically_derived]
        impl #dec::DecodeState for #ident {
            fn __decode_types() -> ::core::result::Result<
                (
                    #krate::types::TypeRegistry,
                    ::std::vec::Vec<(::core::any::TypeId, u32)>,
                ),
                #krate::types::TypeError,
            > {
                ::core::result::Result::Ok((
                    #krate::registry_of::<Self>()?,
                    <Self as #krate::Field>::__type_ids(),
                ))
            }
        }
    })
}

fn expand_enum(
    input: &syn::DeriveInput,
    data: &syn::DataEnum,
    krate: &syn::Path,
) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let dec = quote!(#krate::decoder);
    let mut vids = Vec::new();
    let mut vtys = Vec::new();
    for v in &data.variants {
        match &v.fields {
            syn::Fields::Unnamed(u) if u.unnamed.len() == 1 => {
                vids.push(&v.ident);
                vtys.push(&u.unnamed[0].ty);
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    v,
                    "each variant of a Schema enum holds one Schema struct: `Hero(Hero)`",
                ))
            }
        }
    }
    let (Some(first), Some(first_ty)) = (vids.first(), vtys.first()) else {
        return Err(syn::Error::new_spanned(
            ident,
            "a Schema enum needs at least one variant (the declared type first)",
        ));
    };
    Ok(quote! {
        #[automatically_derived]
        impl #dec::DecodeNode for #ident {
            fn __decode_field(&mut self, index: u8, input: #dec::FieldInput<'_>) -> bool {
                match self {
                    #( Self::#vids(v) => #dec::DecodeNode::__decode_field(v, index, input), )*
                }
            }

            fn __decode_visit_child(
                &mut self,
                index: u8,
                f: &mut dyn ::core::ops::FnMut(&mut dyn #dec::DecodeNode),
            ) {
                match self {
                    #( Self::#vids(v) => #dec::DecodeNode::__decode_visit_child(v, index, f), )*
                }
            }

            fn __decode_take_child(
                &mut self,
                index: u8,
            ) -> ::core::option::Option<::std::boxed::Box<dyn #dec::DecodeNode>> {
                match self {
                    #( Self::#vids(v) => #dec::DecodeNode::__decode_take_child(v, index), )*
                }
            }

            fn __decode_field_logged(
                &mut self,
                index: u8,
                input: #dec::FieldInput<'_>,
                p: #krate::types::Primitive,
            ) -> (bool, ::core::option::Option<#dec::Value>) {
                match self {
                    #( Self::#vids(v) => #dec::DecodeNode::__decode_field_logged(v, index, input, p), )*
                }
            }

            fn __decode_child_mut(
                &mut self,
                index: u8,
            ) -> ::core::option::Option<&mut dyn #dec::DecodeNode> {
                match self {
                    #( Self::#vids(v) => #dec::DecodeNode::__decode_child_mut(v, index), )*
                }
            }

            fn __decode_read_field(
                &mut self,
                index: u8,
                p: #krate::types::Primitive,
            ) -> ::core::option::Option<#dec::Value> {
                match self {
                    #( Self::#vids(v) => #dec::DecodeNode::__decode_read_field(v, index, p), )*
                }
            }

            fn __decode_into_any(
                self: ::std::boxed::Box<Self>,
            ) -> ::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send> {
                self
            }
        }

        #[automatically_derived]
        impl #dec::FastNode for #ident {
            #[inline]
            fn __fast_at(
                &mut self,
                me: #dec::RefId,
                path: &[(#dec::Place, #dec::RefId)],
                cx: &mut #dec::FastCx<'_>,
            ) -> ::core::result::Result<(), #dec::Bail> {
                match self {
                    #( Self::#vids(v) => #dec::FastNode::__fast_at(v, me, path, cx), )*
                }
            }

            #[inline]
            fn __fast_field(
                &mut self,
                wire: u8,
                index: u8,
                op: u8,
                ty: #krate::types::FieldType,
                cx: &mut #dec::FastCx<'_>,
            ) -> ::core::result::Result<(), #dec::Bail> {
                match self {
                    #( Self::#vids(v) => #dec::FastNode::__fast_field(v, wire, index, op, ty, cx), )*
                }
            }
        }

        #[automatically_derived]
        impl #dec::DecodeStruct for #ident {
            fn __decode_new_struct(ty: ::core::any::TypeId) -> ::core::option::Option<Self> {
                #(
                    if let ::core::option::Option::Some(v) =
                        <#vtys as #dec::DecodeStruct>::__decode_new_struct(ty)
                    {
                        return ::core::option::Option::Some(Self::#vids(v));
                    }
                )*
                ::core::option::Option::None
            }

            fn __decode_placeholder() -> Self {
                Self::#first(<#first_ty as #dec::DecodeStruct>::__decode_placeholder())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(src: &str) -> String {
        let input: syn::DeriveInput = syn::parse_str(src).expect("input");
        // The crate path as the main expansion resolves it.
        let cx = crate::ctxt::Ctxt::default();
        let krate = crate::attr::ContainerAttrs::parse(&cx, &input.attrs).krate;
        cx.check().expect("attributes");
        let out = expand_decode(&input, &krate).expect("expansion");
        // The output is valid Rust.
        syn::parse2::<syn::File>(out.clone()).expect("generated code parses");
        out.to_string()
    }

    #[test]
    fn struct_fields_in_index_order() {
        let out = expand("struct S { a: u8, #[schema(number)] b: Option<f64>, c: MapSchema<T> }");
        assert!(out.contains("impl :: roomcast_schema :: decoder :: DecodeNode for S"));
        assert!(out
            .contains("0 => :: roomcast_schema :: decoder :: decode_set (& mut self . a , input)"));
        assert!(out
            .contains("2 => :: roomcast_schema :: decoder :: decode_set (& mut self . c , input)"));
        assert!(out.contains("DecodeState for S"));
        // The fast path's field dispatch, in the same order.
        assert!(out.contains("FastNode for S"));
        assert!(out.contains("2 => cx . field (& mut self . c , wire , op , ty)"));
    }

    #[test]
    fn inherited_fields_go_to_the_base() {
        let out = expand("struct Hero { #[schema(extends)] base: Entity, name: String }");
        assert!(out.contains("< Entity as :: roomcast_schema :: Schema > :: FIELD_COUNT"));
        assert!(out.contains("__decode_field (& mut self . base , index , input)"));
        assert!(out.contains(
            "0 => :: roomcast_schema :: decoder :: decode_set (& mut self . name , input)"
        ));
    }

    #[test]
    fn enums_dispatch_to_the_variant() {
        let out = expand(
            "#[schema(crate = \"roomcast::schema\")] enum Any { Entity(Entity), Hero(Hero) }",
        );
        assert!(out.contains("roomcast :: schema :: decoder :: DecodeStruct for Any"));
        assert!(out.contains("Self :: Hero (v)"));
        assert!(!out.contains("DecodeState for Any"));
    }

    #[test]
    fn refuses_what_cannot_be_decoded() {
        for src in [
            "struct T(u8);",
            "enum E { A { x: u8 } }",
            "enum E {}",
            "union U { a: u8 }",
        ] {
            let input: syn::DeriveInput = syn::parse_str(src).expect("input");
            assert!(
                expand_decode(&input, &syn::parse_quote!(::roomcast_schema)).is_err(),
                "{src}"
            );
        }
    }
}
