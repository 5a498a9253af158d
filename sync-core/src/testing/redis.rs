//! [`RedisServer`](crate::testing::redis::RedisServer) runs Debian's
//! `redis-server` as a child process on a free port of 127.0.0.1, with
//! nothing saved to disk: each test gets its own server, and none assumes
//! anything about port 6379.
//!
//! # Examples
//!
//! ```no_run
//! use roomcast::testing::redis::RedisServer;
//! use roomcast::{Presence, RedisPresence};
//!
//! # async fn run() -> Result<(), roomcast::PresenceError> {
//! let redis = RedisServer::start();
//! let presence = RedisPresence::connect(&redis.url()).await?;
//! presence.set("k", "v").await?;
//! # Ok(())
//! # }
//! ```

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a starting `redis-server` may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried when `redis-server` cannot bind the one picked.
const PORT_ATTEMPTS: usize = 5;

/// A `redis-server` child process on 127.0.0.1, in a fresh temporary
/// directory, saving nothing (`--save "" --appendonly no`). Dropping it
/// kills the process and removes the directory.
///
/// The binary is `/usr/bin/redis-server`, or `redis-server` on `PATH`
/// (Debian: `apt-get install -y redis-server`).
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers (an `INFO`
    /// that shows its own process id, so never another server on that port).
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed (the message says how to
    /// install it) or does not start within 10 seconds; see
    /// [`try_start`](Self::try_start) for the error instead.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), returning the error instead of panicking.
    pub fn try_start() -> io::Result<Self> {
        let binary = find_binary()?;
        let dir = fresh_dir()?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            // Another process may take the port between this probe and
            // redis-server binding it: then try another.
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            match spawn(&binary, &dir, port) {
                Ok(child) => {
                    return Ok(Self {
                        binary,
                        dir,
                        port,
                        child: Some(child),
                    })
                }
                Err(e) => last_error = Some(e),
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Err(last_error.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (the same after [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process is running (started and not [`stop`](Self::stop)ped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process (`SIGKILL`: no goodbye to the clients, whose
    /// connections are closed by the kernel) and waits for it to be gone.
    /// Does nothing when it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs and starts a new, empty one on the same
    /// port, waiting until it answers.
    ///
    /// # Panics
    ///
    /// When it does not start (the port was taken meanwhile, say).
    pub fn restart(&mut self) {
        self.stop();
        // Nothing is saved, but start from an empty directory all the same.
        let _ = fs::remove_dir_all(&self.dir);
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let started = fs::create_dir_all(&self.dir)
                .and_then(|()| spawn(&self.binary, &self.dir, self.port));
            match started {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) => {
                    last_error = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        panic!(
            "redis-server did not start again on port {}: {}",
            self.port,
            last_error.expect("at least one attempt")
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_binary() -> io::Result<PathBuf> {
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.is_file() {
        return Ok(debian);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "redis-server not found (neither /usr/bin/redis-server nor on PATH); \
                 the Redis tests need it: apt-get install -y redis-server",
            )
        })
}

fn fresh_dir() -> io::Result<PathBuf> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "roomcast-redis-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts `redis-server` on `port` with `dir` as its directory and waits
/// until it answers; an error (with the end of its log) when it
/// exits first (port taken, say) or is not ready in time.
fn spawn(binary: &Path, dir: &Path, port: u16) -> io::Result<Child> {
    let log_path = dir.join("redis.log");
    let log = File::create(&log_path)?;
    let mut child = Command::new(binary)
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run {} ({e}); the Redis tests need it: apt-get install -y redis-server",
                    binary.display()
                ),
            )
        })?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "redis-server on port {port} exited ({status}): {}",
                log_tail(&log_path)
            )));
        }
        if answers_as(port, child.id()) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "redis-server on port {port} did not answer within {START_TIMEOUT:?}: {}",
                    log_tail(&log_path)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the Redis on `port` answers and is the process `pid` (not
/// another test's server that held the port while this one failed to bind
/// it).
fn answers_as(port: u16, pid: u32) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reader = BufReader::new(stream);
    if reader.get_mut().write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    // A bulk string: `$LEN\r\n` then LEN bytes and `\r\n`.
    let mut header = String::new();
    if reader.read_line(&mut header).is_err() {
        return false;
    }
    let Some(len) = header
        .strip_prefix('$')
        .and_then(|n| n.trim_end().parse::<usize>().ok())
    else {
        return false; // `-LOADING ...` and the like: not ready
    };
    let mut info = vec![0; len + 2];
    if reader.read_exact(&mut info).is_err() {
        return false;
    }
    String::from_utf8_lossy(&info)
        .lines()
        .any(|line| line.trim_end() == format!("process_id:{pid}"))
}

fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    if tail.is_empty() {
        "(nothing logged)".to_owned()
    } else {
        tail
    }
}
