//! Operators over several datasets: zip, concatenate, weighted sampling; and class
//! rebalancing by rejection sampling.

use std::sync::Arc;

use crate::dataset::{BoxStream, Dataset, IterStream, Stream};
use crate::error::{Error, Result};
use crate::rng::Rng;

struct ZipStream<A, B> {
    a: BoxStream<A>,
    b: BoxStream<B>,
}

impl<A, B> Stream<(A, B)> for ZipStream<A, B> {
    fn next(&mut self) -> Option<Result<(A, B)>> {
        let x = self.a.next()?;
        let y = self.b.next()?;
        Some(match (x, y) {
            (Ok(x), Ok(y)) => Ok((x, y)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        })
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let k = self.a.skip_items(n);
        self.b.skip_items(k).min(k)
    }
}

struct ConcatStream<T> {
    parts: Vec<Dataset<T>>,
    i: usize,
    cur: Option<BoxStream<T>>,
    epoch: u64,
    stream: u64,
}

impl<T: Send + 'static> ConcatStream<T> {
    fn current(&mut self) -> Option<&mut BoxStream<T>> {
        if self.cur.is_none() {
            let d = self.parts.get(self.i)?;
            let key = crate::dataset::child_stream(self.stream, self.i as u64);
            self.cur = Some(d.open_keyed(self.epoch, key));
        }
        self.cur.as_mut()
    }
}

impl<T: Send + 'static> Stream<T> for ConcatStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            let cur = self.current()?;
            if let Some(x) = cur.next() {
                return Some(x);
            }
            self.cur = None;
            self.i += 1;
        }
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let mut done = 0;
        while done < n {
            let Some(cur) = self.current() else { break };
            done += cur.skip_items(n - done);
            if done < n {
                self.cur = None;
                self.i += 1;
            }
        }
        done
    }
}

struct SampleStream<T> {
    streams: Vec<Option<BoxStream<T>>>,
    weights: Vec<f64>,
    seed: u64,
    epoch: u64,
    k: u64,
    stop_on_empty: bool,
    ended: bool,
}

impl<T> Stream<T> for SampleStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.ended {
            return None;
        }
        let mut rng = Rng::for_element(self.seed, self.epoch, self.k);
        self.k += 1;
        loop {
            let total: f64 = self
                .streams
                .iter()
                .zip(&self.weights)
                .filter(|(s, _)| s.is_some())
                .map(|(_, w)| *w)
                .sum();
            if total <= 0.0 {
                self.ended = true;
                return None;
            }
            let mut u = rng.next_f64() * total;
            let mut pick = None;
            for (i, (s, w)) in self.streams.iter().zip(&self.weights).enumerate() {
                if s.is_none() || *w <= 0.0 {
                    continue;
                }
                pick = Some(i);
                if u < *w {
                    break;
                }
                u -= *w;
            }
            let i = pick?;
            match self.streams[i].as_mut().and_then(|s| s.next()) {
                Some(x) => return Some(x),
                None => {
                    self.streams[i] = None;
                    if self.stop_on_empty {
                        self.ended = true;
                        return None;
                    }
                }
            }
        }
    }
}

/// Checks `sample_from`'s weights: one per dataset, finite, non-negative, with a
/// positive finite sum.
fn check_weights(datasets: usize, weights: &[f64]) -> std::result::Result<(), String> {
    if datasets != weights.len() {
        return Err(format!(
            "need one weight per dataset: {datasets} datasets, {} weights",
            weights.len()
        ));
    }
    if let Some((i, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !w.is_finite() || **w < 0.0)
    {
        return Err(format!(
            "weight {i} is {w}: weights must be finite and non-negative"
        ));
    }
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) && datasets > 0 {
        return Err(format!(
            "the weights sum to {total}: the sum must be positive and finite"
        ));
    }
    Ok(())
}

impl<T: Send + 'static> Dataset<T> {
    /// Pairs the elements of two datasets; ends with the shorter one. An error item on
    /// either side makes the pair an error item (both sides advance, so the pairing
    /// stays in step, as in `tf.data`). Both sides are opened as the same stream, so
    /// pairs augmented with the same seed get the same draws (an image and its mask).
    pub fn zip<U: Send + 'static>(&self, other: &Dataset<U>) -> Dataset<(T, U)> {
        let (a, b) = (self.clone(), other.clone());
        Dataset::from_op("zip", vec![self.meta(), other.meta()], move |cx| {
            Box::new(ZipStream {
                a: a.open_from(cx),
                b: b.open_from(cx),
            })
        })
    }

    /// This dataset's items followed by `other`'s. Each part is opened as its own
    /// stream (see [`crate::OpenCx::stream`]).
    pub fn concatenate(&self, other: &Dataset<T>) -> Dataset<T> {
        Self::concatenate_all(vec![self.clone(), other.clone()])
    }

    /// The items of every dataset in turn, opened one at a time.
    pub fn concatenate_all(parts: Vec<Dataset<T>>) -> Dataset<T> {
        let metas = parts.iter().map(Dataset::meta).collect();
        Dataset::from_op("concatenate", metas, move |cx| {
            Box::new(ConcatStream {
                parts: parts.clone(),
                i: 0,
                cur: None,
                epoch: cx.epoch,
                stream: cx.stream,
            })
        })
    }

    /// Draws each output from one of `datasets`, chosen at random with probability
    /// proportional to `weights` (as `tf.data`'s `sample_from_datasets`). Output `k`'s
    /// choice is drawn from `Rng::for_element(seed, epoch, k)`. When a dataset is
    /// exhausted: with `stop_on_empty` the output ends; otherwise the choice is redrawn
    /// among the others. Unequal lengths of `datasets` and `weights`, a negative or
    /// non-finite weight, or weights whose sum is 0 or not finite give one error item
    /// naming the problem. An error item of the chosen dataset is passed on and counts
    /// as that draw. Each dataset is opened as its own stream (see
    /// [`crate::OpenCx::stream`]).
    pub fn sample_from(
        datasets: Vec<Dataset<T>>,
        weights: Vec<f64>,
        seed: u64,
        stop_on_empty: bool,
    ) -> Dataset<T> {
        let metas = datasets.iter().map(Dataset::meta).collect();
        let name = format!("sample_from({weights:?}, seed={seed})");
        Dataset::from_op(name, metas, move |cx| {
            if let Err(reason) = check_weights(datasets.len(), &weights) {
                return Box::new(IterStream(std::iter::once(Err(Error::invalid(
                    "sample_from",
                    reason,
                )))));
            }
            Box::new(SampleStream {
                streams: datasets
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let key = crate::dataset::child_stream(cx.stream, i as u64);
                        Some(d.open_keyed(cx.epoch, key))
                    })
                    .collect(),
                weights: weights.clone(),
                seed,
                epoch: cx.epoch,
                k: 0,
                stop_on_empty,
                ended: false,
            })
        })
    }
}

/// Checks a class distribution given to `rejection_resample`.
fn check_dist(what: &str, d: &[f64]) -> std::result::Result<(), String> {
    if d.is_empty() {
        return Err(format!("the {what} distribution has no classes"));
    }
    if let Some((i, w)) = d
        .iter()
        .enumerate()
        .find(|(_, w)| !w.is_finite() || **w < 0.0)
    {
        return Err(format!(
            "class {i} of the {what} distribution is {w}: probabilities must be finite and non-negative"
        ));
    }
    let total: f64 = d.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return Err(format!("the {what} distribution sums to {total}"));
    }
    Ok(())
}

/// Acceptance probability of every class: `(t_c / p_c) / max_k (t_k / p_k)` over the
/// classes with `p_k > 0` (0 for a class with `p_c == 0`, which never arrives).
fn acceptance(target: &[f64], initial: &[f64]) -> Vec<f64> {
    let tsum: f64 = target.iter().sum();
    let psum: f64 = initial.iter().sum();
    let ratio: Vec<f64> = target
        .iter()
        .zip(initial)
        .map(|(t, p)| {
            if *p > 0.0 {
                (t / tsum) / (p / psum)
            } else {
                0.0
            }
        })
        .collect();
    let max = ratio.iter().copied().fold(0.0, f64::max);
    ratio
        .iter()
        .map(|r| if max > 0.0 { r / max } else { 0.0 })
        .collect()
}

struct ResampleStream<T> {
    up: BoxStream<T>,
    class_of: Arc<dyn Fn(&T) -> usize + Send + Sync>,
    target: Vec<f64>,
    /// Fixed acceptance probabilities (from a known initial distribution), or `None` to
    /// estimate the initial distribution from the classes seen so far.
    fixed: Option<Vec<f64>>,
    seen: Vec<u64>,
    seed: u64,
    epoch: u64,
    stream: u64,
    index: u64,
}

impl<T> Stream<T> for ResampleStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            let item = self.up.next()?;
            let e = crate::dataset::Element {
                epoch: self.epoch,
                index: self.index,
                stream: self.stream,
            };
            self.index += 1;
            let x = match item {
                Ok(x) => x,
                Err(err) => return Some(Err(err)),
            };
            let c = (self.class_of)(&x);
            if c >= self.target.len() {
                return Some(Err(Error::invalid(
                    "rejection_resample",
                    format!(
                        "element {}: class {c} is not below the number of classes {}",
                        e.index,
                        self.target.len()
                    ),
                )));
            }
            let accept = match &self.fixed {
                Some(a) => a[c],
                None => {
                    // Add-one estimate of the class distribution seen so far (this
                    // element included).
                    self.seen[c] += 1;
                    let est: Vec<f64> = self.seen.iter().map(|&n| n as f64 + 1.0).collect();
                    acceptance(&self.target, &est)[c]
                }
            };
            if e.rng(self.seed).next_f64() < accept {
                return Some(Ok(x));
            }
        }
    }
}

impl<T: Send + 'static> Dataset<T> {
    /// Rebalances classes towards the distribution `target` by rejection sampling (as
    /// `tf.data`'s `rejection_resample`, without its mixing with the original data): an
    /// element of class `c = class_of(&x)` is kept with probability
    /// `(t_c / p_c) / max_k (t_k / p_k)`, where `t` is `target` and `p` the data's class
    /// distribution, so the kept elements follow `t` (over the classes that occur) and
    /// the rarest class relative to its target is kept whole. `target` and `initial`
    /// need not sum to 1.
    ///
    /// - `initial`: the data's class distribution if known (one entry per class);
    ///   `None` estimates it as the epoch goes, from the classes seen so far (add-one
    ///   smoothed), so the first decisions are approximate.
    /// - Determinism: the draw for the `i`-th upstream item is
    ///   `Element { epoch, index: i, stream }.rng(seed)`: the same seed and epoch keep
    ///   the same elements; a new epoch draws anew.
    /// - Errors: error items pass through (and take an index). A class not below
    ///   `target.len()` is an error item naming it. An empty, negative, non-finite or
    ///   zero-sum distribution, or an `initial` of another length, gives one error item.
    ///
    /// ```
    /// use edgeflow_data::Dataset;
    /// // 90 % class 0, 10 % class 1, rebalanced to 50/50.
    /// let d = Dataset::range(0, 10_000).map(|i| (i % 10 == 0) as usize);
    /// let r = d.rejection_resample(|c| *c, vec![0.5, 0.5], Some(vec![0.9, 0.1]), 7);
    /// let kept = r.collect_vec()?;
    /// let ones = kept.iter().filter(|c| **c == 1).count() as f64;
    /// assert!((ones / kept.len() as f64 - 0.5).abs() < 0.03);
    /// # Ok::<(), edgeflow_data::Error>(())
    /// ```
    pub fn rejection_resample(
        &self,
        class_of: impl Fn(&T) -> usize + Send + Sync + 'static,
        target: Vec<f64>,
        initial: Option<Vec<f64>>,
        seed: u64,
    ) -> Dataset<T> {
        let up = self.clone();
        let class_of: Arc<dyn Fn(&T) -> usize + Send + Sync> = Arc::new(class_of);
        let name = format!("rejection_resample({target:?}, seed={seed})");
        Dataset::from_op(name, vec![self.meta()], move |cx| {
            let bad = |reason: String| -> BoxStream<T> {
                Box::new(IterStream(std::iter::once(Err(Error::invalid(
                    "rejection_resample",
                    reason,
                )))))
            };
            if let Err(r) = check_dist("target", &target) {
                return bad(r);
            }
            let fixed = match &initial {
                None => None,
                Some(p) => {
                    if p.len() != target.len() {
                        return bad(format!(
                            "the initial distribution has {} classes, the target {}",
                            p.len(),
                            target.len()
                        ));
                    }
                    if let Err(r) = check_dist("initial", p) {
                        return bad(r);
                    }
                    Some(acceptance(&target, p))
                }
            };
            Box::new(ResampleStream {
                up: up.open_from(cx),
                class_of: Arc::clone(&class_of),
                target: target.clone(),
                fixed,
                seen: vec![0; target.len()],
                seed,
                epoch: cx.epoch,
                stream: cx.stream,
                index: 0,
            })
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
    fn zip_stops_at_the_shorter() {
        let z = Dataset::range(0, 3).zip(&Dataset::from_vec(vec!["a", "b"]));
        assert_eq!(v(&z), [(0, "a"), (1, "b")]);
        assert_eq!(z.describe(), "[range(0..3), from_vec(2)] -> zip");
    }

    #[test]
    fn concatenate_and_resume() {
        let c = Dataset::concatenate_all(vec![
            Dataset::range(0, 2),
            Dataset::range(10, 10),
            Dataset::range(20, 23),
        ]);
        let all = v(&c);
        assert_eq!(all, [0, 1, 20, 21, 22]);
        for k in 0..7 {
            let rest: Vec<i64> = c
                .iter_from(crate::Checkpoint {
                    epoch: 0,
                    position: k,
                })
                .map(|x| x.unwrap())
                .collect();
            assert_eq!(rest, all[(k as usize).min(all.len())..]);
        }
    }

    #[test]
    fn sampling_follows_the_weights() {
        let a = Dataset::from_vec(vec![0u8]).repeat(None);
        let b = Dataset::from_vec(vec![1u8]).repeat(None);
        let s = Dataset::sample_from(vec![a, b], vec![0.8, 0.2], 3, false).take(10_000);
        let got = v(&s);
        let ones = got.iter().filter(|x| **x == 1).count();
        assert!((1_800..2_200).contains(&ones), "{ones}");
        assert_eq!(got, s.collect_epoch(0).unwrap());
    }

    #[test]
    fn sampling_when_a_dataset_runs_out() {
        let a = Dataset::range(0, 3);
        let b = Dataset::range(100, 200);
        let all = v(&Dataset::sample_from(
            vec![a.clone(), b.clone()],
            vec![0.5, 0.5],
            1,
            false,
        ));
        assert_eq!(all.len(), 103);
        assert_eq!(
            all.iter().filter(|x| **x < 3).copied().collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let stopped = v(&Dataset::sample_from(
            vec![a.clone(), b],
            vec![0.5, 0.5],
            1,
            true,
        ));
        assert!(stopped.len() < 103);
        assert_eq!(stopped.iter().filter(|x| **x < 3).count(), 3);
        assert!(Dataset::sample_from(vec![a], vec![-1.0], 1, true)
            .collect_vec()
            .is_err());
    }

    /// A straightforward reference: the acceptance formula written out, with the same
    /// keyed draws.
    fn reference(classes: &[usize], target: &[f64], initial: &[f64], seed: u64) -> Vec<usize> {
        let ts: f64 = target.iter().sum();
        let ps: f64 = initial.iter().sum();
        let ratio = |c: usize| (target[c] / ts) / (initial[c] / ps);
        let max = (0..target.len())
            .filter(|&c| initial[c] > 0.0)
            .map(ratio)
            .fold(0.0, f64::max);
        classes
            .iter()
            .enumerate()
            .filter(|(i, &c)| Rng::for_element(seed, 0, *i as u64).next_f64() < ratio(c) / max)
            .map(|(_, &c)| c)
            .collect()
    }

    #[test]
    fn rejection_resample_matches_the_reference_and_reaches_the_target() {
        let classes: Vec<usize> = (0..20_000u64)
            .map(|i| {
                let u = Rng::for_element(99, 0, i).next_f64();
                if u < 0.7 {
                    0
                } else if u < 0.95 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let d = Dataset::from_vec(classes.clone());
        let target = vec![1.0, 1.0, 2.0];
        let initial = vec![0.7, 0.25, 0.05];
        let r = d.rejection_resample(|c| *c, target.clone(), Some(initial.clone()), 5);
        let got = r.collect_epoch(0).unwrap();
        assert_eq!(got, reference(&classes, &target, &initial, 5));
        let frac =
            |v: &[usize], c: usize| v.iter().filter(|x| **x == c).count() as f64 / v.len() as f64;
        assert!((frac(&got, 2) - 0.5).abs() < 0.03, "{}", frac(&got, 2));
        assert!((frac(&got, 0) - 0.25).abs() < 0.03);
        // Deterministic by seed and epoch; a new epoch draws anew.
        assert_eq!(r.collect_epoch(0).unwrap(), got);
        assert_ne!(r.collect_epoch(1).unwrap(), got);
        // Estimated online: close to the target too.
        let est = d
            .rejection_resample(|c| *c, target.clone(), None, 5)
            .collect_epoch(0)
            .unwrap();
        assert!((frac(&est, 2) - 0.5).abs() < 0.05, "{}", frac(&est, 2));
        assert!((frac(&est, 1) - 0.25).abs() < 0.05, "{}", frac(&est, 1));
    }

    #[test]
    fn rejection_resample_errors() {
        let d = Dataset::from_vec(vec![0usize, 1, 5, 0]);
        let items: Vec<_> = d
            .rejection_resample(|c| *c, vec![1.0, 1.0], Some(vec![1.0, 1.0]), 1)
            .iter_epoch(0)
            .collect();
        let e = items
            .iter()
            .find_map(|r| r.as_ref().err())
            .unwrap()
            .to_string();
        assert!(e.contains("class 5") && e.contains("2"), "{e}");
        for (t, i) in [
            (vec![], None),
            (vec![0.0, 0.0], None),
            (vec![1.0, f64::NAN], None),
            (vec![1.0, -1.0], None),
            (vec![1.0, 1.0], Some(vec![1.0])),
            (vec![1.0, 1.0], Some(vec![0.0, 0.0])),
        ] {
            let r = d.rejection_resample(|c| *c, t.clone(), i.clone(), 1);
            assert!(r.collect_epoch(0).is_err(), "{t:?} {i:?}");
        }
    }

    #[test]
    fn degenerate_weights_are_errors() {
        let a = Dataset::range(0, 3);
        for w in [vec![0.0, 0.0], vec![f64::MAX, f64::MAX], vec![1.0]] {
            let e = Dataset::sample_from(vec![a.clone(), a.clone()], w.clone(), 1, false)
                .collect_vec()
                .unwrap_err()
                .to_string();
            assert!(e.contains("weight"), "{w:?}: {e}");
        }
    }
}
