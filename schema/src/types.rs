//! Runtime description of schema types: the `TypeContext` of the reference.
//!
//! A [`TypeRegistry`] lists every Schema type reachable from a root type,
//! numbered with the reference's type ids (spec `schema-wire.md` §7). It is
//! what Reflection (§10) transmits, what the dynamic encoder and decoder work
//! from, and what `#[derive(Schema)]` types describe themselves as.

use std::collections::HashMap;
use std::fmt;

use crate::quantize::Quantize;
use crate::wire::spec::MAX_FIELDS;

/// Index of a type in a [`TypeRegistry`]; the root type is `TypeId(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u32);

/// A primitive wire type (spec `schema-wire.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Primitive {
    /// UTF-8 string with a msgpack-style header.
    String,
    /// JavaScript number in the self-describing msgpack-like form (lossy for
    /// non-integers, §2.2).
    Number,
    /// `01` / `00`.
    Boolean,
    /// Signed 8-bit integer.
    Int8,
    /// Unsigned 8-bit integer.
    Uint8,
    /// Signed 16-bit integer, little-endian.
    Int16,
    /// Unsigned 16-bit integer, little-endian.
    Uint16,
    /// Signed 32-bit integer, little-endian.
    Int32,
    /// Unsigned 32-bit integer, little-endian.
    Uint32,
    /// Signed 64-bit integer (a JS number on the client: exact to ±2^53).
    Int64,
    /// Unsigned 64-bit integer (a JS number on the client: exact to 2^53).
    Uint64,
    /// IEEE-754 binary32.
    Float32,
    /// IEEE-754 binary64.
    Float64,
    /// Signed 64-bit integer decoded as a JS bigint.
    BigInt64,
    /// Unsigned 64-bit integer decoded as a JS bigint.
    BigUint64,
}

impl Primitive {
    /// Every primitive, in a stable order.
    pub const ALL: [Self; 15] = [
        Self::String,
        Self::Number,
        Self::Boolean,
        Self::Int8,
        Self::Uint8,
        Self::Int16,
        Self::Uint16,
        Self::Int32,
        Self::Uint32,
        Self::Int64,
        Self::Uint64,
        Self::Float32,
        Self::Float64,
        Self::BigInt64,
        Self::BigUint64,
    ];

    /// The name the reference uses (`"number"`, `"uint8"`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Int8 => "int8",
            Self::Uint8 => "uint8",
            Self::Int16 => "int16",
            Self::Uint16 => "uint16",
            Self::Int32 => "int32",
            Self::Uint32 => "uint32",
            Self::Int64 => "int64",
            Self::Uint64 => "uint64",
            Self::Float32 => "float32",
            Self::Float64 => "float64",
            Self::BigInt64 => "bigint64",
            Self::BigUint64 => "biguint64",
        }
    }

    /// Parses a reference type name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The four collection kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectionKind {
    /// `MapSchema`: string keys, insertion order.
    Map,
    /// `ArraySchema`: positional.
    Array,
    /// `SetSchema`: unique values.
    Set,
    /// `CollectionSchema`: values with server-assigned indexes.
    Collection,
}

impl CollectionKind {
    /// The name the reference uses in Reflection (`"map"`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Array => "array",
            Self::Set => "set",
            Self::Collection => "collection",
        }
    }

    /// Parses a reference collection name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Map, Self::Array, Self::Set, Self::Collection]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// What a collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// Primitive values, written inline.
    Primitive(Primitive),
    /// Schema instances (of this type or a subtype), written as refIds.
    Schema(TypeId),
}

/// The declared type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// A primitive value, written inline.
    Primitive(Primitive),
    /// A float sent as an unsigned integer (`t.quantized`, 5.x).
    Quantized(Quantize),
    /// A child Schema instance (of this type or a subtype).
    Schema(TypeId),
    /// A child collection.
    Collection(CollectionKind, ElementType),
}

/// One field of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// Field name (the client's property name).
    pub name: String,
    /// Declared type.
    pub ty: FieldType,
}

/// One Schema type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDef {
    /// Type name. Not transmitted by Reflection: empty for types learned from
    /// the wire.
    pub name: String,
    /// Parent type whose fields come first.
    pub extends: Option<TypeId>,
    /// Own fields (not the inherited ones), in index order.
    pub fields: Vec<FieldDef>,
}

/// Every Schema type reachable from a root, numbered like the reference's
/// `TypeContext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRegistry {
    types: Vec<TypeDef>,
    /// All fields of each type, inherited ones first: `(owner, index in owner)`.
    flat: Vec<Vec<FieldDef>>,
    root: TypeId,
    /// View tags (`"view"` in a type description): `(type, field index, tag)`.
    views: Vec<(TypeId, usize, i64)>,
}

/// Why a set of type descriptions was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// A type name was referenced but never defined.
    #[error("unknown type `{0}`")]
    UnknownType(String),
    /// Two types share a name.
    #[error("type `{0}` is defined twice")]
    DuplicateType(String),
    /// A type id points outside the registry.
    #[error("type id {0} is out of range")]
    BadTypeId(u32),
    /// `extends` forms a cycle.
    #[error("type `{0}` extends itself")]
    CyclicInheritance(String),
    /// More than 63 fields including inherited ones.
    #[error("type `{name}` has {count} fields; at most 63 are allowed")]
    TooManyFields {
        /// The type.
        name: String,
        /// Its field count, inherited fields included.
        count: usize,
    },
}

/// A type described by names, the input of [`TypeRegistry::from_named`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedType {
    /// Unique type name.
    pub name: String,
    /// Name of the parent type.
    pub extends: Option<String>,
    /// Own fields.
    pub fields: Vec<NamedField>,
}

/// A field described by names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedField {
    /// Field name.
    pub name: String,
    /// Field type, referring to other types by name.
    pub ty: NamedFieldType,
}

/// A field type referring to Schema types by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedFieldType {
    /// A primitive.
    Primitive(Primitive),
    /// A quantized float.
    Quantized(Quantize),
    /// A child Schema type.
    Schema(String),
    /// A collection of primitives.
    PrimitiveCollection(CollectionKind, Primitive),
    /// A collection of Schema instances.
    SchemaCollection(CollectionKind, String),
}

impl TypeRegistry {
    /// Builds a registry from types described by name, numbering them in the
    /// reference's discovery order from `root` (spec §7): the type itself,
    /// then the types extending it, then its parent, then the types its
    /// fields reference, recursively.
    ///
    /// # Errors
    ///
    /// Unknown or duplicate names, cyclic inheritance, more than 63 fields.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_schema::types::*;
    /// let reg = TypeRegistry::from_named(
    ///     "State",
    ///     &[NamedType {
    ///         name: "State".into(),
    ///         extends: None,
    ///         fields: vec![NamedField { name: "n".into(), ty: NamedFieldType::Primitive(Primitive::Number) }],
    ///     }],
    /// )?;
    /// assert_eq!(reg.root(), TypeId(0));
    /// # Ok::<(), TypeError>(())
    /// ```
    pub fn from_named(root: &str, types: &[NamedType]) -> Result<Self, TypeError> {
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (i, t) in types.iter().enumerate() {
            if by_name.insert(t.name.as_str(), i).is_some() {
                return Err(TypeError::DuplicateType(t.name.clone()));
            }
        }
        let lookup = |name: &str| {
            by_name
                .get(name)
                .copied()
                .ok_or_else(|| TypeError::UnknownType(name.to_owned()))
        };
        // Discovery order of the reference's TypeContext.
        let mut order: Vec<usize> = Vec::new();
        let mut seen = vec![false; types.len()];
        let mut stack_work = vec![lookup(root)?];
        // The reference discovers recursively; emulate with an explicit
        // recursion over a small helper to keep the order exact.
        fn discover(
            i: usize,
            types: &[NamedType],
            lookup: &dyn Fn(&str) -> Result<usize, TypeError>,
            seen: &mut [bool],
            order: &mut Vec<usize>,
        ) -> Result<(), TypeError> {
            if seen[i] {
                return Ok(());
            }
            seen[i] = true;
            order.push(i);
            let name = types[i].name.as_str();
            for (j, t) in types.iter().enumerate() {
                if t.extends.as_deref() == Some(name) {
                    discover(j, types, lookup, seen, order)?;
                }
            }
            // Every ancestor, nearest first (the reference walks the whole
            // prototype chain, not only the parent, which may be seen
            // already while a grandparent is not).
            let mut at = i;
            let mut hops = 0;
            while let Some(parent) = &types[at].extends {
                at = lookup(parent)?;
                hops += 1;
                if at == i || hops > types.len() {
                    break;
                }
                discover(at, types, lookup, seen, order)?;
            }
            // Every field, the inherited ones too: the reference walks a
            // class's metadata with `for…in`, own fields first, then the
            // parent's, then the grandparent's (a subclass found while its
            // parent is still being discovered reaches the parent's field
            // types before the parent does).
            let mut chain = vec![i];
            let mut at = i;
            while let Some(parent) = &types[at].extends {
                at = lookup(parent)?;
                if chain.contains(&at) {
                    break;
                }
                chain.push(at);
            }
            for f in chain.iter().flat_map(|&t| &types[t].fields) {
                match &f.ty {
                    NamedFieldType::Schema(n) | NamedFieldType::SchemaCollection(_, n) => {
                        discover(lookup(n)?, types, lookup, seen, order)?;
                    }
                    NamedFieldType::Primitive(_)
                    | NamedFieldType::Quantized(_)
                    | NamedFieldType::PrimitiveCollection(..) => {}
                }
            }
            Ok(())
        }
        while let Some(i) = stack_work.pop() {
            discover(i, types, &lookup, &mut seen, &mut order)?;
        }
        let mut id_of = vec![u32::MAX; types.len()];
        for (id, &i) in order.iter().enumerate() {
            id_of[i] = id as u32;
        }
        let resolve =
            |name: &str| -> Result<TypeId, TypeError> { Ok(TypeId(id_of[lookup(name)?])) };
        let mut defs = Vec::with_capacity(order.len());
        for &i in &order {
            let t = &types[i];
            let extends = t.extends.as_deref().map(resolve).transpose()?;
            let fields = t
                .fields
                .iter()
                .map(|f| {
                    let ty = match &f.ty {
                        NamedFieldType::Primitive(p) => FieldType::Primitive(*p),
                        NamedFieldType::Quantized(q) => FieldType::Quantized(*q),
                        NamedFieldType::Schema(n) => FieldType::Schema(resolve(n)?),
                        NamedFieldType::PrimitiveCollection(k, p) => {
                            FieldType::Collection(*k, ElementType::Primitive(*p))
                        }
                        NamedFieldType::SchemaCollection(k, n) => {
                            FieldType::Collection(*k, ElementType::Schema(resolve(n)?))
                        }
                    };
                    Ok(FieldDef {
                        name: f.name.clone(),
                        ty,
                    })
                })
                .collect::<Result<Vec<_>, TypeError>>()?;
            defs.push(TypeDef {
                name: t.name.clone(),
                extends,
                fields,
            });
        }
        Self::new(defs, TypeId(0))
    }

    /// Builds a registry from types already numbered (index = type id), as
    /// Reflection transmits them.
    ///
    /// # Errors
    ///
    /// Out-of-range ids, cyclic inheritance, more than 63 fields.
    pub fn new(types: Vec<TypeDef>, root: TypeId) -> Result<Self, TypeError> {
        let n = types.len() as u32;
        let check = |id: TypeId| {
            if id.0 < n {
                Ok(())
            } else {
                Err(TypeError::BadTypeId(id.0))
            }
        };
        check(root)?;
        for t in &types {
            if let Some(p) = t.extends {
                check(p)?;
            }
            for f in &t.fields {
                match f.ty {
                    FieldType::Schema(id) | FieldType::Collection(_, ElementType::Schema(id)) => {
                        check(id)?;
                    }
                    FieldType::Primitive(_)
                    | FieldType::Quantized(_)
                    | FieldType::Collection(_, ElementType::Primitive(_)) => {}
                }
            }
        }
        let mut flat = Vec::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            let mut chain = vec![i];
            let mut cur = t.extends;
            while let Some(p) = cur {
                if chain.contains(&(p.0 as usize)) {
                    return Err(TypeError::CyclicInheritance(t.name.clone()));
                }
                chain.push(p.0 as usize);
                cur = types[p.0 as usize].extends;
            }
            let fields: Vec<FieldDef> = chain
                .iter()
                .rev()
                .flat_map(|&c| types[c].fields.iter().cloned())
                .collect();
            if fields.len() > MAX_FIELDS {
                return Err(TypeError::TooManyFields {
                    name: t.name.clone(),
                    count: fields.len(),
                });
            }
            flat.push(fields);
        }
        Ok(Self {
            types,
            flat,
            root,
            views: Vec::new(),
        })
    }

    /// The root type (the state's type).
    #[must_use]
    pub fn root(&self) -> TypeId {
        self.root
    }

    /// Number of types.
    #[must_use]
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the registry has no type (never true for a built registry).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type with this id.
    ///
    /// # Panics
    ///
    /// If `id` is not in the registry.
    #[must_use]
    pub fn get(&self, id: TypeId) -> &TypeDef {
        &self.types[id.0 as usize]
    }

    /// Every type, indexed by type id.
    #[must_use]
    pub fn types(&self) -> &[TypeDef] {
        &self.types
    }

    /// The view tag of field `index` of `id` (`None`: a shared field).
    #[must_use]
    pub fn view_tag(&self, id: TypeId, index: usize) -> Option<i64> {
        self.views
            .iter()
            .find(|(t, i, _)| *t == id && *i == index)
            .map(|v| v.2)
    }

    /// Marks field `index` (inherited fields first) of `id` as a view field
    /// with `tag` ([`DEFAULT_VIEW_TAG`](crate::DEFAULT_VIEW_TAG) for
    /// `@view()`), or as a shared field (`None`). Types extending `id` are
    /// marked too. Dynamic states built from the registry leave view fields
    /// out of the shared encoding (see [`crate::ViewTarget`]).
    pub fn set_view_tag(&mut self, id: TypeId, index: usize, tag: Option<i64>) {
        let subtypes: Vec<TypeId> = (0..self.types.len() as u32)
            .map(TypeId)
            .filter(|t| {
                let mut cur = Some(*t);
                while let Some(c) = cur {
                    if c == id {
                        return true;
                    }
                    cur = self.types.get(c.0 as usize).and_then(|d| d.extends);
                }
                false
            })
            .collect();
        for t in subtypes {
            self.views.retain(|(vt, vi, _)| !(*vt == t && *vi == index));
            if let Some(tag) = tag {
                self.views.push((t, index, tag));
            }
        }
    }

    /// All fields of a type, inherited ones first: the slice index is the wire
    /// field index.
    ///
    /// # Panics
    ///
    /// If `id` is not in the registry.
    #[must_use]
    pub fn fields(&self, id: TypeId) -> &[FieldDef] {
        &self.flat[id.0 as usize]
    }

    /// Looks a type up by name.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.name == name)
            .map(|i| TypeId(i as u32))
    }

    /// Whether `ty` is `base` or extends it (directly or not).
    #[must_use]
    pub fn is_a(&self, ty: TypeId, base: TypeId) -> bool {
        let mut cur = Some(ty);
        while let Some(t) = cur {
            if t == base {
                return true;
            }
            cur = self.types.get(t.0 as usize).and_then(|d| d.extends);
        }
        false
    }
}
