//! The [`Dataset`] type, its iterator, checkpoints and the in-memory sources.
//!
//! A `Dataset<T>` is a *description* of a stream of `T`: building one does no work.
//! Work happens when it is iterated: [`Dataset::iter`] opens every operator of the graph
//! for one epoch and returns an [`Iter`], which yields `Result<T>` items one at a time.
//! Buffers (shuffle, prefetch, parallel map, batch, …) have fixed capacities, so memory
//! is bounded by the buffer sizes, never by the size of the data.
//!
//! A `Dataset` is cheap to clone (it is an `Arc`) and can be iterated any number of
//! times, concurrently or one after the other.

use std::sync::Arc;

use crate::error::Result;
use crate::rng::Rng;
use crate::stats::{timed, Counters, OpStats, StatsReport};

/// A pull-based stream of items: what an opened operator is.
///
/// Implement it to write a custom operator or source and wrap it with
/// [`Dataset::from_stream`].
pub trait Stream<T>: Send {
    /// The next item: `Some(Ok(x))` for an element, `Some(Err(e))` for an error (after
    /// which the stream may go on if it can, see [`crate::Error::is_record_level`]),
    /// `None` at the end. After `None`, further calls return `None`.
    fn next(&mut self) -> Option<Result<T>>;

    /// Discards up to `n` items (elements and errors alike) and returns how many were
    /// discarded (fewer only at the end of the stream). The default pulls and drops
    /// them; streams that can jump ahead cheaply override it. Used to resume from a
    /// [`Checkpoint`].
    fn skip_items(&mut self, n: u64) -> u64 {
        let mut k = 0;
        while k < n && self.next().is_some() {
            k += 1;
        }
        k
    }

    /// The position in the epoch that keys the item last returned by `next`, when it
    /// differs from the order of arrival: an unordered parallel map returns the input
    /// position of its last output, so that an indexed map right after it keys random
    /// draws by position, not by completion order. `None` (the default) means "count
    /// arrivals".
    fn last_index(&self) -> Option<u64> {
        None
    }
}

impl<T, S: Stream<T> + ?Sized> Stream<T> for Box<S> {
    fn next(&mut self) -> Option<Result<T>> {
        (**self).next()
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        (**self).skip_items(n)
    }
    fn last_index(&self) -> Option<u64> {
        (**self).last_index()
    }
}

/// A boxed stream.
pub type BoxStream<T> = Box<dyn Stream<T>>;

/// A stream from an iterator of items.
pub(crate) struct IterStream<I>(pub I);

impl<T, I: Iterator<Item = Result<T>> + Send> Stream<T> for IterStream<I> {
    fn next(&mut self) -> Option<Result<T>> {
        self.0.next()
    }
}

/// What an operator is told when it is opened.
#[derive(Clone)]
pub struct OpenCx {
    /// The epoch being opened (0 for the first iteration; see [`Dataset::repeat`]).
    pub epoch: u64,
    /// Which stream of the epoch this is: 0 for a pipeline opened by itself, and a
    /// value derived from the parent's stream and the input's position for a dataset
    /// opened inside another (each dataset of an `interleave`, each part of a
    /// `concatenate`, each input of `sample_from`). Keys random draws together with the
    /// epoch and the element index (see [`Element`]), so that the `j`-th element of two
    /// interleaved files never shares a draw.
    pub stream: u64,
    /// The operator's own counters, to record bytes, skipped records and buffer fill.
    pub counters: Arc<Counters>,
}

/// Where one element sits in its stream: passed to indexed maps, and the key of every
/// random decision about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    /// The epoch.
    pub epoch: u64,
    /// 0-based index of the element among the items the operator received this epoch.
    pub index: u64,
    /// The stream the element belongs to ([`OpenCx::stream`]; 0 at the top level).
    pub stream: u64,
}

impl Element {
    /// The random generator for this element under `seed`:
    /// `Rng::for_element(seed, epoch, index)` at the top level (stream 0), and
    /// `Rng::keyed(seed, &[epoch, index, stream])` inside a nested stream.
    pub fn rng(&self, seed: u64) -> Rng {
        if self.stream == 0 {
            Rng::for_element(seed, self.epoch, self.index)
        } else {
            Rng::keyed(seed, &[self.epoch, self.index, self.stream])
        }
    }
}

/// The stream key of the `k`-th dataset opened inside a stream keyed `parent`
/// (never 0, so a nested stream never collides with the top level).
pub(crate) fn child_stream(parent: u64, k: u64) -> u64 {
    let s = crate::rng::mix64(parent ^ crate::rng::mix64(k.wrapping_add(0x51_7CC1_B727_220A)));
    if s == 0 {
        1
    } else {
        s
    }
}

/// Metadata of an operator, independent of its element type.
pub(crate) trait Meta: Send + Sync {
    fn name(&self) -> &str;
    fn counters(&self) -> &Counters;
    fn children(&self) -> &[Arc<dyn Meta>];
}

type OpenFn<T> = dyn Fn(&OpenCx) -> BoxStream<T> + Send + Sync;

pub(crate) struct Op<T> {
    name: String,
    counters: Arc<Counters>,
    children: Vec<Arc<dyn Meta>>,
    open: Box<OpenFn<T>>,
    next_epoch: std::sync::atomic::AtomicU64,
}

impl<T> Meta for Op<T> {
    fn name(&self) -> &str {
        &self.name
    }
    fn counters(&self) -> &Counters {
        &self.counters
    }
    fn children(&self) -> &[Arc<dyn Meta>] {
        &self.children
    }
}

/// A lazily evaluated, typed stream of elements of type `T`; see the module
/// documentation.
pub struct Dataset<T> {
    op: Arc<Op<T>>,
}

impl<T> Clone for Dataset<T> {
    fn clone(&self) -> Self {
        Dataset {
            op: Arc::clone(&self.op),
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for Dataset<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dataset({})", self.describe())
    }
}

/// A position in an iteration: enough to resume it (see [`Dataset::iter_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The epoch being iterated.
    pub epoch: u64,
    /// Number of items (elements and errors) already yielded in that epoch.
    pub position: u64,
}

/// An iteration of a [`Dataset`] for one epoch.
///
/// Yields `Result<T>`; dropping it stops every background thread of the pipeline.
pub struct Iter<T> {
    stream: BoxStream<T>,
    cp: Checkpoint,
}

impl<T> Iter<T> {
    /// The checkpoint to resume this iteration right after the last yielded item.
    pub fn checkpoint(&self) -> Checkpoint {
        self.cp
    }
}

impl<T> Iterator for Iter<T> {
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        let r = self.stream.next();
        if r.is_some() {
            self.cp.position += 1;
        }
        r
    }
}

impl<T> std::fmt::Debug for Iter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Iter({:?})", self.cp)
    }
}

struct Instrumented<T> {
    inner: BoxStream<T>,
    counters: Arc<Counters>,
}

impl<T> Stream<T> for Instrumented<T> {
    #[inline]
    fn next(&mut self) -> Option<Result<T>> {
        let inner = &mut self.inner;
        let r = timed(&self.counters, || inner.next());
        if let Some(item) = &r {
            self.counters.count_item(item);
        }
        r
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let inner = &mut self.inner;
        timed(&self.counters, || inner.skip_items(n))
    }
    fn last_index(&self) -> Option<u64> {
        self.inner.last_index()
    }
}

impl<T: Send + 'static> Dataset<T> {
    /// An operator named `name` with upstream `children`, opened by `open`.
    pub(crate) fn from_op(
        name: impl Into<String>,
        children: Vec<Arc<dyn Meta>>,
        open: impl Fn(&OpenCx) -> BoxStream<T> + Send + Sync + 'static,
    ) -> Self {
        Dataset {
            op: Arc::new(Op {
                name: name.into(),
                counters: Arc::default(),
                children,
                open: Box::new(open),
                next_epoch: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// A custom source or operator: `open` is called once per iteration with the epoch
    /// and the operator's counters and returns the stream for that iteration.
    pub fn from_stream<S: Stream<T> + 'static>(
        name: impl Into<String>,
        open: impl Fn(&OpenCx) -> S + Send + Sync + 'static,
    ) -> Self {
        Self::from_op(name, vec![], move |cx| Box::new(open(cx)))
    }

    /// A source from a function that returns, for each epoch, an iterator of items.
    /// The function is called once per iteration.
    pub fn from_fn<I>(name: impl Into<String>, f: impl Fn(u64) -> I + Send + Sync + 'static) -> Self
    where
        I: IntoIterator<Item = Result<T>>,
        I::IntoIter: Send + 'static,
    {
        Self::from_op(name, vec![], move |cx| {
            Box::new(IterStream(f(cx.epoch).into_iter()))
        })
    }

    /// Opens the pipeline for `epoch` (top-level stream 0) and returns its
    /// (instrumented) stream.
    pub fn open(&self, epoch: u64) -> BoxStream<T> {
        self.open_keyed(epoch, 0)
    }

    /// Opens the pipeline as the upstream of an operator being opened with `cx`: same
    /// epoch and stream. Custom operators use this to open their inputs.
    pub fn open_from(&self, cx: &OpenCx) -> BoxStream<T> {
        self.open_keyed(cx.epoch, cx.stream)
    }

    /// Opens the pipeline for `epoch` as stream `stream` (see [`OpenCx::stream`]).
    pub fn open_keyed(&self, epoch: u64, stream: u64) -> BoxStream<T> {
        let cx = OpenCx {
            epoch,
            stream,
            counters: Arc::clone(&self.op.counters),
        };
        Box::new(Instrumented {
            inner: (self.op.open)(&cx),
            counters: Arc::clone(&self.op.counters),
        })
    }

    /// Iterates the next epoch of this dataset: the first call iterates epoch 0, the
    /// next epoch 1, and so on (clones share the count). As with `tf.data`, a second pass
    /// over a shuffled dataset is therefore shuffled anew, and random augmentation draws
    /// anew; use [`Dataset::iter_epoch`] to name the epoch yourself (to repeat one
    /// exactly, or to resume training at a given epoch), and [`Dataset::next_epoch`] to
    /// see which one comes next.
    ///
    /// ```
    /// use edgeflow_data::Dataset;
    /// let d = Dataset::range(0, 20).shuffle(20, 7);
    /// let first: Vec<i64> = d.iter().map(|x| x.unwrap()).collect();
    /// let second: Vec<i64> = d.iter().map(|x| x.unwrap()).collect();
    /// assert_ne!(first, second); // reshuffled, as tf.data does
    /// let again: Vec<i64> = d.iter_epoch(0).map(|x| x.unwrap()).collect();
    /// assert_eq!(first, again); // epoch 0, exactly
    /// ```
    pub fn iter(&self) -> Iter<T> {
        let epoch = self
            .op
            .next_epoch
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.iter_epoch(epoch)
    }

    /// The epoch the next [`Dataset::iter`] (or [`Dataset::collect_vec`],
    /// [`Dataset::count`]) will iterate.
    pub fn next_epoch(&self) -> u64 {
        self.op
            .next_epoch
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Iterates epoch `epoch`: the epoch keys every random decision (shuffle order,
    /// random augmentations), so epochs differ and each one is reproducible.
    pub fn iter_epoch(&self, epoch: u64) -> Iter<T> {
        Iter {
            stream: self.open(epoch),
            cp: Checkpoint { epoch, position: 0 },
        }
    }

    /// Resumes an iteration from a checkpoint: opens `cp.epoch` and skips
    /// `cp.position` items. Because every random decision is keyed by
    /// `(seed, epoch, index)`, the resumed iteration yields exactly the items the
    /// original would have yielded next. Skipping is fast where operators can jump
    /// (in-memory sources, maps, concatenation, repeat, take/skip) and recomputes the
    /// skipped items elsewhere; no buffer contents are ever saved.
    pub fn iter_from(&self, cp: Checkpoint) -> Iter<T> {
        let mut stream = self.open(cp.epoch);
        let skipped = stream.skip_items(cp.position);
        Iter {
            stream,
            cp: Checkpoint {
                epoch: cp.epoch,
                position: skipped,
            },
        }
    }

    /// Collects the next epoch (see [`Dataset::iter`]) into a vector, stopping at the
    /// first error.
    pub fn collect_vec(&self) -> Result<Vec<T>> {
        self.iter().collect()
    }

    /// Collects epoch `epoch` into a vector, stopping at the first error.
    pub fn collect_epoch(&self, epoch: u64) -> Result<Vec<T>> {
        self.iter_epoch(epoch).collect()
    }

    /// Counts the items of the next epoch (elements and errors; see [`Dataset::iter`]).
    pub fn count(&self) -> u64 {
        let mut s = self.iter();
        let mut n = 0;
        while s.next().is_some() {
            n += 1;
        }
        n
    }

    pub(crate) fn meta(&self) -> Arc<dyn Meta> {
        Arc::clone(&self.op) as Arc<dyn Meta>
    }

    /// The operator's name with its parameters.
    pub fn name(&self) -> &str {
        &self.op.name
    }

    /// The pipeline as text, source first: `range(0..10) -> map -> batch(4)`. For
    /// operators with several inputs the inputs are listed in brackets.
    pub fn describe(&self) -> String {
        fn go(m: &dyn Meta) -> String {
            match m.children() {
                [] => m.name().to_string(),
                [c] => format!("{} -> {}", go(&**c), m.name()),
                cs => format!(
                    "[{}] -> {}",
                    cs.iter().map(|c| go(&**c)).collect::<Vec<_>>().join(", "),
                    m.name()
                ),
            }
        }
        go(&*self.op)
    }

    /// The counters of every operator of the pipeline, accumulated over every iteration
    /// so far.
    pub fn stats(&self) -> StatsReport {
        fn go(m: &dyn Meta, depth: usize, out: &mut Vec<OpStats>) {
            out.push(OpStats {
                depth,
                name: m.name().to_string(),
                values: m.counters().snapshot(),
                last_warning: m.counters().last_warning(),
            });
            for c in m.children() {
                go(&**c, depth + 1, out);
            }
        }
        let mut ops = Vec::new();
        go(&*self.op, 0, &mut ops);
        StatsReport { ops }
    }
}

// ---------------------------------------------------------------------------------------
// In-memory sources.

struct SliceStream<T> {
    items: Arc<Vec<T>>,
    pos: usize,
}

impl<T: Clone + Send + Sync> Stream<T> for SliceStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        let x = self.items.get(self.pos)?.clone();
        self.pos += 1;
        Some(Ok(x))
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let k = (n as usize).min(self.items.len().saturating_sub(self.pos));
        self.pos += k;
        k as u64
    }
}

impl<T: Clone + Send + Sync + 'static> Dataset<T> {
    /// A dataset of the given elements, cloned out on each iteration.
    pub fn from_vec(items: Vec<T>) -> Self {
        let items = Arc::new(items);
        Self::from_op(format!("from_vec({})", items.len()), vec![], move |_| {
            Box::new(SliceStream {
                items: Arc::clone(&items),
                pos: 0,
            })
        })
    }
}

struct RangeStream {
    next: i64,
    end: i64,
    step: i64,
}

impl Stream<i64> for RangeStream {
    fn next(&mut self) -> Option<Result<i64>> {
        let done = if self.step > 0 {
            self.next >= self.end
        } else {
            self.next <= self.end
        };
        if done {
            return None;
        }
        let x = self.next;
        self.next = self.next.saturating_add(self.step);
        if self.next == x {
            // saturated: make the next call end
            self.next = self.end;
        }
        Some(Ok(x))
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let remaining = if self.step > 0 {
            (self.end.saturating_sub(self.next).max(0) as u64).div_ceil(self.step as u64)
        } else {
            (self.next.saturating_sub(self.end).max(0) as u64).div_ceil(self.step.unsigned_abs())
        };
        let k = n.min(remaining);
        self.next = self
            .next
            .saturating_add((k as i64).saturating_mul(self.step));
        k
    }
}

impl Dataset<i64> {
    /// The integers `start, start + step, …` up to but excluding `end` (`step` may be
    /// negative; a zero step is an error item).
    pub fn range_step(start: i64, end: i64, step: i64) -> Self {
        Self::from_op(
            format!("range({start}..{end}, {step})"),
            vec![],
            move |_| {
                if step == 0 {
                    return Box::new(IterStream(std::iter::once(Err(crate::Error::invalid(
                        "range",
                        "step must not be 0",
                    )))));
                }
                Box::new(RangeStream {
                    next: start,
                    end,
                    step,
                })
            },
        )
    }

    /// The integers `start..end`.
    pub fn range(start: i64, end: i64) -> Self {
        let mut d = Self::range_step(start, end, 1);
        if let Some(op) = Arc::get_mut(&mut d.op) {
            op.name = format!("range({start}..{end})");
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_and_vec_yield_their_elements() {
        assert_eq!(
            Dataset::range(0, 5).collect_vec().unwrap(),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            Dataset::range_step(10, 0, -3).collect_vec().unwrap(),
            vec![10, 7, 4, 1]
        );
        assert!(Dataset::range(3, 3).collect_vec().unwrap().is_empty());
        assert!(Dataset::range_step(0, 3, 0).collect_vec().is_err());
        assert_eq!(
            Dataset::from_vec(vec!["a", "b"]).collect_vec().unwrap(),
            vec!["a", "b"]
        );
    }

    #[test]
    fn range_skip_matches_pulling() {
        for (s, e, st) in [(0, 10, 1), (0, 10, 3), (10, -5, -4), (0, 0, 1)] {
            let all = Dataset::range_step(s, e, st).collect_vec().unwrap();
            for n in 0..12u64 {
                let mut it = Dataset::range_step(s, e, st).open(0);
                let k = it.skip_items(n);
                assert_eq!(k, n.min(all.len() as u64));
                let rest: Vec<i64> = std::iter::from_fn(|| it.next())
                    .map(|x| x.unwrap())
                    .collect();
                assert_eq!(rest, all[k as usize..]);
            }
        }
    }

    #[test]
    fn a_dataset_can_be_iterated_twice_and_from_fn_sees_the_epoch() {
        let d = Dataset::from_fn("epochs", |e| (0..3).map(move |i| Ok(e * 10 + i)));
        assert_eq!(d.iter().map(|x| x.unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(
            d.iter_epoch(2).map(|x| x.unwrap()).collect::<Vec<_>>(),
            [20, 21, 22]
        );
    }

    #[test]
    fn checkpoint_counts_yielded_items() {
        let d = Dataset::range(0, 10);
        let mut it = d.iter();
        it.next();
        it.next();
        assert_eq!(
            it.checkpoint(),
            Checkpoint {
                epoch: 0,
                position: 2
            }
        );
        let rest: Vec<i64> = d.iter_from(it.checkpoint()).map(|x| x.unwrap()).collect();
        assert_eq!(rest, (2..10).collect::<Vec<_>>());
    }
}
