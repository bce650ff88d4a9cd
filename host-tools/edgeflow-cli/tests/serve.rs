//! `edgeflow serve` end to end, as a user runs it: an artifact made by `edgeflow convert`
//! (the `fc_int8` conformance model with a BasicMotions-style statistics pipeline and
//! labels) answers HTTP and line-mode requests exactly as `edgeflow run` answers the same
//! CSV recording; its telemetry is accepted by `edgeflow monitor ingest`; SIGTERM shuts it
//! down cleanly.

mod common;
use common::{edgeflow, text};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("serve_cli", name)
}

/// Six statistics per axis would not give the model's 16 inputs: two axes × 8 statistics.
const PIPELINE: &str = r#"
[input.signal]
axes = 2
rate_hz = 10.0
window = 25
stride = 12

[[branches]]
blocks = [
  { stats = { stats = ["mean", "min", "max", "rms", "std", "skewness", "kurtosis", "peak_to_peak"] } },
]
"#;

/// `edgeflow convert fc_int8.tflite --pipeline --labels`, and a 100-step recording (CSV).
fn setup(name: &str) -> (PathBuf, PathBuf, Vec<Vec<f32>>) {
    let p = tmp(&format!("{name}.toml"));
    std::fs::write(&p, PIPELINE).expect("pipeline");
    let l = tmp(&format!("{name}.labels"));
    std::fs::write(&l, "standing\nwalking\nrunning\nbadminton\nother\n").expect("labels");
    let art = tmp(&format!("{name}.edgeflow"));
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures/fc_int8.tflite");
    let o = edgeflow(&[
        "convert",
        model.to_str().unwrap(),
        "-o",
        art.to_str().unwrap(),
        "--pipeline",
        p.to_str().unwrap(),
        "--labels",
        l.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<Vec<f32>> = (0..100)
        .map(|t| {
            let t = t as f32;
            vec![(t * 0.29).sin() * 2.0 - 0.3, (t * 0.07).cos() + 0.01 * t]
        })
        .collect();
    let csv = tmp(&format!("{name}.csv"));
    let body: String = rows
        .iter()
        .map(|r| format!("{},{}\n", r[0], r[1]))
        .collect();
    std::fs::write(&csv, body).expect("csv");
    // The JSON request carries the values exactly as the CSV reader parses them.
    let rows = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.to_string().parse::<f32>().expect("f32"))
                .collect()
        })
        .collect();
    (art, csv, rows)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("response");
    (
        head[9..12].parse().expect("status"),
        serde_json::from_str(body).expect("json"),
    )
}

/// Starts `edgeflow serve ART --listen 127.0.0.1:0 EXTRA…`; returns it and its address.
fn start(art: &Path, extra: &[&str]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(["serve", art.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Killed(child), addr)
}

#[test]
fn serve_answers_exactly_as_run() {
    let (art, csv, rows) = setup("equal");
    let o = edgeflow(&[
        "run",
        art.to_str().unwrap(),
        "--input",
        csv.to_str().unwrap(),
        "--json",
        "--top",
        "5",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let run: Value = serde_json::from_slice(&o.stdout).expect("run json");
    assert_eq!(run["results"].as_array().map(Vec::len), Some(7), "{run}");

    let req = serde_json::json!({ "samples": rows }).to_string();
    let (srv, addr) = start(&art, &["--top", "5"]);
    let (c, served) = post(&addr, "/v1/predict", &req);
    assert_eq!(c, 200, "{served}");
    assert_eq!(served["results"], run["results"], "serve and run differ");
    drop(srv);

    // The line mode too.
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(["serve", art.to_str().unwrap(), "--stdin", "--top", "5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{req}\n{req}\n").as_bytes())
        .expect("write");
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["results"], run["results"]);
    }
}

#[test]
fn serve_telemetry_goes_into_monitor_ingest_and_sigterm_stops_it() {
    let (art, _, rows) = setup("telemetry");
    let frames = tmp("telemetry.bin");
    let _ = std::fs::remove_file(&frames);
    let (mut srv, addr) = start(
        &art,
        &["--telemetry", frames.to_str().unwrap(), "--device-id", "77"],
    );
    let req = serde_json::json!({ "samples": rows }).to_string();
    for _ in 0..3 {
        let (c, v) = post(&addr, "/v1/predict", &req);
        assert_eq!(c, 200, "{v}");
    }
    // SIGTERM: graceful shutdown, exit status 0.
    let st = Command::new("kill")
        .args(["-TERM", &srv.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let status = srv.0.wait().expect("wait");
    assert!(status.success(), "serve exited with {status}");
    let mut err = String::new();
    srv.0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(err.contains("shutting down"), "{err}");

    let db = tmp("telemetry.db");
    let _ = std::fs::remove_file(&db);
    let o = edgeflow(&[
        "monitor",
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--file",
        frames.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // 1 hello + 3 requests × 7 windows, nothing lost or corrupt.
    assert!(
        text(&o).contains("device 000000000000004d: 22 frames, 0 gaps, 0 corrupt"),
        "{}",
        text(&o)
    );
}
