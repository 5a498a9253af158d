//! `#[roomcast::room]`: the default associated types of a `Room` impl, and
//! hooks written with only the parameters they use.
//!
//! Associated type defaults (`type UserData = ();` in the trait) are
//! unstable, so the trait cannot leave them out; this attribute writes the
//! ones an impl leaves out: no state, `()` per client, and for `Auth` what
//! `on_auth` returns when the impl has one.
//!
//! A hook may leave out the parameters it does not use (a Colyseus
//! `onJoin(client)`): each one is known by its type, so the attribute puts
//! the others back, as `_`, in the trait's order. `on_create` and
//! `on_join` may leave out `-> Result` when they cannot fail.
//!
//! A room whose state's data is `Default` starts with it (its
//! `initial_state`), as a Colyseus 0.18 room's `state = new MyState()`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};

/// The associated types of `Room` and their defaults.
const DEFAULTED: [(&str, &str); 3] = [
    ("State", "::roomcast::NoState"),
    ("UserData", "()"),
    ("Auth", "()"),
];

/// A hook parameter after `&mut self`: how a signature names its type (the
/// last segment of the path) and the type the trait gives it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Param {
    Ctx,
    Client,
    Options,
    Request,
    Code,
}

impl Param {
    fn name(self) -> &'static str {
        match self {
            Self::Ctx => "&mut RoomCtx<Self>",
            Self::Client => "&Client",
            Self::Options => "&Options",
            Self::Request => "&AuthRequest",
            Self::Code => "u16",
        }
    }

    fn full_type(self) -> TokenStream {
        match self {
            Self::Ctx => quote!(&mut ::roomcast::RoomCtx<Self>),
            Self::Client => quote!(&::roomcast::Client),
            Self::Options => quote!(&::roomcast::Options),
            Self::Request => quote!(&::roomcast::AuthRequest),
            Self::Code => quote!(u16),
        }
    }

    /// Which parameter a type is, by the name it is written with.
    fn of(ty: &syn::Type) -> Option<Self> {
        let (ty, mutable) = match ty {
            syn::Type::Reference(r) => (&*r.elem, r.mutability.is_some()),
            syn::Type::Path(_) => {
                return last_ident(ty).filter(|i| *i == "u16").map(|_| Self::Code)
            }
            _ => return None,
        };
        let ident = last_ident(ty)?;
        match (ident.to_string().as_str(), mutable) {
            ("RoomCtx", true) => Some(Self::Ctx),
            ("Client", false) => Some(Self::Client),
            ("Options", false) => Some(Self::Options),
            ("AuthRequest", false) => Some(Self::Request),
            _ => None,
        }
    }
}

/// The parameters of each hook after `&mut self`, in the trait's order,
/// and whether it returns a `Result<(), ServerError>` that may be left out.
fn hook(name: &str) -> Option<(&'static [Param], bool)> {
    use Param::{Client, Code, Ctx, Options, Request};
    Some(match name {
        "on_create" => (&[Ctx, Options], true),
        "on_auth" => (&[Ctx, Client, Options, Request], false),
        "on_join" => (&[Ctx, Client, Options], true),
        "on_leave" | "on_drop" => (&[Ctx, Client, Code], false),
        "on_reconnect" => (&[Ctx, Client], false),
        "on_dispose" => (&[Ctx], false),
        _ => return None,
    })
}

fn last_ident(ty: &syn::Type) -> Option<&syn::Ident> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| &s.ident),
        _ => None,
    }
}

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
    let mut auth = None;
    for i in &mut item.items {
        if let syn::ImplItem::Fn(f) = i {
            complete_hook(f)?;
            if f.sig.ident == "on_auth" {
                auth = ok_type(&f.sig.output);
            }
        }
    }
    let given = |item: &syn::ItemImpl, name: &str| {
        item.items.iter().any(|i| match i {
            syn::ImplItem::Type(t) => t.ident == name,
            syn::ImplItem::Fn(f) => f.sig.ident == name,
            _ => false,
        })
    };
    // A state of default data is there from the start (see
    // `roomcast::__private::Initial`).
    if given(&item, "State") && !given(&item, "initial_state") {
        item.items.push(syn::parse_quote! {
            fn initial_state() -> ::core::option::Option<Self::State> {
                #[allow(unused_imports)]
                use ::roomcast::__private::{NoInitial as _, ViaDefault as _};
                (&&::roomcast::__private::Initial::<Self::State>::new()).initial_state()
            }
        });
    }
    for (name, default) in DEFAULTED {
        let given = given(&item, name);
        if !given {
            let ident = syn::Ident::new(name, Span::call_site());
            let ty: syn::Type = match (&auth, name) {
                (Some(auth), "Auth") => auth.clone(),
                _ => syn::parse_str(default)?,
            };
            item.items.push(syn::parse_quote!(type #ident = #ty;));
        }
    }
    Ok(item.into_token_stream())
}

/// `T` of a `-> Result<T, ..>` (`()` for a bare `Result`, which is
/// `roomcast::Result`); none when `T` names `Self` (`Self::Auth` is the
/// type being defined).
fn ok_type(output: &syn::ReturnType) -> Option<syn::Type> {
    let syn::ReturnType::Type(_, ty) = output else {
        return None;
    };
    let syn::Type::Path(p) = &**ty else {
        return None;
    };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::None => Some(syn::parse_quote!(())),
        syn::PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .find_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            })
            .filter(|t| !names_self(t.to_token_stream())),
        syn::PathArguments::Parenthesized(_) => None,
    }
}

/// Puts back the parameters a hook leaves out, and its `-> Result` when
/// it may leave that out.
fn complete_hook(f: &mut syn::ImplItemFn) -> syn::Result<()> {
    let Some((params, fallible)) = hook(&f.sig.ident.to_string()) else {
        return Ok(());
    };
    let receiver = match f.sig.inputs.first() {
        Some(syn::FnArg::Receiver(r)) => r.clone(),
        _ => {
            return Err(syn::Error::new_spanned(
                &f.sig,
                format!("#[room]: `{}` takes `&mut self` first", f.sig.ident),
            ))
        }
    };
    let given: Vec<&syn::PatType> = f
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            syn::FnArg::Typed(t) => Some(t),
            syn::FnArg::Receiver(_) => None,
        })
        .collect();
    // The whole signature, as the trait has it: left as written, whatever
    // names its types go by (type aliases included).
    if given.len() != params.len() {
        let mut inputs = vec![quote!(#receiver)];
        let mut next = 0;
        for arg in given {
            let expected = || {
                let names: Vec<String> = params.iter().map(|p| format!("`{}`", p.name())).collect();
                syn::Error::new_spanned(
                    &arg.ty,
                    format!(
                        "#[room]: `{}` takes, in this order, any of {}",
                        f.sig.ident,
                        names.join(", ")
                    ),
                )
            };
            let param = Param::of(&arg.ty).ok_or_else(expected)?;
            let at = params[next..]
                .iter()
                .position(|&p| p == param)
                .ok_or_else(expected)?;
            for &left_out in &params[next..next + at] {
                let ty = left_out.full_type();
                inputs.push(quote!(_: #ty));
            }
            inputs.push(quote!(#arg));
            next += at + 1;
        }
        for &left_out in &params[next..] {
            let ty = left_out.full_type();
            inputs.push(quote!(_: #ty));
        }
        f.sig.inputs = syn::parse_quote!(#(#inputs),*);
    }
    if fallible && matches!(f.sig.output, syn::ReturnType::Default) {
        f.sig.output = syn::parse_quote!(-> ::core::result::Result<(), ::roomcast::ServerError>);
        // In an async block, a `return;` of the body still returns `()`;
        // it takes the parameters (references) as the hook's future does,
        // so it is `Send` when that is.
        let body = &f.block;
        f.block = syn::parse_quote!({
            let () = async move #body.await;
            ::core::result::Result::Ok(())
        });
    }
    Ok(())
}

fn names_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "Self",
        proc_macro2::TokenTree::Group(g) => names_self(g.stream()),
        _ => false,
    })
}
