//! Joins the demo's `world` room (`cargo run` at the workspace root starts
//! it on 127.0.0.1:2567), says hello in the chat, moves, prints the state
//! as it changes and the chat as it comes, and leaves after a few seconds.
//!
//! ```text
//! cargo run -p roomcast-client --example world -- [http://127.0.0.1:2567] [name]
//! ```

use std::time::Duration;

use roomcast_client::{Client, Dynamic, RoomEvent};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoint = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:2567".into());
    let name = args.next().unwrap_or_else(|| "rust".into());
    let client = Client::new(&endpoint)?;
    let mut room = client
        .join_or_create::<Dynamic>("world", &json!({ "name": name }))
        .await?;
    println!("joined {} as {}", room.room_id(), room.session_id());
    room.on_message("chat", |m| {
        if let Ok(line) = m.decode::<serde_json::Value>() {
            println!("chat: {}: {}", line["name"], line["text"]);
        }
    });
    room.send("chat", "hello from Rust")?;
    room.send("move", &json!({ "x": 120, "y": 80 }))?;
    let stop = tokio::time::sleep(Duration::from_secs(3));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            event = room.recv() => match event {
                Some(RoomEvent::StateChange { .. }) => {
                    if let Some(state) = room.state() {
                        println!("state: {}", state.to_json());
                    }
                }
                Some(RoomEvent::Leave { code, .. }) => {
                    println!("the room ended ({code})");
                    return Ok(());
                }
                None => return Ok(()),
                Some(other) => println!("{other:?}"),
            },
        }
    }
    println!("left with code {}", room.leave(true).await);
    Ok(())
}
