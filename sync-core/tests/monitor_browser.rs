//! The monitor page in a real browser: headless Chromium (Debian's
//! `chromium`, driven by `playwright-core` from `tests/node`) loads it
//! against a running server with `@colyseus/sdk` clients in the demo room,
//! checks the room list and the state tree, and disposes of the room from
//! the page (`tests/node/sdk/monitor_browser.mjs`). Screenshots are kept in
//! `<target>/monitor-browser/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::e2e::{ensure_npm_install, node_dir};
use roomcast::{MonitorConfig, Server};

const TOKEN: &str = "browser-t0ken";

/// The Chromium the test drives (`ROOMCAST_CHROMIUM` overrides).
fn chromium() -> PathBuf {
    std::env::var_os("ROOMCAST_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// The cargo target directory this test binary runs from
/// (`<target>/debug/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .nth(3)
        .map_or_else(|| Path::new("target").to_owned(), Path::to_owned)
}

#[test]
fn monitor_page_in_headless_chromium() {
    let chromium = chromium();
    assert!(
        chromium.exists(),
        "{} is missing: the monitor's browser test needs Chromium; install it with \
         `apt-get install chromium` (Debian; .ci/run does), or point ROOMCAST_CHROMIUM at one",
        chromium.display()
    );
    ensure_npm_install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = Server::builder()
        .define("world", || common::demo::DemoRoom)
        .monitor(MonitorConfig::token(TOKEN))
        .build();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        let transport = roomcast::WebSocketTransport::new(listener);
        roomcast::transport::Transport::serve(transport, server).await
    });

    let shots = target_dir().join("monitor-browser");
    let mut child = Command::new("node")
        .arg(node_dir().join("sdk/monitor_browser.mjs"))
        .arg(port.to_string())
        .arg(TOKEN)
        .arg(&shots)
        .env("ROOMCAST_CHROMIUM", &chromium)
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
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.is_some_and(|s| s.success()),
        "monitor_browser.mjs failed ({status:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    print!("{stdout}");
    for shot in [
        "monitor-rooms.png",
        "monitor-room.png",
        "monitor-after-dispose.png",
    ] {
        let path = shots.join(shot);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        assert!(size > 1000, "no screenshot at {}", path.display());
        println!("screenshot: {}", path.display());
    }
}
