//! What resuming from a checkpoint costs through `take`, `skip` and `shard` (issue 18):
//! these operators must see every item to count elements apart from error items, so a
//! resume pulls the skipped items through the operators above them (maps included),
//! where a pipeline of maps alone jumps ahead without calling the map.
//!
//! `cargo run --release -p edgeflow-data --example resume_cost [N]` (default N =
//! 1,000,000 elements; the map costs about 0.3 µs per element). For each pipeline it
//! prints the time of a full pass, and the time from `iter_from(position = P)` to the
//! first item for P = half the pipeline's output, as a Markdown table.

use std::time::Instant;

use edgeflow_data::{Checkpoint, Dataset};

/// About 0.3 µs of arithmetic, so that recomputing a skipped element has a visible cost.
fn work(x: i64) -> u64 {
    let mut h = x as u64 ^ 0x9E37_79B9_7F4A_7C15;
    for _ in 0..64 {
        h = h.wrapping_mul(0x5851_F42D_4C95_7F2D).rotate_left(17) ^ 0x14057B7EF767814F;
    }
    h
}

fn main() {
    let n: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let src = || Dataset::range(0, n).map(work);
    let pipelines: Vec<(&str, Dataset<u64>)> = vec![
        ("range -> map (fast skip)", src()),
        ("range -> map -> take(n - 1)", src().take(n as u64 - 1)),
        ("range -> map -> skip(1)", src().skip(1)),
        ("range -> map -> shard(4, 1)", src().shard(4, 1)),
    ];
    println!("| pipeline | output items | full pass ms | resume at half: ms to first item |");
    println!("|---|---:|---:|---:|");
    for (name, d) in pipelines {
        let t = Instant::now();
        let mut count = 0u64;
        let mut sink = 0u64;
        for x in d.iter_epoch(0) {
            sink ^= x.unwrap_or(0);
            count += 1;
        }
        let full = t.elapsed();
        let t = Instant::now();
        let mut it = d.iter_from(Checkpoint {
            epoch: 0,
            position: count / 2,
        });
        sink ^= it.next().and_then(|r| r.ok()).unwrap_or(0);
        let resume = t.elapsed();
        println!(
            "| {name} | {count} | {:.1} | {:.1} |",
            full.as_secs_f64() * 1e3,
            resume.as_secs_f64() * 1e3
        );
        std::hint::black_box(sink);
    }
}
