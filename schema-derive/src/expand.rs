//! Code generation: the `Schema` impl, the children-track struct and the
//! mutable view of a struct; `Field` for polymorphic enums.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Container, Enum, Kind, Struct};
use crate::ctxt::Ctxt;

/// `default_krate`: where the generated code finds `roomcast_schema` when
/// the container does not say (`#[schema(crate = ...)]`).
pub(crate) fn expand(
    input: &syn::DeriveInput,
    default_krate: syn::Path,
) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let mut cont = Container::from_ast(&cx, input);
    if let Some(Container::Struct(s)) = &cont {
        crate::check::check(&cx, s);
    }
    cx.check()?;
    let Some(attrs) = (match &mut cont {
        Some(Container::Struct(s)) => Some(&mut s.attrs),
        Some(Container::Enum(e)) => Some(&mut e.attrs),
        None => None,
    }) else {
        return Ok(TokenStream::new());
    };
    if !attrs.krate_given {
        attrs.krate = default_krate;
    }
    let (decode, krate) = (attrs.decode, attrs.krate.clone());
    let mut out = match cont {
        Some(Container::Struct(s)) => expand_struct(&s),
        Some(Container::Enum(e)) => expand_enum(&e),
        None => TokenStream::new(),
    };
    if decode {
        out.extend(crate::decode::expand_decode(input, &krate)?);
    }
    Ok(out)
}

fn rc(krate: &syn::Path) -> TokenStream {
    quote!(#krate::__private)
}

fn bare(ident: &syn::Ident) -> String {
    ident.to_string().trim_start_matches("r#").to_owned()
}

fn expand_struct(cont: &Struct<'_>) -> TokenStream {
    let ident = cont.ident;
    let vis = cont.vis;
    let children = format_ident!("__{}SchemaChildren", ident);
    let view = format_ident!("{}Mut", ident);
    let rc = rc(&cont.attrs.krate);

    // Inherited fields come first: own indexes start after them.
    let base_count = match &cont.base {
        Some(b) => {
            let ty = b.ty;
            quote!(<#ty as #rc::Schema>::FIELD_COUNT)
        }
        None => quote!(0u32),
    };
    let own = cont.fields.len() as u32;
    let idents: Vec<&syn::Ident> = cont.fields.iter().map(|f| f.ident).collect();
    let tys: Vec<&syn::Type> = cont.fields.iter().map(|f| f.ty).collect();
    let locals: Vec<u32> = (0..own).collect();
    let wires: Vec<TokenStream> = cont
        .fields
        .iter()
        .map(|f| match &f.attrs.wire {
            Some((variant, span)) => {
                let v = syn::Ident::new(variant, *span);
                quote!(::core::option::Option::Some(#rc::Primitive::#v))
            }
            None => quote!(::core::option::Option::None),
        })
        .collect();
    // `#[schema(quantized(..))]`: the field's quantization, a const expression.
    // Kept in a hidden associated const of the struct (see `quant_asserts`).
    let quant_const = |f: &crate::ast::Field<'_>| {
        format_ident!("__ROOMCAST_QUANTIZE_{}", bare(f.ident).to_uppercase())
    };
    let quants: Vec<Option<TokenStream>> = cont
        .fields
        .iter()
        .map(|f| {
            f.attrs.quantized.as_ref().map(|_| {
                let name = quant_const(f);
                quote!(#ident::#name)
            })
        })
        .collect();
    let describes: Vec<TokenStream> = cont
        .fields
        .iter()
        .zip(&wires)
        .zip(&quants)
        .map(|((f, wire), q)| {
            let ty = f.ty;
            match q {
                Some(q) => quote!(#rc::NamedFieldType::Quantized(#q)),
                None => quote!(<#ty as #rc::Field>::__describe(d, #wire)),
            }
        })
        .collect();
    let names: Vec<String> = cont
        .fields
        .iter()
        .map(|f| f.attrs.rename.clone().unwrap_or_else(|| bare(f.ident)))
        .collect();

    // Every field type must be a schema field; the error points at the type.
    let field_asserts = cont.fields.iter().map(|f| {
        let ty = f.ty;
        quote_spanned! {ty.span()=>
            let _ = <#ty as #rc::Field>::DEFAULT_WIRE;
        }
    });
    // A quantized field is an `f32` or `f64` with finite bounds, min < max.
    let quant_asserts = cont.fields.iter().filter_map(|f| {
        let q = f.attrs.quantized.as_ref()?;
        let ty = f.ty;
        let (min, max) = (&q.min, &q.max);
        let msg = format!(
            "field `{}`: quantized needs finite bounds with min < max",
            f.ident
        );
        let narrow_msg = format!(
            "field `{}`: 32-bit quantization needs an f64 field (an f32 cannot hold its steps)",
            f.ident
        );
        let (bits, wrap) = (q.bits, q.wrap);
        let name = quant_const(f);
        Some(quote_spanned! {q.span=>
            impl #ident {
                #[doc(hidden)]
                #[allow(clippy::unnecessary_cast, clippy::cast_lossless, clippy::cast_precision_loss)]
                const #name: #rc::Quantize =
                    #rc::Quantize::__checked((#min) as f64, (#max) as f64, #bits, #wrap);
            }
            const _: () = ::core::assert!(
                #bits < 32 || ::core::mem::size_of::<#ty>() == 8,
                #narrow_msg
            );
            #[allow(clippy::unnecessary_cast, clippy::cast_lossless, clippy::cast_precision_loss)]
            const _: () = ::core::assert!(
                ((#min) as f64).is_finite() && ((#max) as f64).is_finite() && ((#min) as f64) < ((#max) as f64),
                #msg
            );
            const _: fn() = || {
                fn quantizable<T: #rc::Quantizable>() {}
                quantizable::<#ty>();
            };
        })
    });
    // A wire type chosen by attribute must suit the Rust type.
    let wire_asserts = cont.fields.iter().filter_map(|f| {
        let (variant, span) = f.attrs.wire?;
        let ty = f.ty;
        let v = syn::Ident::new(variant, span);
        let msg = format!(
            "field `{}`: wire type `{}` does not fit this Rust type",
            f.ident,
            variant.to_lowercase()
        );
        Some(quote_spanned! {span=>
            const _: () = ::core::assert!(
                #rc::accepts(<#ty as #rc::Field>::ACCEPTS, #rc::Primitive::#v),
                #msg
            );
        })
    });
    // `#[schema(view)]` fields: their tag (DEFAULT_VIEW_TAG = -1).
    let tags: Vec<Option<i64>> = cont
        .fields
        .iter()
        .map(|f| f.attrs.view.as_ref().map(|v| v.tag.map_or(-1, i64::from)))
        .collect();
    let own_view_mask: Vec<TokenStream> = tags
        .iter()
        .zip(&locals)
        .filter(|(t, _)| t.is_some())
        .map(|(_, i)| quote!(| (1u64 << (#base_count + #i))))
        .collect();
    let tag_arms: Vec<TokenStream> = tags
        .iter()
        .zip(&locals)
        .filter_map(|(t, i)| t.map(|t| quote!(if index == #base_count + #i { return ::core::option::Option::Some(#t); })))
        .collect();
    let count_msg = format!(
        "`{ident}` has more than 63 fields counting inherited ones (field index 63 would collide with SWITCH_TO_STRUCTURE)"
    );

    let setters = cont.fields.iter().zip(&locals).map(|(f, &i)| {
        let fid = f.ident;
        let ty = f.ty;
        let set = format_ident!("set_{}", bare(fid));
        let doc = format!("Sets `{fid}`; the change is recorded for the next patch.");
        if let Some(q) = &quants[i as usize] {
            let doc = format!("Sets `{fid}`, snapped to its nearest step (what clients decode); the change is recorded for the next patch.");
            return quote! {
                #[doc = #doc]
                #[inline]
                pub fn #set(&mut self, value: #ty) {
                    let value = #rc::quantized_snap(value, &#q);
                    #rc::set_primitive(&mut self.value.#fid, value, #base_count + #i, self.state, self.tick);
                }
            };
        }
        match f.kind {
            Kind::Primitive => quote! {
                #[doc = #doc]
                #[inline]
                pub fn #set(&mut self, value: #ty) {
                    #rc::set_primitive(&mut self.value.#fid, value, #base_count + #i, self.state, self.tick);
                }
            },
            Kind::Ref => {
                let get = format_ident!("{}_mut", bare(fid));
                let get_doc = format!("The view of `{fid}`, through which it is changed.");
                let replace = format_ident!("replace_{}", bare(fid));
                let replace_doc = format!("Sets `{fid}` to a value that keeps its identity (see `Moved`); returns the previous value with its own.");
                quote! {
                    #[doc = #doc]
                    pub fn #set(&mut self, value: #ty) {
                        #rc::set_ref(&mut self.value.#fid, value, #base_count + #i, self.state, &mut self.children.#fid, self.tick);
                    }

                    #[doc = #replace_doc]
                    pub fn #replace(&mut self, value: #rc::Moved<#ty>) -> #rc::Moved<#ty> {
                        #rc::set_ref_moved(&mut self.value.#fid, value, #base_count + #i, self.state, &mut self.children.#fid, self.tick)
                    }

                    #[doc = #get_doc]
                    #[inline]
                    pub fn #get(&mut self) -> <#ty as #rc::FieldView>::View<'_> {
                        self.state.mark_child(#base_count + #i);
                        <#ty as #rc::FieldView>::__view_of(&mut self.value.#fid, &mut self.children.#fid, self.tick)
                    }
                }
            }
        }
    });

    // Unrolled writers of the struct's own fields (the hot path of a patch).
    // View fields are not part of the shared encoding.
    let write_changed = cont.fields.iter().zip(&locals).filter(|(f, _)| f.attrs.view.is_none()).map(|(f, &i)| {
        let fid = f.ident;
        let wire = &wires[i as usize];
        // A replaced instance, or a value given after a DELETE of the same
        // tick: DELETE_AND_ADD.
        let op = quote! {
            if replaced & (1u64 << (#base_count + #i)) != 0 { #rc::spec::DELETE_AND_ADD } else { #rc::spec::ADD }
        };
        if let Some(q) = &quants[i as usize] {
            return quote! {
                if dirty & (1u64 << (#base_count + #i)) != 0 {
                    #rc::quantized_op(self.#fid, &#q, #rc::spec::ADD | (#base_count + #i) as u8, out);
                }
            };
        }
        quote! {
            if dirty & (1u64 << (#base_count + #i)) != 0 {
                if #rc::Field::__present(&self.#fid) {
                    #rc::Field::__encode_op(&self.#fid, &children.#fid, #wire, (#op) | (#base_count + #i) as u8, out);
                } else {
                    out.push(#rc::spec::DELETE | (#base_count + #i) as u8);
                }
            }
        }
    });
    let write_present = cont.fields.iter().zip(&locals).filter(|(f, _)| f.attrs.view.is_none()).map(|(f, &i)| {
        let fid = f.ident;
        let wire = &wires[i as usize];
        if let Some(q) = &quants[i as usize] {
            return quote! {
                #rc::quantized_op(self.#fid, &#q, #rc::spec::ADD | (#base_count + #i) as u8, out);
            };
        }
        quote! {
            if #rc::Field::__present(&self.#fid) {
                #rc::Field::__encode_op(&self.#fid, &children.#fid, #wire, #rc::spec::ADD | (#base_count + #i) as u8, out);
            }
        }
    });
    let (base_changed, base_written) = match &cont.base {
        Some(b) => {
            let bid = b.ident;
            (
                quote! {
                    let inherited = dirty & ((1u64 << #base_count) - 1);
                    if inherited != 0 {
                        #rc::Schema::__write_changed(&self.#bid, &children.#bid, inherited, replaced, out);
                    }
                },
                quote!(#rc::Schema::__write_present(&self.#bid, &children.#bid, out);),
            )
        }
        None => (TokenStream::new(), TokenStream::new()),
    };

    // The view walk: every present field with its encoded value; every child.
    let view_entries = cont.fields.iter().zip(&locals).map(|(f, &i)| {
        let fid = f.ident;
        let wire = &wires[i as usize];
        if let Some(q) = &quants[i as usize] {
            return quote! {
                if #rc::FieldSink::wants(f, #base_count + #i) {
                    scratch.clear();
                    #rc::quantized_op(self.#fid, &#q, 0, scratch);
                    #rc::FieldSink::field(f, #base_count + #i, &scratch[1..], ::core::option::Option::None);
                }
            };
        }
        quote! {
            #rc::view_entry(&self.#fid, &children.#fid, #wire, #base_count + #i, scratch, f);
        }
    });
    let view_children = cont.fields.iter().zip(&locals).filter(|(f, _)| f.kind == Kind::Ref).map(|(f, &i)| {
        let fid = f.ident;
        quote! {
            #rc::Field::__with_node(&self.#fid, &children.#fid, &mut |n| f(#base_count + #i, n));
        }
    });
    let patch_children = cont.fields.iter().zip(&locals).map(|(f, &i)| {
        let fid = f.ident;
        if f.attrs.view.is_some() {
            // A view field's subtree goes to views only: settle it here.
            quote! {
                if mask & (1u64 << (#base_count + #i)) != 0 {
                    w.discard(|w| #rc::Field::__encode_patch(&mut self.#fid, &mut children.#fid, w));
                }
            }
        } else {
            quote! {
                if mask & (1u64 << (#base_count + #i)) != 0 {
                    #rc::Field::__encode_patch(&mut self.#fid, &mut children.#fid, w);
                }
            }
        }
    });
    let full_children = cont
        .fields
        .iter()
        .filter(|f| f.attrs.view.is_none())
        .map(|f| {
            let fid = f.ident;
            quote!(#rc::Field::__encode_full(&self.#fid, &children.#fid, w);)
        });
    let (base_view_mask, base_tag, base_entries, base_children) = match &cont.base {
        Some(b) => {
            let bid = b.ident;
            let bty = b.ty;
            (
                quote!(<#bty as #rc::Schema>::VIEW_FIELDS),
                quote! {
                    if index < #base_count {
                        return <#bty as #rc::Schema>::__field_tag(index);
                    }
                },
                quote!(#rc::Schema::__view_entries(&self.#bid, &children.#bid, scratch, f);),
                quote!(#rc::Schema::__view_children(&self.#bid, &children.#bid, f);),
            )
        }
        None => (
            quote!(0u64),
            TokenStream::new(),
            TokenStream::new(),
            TokenStream::new(),
        ),
    };

    // The parent part: its children's tracks, its view, its share of every
    // generated method.
    let (
        base_child,
        base_view,
        extends,
        base_present,
        base_refs,
        base_attach,
        base_detach,
        base_patch,
        base_full,
    ) = match &cont.base {
        Some(b) => {
            let bid = b.ident;
            let bty = b.ty;
            let get = format_ident!("{}_mut", bare(bid));
            let doc = format!("The view of the inherited fields (`{bid}`).");
            (
                quote!(#bid: <#bty as #rc::Schema>::Children,),
                quote! {
                    #[doc = #doc]
                    #[inline]
                    pub fn #get(&mut self) -> <#bty as #rc::Schema>::Mut<'_> {
                        #rc::Schema::__view(&mut self.value.#bid, self.state, &mut self.children.#bid, self.tick)
                    }
                },
                quote!(::core::option::Option::Some(d.schema::<#bty>())),
                quote!(m |= #rc::Schema::__present(&self.#bid);),
                quote!(m |= #rc::Schema::__ref_fields(&self.#bid);),
                quote!(#rc::Schema::__attach_children(&mut self.#bid, &mut children.#bid, tick);),
                quote!(#rc::Schema::__detach_children(&mut self.#bid, &mut children.#bid, tick);),
                quote! {
                    let inherited = mask & ((1u64 << #base_count) - 1);
                    if inherited != 0 {
                        #rc::Schema::__patch_children(&mut self.#bid, &mut children.#bid, inherited, w);
                    }
                },
                quote!(#rc::Schema::__full_children(&self.#bid, &children.#bid, w);),
            )
        }
        None => Default::default(),
    };

    let extends = if cont.base.is_some() {
        extends
    } else {
        quote!(::core::option::Option::None)
    };
    let view_doc = format!(
        "The view of a tracked [`{ident}`]: setters record every change for the next patch. Reads go through `Deref`."
    );
    let name = ident.to_string();

    // `Serialize` in the shape of the client's `state.toJSON()`: the present
    // fields, inherited ones first, under their client names.
    let ser_base = match &cont.base {
        Some(b) => {
            let bid = b.ident;
            quote!(self.#bid.__roomcast_serialize_fields(__map)?;)
        }
        None => TokenStream::new(),
    };
    let ser_impl = quote! {
        impl #ident {
            #[doc(hidden)]
            #[allow(missing_docs)]
            pub fn __roomcast_serialize_fields<__M: #rc::serde::ser::SerializeMap>(
                &self,
                __map: &mut __M,
            ) -> ::core::result::Result<(), __M::Error> {
                #ser_base
                #(
                    if #rc::Field::__present(&self.#idents) {
                        __map.serialize_entry(#names, &self.#idents)?;
                    }
                )*
                ::core::result::Result::Ok(())
            }
        }

        #[automatically_derived]
        impl #rc::serde::Serialize for #ident {
            fn serialize<__S: #rc::serde::Serializer>(
                &self,
                __s: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                use #rc::serde::ser::SerializeMap as _;
                let mut __map = __s.serialize_map(::core::option::Option::None)?;
                self.__roomcast_serialize_fields(&mut __map)?;
                __map.end()
            }
        }
    };

    quote! {
        #ser_impl

        #[doc(hidden)]
        #[allow(non_camel_case_types, missing_docs)]
        #[derive(Default)]
        #vis struct #children {
            #base_child
            #( #idents: <#tys as #rc::Field>::Track, )*
        }

        #[doc = #view_doc]
        #vis struct #view<'a> {
            value: &'a mut #ident,
            state: &'a mut #rc::TrackState,
            children: &'a mut #children,
            tick: &'a mut #rc::Tick,
        }

        impl ::core::ops::Deref for #view<'_> {
            type Target = #ident;

            #[inline]
            fn deref(&self) -> &#ident {
                self.value
            }
        }

        impl ::core::fmt::Debug for #view<'_> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#name)
            }
        }

        impl #view<'_> {
            #base_view
            #( #setters )*
        }

        impl #rc::TrackedMut for #view<'_> {
            fn __target(&mut self) -> (u32, &mut #rc::Tick) {
                (self.state.__id(), self.tick)
            }
        }

        const _: () = {
            #( #wire_asserts )*
            #( #quant_asserts )*
            const _: () = ::core::assert!(#base_count + #own < 64, #count_msg);

            #[automatically_derived]
            impl #rc::Schema for #ident {
                type Children = #children;
                type Mut<'a> = #view<'a>;
                const FIELD_COUNT: u32 = #base_count + #own;

                fn __describe(d: &mut #rc::Describer) -> #rc::NamedType {
                    #( #field_asserts )*
                    #rc::NamedType {
                        name: <Self as #rc::Schema>::type_name(),
                        extends: #extends,
                        fields: ::std::vec![
                            #( #rc::NamedField {
                                name: ::std::string::String::from(#names),
                                ty: #describes,
                            }, )*
                        ],
                    }
                }

                #[inline]
                fn __present(&self) -> u64 {
                    let mut m = 0u64;
                    #base_present
                    #( if #rc::Field::__present(&self.#idents) { m |= 1u64 << (#base_count + #locals); } )*
                    m
                }

                #[inline(always)]
                fn __write_changed(&self, children: &#children, dirty: u64, replaced: u64, out: &mut ::std::vec::Vec<u8>) {
                    #base_changed
                    #( #write_changed )*
                }

                #[inline]
                fn __write_present(&self, children: &#children, out: &mut ::std::vec::Vec<u8>) {
                    #base_written
                    #( #write_present )*
                }

                #[inline]
                fn __ref_fields(&self) -> u64 {
                    let mut m = 0u64;
                    #base_refs
                    #( if #rc::Field::__is_ref(&self.#idents) { m |= 1u64 << (#base_count + #locals); } )*
                    m
                }

                fn __attach_children(&mut self, children: &mut #children, tick: &mut #rc::Tick) {
                    #base_attach
                    #( #rc::Field::__attach(&mut self.#idents, &mut children.#idents, tick); )*
                }

                fn __detach_children(&mut self, children: &mut #children, tick: &mut #rc::Tick) {
                    #base_detach
                    #(
                        tick.__detach_field(#base_count + #locals);
                        #rc::Field::__detach(&mut self.#idents, &mut children.#idents, tick);
                    )*
                }

                #[inline]
                fn __patch_children(&mut self, children: &mut #children, mask: u64, w: &mut #rc::PatchWriter<'_>) {
                    #base_patch
                    #( #patch_children )*
                }

                fn __full_children(&self, children: &#children, w: &mut #rc::FullWriter<'_>) {
                    #base_full
                    #( #full_children )*
                }

                const VIEW_FIELDS: u64 = #base_view_mask #( #own_view_mask )*;

                #[allow(unused_variables)]
                fn __field_tag(index: u32) -> ::core::option::Option<i64> {
                    #base_tag
                    #( #tag_arms )*
                    ::core::option::Option::None
                }

                fn __view_entries(
                    &self,
                    children: &#children,
                    scratch: &mut ::std::vec::Vec<u8>,
                    f: &mut #rc::EntrySink<'_>,
                ) {
                    #base_entries
                    #( #view_entries )*
                }

                #[allow(unused_variables)]
                fn __view_children(
                    &self,
                    children: &#children,
                    f: &mut dyn ::core::ops::FnMut(u32, &dyn #rc::Node),
                ) {
                    #base_children
                    #( #view_children )*
                }

                #[inline]
                fn __view<'a>(
                    &'a mut self,
                    state: &'a mut #rc::TrackState,
                    children: &'a mut #children,
                    tick: &'a mut #rc::Tick,
                ) -> #view<'a> {
                    #view { value: self, state, children, tick }
                }
            }
        };
    }
}

fn expand_enum(e: &Enum<'_>) -> TokenStream {
    let ident = e.ident;
    let vis = e.vis;
    let rc = rc(&e.attrs.krate);
    let track = format_ident!("__{}SchemaTrack", ident);
    let view = format_ident!("{}Mut", ident);
    let vids: Vec<&syn::Ident> = e.variants.iter().map(|(v, _)| *v).collect();
    let vtys: Vec<&syn::Type> = e.variants.iter().map(|(_, t)| *t).collect();
    let slots: Vec<syn::Ident> = vids.iter().map(|v| format_ident!("__{}", v)).collect();
    let first_ty = vtys[0];
    let firsts: Vec<bool> = (0..vids.len()).map(|i| i == 0).collect();
    let view_doc = format!("The view of a tracked [`{ident}`], per variant.");

    quote! {
        /// `Serialize` as the variant's own type does.
        #[automatically_derived]
        impl #rc::serde::Serialize for #ident {
            fn serialize<__S: #rc::serde::Serializer>(
                &self,
                __s: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                match self {
                    #( Self::#vids(__v) => #rc::serde::Serialize::serialize(__v, __s), )*
                }
            }
        }

        #[doc(hidden)]
        #[allow(non_snake_case, missing_docs)]
        #[derive(Default)]
        #vis struct #track {
            tag: ::core::option::Option<u32>,
            #( #slots: <#vtys as #rc::Field>::Track, )*
        }

        #[doc = #view_doc]
        #vis enum #view<'a> {
            #( #[allow(missing_docs)] #vids(<#vtys as #rc::Schema>::Mut<'a>), )*
        }

        const _: () = {
            #[automatically_derived]
            impl #rc::Field for #ident {
                type Track = #track;
                const DEFAULT_WIRE: ::core::option::Option<#rc::Primitive> = ::core::option::Option::None;

                fn __describe(d: &mut #rc::Describer, _: ::core::option::Option<#rc::Primitive>) -> #rc::NamedFieldType {
                    // The declared type, then every concrete type: they are
                    // numbered as its subtypes (spec schema-wire.md §7).
                    let declared = d.schema::<#first_ty>();
                    #( let _ = d.schema::<#vtys>(); )*
                    #rc::NamedFieldType::Schema(declared)
                }

                #[inline]
                fn __same(&self, _: &Self) -> bool {
                    false
                }

                #[inline]
                fn __ref_id(&self, track: &#track) -> ::core::option::Option<u32> {
                    match self {
                        #( Self::#vids(v) => #rc::Field::__ref_id(v, &track.#slots), )*
                    }
                }

                fn __encode(&self, track: &#track, _: ::core::option::Option<#rc::Primitive>, out: &mut ::std::vec::Vec<u8>) {
                    match self {
                        #( Self::#vids(v) => #rc::Field::__encode(v, &track.#slots, ::core::option::Option::None, out), )*
                    }
                    #rc::encode_type_tag(track.tag, out);
                }

                fn __attach(&mut self, track: &mut #track, tick: &mut #rc::Tick) {
                    match self {
                        #( Self::#vids(v) => {
                            track.tag = if #firsts { ::core::option::Option::None } else { tick.type_id_of::<#vtys>() };
                            #rc::Field::__attach(v, &mut track.#slots, tick);
                        } )*
                    }
                }

                fn __detach(&mut self, track: &mut #track, tick: &mut #rc::Tick) {
                    match self {
                        #( Self::#vids(v) => #rc::Field::__detach(v, &mut track.#slots, tick), )*
                    }
                }

                fn __encode_patch(&mut self, track: &mut #track, w: &mut #rc::PatchWriter<'_>) {
                    match self {
                        #( Self::#vids(v) => #rc::Field::__encode_patch(v, &mut track.#slots, w), )*
                    }
                }

                fn __encode_full(&self, track: &#track, w: &mut #rc::FullWriter<'_>) {
                    match self {
                        #( Self::#vids(v) => #rc::Field::__encode_full(v, &track.#slots, w), )*
                    }
                }

                fn __with_node(&self, track: &#track, f: &mut dyn ::core::ops::FnMut(&dyn #rc::Node)) {
                    match self {
                        #( Self::#vids(v) => #rc::Field::__with_node(v, &track.#slots, f), )*
                    }
                }
            }

            #[automatically_derived]
            impl #rc::FieldView for #ident {
                type View<'a> = #view<'a>;

                fn __view_of<'a>(value: &'a mut Self, track: &'a mut #track, tick: &'a mut #rc::Tick) -> #view<'a> {
                    match value {
                        #( Self::#vids(v) => #view::#vids(<#vtys as #rc::FieldView>::__view_of(v, &mut track.#slots, tick)), )*
                    }
                }
            }
        };
    }
}
