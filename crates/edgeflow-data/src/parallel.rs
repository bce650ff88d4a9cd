//! Operators that use threads: parallel map, prefetch and parallel interleave.
//!
//! Threads start at the first pull, stop when the iterator is dropped (the drop joins
//! them), and turn a panic in a user function into an [`Error::WorkerPanicked`] item
//! instead of a hang or a crash. Outputs are deterministic: parallel map hands every
//! element its index before any thread touches it, and keyed randomness (see
//! [`crate::rng`]) makes results independent of the thread count.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::dataset::{BoxStream, Dataset, Element, Stream};
use crate::error::{BoxError, Error, Result};
use crate::ops::ElemFn;
use crate::rng::Rng;
use crate::stats::Counters;

/// How many threads a parallel operator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Exactly this many (at least 1).
    Fixed(usize),
    /// As many as the machine has cores (`std::thread::available_parallelism`).
    Auto,
}

impl Threads {
    /// The number of threads this resolves to on this machine (at least 1).
    pub fn resolve(self) -> usize {
        match self {
            Threads::Fixed(n) => n.max(1),
            Threads::Auto => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

/// Options of a parallel map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallel {
    /// Worker threads.
    pub threads: Threads,
    /// Whether outputs keep the input order (`true`, the default) or come as they finish.
    pub ordered: bool,
    /// Elements in flight (pulled but not yet yielded) at most; `None` = eight per
    /// thread and at least 32 (fewer hand-offs between threads).
    pub in_flight: Option<usize>,
}

impl Parallel {
    /// `n` threads, ordered.
    pub fn threads(n: usize) -> Self {
        Parallel {
            threads: Threads::Fixed(n),
            ordered: true,
            in_flight: None,
        }
    }

    /// One thread per core, ordered.
    pub fn auto() -> Self {
        Parallel {
            threads: Threads::Auto,
            ordered: true,
            in_flight: None,
        }
    }

    /// The same, with outputs in completion order. The map's own random draws stay
    /// reproducible (each element gets its index before any thread sees it), and an
    /// indexed map after it (`map_with_rng`, `map_indexed`, `try_map`, another parallel
    /// map, …) keys each element by its input position here, not by its arrival, so its
    /// draws are reproducible too — also through the operators that pass elements on
    /// one by one (`map`, `filter`, `filter_map`, `take`, `skip`, `take_while`,
    /// `shard`, `ignore_errors`, `inspect`, `prefetch`). When a filter drops elements in
    /// between, those keys are positions before the filter, so the draws differ from
    /// the ordered pipeline's (which counts the filter's outputs) but not from run to
    /// run. Operators that build new elements (`batch`, `window`, `shuffle`, `zip`,
    /// `interleave`, …) number their outputs themselves, in arrival order.
    pub fn unordered(mut self) -> Self {
        self.ordered = false;
        self
    }

    /// The same, with at most `n` elements in flight.
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = Some(n.max(1));
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it; the state it
    // guards is updated atomically under the lock, so it is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(g).unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------
// Parallel map.

struct Upstream<T> {
    stream: BoxStream<T>,
    next_index: u64,
    done: bool,
}

struct PmState<U> {
    in_flight: usize,
    max_in_flight: usize,
    /// Results by input position: (key of the element, result).
    ordered: BTreeMap<u64, (u64, Result<U>)>,
    unordered: VecDeque<(u64, Result<U>)>,
    next_out: u64,
    up_done: bool,
    live_workers: usize,
    cancelled: bool,
    /// Workers blocked waiting for a permit (so the consumer wakes one only then).
    idle_workers: usize,
    /// Whether the consumer is blocked waiting for a result.
    consumer_waiting: bool,
}

struct PmShared<T, U> {
    up: Mutex<Upstream<T>>,
    state: Mutex<PmState<U>>,
    work: Condvar,
    out: Condvar,
    f: ElemFn<T, U>,
    epoch: u64,
    stream: u64,
    ordered: bool,
    counters: Arc<Counters>,
    /// Elements a worker takes from upstream per lock (see [`worker`]).
    chunk: usize,
}

enum PmPhase<T> {
    NotStarted(BoxStream<T>),
    Running(Vec<JoinHandle<()>>),
    Done,
}

struct ParMapStream<T, U> {
    shared: Option<Arc<PmShared<T, U>>>,
    phase: PmPhase<T>,
    threads: usize,
    in_flight: usize,
    f: ElemFn<T, U>,
    epoch: u64,
    stream: u64,
    ordered: bool,
    skipped: u64,
    counters: Arc<Counters>,
    /// The input position of the item last returned (see [`Stream::last_index`]).
    last_index: Option<u64>,
}

/// One element taken from upstream: (position here, key, the item).
type Pulled<T> = (u64, u64, Result<T>);

fn worker<T, U>(sh: Arc<PmShared<T, U>>) {
    // Elements move between the threads in chunks of up to `sh.chunk`: one lock of the
    // upstream and one of the results per chunk instead of per element, so that cheap
    // maps (a CSV row parse is ~1 µs) are not dominated by hand-offs (BENCHMARKS.md).
    let mut pulled: Vec<Pulled<T>> = Vec::with_capacity(sh.chunk);
    let mut done: Vec<(u64, u64, Result<U>)> = Vec::with_capacity(sh.chunk);
    loop {
        let permits = {
            let mut s = lock(&sh.state);
            // Wait for a whole chunk of permits (never more than the bound allows), so
            // that a worker woken for one freed slot does not fall back to one element.
            let want = sh.chunk.min(s.max_in_flight).max(1);
            while !s.cancelled && !s.up_done && s.max_in_flight - s.in_flight < want {
                s.idle_workers += 1;
                s = wait(&sh.work, s);
                s.idle_workers -= 1;
            }
            if s.cancelled || s.up_done {
                break;
            }
            s.in_flight += want;
            want
        };
        let mut up_ended = false;
        {
            let mut up = lock(&sh.up);
            while pulled.len() < permits && !up.done {
                match catch_unwind(AssertUnwindSafe(|| up.stream.next())) {
                    Ok(Some(item)) => {
                        let i = up.next_index;
                        up.next_index += 1;
                        // The element's key: the upstream's own (a shard or an unordered
                        // map before this one), else its position here.
                        let key = up.stream.last_index().unwrap_or(i);
                        pulled.push((i, key, item));
                    }
                    Ok(None) => up.done = true,
                    Err(_) => {
                        up.done = true;
                        let i = up.next_index;
                        up.next_index += 1;
                        pulled.push((i, i, Err(Error::WorkerPanicked { op: "par_map" })));
                    }
                }
            }
            if up.done {
                up_ended = true;
            }
        }
        let unused = permits - pulled.len();
        let t0 = Instant::now();
        for (index, key, item) in pulled.drain(..) {
            let out = match item {
                Ok(x) => {
                    let e = Element {
                        epoch: sh.epoch,
                        index: key,
                        stream: sh.stream,
                    };
                    catch_unwind(AssertUnwindSafe(|| (sh.f)(x, e)))
                        .unwrap_or(Err(Error::WorkerPanicked { op: "par_map" }))
                }
                Err(e) => Err(e),
            };
            done.push((index, key, out));
        }
        sh.counters.add_busy(t0.elapsed());
        let mut s = lock(&sh.state);
        s.in_flight -= unused;
        let mut wake = false;
        for (index, key, out) in done.drain(..) {
            if sh.ordered {
                // Wake the consumer only if it waits for one of these very results.
                wake |= index == s.next_out;
                s.ordered.insert(index, (key, out));
            } else {
                wake = true;
                s.unordered.push_back((key, out));
            }
        }
        if wake && s.consumer_waiting {
            sh.out.notify_one();
        }
        if up_ended {
            s.up_done = true;
            sh.work.notify_all();
            break;
        }
    }
    let mut s = lock(&sh.state);
    s.live_workers -= 1;
    if s.live_workers == 0 {
        sh.out.notify_all();
    }
}

impl<T: Send + 'static, U: Send + 'static> ParMapStream<T, U> {
    fn start(&mut self) {
        let phase = std::mem::replace(&mut self.phase, PmPhase::Done);
        let PmPhase::NotStarted(stream) = phase else {
            self.phase = phase;
            return;
        };
        let sh = Arc::new(PmShared {
            up: Mutex::new(Upstream {
                stream,
                next_index: self.skipped,
                done: false,
            }),
            state: Mutex::new(PmState {
                in_flight: 0,
                max_in_flight: self.in_flight,
                ordered: BTreeMap::new(),
                unordered: VecDeque::new(),
                next_out: self.skipped,
                up_done: false,
                live_workers: self.threads,
                cancelled: false,
                idle_workers: 0,
                consumer_waiting: false,
            }),
            work: Condvar::new(),
            out: Condvar::new(),
            f: Arc::clone(&self.f),
            epoch: self.epoch,
            stream: self.stream,
            ordered: self.ordered,
            counters: Arc::clone(&self.counters),
            // Four elements per hand-off (measured on the csv benchmark: 1 → 1.6 s,
            // 2 → 1.38 s, 4 → 1.22 s, 8 → 1.36 s, 16 → 2.45 s at one thread), and never
            // more than half the bound per thread, so that each thread keeps a chunk in
            // work while another one's results wait for the consumer.
            chunk: (self.in_flight / (2 * self.threads.max(1))).clamp(1, 4),
        });
        let mut handles = Vec::with_capacity(self.threads);
        for i in 0..self.threads {
            let sh2 = Arc::clone(&sh);
            match std::thread::Builder::new()
                .name(format!("par_map-{i}"))
                .spawn(move || worker(sh2))
            {
                Ok(h) => handles.push(h),
                Err(_) => {
                    let mut s = lock(&sh.state);
                    s.live_workers -= 1;
                }
            }
        }
        self.shared = Some(sh);
        self.phase = PmPhase::Running(handles);
    }
}

impl<T: Send + 'static, U: Send + 'static> Stream<U> for ParMapStream<T, U> {
    fn next(&mut self) -> Option<Result<U>> {
        if matches!(self.phase, PmPhase::NotStarted(_)) {
            self.start();
        }
        let sh = self.shared.as_ref()?;
        let counters = &self.counters;
        let mut s = lock(&sh.state);
        loop {
            let fill = s.in_flight;
            let got = if sh.ordered {
                let k = s.next_out;
                s.ordered.remove(&k).inspect(|_| s.next_out += 1)
            } else {
                s.unordered.pop_front()
            };
            if let Some((k, r)) = got {
                self.last_index = Some(k);
                counters.sample_fill(fill, s.max_in_flight);
                s.in_flight -= 1;
                if s.idle_workers > 0 && s.max_in_flight - s.in_flight >= sh.chunk {
                    sh.work.notify_one();
                }
                return Some(r);
            }
            if s.live_workers == 0 {
                return None;
            }
            s.consumer_waiting = true;
            s = counters.waiting(|| wait(&sh.out, s));
            s.consumer_waiting = false;
        }
    }

    fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    fn skip_items(&mut self, n: u64) -> u64 {
        if let PmPhase::NotStarted(up) = &mut self.phase {
            // Before the threads start, skipping is skipping the input (a map is 1:1).
            let k = up.skip_items(n);
            self.skipped += k;
            return k;
        }
        let mut k = 0;
        while k < n && self.next().is_some() {
            k += 1;
        }
        k
    }
}

impl<T, U> Drop for ParMapStream<T, U> {
    fn drop(&mut self) {
        if let Some(sh) = &self.shared {
            lock(&sh.state).cancelled = true;
            sh.work.notify_all();
        }
        if let PmPhase::Running(handles) = std::mem::replace(&mut self.phase, PmPhase::Done) {
            for h in handles {
                let _ = h.join();
            }
        }
    }
}

impl<T: Send + 'static> Dataset<T> {
    pub(crate) fn par_map_elem<U: Send + 'static>(
        &self,
        name: String,
        par: Parallel,
        f: ElemFn<T, U>,
    ) -> Dataset<U> {
        let up = self.clone();
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            let threads = par.threads.resolve();
            Box::new(ParMapStream {
                shared: None,
                phase: PmPhase::NotStarted(up.open_from(cx)),
                threads,
                in_flight: par.in_flight.unwrap_or((8 * threads).max(32)).max(1),
                f: Arc::clone(&f),
                epoch: cx.epoch,
                stream: cx.stream,
                ordered: par.ordered,
                skipped: 0,
                counters: Arc::clone(&cx.counters),
                last_index: None,
            })
        })
    }

    /// [`Dataset::map`] on several threads. Ordered output equals the sequential map's
    /// output exactly; unordered output has the same elements in completion order.
    /// Memory: `par.in_flight` elements.
    pub fn par_map<U: Send + 'static>(
        &self,
        par: Parallel,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.par_map_elem(
            par_name("par_map", par),
            par,
            Arc::new(move |x, _| Ok(f(x))),
        )
    }

    /// [`Dataset::try_map`] on several threads.
    pub fn par_try_map<U: Send + 'static, E: Into<BoxError>>(
        &self,
        par: Parallel,
        f: impl Fn(T) -> std::result::Result<U, E> + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.par_map_elem(
            par_name("par_try_map", par),
            par,
            Arc::new(move |x, e: Element| {
                f(x).map_err(|err| Error::User {
                    op: "par_try_map",
                    index: e.index,
                    source: err.into(),
                })
            }),
        )
    }

    /// [`Dataset::map_result`] on several threads.
    pub fn par_map_result<U: Send + 'static>(
        &self,
        par: Parallel,
        f: impl Fn(T) -> Result<U> + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.par_map_elem(
            par_name("par_map_result", par),
            par,
            Arc::new(move |x, _| f(x)),
        )
    }

    /// [`Dataset::map_with_rng`] on several threads: the same output as the sequential
    /// version, whatever the number of threads.
    pub fn par_map_with_rng<U: Send + 'static>(
        &self,
        par: Parallel,
        seed: u64,
        f: impl Fn(T, &mut Rng) -> U + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.par_map_elem(
            par_name("par_map_with_rng", par),
            par,
            Arc::new(move |x, e: Element| Ok(f(x, &mut e.rng(seed)))),
        )
    }
}

fn par_name(op: &str, par: Parallel) -> String {
    let t = match par.threads {
        Threads::Fixed(n) => n.to_string(),
        Threads::Auto => format!("auto={}", Threads::Auto.resolve()),
    };
    let o = if par.ordered { "" } else { ", unordered" };
    format!("{op}(threads={t}{o})")
}

// ---------------------------------------------------------------------------------------
// Prefetch.

/// Largest buffer automatic prefetch grows to.
pub const AUTO_PREFETCH_MAX: usize = 64;

struct PfState<T> {
    /// Items with their upstream key (see [`Stream::last_index`]).
    items: VecDeque<(Result<T>, Option<u64>)>,
    cap: usize,
    done: bool,
    cancelled: bool,
}

struct PfShared<T> {
    state: Mutex<PfState<T>>,
    not_empty: Condvar,
    not_full: Condvar,
}

enum PfPhase<T> {
    NotStarted(BoxStream<T>),
    Running(JoinHandle<()>),
    Done,
}

struct PrefetchStream<T> {
    shared: Arc<PfShared<T>>,
    phase: PfPhase<T>,
    auto: bool,
    counters: Arc<Counters>,
    /// The upstream key of the item last returned.
    last: Option<u64>,
}

fn producer<T>(mut up: BoxStream<T>, sh: Arc<PfShared<T>>) {
    loop {
        let item = match catch_unwind(AssertUnwindSafe(|| up.next())) {
            Ok(i) => i,
            Err(_) => Some(Err(Error::WorkerPanicked { op: "prefetch" })),
        };
        let key = up.last_index();
        let last = matches!(item, None | Some(Err(Error::WorkerPanicked { .. })));
        let mut s = lock(&sh.state);
        while !s.cancelled && s.items.len() >= s.cap {
            s = wait(&sh.not_full, s);
        }
        if s.cancelled {
            return;
        }
        if let Some(x) = item {
            s.items.push_back((x, key));
        }
        if last {
            s.done = true;
        }
        sh.not_empty.notify_one();
        if last {
            return;
        }
    }
}

impl<T: Send + 'static> Stream<T> for PrefetchStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if let PfPhase::NotStarted(_) = self.phase {
            let PfPhase::NotStarted(up) = std::mem::replace(&mut self.phase, PfPhase::Done) else {
                return None;
            };
            let sh = Arc::clone(&self.shared);
            match std::thread::Builder::new()
                .name("prefetch".into())
                .spawn(move || producer(up, sh))
            {
                Ok(h) => self.phase = PfPhase::Running(h),
                Err(e) => {
                    return Some(Err(Error::invalid(
                        "prefetch",
                        format!("cannot start a thread: {e}"),
                    )))
                }
            }
        }
        let mut s = lock(&self.shared.state);
        self.counters.sample_fill(s.items.len(), s.cap);
        if s.items.is_empty() && !s.done && self.auto && s.cap < AUTO_PREFETCH_MAX {
            // The consumer is about to wait: the buffer is too small to hide the
            // producer's latency, so let it run further ahead.
            s.cap *= 2;
            self.shared.not_full.notify_one();
        }
        while s.items.is_empty() && !s.done {
            s = self.counters.waiting(|| wait(&self.shared.not_empty, s));
        }
        let r = s.items.pop_front();
        self.shared.not_full.notify_one();
        let (r, key) = r?;
        self.last = key;
        Some(r)
    }

    fn last_index(&self) -> Option<u64> {
        self.last
    }

    fn skip_items(&mut self, n: u64) -> u64 {
        if let PfPhase::NotStarted(up) = &mut self.phase {
            return up.skip_items(n);
        }
        let mut k = 0;
        while k < n && self.next().is_some() {
            k += 1;
        }
        k
    }
}

impl<T> Drop for PrefetchStream<T> {
    fn drop(&mut self) {
        lock(&self.shared.state).cancelled = true;
        self.shared.not_full.notify_all();
        if let PfPhase::Running(h) = std::mem::replace(&mut self.phase, PfPhase::Done) {
            let _ = h.join();
        }
    }
}

fn prefetch_stream<T: Send + 'static>(
    up: BoxStream<T>,
    cap: usize,
    auto: bool,
    counters: Arc<Counters>,
) -> PrefetchStream<T> {
    PrefetchStream {
        shared: Arc::new(PfShared {
            state: Mutex::new(PfState {
                items: VecDeque::new(),
                cap: cap.max(1),
                done: false,
                cancelled: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }),
        phase: PfPhase::NotStarted(up),
        auto,
        counters,
        last: None,
    }
}

impl<T: Send + 'static> Dataset<T> {
    /// Computes up to `n` items ahead on a background thread, so that the upstream
    /// pipeline runs while the consumer works. Memory: `n` items.
    pub fn prefetch(&self, n: usize) -> Dataset<T> {
        self.prefetch_impl(format!("prefetch({})", n.max(1)), n.max(1), false)
    }

    /// Prefetch with a buffer that starts at 1 and doubles (up to
    /// [`AUTO_PREFETCH_MAX`]) each time the consumer finds it empty; the capacity in
    /// force is shown by [`Dataset::stats`].
    pub fn prefetch_auto(&self) -> Dataset<T> {
        self.prefetch_impl("prefetch(auto)".into(), 1, true)
    }

    fn prefetch_impl(&self, name: String, n: usize, auto: bool) -> Dataset<T> {
        let up = self.clone();
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            Box::new(prefetch_stream(
                up.open_from(cx),
                n,
                auto,
                Arc::clone(&cx.counters),
            ))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Interleave.

struct InterleaveStream<T, U> {
    up: BoxStream<T>,
    f: Arc<dyn Fn(T) -> Dataset<U> + Send + Sync>,
    slots: Vec<Option<BoxStream<U>>>,
    cur: usize,
    in_block: usize,
    block: usize,
    up_done: bool,
    epoch: u64,
    stream: u64,
    /// Input items pulled so far (the key of the next opened dataset's stream).
    opened: u64,
    parallel: bool,
    counters: Arc<Counters>,
}

impl<T: Send + 'static, U: Send + 'static> InterleaveStream<T, U> {
    fn advance(&mut self) {
        self.cur = (self.cur + 1) % self.slots.len();
        self.in_block = 0;
    }
}

impl<T: Send + 'static, U: Send + 'static> Stream<U> for InterleaveStream<T, U> {
    fn next(&mut self) -> Option<Result<U>> {
        let mut idle = 0;
        loop {
            if self.slots[self.cur].is_none() && !self.up_done {
                let k = self.opened;
                self.opened += 1;
                match self.up.next() {
                    Some(Ok(x)) => {
                        let key = crate::dataset::child_stream(self.stream, k);
                        let s = (self.f)(x).open_keyed(self.epoch, key);
                        let s: BoxStream<U> = if self.parallel {
                            Box::new(prefetch_stream(
                                s,
                                self.block.max(2),
                                false,
                                Arc::clone(&self.counters),
                            ))
                        } else {
                            s
                        };
                        self.slots[self.cur] = Some(s);
                        self.in_block = 0;
                    }
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.up_done = true,
                }
            }
            let Some(s) = self.slots[self.cur].as_mut() else {
                idle += 1;
                if idle > self.slots.len() {
                    return None;
                }
                self.advance();
                continue;
            };
            idle = 0;
            match s.next() {
                Some(Ok(x)) => {
                    self.in_block += 1;
                    if self.in_block >= self.block {
                        self.advance();
                    }
                    return Some(Ok(x));
                }
                // An error item is passed on and takes no place in the block (as in
                // tf.data).
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    self.slots[self.cur] = None;
                    self.advance();
                }
            }
        }
    }
}

impl<T: Send + 'static> Dataset<T> {
    /// Maps every element to a dataset and interleaves them (as `tf.data`'s
    /// `interleave`): `cycle_length` datasets are open at once, `block_length`
    /// consecutive items are taken from each in turn, and an exhausted dataset is
    /// replaced by the next input's. With `parallel`, every open dataset is read ahead on
    /// its own thread (a buffer of `max(block_length, 2)` items each); the output order is
    /// the same either way. Zero `cycle_length` or `block_length` is an error item.
    ///
    /// Errors (as `tf.data`): an error item of an open dataset is passed on and takes no
    /// place in its block (a block holds `block_length` elements); an error item of the
    /// input is passed on and its slot is filled from the next input. Randomness: the
    /// dataset made from the `k`-th input item is opened as its own stream (see
    /// [`crate::OpenCx::stream`]), so random draws inside different files differ.
    pub fn interleave<U: Send + 'static>(
        &self,
        cycle_length: usize,
        block_length: usize,
        parallel: bool,
        f: impl Fn(T) -> Dataset<U> + Send + Sync + 'static,
    ) -> Dataset<U> {
        let up = self.clone();
        let f: Arc<dyn Fn(T) -> Dataset<U> + Send + Sync> = Arc::new(f);
        let p = if parallel { ", parallel" } else { "" };
        let name = format!("interleave(cycle={cycle_length}, block={block_length}{p})");
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            if cycle_length == 0 || block_length == 0 {
                return Box::new(crate::dataset::IterStream(std::iter::once(Err(
                    Error::invalid("interleave", "cycle and block length must be at least 1"),
                ))));
            }
            let mut slots = Vec::new();
            if slots.try_reserve_exact(cycle_length).is_err() {
                return Box::new(crate::dataset::IterStream(std::iter::once(Err(
                    Error::invalid(
                        "interleave",
                        format!("a cycle length of {cycle_length} does not fit in memory"),
                    ),
                ))));
            }
            slots.extend((0..cycle_length).map(|_| None));
            Box::new(InterleaveStream {
                up: up.open_from(cx),
                f: Arc::clone(&f),
                slots,
                cur: 0,
                in_block: 0,
                block: block_length,
                up_done: false,
                epoch: cx.epoch,
                stream: cx.stream,
                opened: 0,
                parallel,
                counters: Arc::clone(&cx.counters),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn v<T: Send + 'static>(d: &Dataset<T>) -> Vec<T> {
        d.collect_vec().unwrap()
    }

    #[test]
    fn ordered_par_map_equals_map_at_every_thread_count() {
        let d = Dataset::range(0, 500);
        let seq = v(&d.map(|x| x * x));
        for t in [1, 2, 3, 8] {
            assert_eq!(
                v(&d.par_map(Parallel::threads(t), |x| x * x)),
                seq,
                "threads={t}"
            );
            assert_eq!(
                v(&d.par_map(Parallel::threads(t).in_flight(1), |x| x * x)),
                seq
            );
        }
        assert_eq!(v(&d.par_map(Parallel::auto(), |x| x * x)), seq);
    }

    #[test]
    fn unordered_par_map_has_the_same_elements() {
        let d = Dataset::range(0, 300);
        let mut got = v(&d.par_map(Parallel::threads(4).unordered(), |x| {
            if x % 7 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            x + 1
        }));
        got.sort();
        assert_eq!(got, (1..301).collect::<Vec<_>>());
    }

    #[test]
    fn random_augmentation_is_identical_at_any_thread_count() {
        let d = Dataset::range(0, 200);
        let aug = |x: i64, r: &mut Rng| (x, r.uniform(-1.0, 1.0), r.bernoulli(0.5));
        let reference = v(&d.map_with_rng(7, aug));
        for t in [1, 2, 4] {
            assert_eq!(
                v(&d.par_map_with_rng(Parallel::threads(t), 7, aug)),
                reference
            );
            let mut un = v(&d.par_map_with_rng(Parallel::threads(t).unordered(), 7, aug));
            un.sort_by_key(|e| e.0);
            assert_eq!(un, reference);
        }
    }

    #[test]
    fn par_map_passes_errors_and_converts_panics() {
        let d = Dataset::range(0, 10).par_try_map(Parallel::threads(3), |x| {
            if x == 4 {
                Err("four")
            } else {
                Ok(x)
            }
        });
        let items: Vec<_> = d.iter().collect();
        assert_eq!(items.len(), 10);
        assert_eq!(
            items[4].as_ref().unwrap_err().to_string(),
            "par_try_map: element 4: four"
        );
        let p = Dataset::range(0, 5).par_map(Parallel::threads(2), |x| {
            if x == 2 {
                panic!("deliberate test panic");
            }
            x
        });
        let items: Vec<_> = p.iter().collect();
        assert_eq!(items.len(), 5);
        assert!(matches!(items[2], Err(Error::WorkerPanicked { .. })));
    }

    #[test]
    fn dropping_a_parallel_iterator_early_stops_its_threads() {
        let d = Dataset::range(0, 1_000_000)
            .par_map(Parallel::threads(2), |x| x)
            .prefetch(4);
        let mut it = d.iter();
        assert_eq!(it.next().unwrap().unwrap(), 0);
        drop(it); // joins; the test would hang if threads did not stop
        let forever = Dataset::range(0, 3).repeat(None).prefetch(2);
        assert_eq!(forever.iter().take(10).count(), 10);
    }

    /// Workers take elements in chunks: every thread count and bound (chunks of 1 to 4,
    /// a last partial chunk, an error inside a chunk) gives the sequential map's output.
    #[test]
    fn chunked_hand_offs_keep_order_errors_and_every_element() {
        let d = Dataset::range(0, 1_003).try_map(|x| if x % 97 == 5 { Err("bad") } else { Ok(x) });
        let reference: Vec<String> = d.map(|x| x * 3).iter().map(|r| format!("{r:?}")).collect();
        for t in [1, 2, 3, 4] {
            for bound in [1, 2, 7, 32, 64] {
                let p = d.par_map(Parallel::threads(t).in_flight(bound), |x| x * 3);
                let got: Vec<String> = p.iter().map(|r| format!("{r:?}")).collect();
                assert_eq!(got, reference, "threads {t}, in flight {bound}");
                let un = d.par_map(Parallel::threads(t).in_flight(bound).unordered(), |x| x * 3);
                let mut got: Vec<String> = un.iter().map(|r| format!("{r:?}")).collect();
                let mut want = reference.clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "unordered, threads {t}, in flight {bound}");
            }
        }
    }

    #[test]
    fn par_map_bounds_in_flight_elements() {
        let d = Dataset::range(0, 100).par_map(Parallel::threads(4).in_flight(3), |x| x);
        assert_eq!(v(&d).len(), 100);
        let st = d.stats();
        let op = st.find("par_map").unwrap();
        assert_eq!(op.values.capacity, 3);
        assert!(op.values.mean_fill.unwrap() <= 3.0);
    }

    #[test]
    fn prefetch_preserves_order_and_errors() {
        let d = Dataset::range(0, 50).try_map(|x| if x == 10 { Err("ten") } else { Ok(x) });
        let a: Vec<String> = d.iter().map(|r| format!("{r:?}")).collect();
        let b: Vec<String> = d.prefetch(3).iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(a, b);
        let c: Vec<String> = d.prefetch_auto().iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(a, c);
    }

    #[test]
    fn auto_prefetch_grows_when_the_consumer_waits() {
        let d = Dataset::range(0, 40)
            .map(|x| {
                std::thread::sleep(Duration::from_micros(300));
                x
            })
            .prefetch_auto();
        assert_eq!(v(&d).len(), 40);
        let cap = d.stats().ops[0].values.capacity;
        assert!(cap > 1 && cap <= AUTO_PREFETCH_MAX as u64, "capacity {cap}");
    }

    #[test]
    fn resume_before_threads_start_skips_the_input() {
        let d = Dataset::range(0, 20)
            .par_map_with_rng(Parallel::threads(2), 3, |x, r| (x, r.below(100)))
            .prefetch(2);
        let all = v(&d);
        let rest: Vec<_> = d
            .iter_from(crate::Checkpoint {
                epoch: 0,
                position: 7,
            })
            .map(|x| x.unwrap())
            .collect();
        assert_eq!(rest, all[7..]);
    }

    #[test]
    fn interleave_cycles_blocks() {
        let d =
            Dataset::range(0, 3).interleave(2, 2, false, |x| Dataset::range(x * 10, x * 10 + 3));
        assert_eq!(v(&d), [0, 1, 10, 11, 2, 12, 20, 21, 22]);
        let p = Dataset::range(0, 3).interleave(2, 2, true, |x| Dataset::range(x * 10, x * 10 + 3));
        assert_eq!(v(&p), v(&d));
        assert!(Dataset::range(0, 3)
            .interleave(0, 1, false, |_| Dataset::from_vec(Vec::<i64>::new()))
            .collect_vec()
            .is_err());
    }

    /// DATASET.md: augmentation inside interleaved files must not be correlated.
    #[test]
    fn random_draws_inside_interleaved_files_are_keyed_by_file() {
        for parallel in [false, true] {
            let d = Dataset::range(0, 3).interleave(3, 1, parallel, |f| {
                Dataset::range(0, 4).map_with_rng(9, move |x, r| (f, x, r.below(1_000_000)))
            });
            let all = d.collect_epoch(0).unwrap();
            assert_eq!(all.len(), 12);
            for j in 0..4 {
                let draws: Vec<u64> = all.iter().filter(|e| e.1 == j).map(|e| e.2).collect();
                assert_eq!(draws.len(), 3);
                assert!(
                    draws[0] != draws[1] && draws[1] != draws[2] && draws[0] != draws[2],
                    "element {j} of every file drew the same: {draws:?}"
                );
            }
            // Reproducible, and the same with or without threads.
            assert_eq!(d.collect_epoch(0).unwrap(), all);
        }
        let seq = Dataset::range(0, 3).interleave(3, 1, false, |f| {
            Dataset::range(0, 4).map_with_rng(9, move |x, r| (f, x, r.below(1_000_000)))
        });
        let par = Dataset::range(0, 3).interleave(3, 1, true, |f| {
            Dataset::range(0, 4).map_with_rng(9, move |x, r| (f, x, r.below(1_000_000)))
        });
        assert_eq!(seq.collect_epoch(0).unwrap(), par.collect_epoch(0).unwrap());
        // The parts of a concatenation too.
        let part = Dataset::range(0, 3).map_with_rng(4, |_, r| r.below(1_000_000));
        let c = part.concatenate(&part).collect_epoch(0).unwrap();
        assert_ne!(c[..3], c[3..]);
    }

    #[test]
    fn an_impossible_cycle_length_is_an_error_item() {
        let e = Dataset::range(0, 3)
            .interleave(usize::MAX, 1, false, |x| Dataset::range(x, x + 1))
            .collect_vec()
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle length"), "{e}");
    }

    /// DATASET.md: random draws after an unordered parallel map are stable.
    #[test]
    fn a_random_map_after_an_unordered_map_keys_by_input_position() {
        let run = |threads: usize| {
            let mut v: Vec<(i64, u64)> = Dataset::range(0, 200)
                .par_map(Parallel::threads(threads).unordered(), |x| {
                    if x % 3 == 0 {
                        std::thread::sleep(Duration::from_micros(((x * 37) % 200) as u64));
                    }
                    x
                })
                .map_with_rng(5, |x, r| (x, r.next_u64()))
                .collect_epoch(0)
                .unwrap();
            v.sort();
            v
        };
        let reference: Vec<(i64, u64)> = Dataset::range(0, 200)
            .map_with_rng(5, |x, r| (x, r.next_u64()))
            .collect_epoch(0)
            .unwrap();
        for t in [1, 3, 4] {
            assert_eq!(run(t), reference, "threads={t}");
        }
    }
}
