//! Prometheus metrics of a server ([`ServerConfig::metrics`]), served in
//! the text exposition format.
//!
//! Why `prometheus-client`: it is the Prometheus project's own Rust client
//! (maintained under the `prometheus` organisation), keeps an explicit
//! [`Registry`] per server (no process-global recorder that an application
//! may already have installed for itself, and two servers in one test
//! binary stay apart), and its counters and gauges are plain atomics
//! behind an `Arc` that a room clones once. A room's task counts messages
//! and bytes in plain fields and adds them to those atomics once per flush
//! ([`RoomMetrics::publish`]), so a message costs an addition, and a patch
//! to 1,000 clients a few atomic adds. Its histograms take an uncontended
//! mutex per observation: they are observed once per patch and once per
//! matchmaking request, never per message. (`metrics` + `metrics-exporter-prometheus` would add
//! a global recorder and `metrics-util`'s dependency tree for the same
//! output.)
//!
//! Every room name gets its own series (`room="world"`); the per-room
//! handles are looked up once, when a room starts ([`RoomMetrics`]).
//!
//! [`ServerConfig::metrics`]: crate::ServerConfig::metrics

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The `room` label: the room's name (its definition), not its id, so the
/// number of series stays that of the definitions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoomLabel {
    room: String,
}

/// The `method` label of matchmaking requests (`joinOrCreate`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

/// Panics caught in user code (hooks, handlers, timers, patch encoding),
/// for the whole process: they are caught where no server is at hand.
static PANICS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Counts a panic caught in user code.
#[cold]
pub(crate) fn panic_caught() {
    PANICS.inc();
}

fn patch_histogram() -> Histogram {
    // 1 µs … ~8 ms.
    Histogram::new(exponential_buckets(1e-6, 2.0, 14))
}

fn matchmake_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// A server's metrics and the registry that renders them.
pub(crate) struct Metrics {
    registry: Registry,
    rooms: Family<RoomLabel, Gauge>,
    clients: Family<RoomLabel, Gauge>,
    joins: Family<RoomLabel, Counter>,
    leaves: Family<RoomLabel, Counter>,
    reconnections: Family<RoomLabel, Counter>,
    messages_in: Family<RoomLabel, Counter>,
    messages_out: Family<RoomLabel, Counter>,
    bytes_in: Family<RoomLabel, Counter>,
    bytes_out: Family<RoomLabel, Counter>,
    dropped_slow: Family<RoomLabel, Counter>,
    patch_encode: Family<RoomLabel, Histogram>,
    patch_broadcast: Family<RoomLabel, Histogram>,
    matchmake: Family<MethodLabel, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("roomcast");
        let rooms = Family::<RoomLabel, Gauge>::default();
        let clients = Family::<RoomLabel, Gauge>::default();
        let joins = Family::<RoomLabel, Counter>::default();
        let leaves = Family::<RoomLabel, Counter>::default();
        let reconnections = Family::<RoomLabel, Counter>::default();
        let messages_in = Family::<RoomLabel, Counter>::default();
        let messages_out = Family::<RoomLabel, Counter>::default();
        let bytes_in = Family::<RoomLabel, Counter>::default();
        let bytes_out = Family::<RoomLabel, Counter>::default();
        let dropped_slow = Family::<RoomLabel, Counter>::default();
        let patch_encode =
            Family::<RoomLabel, Histogram>::new_with_constructor(patch_histogram as fn() -> _);
        let patch_broadcast =
            Family::<RoomLabel, Histogram>::new_with_constructor(patch_histogram as fn() -> _);
        let matchmake = Family::<MethodLabel, Histogram>::new_with_constructor(
            matchmake_histogram as fn() -> _,
        );
        registry.register("rooms", "Live rooms of this process", rooms.clone());
        registry.register(
            "clients",
            "Clients joined to the rooms of this process",
            clients.clone(),
        );
        registry.register("joins", "Clients that joined a room", joins.clone());
        registry.register(
            "leaves",
            "Clients that left a room for good",
            leaves.clone(),
        );
        registry.register(
            "reconnections",
            "Dropped clients that came back with their reconnection token",
            reconnections.clone(),
        );
        registry.register(
            "messages_in",
            "WebSocket messages received from clients",
            messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "WebSocket messages sent to clients (patches count once per client)",
            messages_out.clone(),
        );
        registry.register_with_unit(
            "received",
            "Bytes of the messages received from clients",
            Unit::Bytes,
            bytes_in.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Bytes of the messages sent to clients",
            Unit::Bytes,
            bytes_out.clone(),
        );
        registry.register(
            "dropped_slow_clients",
            "Clients disconnected because they did not read what the room sent",
            dropped_slow.clone(),
        );
        registry.register_with_unit(
            "patch_encode",
            "Time to encode and queue one patch of a room",
            Unit::Seconds,
            patch_encode.clone(),
        );
        registry.register_with_unit(
            "patch_broadcast",
            "Time from a patch tick to its frames in every client's socket (or queue): \
             the tick's hooks, encoding and the writes",
            Unit::Seconds,
            patch_broadcast.clone(),
        );
        registry.register_with_unit(
            "matchmake",
            "Time to answer an HTTP matchmaking request",
            Unit::Seconds,
            matchmake.clone(),
        );
        registry.register(
            "panics_caught",
            "Panics caught in user code (hooks, handlers, timers), whole process",
            PANICS.clone(),
        );
        Self {
            registry,
            rooms,
            clients,
            joins,
            leaves,
            reconnections,
            messages_in,
            messages_out,
            bytes_in,
            bytes_out,
            dropped_slow,
            patch_encode,
            patch_broadcast,
            matchmake,
        }
    }
}

impl Metrics {
    /// The handles of a new room named `name`, counted in `rooms`.
    pub(crate) fn room(&self, name: &str) -> RoomMetrics {
        let label = RoomLabel {
            room: name.to_owned(),
        };
        let rooms = self.rooms.get_or_create_owned(&label);
        rooms.inc();
        RoomMetrics {
            live: Some(rooms),
            clients: self.clients.get_or_create_owned(&label),
            joins: self.joins.get_or_create_owned(&label),
            leaves: self.leaves.get_or_create_owned(&label),
            reconnections: self.reconnections.get_or_create_owned(&label),
            messages_in: self.messages_in.get_or_create_owned(&label),
            messages_out: self.messages_out.get_or_create_owned(&label),
            bytes_in: self.bytes_in.get_or_create_owned(&label),
            bytes_out: self.bytes_out.get_or_create_owned(&label),
            dropped_slow: self.dropped_slow.get_or_create_owned(&label),
            patch_encode: self.patch_encode.get_or_create_owned(&label),
            patch_broadcast: self.patch_broadcast.get_or_create_owned(&label),
            local: Arc::default(),
            joined_at: HashMap::new(),
            counted_clients: 0,
            unpublished: Unpublished::default(),
        }
    }

    /// Records how long a matchmaking request took.
    #[cfg(feature = "server")]
    pub(crate) fn matchmake(&self, method: crate::Method, took: std::time::Duration) {
        use crate::Method;
        let method = match method {
            Method::JoinOrCreate => "joinOrCreate",
            Method::Create => "create",
            Method::Join => "join",
            Method::JoinById => "joinById",
            Method::Reconnect => "reconnect",
        };
        self.matchmake
            .get_or_create(&MethodLabel { method })
            .observe(took.as_secs_f64());
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// This room's own counts, for the monitor's rates (patches/s, bytes/s).
#[derive(Debug, Default)]
pub(crate) struct RoomCounts {
    pub(crate) patches: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
}

/// Messages counted by a room's task and not yet added to the shared
/// counters.
#[derive(Debug, Default)]
struct Unpublished {
    messages_in: u64,
    bytes_in: u64,
    messages_out: u64,
    bytes_out: u64,
}

/// One room's handles into its server's [`Metrics`]: clones of the series
/// of its name, taken once, so counting is an atomic add. [`Default`]
/// gives handles counted nowhere (a room not run by a server).
#[derive(Debug)]
pub(crate) struct RoomMetrics {
    live: Option<Gauge>,
    clients: Gauge,
    joins: Counter,
    leaves: Counter,
    reconnections: Counter,
    messages_in: Counter,
    messages_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    dropped_slow: Counter,
    patch_encode: Histogram,
    patch_broadcast: Histogram,
    pub(crate) local: Arc<RoomCounts>,
    /// When each client of the room joined (for the monitor).
    pub(crate) joined_at: HashMap<Arc<str>, SystemTime>,
    /// Clients this room added to `clients` (joined, not yet left).
    counted_clients: i64,
    unpublished: Unpublished,
}

impl Default for RoomMetrics {
    fn default() -> Self {
        Self {
            live: None,
            clients: Gauge::default(),
            joins: Counter::default(),
            leaves: Counter::default(),
            reconnections: Counter::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            dropped_slow: Counter::default(),
            patch_encode: patch_histogram(),
            patch_broadcast: patch_histogram(),
            local: Arc::default(),
            joined_at: HashMap::new(),
            counted_clients: 0,
            unpublished: Unpublished::default(),
        }
    }
}

impl Drop for RoomMetrics {
    fn drop(&mut self) {
        self.publish();
        if let Some(live) = &self.live {
            live.dec();
        }
        self.clients.dec_by(self.counted_clients);
    }
}

impl RoomMetrics {
    /// A client joined.
    pub(crate) fn joined(&mut self, session_id: &str) {
        self.joins.inc();
        self.joined_at.insert(session_id.into(), SystemTime::now());
        self.clients.inc();
        self.counted_clients += 1;
    }

    /// A client left for good.
    pub(crate) fn left(&mut self, session_id: &str) {
        self.leaves.inc();
        self.joined_at.remove(session_id);
        if self.counted_clients > 0 {
            self.clients.dec();
            self.counted_clients -= 1;
        }
    }

    /// A dropped client reconnected.
    pub(crate) fn reconnected(&self) {
        self.reconnections.inc();
    }

    /// A patch tick that started at `started` ended now.
    pub(crate) fn patch_encoded(&self, started: Instant) {
        self.patch_encode.observe(started.elapsed().as_secs_f64());
        self.local.patches.fetch_add(1, Ordering::Relaxed);
    }

    /// A tick that started at `started` and sent a patch has written it
    /// to every client's connection now.
    pub(crate) fn patch_broadcast(&self, started: Instant) {
        self.patch_broadcast
            .observe(started.elapsed().as_secs_f64());
    }

    /// A message of `len` bytes arrived from a client (counted at the
    /// next [`publish`](Self::publish)).
    #[inline]
    pub(crate) fn received(&mut self, len: usize) {
        self.unpublished.messages_in += 1;
        self.unpublished.bytes_in += len as u64;
    }

    /// A message of `len` bytes went to a client (counted at the next
    /// [`publish`](Self::publish)).
    #[inline]
    pub(crate) fn sent(&mut self, len: usize) {
        self.unpublished.messages_out += 1;
        self.unpublished.bytes_out += len as u64;
    }

    /// Adds the messages counted since the last call to the shared
    /// counters: a patch sent to 1,000 clients costs 1,000 plain additions
    /// and then a few atomic ones, and rooms of one name on different room
    /// threads do not contend for their series' cache line per message.
    pub(crate) fn publish(&mut self) {
        let counts = std::mem::take(&mut self.unpublished);
        if counts.messages_in > 0 {
            self.messages_in.inc_by(counts.messages_in);
            self.bytes_in.inc_by(counts.bytes_in);
        }
        if counts.messages_out > 0 {
            self.messages_out.inc_by(counts.messages_out);
            self.bytes_out.inc_by(counts.bytes_out);
            self.local
                .bytes_out
                .fetch_add(counts.bytes_out, Ordering::Relaxed);
        }
    }

    /// A client that did not read its messages was dropped.
    pub(crate) fn dropped_slow(&self) {
        self.dropped_slow.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_series_come_and_go_with_the_room() {
        let metrics = Metrics::default();
        let mut room = metrics.room("world");
        for id in ["a", "b", "c", "d"] {
            room.joined(id);
        }
        room.left("d");
        room.received(10);
        room.sent(7);
        room.publish();
        let text = metrics.render();
        assert!(text.contains("roomcast_rooms{room=\"world\"} 1"), "{text}");
        assert!(
            text.contains("roomcast_clients{room=\"world\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("roomcast_messages_in_total{room=\"world\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("roomcast_sent_bytes_total{room=\"world\"} 7"),
            "{text}"
        );
        drop(room);
        let text = metrics.render();
        assert!(text.contains("roomcast_rooms{room=\"world\"} 0"), "{text}");
        assert!(
            text.contains("roomcast_clients{room=\"world\"} 0"),
            "{text}"
        );
    }
}
