//! The room clock: elapsed and delta time, timers.
//!
//! Sans-IO like the rest of the room: the clock never reads the system
//! time; the room feeds it the `now` of each event.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::room::{Room, RoomCtx};

/// Identifies a timer of one room's [`Clock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

pub(crate) type TimerCallback<R> = Box<dyn FnMut(&mut R, &mut RoomCtx<R>) + Send>;

struct Timer<R: Room> {
    due: Instant,
    period: Option<Duration>,
    /// `None` while the callback runs.
    callback: Option<TimerCallback<R>>,
}

/// A room's clock and timers.
///
/// Timers fire from the room's own task, in due order, with the room and
/// its context, like Colyseus' `this.clock.setTimeout`. A paused clock
/// fires nothing; on resume every pending timer is pushed back by the time
/// spent paused.
pub struct Clock<R: Room> {
    start: Instant,
    now: Instant,
    delta: Duration,
    paused_at: Option<Instant>,
    paused_total: Duration,
    next_id: u64,
    timers: BTreeMap<TimerId, Timer<R>>,
}

impl<R: Room> fmt::Debug for Clock<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("elapsed", &self.elapsed())
            .field("delta", &self.delta)
            .field("timers", &self.timers.len())
            .finish()
    }
}

impl<R: Room> Clock<R> {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            start: now,
            now,
            delta: Duration::ZERO,
            paused_at: None,
            paused_total: Duration::ZERO,
            next_id: 0,
            timers: BTreeMap::new(),
        }
    }

    /// Time the clock has run since the room was created, pauses excluded.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        let end = self.paused_at.unwrap_or(self.now);
        end.saturating_duration_since(self.start)
            .saturating_sub(self.paused_total)
    }

    /// Time between the last two simulation ticks.
    #[must_use]
    pub fn delta_time(&self) -> Duration {
        self.delta
    }

    /// The time of the event being processed.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Runs `callback` once, `delay` from now.
    pub fn set_timeout(
        &mut self,
        delay: Duration,
        callback: impl FnOnce(&mut R, &mut RoomCtx<R>) + Send + 'static,
    ) -> TimerId {
        let mut callback = Some(callback);
        self.insert(delay, None, move |room, ctx| {
            if let Some(callback) = callback.take() {
                callback(room, ctx);
            }
        })
    }

    /// Runs `callback` every `period` (at least 1 ms), first `period` from now.
    pub fn set_interval(
        &mut self,
        period: Duration,
        callback: impl FnMut(&mut R, &mut RoomCtx<R>) + Send + 'static,
    ) -> TimerId {
        let period = period.max(Duration::from_millis(1));
        self.insert(period, Some(period), callback)
    }

    /// Cancels a timer; returns whether it existed.
    pub fn clear(&mut self, id: TimerId) -> bool {
        self.timers.remove(&id).is_some()
    }

    /// Cancels every timer.
    pub fn clear_all(&mut self) {
        self.timers.clear();
    }

    /// Stops firing timers until [`resume`](Self::resume).
    pub fn pause(&mut self) {
        self.paused_at.get_or_insert(self.now);
    }

    /// Resumes a paused clock, delaying pending timers by the pause.
    pub fn resume(&mut self) {
        if let Some(at) = self.paused_at.take() {
            let paused = self.now.saturating_duration_since(at);
            self.paused_total += paused;
            for timer in self.timers.values_mut() {
                timer.due += paused;
            }
        }
    }

    /// Whether the clock is paused.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    fn insert(
        &mut self,
        delay: Duration,
        period: Option<Duration>,
        callback: impl FnMut(&mut R, &mut RoomCtx<R>) + Send + 'static,
    ) -> TimerId {
        let id = TimerId(self.next_id);
        self.next_id += 1;
        self.timers.insert(
            id,
            Timer {
                due: self.now + delay,
                period,
                callback: Some(Box::new(callback)),
            },
        );
        id
    }

    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    pub(crate) fn set_delta(&mut self, delta: Duration) {
        self.delta = delta;
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        if self.paused_at.is_some() {
            return None;
        }
        self.timers.values().map(|t| t.due).min()
    }

    /// Timers due at `now`, earliest first.
    pub(crate) fn due(&self, now: Instant) -> Vec<TimerId> {
        if self.paused_at.is_some() {
            return Vec::new();
        }
        let mut due: Vec<_> = self
            .timers
            .iter()
            .filter(|(_, t)| t.due <= now)
            .map(|(id, t)| (t.due, *id))
            .collect();
        due.sort_unstable();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Takes a due timer's callback out to run it, rescheduling intervals.
    pub(crate) fn take_due(&mut self, id: TimerId, now: Instant) -> Option<TimerCallback<R>> {
        let timer = self.timers.get_mut(&id)?;
        if timer.due > now || self.paused_at.is_some() {
            return None;
        }
        let callback = timer.callback.take();
        match timer.period {
            Some(period) => {
                timer.due += period;
                if timer.due <= now {
                    // Far behind (a long hook): skip the missed runs.
                    timer.due = now + period;
                }
            }
            None => {
                self.timers.remove(&id);
            }
        }
        callback
    }

    /// Puts an interval's callback back unless it was cleared meanwhile.
    pub(crate) fn restore(&mut self, id: TimerId, callback: TimerCallback<R>) {
        if let Some(timer) = self.timers.get_mut(&id) {
            timer.callback = Some(callback);
        }
    }
}
