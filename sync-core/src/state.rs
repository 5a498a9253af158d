//! The seam between the room layer and a state encoder.

use bytes::Bytes;
use roomcast_schema::ViewId;

use crate::protocol::Dialect;

/// A room state the room layer can synchronize.
///
/// `roomcast-schema`'s encoder implements it; any encoder producing the
/// bytes of schema-wire.md can. The room layer calls
/// [`encode_patch`](Self::encode_patch) once per patch tick, asking only for
/// the dialects of the clients present, and sends the same bytes to every
/// client of a dialect.
pub trait SyncState: Send + 'static {
    /// The serializer id sent in JOIN_ROOM (room-protocol.md §5.1).
    fn serializer_id(&self) -> &'static str {
        "schema"
    }

    /// The Reflection bytes for `dialect` (schema-wire.md §10, §14).
    fn handshake(&self, dialect: Dialect) -> Bytes;

    /// The full state (schema-wire.md §8), without the protocol byte. It
    /// must not discard pending changes.
    fn encode_full(&mut self, dialect: Dialect) -> Bytes;

    /// The changes since the last call, for each dialect in `want`, without
    /// the protocol byte; `None` for a dialect when nothing changed. Pending
    /// changes are discarded, even when `want` is empty.
    fn encode_patch(&mut self, want: DialectSet) -> PatchFrames;

    /// Creates a per-client view of the state's filtered fields
    /// (schema-wire.md §11); `None` when the state has no views (the
    /// default).
    fn create_view(&mut self) -> Option<ViewId> {
        None
    }

    /// Drops a view created by [`create_view`](Self::create_view) (its
    /// client left).
    fn drop_view(&mut self, view: ViewId) {
        let _ = view;
    }

    /// The view part of the last [`encode_patch`](Self::encode_patch) for
    /// `view` in the client's `dialect` (one of those the patch was encoded
    /// for), sent after that dialect's shared bytes in the same message;
    /// empty when the view has nothing new.
    fn view_patch(&self, view: ViewId, dialect: Dialect) -> &[u8] {
        let _ = (view, dialect);
        &[]
    }

    /// The view part of a full state, sent after
    /// [`encode_full`](Self::encode_full) to a client with `view`; the
    /// view's next patches continue from it. It must not discard pending
    /// changes.
    fn encode_full_view(&mut self, view: ViewId) -> Bytes {
        let _ = view;
        Bytes::new()
    }
}

/// A set of [`Dialect`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DialectSet {
    modern: bool,
    legacy: bool,
}

impl DialectSet {
    /// No dialect.
    pub const EMPTY: Self = Self {
        modern: false,
        legacy: false,
    };

    /// Adds a dialect.
    pub fn insert(&mut self, dialect: Dialect) {
        match dialect {
            Dialect::Modern => self.modern = true,
            Dialect::Legacy => self.legacy = true,
        }
    }

    /// Whether `dialect` is in the set.
    #[must_use]
    pub fn contains(self, dialect: Dialect) -> bool {
        match dialect {
            Dialect::Modern => self.modern,
            Dialect::Legacy => self.legacy,
        }
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        !self.modern && !self.legacy
    }
}

/// Patch bodies per dialect, as returned by [`SyncState::encode_patch`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchFrames {
    /// Body for [`Dialect::Modern`] clients.
    pub modern: Option<Bytes>,
    /// Body for [`Dialect::Legacy`] clients.
    pub legacy: Option<Bytes>,
}

impl PatchFrames {
    /// The body for `dialect`.
    #[must_use]
    pub fn get(&self, dialect: Dialect) -> Option<&Bytes> {
        match dialect {
            Dialect::Modern => self.modern.as_ref(),
            Dialect::Legacy => self.legacy.as_ref(),
        }
    }
}

/// The state of a room that never calls `set_state`: serializer `"none"`,
/// no bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoState;

impl SyncState for NoState {
    fn serializer_id(&self) -> &'static str {
        "none"
    }

    fn handshake(&self, _: Dialect) -> Bytes {
        Bytes::new()
    }

    fn encode_full(&mut self, _: Dialect) -> Bytes {
        Bytes::new()
    }

    fn encode_patch(&mut self, _: DialectSet) -> PatchFrames {
        PatchFrames::default()
    }
}

/// A [`SyncState`] holding data a room reads and changes directly: what
/// [`RoomCtx::state`](crate::RoomCtx::state) and
/// [`RoomCtx::state_mut`](crate::RoomCtx::state_mut) give.
///
/// The `roomcast-schema` encoder implements it: its data is the
/// `#[derive(Schema)]` state, changed through the derive's view, which
/// records every change for the next patch.
pub trait StateAccess: SyncState {
    /// The data read by [`state`](Self::state).
    type Data;
    /// What [`state_mut`](Self::state_mut) gives to change the data.
    type Mut<'a>
    where
        Self: 'a;

    /// The data.
    fn state(&self) -> &Self::Data;

    /// The data, for changes.
    fn state_mut(&mut self) -> Self::Mut<'_>;
}

impl<T> StateAccess for roomcast_schema::Encoder<T>
where
    T: roomcast_schema::Schema + 'static,
    Self: Send,
{
    type Data = T;
    type Mut<'a> = T::Mut<'a>;

    #[inline]
    fn state(&self) -> &T {
        Self::state(self)
    }

    #[inline]
    fn state_mut(&mut self) -> T::Mut<'_> {
        Self::state_mut(self)
    }
}

/// The `roomcast-schema` encoder is the state of a room: `ctx.set_state(Encoder::new(state))`,
/// then change it through `ctx.state_mut()`.
impl<T> SyncState for roomcast_schema::Encoder<T>
where
    T: roomcast_schema::Schema + 'static,
    Self: Send,
{
    fn handshake(&self, dialect: Dialect) -> Bytes {
        match self.types() {
            Ok(types) => roomcast_schema::encode_reflection(&types, dialect).into(),
            Err(e) => {
                tracing::error!("state types cannot be described: {e}");
                Bytes::new()
            }
        }
    }

    fn encode_full(&mut self, _: Dialect) -> Bytes {
        // Full states are the same in both dialects.
        Bytes::copy_from_slice(self.encode_all())
    }

    fn encode_patch(&mut self, want: DialectSet) -> PatchFrames {
        let some = |bytes: &[u8]| (!bytes.is_empty()).then(|| Bytes::copy_from_slice(bytes));
        match (
            want.contains(Dialect::Modern),
            want.contains(Dialect::Legacy),
        ) {
            (true, true) => {
                let (modern, legacy) = self.encode_patch_both();
                PatchFrames {
                    modern: some(modern),
                    legacy: some(legacy),
                }
            }
            (false, true) => PatchFrames {
                modern: None,
                legacy: some(self.encode_patch_as(Dialect::Legacy)),
            },
            (true, false) => PatchFrames {
                modern: some(self.encode_patch_as(Dialect::Modern)),
                legacy: None,
            },
            (false, false) => {
                let _ = self.encode_patch();
                PatchFrames::default()
            }
        }
    }

    fn create_view(&mut self) -> Option<ViewId> {
        Some(Self::create_view(self))
    }

    fn drop_view(&mut self, view: ViewId) {
        Self::drop_view(self, view);
    }

    fn view_patch(&self, view: ViewId, dialect: Dialect) -> &[u8] {
        Self::view_patch_as(self, view, dialect)
    }

    fn encode_full_view(&mut self, view: ViewId) -> Bytes {
        Bytes::copy_from_slice(self.encode_all_view(view))
    }
}

/// What [`RoomCtx::set_state`](crate::RoomCtx::set_state) takes: the
/// room's state itself, or, for an `Encoder<T>` state, its data `T`, which
/// goes into a new encoder (Colyseus `this.state = new MyState()`).
///
/// # Examples
///
/// ```
/// use roomcast::schema::Encoder;
/// use roomcast::{Room, RoomCtx, Schema};
///
/// #[derive(Schema, Default)]
/// struct Score {
///     points: u32,
/// }
///
/// fn reset(ctx: &mut RoomCtx<impl Room<State = Encoder<Score>>>) {
///     ctx.set_state(Score { points: 10 });
///     assert_eq!(ctx.state().points, 10);
///     ctx.set_state(Encoder::new(Score::default()));
///     assert_eq!(ctx.state().points, 0);
/// }
/// ```
pub trait IntoState<S> {
    /// The state.
    fn into_state(self) -> S;
}

/// The state itself.
impl<S: SyncState> IntoState<S> for S {
    fn into_state(self) -> S {
        self
    }
}

/// The data of an `Encoder` state.
impl<T> IntoState<roomcast_schema::Encoder<T>> for T
where
    T: roomcast_schema::Schema,
    roomcast_schema::Encoder<T>: SyncState,
{
    fn into_state(self) -> roomcast_schema::Encoder<T> {
        roomcast_schema::Encoder::new(self)
    }
}
