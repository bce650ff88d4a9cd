//! A crash mid-ingest loses nothing acknowledged: an `edgeflow monitor ingest` child is fed a
//! telemetry stream and killed (SIGKILL) at pseudo-random moments; after every kill the
//! database must hold at least every frame the child had acknowledged (`acked N` lines), as
//! an unbroken prefix of the stream (no holes, no duplicates), and pass SQLite's integrity
//! check. Each round uses its own device, so earlier rounds must also survive later kills.

mod monitor_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgeflow_monitor::ingest::device_name;
use edgeflow_monitor::store::{Durability, Store};
use monitor_support::{baseline, stream, tmp, Rng};

#[test]
fn killing_the_ingester_loses_no_acknowledged_frame() {
    let db = tmp("crash.db");
    let base = baseline();
    let mut rng = Rng(0xdead_beef);
    let mut expected: Vec<(u64, u64)> = Vec::new(); // (device, acked)
    for round in 0..8u64 {
        let device = 100 + round;
        // 20 000 inferences with prediction frames: ~20 200 frames, ~0.6 MB.
        let bytes = stream(&base, device, round, 20_000, 0.0, true);
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args([
                "monitor",
                "ingest",
                "--db",
                db.to_str().expect("utf8"),
                "--stdin",
                "--print-acks",
                "--batch",
                "500",
                "--batch-ms",
                "10",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ingest");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            for chunk in bytes.chunks(4096) {
                if stdin.write_all(chunk).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(4));
            }
        });
        let acked = Arc::new(AtomicU64::new(0));
        let a2 = Arc::clone(&acked);
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("acked ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    a2.fetch_max(n, Ordering::SeqCst);
                }
            }
        });
        let delay = Duration::from_millis(100 + (rng.uniform() * 900.0) as u64);
        let start = Instant::now();
        while start.elapsed() < delay {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL the ingester");
        child.wait().expect("reap");
        reader.join().expect("reader");
        let _ = writer.join();
        let n = acked.load(Ordering::SeqCst);
        eprintln!("round {round}: killed after {delay:?}, {n} frames acknowledged");
        expected.push((device, n));

        let store = Store::open(&db, Durability::Process).expect("reopen after kill");
        assert_eq!(store.integrity_check().expect("check"), "ok");
        for &(dev, acked) in &expected {
            let seqs = store.sequences(&device_name(dev)).expect("seqs");
            assert!(
                seqs.len() as u64 >= acked,
                "device {dev}: {} stored < {acked} acknowledged",
                seqs.len()
            );
            assert!(
                seqs.iter().enumerate().all(|(i, &s)| s as usize == i),
                "device {dev}: stored frames are not an unbroken prefix"
            );
        }
    }
    assert!(
        expected.iter().any(|&(_, n)| n > 0),
        "no round acknowledged anything: the kills came too early to test"
    );
    assert!(
        expected.iter().any(|&(_, n)| n < 20_200),
        "no round was killed mid-stream"
    );
}
