//! The text pipeline of tf.data's guide: lines → tokenize → vocabulary lookup with
//! out-of-vocabulary buckets → bucket by sequence length with padded batches.
//!
//! `cargo run -p edgeflow-data --example text_pipeline [FILE.txt]` — without a file, a
//! small generated corpus is used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgeflow_data::sources::lines::lines;
use edgeflow_data::{BadRecords, Dataset, PaddedBatch, Result};

/// Id 0 is padding; vocabulary words are `1..=len`; out-of-vocabulary words hash into
/// `oov_buckets` ids after those.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    ids: HashMap<String, i64>,
    oov_buckets: u64,
}

/// FNV-1a, 64 bits: a stable hash for out-of-vocabulary buckets.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Vocabulary {
    /// The `size` most frequent tokens of `tokens` (ties broken alphabetically).
    pub fn build(tokens: impl Iterator<Item = String>, size: usize, oov_buckets: u64) -> Self {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for t in tokens {
            *counts.entry(t).or_default() += 1;
        }
        let mut v: Vec<(String, u64)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let ids = v
            .into_iter()
            .take(size)
            .enumerate()
            .map(|(i, (w, _))| (w, i as i64 + 1))
            .collect();
        Vocabulary {
            ids,
            oov_buckets: oov_buckets.max(1),
        }
    }

    /// The id of `token`.
    pub fn lookup(&self, token: &str) -> i64 {
        match self.ids.get(token) {
            Some(&i) => i,
            None => self.ids.len() as i64 + 1 + (fnv1a(token) % self.oov_buckets) as i64,
        }
    }

    /// Number of ids including padding and the OOV buckets.
    pub fn id_count(&self) -> i64 {
        self.ids.len() as i64 + 1 + self.oov_buckets as i64
    }
}

/// Lower-cased alphanumeric words.
pub fn tokenize(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The pipeline over the lines of `path`: a first pass builds the vocabulary, the second
/// maps every non-empty line to ids and groups them by length (buckets < 8, < 16, ≥ 16
/// tokens) into padded batches.
pub fn pipeline(
    path: &Path,
    vocab_size: usize,
    batch: usize,
) -> Result<(Arc<Vocabulary>, Dataset<PaddedBatch<i64>>)> {
    let text = lines(path, BadRecords::Error);
    let tokens: Vec<String> = text
        .iter()
        .collect::<Result<Vec<String>>>()?
        .iter()
        .flat_map(|l| tokenize(l))
        .collect();
    let vocab = Arc::new(Vocabulary::build(tokens.into_iter(), vocab_size, 8));
    let v = Arc::clone(&vocab);
    let ds = text
        .map(|l| tokenize(&l))
        .filter(|t| !t.is_empty())
        .map(move |t| t.iter().map(|w| v.lookup(w)).collect::<Vec<i64>>())
        .bucket_by_sequence_length(vec![8, 16], vec![batch, batch, batch], 0, false, false)
        .prefetch(2);
    Ok((vocab, ds))
}

/// Writes a small corpus of `n` lines of varying length.
pub fn make_corpus(path: &Path, n: usize) -> std::io::Result<()> {
    let words = [
        "the", "a", "sensor", "reads", "data", "model", "runs", "on", "device", "quickly", "zebra",
    ];
    let mut s = String::new();
    for i in 0..n {
        let len = 1 + (i * 7) % 23;
        let line: Vec<&str> = (0..len)
            .map(|k| words[(i * 3 + k * k) % words.len()])
            .collect();
        s.push_str(&line.join(" "));
        s.push_str(".\n");
    }
    std::fs::write(path, s)
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(p) => PathBuf::from(p),
        None => {
            let p =
                std::env::temp_dir().join(format!("edgeflow-corpus-{}.txt", std::process::id()));
            make_corpus(&p, 200)?;
            p
        }
    };
    let (vocab, ds) = pipeline(&path, 1000, 8)?;
    println!("vocabulary: {} ids", vocab.id_count());
    for b in ds.iter().take(3) {
        let b = b?;
        println!("batch {} x {}: lengths {:?}", b.rows, b.width, b.lengths);
    }
    println!("{}", ds.stats().table());
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_ids_and_oov_buckets() {
        assert_eq!(tokenize("Hello, World! 42x"), ["hello", "world", "42x"]);
        let v = Vocabulary::build(
            ["b", "a", "b", "c", "c", "c"].iter().map(|s| s.to_string()),
            2,
            4,
        );
        assert_eq!((v.lookup("c"), v.lookup("b")), (1, 2));
        let oov = v.lookup("a");
        assert!((3..7).contains(&oov));
        assert_eq!(oov, v.lookup("a"));
        assert_eq!(v.id_count(), 7);
    }

    #[test]
    fn batches_are_bucketed_and_padded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.txt");
        make_corpus(&p, 120).unwrap();
        let (vocab, ds) = pipeline(&p, 5, 4).unwrap();
        let batches = ds.collect_vec().unwrap();
        let total: usize = batches.iter().map(|b| b.rows).sum();
        assert_eq!(total, 120);
        for b in &batches {
            let max = *b.lengths.iter().max().unwrap();
            assert_eq!(b.width, max);
            let bucket = |n: usize| (n >= 8) as u8 + (n >= 16) as u8;
            assert!(
                b.lengths.iter().all(|&n| bucket(n) == bucket(max)),
                "{:?}",
                b.lengths
            );
            for r in 0..b.rows {
                let row = b.row(r).unwrap();
                assert!(row[..b.lengths[r]]
                    .iter()
                    .all(|&id| id >= 1 && id < vocab.id_count()));
                assert!(row[b.lengths[r]..].iter().all(|&id| id == 0));
            }
        }
        // The corpus has 11 words and the vocabulary 5: the rest land in OOV buckets.
        assert!(vocab.lookup("never-seen") > 5);
        assert!(batches.iter().any(|b| b.data.iter().any(|&id| id > 5)));
    }
}
