//! Shared test support: the rooms of the end-to-end tests, and a
//! hand-encoded `State { n: number }` test double for the scenario tests
//! (exact bytes, and a record of what the room asks the encoder for).
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]
#![allow(
    clippy::int_plus_one,
    reason = "emitted by #[derive(Schema)] for a struct with one field"
)]

pub mod cards;
#[path = "../../examples/rooms/chat.rs"]
pub mod chat;
// Runs the demo binary, built only with the feature `demo`.
#[cfg(feature = "demo")]
pub mod cluster;
#[path = "../../src/bin/roomcast-demo/room.rs"]
pub mod demo;
pub mod e2e;
pub mod hub;
pub mod room;
#[path = "../../examples/rooms/tictactoe.rs"]
pub mod tictactoe;

use bytes::Bytes;
use roomcast::{Dialect, DialectSet, PatchFrames, SyncState};

/// Reflection of `State { n: number }` (room-protocol.md §5.1; identical in
/// both schema dialects since there is no primitive collection).
pub const COUNTER_REFLECTION: &[u8] = &[
    0x80, 0x01, 0xff, 0x01, 0x80, 0x00, 0x02, 0xff, 0x02, 0x80, 0x00, 0x82, 0x03, 0xff, 0x03, 0x80,
    0x00, 0x04, 0xff, 0x04, 0x80, 0xa1, 0x6e, 0x81, 0xa6, 0x6e, 0x75, 0x6d, 0x62, 0x65, 0x72,
];

/// `State { n: number }`, encoded by hand (schema-wire.md §2.2, §3.1) until
/// `roomcast_schema::Encoder` is wired in.
#[derive(Debug, Default)]
pub struct Counter {
    n: i32,
    dirty: bool,
    /// Every `want` set passed to `encode_patch`, to check the room asks
    /// for each dialect once per tick.
    pub patch_calls: Vec<DialectSet>,
    /// How many full states were encoded.
    pub full_calls: u32,
}

impl Counter {
    pub fn new(n: i32) -> Self {
        Self {
            n,
            dirty: false,
            patch_calls: Vec::new(),
            full_calls: 0,
        }
    }

    pub fn n(&self) -> i32 {
        self.n
    }

    pub fn set(&mut self, n: i32) {
        if n != self.n {
            self.n = n;
            self.dirty = true;
        }
    }
}

/// `80 <number>`: field 0 ADD.
pub fn counter_body(n: i32) -> Vec<u8> {
    let mut out = vec![0x80];
    let n = i64::from(n);
    match n {
        -32..=127 => out.push(n as u8),
        128..=255 => out.extend([0xcc, n as u8]),
        256..=65535 => {
            out.push(0xcd);
            out.extend((n as u16).to_le_bytes());
        }
        65536..=0x7fff_ffff => {
            out.push(0xce);
            out.extend((n as u32).to_le_bytes());
        }
        -128..=-33 => out.extend([0xd0, n as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend((n as i16).to_le_bytes());
        }
        _ => {
            out.push(0xd2);
            out.extend((n as i32).to_le_bytes());
        }
    }
    out
}

impl SyncState for Counter {
    fn handshake(&self, _: Dialect) -> Bytes {
        Bytes::from_static(COUNTER_REFLECTION)
    }

    fn encode_full(&mut self, _: Dialect) -> Bytes {
        self.full_calls += 1;
        counter_body(self.n).into()
    }

    fn encode_patch(&mut self, want: DialectSet) -> PatchFrames {
        self.patch_calls.push(want);
        if !std::mem::take(&mut self.dirty) {
            return PatchFrames::default();
        }
        let body = Bytes::from(counter_body(self.n));
        PatchFrames {
            modern: want.contains(Dialect::Modern).then(|| body.clone()),
            legacy: want.contains(Dialect::Legacy).then_some(body),
        }
    }
}
