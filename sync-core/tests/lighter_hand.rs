//! The short forms of a room (issue 17, "A lighter hand"), run through the
//! harness: hooks written with only the parameters they use, `on_create`
//! and `on_join` without `-> Result`, `Auth` taken from `on_auth`, a state
//! of default data there from the start, `set_state` with the data alone,
//! `ctx.auth` without `Option`, and a lenient payload read like a JS
//! object and refused with `invalid_payload`.

use roomcast::prelude::*;
use roomcast::testing::{Received, RoomHarness};
use roomcast::NoState;
use serde_json::json;

#[derive(Schema, Default)]
struct Seats {
    taken: MapSchema<String>,
    size: u8,
}

/// Records what its hooks received.
#[derive(Default)]
struct Short {
    log: Vec<String>,
    size_before_create: Option<u8>,
}

#[roomcast::room]
impl Room for Short {
    type State = Encoder<Seats>;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, options: &Options) {
        self.size_before_create = Some(ctx.state().size);
        ctx.state_mut()
            .set_size(options["size"].as_u64().unwrap_or(0) as u8);
        ctx.on_message("who", |_, ctx, client, _: Value| {
            let name = ctx.auth(client).clone();
            ctx.send(client, "you", &name);
        });
        ctx.on_message("pos", |_, ctx, client, m: Value| {
            let Some(x) = m["at"][0].as_finite() else {
                return ctx.invalid_payload(client, "pos: at[0] must be a finite number");
            };
            ctx.send(client, "x", &x);
        });
        // The same refusal while the state is borrowed.
        ctx.on_message("seat", |_, ctx, client, m: Value| {
            ctx.with_state(|mut seats, out| {
                let Some(name) = m.as_str() else {
                    return out.invalid_payload(client, "seat: a name");
                };
                seats
                    .taken_mut()
                    .insert(client.session_id(), name.to_owned());
            });
        });
    }

    // Options and the request, without the context.
    async fn on_auth(&mut self, options: &Options, request: &AuthRequest) -> Result<String> {
        self.log.push(format!("auth token={:?}", request.token));
        match options["name"].as_str() {
            Some("") => Err(ServerError::new(4400, "empty name")),
            name => Ok(name.unwrap_or("anonymous").to_owned()),
        }
    }

    // The client and its options, without the context; an early `return`.
    async fn on_join(&mut self, client: &Client, options: &Options) {
        if options["quiet"] == true {
            return;
        }
        let name = client.session_id().len();
        self.log.push(format!("join {name}"));
    }

    async fn on_drop(&mut self, code: u16) {
        self.log.push(format!("drop {code}"));
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, code: u16) {
        let name = ctx.auth(client).clone();
        self.log.push(format!("leave {name} {code}"));
    }
}

/// `Auth` is what `on_auth` returns.
fn auth_of_short(auth: <Short as Room>::Auth) -> String {
    auth
}

fn harness() -> RoomHarness<Short> {
    RoomHarness::new(Short::default(), &json!({ "size": 4 })).expect("created")
}

#[test]
fn a_hook_gets_the_parameters_it_names_in_the_trait_s_order() {
    let mut h = harness();
    let a = h.join(json!({ "name": "ada" })).expect("joins");
    h.join(json!({ "name": "bob", "quiet": true }))
        .expect("joins");
    assert_eq!(
        h.room().log,
        ["auth token=None", "join 9", "auth token=None"],
        "on_join ran to its early return for the quiet one"
    );
    h.disconnect(a, Some(1006));
    assert_eq!(h.room().log[3..], ["drop 1006", "leave ada 1006"]);
    assert_eq!(auth_of_short("x".to_owned()), "x");
}

#[test]
fn on_auth_s_error_still_refuses_the_client() {
    let mut h = harness();
    let refused = h.join(json!({ "name": "" })).expect_err("refused");
    assert_eq!((refused.code, &*refused.message), (4400, "empty name"));
}

#[test]
fn a_state_of_default_data_is_there_before_on_create() {
    let mut h = harness();
    assert_eq!(h.room().size_before_create, Some(0));
    assert_eq!(h.ctx().state().size, 4);
}

#[test]
fn ctx_auth_gives_what_on_auth_returned_and_the_default_once_gone() {
    let mut h = harness();
    let a = h.join(json!({ "name": "ada" })).expect("joins");
    h.send_message(a, "who", &Value::Undefined);
    assert_eq!(h.messages(a), [("you".into(), Value::from("ada"))]);
    let client = h.ctx().clients().next().expect("a client");
    h.disconnect(a, Some(4000));
    assert_eq!(h.ctx().auth(&client), "");
}

#[test]
fn a_lenient_payload_is_read_like_a_js_object_and_refused_without_closing() {
    let mut h = harness();
    let a = h.join(json!({})).expect("joins");
    h.received(a);
    h.send_message(a, "pos", &Value::from(json!({ "at": [2.5, 1] })));
    assert_eq!(h.messages(a), [("x".into(), Value::F64(2.5))]);
    for refused in [json!({ "at": ["2"] }), json!({ "at": [] }), json!(3)] {
        h.send_message(a, "pos", &Value::from(refused));
        assert_eq!(
            h.received(a),
            [Received::Error {
                code: 4217,
                message: "pos: at[0] must be a finite number".into(),
            }]
        );
    }
    h.send_message(a, "pos", &Value::Array(vec![Value::F64(f64::NAN)]));
    h.send_message(
        a,
        "pos",
        &Value::Map(vec![(
            "at".into(),
            Value::Array(vec![Value::F32(f32::INFINITY)]),
        )]),
    );
    assert_eq!(h.received(a).len(), 2, "two errors, no close");
    h.send_message(a, "pos", &Value::from(json!({ "at": [1] })));
    assert_eq!(
        h.messages(a),
        [("x".into(), Value::F64(1.0))],
        "still there"
    );

    h.send_message(a, "seat", &Value::Int(1));
    assert_eq!(
        h.received(a),
        [Received::Error {
            code: 4217,
            message: "seat: a name".into(),
        }]
    );
    h.send_message(a, "seat", &Value::from("ada"));
    assert_eq!(h.ctx().state().taken.len(), 1);
}

/// A state whose data is not `Default`: none until `set_state`.
#[derive(Schema)]
struct Fixed {
    n: u8,
}

#[derive(Default)]
struct Late {
    had_state: Option<bool>,
}

#[roomcast::room]
impl Room for Late {
    type State = Encoder<Fixed>;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>) {
        self.had_state = Some(ctx.sync_state().is_some());
        // The data alone: set_state wraps it in an encoder.
        ctx.set_state(Fixed { n: 7 });
    }
}

#[derive(Default)]
struct Stateless {
    had_state: Option<bool>,
}

#[roomcast::room]
impl Room for Stateless {
    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>) {
        self.had_state = Some(ctx.sync_state().is_some());
    }
}

#[test]
fn other_states_start_as_before() {
    let mut late = RoomHarness::new(Late::default(), &json!({})).expect("created");
    assert_eq!(late.room().had_state, Some(false));
    assert_eq!(late.ctx().state().n, 7);
    let mut stateless = RoomHarness::new(Stateless::default(), &json!({})).expect("created");
    assert_eq!(stateless.room().had_state, Some(false));
    let _: Option<&NoState> = stateless.ctx().sync_state();
}
