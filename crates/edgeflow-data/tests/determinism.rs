//! Whole-pipeline properties: reproducibility across thread counts and epochs,
//! resuming from checkpoints, and per-operator counters.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use edgeflow_data::{Checkpoint, Dataset, Parallel, Rng};

fn pipeline(threads: usize) -> Dataset<Vec<(i64, u64)>> {
    Dataset::range(0, 300)
        .shuffle(32, 11)
        .par_map_with_rng(Parallel::threads(threads), 5, |x, r: &mut Rng| {
            (x, r.below(1_000_000))
        })
        .filter(|(x, _)| x % 5 != 0)
        .batch(7, false)
        .prefetch(3)
}

#[test]
fn same_output_at_every_thread_count_and_epoch_keyed() {
    let one: Vec<_> = pipeline(1).collect_vec().unwrap();
    for t in [2, 3, 5] {
        assert_eq!(pipeline(t).collect_vec().unwrap(), one, "threads={t}");
    }
    let e2a: Vec<_> = pipeline(2).iter_epoch(2).map(|b| b.unwrap()).collect();
    let e2b: Vec<_> = pipeline(3).iter_epoch(2).map(|b| b.unwrap()).collect();
    assert_eq!(e2a, e2b);
    assert_ne!(e2a, one);
}

#[test]
fn resuming_from_any_checkpoint_yields_the_rest() {
    let d = pipeline(2);
    for epoch in [0, 4] {
        let all: Vec<_> = d.iter_epoch(epoch).map(|b| b.unwrap()).collect();
        for k in [
            0,
            1,
            5,
            17,
            all.len() as u64 - 1,
            all.len() as u64,
            all.len() as u64 + 3,
        ] {
            let mut it = d.iter_from(Checkpoint { epoch, position: k });
            let rest: Vec<_> = it.by_ref().map(|b| b.unwrap()).collect();
            assert_eq!(
                rest,
                all[(k as usize).min(all.len())..],
                "epoch {epoch} position {k}"
            );
            assert_eq!(
                it.checkpoint(),
                Checkpoint {
                    epoch,
                    position: all.len() as u64
                }
            );
        }
    }
    // A checkpoint taken mid-iteration and serialised resumes there.
    let mut it = d.iter_epoch(1);
    let _ = it.by_ref().take(9).count();
    let cp: Checkpoint =
        serde_json::from_str(&serde_json::to_string(&it.checkpoint()).unwrap()).unwrap();
    let rest: Vec<_> = it.map(|b| b.unwrap()).collect();
    let resumed: Vec<_> = d.iter_from(cp).map(|b| b.unwrap()).collect();
    assert_eq!(rest, resumed);
}

#[test]
fn busy_time_is_self_time() {
    let d = Dataset::range(0, 20)
        .map(|x| {
            std::thread::sleep(Duration::from_millis(2));
            x
        })
        .take(20)
        .map(|x| x + 1);
    assert_eq!(d.collect_vec().unwrap().len(), 20);
    let s = d.stats();
    let slow = s.ops[2].values; // the sleeping map
    assert_eq!(s.ops[2].name, "map");
    assert!(slow.busy >= Duration::from_millis(40), "{:?}", slow.busy);
    // Operators above it do not count its time as theirs.
    assert!(
        s.ops[0].values.busy < Duration::from_millis(10),
        "{:?}",
        s.ops[0].values.busy
    );
    assert!(
        s.ops[1].values.busy < Duration::from_millis(10),
        "{:?}",
        s.ops[1].values.busy
    );
    assert_eq!(s.ops[3].values.elements, 20);
    let table = s.table();
    assert_eq!(table.lines().count(), 2 + 4);
    assert!(table
        .lines()
        .nth(5)
        .unwrap()
        .trim_start()
        .starts_with("range(0..20)"));
}

#[test]
fn counters_add_up_over_epochs_and_repeat() {
    let d = Dataset::range(0, 10).repeat(Some(3));
    assert_eq!(d.collect_vec().unwrap().len(), 30);
    assert_eq!(d.collect_vec().unwrap().len(), 30);
    let s = d.stats();
    assert_eq!(s.ops[0].values.elements, 60);
    assert_eq!(s.ops[1].values.elements, 60);
}
