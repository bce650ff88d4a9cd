//! Property tests: every operator family against a straightforward reference written
//! over plain vectors, on random inputs with error items at random positions.
//!
//! An input is a `Vec<Option<i64>>`: `None` is an error item. Outputs are compared as
//! `Vec<Option<_>>` (the error's text is checked elsewhere).

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;

use edgeflow_data::{Checkpoint, Dataset, Error, PadTo, Parallel};
use proptest::prelude::*;

type Items = Vec<Option<i64>>;

fn ds(items: &Items) -> Dataset<i64> {
    Dataset::from_vec(items.clone()).map_result(|x| x.ok_or_else(|| Error::invalid("input", "bad")))
}

fn out<T: Send + 'static>(d: &Dataset<T>) -> Vec<Option<T>> {
    d.iter_epoch(0).map(|r| r.ok()).collect()
}

fn items() -> impl Strategy<Value = Items> {
    prop::collection::vec(prop::option::weighted(0.8, 0i64..100), 0..40)
}

// ----- references ------------------------------------------------------------------

fn ref_take(v: &Items, n: u64) -> Items {
    let mut left = n;
    let mut o = Vec::new();
    for x in v {
        if left == 0 {
            break;
        }
        if x.is_some() {
            left -= 1;
        }
        o.push(*x);
    }
    o
}

fn ref_skip(v: &Items, n: u64) -> Items {
    let mut left = n;
    let mut o = Vec::new();
    for x in v {
        if x.is_some() && left > 0 {
            left -= 1;
        } else {
            o.push(*x);
        }
    }
    o
}

fn ref_shard(v: &Items, n: u64, i: u64) -> Items {
    let mut k = 0;
    let mut o = Vec::new();
    for x in v {
        match x {
            None => o.push(None),
            Some(_) => {
                if k % n == i {
                    o.push(*x);
                }
                k += 1;
            }
        }
    }
    o
}

fn ref_batch(v: &Items, n: usize, drop: bool) -> Vec<Option<Vec<i64>>> {
    v.chunks(n)
        .filter(|c| !(drop && c.len() < n && c.iter().all(Option::is_some)))
        .map(|c| c.iter().copied().collect::<Option<Vec<i64>>>())
        .collect()
}

fn ref_window(
    v: &Items,
    size: usize,
    shift: usize,
    stride: usize,
    drop: bool,
) -> Vec<Option<Vec<i64>>> {
    let mut o = Vec::new();
    let mut start = 0;
    while start < v.len() {
        let pos: Vec<usize> = (0..size)
            .map(|j| start + j * stride)
            .filter(|&p| p < v.len())
            .collect();
        if drop && pos.len() < size {
            break;
        }
        o.push(pos.iter().map(|&p| v[p]).collect::<Option<Vec<i64>>>());
        start += shift;
    }
    o
}

fn ref_bucket(
    seqs: &[Option<Vec<i64>>],
    bounds: &[usize],
    sizes: &[usize],
    drop: bool,
) -> Vec<Option<Vec<Vec<i64>>>> {
    let mut buckets: Vec<Vec<Vec<i64>>> = vec![Vec::new(); sizes.len()];
    let mut o = Vec::new();
    for s in seqs {
        match s {
            None => o.push(None),
            Some(s) => {
                let b = bounds.iter().filter(|&&bd| bd <= s.len()).count();
                buckets[b].push(s.clone());
                if buckets[b].len() == sizes[b] {
                    o.push(Some(std::mem::take(&mut buckets[b])));
                }
            }
        }
    }
    if !drop {
        for b in buckets {
            if !b.is_empty() {
                o.push(Some(b));
            }
        }
    }
    o
}

/// tf.data's interleave, written out: `cycle` slots, `block` elements from each in
/// turn; error items are passed on and take no place in a block; an input error is
/// passed on and its slot is filled from the next input.
fn ref_interleave(
    outer: &Items,
    inner: impl Fn(i64) -> Items,
    cycle: usize,
    block: usize,
) -> Items {
    let mut o = Vec::new();
    let mut up = outer.iter();
    let mut up_done = false;
    let mut slots: Vec<Option<VecDeque<Option<i64>>>> = vec![None; cycle];
    let (mut cur, mut in_block) = (0, 0);
    'outputs: loop {
        let mut idle = 0;
        loop {
            if slots[cur].is_none() && !up_done {
                match up.next() {
                    Some(Some(x)) => {
                        slots[cur] = Some(inner(*x).into());
                        in_block = 0;
                    }
                    Some(None) => {
                        o.push(None);
                        continue 'outputs;
                    }
                    None => up_done = true,
                }
            }
            let Some(s) = slots[cur].as_mut() else {
                idle += 1;
                if idle > cycle {
                    break 'outputs;
                }
                cur = (cur + 1) % cycle;
                in_block = 0;
                continue;
            };
            idle = 0;
            match s.pop_front() {
                Some(Some(x)) => {
                    in_block += 1;
                    if in_block >= block {
                        cur = (cur + 1) % cycle;
                        in_block = 0;
                    }
                    o.push(Some(x));
                    continue 'outputs;
                }
                Some(None) => {
                    o.push(None);
                    continue 'outputs;
                }
                None => {
                    slots[cur] = None;
                    cur = (cur + 1) % cycle;
                    in_block = 0;
                }
            }
        }
    }
    o
}

/// The inner dataset of input `x` in the interleave properties: `x % 5` items, the
/// `j`-th being `100 * x + j`, or an error when `(x + j) % 4 == 3`.
fn inner_items(x: i64) -> Items {
    (0..x % 5)
        .map(|j| {
            if (x + j) % 4 == 3 {
                None
            } else {
                Some(100 * x + j)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn counting_operators(v in items(), n in 0u64..12, k in 1u64..5, i in 0u64..5) {
        let d = ds(&v);
        prop_assert_eq!(out(&d.take(n)), ref_take(&v, n));
        prop_assert_eq!(out(&d.skip(n)), ref_skip(&v, n));
        let i = i % k;
        prop_assert_eq!(out(&d.shard(k, i)), ref_shard(&v, k, i));
        let e: Vec<Option<(u64, i64)>> =
            v.iter().enumerate().map(|(j, x)| x.map(|x| (n + j as u64, x))).collect();
        prop_assert_eq!(out(&d.enumerate_from(n)), e);
        // The shards together hold every element once and each reports every error.
        let mut all: Vec<i64> = (0..k).flat_map(|s| out(&d.shard(k, s))).flatten().collect();
        all.sort();
        let mut want: Vec<i64> = v.iter().flatten().copied().collect();
        want.sort();
        prop_assert_eq!(all, want);
    }

    #[test]
    fn element_wise_operators(v in items()) {
        let d = ds(&v);
        let m: Items = v.iter().map(|x| x.map(|x| x * 3)).collect();
        prop_assert_eq!(out(&d.map(|x| x * 3)), m.clone());
        prop_assert_eq!(out(&d.par_map(Parallel::threads(3), |x| x * 3)), m);
        let f: Items = v.iter().copied().filter(|x| x.is_none_or(|x| x % 2 == 0)).collect();
        prop_assert_eq!(out(&d.filter(|x| x % 2 == 0)), f);
        let ok: Vec<Option<i64>> = v.iter().copied().filter(Option::is_some).collect();
        prop_assert_eq!(out(&d.ignore_errors()), ok);
        let twice: Items = v.iter().chain(&v).copied().collect();
        prop_assert_eq!(out(&d.concatenate(&d)), twice.clone());
        prop_assert_eq!(out(&d.repeat(Some(2))), twice);
        prop_assert_eq!(out(&d.prefetch(2)), v.clone());
        let z: Vec<Option<(i64, i64)>> = v
            .iter()
            .zip(v.iter().rev())
            .map(|(a, b)| a.zip(*b))
            .collect();
        let rev: Items = v.iter().rev().copied().collect();
        prop_assert_eq!(out(&d.zip(&ds(&rev))), z);
    }

    #[test]
    fn grouping_operators(
        v in items(),
        n in 1usize..6,
        size in 1usize..5,
        shift in 1usize..5,
        stride in 1usize..4,
        drop: bool,
    ) {
        let d = ds(&v);
        prop_assert_eq!(out(&d.batch(n, drop)), ref_batch(&v, n, drop));
        prop_assert_eq!(
            out(&d.window(size, shift, stride, drop)),
            ref_window(&v, size, shift, stride, drop)
        );
        // padded_batch: batch's grouping, rows padded to the longest.
        let seqs = d.map(|x| vec![x; (x % 4) as usize]);
        let got: Vec<Option<Vec<Vec<i64>>>> = seqs
            .padded_batch(n, PadTo::Longest, -1, drop)
            .iter_epoch(0)
            .map(|r| r.ok().map(|p| (0..p.rows).map(|r| p.row(r).unwrap().to_vec()).collect()))
            .collect();
        let sv: Vec<Option<Vec<i64>>> = v.iter().map(|x| x.map(|x| vec![x; (x % 4) as usize])).collect();
        let want: Vec<Option<Vec<Vec<i64>>>> = sv
            .chunks(n)
            .filter(|c| !(drop && c.len() < n && c.iter().all(Option::is_some)))
            .map(|c| {
                let rows: Option<Vec<Vec<i64>>> = c.iter().cloned().collect();
                rows.map(|rows| {
                    let w = rows.iter().map(Vec::len).max().unwrap_or(0);
                    rows.into_iter()
                        .map(|mut r| {
                            r.resize(w, -1);
                            r
                        })
                        .collect()
                })
            })
            .collect();
        prop_assert_eq!(got, want);
        // unbatch of padded batches gives back the sequences (errors as they were).
        let back: Vec<Option<Vec<i64>>> = out(&seqs.padded_batch(n, PadTo::Longest, -1, false).unbatch());
        let flat: Vec<Option<Vec<i64>>> = ref_batch(&v, n, false)
            .into_iter()
            .flat_map(|b| match b {
                Some(b) => b.into_iter().map(|x| Some(vec![x; (x % 4) as usize])).collect(),
                None => vec![None],
            })
            .collect();
        prop_assert_eq!(back, flat);
    }

    #[test]
    fn bucketing(v in items(), drop: bool, b1 in 1usize..4, gap in 1usize..4, s in prop::collection::vec(1usize..4, 3)) {
        let bounds = vec![b1, b1 + gap];
        let seqs: Vec<Option<Vec<i64>>> = v.iter().map(|x| x.map(|x| vec![x; (x % 7) as usize])).collect();
        let d = ds(&v).map(|x| vec![x; (x % 7) as usize]);
        let want = ref_bucket(&seqs, &bounds, &s, drop);
        prop_assert_eq!(
            out(&d.bucket_by_sequence_length_no_padding(bounds.clone(), s.clone(), drop)),
            want.clone()
        );
        let padded: Vec<Option<Vec<Vec<i64>>>> = d
            .bucket_by_sequence_length(bounds.clone(), s.clone(), 0, false, drop)
            .unbatch()
            .batch(1, false)
            .iter_epoch(0)
            .map(|r| r.ok())
            .collect();
        // Padded then unbatched: the same sequences in the same order.
        let flat: Vec<Option<Vec<Vec<i64>>>> = want
            .iter()
            .flat_map(|b| match b {
                Some(b) => b.iter().map(|s| Some(vec![s.clone()])).collect(),
                None => vec![None],
            })
            .collect();
        prop_assert_eq!(padded, flat);
    }

    #[test]
    fn interleave_matches_the_written_out_algorithm(
        v in prop::collection::vec(prop::option::weighted(0.85, 0i64..30), 0..12),
        cycle in 1usize..4,
        block in 1usize..4,
        parallel: bool,
    ) {
        let d = ds(&v).interleave(cycle, block, parallel, |x| ds(&inner_items(x)));
        prop_assert_eq!(out(&d), ref_interleave(&v, inner_items, cycle, block));
    }

    #[test]
    fn shuffle_and_cache_keep_every_item(v in items(), buf in 1usize..10, seed: u64) {
        let d = ds(&v).shuffle(buf, seed);
        let o = out(&d);
        prop_assert_eq!(o.len(), v.len());
        let mut a: Vec<i64> = o.iter().flatten().copied().collect();
        let mut b: Vec<i64> = v.iter().flatten().copied().collect();
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
        let ok: Items = v.iter().copied().filter(Option::is_some).collect();
        let c = ds(&ok).cache();
        prop_assert_eq!(out(&c), ok.clone());
        prop_assert_eq!(out(&c), ok);
    }

    #[test]
    fn resuming_from_any_checkpoint_yields_the_tail(v in items(), n in 1usize..5, k in 0u64..45) {
        let d = ds(&v)
            .map_with_rng(3, |x, r| x + r.below(10) as i64)
            .skip(2)
            .take(20)
            .window(n, 1, 1, false)
            .enumerate();
        let all = out(&d);
        let rest: Vec<_> = d
            .iter_from(Checkpoint { epoch: 0, position: k })
            .map(|r| r.ok())
            .collect();
        prop_assert_eq!(&rest[..], &all[(k as usize).min(all.len())..]);
    }
}
