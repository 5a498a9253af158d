//! The server's CPU and memory, sampled from `/proc/<pid>` (Linux).

use std::time::{Duration, Instant};

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: Linux's `USER_HZ`,
/// 100 on every architecture it reports to user space in.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    at: Instant,
    /// utime + stime, in ticks.
    cpu_ticks: u64,
    rss_bytes: u64,
    /// `rchar` and `wchar` of `/proc/<pid>/io`, when readable.
    io: Option<(u64, u64)>,
}

/// Reads `/proc/<pid>/stat` (CPU) and `/proc/<pid>/status` (`VmRSS`).
pub(crate) fn read(pid: u32) -> Result<Reading, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // the fields after the last ')' start at field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("/proc/{pid}/stat: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15: indexes 11 and 12 here.
    let tick = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {}", i + 3))
    };
    let cpu_ticks = tick(11)? + tick(12)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Reading {
        at: Instant::now(),
        cpu_ticks,
        rss_bytes: rss_kib * 1024,
        io: read_io(pid),
    })
}

/// The bytes the process read and wrote through system calls (sockets
/// included): `rchar` and `wchar` of `/proc/<pid>/io`, which only the
/// process's user (or root) may read.
fn read_io(pid: u32) -> Option<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("rchar:")?, field("wchar:")?))
}

/// The server's usage over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerUsage {
    /// The process sampled.
    pub pid: u32,
    /// The number of readings (about one a second).
    pub samples: u64,
    /// CPU time used during the run (user + system), in seconds.
    pub cpu_seconds: f64,
    /// Mean CPU use over the run, in percent of one core.
    pub cpu_percent_mean: f64,
    /// The highest CPU use between two readings, in percent of one core.
    pub cpu_percent_max: f64,
    /// The highest resident set size read, in bytes.
    pub rss_bytes_max: u64,
    /// The last resident set size read, in bytes.
    pub rss_bytes_last: u64,
    /// Bytes the server process read during the run (`rchar` of
    /// `/proc/<pid>/io`): what it got through `read`/`readv`, so sockets
    /// read that way (Node's libuv) and files. Linux leaves
    /// `recv`/`recvmsg` out, with which Rust's std and mio read sockets: 0
    /// for a Roomcast server. `None` when unreadable.
    pub io_read_bytes: Option<u64>,
    /// Bytes it wrote (`wchar`: `write`/`writev`, with which Rust's std,
    /// mio and libuv write sockets; so the clients' bytes in, state
    /// patches and WebSocket framing included, plus its logs).
    pub io_written_bytes: Option<u64>,
    /// Why reading stopped early (the process ended, no `/proc`), if it did.
    pub error: Option<String>,
}

/// Readings of one process, folded as they come.
pub(crate) struct Sampler {
    pid: u32,
    first: Option<Reading>,
    last: Option<Reading>,
    samples: u64,
    cpu_percent_max: f64,
    rss_bytes_max: u64,
    error: Option<String>,
}

impl Sampler {
    pub(crate) fn new(pid: u32) -> Self {
        let mut s = Self {
            pid,
            first: None,
            last: None,
            samples: 0,
            cpu_percent_max: 0.0,
            rss_bytes_max: 0,
            error: None,
        };
        s.sample();
        s
    }

    /// Takes one reading; returns the CPU percent since the previous one
    /// and the RSS.
    pub(crate) fn sample(&mut self) -> Option<(f64, u64)> {
        if self.error.is_some() {
            return None;
        }
        let now = match read(self.pid) {
            Ok(r) => r,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        };
        self.samples += 1;
        self.rss_bytes_max = self.rss_bytes_max.max(now.rss_bytes);
        let percent = self.last.map_or(0.0, |prev| percent(prev, now));
        self.cpu_percent_max = self.cpu_percent_max.max(percent);
        self.first.get_or_insert(now);
        self.last = Some(now);
        Some((percent, now.rss_bytes))
    }

    pub(crate) fn finish(mut self) -> ServerUsage {
        self.sample();
        let (cpu_seconds, cpu_percent_mean) = match (self.first, self.last) {
            (Some(a), Some(b)) => (
                b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / TICKS_PER_SECOND,
                percent(a, b),
            ),
            _ => (0.0, 0.0),
        };
        ServerUsage {
            pid: self.pid,
            samples: self.samples,
            cpu_seconds,
            cpu_percent_mean,
            cpu_percent_max: self.cpu_percent_max,
            rss_bytes_max: self.rss_bytes_max,
            rss_bytes_last: self.last.map_or(0, |r| r.rss_bytes),
            io_read_bytes: io_delta(self.first, self.last, |io| io.0),
            io_written_bytes: io_delta(self.first, self.last, |io| io.1),
            error: self.error,
        }
    }
}

fn io_delta(
    first: Option<Reading>,
    last: Option<Reading>,
    pick: impl Fn((u64, u64)) -> u64,
) -> Option<u64> {
    let (a, b) = (first?.io?, last?.io?);
    Some(pick(b).saturating_sub(pick(a)))
}

fn percent(a: Reading, b: Reading) -> f64 {
    let wall = b.at.duration_since(a.at).max(Duration::from_millis(1));
    let cpu = b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / TICKS_PER_SECOND;
    cpu / wall.as_secs_f64() * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut s = Sampler::new(std::process::id());
        let _ = s.sample();
        let usage = s.finish();
        assert_eq!(usage.error, None);
        assert!(usage.samples >= 2);
        assert!(usage.rss_bytes_max > 0);
        assert!(usage.io_read_bytes.is_some() && usage.io_written_bytes.is_some());
    }

    #[test]
    fn an_unknown_process_is_an_error_not_a_panic() {
        let usage = Sampler::new(u32::MAX).finish();
        assert!(usage.error.is_some());
        assert_eq!(usage.samples, 0);
    }
}
