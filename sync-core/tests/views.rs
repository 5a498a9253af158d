//! Per-client views in the room layer (`RoomCtx::create_view`, Colyseus's
//! `client.view`): each client decodes the shared patches plus its view's
//! part, and holds exactly what it should see (hands, cards dealt with
//! push / shift / insert, purses), through joins, reveals, deals, conceals,
//! leaves and a reconnection.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cards::{CardsRoom, Revealed, Table};
use roomcast::msgpack::Value;
use roomcast::schema::decoder::Decoder;
use roomcast::testing::{Received, RoomHarness};
use roomcast::{ConnId, ConnectRequest};
use serde_json::json;

/// A client: its connection, session, reconnection token and decoder.
struct Player {
    conn: ConnId,
    session: String,
    token: String,
    state: Decoder<Table>,
}

fn join(h: &mut RoomHarness<CardsRoom>, name: &str) -> Player {
    let session = h.reserve_seat(json!({ "name": name })).unwrap();
    let conn = h.connect(ConnectRequest::new(session.clone()));
    let Received::JoinRoom { token, .. } = h.received(conn).remove(0) else {
        panic!("no JOIN_ROOM");
    };
    h.send(conn, &[0x0a]);
    let mut p = Player {
        conn,
        session,
        token,
        state: Decoder::new().unwrap(),
    };
    apply(h, &mut p);
    p
}

/// Applies everything the client received.
fn apply(h: &mut RoomHarness<CardsRoom>, p: &mut Player) {
    for r in h.received(p.conn) {
        match r {
            Received::State(b) | Received::Patch(b) => {
                p.state.decode(&b).expect("a valid state message");
            }
            Received::Message(..) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The decoded table as JSON, in the shape of `CardsRoom::projection`
/// (fields a view never showed are at their defaults and left out).
fn seen(p: &Player, revealed: &Revealed) -> serde_json::Value {
    let table = p.state.state();
    let mut as_server = Table {
        round: table.round,
        ..Table::default()
    };
    for (id, seat) in table.seats.iter() {
        as_server.seats.insert(id, seat.clone());
    }
    let got = CardsRoom::projection(&as_server, &p.session, revealed);
    // Hidden fields must really be absent on the client, not just skipped
    // by the projection.
    for (id, seat) in table.seats.iter() {
        if id != p.session && !revealed.contains(id) {
            assert_eq!(seat.hand, 0, "{}: {id}'s hand is hidden", p.session);
            assert_eq!(seat.purse, None, "{}: {id}'s purse is hidden", p.session);
            assert!(
                seat.cards.is_empty(),
                "{}: {id}'s cards are hidden",
                p.session
            );
        }
    }
    got
}

fn expected(h: &RoomHarness<CardsRoom>, p: &Player) -> serde_json::Value {
    let ctx = h.ctx();
    let client = ctx.client(&p.session).expect("in the room");
    let revealed = ctx.user_data(&client).cloned().unwrap_or_default();
    CardsRoom::projection(ctx.state(), &p.session, &revealed)
}

fn tick(h: &mut RoomHarness<CardsRoom>, players: &mut [&mut Player]) {
    h.advance(Duration::from_millis(50));
    for p in players.iter_mut() {
        apply(h, p);
    }
    for p in players.iter() {
        let ctx = h.ctx();
        let client = ctx.client(&p.session).expect("in the room");
        let revealed = ctx.user_data(&client).cloned().unwrap_or_default();
        assert_eq!(seen(p, &revealed), expected(h, p), "{}", p.session);
    }
}

fn cards(p: &Player, seat: &str) -> Vec<u8> {
    p.state
        .state()
        .seats
        .get(seat)
        .expect("seat")
        .cards
        .iter()
        .copied()
        .collect()
}

fn hands(p: &Player) -> BTreeMap<String, u8> {
    p.state
        .state()
        .seats
        .iter()
        .map(|(id, s)| (id.to_owned(), s.hand))
        .collect()
}

#[test]
fn each_client_sees_its_own_seat_and_what_was_revealed_to_it() {
    let mut h = RoomHarness::new(CardsRoom, &json!({})).unwrap();
    let mut a = join(&mut h, "ana");
    let mut b = join(&mut h, "bo");
    tick(&mut h, &mut [&mut a, &mut b]);
    assert_eq!(a.state.state().seats.len(), 2);

    // b shows its seat to a: a sees b's hand and purse, b sees nothing new.
    h.send_message(b.conn, "reveal", &Value::Str(a.session.clone()));
    tick(&mut h, &mut [&mut a, &mut b]);
    assert_ne!(hands(&a)[&b.session], 0);
    assert_eq!(hands(&b)[&a.session], 0);

    // Deals change every hand; each client follows what it sees.
    h.send_message(a.conn, "deal", &Value::Nil);
    tick(&mut h, &mut [&mut a, &mut b]);
    h.send_message(b.conn, "deal", &Value::Nil);
    tick(&mut h, &mut [&mut a, &mut b]);
    // Round 3 inserts a card in the middle of every hand of cards.
    h.send_message(a.conn, "deal", &Value::Nil);
    tick(&mut h, &mut [&mut a, &mut b]);
    assert_eq!(cards(&a, &b.session).len(), 4);

    // A third client joins mid-game: its full state carries its view.
    let mut c = join(&mut h, "cy");
    tick(&mut h, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(c.state.state().seats.len(), 3);

    // b conceals its seat from a again: a's copy of it is cleared.
    h.send_message(b.conn, "conceal", &Value::Str(a.session.clone()));
    tick(&mut h, &mut [&mut a, &mut b, &mut c]);
    assert_eq!(hands(&a)[&b.session], 0);

    // b leaves: its seat goes for everyone, its view with it.
    let vb = h.ctx().view(&h.ctx().client(&b.session).unwrap()).unwrap();
    h.send(b.conn, &[0x0c]); // LEAVE_ROOM
    tick(&mut h, &mut [&mut a, &mut c]);
    assert_eq!(a.state.state().seats.len(), 2);
    assert!(
        !h.with(|_, ctx| ctx.sync_state_mut().drop_view(vb)),
        "the room dropped the leaver's view"
    );
}

#[test]
fn a_reconnecting_client_gets_its_view_in_the_full_state() {
    let mut h = RoomHarness::new(CardsRoom, &json!({})).unwrap();
    let mut a = join(&mut h, "ana");
    let mut b = join(&mut h, "bo");
    h.send_message(b.conn, "reveal", &Value::Str(a.session.clone()));
    tick(&mut h, &mut [&mut a, &mut b]);

    h.disconnect(a.conn, Some(1006));
    // While a is away: a deal, and b conceals its seat again.
    h.send_message(b.conn, "deal", &Value::Nil);
    h.send_message(b.conn, "conceal", &Value::Str(a.session.clone()));
    tick(&mut h, &mut [&mut b]);

    assert_eq!(h.reconnect_request(&a.token), Ok(a.session.clone()));
    let mut request = ConnectRequest::new(a.session.clone());
    request.reconnection_token = Some(a.token.clone());
    a.conn = h.connect(request);
    assert!(matches!(h.received(a.conn)[0], Received::JoinRoom { .. }));
    h.send(a.conn, &[0x0a]);
    // A fresh decoder: the full state alone must hold what a should see.
    a.state = Decoder::new().unwrap();
    tick(&mut h, &mut [&mut a, &mut b]);
    assert_eq!(hands(&a)[&b.session], 0);
    assert_ne!(hands(&a)[&a.session], 0);
}
