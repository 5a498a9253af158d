//! TypeScript: `@type` classes for `@colyseus/schema` 5 clients
//! (`@colyseus/sdk`), as `codegen/languages/ts.ts` writes them.

use roomcast_schema::types::{CollectionKind, Primitive};

use crate::types::{comment_header, js_number, Child, Class, Kind, Property};
use crate::GeneratedFile;

const COMMON_IMPORTS: &str = "Schema, type, ArraySchema, MapSchema, SetSchema, DataChange";

/// The TypeScript type of a primitive field.
fn type_of(p: Primitive) -> &'static str {
    match p {
        Primitive::String => "string",
        Primitive::Boolean => "boolean",
        // The reference has no entry for these (it writes `undefined`); the
        // decoder hands back a `bigint`.
        Primitive::BigInt64 | Primitive::BigUint64 => "bigint",
        _ => "number",
    }
}

pub(crate) fn generate(classes: &[Class]) -> Vec<GeneratedFile> {
    classes
        .iter()
        .map(|class| GeneratedFile::new(format!("{}.ts", class.name), file(class)))
        .collect()
}

/// `--bundle`: every class in one file, `<namespace>.ts` or `schema.ts`.
pub(crate) fn bundle(classes: &[Class], namespace: Option<&str>) -> GeneratedFile {
    let bodies: Vec<String> = classes.iter().map(body).collect();
    GeneratedFile::new(
        format!("{}.ts", namespace.unwrap_or("schema")),
        format!(
            "{}\n\n{}\n\n{}\n",
            comment_header("//"),
            imports(classes),
            bodies.join("\n\n")
        ),
    )
}

/// The import of the SDK classes. CollectionSchema only where a field
/// needs it (the reference has no `collection` case).
fn imports(classes: &[Class]) -> String {
    let collection = classes
        .iter()
        .flat_map(|c| &c.properties)
        .any(|p| matches!(p.kind, Kind::Collection(CollectionKind::Collection, _)));
    format!(
        "import {{ {COMMON_IMPORTS}{} }} from '@colyseus/schema';",
        if collection { ", CollectionSchema" } else { "" }
    )
}

fn body(class: &Class) -> String {
    let properties: Vec<String> = class
        .properties
        .iter()
        .map(|p| format!("    {}", property(p)))
        .collect();
    format!(
        "export class {} extends {} {{\n{}\n}}",
        class.name,
        class.extends,
        properties.join("\n"),
    )
}

fn file(class: &Class) -> String {
    let local: Vec<String> = class
        .dependencies()
        .into_iter()
        .map(|c| format!("import {{ {c} }} from './{c}'"))
        .collect();
    format!(
        "{}\n\n{}\n{}\n\n{}\n",
        comment_header("//"),
        imports(std::slice::from_ref(class)),
        local.join("\n"),
        body(class),
    )
}

fn property(p: &Property) -> String {
    let name = &p.name;
    match &p.kind {
        Kind::Primitive(prim) => {
            format!("@type(\"{prim}\") public {name}!: {};", type_of(*prim))
        }
        Kind::Quantized(q) => format!(
            "@type({{ quantized: {{ min: {}, max: {}, bits: {}{} }} }}) public {name}!: number;",
            js_number(q.min()),
            js_number(q.max()),
            q.bits(),
            if q.wraps() { ", mode: \"wrap\"" } else { "" },
        ),
        Kind::Ref(class) => format!("@type({class}) public {name}: {class} = new {class}();"),
        Kind::Collection(kind, child) => {
            let (element, argument) = match child {
                Child::Class(c) => (c.as_str(), c.clone()),
                Child::Primitive(prim) => (type_of(*prim), format!("\"{prim}\"")),
            };
            let (container, args) = match kind {
                CollectionKind::Array => ("ArraySchema", format!("[ {argument} ]")),
                CollectionKind::Map => ("MapSchema", format!("{{ map: {argument} }}")),
                CollectionKind::Set => ("SetSchema", format!("{{ set: {argument} }}")),
                CollectionKind::Collection => {
                    ("CollectionSchema", format!("{{ collection: {argument} }}"))
                }
            };
            let ty = format!("{container}<{element}>");
            format!("@type({args}) public {name}: {ty} = new {ty}();")
        }
    }
}
