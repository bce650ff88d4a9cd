//! `edgeflow serve` in process, over real loopback HTTP: predictions (checked against the
//! TFLite Micro golden of the conformance fixture, and the stream against the request
//! path), 4xx answers, metrics, hot reload, telemetry frames, the in-flight limit and
//! graceful shutdown. Runs on x86_64 and under qemu-aarch64 (`cargo xtask test`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgeflow_format::SectionKind;
use edgeflow_serve::{AppState, Limits, Served};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures")
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve");
    std::fs::create_dir_all(&d).expect("tmp dir");
    d.join(name)
}

/// 2 axes, windows of 25 steps every 12, 8 statistics per axis: 16 features, the input of
/// the `fc_int8` conformance model (int8 [1, 16] -> [1, 5]). BasicMotions-shaped framing
/// (the monitor's known-answer test frames BasicMotions the same way).
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

const LABELS: [&str; 5] = ["standing", "walking", "running", "badminton", "other"];

/// The `fc_int8` fixture compiled, with the pipeline and `labels`.
fn artifact(labels: &[&str]) -> Vec<u8> {
    let tfl = std::fs::read(fixtures().join("fc_int8.tflite")).expect("fixture");
    let c = edgeflow_compile::compile(&tfl, "fc_int8").expect("compile");
    let spec = edgeflow_dsp::host::from_toml(PIPELINE, "<test>").expect("pipeline");
    let with_p = edgeflow::host::attach_pipeline(&c.artifact, &spec).expect("attach");
    let a = edgeflow_format::Artifact::parse(&with_p).expect("artifact");
    let l: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
    let lb = edgeflow_format::labels::encode(&l).expect("labels");
    edgeflow_format::write::assemble(&[
        (SectionKind::Graph, a.graph),
        (SectionKind::Weights, a.weights),
        (
            SectionKind::FeaturePipeline,
            a.feature_pipeline.expect("pipeline"),
        ),
        (SectionKind::Labels, &lb),
    ])
    .expect("assemble")
}

/// A deterministic 2-axis signal of `steps` time steps (rows of [x, y]).
fn signal(steps: usize) -> Vec<[f32; 2]> {
    (0..steps)
        .map(|t| {
            let t = t as f32;
            [
                (t * 0.37).sin() * 1.5 + 0.2,
                (t * 0.11).cos() * 0.8 - (t * 0.05),
            ]
        })
        .collect()
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), edgeflow_serve::ServeError>>>,
}

impl Server {
    fn start(state: Arc<AppState>) -> Server {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        l.set_nonblocking(true).expect("nonblocking");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).expect("listener");
                edgeflow_serve::serve_on(st, l, false, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        drop(state);
        Server {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("server thread").expect("server result");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn serve(bytes: Vec<u8>, path: Option<PathBuf>, limits: Limits) -> Server {
    let m = Served::load(bytes, "fc_int8.edgeflow", limits.max_arena).expect("load");
    Server::start(AppState::new(
        m,
        path,
        limits,
        edgeflow_serve::telemetry::Telemetry::off(),
    ))
}

/// Decodes an HTTP/1.1 response (Content-Length or chunked): status and body.
fn parse_response(raw: &[u8]) -> (u16, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().expect("status");
    let mut body = raw[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let n =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).expect("hex").trim(), 16)
                    .expect("chunk size");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        body = out;
    }
    (status, body)
}

fn request(addr: SocketAddr, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn json(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (c, b) = request(addr, method, path, "application/json", body.as_bytes());
    let v = serde_json::from_slice(&b)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into()));
    (c, v)
}

fn npy_f32(shape: &[u64], data: &[f32]) -> Vec<u8> {
    use npyz::WriterBuilder;
    let mut out = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut out)
        .begin_nd()
        .expect("npy");
    w.extend(data.iter().copied()).expect("npy");
    w.finish().expect("npy");
    out
}

#[test]
fn features_answer_equals_the_tflite_micro_golden() {
    let mut srv = serve(artifact(&LABELS), None, Limits::default());
    let (c, model) = json(srv.addr, "GET", "/v1/model", "");
    assert_eq!(c, 200, "{model}");
    let (scale, zp) = (
        model["output"]["quant"][0].as_f64().expect("scale") as f32,
        model["output"]["quant"][1].as_i64().expect("zp"),
    );
    let input = std::fs::read(fixtures().join("fc_int8.input.npy")).expect("input");
    let golden = npyz::NpyFile::new(
        &std::fs::read(fixtures().join("fc_int8.output.npy")).expect("golden")[..],
    )
    .expect("npy")
    .into_vec::<i8>()
    .expect("i8");
    let want: Vec<f64> = golden
        .iter()
        .map(|&q| f64::from(scale) * (f64::from(q) - zp as f64))
        .collect();
    // The quantized output back from the served real numbers (exact: |q| <= 255, and the
    // scale went through JSON as the f32 it is).
    let requant = |v: &[f64]| -> Vec<i64> {
        v.iter()
            .map(|&x| (x / f64::from(scale)).round() as i64 + zp)
            .collect()
    };
    let (c, b) = request(srv.addr, "POST", "/v1/predict", "application/x-npy", &input);
    let v: Value = serde_json::from_slice(&b).expect("json");
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["input_kind"], "features");
    let got: Vec<f64> = v["results"][0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|x| x.as_f64().expect("f64"))
        .collect();
    let golden_q: Vec<i64> = golden.iter().map(|&q| i64::from(q)).collect();
    assert_eq!(
        requant(&got),
        golden_q,
        "served output differs from TFLite Micro's"
    );
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-12, "{got:?} vs {want:?}");
    }
    // The same features as JSON integers give the same answer, with the labels on top.
    let q = npyz::NpyFile::new(&input[..])
        .expect("npy")
        .into_vec::<i8>()
        .expect("i8");
    let (c, v2) = json(
        srv.addr,
        "POST",
        "/v1/predict",
        &serde_json::json!({ "features": q }).to_string(),
    );
    assert_eq!(c, 200, "{v2}");
    assert_eq!(v2["results"], v["results"]);
    let best = (0..5)
        .max_by(|&a, &b| want[a].total_cmp(&want[b]).then(b.cmp(&a)))
        .expect("best");
    assert_eq!(v["results"][0]["top"][0]["label"], LABELS[best]);
    srv.stop();
}

#[test]
fn samples_json_npy_stream_and_lines_agree() {
    let mut srv = serve(artifact(&LABELS), None, Limits::default());
    let sig = signal(100);
    let rows: Vec<Vec<f32>> = sig.iter().map(|r| r.to_vec()).collect();
    let (c, a) = json(
        srv.addr,
        "POST",
        "/v1/predict?top=5",
        &serde_json::json!({ "samples": rows }).to_string(),
    );
    assert_eq!(c, 200, "{a}");
    let results = a["results"].as_array().expect("results");
    // 100 steps, window 25, stride 12: windows start at 0, 12, …, 72 -> 7 windows.
    assert_eq!(results.len(), 7, "{a}");
    assert_eq!(results[6]["from"], "window 7");
    assert_eq!(results[0]["top"].as_array().expect("top").len(), 5);
    let flat: Vec<f32> = sig.iter().flatten().copied().collect();
    let (c, b) = request(
        srv.addr,
        "POST",
        "/v1/predict?top=5",
        "application/x-npy",
        &npy_f32(&[100, 2], &flat),
    );
    let b: Value = serde_json::from_slice(&b).expect("json");
    assert_eq!(c, 200, "{b}");
    assert_eq!(b["results"], a["results"], ".npy and JSON samples differ");

    // The stream: the device engine's framing over arbitrary chunks gives the same windows.
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut s = TcpStream::connect(srv.addr).expect("connect");
    s.write_all(b"POST /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    for c in bytes.chunks(7) {
        s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
            .expect("w");
        s.write_all(c).expect("w");
        s.write_all(b"\r\n").expect("w");
    }
    s.write_all(b"0\r\n\r\n").expect("end");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let (c, body) = parse_response(&raw);
    assert_eq!(c, 200);
    let lines: Vec<Value> = String::from_utf8_lossy(&body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 7, "{lines:?}");
    for (i, (l, r)) in lines.iter().zip(results).enumerate() {
        assert_eq!(l["window"], i + 1);
        assert_eq!(l["class"], r["top"][0]["class"], "window {}", i + 1);
        assert_eq!(l["label"], r["top"][0]["label"]);
        let (x, y) = (
            l["score"].as_f64().expect("s"),
            r["top"][0]["score"].as_f64().expect("s"),
        );
        assert!(
            (x - y).abs() <= 1e-6 * y.abs().max(1.0),
            "window {}: {x} vs {y}",
            i + 1
        );
    }

    // The line mode answers the same request with the same results.
    let input = format!(
        "{}\n\n{{\"features\": 3}}\n",
        serde_json::json!({ "samples": rows })
    );
    let mut out = Vec::new();
    let mut state_limits = Limits::default();
    state_limits.top = 5;
    let st = AppState::new(
        Served::load(artifact(&LABELS), "x", state_limits.max_arena).expect("load"),
        None,
        state_limits,
        edgeflow_serve::telemetry::Telemetry::off(),
    );
    let r = edgeflow_serve::lines::run(&st, input.as_bytes(), &mut out);
    assert!(r.is_err(), "a failed line makes the mode fail");
    let outs: Vec<Value> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[0]["results"], a["results"]);
    assert_eq!(outs[1]["line"], 3);
    assert!(
        outs[1]["error"]
            .as_str()
            .expect("error")
            .contains("features"),
        "{}",
        outs[1]
    );
    srv.stop();
}

#[test]
fn bad_requests_get_4xx_saying_what_is_wrong() {
    let limits = Limits {
        max_body: 64 * 1024,
        ..Limits::default()
    };
    let mut srv = serve(artifact(&LABELS), None, limits);
    let a = srv.addr;
    let cases: Vec<(u16, (u16, Value), &str)> = vec![
        (
            400,
            json(a, "POST", "/v1/predict", "{\"samples\": [1, 2"),
            "not valid JSON",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "[1, 2]"),
            "expected a JSON object",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "{\"sample\": [1]}"),
            "unknown field \"sample\"",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "{\"features\": [1, 2, 3]}"),
            "features: 3 values, the model input [1, 16] int8 has 16",
        ),
        (
            400,
            json(
                a,
                "POST",
                "/v1/predict",
                "{\"features\": [[1.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]}",
            ),
            "quantized integers",
        ),
        (
            400,
            json(
                a,
                "POST",
                "/v1/predict",
                "{\"samples\": [[1, 2], [1, 2, 3]]}",
            ),
            "row 2 has 3 values",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "{\"samples\": [1, 2, 3]}"),
            "not a whole number of time steps",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "{\"samples\": [[1, 2], [3, 4]]}"),
            "too short for one feature tensor",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "{\"samples\": [[1, \"x\"]]}"),
            "samples[0][1]: expected a number",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", "{\"text\": \"hello\"}"),
            "does not fit the artifact's pipeline",
        ),
        (
            400,
            json(a, "POST", "/v1/predict?top=0", "{\"samples\": []}"),
            "top=\"0\"",
        ),
        (
            400,
            json(a, "POST", "/v1/predict", ""),
            "empty request body",
        ),
        (
            404,
            json(a, "GET", "/v2/predict", ""),
            "no route /v2/predict",
        ),
    ];
    for (want, (code, v), needle) in cases {
        assert_eq!(code, want, "{v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
    }
    let (c, b) = request(a, "POST", "/v1/predict", "text/csv", b"1,2\n");
    assert_eq!(c, 415, "{}", String::from_utf8_lossy(&b));
    let (c, b) = request(
        a,
        "POST",
        "/v1/predict",
        "application/x-npy",
        b"\x93NUMPY\x01\x00garbage",
    );
    assert_eq!(c, 400);
    assert!(
        String::from_utf8_lossy(&b).contains(".npy body"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    // A header claiming more data than sent is refused before anything is allocated.
    let big = npy_f32(&[4, 2], &[0.0; 8]);
    let lie = String::from_utf8_lossy(&big).replace("(4, 2)", "(4000000000, 2)");
    let (c, b) = request(
        a,
        "POST",
        "/v1/predict",
        "application/x-npy",
        lie.as_bytes(),
    );
    assert_eq!(c, 400, "{}", String::from_utf8_lossy(&b));
    // Over the body limit: 413 naming the limit.
    let huge = format!("{{\"samples\": [{}0]}}", "0, ".repeat(40_000));
    let (c, v) = json(a, "POST", "/v1/predict", &huge);
    assert_eq!(c, 413, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("65536 bytes"),
        "{v}"
    );
    // Every error was counted.
    let (_, m) = request(a, "GET", "/metrics", "text/plain", b"");
    let m = String::from_utf8_lossy(&m);
    assert!(
        m.contains("edgeflow_requests_total{route=\"/v1/predict\",code=\"400\"}"),
        "{m}"
    );
    assert!(
        m.contains("edgeflow_requests_total{route=\"/v1/predict\",code=\"413\"} 1"),
        "{m}"
    );
    srv.stop();
}

#[test]
fn model_health_and_metrics() {
    let mut srv = serve(artifact(&LABELS), None, Limits::default());
    let (c, m) = json(srv.addr, "GET", "/v1/model", "");
    assert_eq!(c, 200);
    assert_eq!(m["labels"][1], "walking");
    assert_eq!(m["input"]["shape"], serde_json::json!([1, 16]));
    assert_eq!(m["pipeline"]["input"], "signal");
    assert_eq!(m["pipeline"]["window"], 25);
    assert!(m["pipeline_toml"]
        .as_str()
        .unwrap_or_default()
        .contains("stride"));
    let (c, h) = json(srv.addr, "GET", "/healthz", "");
    assert_eq!(c, 200);
    assert_eq!(h["status"], "ok");
    assert_eq!(h["model_hash"], m["model_hash"]);
    let rows: Vec<Vec<f32>> = signal(25).iter().map(|r| r.to_vec()).collect();
    for _ in 0..3 {
        let (c, _) = json(
            srv.addr,
            "POST",
            "/v1/predict",
            &serde_json::json!({ "samples": rows }).to_string(),
        );
        assert_eq!(c, 200);
    }
    let (c, t) = request(srv.addr, "GET", "/metrics", "text/plain", b"");
    assert_eq!(c, 200);
    let t = String::from_utf8_lossy(&t);
    for needle in [
        "edgeflow_requests_total{route=\"/v1/predict\",code=\"200\"} 3",
        "edgeflow_request_duration_seconds_count{route=\"/v1/predict\"} 3",
        "edgeflow_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"+Inf\"} 3",
        "edgeflow_inferences_total 3",
        "# TYPE edgeflow_request_duration_seconds histogram",
    ] {
        assert!(t.contains(needle), "{needle:?} not in\n{t}");
    }
    srv.stop();
}

#[test]
fn hot_reload_swaps_a_valid_model_and_refuses_a_bad_one() {
    let path = tmp("reload.edgeflow");
    std::fs::write(&path, artifact(&LABELS)).expect("write");
    let mut srv = serve(artifact(&LABELS), Some(path.clone()), Limits::default());
    let (_, m0) = json(srv.addr, "GET", "/v1/model", "");
    let rows: Vec<Vec<f32>> = signal(25).iter().map(|r| r.to_vec()).collect();
    let req = serde_json::json!({ "samples": rows }).to_string();
    let (_, p0) = json(srv.addr, "POST", "/v1/predict", &req);

    // A truncated artifact is refused, naming the problem; the old model keeps serving.
    let good = artifact(&LABELS);
    std::fs::write(&path, &good[..good.len() / 2]).expect("write");
    let (c, r) = json(srv.addr, "POST", "/admin/reload", "");
    assert_eq!(c, 422, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap_or_default()
            .contains("new model refused"),
        "{r}"
    );
    assert_eq!(r["serving"], m0["model_hash"]);
    let (c, p1) = json(srv.addr, "POST", "/v1/predict", &req);
    assert_eq!(c, 200);
    assert_eq!(p1["results"], p0["results"]);

    // A valid one (other labels, so another hash) is swapped in.
    let other = ["a", "b", "c", "d", "e"];
    std::fs::write(&path, artifact(&other)).expect("write");
    let (c, r) = json(srv.addr, "POST", "/admin/reload", "");
    assert_eq!(c, 200, "{r}");
    let (_, m1) = json(srv.addr, "GET", "/v1/model", "");
    assert_ne!(m1["model_hash"], m0["model_hash"]);
    assert_eq!(r["model_hash"], m1["model_hash"]);
    assert_eq!(m1["labels"][0], "a");
    let (_, p2) = json(srv.addr, "POST", "/v1/predict", &req);
    let label = p2["results"][0]["top"][0]["label"].as_str().expect("label");
    assert!(other.contains(&label), "{p2}");
    let (_, t) = request(srv.addr, "GET", "/metrics", "text/plain", b"");
    let t = String::from_utf8_lossy(&t);
    assert!(
        t.contains("edgeflow_model_reloads_total{result=\"ok\"} 1"),
        "{t}"
    );
    assert!(
        t.contains("edgeflow_model_reloads_total{result=\"refused\"} 1"),
        "{t}"
    );
    srv.stop();
}

#[test]
fn telemetry_frames_are_the_device_frames() {
    let path = tmp("telemetry.bin");
    let _ = std::fs::remove_file(&path);
    let sink = std::fs::File::create(&path).expect("create");
    let (tel, h) =
        edgeflow_serve::telemetry::Telemetry::start(Box::new(sink), 42, "linux".into(), 0);
    let m = Served::load(artifact(&LABELS), "fc_int8.edgeflow", 1 << 20).expect("load");
    let hash = m.hash;
    let mut srv = Server::start(AppState::new(m, None, Limits::default(), tel));
    let rows: Vec<Vec<f32>> = signal(100).iter().map(|r| r.to_vec()).collect();
    let (c, a) = json(
        srv.addr,
        "POST",
        "/v1/predict",
        &serde_json::json!({ "samples": rows }).to_string(),
    );
    assert_eq!(c, 200);
    srv.stop();
    // The last sender goes with the state; the writer thread then ends.
    drop(srv);
    h.join().expect("telemetry thread");
    let bytes = std::fs::read(&path).expect("frames");
    let mut d = edgeflow_telemetry::Decoder::new();
    let mut events = d.push(&bytes);
    events.extend(d.finish());
    let frames: Vec<_> = events
        .into_iter()
        .map(|e| match e {
            edgeflow_telemetry::Event::Frame(f) => f,
            edgeflow_telemetry::Event::Error(e) => panic!("bad frame: {e}"),
        })
        .collect();
    assert_eq!(frames.len(), 8, "hello + 7 predictions");
    assert!(frames
        .iter()
        .all(|f| f.header.device_id == 42 && f.header.model_hash == hash));
    assert!(matches!(frames[0].body, edgeflow_telemetry::Body::Hello(_)));
    for (f, r) in frames[1..]
        .iter()
        .zip(a["results"].as_array().expect("results"))
    {
        match &f.body {
            edgeflow_telemetry::Body::Prediction(p) => {
                assert_eq!(Value::from(p.class), r["top"][0]["class"])
            }
            other => panic!("expected a prediction, got {other:?}"),
        }
    }
    assert_eq!(d.stats().missing_frames, 0);
}

#[test]
fn concurrent_clients_and_graceful_shutdown() {
    let limits = Limits {
        max_in_flight: 2,
        ..Limits::default()
    };
    let mut srv = serve(artifact(&LABELS), None, limits);
    let rows: Vec<Vec<f32>> = signal(100).iter().map(|r| r.to_vec()).collect();
    let req = Arc::new(serde_json::json!({ "samples": rows }).to_string());
    let (_, want) = json(srv.addr, "POST", "/v1/predict", &req);
    let addr = srv.addr;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let req = req.clone();
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| json(addr, "POST", "/v1/predict", &req))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for c in clients {
        for (code, v) in c.join().expect("client") {
            assert_eq!(code, 200, "{v}");
            assert_eq!(v["results"], want["results"]);
        }
    }
    // 8 clients, but never more than 2 requests handled at once.
    let (_, t) = request(addr, "GET", "/metrics", "text/plain", b"");
    let t = String::from_utf8_lossy(&t);
    let peak: i64 = t
        .lines()
        .find_map(|l| l.strip_prefix("edgeflow_requests_in_flight_peak "))
        .and_then(|v| v.trim().parse().ok())
        .expect("peak gauge");
    assert!(
        (1..=2).contains(&peak),
        "in-flight peak {peak} with --max-in-flight 2"
    );
    // A stream in flight when shutdown starts is finished before the server returns.
    let flat: Vec<u8> = signal(100)
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"POST /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    let (first, rest) = flat.split_at(400);
    s.write_all(format!("{:x}\r\n", first.len()).as_bytes())
        .expect("w");
    s.write_all(first).expect("w");
    s.write_all(b"\r\n").expect("w");
    std::thread::sleep(std::time::Duration::from_millis(200));
    if let Some(stop) = srv.stop.take() {
        let _ = stop.send(());
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    s.write_all(format!("{:x}\r\n", rest.len()).as_bytes())
        .expect("w");
    s.write_all(rest).expect("w");
    s.write_all(b"\r\n0\r\n\r\n").expect("w");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let (c, body) = parse_response(&raw);
    assert_eq!(c, 200);
    assert_eq!(
        String::from_utf8_lossy(&body).lines().count(),
        7,
        "{}",
        String::from_utf8_lossy(&body)
    );
    srv.stop();
    // After shutdown nothing listens.
    assert!(TcpStream::connect(addr).is_err());
}
