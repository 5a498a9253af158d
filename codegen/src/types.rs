//! The classes to write, as `schema-codegen`'s `codegen/types.ts` holds them
//! after parsing: one [`Class`] per Schema type with its own fields
//! ([`Property`]), wire indexes continuing after the inherited ones.
//!
//! Built from a [`TypeRegistry`] (what Reflection transmits), with the names
//! Reflection leaves out filled in (see [`Options`]).

use std::collections::{HashMap, HashSet};

use roomcast_schema::quantize::Quantize;
use roomcast_schema::types::{
    CollectionKind, ElementType, FieldType, Primitive, TypeId, TypeRegistry,
};

use crate::{GenerateError, Options};

/// The reference version whose output this crate reproduces.
pub(crate) const REFERENCE: &str = "@colyseus/schema 5.0.34";

/// Names the generated code itself uses next to the classes (SDK classes the
/// TypeScript file imports): a state type may not take one of them.
const RESERVED_TYPE_NAMES: [&str; 6] = [
    "Schema",
    "ArraySchema",
    "MapSchema",
    "SetSchema",
    "CollectionSchema",
    "DataChange",
];

/// One Schema type.
#[derive(Debug)]
pub(crate) struct Class {
    pub(crate) name: String,
    /// The parent class, or `"Schema"`.
    pub(crate) extends: String,
    /// Every ancestor (not `Schema`), parent first.
    pub(crate) ancestors: Vec<String>,
    /// Own fields, in wire order.
    pub(crate) properties: Vec<Property>,
}

/// One field of a [`Class`].
#[derive(Debug)]
pub(crate) struct Property {
    /// Wire index (inherited fields first).
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

/// What a [`Property`] holds.
#[derive(Debug)]
pub(crate) enum Kind {
    Primitive(Primitive),
    Quantized(Quantize),
    /// A child of the named class.
    Ref(String),
    Collection(CollectionKind, Child),
}

/// What a collection holds.
#[derive(Debug)]
pub(crate) enum Child {
    Primitive(Primitive),
    /// Instances of the named class.
    Class(String),
}

impl Property {
    /// The `type` the reference records: `"ref"`, a collection kind,
    /// `"quantized"` or a primitive name.
    pub(crate) fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Primitive(p) => p.name(),
            Kind::Quantized(_) => "quantized",
            Kind::Ref(_) => "ref",
            Kind::Collection(kind, _) => kind.name(),
        }
    }

    /// The class this field makes the file depend on, if any.
    pub(crate) fn class_ref(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ref(c) | Kind::Collection(_, Child::Class(c)) => Some(c),
            _ => None,
        }
    }
}

impl Class {
    /// The classes this file refers to: those of its fields (in field
    /// order), then its ancestors, each once, itself never (a file does not
    /// import itself). The reference leaves out the element classes of sets
    /// (Lua) and collections (Lua, TypeScript), which their files need.
    pub(crate) fn dependencies(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.properties
            .iter()
            .filter_map(Property::class_ref)
            .chain(self.ancestors.iter().map(String::as_str))
            .filter(|c| *c != self.name && seen.insert(*c))
            .collect()
    }

    /// Whether a field is quantized.
    pub(crate) fn has_quantized(&self) -> bool {
        self.properties
            .iter()
            .any(|p| matches!(p.kind, Kind::Quantized(_)))
    }
}

/// The class name of every type: the option's, else the registry's (the
/// last segment of a Rust type's path), else `State` for the root and
/// `Type<id>` for the others.
fn class_names(types: &TypeRegistry, options: &Options) -> Result<Vec<String>, GenerateError> {
    let mut names = Vec::with_capacity(types.len());
    let mut seen = HashSet::new();
    for (i, def) in types.types().iter().enumerate() {
        let id = TypeId(i as u32);
        let name = match options.type_names.get(&id) {
            Some(name) => name.clone(),
            // A derived type is named by its path (`game::state::World`).
            None if !def.name.is_empty() => {
                def.name.rsplit("::").next().unwrap_or_default().to_owned()
            }
            None if id == types.root() => "State".to_owned(),
            None => format!("Type{i}"),
        };
        // An upper-case first letter is how schema-codegen tells a class
        // from a primitive type name.
        let valid = name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !RESERVED_TYPE_NAMES.contains(&name.as_str());
        if !valid {
            return Err(GenerateError::InvalidTypeName(name));
        }
        if !seen.insert(name.clone()) {
            return Err(GenerateError::DuplicateTypeName(name));
        }
        names.push(name);
    }
    Ok(names)
}

/// A JavaScript identifier of ASCII letters, digits, `_` and `$`.
fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// The classes of every type of `types`, in type id order.
pub(crate) fn classes(
    types: &TypeRegistry,
    options: &Options,
) -> Result<Vec<Class>, GenerateError> {
    let names = class_names(types, options)?;
    let name_of = |id: TypeId| names[id.0 as usize].clone();
    let mut classes = Vec::with_capacity(types.len());
    for (i, def) in types.types().iter().enumerate() {
        let id = TypeId(i as u32);
        let mut ancestors = Vec::new();
        let mut parent = def.extends;
        while let Some(p) = parent {
            ancestors.push(name_of(p));
            parent = types.get(p).extends;
        }
        let inherited = types.fields(id).len() - def.fields.len();
        let mut properties = Vec::with_capacity(def.fields.len());
        for (j, field) in def.fields.iter().enumerate() {
            if !is_identifier(&field.name) {
                return Err(GenerateError::InvalidFieldName {
                    class: names[i].clone(),
                    field: field.name.clone(),
                });
            }
            let kind = match field.ty {
                FieldType::Primitive(p) => Kind::Primitive(p),
                FieldType::Quantized(q) => Kind::Quantized(q),
                FieldType::Schema(t) => Kind::Ref(name_of(t)),
                FieldType::Collection(kind, ElementType::Primitive(p)) => {
                    Kind::Collection(kind, Child::Primitive(p))
                }
                FieldType::Collection(kind, ElementType::Schema(t)) => {
                    Kind::Collection(kind, Child::Class(name_of(t)))
                }
            };
            properties.push(Property {
                index: inherited + j,
                name: field.name.clone(),
                kind,
            });
        }
        classes.push(Class {
            name: names[i].clone(),
            extends: ancestors
                .first()
                .cloned()
                .unwrap_or_else(|| "Schema".to_owned()),
            ancestors,
            properties,
        });
    }
    Ok(classes)
}

/// `classes` reordered so that each comes after the classes it refers to
/// (its fields' classes, in field order, then its ancestors), the order in
/// which `schema-codegen` finds them by following each file's imports, and
/// the order a bundle must define them in. Classes that refer to each other
/// come in the order they are first reached.
pub(crate) fn in_definition_order(classes: Vec<Class>) -> Vec<Class> {
    fn visit(
        at: usize,
        classes: &[Class],
        index: &HashMap<&str, usize>,
        seen: &mut [bool],
        order: &mut Vec<usize>,
    ) {
        if seen[at] {
            return;
        }
        seen[at] = true;
        for dependency in classes[at].dependencies() {
            if let Some(&next) = index.get(dependency) {
                visit(next, classes, index, seen, order);
            }
        }
        order.push(at);
    }
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut seen = vec![false; classes.len()];
    let mut order = Vec::with_capacity(classes.len());
    for i in 0..classes.len() {
        visit(i, &classes, &index, &mut seen, &mut order);
    }
    let mut slots: Vec<Option<Class>> = classes.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The comment that opens every file, each line behind `comment` (`//`,
/// `--`), as the reference writes it (empty lines keep the space).
pub(crate) fn comment_header(comment: &str) -> String {
    let generated = format!(
        "GENERATED USING roomcast-codegen {} ({REFERENCE} schema-codegen)",
        env!("CARGO_PKG_VERSION")
    );
    [
        "",
        "THIS FILE HAS BEEN GENERATED AUTOMATICALLY",
        "DO NOT CHANGE IT MANUALLY UNLESS YOU KNOW WHAT YOU'RE DOING",
        "",
        &generated,
        "",
    ]
    .iter()
    .map(|line| format!("{comment} {line}"))
    .collect::<Vec<_>>()
    .join("\n")
}

/// `value` as JavaScript's `String(value)` writes it (the reference
/// interpolates the quantized bounds into the source it writes).
pub(crate) fn js_number(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as JS does.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    // value = 0.digits × 10^n
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let rest = if k > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        format!("{}{rest}e{sign}{}", &digits[..1], (n - 1).abs())
    };
    if value < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use roomcast_schema::types::{FieldDef, TypeDef};

    use super::*;

    /// `Root { child: Type1, list: array<Type2> }`, `Type2 extends Type1`,
    /// unnamed as from Reflection.
    fn unnamed() -> TypeRegistry {
        let field = |name: &str, ty| FieldDef {
            name: name.to_owned(),
            ty,
        };
        let def = |extends, fields| TypeDef {
            name: String::new(),
            extends,
            fields,
        };
        TypeRegistry::new(
            vec![
                def(
                    None,
                    vec![
                        field("child", FieldType::Schema(TypeId(1))),
                        field(
                            "list",
                            FieldType::Collection(
                                CollectionKind::Array,
                                ElementType::Schema(TypeId(2)),
                            ),
                        ),
                    ],
                ),
                def(
                    None,
                    vec![field("a", FieldType::Primitive(Primitive::Uint8))],
                ),
                def(
                    Some(TypeId(1)),
                    vec![field("b", FieldType::Primitive(Primitive::String))],
                ),
            ],
            TypeId(0),
        )
        .unwrap()
    }

    #[test]
    fn unnamed_types_get_default_names_and_inherited_indexes() {
        let classes = classes(&unnamed(), &Options::new()).unwrap();
        let names: Vec<_> = classes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["State", "Type1", "Type2"]);
        assert_eq!(classes[2].extends, "Type1");
        assert_eq!(classes[2].ancestors, ["Type1"]);
        assert_eq!(classes[2].properties[0].index, 1);
        assert_eq!(classes[0].dependencies(), ["Type1", "Type2"]);
        assert_eq!(classes[2].dependencies(), ["Type1"]);
    }

    #[test]
    fn names_are_checked() {
        let types = unnamed();
        let named = |id, name: &str| Options::new().type_name(TypeId(id), name);
        assert_eq!(
            classes(&types, &named(1, "State")).unwrap_err(),
            GenerateError::DuplicateTypeName("State".into())
        );
        for bad in ["player", "Ma-p", "", "Schema", "MapSchema", "9Lives"] {
            assert_eq!(
                classes(&types, &named(1, bad)).unwrap_err(),
                GenerateError::InvalidTypeName(bad.into()),
                "{bad:?}"
            );
        }
        let mut defs = types.types().to_vec();
        defs[1].fields[0].name = "two words".into();
        let types = TypeRegistry::new(defs, TypeId(0)).unwrap();
        assert_eq!(
            classes(&types, &Options::new()).unwrap_err(),
            GenerateError::InvalidFieldName {
                class: "Type1".into(),
                field: "two words".into()
            }
        );
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        for (value, js) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (std::f64::consts::TAU, "6.283185307179586"),
            (0.5, "0.5"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (-2.5e-8, "-2.5e-8"),
            (0.1, "0.1"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(js_number(value), js, "{value:e}");
        }
    }
}
