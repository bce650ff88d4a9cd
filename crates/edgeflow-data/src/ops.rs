//! Element-wise and structural transformations that run on the consumer's thread.
//!
//! # Errors, epochs and randomness
//!
//! Errors are items: a bad record becomes an `Err` item at its place in the stream and
//! the stream goes on. Every operator passes error items through unchanged unless its
//! documentation says otherwise, and follows `tf.data` on where an error item counts:
//!
//! - *element-wise* operators (`map`, `filter`, `flat_map`, `take_while`, `inspect`, …)
//!   pass it through; `enumerate` gives it an index (it occupies its position, as in
//!   `tf.data`, whose `enumerate` is a `zip` with a counter);
//! - *counting* operators count elements only: `take(n)` yields `n` elements plus the
//!   error items met on the way, `skip(n)` skips `n` elements and passes on the error
//!   items met while skipping, `shard(n, i)` deals out the elements and passes every
//!   error item to every shard, an interleave block holds `block_length` elements;
//! - *grouping* operators (`batch`, `padded_batch`, `window`) give an error item its
//!   position, and a group that covers it becomes an error item (see each operator);
//!   `bucket_by_sequence_length` passes it through and keeps its buckets.
//!
//! [`Dataset::ignore_errors`] drops error items and counts them. Checkpoints count
//! items, errors included.
//!
//! Epochs: [`Dataset::iter`] iterates the next epoch (0, 1, 2, … per dataset), so a
//! second pass reshuffles and redraws, as in `tf.data`; [`Dataset::iter_epoch`] names
//! the epoch. Randomness: every random draw is keyed by `(seed, epoch, index)` and, for
//! datasets opened inside another (interleave, concatenate, sample_from), by the stream
//! they are (see [`crate::OpenCx::stream`]), so draws are reproducible and uncorrelated.
//!
//! ```
//! use edgeflow_data::Dataset;
//! let parsed = Dataset::from_vec(vec!["1", "x", "3", "4"]).try_map(|s: &str| s.parse::<i64>());
//! // take(3) takes three elements; the error item is passed on, not counted.
//! let items: Vec<_> = parsed.take(3).iter().collect();
//! assert_eq!(items.len(), 4);
//! assert_eq!(parsed.take(3).ignore_errors().collect_vec()?, [1, 3, 4]);
//! # Ok::<(), edgeflow_data::Error>(())
//! ```

use std::sync::Arc;

use crate::dataset::{BoxStream, Dataset, Element, Stream};
use crate::error::{BoxError, Error, Result};
use crate::rng::Rng;

/// A shared element function: `(element, where it sits) -> result`.
pub(crate) type ElemFn<T, U> = Arc<dyn Fn(T, Element) -> Result<U> + Send + Sync>;

/// A shared observer of items.
type InspectFn<T> = Arc<dyn Fn(&Result<T>) + Send + Sync>;

struct MapStream<T, U> {
    up: BoxStream<T>,
    f: ElemFn<T, U>,
    epoch: u64,
    stream: u64,
    index: u64,
    /// The upstream's key for the item last returned (see [`Stream::last_index`]).
    last: Option<u64>,
}

impl<T, U> Stream<U> for MapStream<T, U> {
    fn next(&mut self) -> Option<Result<U>> {
        let item = self.up.next()?;
        self.last = self.up.last_index();
        let e = Element {
            epoch: self.epoch,
            index: self.last.unwrap_or(self.index),
            stream: self.stream,
        };
        self.index += 1;
        Some(item.and_then(|x| (self.f)(x, e)))
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let k = self.up.skip_items(n);
        self.index += k;
        self.last = None;
        k
    }
    fn last_index(&self) -> Option<u64> {
        self.last
    }
}

struct FilterMapStream<T, U> {
    up: BoxStream<T>,
    f: Arc<dyn Fn(T) -> Option<U> + Send + Sync>,
}

impl<T, U> Stream<U> for FilterMapStream<T, U> {
    fn next(&mut self) -> Option<Result<U>> {
        loop {
            match self.up.next()? {
                Ok(x) => {
                    if let Some(y) = (self.f)(x) {
                        return Some(Ok(y));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
    fn last_index(&self) -> Option<u64> {
        // The item last returned is the upstream's last item: keep its key.
        self.up.last_index()
    }
}

struct FlatMapStream<T, I: IntoIterator> {
    up: BoxStream<T>,
    f: Arc<dyn Fn(T) -> I + Send + Sync>,
    cur: Option<I::IntoIter>,
}

impl<T, I> Stream<I::Item> for FlatMapStream<T, I>
where
    I: IntoIterator,
    I::IntoIter: Send,
{
    fn next(&mut self) -> Option<Result<I::Item>> {
        loop {
            if let Some(it) = &mut self.cur {
                if let Some(x) = it.next() {
                    return Some(Ok(x));
                }
                self.cur = None;
            }
            match self.up.next()? {
                Ok(x) => self.cur = Some((self.f)(x).into_iter()),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

struct TakeStream<T> {
    up: BoxStream<T>,
    left: u64,
}

impl<T> Stream<T> for TakeStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.left == 0 {
            return None;
        }
        match self.up.next() {
            Some(Ok(x)) => {
                self.left -= 1;
                Some(Ok(x))
            }
            // An error item is passed on and does not count (as in tf.data).
            Some(Err(e)) => Some(Err(e)),
            None => {
                self.left = 0;
                None
            }
        }
    }
    fn last_index(&self) -> Option<u64> {
        // The item last returned is the upstream's last item: keep its key.
        self.up.last_index()
    }
}

struct SkipStream<T> {
    up: BoxStream<T>,
    pending: u64,
}

impl<T> Stream<T> for SkipStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            let item = self.up.next()?;
            match item {
                Ok(_) if self.pending > 0 => self.pending -= 1,
                // Errors met while skipping are passed on and do not count.
                other => return Some(other),
            }
        }
    }
    fn last_index(&self) -> Option<u64> {
        // The item last returned is the upstream's last item: keep its key.
        self.up.last_index()
    }
}

struct TakeWhileStream<T> {
    up: BoxStream<T>,
    pred: Arc<dyn Fn(&T) -> bool + Send + Sync>,
    done: bool,
}

impl<T> Stream<T> for TakeWhileStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        match self.up.next() {
            Some(Ok(x)) if (self.pred)(&x) => Some(Ok(x)),
            Some(Err(e)) => Some(Err(e)),
            _ => {
                self.done = true;
                None
            }
        }
    }
    fn last_index(&self) -> Option<u64> {
        // The item last returned is the upstream's last item: keep its key.
        self.up.last_index()
    }
}

struct ShardStream<T> {
    up: BoxStream<T>,
    n: u64,
    i: u64,
    /// Elements (not errors) seen so far.
    seen: u64,
    /// Items (elements and errors) pulled so far.
    pulled: u64,
    /// The position in the unsharded stream of the item last returned.
    last: Option<u64>,
}

impl<T> Stream<T> for ShardStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            let item = self.up.next()?;
            // Re-keying: the item keeps its position in the unsharded stream (or the
            // upstream's own key), so a random map after `shard` draws for each element
            // what the unsharded pipeline draws for it, and no two shards share draws.
            let pos = self.up.last_index().unwrap_or(self.pulled);
            self.pulled += 1;
            match item {
                Ok(x) => {
                    let k = self.seen;
                    self.seen += 1;
                    if k % self.n == self.i {
                        self.last = Some(pos);
                        return Some(Ok(x));
                    }
                }
                // Every shard reports every error item (as tf.data's shard does).
                Err(e) => {
                    self.last = Some(pos);
                    return Some(Err(e));
                }
            }
        }
    }
    fn last_index(&self) -> Option<u64> {
        self.last
    }
}

struct EnumerateStream<T> {
    up: BoxStream<T>,
    index: u64,
}

impl<T> Stream<(u64, T)> for EnumerateStream<T> {
    fn next(&mut self) -> Option<Result<(u64, T)>> {
        let item = self.up.next()?;
        let i = self.index;
        self.index = self.index.wrapping_add(1);
        Some(item.map(|x| (i, x)))
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let k = self.up.skip_items(n);
        self.index = self.index.wrapping_add(k);
        k
    }
}

struct RepeatStream<T> {
    ds: Dataset<T>,
    stream: u64,
    count: Option<u64>,
    outer: u64,
    round: u64,
    cur: Option<BoxStream<T>>,
    produced: bool,
}

impl<T: Send + 'static> RepeatStream<T> {
    fn inner_epoch(&self) -> u64 {
        match self.count {
            Some(c) => self.outer.wrapping_mul(c).wrapping_add(self.round),
            None => (self.outer << 32).wrapping_add(self.round),
        }
    }
    /// The current inner stream, opening the next round if needed; `None` at the end.
    fn current(&mut self) -> Option<&mut BoxStream<T>> {
        if self.cur.is_none() {
            if self.count.is_some_and(|c| self.round >= c) {
                return None;
            }
            self.cur = Some(self.ds.open_keyed(self.inner_epoch(), self.stream));
            self.produced = false;
        }
        self.cur.as_mut()
    }
    fn end_round(&mut self) -> bool {
        self.cur = None;
        self.round += 1;
        // A round without a single element, repeated forever, would loop forever
        // (an empty dataset, or a missing file yielding only an error): stop instead.
        self.produced || self.count.is_some()
    }
}

impl<T: Send + 'static> Stream<T> for RepeatStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            let cur = self.current()?;
            match cur.next() {
                Some(x) => {
                    self.produced |= x.is_ok();
                    return Some(x);
                }
                None => {
                    if !self.end_round() {
                        return None;
                    }
                }
            }
        }
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let mut done = 0;
        while done < n {
            let Some(cur) = self.current() else { break };
            let k = cur.skip_items(n - done);
            done += k;
            if k > 0 {
                self.produced = true;
            }
            if done < n && !self.end_round() {
                break;
            }
        }
        done
    }
}

struct IgnoreErrorsStream<T> {
    up: BoxStream<T>,
    counters: Arc<crate::stats::Counters>,
}

impl<T> Stream<T> for IgnoreErrorsStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            match self.up.next()? {
                Ok(x) => return Some(Ok(x)),
                Err(_) => self.counters.add_skipped(),
            }
        }
    }
    fn last_index(&self) -> Option<u64> {
        // The item last returned is the upstream's last item: keep its key.
        self.up.last_index()
    }
}

struct InspectStream<T> {
    up: BoxStream<T>,
    f: InspectFn<T>,
}

impl<T> Stream<T> for InspectStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        let r = self.up.next()?;
        (self.f)(&r);
        Some(r)
    }
    fn last_index(&self) -> Option<u64> {
        // The item last returned is the upstream's last item: keep its key.
        self.up.last_index()
    }
}

impl<T: Send + 'static> Dataset<T> {
    pub(crate) fn map_elem<U: Send + 'static>(
        &self,
        name: impl Into<String>,
        f: ElemFn<T, U>,
    ) -> Dataset<U> {
        let up = self.clone();
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            Box::new(MapStream {
                up: up.open_from(cx),
                f: Arc::clone(&f),
                epoch: cx.epoch,
                stream: cx.stream,
                index: 0,
                last: None,
            })
        })
    }

    /// Applies `f` to every element.
    pub fn map<U: Send + 'static>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Dataset<U> {
        self.map_elem("map", Arc::new(move |x, _| Ok(f(x))))
    }

    /// Applies a fallible `f` to every element; a failure becomes an
    /// [`Error::User`] item naming the element's index.
    pub fn try_map<U: Send + 'static, E: Into<BoxError>>(
        &self,
        f: impl Fn(T) -> std::result::Result<U, E> + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.map_elem(
            "try_map",
            Arc::new(move |x, e: Element| {
                f(x).map_err(|err| Error::User {
                    op: "try_map",
                    index: e.index,
                    source: err.into(),
                })
            }),
        )
    }

    /// Applies a fallible `f` whose errors are this crate's [`Error`]s (a file reader,
    /// say); they become error items unchanged.
    pub fn map_result<U: Send + 'static>(
        &self,
        f: impl Fn(T) -> Result<U> + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.map_elem("map_result", Arc::new(move |x, _| f(x)))
    }

    /// Applies `f` to every element together with its position ([`Element`]).
    pub fn map_indexed<U: Send + 'static>(
        &self,
        f: impl Fn(T, Element) -> U + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.map_elem("map_indexed", Arc::new(move |x, e| Ok(f(x, e))))
    }

    /// Applies `f` to every element with a random generator keyed by
    /// `(seed, epoch, index)`: random augmentation that is reproducible and identical to
    /// [`Dataset::par_map_with_rng`] at any thread count.
    pub fn map_with_rng<U: Send + 'static>(
        &self,
        seed: u64,
        f: impl Fn(T, &mut Rng) -> U + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.map_elem(
            format!("map_with_rng(seed={seed})"),
            Arc::new(move |x, e: Element| Ok(f(x, &mut e.rng(seed)))),
        )
    }

    /// Keeps the elements for which `pred` is true.
    pub fn filter(&self, pred: impl Fn(&T) -> bool + Send + Sync + 'static) -> Dataset<T> {
        self.filter_map_named("filter", move |x| if pred(&x) { Some(x) } else { None })
    }

    /// Maps every element to an optional value and keeps the `Some`s.
    pub fn filter_map<U: Send + 'static>(
        &self,
        f: impl Fn(T) -> Option<U> + Send + Sync + 'static,
    ) -> Dataset<U> {
        self.filter_map_named("filter_map", f)
    }

    fn filter_map_named<U: Send + 'static>(
        &self,
        name: &str,
        f: impl Fn(T) -> Option<U> + Send + Sync + 'static,
    ) -> Dataset<U> {
        let up = self.clone();
        let f: Arc<dyn Fn(T) -> Option<U> + Send + Sync> = Arc::new(f);
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            Box::new(FilterMapStream {
                up: up.open_from(cx),
                f: Arc::clone(&f),
            })
        })
    }

    /// Maps every element to a collection and yields the collections' items in order.
    /// Memory: one collection at a time.
    pub fn flat_map<I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> Dataset<I::Item>
    where
        I: IntoIterator + 'static,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
    {
        let up = self.clone();
        let f: Arc<dyn Fn(T) -> I + Send + Sync> = Arc::new(f);
        Dataset::from_op("flat_map", vec![self.meta()], move |cx| {
            Box::new(FlatMapStream {
                up: up.open_from(cx),
                f: Arc::clone(&f),
                cur: None,
            })
        })
    }

    /// The first `n` elements. Error items met before the `n`-th element are passed on
    /// and do not count (as in `tf.data`): `take(3)` over `1, ERR, 3, 4` yields
    /// `1, ERR, 3, 4`.
    pub fn take(&self, n: u64) -> Dataset<T> {
        let up = self.clone();
        Dataset::from_op(format!("take({n})"), vec![self.meta()], move |cx| {
            Box::new(TakeStream {
                up: up.open_from(cx),
                left: n,
            })
        })
    }

    /// All but the first `n` elements. Error items met while skipping are passed on and
    /// do not count: `skip(2)` over `1, ERR, 3, 4` yields `ERR, 4`. (`tf.data` 2.21
    /// returns the error too, but then forgets the elements it had skipped before it and
    /// skips `n` more; this crate counts every element once.)
    pub fn skip(&self, n: u64) -> Dataset<T> {
        let up = self.clone();
        Dataset::from_op(format!("skip({n})"), vec![self.meta()], move |cx| {
            Box::new(SkipStream {
                up: up.open_from(cx),
                pending: n,
            })
        })
    }

    /// The elements up to (excluding) the first for which `pred` is false.
    pub fn take_while(&self, pred: impl Fn(&T) -> bool + Send + Sync + 'static) -> Dataset<T> {
        let up = self.clone();
        let pred: Arc<dyn Fn(&T) -> bool + Send + Sync> = Arc::new(pred);
        Dataset::from_op("take_while", vec![self.meta()], move |cx| {
            Box::new(TakeWhileStream {
                up: up.open_from(cx),
                pred: Arc::clone(&pred),
                done: false,
            })
        })
    }

    /// Elements `i, i + n, i + 2n, …`: shard `i` of `n` (as `tf.data`'s `shard`). The
    /// shards of `0..n` partition the elements. Error items occupy no position: every
    /// shard passes on every error item it meets (as `tf.data` does), so no bad record
    /// goes unreported and an error shifts no element into another shard. Every shard
    /// reads the whole upstream. `n == 0` or `i >= n` gives one error item.
    ///
    /// Randomness: a random map after `shard` keys each element by its position in the
    /// unsharded stream (see [`Stream::last_index`]), so shard `i` draws for an element
    /// exactly what the unsharded pipeline draws for it, and two shards never share a
    /// draw (keying by the position within the shard would give element `k` of every
    /// shard the same augmentation).
    ///
    /// ```
    /// use edgeflow_data::Dataset;
    /// let d = Dataset::range(0, 6);
    /// let all = d.map_with_rng(7, |x, r| (x, r.next_u64())).collect_vec()?;
    /// let one = d.shard(2, 1).map_with_rng(7, |x, r| (x, r.next_u64())).collect_vec()?;
    /// assert_eq!(one, [all[1], all[3], all[5]]);
    /// # Ok::<(), edgeflow_data::Error>(())
    /// ```
    pub fn shard(&self, n: u64, i: u64) -> Dataset<T> {
        let up = self.clone();
        Dataset::from_op(format!("shard({n}, {i})"), vec![self.meta()], move |cx| {
            if n == 0 || i >= n {
                return Box::new(crate::dataset::IterStream(std::iter::once(Err(
                    Error::invalid(
                        "shard",
                        format!("index {i} is not below the shard count {n}"),
                    ),
                ))));
            }
            Box::new(ShardStream {
                up: up.open_from(cx),
                n,
                i,
                seen: 0,
                pulled: 0,
                last: None,
            })
        })
    }

    /// Pairs every element with its 0-based index in the epoch. An error item occupies
    /// an index (as in `tf.data`): `a, ERR, b` gives `(0, a), ERR, (2, b)`.
    pub fn enumerate(&self) -> Dataset<(u64, T)> {
        self.enumerate_from(0)
    }

    /// [`Dataset::enumerate`] counting from `start` (as `tf.data`'s
    /// `enumerate(start)`); the index wraps around after `u64::MAX`.
    pub fn enumerate_from(&self, start: u64) -> Dataset<(u64, T)> {
        let up = self.clone();
        let name = if start == 0 {
            "enumerate".to_string()
        } else {
            format!("enumerate(start={start})")
        };
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            Box::new(EnumerateStream {
                up: up.open_from(cx),
                index: start,
            })
        })
    }

    /// The dataset `count` times over (forever with `None`). Round `r` of outer epoch
    /// `e` opens the upstream with epoch `e * count + r` (with `None`: `(e << 32) + r`),
    /// so with a shuffle upstream every round has its own order. Repeating forever stops
    /// after a round that yields no element (an empty dataset, or only errors), instead of
    /// looping forever.
    pub fn repeat(&self, count: Option<u64>) -> Dataset<T> {
        let up = self.clone();
        let name = match count {
            Some(c) => format!("repeat({c})"),
            None => "repeat".to_string(),
        };
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            Box::new(RepeatStream {
                ds: up.clone(),
                stream: cx.stream,
                count,
                outer: cx.epoch,
                round: 0,
                cur: None,
                produced: false,
            })
        })
    }

    /// Drops error items, counting them as `skipped` in this operator's counters: the
    /// explicit policy for tolerating bad records anywhere upstream.
    pub fn ignore_errors(&self) -> Dataset<T> {
        let up = self.clone();
        Dataset::from_op("ignore_errors", vec![self.meta()], move |cx| {
            Box::new(IgnoreErrorsStream {
                up: up.open_from(cx),
                counters: Arc::clone(&cx.counters),
            })
        })
    }

    /// Calls `f` on every item as it passes (for logging or progress), unchanged.
    pub fn inspect(&self, f: impl Fn(&Result<T>) + Send + Sync + 'static) -> Dataset<T> {
        let up = self.clone();
        let f: InspectFn<T> = Arc::new(f);
        Dataset::from_op("inspect", vec![self.meta()], move |cx| {
            Box::new(InspectStream {
                up: up.open_from(cx),
                f: Arc::clone(&f),
            })
        })
    }
}

impl<E: Send + 'static> Dataset<Vec<E>> {
    /// Splits every vector (a batch) into its elements: the inverse of
    /// [`Dataset::batch`].
    pub fn unbatch(&self) -> Dataset<E> {
        self.flat_map(|v| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T: Send + 'static>(d: &Dataset<T>) -> Vec<T> {
        d.collect_vec().unwrap()
    }

    fn failing(n: i64, bad: i64) -> Dataset<i64> {
        Dataset::range(0, n).try_map(move |x| if x == bad { Err("bad element") } else { Ok(x) })
    }

    #[test]
    fn map_filter_flat_map() {
        let d = Dataset::range(0, 6);
        assert_eq!(v(&d.map(|x| x * 2)), [0, 2, 4, 6, 8, 10]);
        assert_eq!(v(&d.filter(|x| x % 2 == 1)), [1, 3, 5]);
        assert_eq!(
            v(&d.filter_map(|x| (x % 3 == 0).then(|| x.to_string()))),
            ["0", "3"]
        );
        assert_eq!(v(&d.take(3).flat_map(|x| vec![x; x as usize])), [1, 2, 2]);
        assert_eq!(v(&d.batch(4, false).unbatch()), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn take_skip_take_while() {
        let d = Dataset::range(0, 10);
        assert_eq!(v(&d.take(3)), [0, 1, 2]);
        assert_eq!(v(&d.take(30)).len(), 10);
        assert_eq!(v(&d.skip(7)), [7, 8, 9]);
        assert!(v(&d.skip(70)).is_empty());
        assert_eq!(v(&d.take_while(|x| *x < 4)), [0, 1, 2, 3]);
        assert_eq!(v(&d.skip(2).take(3)), [2, 3, 4]);
    }

    #[test]
    fn shards_partition_the_dataset() {
        let d = Dataset::range(0, 11);
        let mut all = Vec::new();
        for i in 0..3 {
            let s = v(&d.shard(3, i));
            assert!(s.iter().all(|x| x % 3 == i as i64));
            all.extend(s);
        }
        all.sort();
        assert_eq!(all, (0..11).collect::<Vec<_>>());
        assert!(d.shard(3, 3).collect_vec().is_err());
        assert!(d.shard(0, 0).collect_vec().is_err());
    }

    #[test]
    fn shard_skip_matches_pulling() {
        // Through a map, so the generic (pulling) skip of the source is used too.
        for (n, i) in [(1, 0), (3, 0), (3, 2), (4, 1)] {
            let d = Dataset::range(0, 13).shard(n, i);
            let dm = Dataset::range(0, 13).filter(|_| true).shard(n, i);
            let all = v(&d);
            for k in 0..8u64 {
                for ds in [&d, &dm] {
                    let rest: Vec<i64> = ds
                        .iter_from(crate::Checkpoint {
                            epoch: 0,
                            position: k,
                        })
                        .map(|x| x.unwrap())
                        .collect();
                    assert_eq!(
                        rest,
                        all[(k as usize).min(all.len())..],
                        "n={n} i={i} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn enumerate_counts_from_zero() {
        assert_eq!(
            v(&Dataset::from_vec(vec!['a', 'b']).enumerate()),
            [(0, 'a'), (1, 'b')]
        );
    }

    #[test]
    fn repeat_finite_forever_and_empty() {
        let d = Dataset::range(0, 3);
        assert_eq!(v(&d.repeat(Some(2))), [0, 1, 2, 0, 1, 2]);
        assert!(v(&d.repeat(Some(0))).is_empty());
        assert_eq!(v(&d.repeat(None).take(7)), [0, 1, 2, 0, 1, 2, 0]);
        assert!(v(&Dataset::range(0, 0).repeat(None)).is_empty());
        let only_errors = Dataset::range(0, 2)
            .try_map(|_| Err::<i64, _>("bad"))
            .repeat(None);
        assert_eq!(only_errors.iter().count(), 2);
    }

    #[test]
    fn repeat_gives_each_round_its_own_epoch() {
        let d = Dataset::from_fn("e", |e| std::iter::once(Ok(e))).repeat(Some(3));
        assert_eq!(v(&d), [0, 1, 2]);
        assert_eq!(
            d.iter_epoch(1).map(|x| x.unwrap()).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    #[test]
    fn errors_pass_through_and_name_the_element() {
        let items: Vec<_> = failing(4, 2).map(|x| x + 1).iter().collect();
        assert_eq!(items.len(), 4);
        assert_eq!(*items[1].as_ref().unwrap(), 2);
        let e = items[2].as_ref().unwrap_err().to_string();
        assert_eq!(e, "try_map: element 2: bad element");
        assert_eq!(*items[3].as_ref().unwrap(), 4);
    }

    #[test]
    fn ignore_errors_skips_and_counts() {
        let d = failing(5, 3).ignore_errors();
        assert_eq!(v(&d), [0, 1, 2, 4]);
        let s = d.stats();
        assert_eq!(s.find("ignore_errors").unwrap().values.skipped, 1);
        assert_eq!(s.find("try_map").unwrap().values.errors, 1);
        assert_eq!(s.find("try_map").unwrap().values.elements, 4);
    }

    #[test]
    fn map_with_rng_is_keyed_by_epoch_and_index() {
        let d = Dataset::range(0, 5).map_with_rng(42, |x, r| (x, r.next_u64()));
        let a = v(&d);
        assert_eq!(a, d.collect_epoch(0).unwrap());
        for (x, r) in &a {
            assert_eq!(*r, Rng::for_element(42, 0, *x as u64).next_u64());
        }
        let b: Vec<_> = d.iter_epoch(1).map(|x| x.unwrap()).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn resume_through_fast_skips_equals_the_tail() {
        let d = Dataset::range(0, 7)
            .map_with_rng(1, |x, r| (x, r.below(1000)))
            .repeat(Some(3))
            .skip(2)
            .take(15)
            .enumerate();
        let all = v(&d);
        for k in 0..=all.len() as u64 + 1 {
            let rest: Vec<_> = d
                .iter_from(crate::Checkpoint {
                    epoch: 0,
                    position: k,
                })
                .map(|x| x.unwrap())
                .collect();
            assert_eq!(rest, all[(k as usize).min(all.len())..], "k={k}");
        }
    }

    #[test]
    fn describe_lists_the_pipeline() {
        let d = Dataset::range(0, 3).map(|x| x).take(2);
        assert_eq!(d.describe(), "range(0..3) -> map -> take(2)");
        let s = d.stats();
        assert_eq!(s.ops.len(), 3);
        assert_eq!(s.ops[0].name, "take(2)");
        assert_eq!(s.ops[2].depth, 2);
    }
}
