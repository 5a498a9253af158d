#![doc = include_str!("../README.md")]

mod csharp;
mod haxe;
mod lua;
mod ts;
mod types;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use roomcast_schema::decoder::{decode_reflection, ReflectionDialect};
use roomcast_schema::types::{TypeError, TypeId, TypeRegistry};
use roomcast_schema::wire::DecodeError;
use roomcast_schema::{registry_of, Schema};

/// A target language of `schema-codegen` that this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Language {
    /// TypeScript `@type` classes (`@colyseus/sdk`), `--ts`.
    TypeScript,
    /// C# classes (Unity/C# SDK), `--csharp`.
    CSharp,
    /// Haxe classes (Haxe SDK), `--haxe`.
    Haxe,
    /// Lua modules (Defold SDK), `--lua`.
    Lua,
}

impl Language {
    /// Every language, in a stable order.
    pub const ALL: [Self; 4] = [Self::TypeScript, Self::CSharp, Self::Haxe, Self::Lua];

    /// The extension of the files written for this language (`"ts"`, …).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_codegen::Language;
    /// assert_eq!(Language::CSharp.extension(), "cs");
    /// ```
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::TypeScript => "ts",
            Self::CSharp => "cs",
            Self::Haxe => "hx",
            Self::Lua => "lua",
        }
    }

    /// The name of `schema-codegen`'s flag for this language (`"ts"`,
    /// `"csharp"`, `"haxe"`, `"lua"`).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_codegen::Language;
    /// assert_eq!(Language::CSharp.reference_flag(), "csharp");
    /// ```
    #[must_use]
    pub const fn reference_flag(self) -> &'static str {
        match self {
            Self::TypeScript => "ts",
            Self::CSharp => "csharp",
            Self::Haxe => "haxe",
            Self::Lua => "lua",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TypeScript => "TypeScript",
            Self::CSharp => "C#",
            Self::Haxe => "Haxe",
            Self::Lua => "Lua",
        })
    }
}

/// A language name that is not one of `ts`, `cs`, `hx`, `lua` (nor
/// `typescript`, `csharp`, `haxe`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language `{0}` (expected ts, cs, hx or lua)")]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    /// Parses `ts`, `cs`, `hx`, `lua` (the file extensions) or
    /// `typescript`, `csharp`, `haxe` (schema-codegen's flags).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_codegen::Language;
    /// assert_eq!("hx".parse(), Ok(Language::Haxe));
    /// assert_eq!("csharp".parse(), Ok(Language::CSharp));
    /// assert!("cpp".parse::<Language>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ts" | "typescript" => Ok(Self::TypeScript),
            "cs" | "csharp" => Ok(Self::CSharp),
            "hx" | "haxe" => Ok(Self::Haxe),
            "lua" => Ok(Self::Lua),
            _ => Err(UnknownLanguage(s.to_owned())),
        }
    }
}

/// How to write the files: `schema-codegen`'s `--namespace` and
/// `--bundle`, and the class names Reflection does not transmit.
///
/// # Examples
///
/// ```
/// use roomcast_codegen::Options;
/// use roomcast_schema::types::TypeId;
/// let options = Options::new()
///     .namespace("MyGame.Schema")
///     .type_name(TypeId(0), "World")
///     .type_name(TypeId(1), "Player");
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    namespace: Option<String>,
    type_names: HashMap<TypeId, String>,
    bundle: bool,
}

impl Options {
    /// No namespace, the registry's names.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `--namespace`: the C# `namespace`, the Haxe `package`, the prefix of
    /// the Lua modules' `require` paths. TypeScript files have none (as with
    /// the reference).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// `--bundle`: every class in one file, named after the namespace, else
    /// `schema.ts`, `Schema.cs`, `Schema.hx` or `schema.lua`; classes come
    /// after the classes they refer to.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast_codegen::{generate_for, Language, Options};
    /// use roomcast_schema::{ArraySchema, Schema};
    ///
    /// #[derive(Schema, Default)]
    /// struct Card { rank: u8 }
    ///
    /// #[derive(Schema, Default)]
    /// struct Table { deck: ArraySchema<Card> }
    ///
    /// let files = generate_for::<Table>(Language::Lua, &Options::new().bundle(true))?;
    /// assert_eq!(files.len(), 1);
    /// assert_eq!(files[0].path.to_str(), Some("schema.lua"));
    /// let text = &files[0].contents;
    /// assert!(text.find("local Card =").unwrap() < text.find("local Table =").unwrap());
    /// # Ok::<(), roomcast_codegen::GenerateError>(())
    /// ```
    #[must_use]
    pub fn bundle(mut self, bundle: bool) -> Self {
        self.bundle = bundle;
        self
    }

    /// Names the class of type `id`. Reflection carries no type names:
    /// without one, a type is named after its Rust type when the registry
    /// has it (a `#[derive(Schema)]` state: the last segment of its path),
    /// else `State` for the root type and `Type<id>` for the others.
    #[must_use]
    pub fn type_name(mut self, id: TypeId, name: impl Into<String>) -> Self {
        self.type_names.insert(id, name.into());
        self
    }
}

/// One file to write: a path relative to the output directory, and its
/// contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// The file's path relative to the output directory (`"Player.ts"`).
    pub path: PathBuf,
    /// The file's text.
    pub contents: String,
}

impl GeneratedFile {
    fn new(path: String, contents: String) -> Self {
        Self {
            path: path.into(),
            contents,
        }
    }
}

/// Why no files were written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The Reflection bytes do not decode ([`generate_from_reflection`]).
    #[error("invalid Reflection: {0}")]
    Reflection(#[from] DecodeError),
    /// The state's types cannot be described ([`generate_for`]).
    #[error("invalid state types: {0}")]
    Types(#[from] TypeError),
    /// A class name does not start with an upper-case ASCII letter, has
    /// characters other than ASCII letters, digits and `_`, or is one of the
    /// SDK's (`Schema`, `ArraySchema`, …): `schema-codegen` tells classes
    /// from primitive types by their first letter.
    #[error("`{0}` cannot name a class (an ASCII identifier starting with an upper-case letter, not an SDK class name)")]
    InvalidTypeName(String),
    /// Two types would get the same class name.
    #[error("two types are named `{0}`")]
    DuplicateTypeName(String),
    /// A field name is not an ASCII identifier (letters, digits, `_`, `$`).
    #[error("field `{field}` of `{class}` is not an identifier")]
    InvalidFieldName {
        /// The class.
        class: String,
        /// The field's name.
        field: String,
    },
    /// The target's SDK has no such field type (Haxe: sets and
    /// collections).
    #[error("{language} has no {what} type: field `{field}` of `{class}`")]
    Unsupported {
        /// The target language.
        language: Language,
        /// The class.
        class: String,
        /// The field.
        field: String,
        /// The field's type (`"set"`, `"collection"`).
        what: &'static str,
    },
}

/// Writes the client classes of every type of `types` in `language`, one
/// file per type, in type id order (or one file: [`Options::bundle`]).
///
/// # Errors
///
/// [`GenerateError`]: a name that cannot be a class or field name, two
/// classes of one name, a field type the language's SDK lacks.
///
/// # Examples
///
/// ```
/// use roomcast_codegen::{generate, Language, Options};
/// use roomcast_schema::types::*;
///
/// let types = TypeRegistry::from_named("State", &[NamedType {
///     name: "State".into(),
///     extends: None,
///     fields: vec![NamedField { name: "tick".into(), ty: NamedFieldType::Primitive(Primitive::Uint32) }],
/// }])?;
/// let files = generate(&types, Language::TypeScript, &Options::new())?;
/// assert_eq!(files[0].path.to_str(), Some("State.ts"));
/// assert!(files[0].contents.contains(r#"@type("uint32") public tick!: number;"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate(
    types: &TypeRegistry,
    language: Language,
    options: &Options,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    let classes = types::classes(types, options)?;
    let namespace = options.namespace.as_deref();
    if options.bundle {
        let classes = types::in_definition_order(classes);
        return Ok(vec![match language {
            Language::TypeScript => ts::bundle(&classes, namespace),
            Language::CSharp => csharp::bundle(&classes, namespace),
            Language::Haxe => haxe::bundle(&classes, namespace)?,
            Language::Lua => lua::bundle(&classes, namespace),
        }]);
    }
    Ok(match language {
        Language::TypeScript => ts::generate(&classes),
        Language::CSharp => csharp::generate(&classes, namespace),
        Language::Haxe => haxe::generate(&classes, namespace)?,
        Language::Lua => lua::generate(&classes, namespace),
    })
}

/// [`generate`] for the types described by Reflection bytes: the JOIN_ROOM
/// handshake of a Roomcast or Colyseus server (either schema dialect).
/// Reflection carries no type names: see [`Options::type_name`].
///
/// # Errors
///
/// [`GenerateError::Reflection`] for bytes that are not Reflection, else
/// as [`generate`].
///
/// # Examples
///
/// ```
/// use roomcast_codegen::{generate_from_reflection, Language, Options};
/// use roomcast_schema::types::TypeId;
/// // The Reflection of `State { n: number }`.
/// let bytes = [
///     0x80, 0x01, 0xff, 0x01, 0x80, 0x00, 0x02, 0xff, 0x02, 0x80, 0x00, 0x82, 0x03, 0xff, 0x03,
///     0x80, 0x00, 0x04, 0xff, 0x04, 0x80, 0xa1, b'n', 0x81, 0xa6, b'n', b'u', b'm', b'b', b'e',
///     b'r',
/// ];
/// let options = Options::new().namespace("Game").type_name(TypeId(0), "Counter");
/// let files = generate_from_reflection(&bytes, Language::CSharp, &options)?;
/// assert_eq!(files[0].path.to_str(), Some("Counter.cs"));
/// assert!(files[0].contents.contains("namespace Game {"));
/// assert!(files[0].contents.contains("public double n = default(double);"));
/// # Ok::<(), roomcast_codegen::GenerateError>(())
/// ```
pub fn generate_from_reflection(
    bytes: &[u8],
    language: Language,
    options: &Options,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    let types = decode_reflection(bytes, ReflectionDialect::Auto)?;
    generate(&types, language, options)
}

/// [`generate`] for a `#[derive(Schema)]` state type and the types it
/// reaches, named after the Rust types.
///
/// # Errors
///
/// As [`generate`], and [`GenerateError::Types`] when the types cannot be
/// described (as [`registry_of`]).
///
/// # Examples
///
/// ```
/// use roomcast_codegen::{generate_for, Language, Options};
/// use roomcast_schema::{MapSchema, Schema};
///
/// #[derive(Schema, Default)]
/// struct Player { name: String, x: f32 }
///
/// #[derive(Schema, Default)]
/// struct World { players: MapSchema<Player> }
///
/// let files = generate_for::<World>(Language::Lua, &Options::new())?;
/// let names: Vec<_> = files.iter().map(|f| f.path.to_str().unwrap()).collect();
/// assert_eq!(names, ["World.lua", "Player.lua"]);
/// assert!(files[0].contents.contains(r#"["players"] = { map = Player },"#));
/// # Ok::<(), roomcast_codegen::GenerateError>(())
/// ```
pub fn generate_for<T: Schema>(
    language: Language,
    options: &Options,
) -> Result<Vec<GeneratedFile>, GenerateError> {
    generate(&registry_of::<T>()?, language, options)
}
