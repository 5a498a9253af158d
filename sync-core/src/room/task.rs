//! Tasks: async code that runs alongside the room and comes back to it
//! as often as it needs ([`RoomCtx::spawn_task`], [`RoomHandle`]).
//!
//! A hook's future borrows the room (`&mut self`, `&mut RoomCtx`), so the
//! room runs nothing else until it completes: a hook that awaited a
//! [`Reconnection`](super::Reconnection) would wait for a reconnection the
//! room can never process. A task owns no borrow. Each time it needs the
//! room it asks through its [`RoomHandle`]: the closure it passes runs with
//! `&mut R` and `&mut RoomCtx<R>` at the room's next turn (between two
//! events, like a [`spawn`](RoomCtx::spawn) continuation), and the task
//! resumes with what the closure returned. Between those turns the room
//! serves everyone else, reconnections included.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use super::ctx::Continuation;
use super::{Room, RoomCtx};

/// The queue through which tasks reach their room.
pub(crate) struct Mailbox<R: Room> {
    /// Cloned into every [`RoomHandle`]: more than one reference means a
    /// handle is alive, and the shell keeps polling.
    tx: Arc<mpsc::UnboundedSender<Continuation<R>>>,
    rx: mpsc::UnboundedReceiver<Continuation<R>>,
}

impl<R: Room> Default for Mailbox<R> {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded();
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl<R: Room> Mailbox<R> {
    pub(crate) fn handle(&self) -> RoomHandle<R> {
        RoomHandle {
            tx: Arc::clone(&self.tx),
        }
    }

    /// Whether a [`RoomHandle`] is alive (it may ask for the room).
    pub(crate) fn has_handles(&self) -> bool {
        Arc::strong_count(&self.tx) > 1
    }

    /// The next closure a task asked to run with the room.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Continuation<R>>> {
        self.rx.poll_next_unpin(cx)
    }
}

/// A task's way back to its room (see [`RoomCtx::spawn_task`]). Cheap to
/// clone; it outlives nothing: once the room is disposed,
/// [`with`](Self::with) returns `None`.
pub struct RoomHandle<R: Room> {
    tx: Arc<mpsc::UnboundedSender<Continuation<R>>>,
}

impl<R: Room> Clone for RoomHandle<R> {
    fn clone(&self) -> Self {
        Self {
            tx: Arc::clone(&self.tx),
        }
    }
}

impl<R: Room> fmt::Debug for RoomHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomHandle").finish_non_exhaustive()
    }
}

impl<R: Room> RoomHandle<R> {
    /// Runs `f` with the room at its next turn and returns what it
    /// returned; `None` when the room is gone (disposed) or `f` panicked
    /// (logged). The events `f` causes (a patch, a leave) follow as after
    /// any handler.
    pub async fn with<T, F>(&self, f: F) -> Option<T>
    where
        F: FnOnce(&mut R, &mut RoomCtx<R>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: Continuation<R> = Box::new(move |room: &mut R, ctx: &mut RoomCtx<R>| {
            let _ = tx.send(f(room, ctx));
        });
        self.tx.unbounded_send(run).ok()?;
        rx.await.ok()
    }
}

impl<R: Room> RoomCtx<R> {
    /// Runs the future `task` makes alongside the room: it owns no borrow
    /// of the room and comes back to it through its [`RoomHandle`] as often
    /// as it likes, so it may wait (for a [`Reconnection`](super::Reconnection),
    /// a database, a timer of your runtime) while the room serves everyone
    /// else. Tasks still pending when the room is disposed are dropped.
    ///
    /// This is the form of Colyseus'
    /// `await this.allowReconnection(client, 10)` inside `onDrop`: the hook
    /// opens the window (it must, before it returns, or the client leaves),
    /// and a task awaits it.
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::{Client, NoState, Options, Room, RoomCtx, ServerError};
    ///
    /// #[derive(Default)]
    /// struct Game {
    ///     away: Vec<String>,
    /// }
    ///
    /// impl Room for Game {
    ///     type State = NoState;
    ///     type UserData = ();
    ///     type Auth = ();
    ///
    ///     async fn on_create(&mut self, _: &mut RoomCtx<Self>, _: &Options) -> Result<(), ServerError> {
    ///         Ok(())
    ///     }
    ///
    ///     async fn on_drop(&mut self, ctx: &mut RoomCtx<Self>, client: &Client, _code: u16) {
    ///         self.away.push(client.session_id().to_owned());
    ///         let reconnection = ctx.allow_reconnection(client, 10);
    ///         ctx.spawn_task(|room| async move {
    ///             let Ok(client) = reconnection.await else {
    ///                 return; // gone for good: on_leave runs
    ///             };
    ///             room.with(move |game, ctx| {
    ///                 game.away.retain(|id| id != client.session_id());
    ///                 ctx.send(&client, "welcome_back", &game.away);
    ///             })
    ///             .await;
    ///         });
    ///     }
    /// }
    /// ```
    pub fn spawn_task<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(RoomHandle<R>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let task = task(self.mailbox.handle());
        self.spawn(task, |_, _, ()| {});
    }

    /// A handle to this room for code that runs outside it: a future handed
    /// to [`spawn`](Self::spawn), or a task of your runtime. While one is
    /// alive the shell keeps polling for what it asks.
    #[must_use]
    pub fn handle(&self) -> RoomHandle<R> {
        self.mailbox.handle()
    }
}
