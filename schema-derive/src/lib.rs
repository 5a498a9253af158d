//! `#[derive(Schema)]` for `roomcast-schema`: the `Schema` impl, a hidden
//! track type and the struct's mutable view (`<Name>Mut`), with compile-time
//! errors (spanned at the field) for unsupported types, more than 63 fields
//! and bad attributes.
//!
//! Use it through `roomcast_schema::Schema` (the `derive` feature).

mod ast;
mod attr;
mod check;
mod ctxt;
mod decode;
mod expand;
mod room;

/// Derives `roomcast_schema::Schema` for a struct with named fields.
///
/// Field attributes: `#[schema(<wire type>)]` (`number`, `uint8`, `float64`,
/// ...) sends a field as another wire type than its Rust type's default;
/// `#[schema(rename = "name")]` changes the name clients see;
/// `#[schema(extends)]` on the first field makes its type the parent type.
///
/// Container attributes: `#[schema(decode)]` also generates typed decoding
/// (for `roomcast_schema::decoder::Decoder`; the type must implement
/// `Default`); `#[schema(crate = "roomcast::schema")]` when the crate is used
/// through a re-export.
#[proc_macro_derive(Schema, attributes(schema))]
pub fn derive_schema(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    derive_with(input, syn::parse_quote!(::roomcast_schema))
}

/// The same derive, re-exported by `roomcast` as `roomcast::Schema`: its
/// code finds the crate at `::roomcast::schema`, so a server that depends
/// on `roomcast` alone needs no `#[schema(crate = ...)]`.
#[doc(hidden)]
#[proc_macro_derive(RoomcastSchema, attributes(schema))]
pub fn derive_roomcast_schema(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    derive_with(input, syn::parse_quote!(::roomcast::schema))
}

fn derive_with(
    input: proc_macro::TokenStream,
    default_krate: syn::Path,
) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::expand(&input, default_krate)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// On an `impl Room for ...` block of `roomcast` (used as
/// `#[roomcast::room]`): the associated types the impl leaves out are
/// written with their defaults, `State = roomcast::NoState`, `UserData =
/// ()` and `Auth = ()` (or what `on_auth` returns); a hook may leave out
/// the parameters it does not use (known by their types) and, for
/// `on_create` and `on_join`, its `-> Result`; and a state of `Default`
/// data is there from the start (`Room::initial_state`).
///
/// The `Room` trait cannot default the types itself: associated type
/// defaults are unstable Rust.
#[proc_macro_attribute]
pub fn room(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemImpl);
    room::expand(attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
