//! Buffering transformations: shuffle, batch, padded batch, bucket by sequence length,
//! window. Each holds at most its configured number of elements.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::dataset::{BoxStream, Dataset, IterStream, Stream};
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::stats::Counters;

/// A batch of variable-length sequences padded to one width.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch<E> {
    /// `rows × width` values, row-major; row `r` holds sequence `r` followed by padding.
    pub data: Vec<E>,
    /// Number of sequences.
    pub rows: usize,
    /// Padded length of every row.
    pub width: usize,
    /// Original length of every sequence.
    pub lengths: Vec<usize>,
}

impl<E> PaddedBatch<E> {
    /// Row `r` (padded), or `None` if `r >= rows`.
    pub fn row(&self, r: usize) -> Option<&[E]> {
        self.data.get(r * self.width..(r + 1) * self.width)
    }
}

/// The width a padded batch pads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadTo {
    /// The longest sequence of the batch.
    Longest,
    /// A fixed width; a longer sequence is an error item (never truncated).
    Fixed(usize),
}

fn pad<E: Clone>(
    op: &'static str,
    seqs: Vec<Vec<E>>,
    to: PadTo,
    value: &E,
) -> Result<PaddedBatch<E>> {
    let longest = seqs.iter().map(Vec::len).max().unwrap_or(0);
    let width = match to {
        PadTo::Longest => longest,
        PadTo::Fixed(w) => {
            if longest > w {
                return Err(Error::invalid(
                    op,
                    format!("a sequence of length {longest} does not fit the padded width {w}"),
                ));
            }
            w
        }
    };
    let rows = seqs.len();
    let too_big = || {
        Error::invalid(
            op,
            format!("a padded batch of {rows} rows of width {width} does not fit in memory"),
        )
    };
    let total = rows.checked_mul(width).ok_or_else(too_big)?;
    let mut data = Vec::new();
    data.try_reserve_exact(total).map_err(|_| too_big())?;
    let mut lengths = Vec::with_capacity(rows);
    for s in seqs {
        lengths.push(s.len());
        let n = s.len();
        data.extend(s);
        data.extend(std::iter::repeat_n(value.clone(), width - n));
    }
    Ok(PaddedBatch {
        data,
        rows,
        width,
        lengths,
    })
}

struct ShuffleStream<T> {
    up: BoxStream<T>,
    buf: Vec<T>,
    cap: usize,
    rng: Rng,
    up_done: bool,
    counters: Arc<Counters>,
}

impl<T: Send> Stream<T> for ShuffleStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        while !self.up_done && self.buf.len() < self.cap {
            match self.up.next() {
                Some(Ok(x)) => self.buf.push(x),
                Some(Err(e)) => return Some(Err(e)),
                None => self.up_done = true,
            }
        }
        self.counters.sample_fill(self.buf.len(), self.cap);
        if self.buf.is_empty() {
            return None;
        }
        let i = self.rng.below(self.buf.len() as u64) as usize;
        Some(Ok(self.buf.swap_remove(i)))
    }
}

struct BatchStream<T> {
    up: BoxStream<T>,
    n: usize,
    drop_remainder: bool,
    done: bool,
    counters: Arc<Counters>,
}

impl<T: Send> Stream<Vec<T>> for BatchStream<T> {
    fn next(&mut self) -> Option<Result<Vec<T>>> {
        if self.done {
            return None;
        }
        // Every upstream item, error or element, takes one of the n positions.
        let mut b = Vec::with_capacity(self.n.min(4096));
        let mut err: Option<Error> = None;
        let mut taken = 0usize;
        while taken < self.n {
            match self.up.next() {
                Some(Ok(x)) => {
                    if err.is_none() {
                        b.push(x);
                    } else {
                        self.counters.add_dropped(1);
                    }
                }
                Some(Err(e)) => {
                    if err.is_none() {
                        self.counters.add_dropped(b.len() as u64);
                        b.clear();
                        err = Some(e);
                    } else {
                        self.counters.add_skipped();
                    }
                }
                None => {
                    self.done = true;
                    break;
                }
            }
            taken += 1;
        }
        if taken == 0 || (self.drop_remainder && taken < self.n && err.is_none()) {
            self.counters.add_dropped(b.len() as u64);
            return None;
        }
        match err {
            Some(e) => Some(Err(e)),
            None => Some(Ok(b)),
        }
    }
}

/// Groups sequences into buckets by length; yields `(bucket, sequences)` for every full
/// bucket, then the partial buckets in bucket order at the end.
struct BucketStream<E> {
    up: BoxStream<Vec<E>>,
    boundaries: Vec<usize>,
    sizes: Vec<usize>,
    buckets: Vec<Vec<Vec<E>>>,
    drop_remainder: bool,
    up_done: bool,
    flush: usize,
    counters: Arc<Counters>,
}

impl<E: Send> Stream<(usize, Vec<Vec<E>>)> for BucketStream<E> {
    fn next(&mut self) -> Option<Result<(usize, Vec<Vec<E>>)>> {
        while !self.up_done {
            match self.up.next() {
                Some(Ok(s)) => {
                    let b = self.boundaries.partition_point(|&bd| bd <= s.len());
                    self.buckets[b].push(s);
                    if self.buckets[b].len() == self.sizes[b] {
                        let seqs = std::mem::take(&mut self.buckets[b]);
                        return Some(Ok((b, seqs)));
                    }
                }
                // An error item passes through at once; the buckets keep their contents.
                Some(Err(e)) => return Some(Err(e)),
                None => self.up_done = true,
            }
        }
        while self.flush < self.buckets.len() {
            let b = self.flush;
            self.flush += 1;
            let seqs = std::mem::take(&mut self.buckets[b]);
            if seqs.is_empty() {
                continue;
            }
            if self.drop_remainder {
                self.counters.add_dropped(seqs.len() as u64);
                continue;
            }
            return Some(Ok((b, seqs)));
        }
        None
    }
}

struct WindowStream<T> {
    up: BoxStream<T>,
    size: usize,
    shift: usize,
    stride: usize,
    drop_remainder: bool,
    /// Upstream items, errors included (an error occupies its position), each with
    /// whether it was reported in a window already.
    buf: VecDeque<(Result<T>, bool)>,
    /// Absolute index of `buf[0]`.
    front: u64,
    /// Absolute index of the next window's first element.
    start: u64,
    up_done: bool,
    counters: Arc<Counters>,
}

impl<T: Clone + Send> Stream<Vec<T>> for WindowStream<T> {
    fn next(&mut self) -> Option<Result<Vec<T>>> {
        // Drop what lies before the window; skip upstream if the window starts later.
        while self.front < self.start {
            if let Some((x, reported)) = self.buf.pop_front() {
                if x.is_err() && !reported {
                    // An error at a position no window covers (a gap or a stride).
                    self.counters.add_skipped();
                }
                self.front += 1;
            } else {
                let gap = self.start - self.front;
                let k = self.up.skip_items(gap);
                self.front += k;
                if k < gap {
                    self.up_done = true;
                    return None;
                }
            }
        }
        let span = (self.size - 1)
            .saturating_mul(self.stride)
            .saturating_add(1);
        while !self.up_done && self.buf.len() < span {
            match self.up.next() {
                Some(x) => self.buf.push_back((x, false)),
                None => self.up_done = true,
            }
        }
        let positions: Vec<usize> = (0..self.buf.len())
            .step_by(self.stride)
            .take(self.size)
            .collect();
        if positions.is_empty() || (positions.len() < self.size && self.drop_remainder) {
            return None;
        }
        self.start = self.start.saturating_add(self.shift as u64);
        let first_err = positions.iter().copied().find(|&p| self.buf[p].0.is_err());
        if let Some(p) = first_err {
            let good = positions.iter().filter(|&&q| self.buf[q].0.is_ok()).count();
            self.counters.add_dropped(good as u64);
            for &q in &positions {
                self.buf[q].1 = true;
            }
            // The error may belong to later windows too: leave an equal one in its place.
            let dup = match &self.buf[p].0 {
                Err(e) => e.duplicate(),
                Ok(_) => return None,
            };
            return match std::mem::replace(&mut self.buf[p].0, Err(dup)) {
                Err(e) => Some(Err(e)),
                Ok(_) => None,
            };
        }
        let w: Vec<T> = positions
            .iter()
            .filter_map(|&p| self.buf[p].0.as_ref().ok().cloned())
            .collect();
        Some(Ok(w))
    }
}

fn invalid_stream<T: Send + 'static>(op: &'static str, reason: String) -> BoxStream<T> {
    Box::new(IterStream(std::iter::once(Err(Error::invalid(op, reason)))))
}

impl<T: Send + 'static> Dataset<T> {
    /// Shuffles with a buffer of `buffer` elements (as `tf.data`'s `shuffle`): the first
    /// `buffer` elements fill the buffer, then each output is drawn uniformly from it
    /// and replaced by the next input. The draws come from `Rng::keyed(seed, [epoch])`,
    /// so every epoch has its own, reproducible order. Memory: `buffer` elements.
    /// A zero buffer is an error item.
    ///
    /// Epochs: [`Dataset::iter`] takes the next epoch, so a second pass is shuffled anew
    /// (as `tf.data`'s default `reshuffle_each_iteration=True`); [`Dataset::iter_epoch`]
    /// repeats a given epoch's order exactly, and [`Dataset::shuffle_once`] keeps one
    /// order for every epoch. Errors: an error item met while the buffer fills is passed
    /// on at once (as in `tf.data`) and takes no place in the buffer.
    ///
    /// ```
    /// use edgeflow_data::Dataset;
    /// let d = Dataset::range(0, 8).shuffle(8, 1);
    /// let e0 = d.collect_vec()?; // epoch 0
    /// let e1 = d.collect_vec()?; // epoch 1: another order
    /// assert_ne!(e0, e1);
    /// assert_eq!(d.collect_epoch(0)?, e0);
    /// # Ok::<(), edgeflow_data::Error>(())
    /// ```
    pub fn shuffle(&self, buffer: usize, seed: u64) -> Dataset<T> {
        self.shuffle_impl(buffer, seed, true)
    }

    /// Like [`Dataset::shuffle`] but with the same order in every epoch.
    pub fn shuffle_once(&self, buffer: usize, seed: u64) -> Dataset<T> {
        self.shuffle_impl(buffer, seed, false)
    }

    fn shuffle_impl(&self, buffer: usize, seed: u64, each_epoch: bool) -> Dataset<T> {
        let up = self.clone();
        let name = format!("shuffle({buffer}, seed={seed})");
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            if buffer == 0 {
                return invalid_stream("shuffle", "the buffer size must be at least 1".into());
            }
            let key = if each_epoch { cx.epoch } else { 0 };
            Box::new(ShuffleStream {
                up: up.open_from(cx),
                buf: Vec::with_capacity(buffer.min(1 << 16)),
                cap: buffer,
                rng: Rng::keyed(seed, &[key]),
                up_done: false,
                counters: Arc::clone(&cx.counters),
            })
        })
    }

    /// Groups consecutive elements into vectors of `n`; the last, shorter one is kept
    /// unless `drop_remainder`. `n == 0` is an error item.
    ///
    /// Errors (as `tf.data`'s `batch`): every upstream item, error or element, occupies
    /// one of the `n` positions of a batch, so batch `k` always covers the upstream items
    /// `k*n .. (k+1)*n`. A batch that contains an error item *is* that (first) error
    /// item; its good elements are discarded and counted as `dropped`, further errors of
    /// the same batch as `skipped`. The batches after it are unaffected. A short last
    /// batch with an error item is that error item even with `drop_remainder` (as in
    /// `tf.data`; the error is reported, not dropped with the remainder):
    ///
    /// ```
    /// use edgeflow_data::Dataset;
    /// let parsed = Dataset::from_vec(vec!["0", "x", "2", "3", "4", "5", "6"])
    ///     .try_map(|s: &str| s.parse::<i64>());
    /// let out: Vec<String> = parsed
    ///     .batch(3, false)
    ///     .iter()
    ///     .map(|b| match b { Ok(v) => format!("{v:?}"), Err(_) => "ERR".into() })
    ///     .collect();
    /// assert_eq!(out, ["ERR", "[3, 4, 5]", "[6]"]);
    /// ```
    pub fn batch(&self, n: usize, drop_remainder: bool) -> Dataset<Vec<T>> {
        let up = self.clone();
        Dataset::from_op(format!("batch({n})"), vec![self.meta()], move |cx| {
            if n == 0 {
                return invalid_stream("batch", "the batch size must be at least 1".into());
            }
            Box::new(BatchStream {
                up: up.open_from(cx),
                n,
                drop_remainder,
                done: false,
                counters: Arc::clone(&cx.counters),
            })
        })
    }
}

impl<T: Clone + Send + 'static> Dataset<T> {
    /// Sliding windows (as `tf.data`'s `window` followed by flattening each window):
    /// window `k` holds the elements at `k*shift + j*stride` for `j < size`. Windows that
    /// run past the end are shorter, and dropped if `drop_remainder`. Memory:
    /// `(size-1)*stride+1` items. Zero `size`, `shift` or `stride` is an error item.
    ///
    /// Errors (as `tf.data`): an error item occupies its position. A window that covers
    /// it is an error item (the first error it covers; its good elements are counted as
    /// `dropped`), so with overlapping windows one bad record spoils every window over it
    /// and no window ever joins the elements on both sides of it. An error at a position
    /// no emitted window covers (between windows, skipped by the stride, or in a dropped
    /// remainder) is discarded and counted as `skipped`.
    ///
    /// ```
    /// use edgeflow_data::Dataset;
    /// let parsed = Dataset::from_vec(vec!["0", "1", "x", "3", "4"])
    ///     .try_map(|s: &str| s.parse::<i64>());
    /// let out: Vec<String> = parsed
    ///     .window(2, 1, 1, false)
    ///     .iter()
    ///     .map(|w| match w { Ok(v) => format!("{v:?}"), Err(_) => "ERR".into() })
    ///     .collect();
    /// assert_eq!(out, ["[0, 1]", "ERR", "ERR", "[3, 4]", "[4]"]);
    /// ```
    pub fn window(
        &self,
        size: usize,
        shift: usize,
        stride: usize,
        drop_remainder: bool,
    ) -> Dataset<Vec<T>> {
        let up = self.clone();
        let name = format!("window({size}, shift={shift}, stride={stride})");
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            if size == 0 || shift == 0 || stride == 0 {
                return invalid_stream(
                    "window",
                    "size, shift and stride must be at least 1".into(),
                );
            }
            Box::new(WindowStream {
                up: up.open_from(cx),
                size,
                shift,
                stride,
                drop_remainder,
                buf: VecDeque::new(),
                front: 0,
                start: 0,
                up_done: false,
                counters: Arc::clone(&cx.counters),
            })
        })
    }
}

/// Checks the parameters of `bucket_by_sequence_length`.
fn check_buckets(boundaries: &[usize], batch_sizes: &[usize]) -> std::result::Result<(), String> {
    if batch_sizes.len() != boundaries.len() + 1 {
        return Err(format!(
            "batch_sizes must have one more entry than boundaries ({} sizes for {} boundaries)",
            batch_sizes.len(),
            boundaries.len()
        ));
    }
    if boundaries.windows(2).any(|w| w[0] >= w[1]) || boundaries.first() == Some(&0) {
        return Err(format!(
            "boundaries must be positive and strictly increasing, got {boundaries:?}"
        ));
    }
    if batch_sizes.contains(&0) {
        return Err(format!(
            "batch sizes must be at least 1, got {batch_sizes:?}"
        ));
    }
    Ok(())
}

impl<E: Clone + Send + Sync + 'static> Dataset<Vec<E>> {
    /// Batches sequences of `n`, padding each with `value` to the batch's longest
    /// sequence or to a fixed width (a longer sequence makes the batch an error item,
    /// naming the length and the width; nothing is truncated).
    ///
    /// Errors: as [`Dataset::batch`], an error item occupies its position and makes its
    /// batch an error item. (`tf.data` 2.21's `padded_batch` differs from its own
    /// `batch` here: it returns the error at once and drops the partial batch; this
    /// crate keeps both operators alike, as `tf.data`'s `ragged_batch` + `to_tensor`.)
    pub fn padded_batch(
        &self,
        n: usize,
        to: PadTo,
        value: E,
        drop_remainder: bool,
    ) -> Dataset<PaddedBatch<E>> {
        let b = self.batch(n, drop_remainder);
        let up = b.clone();
        let value = Arc::new(value);
        Dataset::from_op(format!("padded_batch({n})"), vec![b.meta()], move |cx| {
            let value = Arc::clone(&value);
            let mut s = up.open_from(cx);
            Box::new(IterStream(std::iter::from_fn(move || {
                Some(
                    s.next()?
                        .and_then(|seqs| pad("padded_batch", seqs, to, &value)),
                )
            })))
        })
    }

    /// The grouping of [`Dataset::bucket_by_sequence_length`] without padding: each
    /// output is `(bucket, sequences)`.
    fn buckets(
        &self,
        name: String,
        boundaries: Vec<usize>,
        batch_sizes: Vec<usize>,
        drop_remainder: bool,
    ) -> Dataset<(usize, Vec<Vec<E>>)> {
        let up = self.clone();
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            if let Err(reason) = check_buckets(&boundaries, &batch_sizes) {
                return invalid_stream("bucket_by_sequence_length", reason);
            }
            Box::new(BucketStream {
                up: up.open_from(cx),
                boundaries: boundaries.clone(),
                sizes: batch_sizes.clone(),
                buckets: (0..batch_sizes.len()).map(|_| Vec::new()).collect(),
                drop_remainder,
                up_done: false,
                flush: 0,
                counters: Arc::clone(&cx.counters),
            })
        })
    }

    /// Groups sequences by length into buckets and emits a padded batch whenever a
    /// bucket is full (as `tf.data`'s `bucket_by_sequence_length`). Bucket `b` takes
    /// lengths in `[boundaries[b-1], boundaries[b])` (the first from 0, the last without
    /// upper bound) and emits batches of `batch_sizes[b]`; `batch_sizes` has one more entry
    /// than `boundaries`. Batches are padded with `value` to their longest sequence, or,
    /// with `pad_to_boundary`, to `boundaries[b] - 1`. At the end the partial buckets are
    /// emitted in bucket order unless `drop_remainder` (then they are counted as
    /// `dropped`). Memory: the sum of the batch sizes. Malformed boundaries or sizes
    /// give one error item.
    ///
    /// With `pad_to_boundary` every length must be below the last boundary (as in
    /// `tf.data`): a batch of the last bucket is an error item naming the longest length
    /// and the last boundary, never padded silently to its own length.
    ///
    /// Errors: an error item passes through at once and the buckets keep their contents
    /// (as `tf.data`'s `group_by_window`); it takes no place in any batch.
    pub fn bucket_by_sequence_length(
        &self,
        boundaries: Vec<usize>,
        batch_sizes: Vec<usize>,
        value: E,
        pad_to_boundary: bool,
        drop_remainder: bool,
    ) -> Dataset<PaddedBatch<E>> {
        let name = format!("bucket_by_sequence_length({boundaries:?}, {batch_sizes:?})");
        let bounds = boundaries.clone();
        let grouped = self.buckets(name, boundaries, batch_sizes, drop_remainder);
        let up = grouped.clone();
        let value = Arc::new(value);
        let pad_name = if pad_to_boundary {
            "pad(to boundary)"
        } else {
            "pad(to longest)"
        };
        Dataset::from_op(pad_name, vec![grouped.meta()], move |cx| {
            let value = Arc::clone(&value);
            let bounds = bounds.clone();
            let counters = Arc::clone(&cx.counters);
            let mut s = up.open_from(cx);
            Box::new(IterStream(std::iter::from_fn(move || {
                let op = "bucket_by_sequence_length";
                Some(s.next()?.and_then(|(b, seqs)| {
                    let to = match (pad_to_boundary, bounds.get(b)) {
                        (false, _) => PadTo::Longest,
                        (true, Some(&bound)) => PadTo::Fixed(bound - 1),
                        (true, None) => {
                            let longest = seqs.iter().map(Vec::len).max().unwrap_or(0);
                            counters.add_dropped(seqs.len() as u64);
                            return Err(Error::invalid(
                                op,
                                format!(
                                    "with pad_to_boundary every length must be below the last boundary {}, got a sequence of length {longest}",
                                    bounds.last().copied().unwrap_or(0)
                                ),
                            ));
                        }
                    };
                    pad(op, seqs, to, &value)
                }))
            })))
        })
    }

    /// [`Dataset::bucket_by_sequence_length`] without padding (`tf.data`'s
    /// `no_padding=True`): each output is one bucket's batch of sequences, at their own
    /// lengths. Same grouping, flushing, errors and parameter checks.
    pub fn bucket_by_sequence_length_no_padding(
        &self,
        boundaries: Vec<usize>,
        batch_sizes: Vec<usize>,
        drop_remainder: bool,
    ) -> Dataset<Vec<Vec<E>>> {
        let name =
            format!("bucket_by_sequence_length({boundaries:?}, {batch_sizes:?}, no_padding)");
        self.buckets(name, boundaries, batch_sizes, drop_remainder)
            .map(|(_, seqs)| seqs)
    }
}

impl<E: Clone + Send + Sync + 'static> Dataset<PaddedBatch<E>> {
    /// Splits padded batches back into their sequences, each at its original length
    /// (the padding removed, using [`PaddedBatch::lengths`]): the inverse of
    /// [`Dataset::padded_batch`]. Error items pass through.
    pub fn unbatch(&self) -> Dataset<Vec<E>> {
        self.flat_map(|p: PaddedBatch<E>| {
            (0..p.rows)
                .map(|r| {
                    let row = p.row(r).unwrap_or(&[]);
                    let n = p
                        .lengths
                        .get(r)
                        .copied()
                        .unwrap_or(row.len())
                        .min(row.len());
                    row[..n].to_vec()
                })
                .collect::<Vec<_>>()
        })
    }

    /// Splits padded batches into their rows with the padding kept (every row
    /// [`PaddedBatch::width`] long), as `tf.data`'s `unbatch` of a padded batch.
    pub fn unbatch_padded(&self) -> Dataset<Vec<E>> {
        self.flat_map(|p: PaddedBatch<E>| {
            (0..p.rows)
                .filter_map(|r| p.row(r).map(<[E]>::to_vec))
                .collect::<Vec<_>>()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T: Send + 'static>(d: &Dataset<T>) -> Vec<T> {
        d.collect_vec().unwrap()
    }

    #[test]
    fn batch_keeps_or_drops_the_remainder() {
        let d = Dataset::range(0, 7);
        assert_eq!(
            v(&d.batch(3, false)),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
        );
        assert_eq!(v(&d.batch(3, true)), vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert!(v(&Dataset::range(0, 0).batch(3, false)).is_empty());
        assert!(d.batch(0, false).collect_vec().is_err());
    }

    #[test]
    fn shuffle_is_a_seeded_permutation_that_changes_per_epoch() {
        let d = Dataset::range(0, 100).shuffle(10, 5);
        let a = d.collect_epoch(0).unwrap();
        assert_eq!(a, d.collect_epoch(0).unwrap());
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let e1: Vec<i64> = d.iter_epoch(1).map(|x| x.unwrap()).collect();
        assert_ne!(a, e1);
        // iter() takes the next epoch: a second pass reshuffles, as in tf.data.
        let fresh = Dataset::range(0, 100).shuffle(10, 5);
        assert_eq!(v(&fresh), a);
        assert_eq!(v(&fresh), e1);
        assert_eq!(fresh.next_epoch(), 2);
        let once = Dataset::range(0, 100).shuffle_once(10, 5);
        let o1: Vec<i64> = once.iter_epoch(1).map(|x| x.unwrap()).collect();
        assert_eq!(v(&once), o1);
        assert!(Dataset::range(0, 3).shuffle(0, 1).collect_vec().is_err());
    }

    #[test]
    fn shuffle_moves_elements_at_most_buffer_ahead() {
        // With a buffer of b, output k can be at most input k + b - 1.
        let b = 8;
        let a = v(&Dataset::range(0, 500).shuffle(b, 1));
        for (k, x) in a.iter().enumerate() {
            assert!(*x < (k + b) as i64, "output {k} is {x}");
        }
        let s = Dataset::range(0, 500).shuffle(b, 1);
        let _ = v(&s);
        let st = s.stats();
        let fill = st.ops[0].values;
        assert_eq!(fill.capacity, b as u64);
        assert!(fill.mean_fill.unwrap() <= b as f64);
    }

    #[test]
    fn shuffle_without_seed_dependence_on_thread_count_is_uniform_enough() {
        // Position of element 0 after a full-buffer shuffle of 10 should be uniform.
        let mut counts = [0u32; 10];
        for seed in 0..5000 {
            let a = v(&Dataset::range(0, 10).shuffle(10, seed));
            let p = a.iter().position(|x| *x == 0).unwrap();
            counts[p] += 1;
        }
        for c in counts {
            assert!((400..600).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn padded_batch_pads_to_longest_or_fixed() {
        let d = Dataset::from_vec(vec![vec![1], vec![2, 3, 4], vec![5, 6], vec![]]);
        let b = v(&d.padded_batch(3, PadTo::Longest, 0, false));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].width, 3);
        assert_eq!(b[0].data, [1, 0, 0, 2, 3, 4, 5, 6, 0]);
        assert_eq!(b[0].lengths, [1, 3, 2]);
        assert_eq!(b[1].rows, 1);
        assert_eq!(b[1].width, 0);
        assert_eq!(b[0].row(1), Some(&[2, 3, 4][..]));
        let f = v(&d.padded_batch(2, PadTo::Fixed(4), -1, false));
        assert_eq!(f[0].data, [1, -1, -1, -1, 2, 3, 4, -1]);
        let err = d
            .padded_batch(2, PadTo::Fixed(2), 0, false)
            .collect_vec()
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("length 3 does not fit the padded width 2"));
    }

    #[test]
    fn windows_follow_size_shift_stride() {
        let d = Dataset::range(0, 7);
        assert_eq!(
            v(&d.window(3, 2, 1, false)),
            vec![vec![0, 1, 2], vec![2, 3, 4], vec![4, 5, 6], vec![6]]
        );
        assert_eq!(
            v(&d.window(3, 2, 1, true)),
            vec![vec![0, 1, 2], vec![2, 3, 4], vec![4, 5, 6]]
        );
        assert_eq!(
            v(&d.window(2, 3, 2, false)),
            vec![vec![0, 2], vec![3, 5], vec![6]]
        );
        assert_eq!(v(&d.window(2, 5, 1, true)), vec![vec![0, 1], vec![5, 6]]);
        assert!(d.window(0, 1, 1, true).collect_vec().is_err());
    }

    #[test]
    fn bucket_by_length_groups_and_flushes() {
        let lens = [1usize, 5, 2, 6, 3, 7, 1];
        let d = Dataset::from_vec(lens.iter().map(|&n| vec![n as i32; n]).collect::<Vec<_>>());
        let b = v(&d.bucket_by_sequence_length(vec![4], vec![2, 2], 0, false, false));
        let shapes: Vec<(Vec<usize>, usize)> =
            b.iter().map(|p| (p.lengths.clone(), p.width)).collect();
        assert_eq!(
            shapes,
            vec![
                (vec![1, 2], 2),
                (vec![5, 6], 6),
                (vec![3, 1], 3),
                (vec![7], 7),
            ]
        );
        let short = Dataset::from_vec(vec![vec![1], vec![2, 2], vec![3, 3, 3]]);
        let dropped = v(&short.bucket_by_sequence_length(vec![4], vec![2, 2], 0, true, true));
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].width, 3);
        // pad_to_boundary with a length not below the last boundary: an error, not
        // silent padding.
        let e = d
            .bucket_by_sequence_length(vec![4], vec![2, 2], 0, true, true)
            .collect_vec()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("last boundary 4") && e.contains("length 6"),
            "{e}"
        );
        assert!(d
            .bucket_by_sequence_length(vec![4], vec![2], 0, false, false)
            .collect_vec()
            .is_err());
    }

    #[test]
    fn degenerate_parameters_are_error_items_that_say_what_is_wrong() {
        let d = Dataset::from_vec(vec![vec![1u8], vec![2, 2]]);
        let e = |r: Result<Vec<PaddedBatch<u8>>>| r.unwrap_err().to_string();
        let msg = e(d
            .padded_batch(2, PadTo::Fixed(usize::MAX), 0, false)
            .collect_vec());
        assert!(msg.contains("does not fit in memory"), "{msg}");
        let msg = e(d
            .bucket_by_sequence_length(vec![0, 3], vec![1, 1, 1], 0, false, false)
            .collect_vec());
        assert!(msg.contains("positive and strictly increasing"), "{msg}");
        let msg = e(d
            .bucket_by_sequence_length(vec![3, 3], vec![1, 1, 1], 0, false, false)
            .collect_vec());
        assert!(msg.contains("[3, 3]"), "{msg}");
        let msg = e(d
            .bucket_by_sequence_length(vec![3], vec![1, 0], 0, false, false)
            .collect_vec());
        assert!(msg.contains("at least 1"), "{msg}");
        let msg = e(d
            .bucket_by_sequence_length(vec![3], vec![1], 0, false, false)
            .collect_vec());
        assert!(msg.contains("1 sizes for 1 boundaries"), "{msg}");
        let no_pad = d.bucket_by_sequence_length_no_padding(vec![3], vec![1], false);
        assert!(no_pad.collect_vec().is_err());
        for (size, shift, stride) in [(0, 1, 1), (1, 0, 1), (1, 1, 0)] {
            assert!(Dataset::range(0, 3)
                .window(size, shift, stride, false)
                .collect_vec()
                .is_err());
        }
        // Huge but representable parameters are not errors: they are bounded by the data.
        assert_eq!(
            Dataset::range(0, 3)
                .window(usize::MAX, usize::MAX, usize::MAX, false)
                .collect_vec()
                .unwrap(),
            vec![vec![0]]
        );
        assert_eq!(
            Dataset::range(0, 3)
                .batch(usize::MAX, false)
                .collect_vec()
                .unwrap(),
            vec![vec![0, 1, 2]]
        );
        assert_eq!(
            Dataset::range(0, 3)
                .enumerate_from(u64::MAX)
                .collect_vec()
                .unwrap(),
            vec![(u64::MAX, 0), (0, 1), (1, 2)]
        );
    }
}
