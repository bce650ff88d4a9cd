//! Shared helpers of the `edgeflow monitor` tests: a baseline, simulated device streams.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use edgeflow_monitor::baseline::build;
use edgeflow_monitor::sim::{device_stream, Inference};

/// xorshift64* + Box–Muller: deterministic samples without a dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

pub fn rows(rng: &mut Rng, n: usize, offset1: f32) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            vec![
                rng.normal(),
                5.0 + 2.0 * rng.normal() + offset1,
                rng.normal().abs(),
            ]
        })
        .collect()
}

pub fn inferences(rows: &[Vec<f32>]) -> Vec<Inference> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| Inference {
            features: r.clone(),
            new_frames: 1,
            class: (i % 3) as u16,
            score: 0.6 + 0.3 * ((i % 7) as f32 / 7.0),
        })
        .collect()
}

/// A bare baseline section (3 features, 10 bins, 3 classes, 4 score bins) from 3000 rows.
pub fn baseline() -> Vec<u8> {
    let mut rng = Rng(0xba5e);
    let train = rows(&mut rng, 3000, 0.0);
    let labels: Vec<usize> = (0..3000).map(|i| i % 3).collect();
    let validation: Vec<(f32, bool)> = (0..600)
        .map(|i| (0.6 + 0.3 * ((i % 7) as f32 / 7.0), i % 10 != 0))
        .collect();
    build(&train, 10, &labels, 3, &[0.7, 0.8, 0.9], &validation)
        .expect("baseline")
        .to_bytes()
        .expect("bytes")
}

/// A device's telemetry: `n` inferences, summaries every 100, optional prediction frames.
pub fn stream(
    baseline: &[u8],
    device: u64,
    seed: u64,
    n: usize,
    offset1: f32,
    predictions: bool,
) -> Vec<u8> {
    let mut rng = Rng(seed);
    device_stream(
        baseline,
        device,
        0xabcd,
        &inferences(&rows(&mut rng, n, offset1)),
        100,
        predictions,
        10_000,
    )
    .expect("stream")
}

pub fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("monitor");
    std::fs::create_dir_all(&d).expect("tmp dir");
    let p = d.join(name);
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(p.with_extension("db-wal"));
    let _ = std::fs::remove_file(p.with_extension("db-shm"));
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `edgeflow monitor ingest --print-acks`, killed on drop.
pub struct Ingester {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Ingester {
    /// Starts the ingester on `db` with the `source` arguments (`--listen ADDR`, `--serial
    /// PATH`, `--mqtt …`) for at most `max_seconds`, and waits for the stderr line that
    /// contains `ready` (returned). Stderr is drained afterwards so the ingester never
    /// blocks on a full pipe.
    pub fn start(db: &Path, source: &[&str], max_seconds: u32, ready: &str) -> (Self, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args(["monitor", "ingest", "--db", db.to_str().expect("utf8")])
            .args(source)
            .args(["--print-acks", "--batch-ms", "20"])
            .args(["--max-seconds", &max_seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ingest");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut err = BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = err.read_line(&mut line).expect("ingest stderr");
            assert!(n > 0, "ingest ended before {ready:?}: {seen}");
            seen.push_str(&line);
            if line.contains(ready) {
                std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
                return (Self { child, out }, line);
            }
        }
    }

    /// [`Ingester::start`] with `--listen 127.0.0.1:0`; returns the address it listens on.
    pub fn listen(db: &Path, max_seconds: u32) -> (Self, String) {
        let (ing, line) = Self::start(
            db,
            &["--listen", "127.0.0.1:0"],
            max_seconds,
            "listening on ",
        );
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("address")
            .to_string();
        (ing, addr)
    }

    /// Reads `acked N` lines until `total` frames are acknowledged (or the ingester ends);
    /// returns the last count read.
    pub fn wait_acked(&mut self, total: u64) -> u64 {
        let mut acked = 0;
        while acked < total {
            let mut l = String::new();
            if self.out.read_line(&mut l).expect("read") == 0 {
                break;
            }
            if let Some(n) = l.trim().strip_prefix("acked ").and_then(|n| n.parse().ok()) {
                acked = n;
            }
        }
        acked
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
