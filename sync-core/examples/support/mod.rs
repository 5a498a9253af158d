//! What the load examples (`loadgen`, `sendfloor`) share: flags, reading a
//! server process's CPU from `/proc`, and running many clients on one
//! single-threaded runtime per core.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The value after `--name` on the command line.
pub(crate) fn flag<T: FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// utime and stime of a process, in seconds.
pub(crate) fn cpu_split(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    (field(11) / 100.0, field(12) / 100.0)
}

/// A port nothing listens on.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `client(i)` for every `i < clients`, spread over one
/// single-threaded runtime per core (a client's state stays on the thread
/// that made it). With `pause`, each thread waits that long after every 25
/// clients it starts, so that connections ramp up. The threads end when
/// their clients have.
#[allow(
    dead_code,
    reason = "sendfloor's; loadgen's clients are roomcast-loadtest's"
)]
pub(crate) fn client_threads<F, Fut>(
    clients: u32,
    pause: Option<Duration>,
    client: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let client = Arc::new(client);
    (0..workers)
        .map(|worker| {
            let client = client.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let mut tasks = Vec::new();
                    for (n, index) in (worker..clients).step_by(workers as usize).enumerate() {
                        tasks.push(tokio::task::spawn_local(client(index)));
                        if let Some(pause) = pause.filter(|_| n % 25 == 24) {
                            tokio::time::sleep(pause * workers).await;
                        }
                    }
                    for task in tasks {
                        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                    }
                });
            })
        })
        .collect()
}
