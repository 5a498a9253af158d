//! `#[roomcast::room]`: the default associated types of a `Room` impl.
//!
//! Associated type defaults (`type UserData = ();` in the trait) are
//! unstable, so the trait cannot leave them out; this attribute writes the
//! ones an impl leaves out: no state, `()` per client.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The associated types of `Room` and their defaults.
const DEFAULTED: [(&str, &str); 3] = [
    ("State", "::roomcast::NoState"),
    ("UserData", "()"),
    ("Auth", "()"),
];

pub(crate) fn expand(attr: TokenStream, item: syn::ItemImpl) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "#[room] takes no arguments"));
    }
    let mut item = item;
    let Some((path, _)) = &item.trait_ else {
        return Err(syn::Error::new_spanned(
            item.self_ty,
            "#[room] goes on an `impl Room for ...` block",
        ));
    };
    if path.segments.last().is_none_or(|s| s.ident != "Room") {
        return Err(syn::Error::new_spanned(
            path,
            "#[room] goes on an `impl Room for ...` block",
        ));
    }
    for (name, default) in DEFAULTED {
        let given = item.items.iter().any(|i| match i {
            syn::ImplItem::Type(t) => t.ident == name,
            _ => false,
        });
        if !given {
            let ident = syn::Ident::new(name, proc_macro2::Span::call_site());
            let ty: syn::Type = syn::parse_str(default)?;
            item.items.push(syn::parse_quote!(type #ident = #ty;));
        }
    }
    Ok(item.into_token_stream())
}
