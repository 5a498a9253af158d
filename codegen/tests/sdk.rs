//! The TypeScript classes written for the demo's state compile with `tsc`
//! against `@colyseus/schema` 5.0.34, and `@colyseus/sdk` 0.18.4 decodes a
//! Roomcast room's state into them (`client.joinOrCreate("world", {},
//! World)`): the demo room served in-process on a free loopback port, the
//! classes generated from the handshake bytes that server sends.

#[path = "../../sync-core/src/bin/roomcast-demo/room.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the demo's room file, included whole"
)]
mod room;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use roomcast::transport::Transport;
use roomcast::{Server, WebSocketTransport};
use roomcast_codegen::{generate_for, generate_from_reflection, Language, Options};
use roomcast_schema::types::TypeId;
use roomcast_schema::{encode_reflection, registry_of, Dialect};
use roomcast_tests::node::{ensure_npm_install, node_dir};

/// The files of `tests/sdk/` the run needs beside the generated classes.
const SUPPORT: [(&str, &str); 4] = [
    ("tsconfig.json", include_str!("sdk/tsconfig.json")),
    ("join.mjs", include_str!("sdk/join.mjs")),
    ("register.mjs", include_str!("sdk/register.mjs")),
    ("resolve-hooks.mjs", include_str!("sdk/resolve-hooks.mjs")),
];

/// Runs `command`, killing it after `timeout`.
fn run(command: &mut Command, timeout: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let start = Instant::now();
    while child.try_wait().expect("child status").is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("child output")
}

fn check(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn generated_classes_decode_the_demo_room_through_the_sdk() {
    ensure_npm_install();
    // The classes, from what the server sends in JOIN_ROOM.
    let types = registry_of::<room::World>().expect("the demo's types");
    let handshake = encode_reflection(&types, Dialect::Modern);
    // Reflection has no names: give the Rust ones (`World`, `Player`, …).
    let options = types
        .types()
        .iter()
        .enumerate()
        .fold(Options::new(), |options, (i, def)| {
            let name = def.name.rsplit("::").next().unwrap_or_default();
            options.type_name(TypeId(i as u32), name)
        });
    let files = generate_from_reflection(&handshake, Language::TypeScript, &options)
        .expect("the demo's classes");
    assert_eq!(
        files,
        generate_for::<room::World>(Language::TypeScript, &Options::new()).unwrap(),
        "the Rust type names are the ones given"
    );

    let tmp =
        TempDir(std::env::temp_dir().join(format!("roomcast-codegen-sdk-{}", std::process::id())));
    let dir = &tmp.0;
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("src")).unwrap();
    for file in &files {
        fs::write(dir.join("src").join(&file.path), &file.contents).unwrap();
    }
    for (name, contents) in SUPPORT {
        fs::write(dir.join(name), contents).unwrap();
    }
    fs::write(dir.join("package.json"), r#"{ "type": "module" }"#).unwrap();
    let node_modules = node_dir().join("node_modules");
    std::os::unix::fs::symlink(&node_modules, dir.join("node_modules")).unwrap();

    let tsc = node_modules.join("typescript/bin/tsc");
    let compiled = run(
        Command::new("node")
            .arg(&tsc)
            .arg("-p")
            .arg(dir.join("tsconfig.json")),
        Duration::from_secs(60),
    );
    check("tsc", &compiled);
    assert!(Path::new(&dir.join("out/World.js")).exists());

    // The demo room on a free port.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = Server::builder().define("world", || room::DemoRoom).build();
    let transport = runtime
        .block_on(WebSocketTransport::bind("127.0.0.1:0"))
        .expect("a free port");
    let port = transport.local_addr().unwrap().port();
    let serving = runtime.spawn(transport.serve(server));

    let joined = run(
        Command::new("node")
            .args(["--import", "./register.mjs", "join.mjs"])
            .arg(port.to_string())
            .arg(dir.join("out"))
            .current_dir(dir),
        Duration::from_secs(30),
    );
    serving.abort();
    drop(runtime);
    check("join.mjs", &joined);
    let state: serde_json::Value =
        serde_json::from_slice(&joined.stdout).expect("join.mjs prints the state");
    assert_eq!(state["width"], 800);
    assert_eq!(state["chat"], serde_json::json!(["ana: hello"]));
}
