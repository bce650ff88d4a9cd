//! Per-operator counters: elements, errors, skipped bad records, bytes read, busy time,
//! time spent waiting for other threads, and buffer fill.
//!
//! Every operator of a pipeline owns one [`Counters`], created when the operator is
//! built and shared by every iteration of it, so the counters add up over epochs.
//! [`crate::Dataset::stats`] collects them from the whole graph; [`StatsReport`]
//! prints them as an aligned table.
//!
//! Busy time is *self* time: the time an operator spends in its own code, excluding the
//! time spent inside its upstream operators (measured on the same thread with a
//! thread-local accumulator) and excluding time spent blocked on another thread
//! (reported as `wait`). Work done on worker threads (parallel map, prefetch) is added
//! to the operator that owns the threads, so busy time can exceed wall time.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::table::Table;

/// The counters of one operator. All methods are thread-safe and never panic.
#[derive(Debug, Default)]
pub struct Counters {
    elements: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    dropped: AtomicU64,
    warnings: AtomicU64,
    last_warning: std::sync::Mutex<Option<String>>,
    bytes: AtomicU64,
    busy_ns: AtomicU64,
    wait_ns: AtomicU64,
    fill_sum: AtomicU64,
    fill_samples: AtomicU64,
    capacity: AtomicU64,
}

impl Counters {
    /// Counts `n` bytes read from storage.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Relaxed);
    }

    /// Counts one bad record or failed element that was skipped under a policy.
    pub fn add_skipped(&self) {
        self.skipped.fetch_add(1, Relaxed);
    }

    /// Counts `n` good elements an operator discarded because they shared an output
    /// with an error item (a batch or window that became an error item).
    pub fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Relaxed);
    }

    /// Records a warning: counted, kept as the operator's last warning (shown by
    /// [`StatsReport::table`]) and written to standard error, prefixed with
    /// `edgeflow-data: warning:`, because a silent data problem is worse than a noisy
    /// one.
    pub fn warn(&self, message: impl Into<String>) {
        let message = message.into();
        eprintln!("edgeflow-data: warning: {message}");
        self.warnings.fetch_add(1, Relaxed);
        *self.last_warning.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }

    /// The last warning recorded with [`Counters::warn`], if any.
    pub fn last_warning(&self) -> Option<String> {
        self.last_warning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds busy time measured on another thread.
    pub fn add_busy(&self, d: Duration) {
        self.busy_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    /// Records the current fill of the operator's buffer and its capacity.
    pub fn sample_fill(&self, fill: usize, capacity: usize) {
        self.fill_sum.fetch_add(fill as u64, Relaxed);
        self.fill_samples.fetch_add(1, Relaxed);
        self.capacity.store(capacity as u64, Relaxed);
    }

    /// Runs `f`, which blocks on another thread, counting its duration as waiting time
    /// of this operator rather than busy time.
    pub fn waiting<R>(&self, f: impl FnOnce() -> R) -> R {
        let t0 = Instant::now();
        let r = f();
        let ns = t0.elapsed().as_nanos() as u64;
        self.wait_ns.fetch_add(ns, Relaxed);
        CHILD_NS.with(|c| c.set(c.get() + ns));
        r
    }

    pub(crate) fn count_item<T>(&self, item: &crate::Result<T>) {
        match item {
            Ok(_) => self.elements.fetch_add(1, Relaxed),
            Err(_) => self.errors.fetch_add(1, Relaxed),
        };
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> CounterValues {
        let samples = self.fill_samples.load(Relaxed);
        CounterValues {
            elements: self.elements.load(Relaxed),
            errors: self.errors.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            warnings: self.warnings.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            busy: Duration::from_nanos(self.busy_ns.load(Relaxed)),
            wait: Duration::from_nanos(self.wait_ns.load(Relaxed)),
            mean_fill: if samples == 0 {
                None
            } else {
                Some(self.fill_sum.load(Relaxed) as f64 / samples as f64)
            },
            capacity: self.capacity.load(Relaxed),
        }
    }
}

/// A copy of one operator's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterValues {
    /// Elements produced (successful items).
    pub elements: u64,
    /// Error items produced.
    pub errors: u64,
    /// Bad records or failed elements skipped under a policy.
    pub skipped: u64,
    /// Good elements discarded because they shared a batch or window with an error
    /// item (see [`Counters::add_dropped`]).
    pub dropped: u64,
    /// Warnings recorded (see [`Counters::warn`]).
    pub warnings: u64,
    /// Bytes read from storage.
    pub bytes: u64,
    /// Self time (see the module documentation).
    pub busy: Duration,
    /// Time blocked on other threads.
    pub wait: Duration,
    /// Mean buffer fill at the moments it was sampled, for buffering operators.
    pub mean_fill: Option<f64>,
    /// Buffer capacity last in force (0 when the operator has no buffer).
    pub capacity: u64,
}

thread_local! {
    /// Time spent, on this thread, inside instrumented upstream operators since the
    /// enclosing instrumented call began.
    static CHILD_NS: Cell<u64> = const { Cell::new(0) };
}

/// Times one call of an operator's `next`, charging self time to `counters`.
#[inline]
pub(crate) fn timed<R>(counters: &Counters, f: impl FnOnce() -> R) -> R {
    let saved = CHILD_NS.with(|c| c.replace(0));
    let t0 = Instant::now();
    let r = f();
    let total = t0.elapsed().as_nanos() as u64;
    let child = CHILD_NS.with(|c| c.get());
    counters
        .busy_ns
        .fetch_add(total.saturating_sub(child), Relaxed);
    CHILD_NS.with(|c| c.set(saved + total));
    r
}

/// One row of a [`StatsReport`]: an operator and its counters.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Depth in the pipeline graph (0 = the last operator).
    pub depth: usize,
    /// Operator name with its main parameters, e.g. `batch(32)`.
    pub name: String,
    /// Its counters.
    pub values: CounterValues,
    /// Its last warning, if any (see [`Counters::warn`]).
    pub last_warning: Option<String>,
}

/// The counters of every operator of a pipeline, last operator first.
#[derive(Debug, Clone)]
pub struct StatsReport {
    /// One row per operator, in depth-first order from the output.
    pub ops: Vec<OpStats>,
}

impl StatsReport {
    /// The report as an aligned text table (one line per operator, indented by depth).
    pub fn table(&self) -> String {
        let mut t = Table::new([
            "operator", "elements", "errors", "skipped", "dropped", "bytes", "busy ms", "wait ms",
            "buffer",
        ]);
        t.right_align_from(1);
        for op in &self.ops {
            let v = &op.values;
            let buffer = match v.mean_fill {
                Some(f) => format!("{f:.1}/{}", v.capacity),
                None => "-".into(),
            };
            t.row([
                format!("{}{}", "  ".repeat(op.depth), op.name),
                v.elements.to_string(),
                v.errors.to_string(),
                v.skipped.to_string(),
                v.dropped.to_string(),
                crate::table::human_bytes(v.bytes),
                format!("{:.1}", v.busy.as_secs_f64() * 1e3),
                format!("{:.1}", v.wait.as_secs_f64() * 1e3),
                buffer,
            ]);
        }
        let mut out = t.render();
        for op in &self.ops {
            if let Some(w) = &op.last_warning {
                out.push_str(&format!("warning ({}): {w}\n", op.name));
            }
        }
        out
    }

    /// The row of the first operator whose name starts with `prefix`.
    pub fn find(&self, prefix: &str) -> Option<&OpStats> {
        self.ops.iter().find(|o| o.name.starts_with(prefix))
    }
}

impl std::fmt::Display for StatsReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.table())
    }
}
