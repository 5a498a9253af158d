//! Driver for the Node.js side of the interop harness (`tests/node/`).
//!
//! [`NodeDecoder`] runs `tests/node/decode-server.mjs` (a long-running process
//! speaking one JSON object per line on stdin/stdout) so Rust tests can feed
//! bytes to the *real* `@colyseus/schema` decoders — 5.0.34, or 3.0.76 which is
//! what `colyseus.js` 0.16 pulls — built from Reflection bytes only.
//!
//! The first use installs the pinned npm packages with `npm ci` when
//! `tests/node/node_modules` is missing or older than `package-lock.json`
//! (guarded by a lock file so parallel test binaries install only once).
//! Node.js 20+ and npm must be on `PATH`.
//!
//! [`load_vectors`] reads the reference test vectors (JSON) for table-driven
//! tests.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

/// Environment variable naming a directory of vector files that replaces
/// `tests/fixtures/vectors` in [`load_vectors`].
pub const VECTORS_ENV: &str = "ROOMCAST_VECTORS";

/// How long a process waits for another one's `npm ci` before giving up.
const INSTALL_WAIT: Duration = Duration::from_secs(600);

/// A lock file older than this is considered abandoned (its owner died).
const STALE_LOCK: Duration = Duration::from_secs(900);

/// Which `@colyseus/schema` major version decodes a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    /// `@colyseus/schema` 5.0.34 (colyseus 0.18 / `@colyseus/sdk` 0.18).
    V5,
    /// `@colyseus/schema` 3.0.76 (the decoder `colyseus.js` 0.16.22 uses).
    V3,
}

impl SchemaVersion {
    /// The protocol name of this version (`"5"` or `"3"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V5 => "5",
            Self::V3 => "3",
        }
    }
}

/// One decoder instance inside the Node process (one simulated client).
#[derive(Debug, PartialEq, Eq)]
pub struct Session {
    id: String,
    schema: SchemaVersion,
}

impl Session {
    /// The session name used on the wire protocol.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The decoder version of this session.
    pub fn schema(&self) -> SchemaVersion {
        self.schema
    }
}

/// Result of decoding one message body.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The decoder's whole state after the call, in the vectors' JSON
    /// conventions (sorted keys, `$num`, `$bigint`; maps as objects,
    /// arrays/sets/collections as arrays).
    pub state: Value,
    /// Everything the decoder printed through `console.warn` /
    /// `console.error` during the call (e.g. `"refId" not found`).
    pub warnings: Vec<String>,
}

/// Handle to a running `decode-server.mjs`.
#[derive(Debug)]
pub struct NodeDecoder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    next_session: u64,
}

/// `tests/node`, the folder of the Node side of the harness.
pub fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// `tests/fixtures/vectors`, the checked-in reference vectors.
pub fn fixtures_vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("vectors")
}

/// The vector directory: `dir` when given, else the `ROOMCAST_VECTORS`
/// environment variable when set, else `tests/fixtures/vectors`.
#[must_use]
pub fn vectors_dir(dir: Option<&Path>) -> PathBuf {
    match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::var_os(VECTORS_ENV).map_or_else(fixtures_vectors_dir, PathBuf::from),
    }
}

/// Loads every `*.json` vector file of [`vectors_dir`], sorted by file name,
/// as `(name, parsed JSON)` where `name` is the file stem. Panics on I/O or
/// JSON errors (these are test fixtures).
pub fn load_vectors(dir: Option<&Path>) -> Vec<(String, Value)> {
    load_vectors_with(dir, |text| serde_json::from_str::<Value>(text))
}

/// [`load_vectors`] with a JSON reader of the caller's (the replay harness
/// keeps the key order of the ops).
///
/// # Panics
///
/// On I/O errors, or when `parse` fails (test fixtures).
pub fn load_vectors_with<E: std::fmt::Display>(
    dir: Option<&Path>,
    parse: impl Fn(&str) -> Result<Value, E>,
) -> Vec<(String, Value)> {
    let dir = vectors_dir(dir);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read vectors dir {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let value =
                parse(&text).unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", path.display()));
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, value)
        })
        .collect()
}

/// Lower-case hex of `bytes` (the protocol's byte encoding).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses a hex string (as found in the vectors) into bytes.
pub fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd-length hex string ({} chars)", hex.len()));
    }
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("invalid hex digit {:?}", char::from(c))),
        }
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Ok((digit(pair[0])? << 4) | digit(pair[1])?))
        .collect()
}

/// Panics with installation advice unless `node` (>= 20) and `npm` run.
fn check_node_available() {
    const ADVICE: &str = "the Node.js interop harness needs Node.js 20 (or newer) and npm \
        on PATH: install Node.js 20 and npm (e.g. `apt-get install nodejs npm`), \
        then re-run the tests";
    let version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => panic!("`node --version` failed ({}): {ADVICE}", out.status),
        Err(e) => panic!("`node` not found ({e}): {ADVICE}"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 20, "found node {version}: {ADVICE}");
    match Command::new("npm").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`npm --version` failed ({}): {ADVICE}", out.status),
        Err(e) => panic!("`npm` not found ({e}): {ADVICE}"),
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when `node_modules` was installed from the current lock file.
fn install_is_fresh(dir: &Path) -> bool {
    let installed = mtime(&dir.join("node_modules").join(".package-lock.json"));
    let lock = mtime(&dir.join("package-lock.json"));
    match (installed, lock) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    }
}

/// Removes the install lock file when dropped.
struct InstallLock(PathBuf);

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Takes `tests/node/.npm-install.lock` (create-exclusive), waiting while
/// another process holds it. Abandoned locks (older than [`STALE_LOCK`]) are
/// removed.
fn acquire_install_lock(dir: &Path) -> InstallLock {
    let path = dir.join(".npm-install.lock");
    let start = SystemTime::now();
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let _ = writeln!(f, "{}", std::process::id());
                return InstallLock(path);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let age = mtime(&path)
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                if age > STALE_LOCK {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                let waited = SystemTime::now().duration_since(start).unwrap_or_default();
                assert!(
                    waited < INSTALL_WAIT,
                    "timed out waiting for {} (another `npm ci` still running?)",
                    path.display()
                );
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        }
    }
}

/// Runs `npm ci --no-audit --no-fund` in `tests/node` unless the install is
/// already up to date. Safe to call from parallel processes.
pub fn ensure_npm_install() {
    let dir = node_dir();
    if install_is_fresh(&dir) {
        return;
    }
    check_node_available();
    let _lock = acquire_install_lock(&dir);
    if install_is_fresh(&dir) {
        return; // another process installed while we waited
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `npm ci` in {}: {e}", dir.display()));
    assert!(
        out.status.success(),
        "`npm ci --no-audit --no-fund` failed in {} ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Node server script (an ES module evaluated in `tests/node`, so its
/// imports resolve to the pinned packages) listening on a free loopback
/// port; killed when dropped.
#[derive(Debug)]
pub struct NodeServer {
    /// Its port on 127.0.0.1 (the script reads it from `PORT`).
    pub port: u16,
    child: Child,
}

impl NodeServer {
    /// Installs the npm packages if needed, starts `script` with `PORT` set
    /// and returns once it prints a line starting with `listening`
    /// (panics with what it printed if it exits first).
    #[must_use]
    pub fn start(script: &str) -> Self {
        ensure_npm_install();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut child = Command::new("node")
            .args(["--input-type=module", "-e", script])
            .env("PORT", port.to_string())
            .current_dir(node_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("listening") => break,
                Some(Ok(line)) => seen.push(line),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the node server did not start: {seen:?}");
                }
            }
        }
        // Keep its output drained.
        thread::spawn(move || lines.for_each(drop));
        Self { port, child }
    }

    /// The server process's id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeDecoder {
    /// Installs the npm packages if needed and starts `decode-server.mjs`.
    ///
    /// Panics with installation advice when Node.js/npm are missing, or when
    /// the server cannot be started.
    pub fn new() -> Self {
        check_node_available();
        ensure_npm_install();
        let dir = node_dir();
        let mut child = Command::new("node")
            .arg("decode-server.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node decode-server.mjs: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut decoder = Self {
            child,
            stdin: Some(stdin),
            stdout,
            next_id: 1,
            next_session: 1,
        };
        let pong = decoder
            .request(json!({"cmd": "ping"}))
            .unwrap_or_else(|e| panic!("decode-server.mjs did not answer: {e}"));
        assert_eq!(pong["ok"], json!(true), "unexpected ping reply {pong}");
        decoder
    }

    /// A process-wide shared server (started on first use). Tests in one test
    /// binary can share it; the guard serializes access.
    pub fn shared() -> MutexGuard<'static, Self> {
        static SHARED: OnceLock<Mutex<NodeDecoder>> = OnceLock::new();
        SHARED
            .get_or_init(|| Mutex::new(Self::new()))
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Package versions reported by the server (`{"5": "5.0.34", "3": "3.0.76"}`).
    pub fn versions(&mut self) -> Result<Value, String> {
        let reply = self.request(json!({"cmd": "ping"}))?;
        Ok(reply["versions"].clone())
    }

    /// Sends one request (an `id` is added) and returns the matching reply.
    /// Replies with an `error` field become `Err`.
    pub fn request(&mut self, mut req: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        req["id"] = json!(id);
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| "decode server already shut down".to_owned())?;
        let mut line = req.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to decode-server.mjs failed: {e}"))?;
        loop {
            let mut buf = String::new();
            let n = self
                .stdout
                .read_line(&mut buf)
                .map_err(|e| format!("reading from decode-server.mjs failed: {e}"))?;
            if n == 0 {
                return Err("decode-server.mjs exited (see its stderr above)".to_owned());
            }
            let reply: Value = serde_json::from_str(&buf)
                .map_err(|e| format!("bad reply from decode-server.mjs ({e}): {buf}"))?;
            // Skip replies to earlier requests whose caller gave up (panicked).
            if reply["id"] != json!(id) {
                continue;
            }
            if let Some(err) = reply.get("error") {
                return Err(err.as_str().map_or_else(|| err.to_string(), str::to_owned));
            }
            return Ok(reply);
        }
    }

    /// Creates a decoder from Reflection (handshake) bytes with the given
    /// schema version. Fails e.g. when a 3.x decoder gets 5.x Reflection of a
    /// state with collections of primitives.
    pub fn try_open(
        &mut self,
        reflection: &[u8],
        schema: SchemaVersion,
    ) -> Result<Session, String> {
        let id = format!("s{}", self.next_session);
        self.next_session += 1;
        self.request(json!({
            "cmd": "open",
            "session": id,
            "reflection": to_hex(reflection),
            "schema": schema.as_str(),
        }))?;
        Ok(Session { id, schema })
    }

    /// Like [`Self::try_open`], panicking on failure.
    pub fn open(&mut self, reflection: &[u8], schema: SchemaVersion) -> Session {
        self.try_open(reflection, schema)
            .unwrap_or_else(|e| panic!("opening a {schema:?} decoder from Reflection failed: {e}"))
    }

    /// Applies a full state or patch body (no protocol byte) and returns the
    /// decoder's whole state. `Err` carries the exception the decoder threw.
    pub fn decode(&mut self, session: &Session, bytes: &[u8]) -> Result<Decoded, String> {
        let reply = self.request(json!({
            "cmd": "decode",
            "session": session.id,
            "bytes": to_hex(bytes),
        }))?;
        Ok(Decoded {
            state: reply["state"].clone(),
            warnings: warnings_of(&reply),
        })
    }

    /// The session's current state without decoding anything.
    pub fn state(&mut self, session: &Session) -> Result<Value, String> {
        let reply = self.request(json!({"cmd": "state", "session": session.id}))?;
        Ok(reply["state"].clone())
    }

    /// Drops the session's decoder in the Node process.
    pub fn close(&mut self, session: Session) {
        let Session { id, .. } = session;
        // A failure here only leaks a decoder inside the server process.
        let _ = self.request(json!({"cmd": "close", "session": id}));
    }
}

impl Default for NodeDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NodeDecoder {
    fn drop(&mut self) {
        // Closing stdin makes the server exit once it has flushed its replies.
        drop(self.stdin.take());
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn warnings_of(reply: &Value) -> Vec<String> {
    reply["warnings"]
        .as_array()
        .map(|ws| {
            ws.iter()
                .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
