//! Operators over several datasets: zip, concatenate, weighted sampling.

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
        return Err(format!("weight {i} is {w}: weights must be finite and non-negative"));
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
}
