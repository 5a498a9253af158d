//! The scenarios S1–S5, V1, V2 and J1, tick for tick as `tests/node/bench-schema.mjs` runs
//! them on `@colyseus/schema` 5.0.34.
//!
//! A tick is everything a scenario does once: its mutations, then
//! `encode_patch` (or `encode_all` for S3). Every scenario starts from an
//! encoder past its first patch, like the reference's `readyEncoder`.

use std::fmt::Write as _;

use roomcast_schema::{
    ArraySchema, Encoder, EncoderOptions, EntryHandle, MapSchema, Schema, ViewId, ViewTarget,
};

/// An entity of the benchmark state (`Entity` in `bench-schema.mjs`; same
/// fields in the same order, so the same field indexes on the wire).
#[derive(Schema, Default, Debug, Clone, PartialEq)]
#[schema(decode)]
pub struct Entity {
    /// Moved by S1 and S2 (`x += 1`).
    pub x: f32,
    /// Moved by S1 and S2 (`y += 0.5`).
    pub y: f32,
    /// Always 0.
    pub angle: f32,
    /// Always 100.
    pub hp: u8,
    /// `"e{i}"`, the entity's key.
    pub name: String,
}

impl Entity {
    /// Entity number `i`: `x = i`, `y = i / 2`, `angle = 0`, `hp = 100`,
    /// `name = "e{i}"` (the reference's `newEntity(i)`).
    #[must_use]
    pub fn new(i: u32) -> Self {
        Self {
            x: i as f32,
            y: i as f32 * 0.5,
            angle: 0.0,
            hp: 100,
            name: format!("e{i}"),
        }
    }
}

/// The benchmark state (`State` in `bench-schema.mjs`).
#[derive(Schema, Default, Debug)]
#[schema(decode)]
pub struct State {
    /// Entities under keys `"e0"`, `"e1"`, … in insertion order.
    pub entities: MapSchema<Entity>,
    /// S4 pushes and shifts here; empty in the other scenarios.
    pub items: ArraySchema<u16>,
}

impl State {
    /// `n` entities `"e0"`..`"e{n-1}"` and the items `0..items` (the
    /// reference's `buildState(n, items)`).
    #[must_use]
    pub fn build(n: u32, items: u16) -> Self {
        let mut state = Self::default();
        for i in 0..n {
            state.entities.insert(format!("e{i}"), Entity::new(i));
        }
        for i in 0..items {
            state.items.push(i);
        }
        state
    }
}

/// An encoder of `state` past its first patch (the reference's
/// `readyEncoder`).
#[must_use]
pub fn ready_encoder(state: State, options: EncoderOptions) -> Encoder<State> {
    let mut enc = Encoder::with_options(state, options);
    enc.encode_patch();
    enc
}

/// Writes the key of entity `i` into `buf` (reused: no allocation per key).
fn key(buf: &mut String, i: u32) -> &str {
    buf.clear();
    write!(buf, "e{i}").expect("writing to a String cannot fail");
    buf
}

/// One benchmark scenario.
pub trait Scenario {
    /// Runs one tick; returns the number of bytes it produced.
    fn tick(&mut self) -> usize;
}

/// The scenarios of the comparison, named as in `bench-schema.mjs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScenarioId {
    /// Every entity moves each tick.
    S1,
    /// 1 % of the entities move each tick (rotating window).
    S2,
    /// `encode_all` of the whole state.
    S3,
    /// Churn: 10 removes (oldest) + 10 adds on the map, push + shift on the
    /// items.
    S4,
    /// Idle tick: nothing changed.
    S5,
    /// StateView: S1 plus a view field, 100 views ([`ViewMoveAll`]).
    V1,
    /// StateView at room scale: 500 views over 10,000 entities, 10 % moving
    /// ([`ViewRoom`]).
    V2,
    /// Joins under churn: 1 % of 10,000 entries replaced per tick, then a
    /// full state ([`JoinChurn`]).
    J1,
}

impl ScenarioId {
    /// Every scenario with its sizes N, in the reference's order.
    pub const ALL: [(Self, &'static [u32]); 8] = [
        (Self::S1, &[100, 1_000, 10_000]),
        (Self::S2, &[10_000]),
        (Self::S3, &[1_000, 10_000]),
        (Self::S4, &[1_000]),
        (Self::S5, &[10_000]),
        (Self::V1, &[1_000]),
        (Self::V2, &[10_000]),
        (Self::J1, &[10_000]),
    ];

    /// The name used by `bench-schema.mjs` (`"S1"`…).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::S1 => "S1",
            Self::S2 => "S2",
            Self::S3 => "S3",
            Self::S4 => "S4",
            Self::S5 => "S5",
            Self::V1 => "V1",
            Self::V2 => "V2",
            Self::J1 => "J1",
        }
    }

    /// Parses `"S1"`… (case-insensitive).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .map(|&(id, _)| id)
            .find(|id| id.name().eq_ignore_ascii_case(s))
    }
}

/// Ticks after which [`MoveAll`] moves every entity back to its start (so
/// `f32` positions stay exact however long a bench runs; the reference's
/// `float64` positions never lose `+ 1`).
pub const REWIND_PERIOD: u32 = 1 << 20;

/// The move of tick number `ticks` (counted from 0): `(+1, +0.5)`, except
/// every [`REWIND_PERIOD`]-th tick, which moves back to the start.
fn move_of(ticks: u32) -> (f32, f32) {
    if ticks % REWIND_PERIOD == REWIND_PERIOD - 1 {
        let back = (REWIND_PERIOD - 1) as f32;
        (-back, -back * 0.5)
    } else {
        (1.0, 0.5)
    }
}

/// S1: every entity moves, `x += 1`, `y += 0.5`, then `encode_patch`.
///
/// Every [`REWIND_PERIOD`]-th tick moves every entity back to where it
/// started instead: the same work and the same bytes, with other values.
#[derive(Debug)]
pub struct MoveAll {
    enc: Encoder<State>,
    ticks: u32,
}

impl MoveAll {
    /// `n` entities, past the first patch.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        Self {
            enc: ready_encoder(State::build(n, 0), options),
            ticks: 0,
        }
    }

    /// The mutations of one tick, without encoding.
    pub fn mutate(&mut self) {
        let (dx, dy) = move_of(self.ticks);
        self.ticks = self.ticks.wrapping_add(1);
        let mut state = self.enc.state_mut();
        state.entities_mut().for_each_mut(|_, mut e| {
            let (x, y) = (e.x, e.y);
            e.set_x(x + dx);
            e.set_y(y + dy);
        });
    }

    /// The patch of the changes so far.
    pub fn encode(&mut self) -> &[u8] {
        self.enc.encode_patch()
    }

    /// The encoder.
    #[must_use]
    pub fn encoder(&mut self) -> &mut Encoder<State> {
        &mut self.enc
    }
}

impl Scenario for MoveAll {
    #[inline]
    fn tick(&mut self) -> usize {
        self.mutate();
        self.encode().len()
    }
}

/// S2: 1 % of the entities move each tick (a window rotating over the keys),
/// then `encode_patch`. Entities are reached through entry handles taken at
/// setup, as the reference's bench holds the entity objects.
#[derive(Debug)]
pub struct MoveSome {
    enc: Encoder<State>,
    handles: Vec<EntryHandle>,
    per_tick: usize,
    cursor: usize,
}

impl MoveSome {
    /// `n` entities, `max(1, n / 100)` moving per tick.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        let enc = ready_encoder(State::build(n, 0), options);
        let handles = (0..n)
            .map(|i| {
                enc.state()
                    .entities
                    .handle(&format!("e{i}"))
                    .expect("entity")
            })
            .collect();
        Self {
            enc,
            handles,
            per_tick: (n as usize / 100).max(1),
            cursor: 0,
        }
    }
}

impl MoveSome {
    /// One tick: the moves, then the patch.
    pub fn step(&mut self) -> &[u8] {
        let mut state = self.enc.state_mut();
        let mut entities = state.entities_mut();
        for _ in 0..self.per_tick {
            if let Some(mut e) = entities.get_mut_by(self.handles[self.cursor]) {
                let (x, y) = (e.x, e.y);
                e.set_x(x + 1.0);
                e.set_y(y + 0.5);
            }
            self.cursor += 1;
            if self.cursor == self.handles.len() {
                self.cursor = 0;
            }
        }
        self.enc.encode_patch()
    }
}

impl Scenario for MoveSome {
    fn tick(&mut self) -> usize {
        self.step().len()
    }
}

/// S3: `encode_all` of `n` entities.
#[derive(Debug)]
pub struct EncodeAll {
    enc: Encoder<State>,
}

impl EncodeAll {
    /// `n` entities, past the first patch.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        Self {
            enc: ready_encoder(State::build(n, 0), options),
        }
    }

    /// The full state.
    pub fn encode(&mut self) -> &[u8] {
        self.enc.encode_all()
    }
}

impl Scenario for EncodeAll {
    #[inline]
    fn tick(&mut self) -> usize {
        self.encode().len()
    }
}

/// S4: a map held at `n` entities; each tick removes the `per_tick` oldest
/// and adds `per_tick` new ones (keys keep counting up), then pushes
/// `next & 0xffff` on the 1000 items and shifts the first one off.
#[derive(Debug)]
pub struct Churn {
    enc: Encoder<State>,
    per_tick: u32,
    oldest: u32,
    next: u32,
    key: String,
}

impl Churn {
    /// Items held by the S4 array.
    pub const ITEMS: u16 = 1000;

    /// `n` entities and [`Self::ITEMS`] items, `per_tick` removes + adds per
    /// tick (10 in S4).
    #[must_use]
    pub fn new(n: u32, per_tick: u32, options: EncoderOptions) -> Self {
        Self {
            enc: ready_encoder(State::build(n, Self::ITEMS), options),
            per_tick,
            oldest: 0,
            next: n,
            key: String::new(),
        }
    }

    /// Entities created so far, the initial ones included.
    #[must_use]
    pub fn created(&self) -> u64 {
        u64::from(self.next)
    }

    /// The encoder.
    #[must_use]
    pub fn encoder(&mut self) -> &mut Encoder<State> {
        &mut self.enc
    }
}

impl Churn {
    /// One tick, returning its patch.
    pub fn tick_bytes(&mut self) -> &[u8] {
        let mut state = self.enc.state_mut();
        let mut entities = state.entities_mut();
        for _ in 0..self.per_tick {
            entities.remove(key(&mut self.key, self.oldest));
            self.oldest += 1;
            entities.insert(key(&mut self.key, self.next), Entity::new(self.next));
            self.next += 1;
        }
        let mut items = state.items_mut();
        items.push((self.next & 0xffff) as u16);
        items.shift();
        self.enc.encode_patch()
    }
}

impl Scenario for Churn {
    #[inline]
    fn tick(&mut self) -> usize {
        self.tick_bytes().len()
    }
}

/// S5: an idle tick, `encode_patch` with nothing changed.
#[derive(Debug)]
pub struct Idle {
    enc: Encoder<State>,
}

impl Idle {
    /// `n` entities, past the first patch.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        Self {
            enc: ready_encoder(State::build(n, 0), options),
        }
    }
}

impl Scenario for Idle {
    #[inline]
    fn tick(&mut self) -> usize {
        self.enc.encode_patch().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s1_patch_moves_every_entity() {
        let mut s = MoveAll::new(3, EncoderOptions::default());
        // Per entity: ff <refId> | 80 <x f32> | 81 <y f32>.
        assert_eq!(s.tick(), 3 * (2 + 5 + 5));
    }

    #[test]
    fn rewind_restores_the_start() {
        let mut s = MoveAll::new(2, EncoderOptions::default());
        for _ in 0..REWIND_PERIOD {
            s.mutate();
        }
        let e = s.encoder().state().entities.get("e1").unwrap().clone();
        assert_eq!(e, Entity::new(1));
    }

    #[test]
    fn idle_tick_is_empty() {
        assert_eq!(Idle::new(10, EncoderOptions::default()).tick(), 0);
    }

    #[test]
    fn churn_keeps_the_size() {
        let mut s = Churn::new(50, 10, EncoderOptions::default());
        for _ in 0..20 {
            assert!(s.tick() > 0);
        }
        let state = s.encoder().state();
        assert_eq!(state.entities.len(), 50);
        assert!(state.entities.contains_key("e249"));
        assert!(!state.entities.contains_key("e199"));
        assert_eq!(state.items.len(), usize::from(Churn::ITEMS));
    }
}

/// An entity with one `#[schema(view)]` field (`ViewEntity` in
/// `bench-schema.mjs`).
#[derive(Schema, Default, Debug, Clone, PartialEq)]
pub struct ViewEntity {
    /// Moved every tick.
    pub x: f32,
    /// Moved every tick.
    pub y: f32,
    /// Always 0.
    pub angle: f32,
    /// Always 100.
    pub hp: u8,
    /// `"e{i}"`.
    pub name: String,
    /// Seen only by the views the entity is shown to; every 10th entity
    /// (rotating) changes it each tick.
    #[schema(view)]
    pub secret: u32,
}

/// The state of [`ViewMoveAll`] (`ViewState` in `bench-schema.mjs`).
#[derive(Schema, Default, Debug)]
pub struct ViewState {
    /// Entities `"e0"`, `"e1"`, …
    pub entities: MapSchema<ViewEntity>,
}

/// Clients (views) of [`ViewMoveAll`].
pub const V1_CLIENTS: u32 = 100;
/// Entities every view of [`ViewMoveAll`] sees besides its own.
pub const V1_SHARED: u32 = 10;

/// V1: S1 with a view field and [`V1_CLIENTS`] views, each shown its own
/// entity and the last [`V1_SHARED`] ones; every entity moves and every
/// 10th (rotating) changes its view field; a tick is `encode_patch` plus
/// every view's `view_patch`.
#[derive(Debug)]
pub struct ViewMoveAll {
    enc: Encoder<ViewState>,
    views: Vec<ViewId>,
    ticks: u32,
}

impl ViewMoveAll {
    /// `n` entities and the views, past the first patch.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        let mut enc = Encoder::with_options(view_state(n), options);
        let views: Vec<ViewId> = (0..V1_CLIENTS).map(|_| enc.create_view()).collect();
        {
            let mut st = enc.state_mut();
            let mut m = st.entities_mut();
            for (c, &v) in views.iter().enumerate() {
                let own = format!("e{}", c as u32 % n.max(1));
                if let Some(mut e) = m.get_mut(&own) {
                    e.show_to(v);
                }
                for s in 0..V1_SHARED.min(n) {
                    if let Some(mut e) = m.get_mut(&format!("e{}", n - 1 - s)) {
                        e.show_to(v);
                    }
                }
            }
        }
        enc.encode_patch();
        Self {
            enc,
            views,
            ticks: 0,
        }
    }

    /// The mutations of one tick.
    pub fn mutate(&mut self) {
        let (dx, dy) = move_of(self.ticks);
        let phase = self.ticks % 10;
        self.ticks = self.ticks.wrapping_add(1);
        let mut i = 0u32;
        self.enc
            .state_mut()
            .entities_mut()
            .for_each_mut(|_, mut e| {
                let (x, y) = (e.x, e.y);
                e.set_x(x + dx);
                e.set_y(y + dy);
                if i % 10 == phase {
                    let s = e.secret;
                    e.set_secret(s.wrapping_add(1));
                }
                i += 1;
            });
    }

    /// `encode_patch` and every view's part; returns the bytes in all.
    pub fn encode(&mut self) -> usize {
        let mut bytes = self.enc.encode_patch().len();
        for &v in &self.views {
            bytes += self.enc.view_patch(v).len();
        }
        bytes
    }

    /// The encoder and the views.
    pub fn parts(&mut self) -> (&mut Encoder<ViewState>, &[ViewId]) {
        (&mut self.enc, &self.views)
    }
}

impl Scenario for ViewMoveAll {
    fn tick(&mut self) -> usize {
        self.mutate();
        self.encode()
    }
}

/// Clients (views) of [`ViewRoom`].
pub const V2_CLIENTS: u32 = 500;
/// Entities of its own every view of [`ViewRoom`] sees.
pub const V2_OWN: u32 = 50;
/// Entities every view of [`ViewRoom`] sees (the last ones).
pub const V2_SHARED: u32 = 50;

/// `n` view entities `"e0"`… (`secret = i`) in an encoder, past the first
/// patch.
fn view_encoder(n: u32, options: EncoderOptions) -> Encoder<ViewState> {
    let mut enc = Encoder::with_options(view_state(n), options);
    enc.encode_patch();
    enc
}

/// `n` view entities `"e0"`… (`secret = i`).
fn view_state(n: u32) -> ViewState {
    let mut state = ViewState::default();
    for i in 0..n {
        let e = Entity::new(i);
        state.entities.insert(
            format!("e{i}"),
            ViewEntity {
                x: e.x,
                y: e.y,
                angle: e.angle,
                hp: e.hp,
                name: e.name,
                secret: i,
            },
        );
    }
    state
}

/// `encode_patch` and every view's part; the bytes in all.
fn patch_with_views(enc: &mut Encoder<ViewState>, views: &[ViewId]) -> usize {
    let mut bytes = enc.encode_patch().len();
    for &v in views {
        bytes += enc.view_patch(v).len();
    }
    bytes
}

/// V2, a StateView room at scale: `n` (10,000) entities with a view field
/// and [`V2_CLIENTS`] views; view `c` sees its own [`V2_OWN`] entities,
/// `(c * 50 + k) mod (n - 50)` for `k < 50`, and the last [`V2_SHARED`].
/// Each tick 10 % of the entities (every 10th, rotating) move and change
/// their view field; a tick is `encode_patch` plus every `view_patch`
/// (`v2` in `tests/node/lib/view-scenarios.mjs`).
#[derive(Debug)]
pub struct ViewRoom {
    enc: Encoder<ViewState>,
    views: Vec<ViewId>,
    handles: Vec<EntryHandle>,
    ticks: u32,
}

impl ViewRoom {
    /// `n` entities (at least [`V2_SHARED`] + 1) and the views, past the
    /// patch that settles the views.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        assert!(n > V2_SHARED, "V2 needs more than {V2_SHARED} entities");
        let mut enc = view_encoder(n, options);
        let handles: Vec<EntryHandle> = (0..n)
            .map(|i| {
                enc.state()
                    .entities
                    .handle(&format!("e{i}"))
                    .expect("entity")
            })
            .collect();
        let views: Vec<ViewId> = (0..V2_CLIENTS).map(|_| enc.create_view()).collect();
        {
            let own = n - V2_SHARED;
            let mut st = enc.state_mut();
            let mut m = st.entities_mut();
            for (c, &v) in views.iter().enumerate() {
                for k in 0..V2_OWN {
                    let i = (c as u32 * V2_OWN + k) % own;
                    if let Some(mut e) = m.get_mut_by(handles[i as usize]) {
                        e.show_to(v);
                    }
                }
                for s in 0..V2_SHARED {
                    if let Some(mut e) = m.get_mut_by(handles[(n - 1 - s) as usize]) {
                        e.show_to(v);
                    }
                }
            }
        }
        patch_with_views(&mut enc, &views);
        Self {
            enc,
            views,
            handles,
            ticks: 0,
        }
    }

    /// The mutations of one tick.
    pub fn mutate(&mut self) {
        let (dx, dy) = move_of(self.ticks);
        let phase = (self.ticks % 10) as usize;
        self.ticks = self.ticks.wrapping_add(1);
        let mut st = self.enc.state_mut();
        let mut m = st.entities_mut();
        for &h in self.handles.iter().skip(phase).step_by(10) {
            if let Some(mut e) = m.get_mut_by(h) {
                let (x, y, s) = (e.x, e.y, e.secret);
                e.set_x(x + dx);
                e.set_y(y + dy);
                e.set_secret(s.wrapping_add(1));
            }
        }
    }

    /// `encode_patch` and every view's part; returns the bytes in all.
    pub fn encode(&mut self) -> usize {
        patch_with_views(&mut self.enc, &self.views)
    }

    /// The encoder and the views.
    pub fn parts(&mut self) -> (&mut Encoder<ViewState>, &[ViewId]) {
        (&mut self.enc, &self.views)
    }
}

impl Scenario for ViewRoom {
    fn tick(&mut self) -> usize {
        self.mutate();
        self.encode()
    }
}

/// J1, joins under churn: `n` (10,000) entities; each tick replaces
/// `n / 100` of them (the oldest removed, new ones added, keys counting
/// up), encodes the patch, then the full state a client joining now gets
/// (`j1` in `bench-schema.mjs`). Bytes: patch plus full state.
#[derive(Debug)]
pub struct JoinChurn {
    enc: Encoder<State>,
    per_tick: u32,
    oldest: u32,
    next: u32,
    key: String,
}

impl JoinChurn {
    /// `n` entities, past the first patch.
    #[must_use]
    pub fn new(n: u32, options: EncoderOptions) -> Self {
        Self {
            enc: ready_encoder(State::build(n, 0), options),
            per_tick: (n / 100).max(1),
            oldest: 0,
            next: n,
            key: String::new(),
        }
    }

    /// The churn of one tick and its patch.
    pub fn churn(&mut self) -> &[u8] {
        let mut state = self.enc.state_mut();
        let mut entities = state.entities_mut();
        for _ in 0..self.per_tick {
            entities.remove(key(&mut self.key, self.oldest));
            self.oldest += 1;
            entities.insert(key(&mut self.key, self.next), Entity::new(self.next));
            self.next += 1;
        }
        self.enc.encode_patch()
    }

    /// The full state for a client joining now.
    pub fn join(&mut self) -> &[u8] {
        self.enc.encode_all()
    }
}

impl Scenario for JoinChurn {
    fn tick(&mut self) -> usize {
        let patch = self.churn().len();
        patch + self.join().len()
    }
}
