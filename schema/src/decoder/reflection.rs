//! Decoding Reflection: the type description a server sends in the JOIN_ROOM
//! handshake (spec `schema-wire.md` §10, legacy form §14).
//!
//! Reflection is itself a Schema state (a fixed schema, full-encoded), so it
//! is decoded with the [`DynamicDecoder`] and then turned into a
//! [`TypeRegistry`]. The result is checked strictly: every type id and
//! referenced type must exist, a parent type must come before its subtypes,
//! field names must be unique within a type (inherited fields included),
//! and unknown field type names are refused.

use std::collections::HashSet;

use crate::decoder::base::value::Value;
use crate::decoder::dynamic::{DynamicDecoder, NodeRef, ValueRef};
use crate::quantize::Quantize;
use crate::types::{
    CollectionKind, ElementType, FieldDef, FieldType, Primitive, TypeDef, TypeError, TypeId,
    TypeRegistry,
};
use crate::wire::{DecodeError, DecodeErrorKind};

/// Most types a Reflection may describe.
pub const MAX_TYPES: usize = 4096;
/// Longest inheritance chain a Reflection may describe.
pub const MAX_INHERITANCE_DEPTH: usize = 64;

/// Which form of Reflection to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReflectionDialect {
    /// `@colyseus/schema` 5.x: a collection of primitives is `type: "array"`,
    /// `referencedType: -1`, `childPrimitive: "string"`.
    V5,
    /// `@colyseus/schema` 3.x / 4.x (colyseus 0.16 / 0.17): three fields per
    /// `ReflectionField`, collections of primitives as `type: "array:string"`.
    Legacy,
    /// Either form (they share field indexes 0–2).
    #[default]
    Auto,
}

/// The registry of the Reflection schema itself.
fn reflection_types(dialect: ReflectionDialect) -> TypeRegistry {
    let field = |name: &str, ty: FieldType| FieldDef {
        name: name.to_owned(),
        ty,
    };
    let number = FieldType::Primitive(Primitive::Number);
    let string = FieldType::Primitive(Primitive::String);
    let mut reflection_field = vec![
        field("name", string),
        field("type", string),
        field("referencedType", number),
    ];
    if dialect != ReflectionDialect::Legacy {
        reflection_field.push(field("childPrimitive", string));
        reflection_field.push(field("quantized", FieldType::Schema(TypeId(3))));
    }
    let def = |name: &str, fields: Vec<FieldDef>| TypeDef {
        name: name.to_owned(),
        extends: None,
        fields,
    };
    let types = vec![
        def(
            "Reflection",
            vec![
                field(
                    "types",
                    FieldType::Collection(CollectionKind::Array, ElementType::Schema(TypeId(1))),
                ),
                field("rootType", number),
            ],
        ),
        def(
            "ReflectionType",
            vec![
                field("id", number),
                field("extendsId", number),
                field(
                    "fields",
                    FieldType::Collection(CollectionKind::Array, ElementType::Schema(TypeId(2))),
                ),
            ],
        ),
        def("ReflectionField", reflection_field),
        def(
            "QuantizedDescriptor",
            vec![
                field("min", FieldType::Primitive(Primitive::Float64)),
                field("max", FieldType::Primitive(Primitive::Float64)),
                field("bits", FieldType::Primitive(Primitive::Uint8)),
                field("mode", FieldType::Primitive(Primitive::Uint8)),
            ],
        ),
    ];
    TypeRegistry::new(types, TypeId(0)).unwrap_or_else(|e| unreachable!("reflection schema: {e}"))
}

/// Decodes Reflection bytes into the registry of the state's types.
///
/// Type names are not transmitted: every [`TypeDef::name`] is empty.
///
/// # Errors
///
/// Malformed bytes (as [`DynamicDecoder::decode`]), or a description that
/// does not make a valid registry; such semantic errors report the offset
/// of the end of the input.
///
/// # Examples
///
/// ```
/// use roomcast_schema::decoder::{decode_reflection, ReflectionDialect};
/// use roomcast_schema::types::{FieldType, Primitive, TypeId};
/// // `State { n: number }` (vector `prim_number`).
/// let bytes = [
///     0x80, 0x01, 0xff, 0x01, 0x80, 0x00, 0x02, 0xff, 0x02, 0x80, 0x00, 0x82, 0x03, 0xff, 0x03,
///     0x80, 0x00, 0x04, 0xff, 0x04, 0x80, 0xa1, b'n', 0x81, 0xa6, b'n', b'u', b'm', b'b', b'e',
///     b'r',
/// ];
/// let types = decode_reflection(&bytes, ReflectionDialect::V5)?;
/// assert_eq!(types.fields(TypeId(0))[0].name, "n");
/// assert_eq!(types.fields(TypeId(0))[0].ty, FieldType::Primitive(Primitive::Number));
/// # Ok::<(), roomcast_schema::wire::DecodeError>(())
/// ```
pub fn decode_reflection(
    bytes: &[u8],
    dialect: ReflectionDialect,
) -> Result<TypeRegistry, DecodeError> {
    let mut decoder = DynamicDecoder::new(reflection_types(dialect));
    decoder.decode(bytes)?;
    let end = bytes.len();
    let fail = |kind| DecodeError::new(kind, end);
    let malformed = |what| fail(DecodeErrorKind::Malformed(what));

    let root = decoder.root();
    let list: Vec<NodeRef<'_>> = match root.field("types") {
        Some(ValueRef::Node(types)) => types
            .entries()
            .map(|(_, v)| {
                v.node()
                    .ok_or_else(|| malformed("reflection type is not a struct"))
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    if list.is_empty() {
        return Err(malformed("reflection describes no type"));
    }
    if list.len() > MAX_TYPES {
        return Err(fail(DecodeErrorKind::LimitExceeded(
            "more than 4096 reflection types",
        )));
    }
    let n = list.len();
    let type_id = |v: f64| -> Result<TypeId, DecodeError> {
        if v >= 0.0 && v < n as f64 && v.fract() == 0.0 {
            Ok(TypeId(v as u32))
        } else {
            Err(fail(DecodeErrorKind::InvalidTypeId(
                if v >= 0.0 && v <= f64::from(u32::MAX) {
                    v as u32
                } else {
                    u32::MAX
                },
            )))
        }
    };

    // Ids, and the parent-before-child order.
    let mut ids = Vec::with_capacity(n);
    let mut defined = vec![false; n];
    for t in &list {
        let id = type_id(number(t, "id").ok_or_else(|| malformed("reflection type without id"))?)?;
        if defined[id.0 as usize] {
            return Err(malformed("reflection type id defined twice"));
        }
        if let Some(parent) = number(t, "extendsId") {
            let parent = type_id(parent)?;
            if !defined[parent.0 as usize] {
                return Err(malformed("reflection type listed before its parent"));
            }
        }
        defined[id.0 as usize] = true;
        ids.push(id);
    }

    let mut defs: Vec<Option<TypeDef>> = (0..n).map(|_| None).collect();
    for (t, &id) in list.iter().zip(&ids) {
        let extends = number(t, "extendsId").map(type_id).transpose()?;
        let mut fields = Vec::new();
        if let Some(ValueRef::Node(list)) = t.field("fields") {
            for (_, f) in list.entries() {
                let f = f
                    .node()
                    .ok_or_else(|| malformed("reflection field is not a struct"))?;
                fields.push(field_def(&f, dialect, &type_id, &malformed)?);
            }
        }
        defs[id.0 as usize] = Some(TypeDef {
            name: String::new(),
            extends,
            fields,
        });
    }
    let defs: Vec<TypeDef> = defs.into_iter().flatten().collect();

    // Inheritance depth (parents come first, so there is no cycle).
    for def in &defs {
        let mut depth = 0;
        let mut cur = def.extends;
        while let Some(p) = cur {
            depth += 1;
            if depth > MAX_INHERITANCE_DEPTH {
                return Err(fail(DecodeErrorKind::LimitExceeded(
                    "inheritance deeper than 64",
                )));
            }
            cur = defs[p.0 as usize].extends;
        }
    }
    let root_type = number(&root, "rootType")
        .map(type_id)
        .transpose()?
        .unwrap_or(TypeId(0));
    let registry = TypeRegistry::new(defs, root_type).map_err(|e| match e {
        TypeError::TooManyFields { .. } => fail(DecodeErrorKind::LimitExceeded(
            "more than 63 fields in a type",
        )),
        TypeError::BadTypeId(id) => fail(DecodeErrorKind::InvalidTypeId(id)),
        _ => malformed("invalid type description"),
    })?;
    for i in 0..registry.len() {
        let mut names = HashSet::new();
        if !registry
            .fields(TypeId(i as u32))
            .iter()
            .all(|f| names.insert(f.name.as_str()))
        {
            return Err(malformed("duplicate field name in a reflection type"));
        }
    }
    Ok(registry)
}

fn number(node: &NodeRef<'_>, field: &str) -> Option<f64> {
    node.field(field)?.primitive()?.as_f64()
}

fn string<'a>(node: &NodeRef<'a>, field: &str) -> Option<&'a str> {
    match node.field(field)? {
        ValueRef::Primitive(Value::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn field_def(
    f: &NodeRef<'_>,
    dialect: ReflectionDialect,
    type_id: &dyn Fn(f64) -> Result<TypeId, DecodeError>,
    malformed: &dyn Fn(&'static str) -> DecodeError,
) -> Result<FieldDef, DecodeError> {
    let name = string(f, "name").ok_or_else(|| malformed("reflection field without name"))?;
    let ty = string(f, "type").ok_or_else(|| malformed("reflection field without type"))?;
    let referenced = number(f, "referencedType");
    let child = string(f, "childPrimitive");
    if let Some(descriptor) = f.field("quantized") {
        // 5.x `t.quantized`: the descriptor says how to read the integer.
        let ValueRef::Node(d) = descriptor else {
            return Err(malformed("quantized descriptor is not a structure"));
        };
        let (Some(min), Some(max), Some(bits)) =
            (number(&d, "min"), number(&d, "max"), number(&d, "bits"))
        else {
            return Err(malformed("quantized descriptor without min, max or bits"));
        };
        let wrap = number(&d, "mode") == Some(1.0);
        let bits = match bits {
            8.0 => 8,
            16.0 => 16,
            32.0 => 32,
            _ => return Err(malformed("quantized bits other than 8, 16 or 32")),
        };
        let q = Quantize::new(min, max, bits, wrap)
            .map_err(|_| malformed("quantized bounds are not finite with min < max"))?;
        return Ok(FieldDef {
            name: name.to_owned(),
            ty: FieldType::Quantized(q),
        });
    }
    if ty == "quantized" {
        return Err(malformed("quantized field without its descriptor"));
    }
    let primitive = |name: &str| {
        Primitive::from_name(name).ok_or_else(|| malformed("unknown primitive type name"))
    };
    let ty = if let Some((kind, prim)) = ty.split_once(':') {
        if dialect == ReflectionDialect::V5 {
            return Err(malformed(
                "legacy `kind:primitive` field type in a 5.x reflection",
            ));
        }
        let kind =
            CollectionKind::from_name(kind).ok_or_else(|| malformed("unknown collection kind"))?;
        if referenced.is_some_and(|r| r != -1.0) {
            return Err(malformed("collection of primitives with a referenced type"));
        }
        FieldType::Collection(kind, ElementType::Primitive(primitive(prim)?))
    } else if ty == "ref" {
        let r = referenced.ok_or_else(|| malformed("`ref` field without referenced type"))?;
        FieldType::Schema(type_id(r)?)
    } else if let Some(kind) = CollectionKind::from_name(ty) {
        let r = referenced.ok_or_else(|| malformed("collection field without referenced type"))?;
        if r == -1.0 {
            if dialect == ReflectionDialect::Legacy {
                return Err(malformed(
                    "collection of primitives without `kind:primitive` in a legacy reflection",
                ));
            }
            let prim = child
                .ok_or_else(|| malformed("collection of primitives without childPrimitive"))?;
            FieldType::Collection(kind, ElementType::Primitive(primitive(prim)?))
        } else {
            FieldType::Collection(kind, ElementType::Schema(type_id(r)?))
        }
    } else {
        if referenced.is_some() {
            return Err(malformed("primitive field with a referenced type"));
        }
        FieldType::Primitive(primitive(ty)?)
    };
    Ok(FieldDef {
        name: name.to_owned(),
        ty,
    })
}
