//! C#: classes for the Unity/C# SDK, as `codegen/languages/csharp.ts`
//! writes them (one `partial class` per type, `[Type(index, …)]`
//! attributes, an optional namespace).

use roomcast_schema::types::{CollectionKind, Primitive};

use crate::types::{comment_header, js_number, Child, Class, Kind, Property};
use crate::GeneratedFile;

/// SDK types are named through `global::`, so neither the namespace nor a
/// generated class can shadow them.
const SDK: &str = "global::Colyseus.Schema";

/// C# reserved words: a field named after one is written `@`-escaped.
const KEYWORDS: [&str; 77] = [
    "abstract",
    "as",
    "base",
    "bool",
    "break",
    "byte",
    "case",
    "catch",
    "char",
    "checked",
    "class",
    "const",
    "continue",
    "decimal",
    "default",
    "delegate",
    "do",
    "double",
    "else",
    "enum",
    "event",
    "explicit",
    "extern",
    "false",
    "finally",
    "fixed",
    "float",
    "for",
    "foreach",
    "goto",
    "if",
    "implicit",
    "in",
    "int",
    "interface",
    "internal",
    "is",
    "lock",
    "long",
    "namespace",
    "new",
    "null",
    "object",
    "operator",
    "out",
    "override",
    "params",
    "private",
    "protected",
    "public",
    "readonly",
    "ref",
    "return",
    "sbyte",
    "sealed",
    "short",
    "sizeof",
    "stackalloc",
    "static",
    "string",
    "struct",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "uint",
    "ulong",
    "unchecked",
    "unsafe",
    "ushort",
    "using",
    "virtual",
    "void",
    "volatile",
    "while",
];

/// The C# type of a primitive.
fn type_of(p: Primitive) -> &'static str {
    match p {
        Primitive::String => "string",
        Primitive::Boolean => "bool",
        Primitive::Int8 => "sbyte",
        Primitive::Uint8 => "byte",
        Primitive::Int16 => "short",
        Primitive::Uint16 => "ushort",
        Primitive::Int32 => "int",
        Primitive::Uint32 => "uint",
        // The reference has no entry for bigint64/biguint64 (it writes
        // `undefined`): the 64-bit integers of int64/uint64.
        Primitive::Int64 | Primitive::BigInt64 => "long",
        Primitive::Uint64 | Primitive::BigUint64 => "ulong",
        // JS numbers are float64; float32 only narrows the wire.
        _ => "double",
    }
}

fn identifier(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("@{name}")
    } else {
        name.to_owned()
    }
}

pub(crate) fn generate(classes: &[Class], namespace: Option<&str>) -> Vec<GeneratedFile> {
    classes
        .iter()
        .map(|class| GeneratedFile::new(format!("{}.cs", class.name), file(class, namespace)))
        .collect()
}

/// `--bundle`: every class in one file, `<namespace>.cs` or `Schema.cs`.
pub(crate) fn bundle(classes: &[Class], namespace: Option<&str>) -> GeneratedFile {
    let indent = if namespace.is_some() { "\t" } else { "" };
    let bodies: Vec<String> = classes.iter().map(|c| body(c, indent)).collect();
    let (open, close) = match namespace {
        Some(ns) => (format!("\nnamespace {ns} {{\n"), "}"),
        None => (String::new(), ""),
    };
    GeneratedFile::new(
        format!("{}.cs", namespace.unwrap_or("Schema")),
        format!(
            "{}\n{open}\n{}\n{close}",
            comment_header("//"),
            bodies.join("\n\n")
        ),
    )
}

fn body(class: &Class, indent: &str) -> String {
    let base = if class.extends == "Schema" {
        format!("{SDK}.Schema")
    } else {
        class.extends.clone()
    };
    let properties: Vec<String> = class
        .properties
        .iter()
        .map(|p| format!("\n{}", property(p, indent)))
        .collect();
    let name = &class.name;
    format!(
        "{indent}public partial class {name} : {base} {{\n\
         #if UNITY_5_3_OR_NEWER\n\
         {indent}\t[global::UnityEngine.Scripting.Preserve]\n\
         #endif\n\
         {indent}\tpublic {name}() {{ }}\n\
         {}\n\
         {indent}}}",
        properties.join("\n")
    )
}

fn file(class: &Class, namespace: Option<&str>) -> String {
    let indent = if namespace.is_some() { "\t" } else { "" };
    let (open, close) = match namespace {
        Some(ns) => (format!("\nnamespace {ns} {{"), "}"),
        None => (String::new(), ""),
    };
    format!(
        "{}\n{open}\n{}\n{close}\n",
        comment_header("//"),
        body(class, indent)
    )
}

fn property(p: &Property, indent: &str) -> String {
    let mut args = format!("\"{}\"", p.type_name());
    let (ty, init) = match &p.kind {
        Kind::Primitive(prim) => {
            let ty = type_of(*prim).to_owned();
            let init = format!("default({ty})");
            (ty, init)
        }
        Kind::Quantized(q) => {
            args.push_str(&format!(
                ", QuantizeMin = {}, QuantizeMax = {}, QuantizeBits = {}, QuantizeWrap = {}",
                js_number(q.min()),
                js_number(q.max()),
                q.bits(),
                q.wraps()
            ));
            ("double".to_owned(), "default(double)".to_owned())
        }
        Kind::Ref(class) => {
            args.push_str(&format!(", typeof({class})"));
            // A child stays null until the server sends it.
            (class.clone(), "null".to_owned())
        }
        Kind::Collection(kind, child) => {
            let container = match kind {
                CollectionKind::Array => "ArraySchema",
                CollectionKind::Map => "MapSchema",
                CollectionKind::Set => "SetSchema",
                CollectionKind::Collection => "CollectionSchema",
            };
            let element = match child {
                Child::Class(c) => c.as_str(),
                Child::Primitive(prim) => type_of(*prim),
            };
            let ty = format!("{SDK}.{container}<{element}>");
            args.push_str(&format!(", typeof({ty})"));
            if let Child::Primitive(prim) = child {
                args.push_str(&format!(", \"{prim}\""));
            }
            let init = format!("new {ty}()");
            (ty, init)
        }
    };
    format!(
        "\t{indent}[{SDK}.Type({}, {args})]\n\t{indent}public {ty} {} = {init};",
        p.index,
        identifier(&p.name)
    )
}
