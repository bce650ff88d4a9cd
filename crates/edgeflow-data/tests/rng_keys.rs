//! Keys of random draws through `shard` and after an unordered parallel map followed by
//! other operators (issue 18): a random map after `shard` draws for each element what
//! the unsharded pipeline draws for it; after an unordered map, draws are keyed by the
//! input position even through filter / take / skip / prefetch / map, so they do not
//! depend on the order in which the threads finished.

#![allow(clippy::unwrap_used)]

use edgeflow_data::{Dataset, Error, Parallel, Rng};

fn draws(d: &Dataset<(i64, u64)>) -> Vec<(i64, u64)> {
    d.collect_vec().unwrap()
}

#[test]
fn shard_rekeys_draws_by_position_in_the_unsharded_stream() {
    let src = Dataset::range(0, 40);
    let all = draws(&src.map_with_rng(5, |x, r| (x, r.next_u64())));
    for n in 1..=4u64 {
        for i in 0..n {
            let one = draws(&src.shard(n, i).map_with_rng(5, |x, r| (x, r.next_u64())));
            let want: Vec<_> = all
                .iter()
                .copied()
                .filter(|(x, _)| *x as u64 % n == i)
                .collect();
            assert_eq!(one, want, "shard {i} of {n}");
            // The same through a parallel map and through a prefetch + filter.
            let par = draws(
                &src.shard(n, i)
                    .par_map_with_rng(Parallel::threads(2), 5, |x, r| (x, r.next_u64())),
            );
            assert_eq!(par, want, "shard {i} of {n}, par_map_with_rng");
            let mixed = draws(
                &src.shard(n, i)
                    .prefetch(2)
                    .filter(|x| x % 3 != 0)
                    .map_with_rng(5, |x, r| (x, r.next_u64())),
            );
            let want3: Vec<_> = want.iter().copied().filter(|(x, _)| x % 3 != 0).collect();
            assert_eq!(mixed, want3, "shard {i} of {n}, prefetch + filter");
        }
    }
    // Element 0 of each shard no longer shares a draw.
    let firsts: Vec<u64> = (0..4)
        .map(|i| draws(&src.shard(4, i).map_with_rng(5, |x, r| (x, r.next_u64())))[0].1)
        .collect();
    for a in 0..4 {
        for b in a + 1..4 {
            assert_ne!(firsts[a], firsts[b], "shards {a} and {b}");
        }
    }
}

#[test]
fn shard_keys_count_error_items_as_the_unsharded_stream_does() {
    // Items: 0, ERR, 2, 3, ERR, 5, ... (every value = its position).
    let src = Dataset::range(0, 12).try_map(|x| {
        if x % 4 == 1 {
            Err(Error::invalid("test", "bad"))
        } else {
            Ok(x)
        }
    });
    let keyed = |d: &Dataset<i64>| -> Vec<(i64, u64)> {
        d.map_with_rng(9, |x, r| (x, r.next_u64()))
            .iter()
            .filter_map(|r| r.ok())
            .collect()
    };
    let all = keyed(&src);
    for (x, r) in &all {
        assert_eq!(*r, Rng::for_element(9, 0, *x as u64).next_u64(), "{x}");
    }
    let mut union: Vec<_> = (0..3).flat_map(|i| keyed(&src.shard(3, i))).collect();
    union.sort();
    assert_eq!(union, all);
}

#[test]
fn draws_after_an_unordered_map_and_other_operators_are_keyed_by_input_position() {
    // The unordered map sleeps a little on some elements so that arrivals reorder.
    for run in 0..4 {
        let d = Dataset::range(0, 64)
            .par_map(Parallel::threads(3).unordered().in_flight(8), |x| {
                if x % 5 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                x
            })
            .filter(|x| x % 2 == 1)
            .skip(3)
            .take(20)
            .prefetch(3)
            .map(|x| x * 10)
            .map_with_rng(11, |x, r| (x, r.next_u64()));
        let mut got = draws(&d);
        assert_eq!(got.len(), 20, "run {run}");
        got.sort();
        for (x10, r) in &got {
            let pos = (*x10 / 10) as u64;
            assert_eq!(
                *r,
                Rng::for_element(11, 0, pos).next_u64(),
                "run {run}: element {pos}"
            );
        }
    }
}
