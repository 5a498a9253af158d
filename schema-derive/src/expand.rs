//! Code generation: the `Schema` impl, the children-track struct and the
//! mutable view of a struct.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Container, Kind};
use crate::ctxt::Ctxt;

pub(crate) fn expand(input: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let Some(cont) = Container::from_ast(&cx, input) else {
        cx.check()?;
        return Ok(TokenStream::new());
    };
    crate::check::check(&cx, &cont);
    cx.check()?;
    Ok(expand_container(&cont))
}

fn expand_container(cont: &Container<'_>) -> TokenStream {
    let ident = cont.ident;
    let vis = cont.vis;
    let children = format_ident!("__{}SchemaChildren", ident);
    let view = format_ident!("{}Mut", ident);
    let rc = quote!(::roomcast_schema::__private);

    let idents: Vec<&syn::Ident> = cont.fields.iter().map(|f| f.ident).collect();
    let tys: Vec<&syn::Type> = cont.fields.iter().map(|f| f.ty).collect();
    let indexes: Vec<u32> = (0..cont.fields.len() as u32).collect();
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
    let names: Vec<String> = cont
        .fields
        .iter()
        .map(|f| {
            f.attrs
                .rename
                .clone()
                .unwrap_or_else(|| f.ident.to_string())
        })
        .collect();

    // Every field type must be a schema field; the error points at the type.
    let field_asserts = cont.fields.iter().map(|f| {
        let ty = f.ty;
        quote_spanned! {ty.span()=>
            let _ = <#ty as #rc::Field>::DEFAULT_WIRE;
        }
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

    let setters = cont.fields.iter().zip(&indexes).map(|(f, &i)| {
        let fid = f.ident;
        let ty = f.ty;
        let set = format_ident!("set_{}", fid.to_string().trim_start_matches("r#"));
        let doc = format!("Sets `{fid}`; the change is recorded for the next patch.");
        match f.kind {
            Kind::Primitive => quote! {
                #[doc = #doc]
                #[inline]
                pub fn #set(&mut self, value: #ty) {
                    #rc::set_primitive(&mut self.value.#fid, value, #i, self.track, self.tick);
                }
            },
            Kind::Ref => {
                let get = format_ident!("{}_mut", fid.to_string().trim_start_matches("r#"));
                let get_doc = format!("The view of `{fid}`, through which it is changed.");
                quote! {
                    #[doc = #doc]
                    pub fn #set(&mut self, value: #ty) {
                        #rc::set_ref(&mut self.value.#fid, value, #i, self.track, |c: &mut #children| &mut c.#fid, self.tick);
                    }

                    #[doc = #get_doc]
                    #[inline]
                    pub fn #get(&mut self) -> <#ty as #rc::FieldView>::View<'_> {
                        self.track.mark_child(#i);
                        <#ty as #rc::FieldView>::__view_of(&mut self.value.#fid, &mut self.track.children.#fid, self.tick)
                    }
                }
            }
        }
    });

    let view_doc = format!(
        "The view of a tracked [`{ident}`]: setters record every change for the next patch. Reads go through `Deref`."
    );
    let name = ident.to_string();
    let _ = Span::call_site();

    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types, missing_docs)]
        #[derive(Default)]
        #vis struct #children {
            #( #idents: <#tys as #rc::Field>::Track, )*
        }

        #[doc = #view_doc]
        #vis struct #view<'a> {
            value: &'a mut #ident,
            track: &'a mut #rc::StructTrack<#children>,
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
            #( #setters )*
        }

        const _: () = {
            #( #wire_asserts )*

            #[automatically_derived]
            impl #rc::Schema for #ident {
                type Children = #children;
                type Mut<'a> = #view<'a>;

                fn __describe(d: &mut #rc::Describer) -> #rc::NamedType {
                    #( #field_asserts )*
                    #rc::NamedType {
                        name: <Self as #rc::Schema>::type_name(),
                        extends: ::core::option::Option::None,
                        fields: ::std::vec![
                            #( #rc::NamedField {
                                name: ::std::string::String::from(#names),
                                ty: <#tys as #rc::Field>::__describe(d, #wires),
                            }, )*
                        ],
                    }
                }

                #[inline]
                fn __present(&self) -> u64 {
                    let mut m = 0u64;
                    #( if #rc::Field::__present(&self.#idents) { m |= 1u64 << #indexes; } )*
                    m
                }

                #[inline]
                fn __encode_field(&self, children: &#children, index: u32, out: &mut ::std::vec::Vec<u8>) {
                    match index {
                        #( #indexes => #rc::Field::__encode(&self.#idents, &children.#idents, #wires, out), )*
                        _ => {}
                    }
                }

                #[inline]
                fn __ref_fields(&self) -> u64 {
                    let mut m = 0u64;
                    #( if #rc::Field::__is_ref(&self.#idents) { m |= 1u64 << #indexes; } )*
                    m
                }

                fn __attach_children(&mut self, children: &mut #children, tick: &mut #rc::Tick) {
                    #( #rc::Field::__attach(&mut self.#idents, &mut children.#idents, tick); )*
                }

                fn __detach_children(&mut self, children: &mut #children, tick: &mut #rc::Tick) {
                    #( #rc::Field::__detach(&mut self.#idents, &mut children.#idents, tick); )*
                }

                #[inline]
                fn __patch_children(&mut self, children: &mut #children, mask: u64, w: &mut #rc::PatchWriter<'_>) {
                    #( if mask & (1u64 << #indexes) != 0 {
                        #rc::Field::__encode_patch(&mut self.#idents, &mut children.#idents, w);
                    } )*
                }

                fn __full_children(&self, children: &#children, w: &mut #rc::FullWriter<'_>) {
                    #( #rc::Field::__encode_full(&self.#idents, &children.#idents, w); )*
                }

                #[inline]
                fn __view<'a>(
                    &'a mut self,
                    track: &'a mut #rc::StructTrack<#children>,
                    tick: &'a mut #rc::Tick,
                ) -> #view<'a> {
                    #view { value: self, track, tick }
                }
            }
        };
    }
}
