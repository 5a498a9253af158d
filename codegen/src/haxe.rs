//! Haxe: classes for the Haxe SDK, as `codegen/languages/haxe.ts` writes
//! them (`@:type` metadata, an optional package).

use roomcast_schema::types::{CollectionKind, Primitive};

use crate::types::{comment_header, js_number, Child, Class, Kind, Property};
use crate::{GenerateError, GeneratedFile, Language};

const COMMON_IMPORTS: &str =
    "import io.colyseus.serializer.schema.Schema;\nimport io.colyseus.serializer.schema.types.*;";

/// Haxe reserved words: a field named after one gets a trailing `_` (the
/// SDK matches fields by index, never by name).
const KEYWORDS: [&str; 45] = [
    "abstract",
    "break",
    "case",
    "cast",
    "catch",
    "class",
    "continue",
    "default",
    "do",
    "dynamic",
    "else",
    "enum",
    "extends",
    "extern",
    "false",
    "final",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "inline",
    "interface",
    "macro",
    "new",
    "null",
    "operator",
    "overload",
    "override",
    "package",
    "private",
    "public",
    "return",
    "static",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "untyped",
    "using",
    "var",
    "while",
];

/// The Haxe type of a primitive, as the SDK's decoder hands it back.
fn type_of(p: Primitive) -> &'static str {
    match p {
        Primitive::String => "String",
        Primitive::Boolean => "Bool",
        Primitive::Int8
        | Primitive::Uint8
        | Primitive::Int16
        | Primitive::Uint16
        | Primitive::Int32
        | Primitive::Uint32 => "Int",
        // bigint64/biguint64: no entry in the reference (it writes
        // `undefined`); the 64-bit integer of int64/uint64.
        Primitive::Int64 | Primitive::Uint64 | Primitive::BigInt64 | Primitive::BigUint64 => {
            "haxe.Int64"
        }
        _ => "Float",
    }
}

/// The value a scalar field starts at.
fn zero_of(ty: &str) -> &'static str {
    match ty {
        "String" => "\"\"",
        "Bool" => "false",
        _ => "0",
    }
}

pub(crate) fn generate(
    classes: &[Class],
    package: Option<&str>,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    classes
        .iter()
        .map(|class| {
            Ok(GeneratedFile::new(
                format!("{}.hx", class.name),
                format!("{}\n", preamble(package, &body(class)?)),
            ))
        })
        .collect()
}

/// `--bundle`: every class in one file, `<package>.hx` or `Schema.hx`.
pub(crate) fn bundle(
    classes: &[Class],
    package: Option<&str>,
) -> Result<GeneratedFile, GenerateError> {
    let bodies = classes.iter().map(body).collect::<Result<Vec<_>, _>>()?;
    Ok(GeneratedFile::new(
        format!("{}.hx", package.unwrap_or("Schema")),
        format!("{}\n", preamble(package, &bodies.join("\n\n"))),
    ))
}

/// The header, package and imports before `classes`.
fn preamble(package: Option<&str>, classes: &str) -> String {
    let package = package.map(|p| format!("package {p};")).unwrap_or_default();
    format!(
        "{}\n\n{package}\n{COMMON_IMPORTS}\n\n{classes}",
        comment_header("//")
    )
}

fn body(class: &Class) -> Result<String, GenerateError> {
    let properties = class
        .properties
        .iter()
        .map(|p| property(class, p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "class {} extends {} {{\n{}\n}}",
        class.name,
        class.extends,
        properties.join("\n"),
    ))
}

fn property(class: &Class, p: &Property) -> Result<String, GenerateError> {
    let mut args = format!("\"{}\"", p.type_name());
    let (ty, init) = match &p.kind {
        Kind::Primitive(prim) => {
            let ty = type_of(*prim);
            (ty.to_owned(), zero_of(ty).to_owned())
        }
        Kind::Quantized(q) => {
            args.push_str(&format!(
                ", {{min: {}, max: {}, bits: {}, mode: {}}}",
                js_number(q.min()),
                js_number(q.max()),
                q.bits(),
                u8::from(q.wraps())
            ));
            ("Float".to_owned(), "0".to_owned())
        }
        Kind::Ref(c) => {
            args.push_str(&format!(", {c}"));
            (c.clone(), format!("new {c}()"))
        }
        Kind::Collection(kind, child) => {
            let container = match kind {
                CollectionKind::Array => "ArraySchema",
                CollectionKind::Map => "MapSchema",
                // The Haxe SDK has no SetSchema nor CollectionSchema (the
                // reference writes a field of type `undefined`).
                CollectionKind::Set | CollectionKind::Collection => {
                    return Err(GenerateError::Unsupported {
                        language: Language::Haxe,
                        class: class.name.clone(),
                        field: p.name.clone(),
                        what: kind.name(),
                    })
                }
            };
            let element = match child {
                Child::Class(c) => {
                    args.push_str(&format!(", {c}"));
                    c.as_str()
                }
                Child::Primitive(prim) => {
                    args.push_str(&format!(", \"{prim}\""));
                    type_of(*prim)
                }
            };
            let ty = format!("{container}<{element}>");
            let init = format!("new {ty}()");
            (ty, init)
        }
    };
    let (name, note) = if KEYWORDS.contains(&p.name.as_str()) {
        (
            format!("{}_", p.name),
            format!("\t// \"{}\" on the wire (a Haxe keyword)\n", p.name),
        )
    } else {
        (p.name.clone(), String::new())
    };
    Ok(format!(
        "{note}\t@:type({args})\n\tpublic var {name}: {ty} = {init};\n"
    ))
}
