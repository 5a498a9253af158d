//! Human-readable listing of the operations of a message, for debugging
//! desyncs ([`DynamicDecoder::explain`](crate::decoder::DynamicDecoder::explain)
//! and the `roomcast-inspect` example).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::decoder::base::parse::{
    key_at, Parser, ReadOnly, Scalar, Shape, ShapeSource, Step, NO_KEY,
};
use crate::decoder::base::reference_tracker::RefId;
use crate::decoder::base::value::{write_json_str, write_primitive_json, Value};
use crate::decoder::dynamic::{NodeData, Nodes};
use crate::types::{CollectionKind, ElementType, TypeId, TypeRegistry};
use crate::wire::spec::{
    ADD, ADD_BY_REFID, DELETE, DELETE_AND_ADD, DELETE_AND_MOVE, MOVE, MOVE_AND_ADD, REPLACE,
};
use crate::wire::DecodeError;

/// Name of an operation byte.
fn op_name(op: u8) -> &'static str {
    match op {
        REPLACE => "REPLACE",
        DELETE => "DELETE",
        ADD => "ADD",
        DELETE_AND_ADD => "DELETE_AND_ADD",
        MOVE => "MOVE",
        DELETE_AND_MOVE => "DELETE_AND_MOVE",
        MOVE_AND_ADD => "MOVE_AND_ADD",
        ADD_BY_REFID => "ADD_BY_REFID",
        _ => "?",
    }
}

fn type_name(types: &TypeRegistry, t: TypeId) -> String {
    let name = &types.get(t).name;
    if name.is_empty() {
        format!("type{}", t.0)
    } else {
        name.clone()
    }
}

fn shape_name(types: &TypeRegistry, shape: Shape) -> String {
    match shape {
        Shape::Struct(t) => type_name(types, t),
        Shape::Collection(kind, elem) => {
            let elem = match elem {
                ElementType::Primitive(p) => p.name().to_owned(),
                ElementType::Schema(t) => type_name(types, t),
            };
            let kind = match kind {
                CollectionKind::Map => "map",
                CollectionKind::Array => "array",
                CollectionKind::Set => "set",
                CollectionKind::Collection => "collection",
            };
            format!("{kind}<{elem}>")
        }
    }
}

/// Writes one line per operation of `bytes` as it would apply to the state
/// in `nodes` (without applying anything), then the error if the message is
/// invalid.
pub(crate) fn explain(
    types: &TypeRegistry,
    nodes: &Nodes,
    bytes: &[u8],
    out: &mut String,
) -> Result<(), DecodeError> {
    let mut parser = Parser::default();
    parser.record_offsets = true;
    let result = parser.parse(bytes, types, &mut ReadOnly(nodes));
    let new_shapes = &parser.created;
    let mut created: HashMap<RefId, Shape> = HashMap::new();
    let shape_of = |created: &HashMap<RefId, Shape>, id: RefId| {
        created.get(&id).copied().or_else(|| nodes.shape_of(id))
    };
    let mut current = RefId::ROOT;
    let scalar = |created: &mut HashMap<RefId, Shape>, s: Scalar| -> String {
        let mut o = String::new();
        let v = match s {
            Scalar::Child { id, create } => {
                let new_shape = create.then(|| new_shapes.get(id).copied()).flatten();
                let shape = new_shape.or_else(|| shape_of(created, id));
                if let Some(shape) = new_shape {
                    created.insert(id, shape);
                }
                let _ = write!(
                    o,
                    "#{} {}{}",
                    id.0,
                    shape.map(|s| shape_name(types, s)).unwrap_or_default(),
                    if create { " (new)" } else { "" }
                );
                return o;
            }
            primitive => match primitive.primitive_value(bytes, |t| Value::String(t.into())) {
                Some(v) => v,
                None => return o,
            },
        };
        write_primitive_json(&mut o, &v);
        o
    };
    for (&step, &at) in parser.steps.iter().zip(&parser.offsets) {
        let here = shape_of(&created, current)
            .map(|s| shape_name(types, s))
            .unwrap_or_default();
        let _ = write!(out, "{at:06x}  ");
        match step {
            // Not produced when offsets are recorded.
            Step::Fields { .. } => {
                let _ = writeln!(out, "FIELDS");
            }
            Step::Switch(id) => {
                current = id;
                let name = shape_of(&created, id)
                    .map(|s| shape_name(types, s))
                    .unwrap_or_default();
                let _ = writeln!(out, "SWITCH_TO_STRUCTURE #{} {name}", id.0);
            }
            Step::Field { op, index, value } => {
                let field = match shape_of(&created, current) {
                    Some(Shape::Struct(t)) => types
                        .fields(t)
                        .get(usize::from(index))
                        .map(|f| f.name.clone())
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                let v = scalar(&mut created, value);
                let sep = if v.is_empty() { "" } else { " = " };
                let _ = writeln!(
                    out,
                    "  #{} {here}.{field} (field {index}) {}{sep}{v}",
                    current.0,
                    op_name(op)
                );
            }
            Step::Entry {
                op,
                index,
                key,
                value,
            } => {
                let key = (key != NO_KEY).then(|| {
                    let mut k = String::new();
                    write_json_str(&mut k, key_at(bytes, key));
                    format!(" key {k}")
                });
                // For a map DELETE / REPLACE, the key the index named
                // before this message.
                let key = key.or_else(|| match nodes.map.get(current).map(|n| &n.data) {
                    Some(NodeData::Map(m)) => m.indexes.get(RefId(index)).map(|k| {
                        let mut o = String::new();
                        write_json_str(&mut o, k);
                        format!(" (key {o})")
                    }),
                    _ => None,
                });
                let v = scalar(&mut created, value);
                let sep = if v.is_empty() { "" } else { " = " };
                let _ = writeln!(
                    out,
                    "  #{} {here} {} index {index}{}{sep}{v}",
                    current.0,
                    op_name(op),
                    key.unwrap_or_default()
                );
            }
            Step::Clear => {
                let _ = writeln!(out, "  #{} {here} CLEAR", current.0);
            }
            Step::Reverse => {
                let _ = writeln!(out, "  #{} {here} REVERSE", current.0);
            }
            Step::DeleteByRefId(id) => {
                let _ = writeln!(out, "  #{} {here} DELETE_BY_REFID #{}", current.0, id.0);
            }
            Step::AddByRefId(id, value) => {
                let v = scalar(&mut created, value);
                let _ = writeln!(
                    out,
                    "  #{} {here} ADD_BY_REFID at #{} = {v}",
                    current.0, id.0
                );
            }
        }
    }
    if let Err(e) = &result {
        let _ = writeln!(out, "{:06x}  error: {}", e.offset(), e.kind());
    }
    result
}
