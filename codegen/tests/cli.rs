//! The `roomcast-codegen` binary: Reflection bytes from a file or standard
//! input, `--lang`, `--output`, `--namespace`, `--type-name`, `--bundle`,
//! and its errors.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use roomcast_codegen::{generate_from_reflection, Language, Options};
use roomcast_schema::types::TypeId;
use roomcast_tests::node::{from_hex, load_vectors};

fn codegen(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast-codegen"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// A directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "roomcast-codegen-cli-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The Reflection of vector `polymorphic_children` (Entity, Hero and
/// Monster extending it, State).
fn polymorphic_reflection() -> Vec<u8> {
    let (_, vector) = load_vectors(None)
        .into_iter()
        .find(|(name, _)| name == "polymorphic_children")
        .expect("vector polymorphic_children");
    from_hex(vector["reflection"].as_str().unwrap()).unwrap()
}

#[test]
fn writes_one_file_per_type_from_a_reflection_file() {
    let tmp = TempDir::new("file");
    let bytes = polymorphic_reflection();
    let input = tmp.0.join("state.bin");
    fs::write(&input, &bytes).unwrap();
    let output = tmp.0.join("out/nested");
    let out = codegen(
        &[
            input.to_str().unwrap(),
            "--lang",
            "cs",
            "--output",
            output.to_str().unwrap(),
            "--namespace",
            "Game.Schema",
            "--type-name",
            "1=Entity",
        ],
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    let options = Options::new()
        .namespace("Game.Schema")
        .type_name(TypeId(1), "Entity");
    let expected = generate_from_reflection(&bytes, Language::CSharp, &options).unwrap();
    assert_eq!(expected.len(), 4);
    for file in expected {
        let written = fs::read_to_string(output.join(&file.path)).unwrap();
        assert_eq!(written, file.contents, "{}", file.path.display());
        let line = format!("generated: {}", file.path.display());
        assert!(String::from_utf8_lossy(&out.stdout).contains(&line));
    }
    assert!(output.join("State.cs").exists());
    assert!(output.join("Entity.cs").exists());
}

#[test]
fn reads_standard_input() {
    let tmp = TempDir::new("stdin");
    let out = codegen(
        &["-", "--lang", "lua", "--output", tmp.0.to_str().unwrap()],
        &polymorphic_reflection(),
    );
    assert!(out.status.success(), "{out:?}");
    let state = fs::read_to_string(tmp.0.join("State.lua")).unwrap();
    assert!(state.contains("local Type1 = require 'Type1'"), "{state}");
}

#[test]
fn bundles_every_class_in_one_file() {
    let tmp = TempDir::new("bundle");
    let dir = tmp.0.to_str().unwrap();
    let bytes = polymorphic_reflection();
    let out = codegen(&["-", "--lang", "hx", "--output", dir, "--bundle"], &bytes);
    assert!(out.status.success(), "{out:?}");
    let written: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(written, ["Schema.hx"]);
    let expected = generate_from_reflection(&bytes, Language::Haxe, &Options::new().bundle(true));
    assert_eq!(
        fs::read_to_string(tmp.0.join("Schema.hx")).unwrap(),
        expected.unwrap()[0].contents
    );
}

#[test]
fn refuses_bad_arguments_and_bytes() {
    let tmp = TempDir::new("errors");
    let dir = tmp.0.to_str().unwrap();
    for (args, stdin, message) in [
        (&["-", "--lang", "ts"][..], &b""[..], "missing --output"),
        (&["-", "--output", dir], b"", "missing --lang"),
        (
            &["-", "--lang", "cpp", "--output", dir],
            b"",
            "unknown language `cpp`",
        ),
        (
            &["-", "--lang", "ts", "--output", dir, "--type-name", "x"],
            b"",
            "expected <id>=<Name>",
        ),
        (
            &["-", "--lang", "ts", "--output", dir],
            b"\x01\x02",
            "invalid Reflection",
        ),
    ] {
        let out = codegen(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(stderr.contains("usage: roomcast-codegen"), "{stderr}");
    }
    let help = codegen(&["--help"], b"");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--type-name"));
}
