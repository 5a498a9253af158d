//! Tic-tac-toe (the Colyseus tutorial's room) on 127.0.0.1: `cargo run -p roomcast --example tictactoe [port]`
//! (default 2567), then join "tictactoe" with the JS SDK. The room is in
//! `examples/rooms/tictactoe.rs`.

#[path = "rooms/tictactoe.rs"]
mod room;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "2567".into());
    let server = roomcast::Server::builder()
        .define("tictactoe", room::TicTacToe::default)
        .build();
    println!("tictactoe: http://127.0.0.1:{port}");
    server.listen(format!("127.0.0.1:{port}")).await
}
