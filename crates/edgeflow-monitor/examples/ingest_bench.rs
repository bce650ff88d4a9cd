//! Ingestion and analysis benchmark (figures in BENCHMARKS.md).
//!
//! `cargo run --release -p edgeflow-monitor --example ingest_bench -- [FRAMES] [DB_DIR]`
//!
//! 1. Builds a telemetry byte stream of FRAMES frames from 10 simulated devices (prediction
//!    frames, and a summary of 3 features × 10 bins every 100 inferences), as the devices
//!    would send it.
//! 2. `ingest`: decodes it (COBS, CRC, postcard) and stores it into a fresh SQLite file in
//!    DB_DIR in batches of 4096 frames, one thread; frames/s over the whole run.
//! 3. `sqlite ceiling`: the same number of rows, already encoded, inserted with the same
//!    prepared statement and batch size and nothing else — what SQLite itself allows here.
//! 4. `analysis`: every stored frame read back, windows cut per device (10 summaries), and
//!    each window analysed against the baseline.
//!
//! Peak memory is the process's VmHWM from /proc/self/status after each phase. Each phase
//! also prints its context switches (/proc/self/status): voluntary ones are the times the
//! process blocked (I/O: reads, fsync at WAL checkpoints), involuntary ones the times
//! another process took the core — so wall time far above CPU time with few voluntary
//! switches is time spent waiting for a core, not for the disk.

use std::time::Instant;

use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::{build, Baseline};
use edgeflow_monitor::ingest::{ingest_reader, BatchPolicy};
use edgeflow_monitor::sim::{device_stream, Inference};
use edgeflow_monitor::store::{Durability, Store};
use edgeflow_monitor::windows::{analyze_windows, collect_windows, WindowBy};

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) of this process so far, seconds, from /proc/self/stat (clock
/// ticks of 1/100 s): on a loaded machine the CPU time of a phase says what it costs, where
/// its wall time also says how long it waited for a core.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// (voluntary, involuntary) context switches of this process so far.
fn ctx_switches() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (
        get("voluntary_ctxt_switches:"),
        get("nonvoluntary_ctxt_switches:"),
    )
}

/// Context switches since `since`, as text.
fn switched(since: (u64, u64)) -> String {
    let now = ctx_switches();
    format!(
        "{} voluntary / {} involuntary context switches",
        now.0 - since.0,
        now.1 - since.1
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |s| s.parse())?;
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(2)
            .unwrap_or_else(|| "target/bench-monitor".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f32 / (1u64 << 53) as f32
    };
    let train: Vec<Vec<f32>> = (0..2000)
        .map(|_| vec![next(), next() * 2.0, next() - 0.5])
        .collect();
    let labels: Vec<usize> = (0..2000).map(|i| i % 3).collect();
    let owned = build(
        &train,
        10,
        &labels,
        3,
        &[0.5, 0.8],
        &[(0.9, true), (0.6, false)],
    )?;
    let bytes = owned.to_bytes()?;
    let baseline = Baseline::parse(&bytes)?;

    let devices = 10usize;
    // per device: 1 hello + n predictions + ceil(n/100) summaries ≈ frames / devices
    let per = ((frames / devices) as f64 / 1.01) as usize;
    let t = Instant::now();
    let mut stream = Vec::new();
    for d in 0..devices {
        let inf: Vec<Inference> = (0..per)
            .map(|i| Inference {
                features: vec![next(), next() * 2.0, next() - 0.5],
                new_frames: 1,
                class: (i % 3) as u16,
                score: 0.5 + next() * 0.5,
            })
            .collect();
        stream.extend(device_stream(&bytes, d as u64, 7, &inf, 100, true, 10_000)?);
    }
    eprintln!(
        "stream: {} bytes built in {:.2} s",
        stream.len(),
        t.elapsed().as_secs_f64()
    );

    let db = dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let mut store = Store::open(&db, Durability::Process)?;
    let (t, c, cs) = (Instant::now(), cpu_s(), ctx_switches());
    let st = ingest_reader(
        &mut store,
        &mut stream.as_slice(),
        BatchPolicy::default(),
        &mut |_| {},
    )?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    println!("ingest: {} frames in {secs:.3} s = {:.0} frames/s (decode + store, batches of 4096, WAL, synchronous=NORMAL); CPU {cpu:.2} s = {:.0} frames per CPU-second; {}; VmHWM {:.1} MiB", st.stored, st.stored as f64 / secs, st.stored as f64 / cpu, switched(cs), vm_hwm_mib());
    drop(store);

    // SQLite ceiling: the same row shape, pre-encoded, same statement and batch size.
    let db2 = dir.join("ceiling.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db2.display()));
    }
    let conn = rusqlite::Connection::open(&db2)?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
    for step in edgeflow_monitor::store::MIGRATIONS {
        conn.execute_batch(step)?;
    }
    conn.execute("INSERT INTO devices(name) VALUES ('d')", [])?;
    let payload = vec![1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    let n = st.stored as i64;
    let (t, c, cs) = (Instant::now(), cpu_s(), ctx_switches());
    let mut i = 0i64;
    while i < n {
        conn.execute_batch("BEGIN")?;
        {
            let mut s = conn.prepare_cached("INSERT INTO frames(device, seq, kind, recv_us, model_hash, payload, gap) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
            for _ in 0..4096.min(n - i) {
                s.execute(rusqlite::params![
                    1i64, i, 1i64, i, "0000abcd", &payload, 0i64
                ])?;
                i += 1;
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    let (secs2, cpu2) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    println!("sqlite ceiling: {n} rows in {secs2:.3} s = {:.0} rows/s (insert only, same schema and batches); CPU {cpu2:.2} s = {:.0} rows per CPU-second; {}", n as f64 / secs2, n as f64 / cpu2, switched(cs));
    drop(conn);

    let store = Store::open(&db, Durability::Process)?;
    let (t, c) = (Instant::now(), cpu_s());
    let windows = collect_windows(&store, None, false, WindowBy::Summaries(10), None, None)?;
    let reports = analyze_windows(&store, &baseline, &Thresholds::default(), &windows)?;
    let (secs3, cpu3) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    let alerts: usize = reports.iter().map(|r| r.alerts.len()).sum();
    println!("analysis: {} frames read, {} windows analysed ({alerts} alerts) in {secs3:.3} s (CPU {cpu3:.2} s); VmHWM {:.1} MiB", store.frame_count()?, windows.len(), vm_hwm_mib());
    Ok(())
}
