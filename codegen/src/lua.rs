//! Lua: `schema.define` tables for the Defold SDK, as
//! `codegen/languages/lua.ts` writes them (one module per type, an optional
//! module prefix for `require`).

use roomcast_schema::types::{CollectionKind, Primitive};

use crate::types::{comment_header, js_number, Child, Class, Kind, Property};
use crate::GeneratedFile;

const COMMON_IMPORTS: &str = "local schema = require 'colyseus.serializer.schema.schema'";
const QUANTIZE_IMPORT: &str = "local quantize = require 'colyseus.serializer.schema.quantize'";

pub(crate) fn generate(classes: &[Class], namespace: Option<&str>) -> Vec<GeneratedFile> {
    classes
        .iter()
        .map(|class| GeneratedFile::new(format!("{}.lua", class.name), file(class, namespace)))
        .collect()
}

/// `--bundle`: every class in one module, `<namespace>.lua` or
/// `schema.lua`, returning a table of them.
pub(crate) fn bundle(classes: &[Class], namespace: Option<&str>) -> GeneratedFile {
    let bodies: Vec<String> = classes.iter().map(body).collect();
    let names: Vec<String> = classes
        .iter()
        .map(|c| format!("    {} = {},", c.name, c.name))
        .collect();
    GeneratedFile::new(
        format!("{}.lua", namespace.unwrap_or("schema")),
        format!(
            "{}\n\n{COMMON_IMPORTS}{}\n\n{}\n\nreturn {{\n{}\n}}\n",
            comment_header("--"),
            quantize_import(classes),
            bodies.join("\n\n"),
            names.join("\n"),
        ),
    )
}

fn quantize_import(classes: &[Class]) -> String {
    if classes.iter().any(Class::has_quantized) {
        format!("\n{QUANTIZE_IMPORT}")
    } else {
        String::new()
    }
}

fn body(class: &Class) -> String {
    let name = &class.name;
    let annotations: Vec<String> = class
        .properties
        .iter()
        .map(|p| format!("---@field {} {}", p.name, annotation(p)))
        .collect();
    let mut entries: Vec<String> = class.properties.iter().map(declaration).collect();
    let by_index: Vec<String> = class
        .properties
        .iter()
        .map(|p| format!("\"{}\"", p.name))
        .collect();
    entries.push(format!(
        "    [\"_fields_by_index\"] = {{ {} }},",
        by_index.join(", ")
    ));
    let inherits = if class.extends == "Schema" {
        String::new()
    } else {
        format!(", {}", class.extends)
    };
    format!(
        "---@class {name}: {}\n{}\nlocal {name} = schema.define({{\n{}\n}}{inherits})",
        class.extends,
        annotations.join("\n"),
        entries.join(",\n"),
    )
}

fn file(class: &Class, namespace: Option<&str>) -> String {
    let prefix = namespace.map(|ns| format!("{ns}.")).unwrap_or_default();
    let requires: Vec<String> = class
        .dependencies()
        .into_iter()
        .map(|c| format!("local {c} = require '{prefix}{c}'"))
        .collect();
    format!(
        "{}\n\n{COMMON_IMPORTS}{}\n{}\n\n{}\n\nreturn {}\n",
        comment_header("--"),
        quantize_import(std::slice::from_ref(class)),
        requires.join("\n"),
        body(class),
        class.name,
    )
}

fn declaration(p: &Property) -> String {
    let value = match &p.kind {
        Kind::Primitive(prim) => format!("\"{prim}\""),
        Kind::Quantized(q) => format!(
            "{{ quantized = quantize.resolve({{ min = {}, max = {}, bits = {}, mode = {} }}) }}",
            js_number(q.min()),
            js_number(q.max()),
            q.bits(),
            u8::from(q.wraps())
        ),
        Kind::Ref(c) => c.clone(),
        Kind::Collection(kind, Child::Class(c)) => format!("{{ {} = {c} }}", kind.name()),
        Kind::Collection(kind, Child::Primitive(prim)) => {
            format!("{{ {} = \"{prim}\" }}", kind.name())
        }
    };
    format!("    [\"{}\"] = {value}", p.name)
}

/// The type of the `---@field` annotation.
fn annotation(p: &Property) -> &str {
    match &p.kind {
        Kind::Primitive(Primitive::String) => "string",
        Kind::Primitive(Primitive::Boolean) => "boolean",
        // bigint64/biguint64 too (the reference writes `undefined`).
        Kind::Primitive(_) | Kind::Quantized(_) => "number",
        Kind::Ref(c) => c,
        Kind::Collection(kind, _) => match kind {
            CollectionKind::Array => "ArraySchema",
            CollectionKind::Map => "MapSchema",
            // No annotation in the reference (`undefined`).
            CollectionKind::Set => "SetSchema",
            CollectionKind::Collection => "CollectionSchema",
        },
    }
}
