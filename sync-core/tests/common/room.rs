//! The room the end-to-end scripts talk to.

use std::time::Duration;

use roomcast::msgpack::Value;
use roomcast::{AuthRequest, BroadcastOptions, Client, Options, Room, RoomCtx, ServerError};
use serde::de::IgnoredAny;
use serde_json::json;

use roomcast::schema::{Encoder, Schema};

/// `State { n: number }`, encoded by `roomcast-schema`.
#[derive(Schema, Default, Debug)]
#[schema(crate = "roomcast::schema")]
pub struct CounterState {
    /// The counter.
    #[schema(number)]
    pub n: f64,
}

/// Every Room API feature the SDK scripts exercise, driven by messages.
#[derive(Default)]
pub struct E2eRoom {
    reconnect: Option<Option<Duration>>,
    /// `awaitReconnection`: `on_drop` hands the reconnection to a task
    /// that awaits it (`RoomCtx::spawn_task`), not to a callback.
    await_reconnection: bool,
    /// What `on_auth` saw of each client's connection.
    remotes: std::collections::HashMap<String, serde_json::Value>,
    /// The options `on_create`, and each client's `on_auth` and `on_join`,
    /// received.
    options: std::collections::HashMap<String, serde_json::Value>,
}

impl Room for E2eRoom {
    type State = Encoder<CounterState>;
    type UserData = u32;
    type Auth = String;

    async fn on_create(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        options: &Options,
    ) -> Result<(), ServerError> {
        self.options.insert("create".into(), options.clone());
        ctx.set_state(Encoder::new(CounterState::default()));
        if let Some(max) = options["maxClients"].as_u64() {
            ctx.set_max_clients(Some(max as usize));
        }
        if let Some(seconds) = options["seatTime"].as_f64() {
            ctx.set_seat_reservation_time(Duration::from_secs_f64(seconds));
        }
        if options["private"] == true {
            ctx.set_private(true);
        }
        if options["unlisted"] == true {
            ctx.set_unlisted(true);
        }
        if options["lock"] == true {
            ctx.lock();
        }
        ctx.set_metadata(json!({ "mode": options["mode"].as_str().unwrap_or("classic") }));
        self.reconnect = match &options["reconnect"] {
            serde_json::Value::Number(n) => {
                Some(Some(Duration::from_secs_f64(n.as_f64().unwrap_or(0.0))))
            }
            serde_json::Value::String(s) if s == "manual" => Some(None),
            _ => None,
        };
        self.await_reconnection = options["awaitReconnection"] == true;
        ctx.on_message("inc", |_room, ctx, client, by: i32| {
            let n = ctx.state().n;
            ctx.state_mut().set_n(n + f64::from(by));
            *ctx.user_data_mut(client).unwrap() += 1;
        });
        ctx.on_message("maybe", |_room, ctx, client, n: Option<i32>| {
            ctx.send(client, "maybe", &n);
        });
        ctx.on_message("set", |_room, ctx, _client, n: i32| {
            ctx.state_mut().set_n(f64::from(n));
        });
        ctx.on_message(7, |_room, ctx, client, v: Value| {
            ctx.send(client, 7, &v);
        });
        ctx.on_message("double", |_room, _ctx, _client, n: i64| {
            if n.abs() > 1_000_000 {
                Err(ServerError::new(4409, "too large"))
            } else {
                Ok(n * 2)
            }
        });
        ctx.on_message("chat", |_room, ctx, client, text: String| {
            let message = json!({ "from": client.session_id(), "text": text });
            ctx.broadcast("chat", &message, BroadcastOptions::default().except(client));
        });
        ctx.on_message("after", |_room, ctx, _client, n: i32| {
            ctx.state_mut().set_n(f64::from(n));
            ctx.broadcast("after", &n, BroadcastOptions::default().after_next_patch());
            ctx.broadcast("now", &n, BroadcastOptions::default());
        });
        ctx.on_message("kick", |_room, ctx, client, code: u16| {
            ctx.leave(client, code);
        });
        ctx.on_message("err", |_room, ctx, client, _: IgnoredAny| {
            ctx.error(client, 4321, "nope");
        });
        ctx.on_message("lock", |_room, ctx, _client, _: IgnoredAny| {
            ctx.lock();
        });
        ctx.on_message("unlock", |_room, ctx, _client, _: IgnoredAny| {
            ctx.unlock();
        });
        ctx.on_message("disconnect", |_room, ctx, _client, _: IgnoredAny| {
            ctx.disconnect(None);
        });
        ctx.on_message("reject", |_room, ctx, _client, session: String| {
            if let Some(client) = ctx.client(&session) {
                ctx.reject_reconnection(&client);
            }
        });
        ctx.on_message("whoami", |room, ctx, client, _: IgnoredAny| {
            let reply = json!({
                "sessionId": client.session_id(),
                "auth": ctx.auth(client),
                "messages": ctx.user_data(client),
                "roomId": ctx.room_id(),
                "clients": ctx.client_count(),
                "remote": room.remotes.get(client.session_id()),
                "options": {
                    "create": room.options.get("create"),
                    "auth": room.options.get(&format!("auth {}", client.session_id())),
                    "join": room.options.get(&format!("join {}", client.session_id())),
                },
            });
            ctx.send(client, "whoami", &reply);
        });
        ctx.on_any_message(|_room, ctx, client, ty, payload| {
            let reply = json!({ "type": ty, "payload": payload });
            ctx.send(client, "any", &reply);
        });
        Ok(())
    }

    async fn on_auth(
        &mut self,
        _ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
        request: &AuthRequest,
    ) -> Result<String, ServerError> {
        self.options
            .insert(format!("auth {}", client.session_id()), options.clone());
        self.remotes.insert(
            client.session_id().to_owned(),
            json!({
                "ip": request.remote_addr.map(|a| a.ip().to_string()),
                "host": request.header("Host"),
            }),
        );
        match options["password"].as_str() {
            Some("wrong") => Err(ServerError::new(4401, "bad password")),
            _ => Ok(request
                .token
                .clone()
                .or_else(|| options["name"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "anon".into())),
        }
    }

    async fn on_join(
        &mut self,
        ctx: &mut RoomCtx<Self>,
        client: &Client,
        options: &Options,
    ) -> Result<(), ServerError> {
        self.options
            .insert(format!("join {}", client.session_id()), options.clone());
        let name = ctx.auth(client).clone();
        ctx.send(client, "welcome", &name);
        ctx.broadcast(
            "joined",
            client.session_id(),
            BroadcastOptions::default().except(client),
        );
        Ok(())
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, code: u16) {
        let message = json!({ "sessionId": client.session_id(), "code": code });
        ctx.broadcast("left", &message, BroadcastOptions::default().except(client));
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, code: u16) {
        let message = json!({ "sessionId": client.session_id(), "code": code });
        ctx.broadcast(
            "dropped",
            &message,
            BroadcastOptions::default().except(client),
        );
        let Some(window) = self.reconnect else {
            return;
        };
        let reconnection = ctx.allow_reconnection(client, window);
        let session = client.session_id().to_owned();
        if self.await_reconnection {
            // Colyseus' `await this.allowReconnection(client, s)` in onDrop.
            ctx.spawn_task(|room| async move {
                let outcome = reconnection.await;
                room.with(move |_room, ctx| {
                    // After the wait: the state as others left it meanwhile.
                    let n = ctx.state().n;
                    if let Ok(client) = &outcome {
                        ctx.send(client, "resumed", &n);
                    }
                    let message = json!({ "sessionId": session, "ok": outcome.is_ok(), "n": n });
                    ctx.broadcast("reconnection", &message, BroadcastOptions::default());
                })
                .await;
            });
        } else {
            ctx.spawn(reconnection, move |_room, ctx, outcome| {
                let message = json!({ "sessionId": session, "ok": outcome.is_ok() });
                ctx.broadcast("reconnection", &message, BroadcastOptions::default());
            });
        }
    }

    async fn on_reconnect(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        ctx.send(client, "welcome back", client.session_id());
    }
}
