//! What the client tests share: the test room (in Rust for Roomcast, in
//! JavaScript for the Node reference server, the same behaviour), the
//! servers started on free loopback ports, a TCP proxy that can cut every
//! connection (a forced drop), and the scenarios run against both servers.

#![allow(dead_code, reason = "each test binary uses part of this module")]

pub(crate) mod scenarios;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast::schema::{ArraySchema, Encoder, MapSchema, Schema};
use roomcast::transport::Transport;
use roomcast::{Client, Options, Room, RoomCtx, Server, ServerError, WebSocketTransport};
use roomcast_client::{Room as ClientRoom, RoomEvent, RoomState};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A player of the test room.
#[derive(Schema, Default, Debug)]
#[schema(crate = "roomcast::schema", decode)]
pub(crate) struct Player {
    /// The `name` join option.
    pub(crate) name: String,
    /// A position.
    pub(crate) x: f32,
}

/// The test room's state (`tests/node-room.mjs` declares the same).
#[derive(Schema, Default, Debug)]
#[schema(crate = "roomcast::schema", decode)]
pub(crate) struct World {
    /// Players by session id.
    pub(crate) players: MapSchema<Player>,
    /// Lines received by `log`.
    pub(crate) counter: u32,
    /// The `log` messages' texts.
    pub(crate) log: ArraySchema<String>,
}

/// The test room: `echo` and `7` send the payload back, `bin` (bytes)
/// sends the bytes back, `log` appends to the state, `kick` closes the
/// client with the given code, `fail` sends ERROR 4321; `password:
/// "wrong"` is refused with 4401; requests `ask` answer `{got: payload}`,
/// `ask-fail` fail with 4444; a dropped client's seat is held 10 s
/// unless it joined with `hold: false`.
#[derive(Default)]
pub(crate) struct TestRoom;

impl Room for TestRoom {
    type State = Encoder<World>;
    /// Whether its seat is held after a drop.
    type UserData = bool;
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.set_state(Encoder::new(World::default()));
        ctx.on_message("echo", |_, ctx, client, v: serde_json::Value| {
            ctx.send(client, "echo", &v);
        });
        ctx.on_message(7, |_, ctx, client, v: serde_json::Value| {
            ctx.send(client, 7, &v);
        });
        ctx.on_message("log", |_, ctx, _client, text: String| {
            let mut world = ctx.state_mut();
            world.log_mut().push(text);
            let n = world.counter + 1;
            world.set_counter(n);
        });
        ctx.on_message("kick", |_, ctx, client, code: u16| {
            ctx.leave(client, code);
        });
        ctx.on_message("fail", |_, ctx, client, _: serde::de::IgnoredAny| {
            ctx.error(client, 4321, "failed on purpose");
        });
        ctx.on_message("ask", |_, _ctx, _client, v: serde_json::Value| {
            Ok::<_, ServerError>(serde_json::json!({ "got": v }))
        });
        ctx.on_message("ask-fail", |_, _ctx, _client, _: serde::de::IgnoredAny| {
            Err::<(), _>(ServerError::new(4444, "no"))
        });
        ctx.on_any_message(|_, ctx, client, ty, value| {
            if let roomcast::msgpack::Value::Bin(bytes) = value {
                ctx.send_bytes(client, ty.clone(), bytes);
            }
        });
        Ok(())
    }

    async fn on_auth(
        &mut self,
        _: &mut RoomCtx<Self>,
        _: &Client,
        options: &Options,
        _: &roomcast::AuthRequest,
    ) -> Result<(), ServerError> {
        if options["password"] == "wrong" {
            return Err(ServerError::new(4401, "bad password"));
        }
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        let name = options["name"].as_str().unwrap_or_default().to_owned();
        if let Some(hold) = ctx.user_data_mut(client) {
            *hold = options["hold"] != false;
        }
        ctx.state_mut()
            .players_mut()
            .insert(client.session_id(), Player { name, x: 0.0 });
        Ok(())
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        if ctx.user_data(client) != Some(&true) {
            return;
        }
        let reconnection = ctx.allow_reconnection(client, Some(Duration::from_secs(10)));
        ctx.spawn(reconnection, |_, _ctx, _outcome| {});
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
        ctx.state_mut().players_mut().remove(client.session_id());
    }
}

/// A server serving until dropped.
pub(crate) struct Served {
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    task: Option<JoinHandle<()>>,
    node: Option<roomcast_tests::node::NodeServer>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        // The Node server is killed by its own Drop.
    }
}

/// Roomcast serving the room `test` (in the current runtime).
pub(crate) async fn roomcast_server() -> Served {
    let server = Server::builder().define("test", TestRoom::default).build();
    let transport = WebSocketTransport::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = transport.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = transport.serve(server).await;
    });
    Served {
        port,
        task: Some(task),
        node: None,
    }
}

/// The Node reference server (`@colyseus/core` 0.18.17) serving the room
/// `test` of `tests/node-room.mjs` (started off the runtime's workers:
/// installing and starting it blocks).
pub(crate) fn node_server() -> Served {
    tokio::task::block_in_place(start_node_server)
}

fn start_node_server() -> Served {
    let node = roomcast_tests::node::NodeServer::start(include_str!("../node-room.mjs"));
    Served {
        port: node.port,
        task: None,
        node: Some(node),
    }
}

/// A TCP proxy to a server: [`cut`](Self::cut) ends every connection at
/// once without a WebSocket close (a network loss), [`refuse`](Self::refuse)
/// stops accepting new ones.
pub(crate) struct Proxy {
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:target`.
    pub(crate) async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task);
            }
        });
        Self {
            port,
            accept,
            connections,
        }
    }

    /// Ends every current connection (both sides see the TCP connection
    /// end with no close frame).
    pub(crate) fn cut(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Stops accepting connections (attempts are refused).
    pub(crate) fn refuse(&self) {
        self.accept.abort();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The next event of `room` matching `want`, within 10 s (panics
/// otherwise, listing the events skipped).
pub(crate) async fn until<S: RoomState>(
    room: &mut ClientRoom<S>,
    mut want: impl FnMut(&ClientRoom<S>, &RoomEvent) -> bool,
) -> RoomEvent {
    let mut seen = Vec::new();
    let wait = async {
        while let Some(event) = room.recv().await {
            if want(room, &event) {
                return Some(event);
            }
            seen.push(format!("{event:?}"));
        }
        None
    };
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the room ended; events: {seen:?}"),
        Err(_) => panic!("timed out; events: {seen:?}"),
    }
}
