//! `edgeflow monitor`: collect device telemetry into SQLite, check it against the artifact's
//! monitoring baseline, report it, label it, export it, and show it live.
//!
//! - `ingest`: telemetry frames from a serial port, an emulated board's UART (TCP), a file,
//!   stdin or an MQTT broker into a SQLite database (`--db`), committed in batches;
//!   `--print-acks` prints `acked N` after every commit (N = frames durably stored).
//! - `check`: analyse windows against the baseline of their model; exits 1 naming device,
//!   model, feature, test and threshold when a threshold is crossed, or naming device and
//!   model when windows of a model without a given baseline were not checked.
//! - `report -o report.html`: an HTML report with charts.
//! - `label`: late ground truth for prediction frames (realised accuracy).
//! - `export`: a window of frames as Parquet.
//! - `serve`: a live page on localhost that refreshes as frames arrive.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use edgeflow_monitor::analysis::Thresholds;
use edgeflow_monitor::baseline::Baseline;
use edgeflow_monitor::ingest::{now_us, BatchPolicy, Link};
use edgeflow_monitor::store::{Durability, Store};
use edgeflow_monitor::windows::{
    analyze_windows_by_model, artifact_model, collect_windows_in, Baselines, Select, Window,
    WindowBy,
};
use edgeflow_monitor::WindowReport;

pub(crate) mod report;
mod serve;

/// `edgeflow monitor …`
#[derive(Subcommand)]
pub enum MonitorCommand {
    /// Store telemetry frames from a device link or an MQTT broker.
    Ingest(IngestArgs),
    /// Check windows against the baseline; exit 1 if a threshold is crossed.
    Check(CheckArgs),
    /// Write an HTML report with charts.
    Report(ReportArgs),
    /// Record true labels of predictions (device, sequence number, label).
    Label(LabelArgs),
    /// Export stored frames as Parquet.
    Export(ExportArgs),
    /// Serve a live monitoring page on localhost.
    Serve(ServeArgs),
}

/// Where telemetry comes from (exactly one).
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
pub struct Source {
    /// Connect to HOST:PORT and read (an emulated board's UART, e.g. QEMU `-serial tcp::PORT,server`).
    #[arg(long)]
    tcp: Option<String>,
    /// Listen on ADDR:PORT; every device that connects is a stream.
    #[arg(long)]
    listen: Option<String>,
    /// A serial port (e.g. /dev/ttyACM0); see --baud.
    #[arg(long)]
    serial: Option<String>,
    /// A file of telemetry bytes.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Read telemetry bytes from standard input.
    #[arg(long)]
    stdin: bool,
    /// An MQTT broker HOST:PORT; see --topic.
    #[arg(long)]
    mqtt: Option<String>,
}

/// `edgeflow monitor ingest`
#[derive(Args)]
pub struct IngestArgs {
    /// The SQLite database (created if missing).
    #[arg(long)]
    db: PathBuf,
    #[command(flatten)]
    source: Source,
    /// Serial baud rate.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// MQTT topic filter; each topic is its own stream.
    #[arg(long, default_value = "edgeflow/+/telemetry")]
    topic: String,
    /// Commit after this many frames…
    #[arg(long, default_value_t = 4096)]
    batch: u64,
    /// …or this many milliseconds after the oldest uncommitted frame.
    #[arg(long, default_value_t = 200)]
    batch_ms: u64,
    /// Delete frames older than this many days (checked once a minute).
    #[arg(long)]
    retention_days: Option<f64>,
    /// Sync every commit to disk (survives power loss; slower).
    #[arg(long)]
    durable: bool,
    /// Print `acked N` on stdout after every commit.
    #[arg(long)]
    print_acks: bool,
    /// Stop after this many seconds (listening and MQTT sources run until stopped).
    #[arg(long)]
    max_seconds: Option<f64>,
    /// Keep retrying to connect (--tcp, --mqtt) for this many seconds.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
}

/// Window selection shared by check, report and serve.
#[derive(Args, Clone)]
pub struct WindowArgs {
    /// The database.
    #[arg(long)]
    db: PathBuf,
    /// A model artifact the devices run, or a directory of them (`*.edgeflow`); repeat for
    /// several models. Each window is compared with the baseline of the artifact whose hash
    /// its frames carry; windows of other models are reported as not checked. A bare
    /// monitoring-baseline section (no model hash) may be given alone, for every model.
    #[arg(long = "baseline", visible_alias = "artifact", required = true)]
    baseline: Vec<PathBuf>,
    /// Only this model (hex hash as stored, e.g. `1a2b3c4d`).
    #[arg(long)]
    model: Option<String>,
    /// Thresholds TOML (defaults: Evidently's test thresholds).
    #[arg(long)]
    thresholds: Option<PathBuf>,
    /// Only this device (hex id as stored).
    #[arg(long)]
    device: Option<String>,
    /// All devices as one fleet (one group per model).
    #[arg(long)]
    fleet: bool,
    /// Summary frames per window.
    #[arg(long, default_value_t = 10, conflicts_with = "window_seconds")]
    window_summaries: u64,
    /// Receive-time width of a window, seconds (instead of --window-summaries).
    #[arg(long)]
    window_seconds: Option<f64>,
}

/// `edgeflow monitor check`
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    w: WindowArgs,
    /// Check only the last N windows of each device (with --fleet: of each model; 0 = all).
    #[arg(long, default_value_t = 1)]
    last: usize,
}

/// `edgeflow monitor report`
#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    w: WindowArgs,
    /// Output HTML file.
    #[arg(short, long)]
    output: PathBuf,
}

/// `edgeflow monitor label`
#[derive(Args)]
pub struct LabelArgs {
    /// The database.
    #[arg(long)]
    db: PathBuf,
    /// A CSV file `device,seq,label` (header optional).
    #[arg(long, conflicts_with_all = ["device", "seq", "label"])]
    csv: Option<PathBuf>,
    /// Device (hex id as stored).
    #[arg(long, requires_all = ["seq", "label"])]
    device: Option<String>,
    /// Sequence number of the prediction frame.
    #[arg(long)]
    seq: Option<u32>,
    /// True class.
    #[arg(long)]
    label: Option<u16>,
}

/// `edgeflow monitor export`
#[derive(Args)]
pub struct ExportArgs {
    /// The database.
    #[arg(long)]
    db: PathBuf,
    /// Output Parquet file.
    #[arg(long)]
    parquet: PathBuf,
    /// Only this device.
    #[arg(long)]
    device: Option<String>,
    /// Frames received at or after this time (µs since the Unix epoch).
    #[arg(long)]
    since_us: Option<i64>,
    /// Frames received before this time (µs since the Unix epoch).
    #[arg(long)]
    until_us: Option<i64>,
}

/// `edgeflow monitor serve`
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    w: WindowArgs,
    /// Address to serve on (localhost only by default).
    #[arg(long, default_value = "127.0.0.1:8321")]
    addr: String,
    /// Stop after this many seconds.
    #[arg(long)]
    max_seconds: Option<f64>,
}

/// Runs a monitor subcommand.
pub fn run(cmd: MonitorCommand) -> Result<()> {
    match cmd {
        MonitorCommand::Ingest(a) => ingest(a),
        MonitorCommand::Check(a) => check(a),
        MonitorCommand::Report(a) => {
            let baselines = load_baselines(&a.w.baseline)?;
            let thresholds = load_thresholds(a.w.thresholds.as_deref())?;
            let store = open_existing(&a.w.db)?;
            let (windows, reports, devices) = analyse_store(&store, &baselines, &thresholds, &a.w)?;
            let html =
                report::render_models(&a.w.db, &windows, &reports, &devices, &baselines, None)?;
            std::fs::write(&a.output, html)
                .with_context(|| format!("writing {}", a.output.display()))?;
            println!("wrote {} ({} windows)", a.output.display(), windows.len());
            Ok(())
        }
        MonitorCommand::Label(a) => label(a),
        MonitorCommand::Export(a) => {
            let store = open_existing(&a.db)?;
            let n = edgeflow_monitor::export::export_parquet(
                &store,
                a.device.as_deref(),
                a.since_us,
                a.until_us,
                &a.parquet,
            )?;
            println!("wrote {n} frames to {}", a.parquet.display());
            Ok(())
        }
        MonitorCommand::Serve(a) => serve::run(a),
    }
}

fn open_existing(db: &Path) -> Result<Store> {
    if !db.exists() {
        bail!(
            "database {} does not exist (run `edgeflow monitor ingest --db {}` first)",
            db.display(),
            db.display()
        );
    }
    Ok(Store::open(db, Durability::Process)?)
}

/// Reads the monitoring baseline from an artifact, or a bare baseline section.
pub fn load_baseline(path: &Path) -> Result<Baseline> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(a) = edgeflow_format::Artifact::parse(&bytes) {
        let section = a
            .monitoring_baseline
            .with_context(|| format!("{} has no monitoring baseline section", path.display()))?;
        return Baseline::parse(section)
            .with_context(|| format!("monitoring baseline of {}", path.display()));
    }
    Baseline::parse(&bytes).with_context(|| {
        format!(
            "{} is neither an artifact nor a monitoring baseline",
            path.display()
        )
    })
}

/// Reads the baselines given to check/report/serve: each path an artifact (its baseline
/// under its model hash), a directory of artifacts (every `*.edgeflow` in it), or — alone —
/// a bare monitoring-baseline section for every model.
pub fn load_baselines(paths: &[PathBuf]) -> Result<Baselines> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "edgeflow"))
                .collect();
            if found.is_empty() {
                bail!("directory {} holds no *.edgeflow artifact", p.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Baselines::new();
    for f in &files {
        let origin = f.display().to_string();
        let bytes = std::fs::read(f).with_context(|| format!("reading {origin}"))?;
        if let Ok((model, section)) = artifact_model(&bytes) {
            let section =
                section.with_context(|| format!("{origin} has no monitoring baseline section"))?;
            let b = Baseline::parse(section)
                .with_context(|| format!("monitoring baseline of {origin}"))?;
            out.add(&model, &origin, b)?;
        } else {
            let b = Baseline::parse(&bytes).with_context(|| {
                format!("{origin} is neither an artifact nor a monitoring baseline")
            })?;
            out.add_bare(&origin, b)?;
        }
    }
    Ok(out)
}

fn load_thresholds(path: Option<&Path>) -> Result<Thresholds> {
    match path {
        None => Ok(Thresholds::default()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Thresholds::from_toml(&text).with_context(|| format!("thresholds {}", p.display()))
        }
    }
}

/// Windows, each one's report (`None`: its model has no baseline), devices.
type Analysis = (
    Vec<Window>,
    Vec<Option<WindowReport>>,
    Vec<edgeflow_monitor::store::DeviceInfo>,
);

fn analyse_store(
    store: &Store,
    baselines: &Baselines,
    thresholds: &Thresholds,
    w: &WindowArgs,
) -> Result<Analysis> {
    let by = match w.window_seconds {
        Some(s) if s > 0.0 => WindowBy::Micros((s * 1e6) as i64),
        Some(s) => bail!("--window-seconds must be positive, got {s}"),
        None => WindowBy::Summaries(w.window_summaries.max(1)),
    };
    let sel = Select {
        device: w.device.as_deref(),
        model: w.model.as_deref(),
        fleet: w.fleet,
        from_us: None,
        to_us: None,
    };
    let windows = collect_windows_in(store, &sel, by)?;
    let reports = analyze_windows_by_model(store, baselines, thresholds, &windows)?;
    Ok((windows, reports, store.devices()))
}

/// The models `baselines` knows, for messages: `hash (origin), …`.
fn known_models(baselines: &Baselines) -> String {
    let v: Vec<String> = baselines
        .models()
        .map(|(m, o)| format!("{m} ({o})"))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn check(a: CheckArgs) -> Result<()> {
    let baselines = load_baselines(&a.w.baseline)?;
    let thresholds = load_thresholds(a.w.thresholds.as_deref())?;
    let store = open_existing(&a.w.db)?;
    let (windows, reports, devices) = analyse_store(&store, &baselines, &thresholds, &a.w)?;
    if windows.is_empty() {
        bail!("no summary frames in {} to check", a.w.db.display());
    }
    // `--last N`: the newest N windows of each device, or of each model of the fleet.
    let key = |w: &Window| {
        if a.w.fleet {
            (w.group.clone(), w.model.clone())
        } else {
            (w.group.clone(), None)
        }
    };
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| (key(&windows[i]), std::cmp::Reverse(windows[i].start_us)));
    let mut selected = vec![a.last == 0; windows.len()];
    let mut rank: HashMap<(String, Option<String>), usize> = HashMap::new();
    for &i in &order {
        let r = rank.entry(key(&windows[i])).or_default();
        if *r < a.last {
            selected[i] = true;
        }
        *r += 1;
    }
    let (mut alerts, mut checked, mut unchecked) = (0, 0, 0);
    for ((w, r), _) in windows
        .iter()
        .zip(&reports)
        .zip(&selected)
        .filter(|(_, s)| **s)
    {
        let Some(r) = r else {
            unchecked += 1;
            println!(
                "NOT CHECKED device={} model={} window={}..{} summaries={}: no baseline for model {} (given: {})",
                w.group,
                w.model_name(),
                w.start_us,
                w.end_us,
                w.summaries,
                w.model_name(),
                known_models(&baselines)
            );
            continue;
        };
        checked += 1;
        for al in &r.alerts {
            alerts += 1;
            let what = match al.feature {
                Some(f) => format!("feature={f}"),
                None => format!("area={}", al.area),
            };
            println!(
                "ALERT device={} model={} window={}..{} {what} test={} value={:.6} threshold={}",
                w.group,
                w.model_name(),
                w.start_us,
                w.end_us,
                al.test,
                al.value,
                al.threshold
            );
        }
    }
    let mut line = format!(
        "checked {checked} window(s) of {} device(s): {alerts} alert(s)",
        devices.len()
    );
    if unchecked > 0 {
        line.push_str(&format!(
            "; {unchecked} window(s) not checked: their model has no baseline"
        ));
    }
    println!("{line}");
    if alerts > 0 || unchecked > 0 {
        std::io::stdout().flush().ok();
        std::process::exit(1);
    }
    Ok(())
}

fn label(a: LabelArgs) -> Result<()> {
    let mut store = open_existing(&a.db)?;
    let mut n = 0u64;
    if let Some(csv) = &a.csv {
        let text =
            std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || (i == 0 && line.starts_with("device")) {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != 3 {
                bail!(
                    "{}:{}: expected device,seq,label, got {line:?}",
                    csv.display(),
                    i + 1
                );
            }
            let seq: u32 = f[1]
                .parse()
                .with_context(|| format!("{}:{}: seq {:?}", csv.display(), i + 1, f[1]))?;
            let label: u16 = f[2]
                .parse()
                .with_context(|| format!("{}:{}: label {:?}", csv.display(), i + 1, f[2]))?;
            store.add_label(f[0], seq, label)?;
            n += 1;
        }
    } else {
        match (&a.device, a.seq, a.label) {
            (Some(d), Some(s), Some(l)) => {
                store.add_label(d, s, l)?;
                n = 1;
            }
            _ => bail!("give --csv FILE or --device, --seq and --label"),
        }
    }
    store.commit()?;
    println!("stored {n} label(s)");
    Ok(())
}

/// A message from a source thread to the ingest loop.
enum Msg {
    Bytes {
        stream: String,
        bytes: Vec<u8>,
        ack: Option<rumqttc::Publish>,
    },
    End {
        stream: String,
        error: Option<String>,
    },
}

fn ingest(a: IngestArgs) -> Result<()> {
    let durability = if a.durable {
        Durability::PowerLoss
    } else {
        Durability::Process
    };
    let mut store = Store::open(&a.db, durability)?;
    let policy = BatchPolicy {
        frames: a.batch.max(1),
        max_delay: Duration::from_millis(a.batch_ms),
    };
    let (tx, rx) = mpsc::sync_channel::<Msg>(1024);
    let connect_timeout = Duration::from_secs_f64(a.connect_timeout.max(0.0));
    let s = a.source.clone();
    let mut mqtt_client = None;
    let mut finite = true;
    if let Some(addr) = s.tcp {
        let stream = connect_retry(&addr, connect_timeout)?;
        spawn_reader(format!("tcp:{addr}"), Box::new(stream), tx.clone());
    } else if let Some(addr) = s.listen {
        let listener = TcpListener::bind(&addr).with_context(|| format!("listening on {addr}"))?;
        eprintln!("listening on {}", listener.local_addr()?);
        finite = false;
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let peer = conn.peer_addr().map(|p| p.to_string()).unwrap_or_default();
                spawn_reader(format!("tcp:{peer}"), Box::new(conn), tx2.clone());
            }
        });
    } else if let Some(path) = s.serial {
        let port = serialport::new(&path, a.baud)
            .timeout(Duration::from_millis(100))
            .open()
            .with_context(|| format!("opening serial port {path}"))?;
        // Opening flushes the port's buffers: only bytes sent after this line are read.
        eprintln!("reading serial port {path} at {} baud", a.baud);
        spawn_reader(format!("serial:{path}"), Box::new(port), tx.clone());
    } else if let Some(path) = s.file {
        let f =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        spawn_reader(format!("file:{}", path.display()), Box::new(f), tx.clone());
    } else if s.stdin {
        spawn_reader("stdin".into(), Box::new(std::io::stdin()), tx.clone());
    } else if let Some(addr) = s.mqtt {
        finite = false;
        mqtt_client = Some(spawn_mqtt(&addr, &a.topic, connect_timeout, tx.clone())?);
    }
    drop(tx);

    let deadline = a
        .max_seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut links: HashMap<String, Link> = HashMap::new();
    let mut to_ack: Vec<rumqttc::Publish> = Vec::new();
    let mut last_retention = Instant::now() - Duration::from_secs(3600);
    let mut stdout = std::io::stdout();
    let mut oldest: Option<Instant> = None;
    let mut failures = Vec::new();
    let print_acks = a.print_acks;
    let mut commit = |store: &mut Store, to_ack: &mut Vec<rumqttc::Publish>| -> Result<()> {
        if store.pending() == 0 && to_ack.is_empty() {
            return Ok(());
        }
        let n = store.commit()?;
        if let Some(c) = &mqtt_client {
            for p in to_ack.drain(..) {
                let c: &rumqttc::Client = c;
                c.ack(&p).context("acknowledging an MQTT message")?;
            }
        }
        if print_acks {
            writeln!(stdout, "acked {n}")?;
            stdout.flush()?;
        }
        Ok(())
    };
    loop {
        let wait = policy.max_delay.min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(Msg::Bytes { stream, bytes, ack }) => {
                links
                    .entry(stream)
                    .or_insert_with(|| Link::new(policy))
                    .push_no_commit(&mut store, &bytes)?;
                to_ack.extend(ack);
                oldest.get_or_insert_with(Instant::now);
            }
            Ok(Msg::End { stream, error }) => {
                if let Some(mut l) = links.remove(&stream) {
                    l.finish(&mut store, &mut |_| {})?;
                    // finish committed: report it.
                    oldest = None;
                    if print_acks {
                        println!("acked {}", store.commit()?);
                    }
                }
                if let Some(e) = error {
                    eprintln!("{stream}: {e}");
                    failures.push(format!("{stream}: {e}"));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if store.pending() >= policy.frames
            || oldest.is_some_and(|t| t.elapsed() >= policy.max_delay)
        {
            commit(&mut store, &mut to_ack)?;
            oldest = None;
        }
        if let Some(days) = a.retention_days {
            if last_retention.elapsed() >= Duration::from_secs(60) {
                commit(&mut store, &mut to_ack)?;
                let cutoff = now_us() - (days * 86_400e6) as i64;
                let n = store.apply_retention(cutoff)?;
                if n > 0 {
                    eprintln!("retention: deleted {n} frame(s) older than {days} day(s)");
                }
                last_retention = Instant::now();
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    commit(&mut store, &mut to_ack)?;
    let _ = finite;
    let frames = store.frame_count()?;
    for d in store.devices() {
        eprintln!(
            "device {}: {} frames, {} gaps, {} corrupt, model {}",
            d.name,
            d.frames,
            d.gaps,
            d.corrupt,
            d.model_hash.as_deref().unwrap_or("?")
        );
    }
    eprintln!("{frames} frame(s) stored in {}", a.db.display());
    if !failures.is_empty() {
        bail!(
            "{} source(s) failed: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

fn connect_retry(addr: &str, timeout: Duration) -> Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() < timeout => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {addr}")),
        }
    }
}

fn spawn_reader(stream: String, mut r: Box<dyn Read + Send>, tx: mpsc::SyncSender<Msg>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let error = loop {
            match r.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => {
                    let msg = Msg::Bytes {
                        stream: stream.clone(),
                        bytes: buf[..n].to_vec(),
                        ack: None,
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => break Some(e.to_string()),
            }
        };
        let _ = tx.send(Msg::End { stream, error });
    });
}

fn spawn_mqtt(
    addr: &str,
    topic: &str,
    timeout: Duration,
    tx: mpsc::SyncSender<Msg>,
) -> Result<rumqttc::Client> {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("--mqtt wants HOST:PORT, got {addr:?}"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--mqtt port {port:?}"))?;
    let mut opts = MqttOptions::new(
        format!("edgeflow-monitor-{}", std::process::id()),
        host,
        port,
    );
    opts.set_keep_alive(Duration::from_secs(10));
    // Messages are acknowledged (QoS 1 PUBACK) only after the commit that stores them.
    opts.set_manual_acks(true);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(opts, 64);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .context("subscribing")?;
    let start = Instant::now();
    // Wait for the broker's CONNACK (so a wrong address fails here, not silently later) and
    // its SUBACK: only then does the broker route publications to us, so only then may we
    // say "subscribed" (a device publishing before that would lose its frames).
    let mut connected = false;
    loop {
        match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => connected = true,
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) if connected => break,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => {
                if start.elapsed() >= timeout {
                    bail!("connecting to MQTT broker {addr}: {e}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if start.elapsed() >= timeout {
            bail!("no answer from MQTT broker {addr} within {:?}", timeout);
        }
    }
    eprintln!("subscribed to {topic} on {addr}");
    std::thread::spawn(move || {
        for ev in connection.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let msg = Msg::Bytes {
                        stream: format!("mqtt:{}", p.topic),
                        bytes: p.payload.to_vec(),
                        ack: Some(p),
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("mqtt: {e}; reconnecting");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    });
    Ok(client)
}
