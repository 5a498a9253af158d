//! The floor under the load generator's CPU figure: what the kernel alone
//! costs a server process that does nothing but the unavoidable socket
//! work of the loadgen scenario, over loopback, on this machine.
//!
//! ```text
//! cargo run --release -p roomcast --example sendfloor -- --clients 500 --seconds 10
//! ```
//!
//! The server (a child process, so that its CPU is read from `/proc`) holds
//! C TCP connections. Every 50 ms it writes one frame of the size of a
//! loadgen patch (1,336 bytes) to each, with one non-blocking write; it reads
//! whatever the clients send (a 40-byte message per client every 100 ms,
//! at the phases loadgen's clients use: spread over the 100 ms, so the
//! server wakes for them as often as a loadgen server does; until
//! 2026-12-08 they all sent in the same few milliseconds, which let the
//! floor take them in fewer wakeups: 150 µs per client-second at 500
//! clients where the spread phases gave 160–206 on the same, loaded,
//! machine). No WebSocket framing, no room, no encoding, no decoding: only
//! the writes and reads any server of that scenario must make (one read
//! per message: a read that empties the socket clears its readiness, so no
//! read is made that can only fail; until 2026-12-08 the floor made one).
//! On loopback the kernel also delivers what the server sends (the
//! receiver's TCP work and its wakeup run inside the sender's `write`), so
//! this is the part of the CPU per client that neither Roomcast nor Node
//! can go below here.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loadgen patch, header included (26.7 kB/s per client at 20 Hz).
const FRAME: usize = 1336;
/// A client's `move` frame.
const MESSAGE: usize = 40;

fn serve(port: u16) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let conns: Arc<std::sync::Mutex<Vec<Arc<TcpStream>>>> = Arc::default();
        let ticking = conns.clone();
        tokio::spawn(async move {
            let frame = vec![0x0f_u8; FRAME];
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let conns = ticking.lock().unwrap().clone();
                for conn in &conns {
                    let _ = conn.try_write(&frame);
                }
            }
        });
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            let tcp = Arc::new(tcp);
            conns.lock().unwrap().push(tcp.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    if tcp.readable().await.is_err() {
                        return;
                    }
                    // A short read emptied the socket: its readiness is
                    // cleared (`WouldBlock` to `try_io`), so the next
                    // `readable` waits instead of allowing a read that can
                    // only fail (Roomcast's reader does the same).
                    let mut got = None;
                    let read = tcp.try_io(tokio::io::Interest::READABLE, || {
                        let n = tcp.try_read(&mut buf)?;
                        got = Some(n);
                        if n > 0 && n < buf.len() {
                            Err(std::io::ErrorKind::WouldBlock.into())
                        } else {
                            Ok(())
                        }
                    });
                    match (got, read) {
                        (Some(0), _) => return,
                        (Some(_), _) => {}
                        (None, Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        (None, _) => return,
                    }
                }
            });
        }
    })
}

async fn client(port: u16, index: u32, until: Instant) {
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let (mut read, mut write) = tcp.into_split();
    let reader = tokio::task::spawn_local(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = read.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    });
    let message = [0x0d_u8; MESSAGE];
    // The same phases as loadgen's clients: their moves arrive spread
    // over the interval, so the server is woken as often as loadgen's.
    let phase = Duration::from_micros(u64::from(index).wrapping_mul(7919) % 100_000);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + phase,
        Duration::from_millis(100),
    );
    while Instant::now() < until {
        tick.tick().await;
        if write.write_all(&message).await.is_err() {
            break;
        }
    }
    reader.abort();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let port = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(2599);
        serve(port).expect("server");
        return;
    }
    let clients: u32 = support::flag(&args, "--clients").unwrap_or(500);
    let seconds: u64 = support::flag(&args, "--seconds").unwrap_or(10);
    let port = support::free_port();
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["serve", &port.to_string()])
        .spawn()
        .expect("server");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let warmup = Duration::from_secs(2);
    let until = Instant::now() + warmup + Duration::from_secs(seconds);
    let threads = support::client_threads(clients, None, move |index| client(port, index, until));
    std::thread::sleep(warmup);
    let (u0, s0) = support::cpu_split(server.id());
    let window = Instant::now();
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let (u1, s1) = support::cpu_split(server.id());
    let elapsed = window.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    for thread in threads {
        let _ = thread.join();
    }
    let (user, system) = (u1 - u0, s1 - s0);
    println!(
        "{clients} clients, {seconds} s: server user {user:.2} s, system {system:.2} s; \
         {:.1} µs of CPU per client per second",
        (user + system) / elapsed / f64::from(clients) * 1e6
    );
}
