//! End-to-end support: a Roomcast server on 127.0.0.1:0 and the Node.js
//! scripts of `tests/node/sdk/` that drive it with the real SDKs.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use roomcast::{Dialect, Server};

use super::room::E2eRoom;

/// `tests/node` of the workspace.
pub fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node")
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn install_is_fresh(dir: &Path) -> bool {
    match (
        mtime(&dir.join("node_modules/.package-lock.json")),
        mtime(&dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    }
}

/// Runs `npm ci` in `tests/node` once, under the same lock file as the
/// schema interop harness, so parallel test binaries do not race.
pub fn ensure_npm_install() {
    let dir = node_dir();
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "Node.js is missing: install Node.js 20 (with npm) to run the end-to-end tests"
    );
    if install_is_fresh(&dir) {
        return;
    }
    let lock = dir.join(".npm-install.lock");
    let start = Instant::now();
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => break,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let stale = mtime(&lock)
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(900));
                if stale {
                    let _ = fs::remove_file(&lock);
                }
                assert!(
                    start.elapsed() < Duration::from_secs(600),
                    "waited too long for npm ci"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create {}: {e}", lock.display()),
        }
    }
    let result = if install_is_fresh(&dir) {
        Ok(())
    } else {
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("npm ci: {s}"))
                }
            })
    };
    let _ = fs::remove_file(&lock);
    result.expect("npm ci in tests/node failed");
}

/// A running server; dropping it stops the runtime.
pub struct TestServer {
    pub port: u16,
    pub server: Server,
    pub runtime: tokio::runtime::Runtime,
}

/// Starts the e2e rooms on 127.0.0.1:0: the modern dialect at the root,
/// the legacy one under `/legacy`.
pub fn start_server() -> TestServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = roomcast::ServerConfig::default();
    // Clients of the wrong dialect (dialect.mjs) are told after this.
    config.join_ack_timeout = Duration::from_secs(5);
    let server = Server::builder()
        .config(config)
        .define("counter", E2eRoom::default)
        .realtime_listing()
        .define("lobby", roomcast::LobbyRoom::default)
        .define("world", || super::demo::DemoRoom)
        .define("cards", super::cards::CardsRoom::default)
        .define("hub", super::hub::HubRoom::default)
        .define("relay", roomcast::RelayRoom::default)
        .define("tictactoe", super::tictactoe::TicTacToe::default)
        .define("chat", || super::chat::ChatRoom)
        .define_with_options(
            "fixed",
            serde_json::json!({ "maxClients": 2 }),
            E2eRoom::default,
        )
        .endpoint("/legacy", Dialect::Legacy)
        .build();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let transport = roomcast::WebSocketTransport::new(listener);
    let serving = server.clone();
    runtime.spawn(async move {
        roomcast::transport::Transport::serve(transport, serving)
            .await
            .unwrap();
    });
    TestServer {
        port,
        server,
        runtime,
    }
}

/// Runs `tests/node/sdk/<script>` against a fresh server; panics with the
/// script's output unless it exits 0 within `timeout`.
pub fn run_script(script: &str, timeout: Duration) {
    let server = start_server();
    run_script_on(&server, script, &[], timeout);
}

/// Runs `tests/node/sdk/<script>` against `server` with `extra`
/// arguments after the port; panics with the script's output unless it
/// exits 0 within `timeout`.
pub fn run_script_on(server: &TestServer, script: &str, extra: &[&str], timeout: Duration) {
    run_script_at(server.port, script, extra, timeout);
}

/// The Node twins of the example rooms (`tests/node/sdk/twins-server.mjs`
/// on @colyseus/core 0.18), killed on drop.
pub struct NodeTwins {
    pub port: u16,
    child: std::process::Child,
}

impl Drop for NodeTwins {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the Node twins on a free port and waits until they listen.
pub fn start_node_twins() -> NodeTwins {
    use std::io::{BufRead, BufReader};
    ensure_npm_install();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new("node")
        .arg(node_dir().join("sdk/twins-server.mjs"))
        .arg(port.to_string())
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped");
    let twins = NodeTwins { port, child };
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line == "listening");
    assert!(listening, "twins-server.mjs exited before listening");
    // Whatever it prints later must not fill the pipe and stall it.
    std::thread::spawn(move || lines.for_each(drop));
    twins
}

/// Runs `tests/node/sdk/<script>` against the server on `port`; panics
/// with the script's output unless it exits 0 within `timeout`.
pub fn run_script_at(port: u16, script: &str, extra: &[&str], timeout: Duration) {
    ensure_npm_install();
    let path = node_dir().join("sdk").join(script);
    let mut child = Command::new("node")
        .arg(&path)
        .arg(port.to_string())
        .args(extra)
        .current_dir(node_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match status {
        Some(s) if s.success() => {
            print!("{stdout}");
        }
        Some(s) => panic!("{script} failed ({s})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"),
        None => panic!(
            "{script} timed out after {timeout:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ),
    }
}
