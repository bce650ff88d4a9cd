//! The edgeflow-data side of the benchmark against tf.data and Grain (see
//! BENCHMARKS.md and `bench/run.py`, which generates the data and runs every side).
//!
//! `cargo run --release -p edgeflow-data --example bench -- WORKLOAD DATA_DIR THREADS`
//! with WORKLOAD one of `csv`, `images`, `text`. Prints one JSON line:
//! `{"elements": N, "batches": B, "seconds": S}`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use edgeflow_data::sources::image::read_image;
use edgeflow_data::sources::lines::lines;
use edgeflow_data::{BadRecords, Dataset, PadTo, Parallel};

fn csv(dir: &Path, par: Parallel) -> Dataset<usize> {
    // Column k was generated as N(k, k + 1): normalise with those constants.
    lines(dir.join("table.csv"), BadRecords::Error)
        .skip(1)
        .par_map_result(par, |line| {
            let mut row = [0f32; 20];
            let mut n = 0;
            for (k, cell) in line.split(',').enumerate() {
                let v: f32 = cell.parse().map_err(|_| {
                    edgeflow_data::Error::invalid("parse", format!("bad number {cell:?}"))
                })?;
                if k < 20 {
                    row[k] = (v - k as f32) / (k as f32 + 1.0);
                }
                n += 1;
            }
            if n != 20 {
                return Err(edgeflow_data::Error::invalid(
                    "parse",
                    format!("{n} fields"),
                ));
            }
            Ok(row)
        })
        .shuffle(10_000, 1)
        .batch(256, false)
        .map(|b| b.len())
        .prefetch(2)
}

fn images(dir: &Path, par: Parallel) -> Dataset<usize> {
    Dataset::list_files(format!("{}/images/*.png", dir.display()), None)
        .par_map_with_rng(par, 7, |p, rng| {
            let img = read_image(&p)?;
            let c = img.random_crop(56, 56, rng)?;
            Ok(if rng.bernoulli(0.5) {
                c.flip_horizontal()
            } else {
                c
            })
        })
        .map_result(|r| r)
        .batch(64, false)
        .map(|b| b.len())
        .prefetch(2)
}

fn text(dir: &Path, par: Parallel) -> Dataset<usize> {
    let vocab: std::collections::HashMap<String, i64> =
        std::fs::read_to_string(dir.join("vocab.txt"))
            .unwrap_or_default()
            .lines()
            .enumerate()
            .map(|(i, w)| (w.to_string(), i as i64))
            .collect();
    let vocab = Arc::new(vocab);
    let n = vocab.len() as u64;
    lines(dir.join("text.txt"), BadRecords::Error)
        .par_map(par, move |l| {
            l.split_whitespace()
                .map(|w| {
                    let w = w.to_lowercase();
                    match vocab.get(&w) {
                        Some(&i) => i,
                        None => (n + fnv(&w) % 100) as i64,
                    }
                })
                .collect::<Vec<i64>>()
        })
        .padded_batch(64, PadTo::Longest, 0, false)
        .map(|b| b.rows)
        .prefetch(2)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        return Err("usage: bench csv|images|text DATA_DIR THREADS".into());
    }
    let dir = Path::new(&a[2]);
    let par = Parallel::threads(a[3].parse()?);
    let ds = match a[1].as_str() {
        "csv" => csv(dir, par),
        "images" => images(dir, par),
        "text" => text(dir, par),
        w => return Err(format!("unknown workload {w}").into()),
    };
    let t0 = Instant::now();
    let (mut elements, mut batches) = (0usize, 0usize);
    for b in ds.iter() {
        elements += b?;
        batches += 1;
    }
    let s = t0.elapsed().as_secs_f64();
    println!("{{\"elements\": {elements}, \"batches\": {batches}, \"seconds\": {s:.4}}}");
    if std::env::var_os("EDGEFLOW_BENCH_STATS").is_some() {
        eprintln!("{}", ds.stats().table());
    }
    Ok(())
}
