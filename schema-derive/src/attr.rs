//! `#[schema(...)]` attributes.

use syn::spanned::Spanned;

use crate::ctxt::Ctxt;

/// Wire type names accepted as `#[schema(<name>)]`.
pub(crate) const WIRE_TYPES: &[(&str, &str)] = &[
    ("string", "String"),
    ("number", "Number"),
    ("boolean", "Boolean"),
    ("int8", "Int8"),
    ("uint8", "Uint8"),
    ("int16", "Int16"),
    ("uint16", "Uint16"),
    ("int32", "Int32"),
    ("uint32", "Uint32"),
    ("int64", "Int64"),
    ("uint64", "Uint64"),
    ("float32", "Float32"),
    ("float64", "Float64"),
    ("bigint64", "BigInt64"),
    ("biguint64", "BigUint64"),
];

const RENAME: &str = "rename";
const EXTENDS: &str = "extends";

/// What the attributes of one field say.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// Wire type chosen by attribute: (variant name of `Primitive`, span).
    pub(crate) wire: Option<(&'static str, proc_macro2::Span)>,
    /// Name sent to clients instead of the Rust name.
    pub(crate) rename: Option<String>,
    /// `#[schema(extends)]`: this field is the parent type, flattened first.
    pub(crate) extends: Option<proc_macro2::Span>,
}

impl FieldAttrs {
    pub(crate) fn parse(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut out = Self::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("schema")) {
            let res = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(EXTENDS) {
                    out.extends = Some(meta.path.span());
                    return Ok(());
                }
                if meta.path.is_ident(RENAME) {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    out.rename = Some(lit.value());
                    return Ok(());
                }
                let Some(ident) = meta.path.get_ident() else {
                    return Err(meta.error("expected a wire type, `extends` or `rename = \"...\"`"));
                };
                let name = ident.to_string();
                match WIRE_TYPES.iter().find(|(n, _)| *n == name) {
                    Some((_, variant)) => {
                        if out.wire.is_some() {
                            return Err(meta.error("only one wire type per field"));
                        }
                        out.wire = Some((variant, ident.span()));
                        Ok(())
                    }
                    None => Err(meta.error(format!(
                        "unknown schema attribute `{name}`; expected one of: {}, `extends` or `rename = \"...\"`",
                        WIRE_TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ))),
                }
            });
            if let Err(e) = res {
                cx.syn_error(e);
            }
        }
        out
    }
}

/// What the attributes of the struct or enum itself say.
pub(crate) struct ContainerAttrs {
    /// Path of the `roomcast_schema` crate in generated code
    /// (`#[schema(crate = "roomcast::schema")]` when it is re-exported).
    pub(crate) krate: syn::Path,
    /// `#[schema(decode)]`: also generate typed decoding (needs `Default`).
    pub(crate) decode: bool,
}

impl ContainerAttrs {
    pub(crate) fn parse(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut krate: syn::Path = syn::parse_quote!(::roomcast_schema);
        let mut decode = false;
        for attr in attrs.iter().filter(|a| a.path().is_ident("schema")) {
            let res = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("decode") {
                    decode = true;
                    Ok(())
                } else if meta.path.is_ident("crate") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    krate = lit.parse()?;
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown container attribute; expected `decode` or `crate = \"path\"`",
                    ))
                }
            });
            if let Err(e) = res {
                cx.syn_error(e);
            }
        }
        Self { krate, decode }
    }
}
