//! A chat room on 127.0.0.1: `cargo run -p roomcast --example chat [port]`
//! (default 2567), then join "chat" with the JS SDK. The room is in
//! `examples/rooms/chat.rs`.

#[path = "rooms/chat.rs"]
mod room;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "2567".into());
    let server = roomcast::Server::builder()
        .define("chat", || room::ChatRoom)
        .build();
    println!("chat: http://127.0.0.1:{port}");
    server.listen(format!("127.0.0.1:{port}")).await
}
