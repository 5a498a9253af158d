//! The monitor's JSON endpoints and `/metrics` over real sockets: 401 and
//! no data without the token or basic credentials; the room list, a
//! room's clients and decoded state, and the actions (send, disconnect a
//! client, dispose), on a room of the process and, in a cluster on one
//! Redis, on a room of another process; metrics counters that move as
//! clients join, send and leave.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast::msgpack::Value;
use roomcast::schema::{Encoder, MapSchema, Schema};
use std::sync::Arc;

use roomcast::testing::redis::RedisServer;
use roomcast::{
    Client, Method, MonitorConfig, Options, RedisPresence, RedisStore, Room, RoomCtx, Server,
    ServerBuilder, ServerError,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Schema, Default, Debug)]
struct Seat {
    name: String,
    score: u32,
}

#[derive(Schema, Default, Debug)]
struct Table {
    seats: MapSchema<Seat>,
    round: u32,
}

#[derive(Default)]
struct Player {
    name: String,
}

/// A room with a state: each client gets a seat; `score` adds to it.
#[derive(Default)]
struct Cards;

impl Room for Cards {
    type State = Encoder<Table>;
    type UserData = Player;
    type Auth = ();

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
        ctx.set_state(Encoder::new(Table::default()));
        ctx.state_mut().set_round(3);
        ctx.set_metadata(json!({ "mode": "test" }));
        ctx.monitor_user_data(|player| json!({ "name": player.name }));
        ctx.on_message("boom", |_, _, _, _: Value| -> () {
            panic!("boom (a panic the room catches)");
        });
        ctx.on_message("score", |_, ctx, client, by: u32| {
            let mut state = ctx.state_mut();
            let mut seats = state.seats_mut();
            if let Some(mut seat) = seats.get_mut(client.session_id()) {
                let score = seat.score;
                seat.set_score(score + by);
            }
        });
        Ok(())
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        let name = options["name"].as_str().unwrap_or("anon").to_owned();
        if let Some(player) = ctx.user_data_mut(client) {
            player.name.clone_from(&name);
        }
        ctx.state_mut()
            .seats_mut()
            .insert(client.session_id(), Seat { name, score: 0 });
        Ok(())
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: u16) {
        ctx.state_mut().seats_mut().remove(client.session_id());
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn serve(builder: ServerBuilder) -> (Server, u16) {
    let server = builder.define("cards", Cards::default).build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = server.clone();
    tokio::spawn(async move {
        let transport = roomcast::WebSocketTransport::new(listener);
        roomcast::transport::Transport::serve(transport, serving).await
    });
    (server, port)
}

/// Matchmakes over HTTP (so the matchmaking histogram counts it) and
/// joins; the room id and session id.
async fn join(port: u16, name: &str) -> (Ws, String, String) {
    let (status, body) = http(
        port,
        "POST",
        "/matchmake/joinOrCreate/cards",
        &[],
        &json!({ "name": name }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seat: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (room_id, session_id) = (
        seat["roomId"].as_str().unwrap().to_owned(),
        seat["sessionId"].as_str().unwrap().to_owned(),
    );
    let url = format!("ws://127.0.0.1:{port}/p/{room_id}?sessionId={session_id}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let joined = next_binary(&mut ws).await;
    assert_eq!(joined[0], 10, "JOIN_ROOM");
    ws.send(Message::Binary(vec![10].into())).await.unwrap();
    (ws, room_id, session_id)
}

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(frame)))) => return frame.to_vec(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no frame: {other:?}"),
        }
    }
}

/// Waits for a frame whose bytes contain `needle`.
async fn expect_containing(ws: &mut Ws, needle: &[u8]) {
    loop {
        let frame = next_binary(ws).await;
        if frame.windows(needle.len()).any(|w| w == needle) {
            return;
        }
    }
}

/// Waits for the close frame; its code.
async fn closed(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(_) => return None,
            Err(_) => panic!("not closed within 10 s"),
        }
    }
}

/// `ROOM_DATA` `score` with a msgpack uint payload.
fn score(by: u8) -> Message {
    let mut frame = vec![13, 0xa5];
    frame.extend_from_slice(b"score");
    frame.push(by);
    Message::Binary(frame.into())
}

/// One HTTP/1.1 request on a fresh connection: status and body.
async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if method == "POST" {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response))
        .await
        .expect("response within 10 s")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

const TOKEN: (&str, &str) = ("Authorization", "Bearer t0ken");

/// The value of the series `name` (with its labels) in a scrape.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_requests_get_401_and_no_data() {
    let (server, port) = serve(Server::builder().monitor(MonitorConfig::token("t0ken"))).await;
    let seat = server
        .matchmake(Method::Create, "cards", json!({}))
        .await
        .unwrap();
    let room_id = seat.room.room_id.clone();
    let paths = [
        ("GET", "/monitor".to_owned()),
        ("GET", "/monitor/".to_owned()),
        ("GET", "/monitor/api/rooms".to_owned()),
        ("GET", format!("/monitor/api/rooms/{room_id}")),
        ("POST", format!("/monitor/api/rooms/{room_id}/dispose")),
        ("POST", format!("/monitor/api/rooms/{room_id}/send")),
    ];
    for credentials in [
        &[][..],
        &[("Authorization", "Bearer wrong")][..],
        &[("Authorization", "Bearer t0ken2")][..],
        &[("Authorization", "Basic dDBrZW4=")][..],
    ] {
        for (method, path) in &paths {
            let (status, body) = http(port, method, path, credentials, "").await;
            assert_eq!(status, 401, "{method} {path} with {credentials:?}");
            assert!(!body.contains(&room_id), "{body}");
            assert!(!body.contains("<html"), "{body}");
        }
    }
    let (status, _) = http(port, "GET", "/monitor/?token=nope", &[], "").await;
    assert_eq!(status, 401);
    // The room survived the refused dispose.
    assert!(server.has_room(&room_id));

    // The right token, as a header or in the page's URL.
    let (status, body) = http(port, "GET", "/monitor/api/rooms", &[TOKEN], "").await;
    assert_eq!(status, 200);
    assert!(body.contains(&room_id), "{body}");
    let (status, body) = http(port, "GET", "/monitor/?token=t0ken", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("Roomcast monitor"), "{body}");

    // Basic authentication.
    let (server, port) = serve(
        Server::builder().monitor(MonitorConfig::basic("admin", "s3cret").path("/ops/monitor/")),
    )
    .await;
    server
        .matchmake(Method::Create, "cards", json!({}))
        .await
        .unwrap();
    let (status, _) = http(port, "GET", "/ops/monitor/api/rooms", &[], "").await;
    assert_eq!(status, 401);
    let wrong = ("Authorization", "Basic YWRtaW46d3Jvbmc="); // admin:wrong
    let (status, _) = http(port, "GET", "/ops/monitor/api/rooms", &[wrong], "").await;
    assert_eq!(status, 401);
    let right = ("Authorization", "Basic YWRtaW46czNjcmV0"); // admin:s3cret
    let (status, body) = http(port, "GET", "/ops/monitor/api/rooms", &[right], "").await;
    assert_eq!(status, 200, "{body}");
    // Not served where it was not put, nor when not enabled.
    let (status, _) = http(port, "GET", "/monitor/api/rooms", &[right], "").await;
    assert_ne!(status, 200);
    let (status, _) = http(port, "GET", "/metrics", &[], "").await;
    assert_ne!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_shows_clients_and_state_and_acts_on_the_room() {
    let (_server, port) = serve(Server::builder().monitor(MonitorConfig::token("t0ken"))).await;
    let (mut ana, room_id, ana_id) = join(port, "ana").await;
    let (mut bob, _, bob_id) = join(port, "bob").await;
    ana.send(score(5)).await.unwrap();
    expect_containing(&mut bob, &[5]).await;

    let (status, body) = http(port, "GET", "/monitor/api/rooms", &[TOKEN], "").await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let room = &list["rooms"][0];
    assert_eq!(room["roomId"], room_id.as_str());
    assert_eq!(room["name"], "cards");
    assert_eq!(room["clients"], 2);
    assert_eq!(room["metadata"], json!({ "mode": "test" }));
    assert_eq!(room["local"], true);
    assert!(room["patchesPerSecond"].is_number(), "{room}");
    assert!(room["bytesPerSecond"].is_number(), "{room}");

    let path = format!("/monitor/api/rooms/{room_id}");
    let (status, body) = http(port, "GET", &path, &[TOKEN], "").await;
    assert_eq!(status, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    let clients = detail["clientDetails"].as_array().unwrap();
    assert_eq!(clients.len(), 2, "{detail}");
    let ana_info = clients.iter().find(|c| c["sessionId"] == ana_id.as_str());
    assert_eq!(ana_info.unwrap()["userData"], json!({ "name": "ana" }));
    assert!(clients.iter().all(|c| c["joinedAt"].is_u64()), "{detail}");
    assert_eq!(detail["state"]["round"], 3, "{detail}");
    assert_eq!(
        detail["state"]["seats"][ana_id.as_str()],
        json!({ "name": "ana", "score": 5 })
    );
    assert_eq!(detail["state"]["seats"][bob_id.as_str()]["name"], "bob");

    // A message to one client, then to all.
    let send = format!("/monitor/api/rooms/{room_id}/send");
    let body = json!({ "type": "notice", "message": "only-bob", "sessionId": bob_id }).to_string();
    let (status, _) = http(port, "POST", &send, &[TOKEN], &body).await;
    assert_eq!(status, 200);
    expect_containing(&mut bob, b"only-bob").await;
    let body = json!({ "type": "notice", "message": "everyone" }).to_string();
    let (status, _) = http(port, "POST", &send, &[TOKEN], &body).await;
    assert_eq!(status, 200);
    expect_containing(&mut ana, b"everyone").await;
    expect_containing(&mut bob, b"everyone").await;
    let body = json!({ "type": "notice", "sessionId": "nobody" }).to_string();
    let (status, _) = http(port, "POST", &send, &[TOKEN], &body).await;
    assert_eq!(status, 404);

    // Disconnect ana: closed with 4000, gone from the room.
    let kick = format!("/monitor/api/rooms/{room_id}/clients/{ana_id}/disconnect");
    let (status, _) = http(port, "POST", &kick, &[TOKEN], "").await;
    assert_eq!(status, 200);
    assert_eq!(closed(&mut ana).await, Some(4000));
    let (_, body) = http(port, "GET", &path, &[TOKEN], "").await;
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        detail["clientDetails"].as_array().unwrap().len(),
        1,
        "{detail}"
    );
    assert!(detail["state"]["seats"].get(ana_id.as_str()).is_none());

    // Not from a form of another site (no JSON content type).
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let form = format!(
        "POST /monitor/api/rooms/{room_id}/dispose HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer t0ken\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(form.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 415"), "{answer}");

    // Dispose: bob is closed, the room unlisted.
    let dispose = format!("/monitor/api/rooms/{room_id}/dispose");
    let (status, _) = http(port, "POST", &dispose, &[TOKEN], "").await;
    assert_eq!(status, 200);
    assert!(closed(&mut bob).await.is_some());
    for _ in 0..100 {
        let (_, body) = http(port, "GET", "/monitor/api/rooms", &[TOKEN], "").await;
        if !body.contains(&room_id) {
            let (status, _) = http(port, "GET", &path, &[TOKEN], "").await;
            assert_eq!(status, 404);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the disposed room stayed listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_counters_move() {
    let (_server, port) = serve(Server::builder().metrics("/metrics")).await;
    let scrape = || async {
        let (status, body) = http(port, "GET", "/metrics", &[], "").await;
        assert_eq!(status, 200);
        body
    };
    let before = scrape().await;
    // Families show once a room of the name exists.
    assert!(!before.contains("roomcast_joins_total{"), "{before}");
    assert!(
        before.contains("# TYPE roomcast_panics_caught counter"),
        "{before}"
    );

    let (mut ana, _, _) = join(port, "ana").await;
    let (mut bob, _, _) = join(port, "bob").await;
    for by in 1..=4 {
        ana.send(score(by)).await.unwrap();
    }
    expect_containing(&mut bob, &[10]).await; // 1 + 2 + 3 + 4
    let during = scrape().await;
    let room = "{room=\"cards\"}";
    assert_eq!(sample(&during, &format!("roomcast_rooms{room}")), 1.0);
    assert_eq!(sample(&during, &format!("roomcast_clients{room}")), 2.0);
    assert_eq!(sample(&during, &format!("roomcast_joins_total{room}")), 2.0);
    // The two JOIN_ROOM acks and the four messages.
    assert!(sample(&during, &format!("roomcast_messages_in_total{room}")) >= 6.0);
    assert!(sample(&during, &format!("roomcast_received_bytes_total{room}")) >= 6.0 * 4.0);
    assert!(sample(&during, &format!("roomcast_messages_out_total{room}")) >= 4.0);
    assert!(sample(&during, &format!("roomcast_sent_bytes_total{room}")) > 0.0);
    assert!(
        sample(
            &during,
            &format!("roomcast_patch_encode_seconds_count{room}")
        ) >= 1.0
    );
    // Patches are written out as they are encoded: the broadcasts follow
    // the encodes (a scrape can fall between the two: at most one apart).
    let mut scraped = during.clone();
    for _ in 0..100 {
        if sample(
            &scraped,
            &format!("roomcast_patch_broadcast_seconds_count{room}"),
        ) >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        scraped = scrape().await;
    }
    let encoded = sample(
        &scraped,
        &format!("roomcast_patch_encode_seconds_count{room}"),
    );
    let broadcast = sample(
        &scraped,
        &format!("roomcast_patch_broadcast_seconds_count{room}"),
    );
    assert!(broadcast >= 1.0 && encoded - broadcast <= 1.0, "{scraped}");
    assert_eq!(
        sample(
            &during,
            "roomcast_matchmake_seconds_count{method=\"joinOrCreate\"}"
        ),
        2.0
    );
    // A panicking handler: caught, counted (the counter is the process's).
    let panics = sample(&during, "roomcast_panics_caught_total");
    let mut boom = vec![13, 0xa4];
    boom.extend_from_slice(b"boom");
    boom.push(0xc0);
    bob.send(Message::Binary(boom.into())).await.unwrap();
    expect_containing(&mut bob, b"panicked").await; // its ERROR 526
    let during = scrape().await;
    assert!(sample(&during, "roomcast_panics_caught_total") > panics);

    // A consented leave.
    ana.send(Message::Binary(vec![12].into())).await.unwrap();
    let _ = closed(&mut ana).await;
    let mut after = scrape().await;
    for _ in 0..100 {
        if sample(&after, &format!("roomcast_leaves_total{room}")) == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = scrape().await;
    }
    assert_eq!(sample(&after, &format!("roomcast_leaves_total{room}")), 1.0);
    assert_eq!(sample(&after, &format!("roomcast_clients{room}")), 1.0);
    drop(bob);
}

/// Two processes on one Redis: the monitor of B shows and acts on a room
/// held by A, through the cluster's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_of_another_process_reaches_the_room() {
    let redis = RedisServer::start();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let presence = RedisPresence::connect(&redis.url()).await.unwrap();
        let store = RedisStore::connect(&presence, "monitor:").await.unwrap();
        let builder = Server::builder()
            .presence(Arc::new(presence))
            .store(Arc::new(store))
            .monitor(MonitorConfig::token("t0ken"));
        nodes.push(serve(builder).await);
    }
    let ((a, a_port), (b, b_port)) = (nodes[0].clone(), nodes[1].clone());
    let (mut ana, room_id, ana_id) = join(a_port, "ana").await;
    // Bob keeps the room alive once ana is gone.
    let (mut bob, _, _) = join(a_port, "bob").await;
    assert!(a.has_room(&room_id) && !b.has_room(&room_id));
    ana.send(score(7)).await.unwrap();
    expect_containing(&mut ana, &[7]).await;

    // B lists A's room, not as its own, and shows its clients and state.
    let (_, body) = http(b_port, "GET", "/monitor/api/rooms", &[TOKEN], "").await;
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed = list["rooms"].as_array().unwrap();
    let room = listed.iter().find(|r| r["roomId"] == room_id.as_str());
    let room = room.unwrap_or_else(|| panic!("{list}"));
    assert_eq!(room["local"], false);
    assert_eq!(room["processId"], a.config().process_id.as_str());
    let path = format!("/monitor/api/rooms/{room_id}");
    let (status, body) = http(b_port, "GET", &path, &[TOKEN], "").await;
    assert_eq!(status, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["local"], false, "{detail}");
    let clients = detail["clientDetails"].as_array().unwrap();
    let ana_info = clients.iter().find(|c| c["sessionId"] == ana_id.as_str());
    assert_eq!(ana_info.unwrap()["userData"], json!({ "name": "ana" }));
    assert_eq!(detail["state"]["seats"][ana_id.as_str()]["score"], 7);

    // Send and disconnect through B.
    let send = format!("/monitor/api/rooms/{room_id}/send");
    let body = json!({ "type": "notice", "message": "from-b" }).to_string();
    let (status, body) = http(b_port, "POST", &send, &[TOKEN], &body).await;
    assert_eq!(status, 200, "{body}");
    expect_containing(&mut ana, b"from-b").await;
    let kick = format!("/monitor/api/rooms/{room_id}/clients/nobody/disconnect");
    let (status, _) = http(b_port, "POST", &kick, &[TOKEN], "").await;
    assert_eq!(status, 404);
    let kick = format!("/monitor/api/rooms/{room_id}/clients/{ana_id}/disconnect");
    let (status, _) = http(b_port, "POST", &kick, &[TOKEN], "").await;
    assert_eq!(status, 200);
    assert_eq!(closed(&mut ana).await, Some(4000));

    // Dispose through B.
    let dispose = format!("/monitor/api/rooms/{room_id}/dispose");
    let (status, body) = http(b_port, "POST", &dispose, &[TOKEN], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(closed(&mut bob).await.is_some());
    for _ in 0..200 {
        if !a.has_room(&room_id) {
            drop(b);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the room held by A was not disposed through B's monitor");
}
