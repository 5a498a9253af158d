//! A cluster for end-to-end tests: a `redis-server` on a free port and N
//! processes of the demo binary (`roomcast-demo`) sharing it, each on a
//! free port of 127.0.0.1; and the runner of the `tests/node/sdk/cluster*.mjs`
//! scripts that drive it with the real SDKs.
//!
//! Everything is stopped when the [`Cluster`] is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roomcast::testing::redis::RedisServer;

use super::e2e::{ensure_npm_install, node_dir};

/// How long a demo process may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The Redis key prefix the processes share.
pub const PREFIX: &str = "e2e:";

/// What a process printed, stdout and stderr interleaved by line.
type Log = Arc<Mutex<String>>;

fn append(log: &Log, line: &str) {
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    log.push_str(line);
    log.push('\n');
}

/// Copies `stream` line by line into `log`, sending each line to `lines`
/// too when given (until its receiver is gone).
fn drain(
    stream: impl Read + Send + 'static,
    log: Log,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\r', '\n']);
                    append(&log, line);
                    if let Some(lines) = &lines {
                        let _ = lines.send(line.to_owned());
                    }
                }
            }
        }
    })
}

/// One demo process.
#[derive(Debug)]
pub struct Node {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its `processId` (from its ready line).
    pub process_id: String,
    log: Log,
}

impl Node {
    /// Runs `roomcast-demo` as a node of the cluster on `redis_url`.
    fn spawn(redis_url: &str) -> (Child, Log, Receiver<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast-demo"))
            .env("ROOMCAST_ADDR", "127.0.0.1:0")
            .env("ROOMCAST_REDIS", redis_url)
            .env("ROOMCAST_REDIS_PREFIX", PREFIX)
            .env_remove("ROOMCAST_PROCESS_ID")
            .env_remove("ROOMCAST_PUBLIC_ADDRESS")
            .env_remove("ROOMCAST_DEBUG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("roomcast-demo runs");
        let log = Log::default();
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().expect("piped"), log.clone(), Some(tx));
        drain(child.stderr.take().expect("piped"), log.clone(), None);
        (child, log, rx)
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Redis and N demo processes sharing it.
#[derive(Debug)]
pub struct Cluster {
    /// The Redis (`stop` and `restart` it to test outages).
    pub redis: RedisServer,
    /// The processes, in start order.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Starts a Redis and `n` processes, and waits until every process
    /// printed `roomcast ready <port> <processId>`.
    ///
    /// # Panics
    ///
    /// When one does not within a minute, or exits (with what it printed).
    pub fn start(n: usize) -> Self {
        let redis = RedisServer::start();
        let started: Vec<_> = (0..n).map(|_| Node::spawn(&redis.url())).collect();
        let mut cluster = Self {
            redis,
            nodes: Vec::with_capacity(n),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut waiting = Vec::new();
        for (child, log, lines) in started {
            cluster.nodes.push(Node {
                child: Some(child),
                port: 0,
                process_id: String::new(),
                log,
            });
            waiting.push(lines);
        }
        for (i, lines) in waiting.into_iter().enumerate() {
            let (port, process_id) = cluster.wait_ready(i, &lines, deadline);
            cluster.nodes[i].port = port;
            cluster.nodes[i].process_id = process_id;
        }
        cluster
    }

    fn wait_ready(
        &mut self,
        i: usize,
        lines: &Receiver<String>,
        deadline: Instant,
    ) -> (u16, String) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    let mut words = line.split_whitespace();
                    if let (Some("roomcast"), Some("ready"), Some(port), Some(id), None) = (
                        words.next(),
                        words.next(),
                        words.next(),
                        words.next(),
                        words.next(),
                    ) {
                        let port = port
                            .parse()
                            .unwrap_or_else(|_| panic!("process {i}: bad ready line {line:?}"));
                        return (port, id.to_owned());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.nodes[i].child.as_mut().map(Child::wait);
                    panic!(
                        "process {i} ended before its ready line ({status:?})\n--- its output\n{}",
                        self.nodes[i].log()
                    );
                }
                Err(RecvTimeoutError::Timeout) => {
                    assert!(
                        Instant::now() < deadline,
                        "process {i} printed no ready line within {READY_TIMEOUT:?}\n--- its output\n{}",
                        self.nodes[i].log()
                    );
                }
            }
        }
    }

    /// The ports of the processes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The process ids of the processes.
    pub fn process_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.process_id.clone()).collect()
    }

    /// Kills process `i` with SIGKILL (no goodbye: its sockets are closed
    /// by the kernel, its listings stay in Redis) and waits for it.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Whether process `i` is still running.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The output of every process, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let log = node.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "--- process {i} ({} on {}), last {} lines\n{}\n",
                node.process_id,
                node.port,
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }

    /// What the scripts ask for (`@<request>` lines, see
    /// [`run_script_with_args`]): `kill <i>`, `redis stop`, `redis start`,
    /// `alive <i>`.
    fn handle(&mut self, request: &str) -> Result<String, String> {
        let words: Vec<&str> = request.split_whitespace().collect();
        match words[..] {
            ["kill", i] => {
                let i: usize = i.parse().map_err(|e| format!("{e}"))?;
                self.kill(i);
                Ok("killed".into())
            }
            ["alive", i] => {
                let i: usize = i.parse().map_err(|e| format!("{e}"))?;
                Ok(self.is_running(i).to_string())
            }
            ["redis", "stop"] => {
                self.redis.stop();
                Ok("stopped".into())
            }
            ["redis", "start"] => {
                self.redis.restart();
                Ok("started".into())
            }
            _ => Err(format!("unknown request {request:?}")),
        }
    }

    /// Runs `tests/node/sdk/<script>` with the arguments
    /// `<port,port,…> <processId,processId,…>` and then `extra`, answering
    /// its requests; panics with its output and the processes' unless it
    /// exits 0 within `timeout`.
    pub fn run_script(&mut self, script: &str, extra: &[&str], timeout: Duration) {
        let ports = self
            .ports()
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ids = self.process_ids().join(",");
        let mut args = vec![ports.as_str(), ids.as_str()];
        args.extend_from_slice(extra);
        let result = run_script_with_args(script, &args, timeout, |request| self.handle(request));
        if let Err(report) = result {
            panic!("{report}\n{}", self.logs());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        // `redis` stops itself.
    }
}

fn reply(stdin: &mut Option<ChildStdin>, text: &str) {
    if let Some(pipe) = stdin {
        if writeln!(pipe, "{text}")
            .and_then(|()| pipe.flush())
            .is_err()
        {
            *stdin = None;
        }
    }
}

/// Runs `tests/node/sdk/<script>` with `args`. A line `@<request>` on its
/// stdout is a request to the test: `on_request` answers it, and the answer
/// (`ok <text>` or `error <text>`) goes to the script's stdin as one line.
/// Returns its stdout (printed) when it exits 0 within `timeout`, else a
/// report with its output.
pub fn run_script_with_args(
    script: &str,
    args: &[&str],
    timeout: Duration,
    mut on_request: impl FnMut(&str) -> Result<String, String>,
) -> Result<(), String> {
    ensure_npm_install();
    let path = node_dir().join("sdk").join(script);
    let mut child = Command::new("node")
        .arg(&path)
        .args(args)
        .current_dir(node_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take();
    let stdout = Log::default();
    let stderr = Log::default();
    let (tx, lines) = mpsc::channel();
    let out_reader = drain(
        child.stdout.take().expect("piped"),
        stdout.clone(),
        Some(tx),
    );
    let err_reader = drain(child.stderr.take().expect("piped"), stderr.clone(), None);
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(request) = line.strip_prefix('@') {
                    let answer = match on_request(request) {
                        Ok(text) => format!("ok {text}"),
                        Err(text) => format!("error {text}"),
                    };
                    reply(&mut stdin, &answer);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    drop(stdin);
    let status = child.wait().expect("node waited for");
    let _ = out_reader.join();
    let _ = err_reader.join();
    let stdout = stdout
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let stderr = stderr
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if timed_out {
        Err(format!(
            "{script} timed out after {timeout:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ))
    } else if status.success() {
        print!("{stdout}");
        Ok(())
    } else {
        Err(format!(
            "{script} failed ({status})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ))
    }
}
