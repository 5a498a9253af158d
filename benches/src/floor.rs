//! Floors: the least any implementation can do for a scenario, hand-written
//! for it alone and measured in the same run as Roomcast and the reference.
//!
//! # S2 (encoder)
//!
//! [`MoveSomeFloor`] is a hand-written, single-purpose loop over plain
//! vectors that does exactly S2's work — check a handle, queue the entity
//! once, keep first-change order and dirty bits, write the same bytes as the
//! encoder (the tests check that, tick for tick) — with none of the
//! encoder's generality, and with its hot data (positions, dirty bits, ids)
//! packed apart from the cold (keys, names). It is the bound on what any
//! encoder can reach for S2 on a given machine, measured in the same run as
//! the encoder and the reference (`benches/compare.sh --only S2`).
//!
//! # D3 (typed decoder)
//!
//! [`decode_s3_floor`] reads an S3 full state straight into the scenario's
//! [`State`]: it checks what a decoder must check (bounds, operation bytes,
//! field indexes, refIds, UTF-8, each entity added once and filled once)
//! and keeps only a refId table, with none of the typed decoder's
//! generality (any schema, patches, moves, shared instances, callbacks,
//! all-or-nothing on a live state). It bounds what a typed decoder building
//! these Rust values can reach (`cargo bench -p roomcast-benches --bench
//! decode`, row `D3 floor`).

use roomcast_schema::wire::{DecodeError, DecodeErrorKind, Reader};

use crate::scenario::{Entity, Scenario, State};

/// No sequence number yet this tick.
const UNSET: u32 = u32::MAX;

/// What S2 reads and writes per entity, 32 bytes.
#[derive(Debug, Clone, Copy)]
struct Hot {
    x: f32,
    y: f32,
    angle: f32,
    id: u32,
    seq: u32,
    dirty: u32,
    hp: u8,
    queued: bool,
}

/// What S2 never touches unless a string field changes.
#[derive(Debug)]
struct Cold {
    name: String,
}

/// S2 (1 % of `n` entities move each tick, a window rotating over the
/// keys), hand-written; see the module docs.
#[derive(Debug)]
pub struct MoveSomeFloor {
    hot: Vec<Hot>,
    cold: Vec<Cold>,
    /// Handle table: position and generation of each entry.
    locs: Vec<(u32, u32)>,
    /// The handles a game would hold: (slot in `locs`, generation).
    handles: Vec<(u32, u32)>,
    queued: Vec<u32>,
    next_seq: u32,
    per_tick: usize,
    cursor: usize,
    out: Vec<u8>,
}

impl MoveSomeFloor {
    /// `n` entities (`Entity::new(i)` under refId `2 + i`, as the encoder
    /// numbers them after the root and the map).
    #[must_use]
    pub fn new(n: u32) -> Self {
        Self {
            hot: (0..n)
                .map(|i| Hot {
                    x: i as f32,
                    y: i as f32 * 0.5,
                    angle: 0.0,
                    id: 2 + i,
                    seq: UNSET,
                    dirty: 0,
                    hp: 100,
                    queued: false,
                })
                .collect(),
            cold: (0..n)
                .map(|i| Cold {
                    name: format!("e{i}"),
                })
                .collect(),
            locs: (0..n).map(|i| (i, 0)).collect(),
            handles: (0..n).map(|i| (i, 0)).collect(),
            queued: Vec::new(),
            next_seq: 0,
            per_tick: (n as usize / 100).max(1),
            cursor: 0,
            out: Vec::new(),
        }
    }

    fn mark(h: &mut Hot, bit: u32, next_seq: &mut u32) {
        h.dirty |= bit;
        if h.seq == UNSET {
            h.seq = *next_seq;
            *next_seq += 1;
        }
    }

    /// One tick: the moves, then the patch.
    pub fn step(&mut self) -> &[u8] {
        for _ in 0..self.per_tick {
            let (idx, generation) = self.handles[self.cursor];
            if let Some(&(pos, g)) = self.locs.get(idx as usize) {
                if g == generation {
                    let h = &mut self.hot[pos as usize];
                    if !h.queued {
                        h.queued = true;
                        self.queued.push(pos);
                    }
                    let x = h.x + 1.0;
                    if x != h.x {
                        h.x = x;
                        Self::mark(h, 1, &mut self.next_seq);
                    }
                    let y = h.y + 0.5;
                    if y != h.y {
                        h.y = y;
                        Self::mark(h, 2, &mut self.next_seq);
                    }
                }
            }
            self.cursor += 1;
            if self.cursor == self.handles.len() {
                self.cursor = 0;
            }
        }
        self.encode()
    }

    /// Writes the queued entities' blocks (queue order is first-change
    /// order here: every queued entity changed).
    fn encode(&mut self) -> &[u8] {
        let out = &mut self.out;
        out.clear();
        for &pos in &self.queued {
            let h = &mut self.hot[pos as usize];
            h.queued = false;
            if h.seq == UNSET {
                continue;
            }
            match h.id {
                id @ 0..0x80 => out.extend_from_slice(&[0xff, id as u8]),
                id @ 0x80..0x100 => out.extend_from_slice(&[0xff, 0xcc, id as u8]),
                id @ 0x100..0x1_0000 => {
                    let [a, b] = (id as u16).to_le_bytes();
                    out.extend_from_slice(&[0xff, 0xcd, a, b]);
                }
                id => {
                    let [a, b, c, d] = id.to_le_bytes();
                    out.extend_from_slice(&[0xff, 0xce, a, b, c, d]);
                }
            }
            let mut dirty = h.dirty;
            while dirty != 0 {
                let i = dirty.trailing_zeros();
                dirty &= dirty - 1;
                let f32_op = |op: u8, v: f32| {
                    let [a, b, c, d] = v.to_le_bytes();
                    [op, a, b, c, d]
                };
                match i {
                    0 => out.extend_from_slice(&f32_op(0x80, h.x)),
                    1 => out.extend_from_slice(&f32_op(0x81, h.y)),
                    2 => out.extend_from_slice(&f32_op(0x82, h.angle)),
                    3 => out.extend_from_slice(&[0x83, h.hp]),
                    _ => {
                        let name = &self.cold[pos as usize].name;
                        out.extend_from_slice(&[0x84, 0xa0 | name.len() as u8]);
                        out.extend_from_slice(name.as_bytes());
                    }
                }
            }
            h.dirty = 0;
            h.seq = UNSET;
        }
        self.queued.clear();
        self.next_seq = 0;
        &self.out
    }
}

impl Scenario for MoveSomeFloor {
    fn tick(&mut self) -> usize {
        self.step().len()
    }
}

/// What a refId of the S3 full state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Entities,
    Items,
    /// The entity added `n`-th, and whether its block was read.
    Entity(u32, bool),
}

/// An error at the reader's position.
fn fail<T>(r: &Reader<'_>, kind: DecodeErrorKind) -> Result<T, DecodeError> {
    Err(Reader::error_at(r.offset(), kind))
}

/// D3 hand-written: the S3 full state `bytes` into a [`State`]; see the
/// module docs.
///
/// # Errors
///
/// Input that is not an S3 full state (with the offset of the problem).
pub fn decode_s3_floor(bytes: &[u8]) -> Result<State, DecodeError> {
    let mut r = Reader::new(bytes);
    // refId -> what it names; refIds are bounded by the input (every
    // structure takes at least a byte).
    let mut refs: Vec<Option<Named>> = vec![None; 2];
    let name =
        |refs: &mut Vec<Option<Named>>, r: &Reader<'_>, id: u32, what| -> Result<(), DecodeError> {
            let i = id as usize;
            if i == 0 || i > bytes.len() {
                return fail(r, DecodeErrorKind::InvalidIndex);
            }
            if i >= refs.len() {
                refs.resize(i + 1, None);
            }
            if refs[i].is_some() {
                return fail(r, DecodeErrorKind::Malformed("refId added twice"));
            }
            refs[i] = Some(what);
            Ok(())
        };
    // The root block: the two collections.
    while let Some(op) = r.peek().filter(|&b| b != 0xff) {
        r.read_u8()?;
        let what = match op {
            0x80 => Named::Entities,
            0x81 => Named::Items,
            _ => return fail(&r, DecodeErrorKind::InvalidOperation(op)),
        };
        let id = r.decode_varint()?;
        name(&mut refs, &r, id, what)?;
    }
    // Entities in the order of their ADDs, keys beside them.
    let mut keys: Vec<&str> = Vec::new();
    let mut entities: Vec<Entity> = Vec::new();
    while r.read_u8().is_ok() {
        let id = r.decode_varint()? as usize;
        match refs.get(id).copied().flatten() {
            Some(Named::Entities) => {
                while let Some(op) = r.peek().filter(|&b| b != 0xff) {
                    r.read_u8()?;
                    if op != 0x80 {
                        return fail(&r, DecodeErrorKind::InvalidOperation(op));
                    }
                    let index = r.decode_varint()?;
                    if index as usize != keys.len() {
                        return fail(&r, DecodeErrorKind::UnknownMapIndex(index));
                    }
                    keys.push(r.decode_str()?);
                    let child = r.decode_varint()?;
                    name(&mut refs, &r, child, Named::Entity(index, false))?;
                    entities.push(Entity::default());
                }
            }
            Some(Named::Entity(n, false)) => {
                refs[id] = Some(Named::Entity(n, true));
                let e = &mut entities[n as usize];
                while let Some(op) = r.peek().filter(|&b| b != 0xff) {
                    r.read_u8()?;
                    match op {
                        0x80 => e.x = r.decode_f32()?,
                        0x81 => e.y = r.decode_f32()?,
                        0x82 => e.angle = r.decode_f32()?,
                        0x83 => e.hp = r.decode_u8()?,
                        0x84 => {
                            let s = r.decode_str()?;
                            e.name.clear();
                            e.name.push_str(s);
                        }
                        _ => return fail(&r, DecodeErrorKind::InvalidOperation(op)),
                    }
                }
            }
            Some(Named::Items) => {
                if r.peek().is_some_and(|b| b != 0xff) {
                    return fail(&r, DecodeErrorKind::Unsupported("items in S3"));
                }
            }
            Some(Named::Entity(_, true)) => {
                return fail(&r, DecodeErrorKind::Malformed("entity block twice"))
            }
            None => return fail(&r, DecodeErrorKind::UnknownRefId(id as u32)),
        }
    }
    let mut state = State::default();
    state.entities.reserve(keys.len());
    for (key, e) in keys.into_iter().zip(entities) {
        state.entities.insert(key, e);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{EncodeAll, MoveSome};
    use roomcast_schema::decoder::Decoder;
    use roomcast_schema::EncoderOptions;

    #[test]
    fn the_floor_writes_the_encoders_bytes() {
        // 3 windows of 3 entities over 300 entities, past the wrap-around.
        let mut enc = MoveSome::new(300, EncoderOptions::default());
        let mut floor = MoveSomeFloor::new(300);
        for tick in 0..250 {
            assert_eq!(floor.step(), enc.step(), "tick {tick}");
        }
    }

    #[test]
    fn the_d3_floor_decodes_what_the_typed_decoder_decodes() {
        let bytes = EncodeAll::new(300, EncoderOptions::default())
            .encode()
            .to_vec();
        let floor = decode_s3_floor(&bytes).expect("floor");
        let mut typed = Decoder::<State>::new().expect("types");
        typed.decode(&bytes).expect("typed");
        let a: Vec<_> = floor.entities.iter().collect();
        let b: Vec<_> = typed.state().entities.iter().collect();
        assert_eq!(a.len(), 300);
        assert_eq!(a, b);
        // Cut anywhere, it fails without panicking.
        for end in 0..bytes.len() {
            let _ = decode_s3_floor(&bytes[..end]);
        }
    }
}
