//! `encode_all` and `encode_patch` into reused buffers.
//!
//! The encoder owns the state. Reading goes through [`Encoder::state`];
//! changing goes through [`Encoder::state_mut`], a view that records every
//! change as it happens. [`Encoder::encode_patch`] then walks only the
//! changed refs (never the whole tree), writes their blocks in the order the
//! refs first changed (spec `schema-wire.md` §16), and forgets the changes.

use crate::schema::{Describer, Field, Schema};
use crate::tracked::{RefMeta, Tick, NO_SEQ};
use crate::types::{TypeError, TypeRegistry};
use crate::view::ViewId;
use crate::wire::{self, spec};

/// A run of consecutive blocks of a patch whose refs first changed in
/// consecutive order (`first_seq..=last_seq`). Runs never interleave (each
/// covers a contiguous range of unique sequence numbers), so sorting runs by
/// `first_seq` orders every block; and in the common case (blocks written in
/// first-change order) a whole patch is one run, with nothing to record per
/// block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block {
    first_seq: u32,
    last_seq: u32,
    start: u32,
    end: u32,
}

/// Writes `ff | varint refId` in one write.
#[inline(always)]
fn write_header(out: &mut Vec<u8>, id: u32) {
    let mut buf = [spec::SWITCH_TO_STRUCTURE, 0, 0, 0, 0, 0];
    // Constant-length copies, so no memcpy call.
    match wire::varint_into(&mut buf[1..], id) {
        1 => out.extend_from_slice(&buf[..2]),
        2 => out.extend_from_slice(&buf[..3]),
        3 => out.extend_from_slice(&buf[..4]),
        _ => out.extend_from_slice(&buf[..6]),
    }
}

/// Records a written block, extending the current run when it continues it.
#[inline]
fn record(blocks: &mut Vec<Block>, seq: u32, start: usize, end: usize) {
    if let Some(run) = blocks.last_mut() {
        if run.end as usize == start && run.last_seq.wrapping_add(1) == seq {
            run.last_seq = seq;
            run.end = end as u32;
            return;
        }
    }
    blocks.push(Block {
        first_seq: seq,
        last_seq: seq,
        start: start as u32,
        end: end as u32,
    });
}

/// No run yet (a [`Block`] whose `end` is this).
const NO_RUN: u32 = u32::MAX;

/// Which generation of client the output is for: the schema decoder
/// (spec `schema-wire.md` §14) and, in the room layer (`roomcast`, which
/// re-exports this type as `roomcast::Dialect`), the room protocol
/// (room-protocol.md §10, §11).
///
/// The one dialect type of the workspace. It is exhaustive: the room layer
/// keeps one output per dialect (`roomcast::PatchFrames`), so a new
/// generation would change those types anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// `@colyseus/schema` 5.x (`@colyseus/sdk` 0.18).
    #[default]
    Modern,
    /// `@colyseus/schema` 3.x/4.x (`colyseus.js` 0.16).
    Legacy,
}

/// Writes the blocks of a patch.
#[doc(hidden)]
#[derive(Debug)]
pub struct PatchWriter<'a> {
    pub(crate) out: Vec<u8>,
    blocks: &'a mut Vec<Block>,
    pub(crate) dialect: Dialect,
    scratch: &'a mut ArrayScratch,
    /// A second output for another dialect, written in the same walk.
    second: Option<Output<'a>>,
    /// The run of the main output being extended, not in `blocks` yet
    /// (kept here: the common patch is one run, recorded without touching
    /// the vector per block).
    run: Block,
}

/// A patch output: bytes and their blocks.
#[derive(Debug)]
struct Output<'a> {
    dialect: Dialect,
    out: &'a mut Vec<u8>,
    blocks: &'a mut Vec<Block>,
}

/// An array op resolved for the wire: `(op byte, wire index or refId,
/// location of the value written)`.
pub(crate) type ArrayOp = (u8, u32, u32);

/// Reused buffers of the array encoder (resolved ops, element locations,
/// the client model).
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct ArrayScratch {
    pub(crate) ops: Vec<ArrayOp>,
    /// Where each element is, by element uid.
    pub(crate) loc: Vec<u32>,
    pub(crate) client: Vec<Option<crate::collections::array::ClientEl>>,
    /// An encoded value (view support).
    pub(crate) value: Vec<u8>,
    /// The client's refcounts of array elements, by element uid.
    pub(crate) counts: Vec<i32>,
}

/// An open block: where it starts and where its ops start.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenBlock {
    start: usize,
    body: usize,
    seq: u32,
    id: u32,
}

impl PatchWriter<'_> {
    /// The output and the array encoder's scratch buffers.
    #[inline]
    pub(crate) fn array_scratch(&mut self) -> (&mut Vec<u8>, &mut ArrayScratch) {
        (&mut self.out, self.scratch)
    }

    /// Opens the block of a ref: `ff | refId`.
    #[inline]
    pub(crate) fn begin(&mut self, meta: &RefMeta) -> OpenBlock {
        let start = self.out.len();
        write_header(&mut self.out, meta.id());
        OpenBlock {
            start,
            body: self.out.len(),
            seq: meta.seq,
            id: meta.id(),
        }
    }

    /// Closes a block (the same bytes in every dialect); a block without
    /// ops is dropped.
    #[inline]
    pub(crate) fn end(&mut self, b: OpenBlock) {
        if self.close(b) && self.second.is_some() {
            self.copy_to_second(b);
        }
    }

    #[cold]
    fn copy_to_second(&mut self, b: OpenBlock) {
        if let Some(second) = self.second.as_mut() {
            let start = second.out.len();
            second.out.extend_from_slice(&self.out[b.start..]);
            record(second.blocks, b.seq, start, second.out.len());
        }
    }

    /// Closes a block whose ops depend on the dialect: `ops` writes them for
    /// the second output, if any.
    #[inline]
    pub(crate) fn end_per_dialect(
        &mut self,
        b: OpenBlock,
        ops: impl FnOnce(Dialect, &mut Vec<u8>, &mut ArrayScratch),
    ) {
        self.close(b);
        if let Some(second) = self.second.as_mut() {
            let start = second.out.len();
            second.out.push(spec::SWITCH_TO_STRUCTURE);
            wire::encode_varint(second.out, b.id);
            let body = second.out.len();
            ops(second.dialect, second.out, self.scratch);
            if second.out.len() == body {
                second.out.truncate(start);
            } else {
                record(second.blocks, b.seq, start, second.out.len());
            }
        }
    }

    #[inline]
    fn close(&mut self, b: OpenBlock) -> bool {
        let end = self.out.len();
        if end == b.body {
            self.out.truncate(b.start);
            return false;
        }
        let run = &mut self.run;
        if run.end as usize == b.start && run.last_seq.wrapping_add(1) == b.seq {
            run.last_seq = b.seq;
            run.end = end as u32;
        } else {
            self.new_run(b, end);
        }
        true
    }

    #[cold]
    #[inline(never)]
    fn new_run(&mut self, b: OpenBlock, end: usize) {
        if self.run.end != NO_RUN {
            self.blocks.push(self.run);
        }
        self.run = Block {
            first_seq: b.seq,
            last_seq: b.seq,
            start: b.start as u32,
            end: end as u32,
        };
    }

    /// Runs `f` (the patch walk of a view field's subtree) and drops what it
    /// wrote: those changes go to views only, and are settled here.
    #[cold]
    #[doc(hidden)]
    pub fn discard(&mut self, f: impl FnOnce(&mut Self)) {
        let len = self.out.len();
        let blocks = self.blocks.len();
        let run = self.run;
        // The second output extends its last block in place (`record`):
        // keep that block too.
        let second = self
            .second
            .as_ref()
            .map(|s| (s.out.len(), s.blocks.len(), s.blocks.last().copied()));
        f(self);
        self.out.truncate(len);
        self.blocks.truncate(blocks);
        self.run = run;
        if let (Some(s), Some((l, b, last))) = (self.second.as_mut(), second) {
            s.out.truncate(l);
            s.blocks.truncate(b);
            if let (Some(cur), Some(last)) = (s.blocks.last_mut(), last) {
                *cur = last;
            }
        }
    }

    /// Records the last run; the output.
    fn finish(self) -> Vec<u8> {
        if self.run.end != NO_RUN {
            self.blocks.push(self.run);
        }
        self.out
    }
}

/// Blocks of refs that left the tree before the patch was written: the
/// entries a `clear()` removed while they held changes of the tick. The
/// reference keeps such refs' changes queued and sends their blocks (in
/// first-change order, like every block), so a client that never learns
/// of a ref added and cleared in one tick still gets its block; the bytes
/// follow it. Written for the modern dialect only (a 3.x client is sent
/// no block it cannot attach).
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    out: Vec<u8>,
    blocks: Vec<Block>,
    scratch: ArrayScratch,
}

impl Orphans {
    /// Runs `f` (a removed ref's patch walk) into these blocks.
    pub(crate) fn write(&mut self, f: impl FnOnce(&mut PatchWriter<'_>)) {
        let mut w = PatchWriter {
            out: std::mem::take(&mut self.out),
            blocks: &mut self.blocks,
            dialect: Dialect::Modern,
            scratch: &mut self.scratch,
            second: None,
            run: Block {
                first_seq: 0,
                last_seq: 0,
                start: 0,
                end: NO_RUN,
            },
        };
        f(&mut w);
        self.out = w.finish();
    }
}

impl PatchWriter<'_> {
    /// Adds the blocks of removed refs to a modern output (they are
    /// ordered with the others by their first change).
    #[cold]
    pub(crate) fn append_orphans(&mut self, o: &Orphans) {
        if self.dialect != Dialect::Modern || o.out.is_empty() {
            return;
        }
        if self.run.end != NO_RUN {
            self.blocks.push(self.run);
            self.run.end = NO_RUN;
        }
        let base = self.out.len() as u32;
        self.out.extend_from_slice(&o.out);
        self.blocks.extend(o.blocks.iter().map(|b| Block {
            start: b.start + base,
            end: b.end + base,
            ..*b
        }));
    }
}

/// Writes a full state: every ref in depth-first pre-order.
#[doc(hidden)]
#[derive(Debug)]
pub struct FullWriter<'a> {
    pub(crate) out: Vec<u8>,
    /// Buffers for [`FullWriter::with_children`], kept by the encoder.
    spare: Vec<Vec<u8>>,
    /// Keeps the writer's signature (`FullWriter<'_>`) stable.
    _life: std::marker::PhantomData<&'a ()>,
}

impl FullWriter<'_> {
    /// Opens the block of a ref (the root's header is implicit when first).
    #[inline]
    pub(crate) fn begin(&mut self, id: u32) -> OpenBlock {
        let start = self.out.len();
        if !(id == 0 && start == 0) {
            write_header(&mut self.out, id);
        }
        OpenBlock {
            start,
            body: self.out.len(),
            seq: 0,
            id,
        }
    }

    /// Closes a block; a block without ops is dropped.
    #[inline]
    pub(crate) fn end(&mut self, b: OpenBlock) {
        if self.out.len() == b.body {
            self.out.truncate(b.start);
        }
    }

    /// Writes a collection's block and its children's blocks in one pass
    /// over its entries: `f` gets the block's output and a writer for the
    /// children, whose bytes follow the block (the order of a block, then
    /// its children depth-first, is unchanged). A second pass would read
    /// every entry again, from memory, for a large collection.
    pub(crate) fn with_children(&mut self, id: u32, f: impl FnOnce(&mut Vec<u8>, &mut Self)) {
        let block = self.begin(id);
        let mut kids = FullWriter {
            out: self.spare.pop().unwrap_or_default(),
            spare: std::mem::take(&mut self.spare),
            _life: std::marker::PhantomData,
        };
        f(&mut self.out, &mut kids);
        self.end(block);
        self.out.extend_from_slice(&kids.out);
        self.spare = kids.spare;
        kids.out.clear();
        self.spare.push(kids.out);
    }
}

/// Options of an [`Encoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncoderOptions {
    reuse_ref_ids: bool,
}

impl EncoderOptions {
    /// Reuse the refIds of removed refs once the patch that removed them has
    /// gone out (default `true`). Keeps refIds, and so patches, small for
    /// states with churn. `false` numbers refs like the reference does
    /// (monotonically, never reused), which makes the bytes identical to
    /// `@colyseus/schema`'s for the same sequence of changes.
    #[must_use]
    pub const fn reuse_ref_ids(mut self, reuse: bool) -> Self {
        self.reuse_ref_ids = reuse;
        self
    }
}

impl Default for EncoderOptions {
    fn default() -> Self {
        Self {
            reuse_ref_ids: true,
        }
    }
}

/// Tracks a state and encodes it as full states and patches.
///
/// # Examples
///
/// ```
/// use roomcast_schema::{Encoder, MapSchema, Schema};
///
/// #[derive(Schema, Default)]
/// struct Player { name: String, x: f32 }
///
/// #[derive(Schema, Default)]
/// struct State { players: MapSchema<Player>, tick: u32 }
///
/// let mut enc = Encoder::new(State::default());
/// enc.state_mut().players_mut().insert("p1", Player { name: "Ann".into(), x: 1.0 });
/// let first = enc.encode_patch().to_vec();
/// assert!(!first.is_empty());
///
/// enc.state_mut().players_mut().get_mut("p1").unwrap().set_x(2.0);
/// // ff <refId of p1> | 81 <float32 2.0>
/// assert_eq!(enc.encode_patch(), [0xff, 0x02, 0x81, 0, 0, 0, 0x40]);
/// assert!(enc.encode_patch().is_empty()); // nothing changed since
/// ```
pub struct Encoder<T: Field> {
    state: T,
    track: T::Track,
    tick: Tick,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    blocks: Vec<Block>,
    buf2: Vec<u8>,
    blocks2: Vec<Block>,
    arrays: ArrayScratch,
    /// The buffers of [`FullWriter::with_children`], kept between full states.
    full_spare: Vec<Vec<u8>>,
}

impl<T: Field + std::fmt::Debug> std::fmt::Debug for Encoder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T: Field> Encoder<T> {
    /// Starts tracking `state`. Its whole content is part of the first patch
    /// (and of every full state).
    pub fn new(state: T) -> Self {
        Self::with_options(state, EncoderOptions::default())
    }

    /// Starts tracking `state` with options.
    pub fn with_options(mut state: T, options: EncoderOptions) -> Self {
        let mut tick = Tick::new(options.reuse_ref_ids, T::__type_ids());
        let mut track = T::Track::default();
        state.__attach(&mut track, &mut tick);
        // The root is refId 0, allocated before any child.
        Self {
            state,
            track,
            tick,
            buf: Vec::new(),
            scratch: Vec::new(),
            blocks: Vec::new(),
            buf2: Vec::new(),
            blocks2: Vec::new(),
            arrays: ArrayScratch::default(),
            full_spare: Vec::new(),
        }
    }

    /// The current state, for reading.
    #[must_use]
    pub fn state(&self) -> &T {
        &self.state
    }

    /// Encodes the whole state (the body of `ROOM_STATE` for a client joining
    /// now). Pending changes stay pending.
    ///
    /// Send it to a joining client only at a patch boundary (right after
    /// [`encode_patch`](Self::encode_patch)): a full state taken mid-tick
    /// followed by that tick's patch applies some changes twice (spec
    /// `schema-wire.md` §15).
    /// The bytes are the same for every [`Dialect`].
    pub fn encode_all(&mut self) -> &[u8] {
        self.buf.clear();
        let mut w = FullWriter {
            out: std::mem::take(&mut self.buf),
            spare: std::mem::take(&mut self.full_spare),
            _life: std::marker::PhantomData,
        };
        self.state.__encode_full(&self.track, &mut w);
        self.buf = w.out;
        self.full_spare = w.spare;
        &self.buf
    }

    /// Encodes the changes since the previous patch (the body of
    /// `ROOM_STATE_PATCH`) and forgets them. Empty when nothing changed (do
    /// not send it then). The cost is proportional to the changes, not to
    /// the state.
    pub fn encode_patch(&mut self) -> &[u8] {
        self.encode_patch_as(Dialect::Modern)
    }

    /// [`encode_patch`](Self::encode_patch) for a decoder generation.
    pub fn encode_patch_as(&mut self, dialect: Dialect) -> &[u8] {
        self.walk(dialect, None);
        order_blocks(&mut self.buf, &mut self.blocks, &mut self.scratch);
        strip(&self.buf)
    }

    /// Encodes the pending changes once for both decoder generations (for a
    /// room holding clients of each) and forgets them: `(modern, legacy)`.
    /// The bytes differ only where arrays change (spec §14).
    pub fn encode_patch_both(&mut self) -> (&[u8], &[u8]) {
        self.walk(Dialect::Modern, Some(Dialect::Legacy));
        order_blocks(&mut self.buf, &mut self.blocks, &mut self.scratch);
        order_blocks(&mut self.buf2, &mut self.blocks2, &mut self.scratch);
        (strip(&self.buf), strip(&self.buf2))
    }

    fn walk(&mut self, dialect: Dialect, second: Option<Dialect>) {
        if self.tick.views.active() {
            self.encode_views(dialect, second);
        }
        self.buf.clear();
        self.blocks.clear();
        self.buf2.clear();
        self.blocks2.clear();
        let mut w = PatchWriter {
            out: std::mem::take(&mut self.buf),
            blocks: &mut self.blocks,
            dialect,
            scratch: &mut self.arrays,
            second: second.map(|d| Output {
                dialect: d,
                out: &mut self.buf2,
                blocks: &mut self.blocks2,
            }),
            run: Block {
                first_seq: 0,
                last_seq: 0,
                start: 0,
                end: NO_RUN,
            },
        };
        self.state.__encode_patch(&mut self.track, &mut w);
        self.buf = w.finish();
        self.tick.end_patch();
    }

    /// Identity allocation statistics (for memory tests and benches).
    #[must_use]
    pub fn tick_stats(&self) -> &Tick {
        &self.tick
    }

    /// Consumes the encoder, returning the state.
    pub fn into_state(self) -> T {
        self.state
    }

    /// Creates a view (one per client with filtered fields, like
    /// `client.view = new StateView()`). See [`ViewTarget`] for showing
    /// instances to it.
    ///
    /// [`ViewTarget`]: crate::ViewTarget
    pub fn create_view(&mut self) -> ViewId {
        self.tick.views.create_view()
    }

    /// Drops a view (its client left); returns whether it existed. Its
    /// handle is ignored from then on.
    pub fn drop_view(&mut self, view: ViewId) -> bool {
        self.tick.views.drop_view(view)
    }

    /// The view part of the last [`encode_patch`](Self::encode_patch) for
    /// `view`: that client receives the shared patch followed by these
    /// bytes (in one message). Empty when the view has nothing new (or
    /// does not exist).
    #[must_use]
    pub fn view_patch(&self, view: ViewId) -> &[u8] {
        self.tick.views.get(view).map_or(&[], |v| v.patch())
    }

    /// The view part of the last patch for `view` in `dialect`: after
    /// [`encode_patch_both`](Self::encode_patch_both), a 0.16 client
    /// (`Dialect::Legacy`) receives the legacy shared bytes followed by
    /// these. The two parts differ where a filtered array of primitives
    /// gets an insert 3.x decodes differently, a filtered Set/Collection
    /// loses an entry or gets an ADD of one its client holds, or a filtered
    /// array of structs loses an element (spec `schema-wire.md` §14).
    /// Empty when the last patch was not encoded for `dialect`.
    #[must_use]
    pub fn view_patch_as(&self, view: ViewId, dialect: Dialect) -> &[u8] {
        self.tick.views.patch_as(view, dialect)
    }

    /// The view part of a full state for `view`: a client joining with
    /// this view receives [`encode_all`](Self::encode_all) followed by these
    /// bytes. Applies the view's pending `show`/`hide` calls and makes this
    /// what the client holds (the next view patches continue from it). Send
    /// it at a patch boundary, like `encode_all`.
    pub fn encode_all_view(&mut self, view: ViewId) -> &[u8] {
        let (state, track, tick) = (&self.state, &self.track, &mut self.tick);
        let mut found = false;
        state.__with_node(track, &mut |root| {
            found = crate::view::encode_all_view(root, tick, view).is_some();
        });
        if found {
            self.tick.views.get(view).map_or(&[], |v| v.full())
        } else {
            &[]
        }
    }

    /// Makes the view walk visit every instance for every view (the
    /// O(state × views) walk the incremental one must match byte for
    /// byte); for tests.
    #[doc(hidden)]
    pub fn __exhaustive_view_walk(&mut self, on: bool) {
        self.tick.views.set_exhaustive(on);
    }

    #[cold]
    fn encode_views(&mut self, dialect: Dialect, second: Option<Dialect>) {
        let (state, track, tick) = (&self.state, &self.track, &mut self.tick);
        state.__with_node(track, &mut |root| {
            crate::view::encode_views(root, tick, dialect, second);
        });
    }

    pub(crate) fn parts_mut(&mut self) -> (&mut T, &mut T::Track, &mut Tick) {
        (&mut self.state, &mut self.track, &mut self.tick)
    }
}

impl<T: Schema> Encoder<T> {
    /// The view through which the state is changed; every change is recorded
    /// for the next patch.
    pub fn state_mut(&mut self) -> T::Mut<'_> {
        self.state.__view(
            &mut self.track.state,
            &mut self.track.children,
            &mut self.tick,
        )
    }

    /// Whether changes are pending (a view was taken or something changed
    /// since the last patch).
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.track.state.meta.seq != NO_SEQ || self.track.state.child_dirty != 0
    }

    /// The state's types, numbered like the reference's `TypeContext`.
    ///
    /// # Errors
    ///
    /// A type with more than 63 fields (the derive refuses those already).
    pub fn types(&self) -> Result<TypeRegistry, TypeError> {
        registry_of::<T>()
    }
}

/// Puts a patch's blocks in first-change order (they were written in tree
/// order). Runs cover disjoint ranges of sequence numbers (every ref takes
/// its own when it first changes or is attached), so no two compare equal
/// and an unstable sort is exact; a fresh subtree keeps its DFS order
/// because its refs were numbered in that order when attached.
fn order_blocks(buf: &mut Vec<u8>, blocks: &mut [Block], scratch: &mut Vec<u8>) {
    if blocks.windows(2).any(|p| p[0].first_seq > p[1].first_seq) {
        blocks.sort_unstable_by_key(|b| b.first_seq);
        scratch.clear();
        for b in blocks.iter() {
            scratch.extend_from_slice(&buf[b.start as usize..b.end as usize]);
        }
        std::mem::swap(buf, scratch);
    }
}

/// A stream starting with the root's ops has no `ff 00`.
fn strip(buf: &[u8]) -> &[u8] {
    if buf.starts_with(&[spec::SWITCH_TO_STRUCTURE, 0]) {
        &buf[2..]
    } else {
        buf
    }
}

/// The registry of a Schema type and everything reachable from it.
///
/// # Errors
///
/// A type with more than 63 fields.
pub fn registry_of<T: Schema>() -> Result<TypeRegistry, TypeError> {
    let mut d = Describer::default();
    let root = d.schema::<T>();
    TypeRegistry::from_named(&root, &d.types)
}
