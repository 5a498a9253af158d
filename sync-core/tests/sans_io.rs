//! A room run through the public driver API by a shell written here: no
//! server, no runtime, no sockets. CI runs it without the `server` feature
//! (`cargo test -p roomcast --no-default-features --test sans_io`), which
//! proves the room core stands alone.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use roomcast::msgpack::Value;
use roomcast::testing::{decode_frame, Received};
use roomcast::{
    Client, ConnId, ConnectRequest, LocalPresence, MessageType, NoState, Options, Result, Room,
    RoomCore, RoomCtx, RoomDriver, TransmitKind,
};

/// A room that counts, greets on a timer, and holds a dropped player's
/// seat with a task that awaits the reconnection.
#[derive(Default)]
struct Tally {
    total: i64,
    away: Vec<String>,
    left: Vec<(String, u16)>,
}

#[roomcast::room]
impl Room for Tally {
    type State = NoState;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result {
        ctx.on_message("add", |tally, ctx, _, n: i64| {
            tally.total += n;
            ctx.broadcast("total", &tally.total, ());
        });
        Ok(())
    }

    async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: &Options) -> Result {
        let client = client.clone();
        ctx.clock_mut()
            .set_timeout(Duration::from_secs(1), move |_, ctx| {
                ctx.send(&client, "hello", "a second later");
            });
        Ok(())
    }

    async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _: u16) {
        self.away.push(client.session_id().to_owned());
        let reconnection = ctx.allow_reconnection(client, 10);
        ctx.spawn_task(|room| async move {
            let Ok(client) = reconnection.await else {
                return;
            };
            room.with(move |tally, ctx| {
                tally.away.retain(|id| id != client.session_id());
                ctx.send(&client, "welcome_back", &tally.total);
            })
            .await;
        });
    }

    async fn on_leave(&mut self, _: &mut RoomCtx<Self>, client: &Client, code: u16) {
        self.left.push((client.session_id().to_owned(), code));
    }
}

/// Polls a future that waits for nothing outside the room (every future
/// of `Tally` completes at its first poll).
fn ready<T>(future: impl Future<Output = T>) -> T {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the room waited for something outside it"),
    }
}

/// The shell: a fake clock, and what each connection received.
struct Shell {
    driver: RoomDriver<Tally>,
    now: Instant,
    inbox: HashMap<ConnId, Vec<Received>>,
}

impl Shell {
    fn new() -> Self {
        let now = Instant::now();
        let core = RoomCore::new(now, "tally", Arc::new(LocalPresence::default()));
        let driver = ready(RoomDriver::create(Tally::default(), core, &Options::Null)).unwrap();
        let mut shell = Self {
            driver,
            now,
            inbox: HashMap::new(),
        };
        shell.settle();
        shell
    }

    /// Runs what the last input caused: hooks, ready tasks, transmits.
    fn settle(&mut self) {
        loop {
            ready(self.driver.run_events());
            let mut cx = Context::from_waker(Waker::noop());
            let Poll::Ready(Some(then)) = self.driver.poll_spawned(&mut cx) else {
                break;
            };
            ready(self.driver.run_continuation(then));
        }
        while let Some(transmit) = self.driver.core_mut().poll_transmit() {
            self.inbox
                .entry(transmit.conn)
                .or_default()
                .push(match transmit.kind {
                    TransmitKind::Frame(frame) => decode_frame(frame),
                    TransmitKind::Close(code) => Received::Closed(code),
                    _ => panic!("a transmit this shell does not know"),
                });
        }
    }

    fn input(&mut self, f: impl FnOnce(&mut RoomCore<Tally>, Instant)) {
        f(self.driver.core_mut(), self.now);
        self.settle();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        while let Some(at) = self.driver.core().poll_timeout().filter(|&at| at <= now) {
            self.input(|core, _| core.handle_timeout(at));
        }
        self.input(|core, now| core.handle_timeout(now));
    }

    /// Reserves a seat and joins on `conn`: the session id and the
    /// reconnection token.
    fn join(&mut self, conn: ConnId) -> (String, String) {
        let now = self.now;
        let session = self
            .driver
            .core_mut()
            .handle_reserve_seat(now, Options::Null)
            .unwrap();
        let request = ConnectRequest::new(session.clone());
        self.input(|core, now| core.handle_connect(now, conn, request));
        let Some(Received::JoinRoom { token, .. }) = self.take(conn).into_iter().next() else {
            panic!("no JOIN_ROOM");
        };
        self.input(|core, now| core.handle_frame(now, conn, &[10]));
        (session, token)
    }

    fn take(&mut self, conn: ConnId) -> Vec<Received> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    fn messages(&mut self, conn: ConnId) -> Vec<(MessageType, Value)> {
        self.take(conn)
            .into_iter()
            .filter_map(|r| match r {
                Received::Message(ty, value) => Some((ty, value)),
                _ => None,
            })
            .collect()
    }
}

fn add(n: u8) -> Vec<u8> {
    // ROOM_DATA "add" with a positive fixint payload.
    vec![0x0d, 0xa3, b'a', b'd', b'd', n]
}

#[test]
fn a_room_runs_through_the_driver_without_a_server() {
    let mut shell = Shell::new();
    let (a, b) = (ConnId(1), ConnId(2));
    shell.join(a);
    shell.join(b);
    shell.take(a);
    shell.take(b);

    shell.input(|core, now| core.handle_frame(now, a, &add(2)));
    shell.input(|core, now| core.handle_frame(now, b, &add(5)));
    let total = |n| -> (MessageType, Value) { ("total".into(), Value::Int(n)) };
    assert_eq!(shell.messages(a), [total(2), total(7)]);
    assert_eq!(shell.messages(b), [total(2), total(7)]);

    // The clock is the shell's: nothing happens until it moves.
    shell.advance(Duration::from_millis(999));
    assert_eq!(shell.messages(a), []);
    shell.advance(Duration::from_millis(1));
    let hello: (MessageType, Value) = ("hello".into(), Value::Str("a second later".into()));
    assert_eq!(shell.messages(a), std::slice::from_ref(&hello));
    assert_eq!(shell.messages(b), [hello]);
}

#[test]
fn a_task_awaits_the_reconnection_while_the_room_serves_others() {
    let mut shell = Shell::new();
    let (a, b) = (ConnId(1), ConnId(2));
    let (session, token) = shell.join(a);
    shell.join(b);

    shell.input(|core, now| core.handle_disconnect(now, a, Some(1006)));
    assert_eq!(shell.driver.room().away, std::slice::from_ref(&session));
    assert!(shell.driver.has_spawned(), "the task waits");

    // Meanwhile the room serves b: the task holds no borrow of it.
    shell.take(b);
    shell.input(|core, now| core.handle_frame(now, b, &add(3)));
    assert_eq!(shell.messages(b), [("total".into(), Value::Int(3))]);

    // a comes back with its token: the task resumes and greets it.
    let now = shell.now;
    assert_eq!(
        shell
            .driver
            .core_mut()
            .handle_reconnect_request(now, &token),
        Ok(session.clone())
    );
    let mut request = ConnectRequest::new(session);
    request.reconnection_token = Some(token);
    let back = ConnId(3);
    shell.input(|core, now| core.handle_connect(now, back, request));
    shell.input(|core, now| core.handle_frame(now, back, &[10]));
    assert_eq!(
        shell.messages(back),
        [("welcome_back".into(), Value::Int(3))]
    );
    assert!(shell.driver.room().away.is_empty());
    assert!(shell.driver.room().left.is_empty());
    assert!(!shell.driver.has_spawned(), "the task is done");
}

#[test]
fn a_task_whose_client_does_not_come_back_ends_and_on_leave_runs() {
    let mut shell = Shell::new();
    let a = ConnId(1);
    let (session, _) = shell.join(a);
    shell.input(|core, now| core.handle_disconnect(now, a, Some(1006)));
    shell.advance(Duration::from_secs(10));
    assert_eq!(shell.driver.room().left, [(session.clone(), 1006)]);
    assert_eq!(shell.driver.room().away, [session], "no welcome back");
    assert!(
        !shell.driver.has_spawned(),
        "the task ended with the window"
    );
}

/// Lines said in the room, synchronized.
#[derive(roomcast::schema::Schema, Default)]
#[schema(crate = "roomcast::schema")]
struct Lines {
    said: roomcast::schema::ArraySchema<String>,
}

#[derive(Default)]
struct Say;

#[roomcast::room]
impl Room for Say {
    type State = roomcast::schema::Encoder<Lines>;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>, _: &Options) -> Result {
        ctx.set_state(roomcast::schema::Encoder::new(Lines::default()));
        ctx.on_message("say", |_, ctx, client, text: String| {
            ctx.with_state(|mut lines, out| {
                out.send(client, "before", &lines.said.len());
                lines.said_mut().push(text);
                out.broadcast("after", &lines.said.len(), ());
            });
        });
        Ok(())
    }
}

#[test]
fn with_state_sends_what_was_queued_in_order_once_the_state_is_let_go() {
    let mut h = roomcast::testing::RoomHarness::new(Say, &Options::Null).unwrap();
    let a = h.join(Options::Null).unwrap();
    h.received(a);
    h.send_message(a, "say", &Value::from("hi"));
    let messages = h.messages(a);
    let expected: [(MessageType, Value); 2] = [
        ("before".into(), Value::Int(0)),
        ("after".into(), Value::Int(1)),
    ];
    assert_eq!(messages, expected);
    assert_eq!(h.ctx().state().said.len(), 1);
}
