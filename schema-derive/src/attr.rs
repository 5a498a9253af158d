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
const QUANTIZED: &str = "quantized";
const VIEW: &str = "view";

/// `#[schema(view)]` / `#[schema(view = TAG)]`: the field is sent only to
/// clients whose `StateView` sees the instance (with that tag).
pub(crate) struct ViewAttr {
    /// `None` for the default tag, else the custom tag (a positive bit mask).
    pub(crate) tag: Option<u32>,
}

/// `#[schema(quantized(min = .., max = .., bits = 16, wrap))]`: bounds are
/// const expressions (checked by a const assertion), `bits` a literal.
pub(crate) struct Quantized {
    pub(crate) min: syn::Expr,
    pub(crate) max: syn::Expr,
    pub(crate) bits: u8,
    pub(crate) wrap: bool,
    pub(crate) span: proc_macro2::Span,
}

impl Quantized {
    fn parse(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Self> {
        let (mut min, mut max, mut bits, mut wrap) = (None, None, 16u8, false);
        meta.parse_nested_meta(|inner| {
            if inner.path.is_ident("min") {
                min = Some(inner.value()?.parse()?);
            } else if inner.path.is_ident("max") {
                max = Some(inner.value()?.parse()?);
            } else if inner.path.is_ident("bits") {
                let lit: syn::LitInt = inner.value()?.parse()?;
                bits = match lit.base10_parse::<u8>() {
                    Ok(b @ (8 | 16 | 32)) => b,
                    _ => {
                        return Err(syn::Error::new(
                            lit.span(),
                            "quantized `bits` must be 8, 16 or 32",
                        ))
                    }
                };
            } else if inner.path.is_ident("wrap") {
                wrap = true;
            } else {
                return Err(
                    inner.error("expected `min = ..`, `max = ..`, `bits = 8 | 16 | 32` or `wrap`")
                );
            }
            Ok(())
        })?;
        match (min, max) {
            (Some(min), Some(max)) => Ok(Self {
                min,
                max,
                bits,
                wrap,
                span: meta.path.span(),
            }),
            _ => Err(meta.error("`quantized` needs `min = ..` and `max = ..`")),
        }
    }
}

/// What the attributes of one field say.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// Wire type chosen by attribute: (variant name of `Primitive`, span).
    pub(crate) wire: Option<(&'static str, proc_macro2::Span)>,
    /// Name sent to clients instead of the Rust name.
    pub(crate) rename: Option<String>,
    /// `#[schema(extends)]`: this field is the parent type, flattened first.
    pub(crate) extends: Option<proc_macro2::Span>,
    /// `#[schema(quantized(..))]`: a float sent as an unsigned integer.
    pub(crate) quantized: Option<Box<Quantized>>,
    /// `#[schema(view)]` / `#[schema(view = TAG)]`.
    pub(crate) view: Option<ViewAttr>,
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
                if meta.path.is_ident(VIEW) {
                    if out.view.is_some() {
                        return Err(meta.error("only one `view` per field"));
                    }
                    let tag = if meta.input.peek(syn::Token![=]) {
                        let lit: syn::LitInt = meta.value()?.parse().map_err(|e| {
                            syn::Error::new(e.span(), "`view = TAG` takes an integer tag, e.g. `view = 1`")
                        })?;
                        match lit.base10_parse::<u32>() {
                            Ok(t) if t > 0 && t < (1 << 31) => Some(t),
                            _ => {
                                return Err(syn::Error::new(
                                    lit.span(),
                                    "a view tag is a bit mask from 1 to 2^31 - 1 (omit it for the default tag)",
                                ))
                            }
                        }
                    } else {
                        None
                    };
                    out.view = Some(ViewAttr { tag });
                    return Ok(());
                }
                if meta.path.is_ident(QUANTIZED) {
                    if out.wire.is_some() || out.quantized.is_some() {
                        return Err(meta.error("only one wire type per field"));
                    }
                    out.quantized = Some(Box::new(Quantized::parse(&meta)?));
                    return Ok(());
                }
                let Some(ident) = meta.path.get_ident() else {
                    return Err(meta.error("expected a wire type, `extends` or `rename = \"...\"`"));
                };
                let name = ident.to_string();
                match WIRE_TYPES.iter().find(|(n, _)| *n == name) {
                    Some((_, variant)) => {
                        if out.wire.is_some() || out.quantized.is_some() {
                            return Err(meta.error("only one wire type per field"));
                        }
                        out.wire = Some((variant, ident.span()));
                        Ok(())
                    }
                    None => Err(meta.error(format!(
                        "unknown schema attribute `{name}`; expected one of: {}, `quantized(..)`, `view`, `view = TAG`, `extends` or `rename = \"...\"`",
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
    /// `krate` was given by `#[schema(crate = ...)]` (else the derive's
    /// default applies).
    pub(crate) krate_given: bool,
}

impl ContainerAttrs {
    pub(crate) fn parse(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut krate: syn::Path = syn::parse_quote!(::roomcast_schema);
        let mut krate_given = false;
        let mut decode = false;
        for attr in attrs.iter().filter(|a| a.path().is_ident("schema")) {
            let res = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("decode") {
                    decode = true;
                    Ok(())
                } else if meta.path.is_ident("crate") {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    krate = lit.parse()?;
                    krate_given = true;
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
        Self {
            krate,
            decode,
            krate_given,
        }
    }
}
