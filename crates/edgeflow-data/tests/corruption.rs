//! Corrupted inputs: every reader, fed mutated copies of the reference fixtures
//! (bit flips, byte overwrites, truncations), never panics, and every error it reports
//! names the file it was reading.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use edgeflow_data::analyze::Tabular;
use edgeflow_data::sources::image::read_image;
use edgeflow_data::sources::wav::read_wav;
use edgeflow_data::{BadRecords, Rng};

fn fx(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match rng.below(3) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        _ => b.truncate(rng.below(b.len() as u64) as usize),
    }
    b
}

/// Reads `path` completely with the reader for its format; returns every error message.
fn read_all(path: &Path) -> Vec<String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "png" | "jpg" => read_image(path)
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect(),
        "wav" => read_wav(path)
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect(),
        _ => match Tabular::open(path, 100, BadRecords::Error) {
            Err(e) => vec![e.to_string()],
            Ok(t) => t
                .rows
                .iter()
                .filter_map(|r| r.err().map(|e| e.to_string()))
                .collect(),
        },
    }
}

#[test]
fn mutated_files_give_errors_that_name_the_file_and_never_panic() {
    let names = [
        "examples.tfrecord",
        "f32.npy",
        "i64.npy",
        "compressed.npz",
        "stored.npz",
        "table_snappy.parquet",
        "table_none.parquet",
        "rgb.png",
        "rgb.jpg",
        "stereo16.wav",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(2024);
    let mut errors = 0;
    for name in names {
        let bytes = std::fs::read(fx(name)).unwrap();
        let target = dir.path().join(name);
        for _ in 0..150 {
            std::fs::write(&target, mutate(&bytes, &mut rng)).unwrap();
            for e in read_all(&target) {
                errors += 1;
                assert!(e.contains(name), "{name}: error without the file name: {e}");
            }
        }
    }
    assert!(
        errors > 500,
        "only {errors} errors: the mutations are too gentle"
    );
}

#[test]
fn text_formats_with_random_garbage_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(5);
    for (name, good) in [
        ("t.csv", "a,b,c\n1,2.5,x\n3,4.5,y\n"),
        (
            "t.jsonl",
            "{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2, \"b\": \"y\"}\n",
        ),
        (
            "t.ts",
            "@problemName p\n@dimensions 1\n@classLabel true a b\n@data\n1,2,3:a\n4,5,6:b\n",
        ),
        ("t.txt", "hello\nworld\n"),
    ] {
        let p = dir.path().join(name);
        for _ in 0..200 {
            let m = mutate(good.as_bytes(), &mut rng);
            std::fs::write(&p, &m).unwrap();
            for e in read_all(&p) {
                assert!(e.contains(name), "{e}");
            }
        }
    }
}
