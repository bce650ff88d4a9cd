//! Load test on loopback: `cargo run --release -p edgeflow-serve --example loadtest -- [CLIENTS] [REQUESTS_PER_CLIENT] [SECONDS]`
//! (defaults 16, 2000, 60).
//!
//! Serves the `fc_int8` conformance model with a 2-axis statistics pipeline (windows of 25
//! steps every 12; the test used by `tests/serve.rs`) in this process, then CLIENTS threads
//! each send REQUESTS_PER_CLIENT `POST /v1/predict` requests of 100 time steps (7 windows,
//! so 7 inferences per request) over one keep-alive connection, stopping early at SECONDS.
//! Bounded in count and time. Prints throughput, latency p50/p90/p99/max, the error count
//! (every non-200 answer or broken connection), and the process's resident memory (server
//! and clients) before the clients start and after every 10 % of the requests (flat from
//! 10 % on = nothing kept per request; the step before it is the client threads and the
//! server's worker pool starting), beside the live heap bytes (allocated and not freed,
//! counted by a wrapper around the system allocator: growth there would be a leak; growth
//! of resident memory alone is the allocator's). The clients' latency buffers are written in full
//! before the first measurement, so their pages are not counted as growth. Exits 1 on any
//! error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgeflow_format::SectionKind;
use edgeflow_serve::{AppState, Limits, Served};

/// The system allocator, counting the bytes allocated and not yet freed, so that the
/// test tells a leak (live bytes growing with the requests) from allocator behaviour
/// (resident memory growing while live bytes stay flat).
struct Counting;

static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

// SAFETY: every method forwards to `System` with the caller's layout and pointer
// unchanged (so `System`'s guarantees hold), and only adds an atomic counter update.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { std::alloc::System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { std::alloc::System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Resident KiB and live heap KiB, as `RSS/live`.
fn mem() -> String {
    format!("{}/{}", rss_kib(), LIVE.load(Ordering::Relaxed) / 1024)
}

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

fn artifact() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures");
    let tfl = std::fs::read(root.join("fc_int8.tflite")).expect("fixture");
    let c = edgeflow_compile::compile(&tfl, "fc_int8").expect("compile");
    let spec = edgeflow_dsp::host::from_toml(PIPELINE, "<loadtest>").expect("pipeline");
    let a = edgeflow::host::attach_pipeline(&c.artifact, &spec).expect("attach");
    let p = edgeflow_format::Artifact::parse(&a).expect("artifact");
    let labels: Vec<String> = ["standing", "walking", "running", "badminton", "other"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let lb = edgeflow_format::labels::encode(&labels).expect("labels");
    edgeflow_format::write::assemble(&[
        (SectionKind::Graph, p.graph),
        (SectionKind::Weights, p.weights),
        (
            SectionKind::FeaturePipeline,
            p.feature_pipeline.expect("pipeline"),
        ),
        (SectionKind::Labels, &lb),
    ])
    .expect("assemble")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// One keep-alive request; returns the status, or None if the connection broke.
fn one(r: &mut BufReader<TcpStream>, req: &[u8]) -> Option<u16> {
    r.get_mut().write_all(req).ok()?;
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status: u16 = line.get(9..12)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(status)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: CLIENTS REQUESTS SECONDS"))
        .collect();
    let clients = args.first().copied().unwrap_or(16) as usize;
    let per_client = args.get(1).copied().unwrap_or(2000);
    let limit = Duration::from_secs(args.get(2).copied().unwrap_or(60));

    let m = Served::load(artifact(), "fc_int8+stats.edgeflow", 1 << 20).expect("load");
    let state = AppState::new(
        m,
        None,
        Limits::default(),
        edgeflow_serve::telemetry::Telemetry::off(),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = l.local_addr().expect("addr");
    l.set_nonblocking(true).expect("nonblocking");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            edgeflow_serve::serve_on(state, l, false, async move {
                let _ = stopped.await;
            })
            .await
        })
    });

    let rows: Vec<[f32; 2]> = (0..100)
        .map(|t| {
            let t = t as f32;
            [(t * 0.37).sin() * 1.5, (t * 0.11).cos() * 0.8]
        })
        .collect();
    let body = serde_json::json!({ "samples": rows }).to_string();
    let req = Arc::new(
        format!(
            "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );

    // Warm-up: every client connection once, then memory is measured.
    {
        let mut r = BufReader::new(TcpStream::connect(addr).expect("connect"));
        for _ in 0..200 {
            assert_eq!(one(&mut r, &req), Some(200), "warm-up request failed");
        }
    }
    // Each client's latency buffer, every page written now (not counted as growth).
    let mut bufs: Vec<Vec<Duration>> = (0..clients)
        .map(|_| vec![Duration::from_nanos(1); per_client as usize])
        .collect();
    bufs.iter_mut().for_each(Vec::clear);
    let rss_start = mem();
    let errors = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let total = per_client * clients as u64;
    // RSS after each tenth of the requests.
    let rss_at: Arc<[std::sync::Mutex<String>; 10]> =
        Arc::new(std::array::from_fn(
            |_| std::sync::Mutex::new(String::new()),
        ));
    let t0 = Instant::now();
    let handles: Vec<_> = bufs
        .into_iter()
        .map(|mut lat| {
            let (req, errors, done) = (req.clone(), errors.clone(), done.clone());
            let rss_at = rss_at.clone();
            std::thread::spawn(move || {
                let mut r = match TcpStream::connect(addr) {
                    Ok(s) => BufReader::new(s),
                    Err(_) => {
                        errors.fetch_add(per_client, Ordering::Relaxed);
                        return lat;
                    }
                };
                for _ in 0..per_client {
                    if t0.elapsed() > limit {
                        break;
                    }
                    let t = Instant::now();
                    match one(&mut r, &req) {
                        Some(200) => lat.push(t.elapsed()),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            match TcpStream::connect(addr) {
                                Ok(s) => r = BufReader::new(s),
                                Err(_) => break,
                            }
                        }
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    for (i, slot) in rss_at.iter().enumerate() {
                        if n == total * (i as u64 + 1) / 10 {
                            if let Ok(mut s) = slot.lock() {
                                *s = mem();
                            }
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client"))
        .collect();
    let wall = t0.elapsed();
    let rss_end = mem();
    let _ = stop.send(());
    server.join().expect("server").expect("serve");
    lat.sort();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ok = lat.len();
    let errs = errors.load(Ordering::Relaxed);
    println!("edgeflow serve load test: {clients} clients x {per_client} requests (limit {}s), loopback, keep-alive", limit.as_secs());
    println!("  request: POST /v1/predict, JSON, 100 steps x 2 axes -> 7 windows (7 inferences)");
    println!(
        "  cpus: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("  ok {ok}, errors {errs}, wall {:.2} s", wall.as_secs_f64());
    println!(
        "  throughput {:.0} requests/s ({:.0} inferences/s)",
        ok as f64 / wall.as_secs_f64(),
        7.0 * ok as f64 / wall.as_secs_f64()
    );
    println!(
        "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        ms(q(0.50)),
        ms(q(0.90)),
        ms(q(0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    let tenths: Vec<String> = rss_at
        .iter()
        .map(|a| a.lock().map(|s| s.clone()).unwrap_or_default())
        .collect();
    println!(
        "  memory KiB (resident/live heap): before the clients {rss_start}; after each 10% {}; at the end {rss_end}",
        tenths.join(" ")
    );
    if errs > 0 {
        std::process::exit(1);
    }
}
