//! Our output against the real `schema-codegen` of `@colyseus/schema`
//! 5.0.34: for every schema of the reference vectors (and one of our own
//! with quantized fields, keywords and a namespace), this crate writes the
//! TypeScript classes, the reference generates every target from them (one
//! file per type, and `--bundle`), and
//! each of its files must equal ours after [`normalise`], except the files
//! listed in `tests/reference-differences.txt`, which must differ. `tsc`
//! type-checks all of our TypeScript first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use roomcast_codegen::{generate, generate_from_reflection, GenerateError, Language, Options};
use roomcast_schema::quantize::Quantize;
use roomcast_schema::types::{
    CollectionKind, NamedField, NamedFieldType, NamedType, Primitive, TypeId, TypeRegistry,
};
use roomcast_tests::node::{ensure_npm_install, from_hex, load_vectors, node_dir};

/// Type-checks every case's classes (`<case>/input/*.ts`, and the bundle
/// `<case>/bundle/*.ts`) as the SDK test compiles the demo's
/// (`tests/sdk/tsconfig.json`).
const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2022",
    "module": "ES2022",
    "moduleResolution": "Bundler",
    "experimentalDecorators": true,
    "useDefineForClassFields": false,
    "strict": true,
    "skipLibCheck": true,
    "types": [],
    "noEmit": true
  },
  "include": ["*/input/*.ts", "*/bundle/*.ts"]
}"#;

/// One schema to generate.
struct Case {
    name: String,
    types: TypeRegistry,
    options: Options,
    /// `--namespace` for the reference.
    namespace: Option<&'static str>,
}

/// What is compared: line ends to `\n`, trailing spaces and tabs of each
/// line removed, runs of blank lines collapsed to one, leading and trailing
/// blank lines removed, and the header's `GENERATED USING …` line (which
/// names the generator) cut to `GENERATED USING`.
fn normalise(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        let mut line = line.trim_end_matches([' ', '\t']);
        if let Some(at) = line.find("GENERATED USING ") {
            line = &line[..at + "GENERATED USING".len()];
        }
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// Every vector's schema, from its Reflection bytes, with the names of its
/// `typeIds`.
fn vector_cases() -> Vec<Case> {
    load_vectors(None)
        .into_iter()
        .map(|(name, vector)| {
            let bytes = from_hex(vector["reflection"].as_str().expect("reflection hex"))
                .expect("reflection hex");
            let types = roomcast_schema::decoder::decode_reflection(
                &bytes,
                roomcast_schema::decoder::ReflectionDialect::V5,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut options = Options::new();
            for (type_name, id) in vector["typeIds"].as_object().expect("typeIds") {
                let id = TypeId(id.as_u64().expect("type id") as u32);
                options = options.type_name(id, type_name.clone());
            }
            // The bytes path gives what the registry path gives.
            for language in Language::ALL {
                assert_eq!(
                    generate_from_reflection(&bytes, language, &options),
                    generate(&types, language, &options),
                    "{name}"
                );
            }
            Case {
                name,
                types,
                options,
                namespace: None,
            }
        })
        .collect()
}

fn field(name: &str, ty: NamedFieldType) -> NamedField {
    NamedField {
        name: name.to_owned(),
        ty,
    }
}

/// What no vector has: quantized fields (JS number formatting), names that
/// are keywords of a target, three levels of inheritance, a namespace.
fn extra_case() -> Case {
    use NamedFieldType::{
        Primitive as P, PrimitiveCollection as PC, Quantized as Q, Schema as S,
        SchemaCollection as SC,
    };
    let q = |min, max, bits, wrap| Q(Quantize::new(min, max, bits, wrap).expect("quantize"));
    let ty = |name: &str, extends: Option<&str>, fields| NamedType {
        name: name.to_owned(),
        extends: extends.map(str::to_owned),
        fields,
    };
    let types = [
        ty(
            "Entity",
            None,
            vec![
                field("x", P(Primitive::Number)),
                field("angle", q(0.0, std::f64::consts::TAU, 16, true)),
                field("throttle", q(-1.0, 1.0, 8, false)),
                field("far", q(1e-7, 1.5e21, 32, false)),
                field("default", P(Primitive::Int8)),
                field("var", P(Primitive::String)),
                field("event", P(Primitive::Boolean)),
            ],
        ),
        ty(
            "Unit",
            Some("Entity"),
            vec![
                field("name", P(Primitive::String)),
                field("target", S("Entity".into())),
            ],
        ),
        ty(
            "Hero",
            Some("Unit"),
            vec![
                field("items", SC(CollectionKind::Array, "Item".into())),
                field("tags", PC(CollectionKind::Map, Primitive::String)),
                field("dynamic", P(Primitive::Float32)),
            ],
        ),
        ty(
            "Item",
            None,
            vec![
                field("id", P(Primitive::Uint16)),
                field("in", P(Primitive::Int64)),
            ],
        ),
        ty(
            "State",
            None,
            vec![
                field("units", SC(CollectionKind::Map, "Unit".into())),
                field("hero", S("Hero".into())),
                field("scores", PC(CollectionKind::Array, Primitive::Float64)),
            ],
        ),
    ];
    Case {
        name: "extra_quantized_keywords_namespace".into(),
        types: TypeRegistry::from_named("State", &types).expect("valid types"),
        options: Options::new().namespace("game.schema"),
        namespace: Some("game.schema"),
    }
}

/// Every language, one file per type and bundled (`--bundle`).
fn targets() -> impl Iterator<Item = (Language, bool)> {
    [false, true]
        .into_iter()
        .flat_map(|bundle| Language::ALL.map(|language| (language, bundle)))
}

/// `ts`, …, or `ts+bundle`, …: the name of a target's output folder, and
/// its name in `reference-differences.txt`.
fn target_name(language: Language, bundle: bool) -> String {
    let ext = language.extension();
    if bundle {
        format!("{ext}+bundle")
    } else {
        ext.to_owned()
    }
}

/// `(case, target name, file)`; `*` for a case a language refuses.
type Key = (String, String, String);

/// `tests/reference-differences.txt`: the files expected to differ.
fn expected_differences() -> BTreeSet<Key> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference-differences.txt");
    fs::read_to_string(&path)
        .expect("reference-differences.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut word = || {
                words
                    .next()
                    .expect("<case> <lang> <file> <reason>")
                    .to_owned()
            };
            (word(), word(), word())
        })
        .collect()
}

fn read_dir_files(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("dir entry").path())
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    (name, fs::read_to_string(&p).expect("generated file"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn output_matches_schema_codegen() {
    ensure_npm_install();
    let mut cases = vector_cases();
    cases.push(extra_case());
    let tmp: PathBuf =
        std::env::temp_dir().join(format!("roomcast-codegen-reference-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);

    // Our TypeScript: the reference's input.
    let mut jobs = Vec::new();
    for case in &cases {
        let input = tmp.join(&case.name).join("input");
        fs::create_dir_all(&input).unwrap();
        let files = generate(&case.types, Language::TypeScript, &case.options)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut paths = Vec::new();
        for file in files {
            let path = input.join(&file.path);
            fs::write(&path, &file.contents).unwrap();
            paths.push(path.to_string_lossy().into_owned());
        }
        // The bundle, for tsc only.
        let bundle = tmp.join(&case.name).join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        let options = case.options.clone().bundle(true);
        for file in generate(&case.types, Language::TypeScript, &options).unwrap() {
            fs::write(bundle.join(&file.path), &file.contents).unwrap();
        }
        for (language, bundle) in targets() {
            let output = tmp.join(&case.name).join(target_name(language, bundle));
            fs::create_dir_all(&output).unwrap();
            jobs.push(serde_json::json!({
                "files": paths,
                "target": language.reference_flag(),
                "output": output,
                "namespace": case.namespace,
                "bundle": bundle,
            }));
        }
    }
    // Our TypeScript compiles against @colyseus/schema 5.0.34.
    let node_modules = node_dir().join("node_modules");
    std::os::unix::fs::symlink(&node_modules, tmp.join("node_modules")).unwrap();
    fs::write(tmp.join("tsconfig.json"), TSCONFIG).unwrap();
    let tsc = Command::new("node")
        .arg(node_modules.join("typescript/bin/tsc"))
        .arg("-p")
        .arg(tmp.join("tsconfig.json"))
        .output()
        .expect("node runs");
    assert!(
        tsc.status.success(),
        "tsc rejects the TypeScript:\n{}{}",
        String::from_utf8_lossy(&tsc.stdout),
        String::from_utf8_lossy(&tsc.stderr)
    );

    let jobs_path = tmp.join("jobs.json");
    fs::write(&jobs_path, serde_json::to_string(&jobs).unwrap()).unwrap();
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference-codegen.cjs");
    let out = Command::new("node")
        .arg(&driver)
        .arg(&jobs_path)
        .arg(node_dir().join("node_modules"))
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "schema-codegen failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Compare, target by target.
    let mut differing = BTreeSet::new();
    let mut report = String::new();
    let mut compared = 0;
    for case in &cases {
        for (language, bundle) in targets() {
            let lang = target_name(language, bundle);
            let reference = read_dir_files(&tmp.join(&case.name).join(&lang));
            let options = case.options.clone().bundle(bundle);
            let ours = match generate(&case.types, language, &options) {
                Ok(files) => files,
                Err(e @ GenerateError::Unsupported { .. }) => {
                    differing.insert((case.name.clone(), lang.clone(), "*".to_owned()));
                    report.push_str(&format!("{} {lang}: {e}\n", case.name));
                    continue;
                }
                Err(e) => panic!("{}: {e}", case.name),
            };
            let ours: BTreeMap<String, String> = ours
                .into_iter()
                .map(|f| (f.path.to_string_lossy().into_owned(), f.contents))
                .collect();
            let names: BTreeSet<&String> = reference.keys().chain(ours.keys()).collect();
            for name in names {
                compared += 1;
                let (a, b) = (
                    reference.get(name).map(|t| normalise(t)),
                    ours.get(name).map(|t| normalise(t)),
                );
                if a != b {
                    differing.insert((case.name.clone(), lang.clone(), name.clone()));
                    report.push_str(&format!(
                        "--- {}/{lang}/{name}: reference\n{}\n+++ ours\n{}\n",
                        case.name,
                        a.as_deref().unwrap_or("(no file)"),
                        b.as_deref().unwrap_or("(no file)"),
                    ));
                }
            }
        }
    }
    let expected = expected_differences();
    let unexpected: Vec<_> = differing.difference(&expected).collect();
    let missing: Vec<_> = expected.difference(&differing).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "differences not listed in reference-differences.txt: {unexpected:?}\n\
         listed but equal now: {missing:?}\n(both outputs kept in {})\n\n{report}",
        tmp.display()
    );
    assert!(compared > 400, "only {compared} files compared");
    let _ = fs::remove_dir_all(&tmp);
}
