//! The counters every client task updates, and their summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to an hour, 3 significant
/// digits (0.1 % relative error).
const MAX_MICROS: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Locks a mutex, going on with its data when a panicking task poisoned it
/// (counters stay meaningful).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What all client tasks of one run share.
pub(crate) struct Shared {
    pub(crate) attempted: AtomicU64,
    pub(crate) joined: AtomicU64,
    pub(crate) join_failed: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) state_changes: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) error_count: AtomicU64,
    join_latency: Mutex<Histogram<u64>>,
    round_trip: Mutex<Histogram<u64>>,
    errors: Mutex<BTreeMap<(String, String), (u64, String)>>,
    leaves: Mutex<BTreeMap<u16, u64>>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            attempted: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            join_failed: AtomicU64::new(0),
            active: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            state_changes: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            error_count: AtomicU64::new(0),
            join_latency: Mutex::new(histogram()),
            round_trip: Mutex::new(histogram()),
            errors: Mutex::new(BTreeMap::new()),
            leaves: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn record_join(&self, latency: Duration) {
        record(&self.join_latency, latency);
    }

    pub(crate) fn record_round_trip(&self, latency: Duration) {
        record(&self.round_trip, latency);
    }

    pub(crate) fn round_trip_p50_ms(&self) -> Option<f64> {
        let h = lock(&self.round_trip);
        (!h.is_empty()).then(|| h.value_at_quantile(0.5) as f64 / 1000.0)
    }

    pub(crate) fn record_leave(&self, code: u16) {
        *lock(&self.leaves).entry(code).or_insert(0) += 1;
    }

    /// Counts an error of `phase` (`join`, `room`, `leave`, `script`) with
    /// `code`; the first message of each group is kept as its example.
    pub(crate) fn record_error(&self, phase: &str, code: String, message: &str) {
        Self::add(&self.error_count, 1);
        lock(&self.errors)
            .entry((phase.to_owned(), code))
            .or_insert_with(|| (0, message.to_owned()))
            .0 += 1;
    }

    pub(crate) fn latencies(&self) -> (Latency, Latency) {
        (
            Latency::of(&lock(&self.join_latency)),
            Latency::of(&lock(&self.round_trip)),
        )
    }

    pub(crate) fn errors(&self) -> Vec<ErrorGroup> {
        lock(&self.errors)
            .iter()
            .map(|((phase, code), (count, message))| ErrorGroup {
                phase: phase.clone(),
                code: code.clone(),
                count: *count,
                message: message.clone(),
            })
            .collect()
    }

    pub(crate) fn leaves(&self) -> BTreeMap<String, u64> {
        lock(&self.leaves)
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect()
    }
}

fn record(h: &Mutex<Histogram<u64>>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
    lock(h).saturating_record(micros.max(1));
}

/// Percentiles of a latency, in milliseconds (`None` without samples).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// The number of samples.
    pub count: u64,
    /// The smallest sample.
    pub min_ms: Option<f64>,
    /// The mean.
    pub mean_ms: Option<f64>,
    /// The median.
    pub p50_ms: Option<f64>,
    /// The 90th percentile.
    pub p90_ms: Option<f64>,
    /// The 99th percentile.
    pub p99_ms: Option<f64>,
    /// The largest sample.
    pub max_ms: Option<f64>,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |micros: u64| (!h.is_empty()).then(|| micros as f64 / 1000.0);
        Self {
            count: h.len(),
            min_ms: ms(h.min()),
            mean_ms: (!h.is_empty()).then(|| h.mean() / 1000.0),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The errors of one phase and code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorGroup {
    /// Where it happened: `join` (matchmaking or handshake), `room` (an
    /// ERROR frame from the room), `leave` (the room closed with a code
    /// other than 1000 or 4000), `frame` (a frame the client could not
    /// read), `script` (the script failed, panicked or outlived the test).
    pub phase: String,
    /// The protocol's error code (`520`, `4217`, …) or close code, else
    /// the kind of failure (`timeout`, `websocket`, …).
    pub code: String,
    /// How many times.
    pub count: u64,
    /// The first one's message.
    pub message: String,
}
