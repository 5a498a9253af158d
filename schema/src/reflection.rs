//! `Reflection`: the description of a state's types sent in the JOIN_ROOM
//! handshake (spec `schema-wire.md` §10), for clients without generated
//! classes.
//!
//! The Reflection value is itself a Schema state with a fixed type; it is
//! built as a dynamic state and full-encoded by the ordinary encoder.

use crate::dynamic::{DynStruct, DynValue, PrimValue};
use crate::encoder::{Dialect, Encoder, EncoderOptions};
use crate::types::{
    CollectionKind, ElementType, FieldType, NamedField, NamedFieldType, NamedType, Primitive,
    TypeRegistry,
};
use crate::ArraySchema;

fn field(name: &str, ty: NamedFieldType) -> NamedField {
    NamedField {
        name: name.to_owned(),
        ty,
    }
}

/// The fixed schema of the Reflection value, per dialect.
fn reflection_types(dialect: Dialect) -> TypeRegistry {
    use NamedFieldType::{Primitive as P, Schema as S, SchemaCollection as C};
    let mut field_fields = vec![
        field("name", P(Primitive::String)),
        field("type", P(Primitive::String)),
        field("referencedType", P(Primitive::Number)),
    ];
    let mut types = Vec::new();
    if dialect == Dialect::Modern {
        field_fields.push(field("childPrimitive", P(Primitive::String)));
        field_fields.push(field("quantized", S("QuantizedDescriptor".into())));
        types.push(NamedType {
            name: "QuantizedDescriptor".into(),
            extends: None,
            fields: vec![
                field("min", P(Primitive::Float64)),
                field("max", P(Primitive::Float64)),
                field("bits", P(Primitive::Uint8)),
                field("mode", P(Primitive::Uint8)),
            ],
        });
    }
    types.push(NamedType {
        name: "ReflectionField".into(),
        extends: None,
        fields: field_fields,
    });
    types.push(NamedType {
        name: "ReflectionType".into(),
        extends: None,
        fields: vec![
            field("id", P(Primitive::Number)),
            field("extendsId", P(Primitive::Number)),
            field("fields", C(CollectionKind::Array, "ReflectionField".into())),
        ],
    });
    types.push(NamedType {
        name: "Reflection".into(),
        extends: None,
        fields: vec![
            field("types", C(CollectionKind::Array, "ReflectionType".into())),
            field("rootType", P(Primitive::Number)),
        ],
    });
    TypeRegistry::from_named("Reflection", &types).expect("the Reflection schema is valid")
}

fn num(v: f64) -> Option<DynValue> {
    Some(DynValue::Prim(Primitive::Number, PrimValue::Num(v)))
}

fn float64(v: f64) -> Option<DynValue> {
    Some(DynValue::Prim(Primitive::Float64, PrimValue::Num(v)))
}

fn uint8(v: u8) -> Option<DynValue> {
    Some(DynValue::Prim(
        Primitive::Uint8,
        PrimValue::Num(f64::from(v)),
    ))
}

fn string(s: &str) -> Option<DynValue> {
    Some(DynValue::Prim(
        Primitive::String,
        PrimValue::Str(s.to_owned()),
    ))
}

/// The order in which Reflection lists types, as the reference does: by
/// type id, parents before children, a type that waits for its parent
/// listed right after it (children waiting for one parent in the order they
/// came, each followed by its own).
fn listing_order(types: &TypeRegistry) -> Vec<usize> {
    let count = types.types().len();
    let mut order = Vec::with_capacity(count);
    let mut listed = vec![false; count];
    let mut waiting: Vec<Vec<usize>> = vec![Vec::new(); count];
    for i in 0..count {
        match types.types()[i].extends.map(|p| p.0 as usize) {
            Some(parent) if parent < count && !listed[parent] => waiting[parent].push(i),
            _ => {
                // `i`, then whatever waited for it, depth first.
                let mut stack = vec![i];
                while let Some(next) = stack.pop() {
                    listed[next] = true;
                    order.push(next);
                    stack.extend(std::mem::take(&mut waiting[next]).into_iter().rev());
                }
            }
        }
    }
    // Unreachable for a validated registry (no cycles); keep every type.
    order.extend(waiting.into_iter().flatten());
    order
}

/// Encodes the Reflection of `types` for a decoder generation: the bytes of
/// the JOIN_ROOM handshake.
///
/// # Examples
///
/// ```
/// use roomcast_schema::types::*;
/// use roomcast_schema::{encode_reflection, Dialect};
/// let reg = TypeRegistry::from_named("State", &[NamedType {
///     name: "State".into(),
///     extends: None,
///     fields: vec![NamedField { name: "n".into(), ty: NamedFieldType::Primitive(Primitive::Number) }],
/// }])?;
/// let bytes = encode_reflection(&reg, Dialect::Modern);
/// assert_eq!(bytes[..4], [0x80, 0x01, 0xff, 0x01]);
/// # Ok::<(), TypeError>(())
/// ```
#[must_use]
pub fn encode_reflection(types: &TypeRegistry, dialect: Dialect) -> Vec<u8> {
    let meta = reflection_types(dialect);
    let ty_of = |name: &str| meta.by_name(name).expect("reflection type");
    let (t_reflection, t_type, t_field) = (
        ty_of("Reflection"),
        ty_of("ReflectionType"),
        ty_of("ReflectionField"),
    );

    let order = listing_order(types);

    let mut list = ArraySchema::new();
    for i in order {
        let def = &types.types()[i];
        let mut t = DynStruct::new(&meta, t_type);
        t.set(0, num(f64::from(i as u32)));
        if let Some(p) = def.extends {
            t.set(1, num(f64::from(p.0)));
        }
        let mut fields = ArraySchema::new();
        for f in &def.fields {
            let mut rf = DynStruct::new(&meta, t_field);
            rf.set(0, string(&f.name));
            let mut descriptor = None;
            let (ty, referenced, child) = match f.ty {
                FieldType::Primitive(p) => (p.name().to_owned(), None, None),
                FieldType::Quantized(q) => match dialect {
                    Dialect::Modern => {
                        let mut d = DynStruct::new(&meta, ty_of("QuantizedDescriptor"));
                        d.set(0, float64(q.min()));
                        d.set(1, float64(q.max()));
                        d.set(2, uint8(q.bits()));
                        d.set(3, uint8(u8::from(q.wraps())));
                        descriptor = Some(DynValue::Struct(Box::new(d)));
                        ("quantized".to_owned(), None, None)
                    }
                    // Schema 3 has no quantized fields: its clients read the
                    // integer (the wire type), not the float.
                    Dialect::Legacy => (q.wire().name().to_owned(), None, None),
                },
                FieldType::Schema(id) => ("ref".to_owned(), Some(f64::from(id.0)), None),
                FieldType::Collection(kind, ElementType::Schema(id)) => {
                    (kind.name().to_owned(), Some(f64::from(id.0)), None)
                }
                FieldType::Collection(kind, ElementType::Primitive(p)) => match dialect {
                    Dialect::Modern => (kind.name().to_owned(), Some(-1.0), Some(p)),
                    Dialect::Legacy => (format!("{}:{}", kind.name(), p.name()), Some(-1.0), None),
                },
            };
            rf.set(1, string(&ty));
            if let Some(r) = referenced {
                rf.set(2, num(r));
            }
            if let Some(p) = child {
                rf.set(3, string(p.name()));
            }
            if descriptor.is_some() {
                rf.set(4, descriptor);
            }
            fields.push(DynValue::Struct(Box::new(rf)));
        }
        t.set(2, Some(DynValue::Array(fields)));
        list.push(DynValue::Struct(Box::new(t)));
    }
    let mut root = DynStruct::new(&meta, t_reflection);
    root.set(0, Some(DynValue::Array(list)));
    if types.root().0 != 0 {
        root.set(1, num(f64::from(types.root().0)));
    }
    let mut enc = Encoder::with_options(root, EncoderOptions::default().reuse_ref_ids(false));
    enc.encode_all().to_vec()
}
