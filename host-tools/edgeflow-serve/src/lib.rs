//! `edgeflow serve`: the artifact a microcontroller runs, served on a Linux board (or any
//! host) over HTTP, or over stdin/stdout for pipes.
//!
//! - [`model`]: the validated artifact and one prediction, computed exactly as
//!   `edgeflow run` computes it (same pipeline code, same kernels, same dequantization);
//! - [`decode`]: JSON and `.npy` request bodies;
//! - [`http`]: the axum routes (`/v1/predict`, `/v1/stream`, `/v1/model`, `/healthz`,
//!   `/metrics`, `/admin/reload`), body limit, in-flight limit, graceful shutdown;
//! - [`telemetry`]: the device's telemetry frames for `edgeflow monitor ingest`;
//! - [`lines`]: the stdin/stdout line mode.
//!
//! The crate depends only on the run-time crates (no training, no importers), so it and
//! its `edgeflow-serve` binary cross-build for `aarch64-unknown-linux-gnu` in a minute.
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub mod decode;
pub mod http;
pub mod lines;
pub mod metrics;
pub mod model;
pub mod telemetry;

pub use http::{AppState, Limits};
pub use model::Served;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The artifact cannot be served (file, format, pipeline, arena).
    #[error("{origin}: {what}")]
    Artifact {
        /// The file.
        origin: String,
        /// What is wrong.
        what: String,
    },
    /// The request is malformed or does not fit the model (a 4xx answer).
    #[error("{0}")]
    BadRequest(String),
    /// The engine failed on a valid request.
    #[error("inference failed: {0}")]
    Inference(#[from] InferenceError),
    /// Socket, signal or stdio failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why the engine failed on a request that was valid (see [`ServeError::Inference`]): the
/// artifact was validated at load, so each of these is a bug or a resource limit.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The run-time refused the model, an input or a step.
    #[error("{0}")]
    Nn(#[from] edgeflow_nn::Error),
    /// The artifact's sections no longer parse.
    #[error("{0}")]
    Artifact(#[from] edgeflow_format::FormatError),
    /// The artifact's feature pipeline section does not decode.
    #[error("feature pipeline: {0}")]
    Pipeline(#[from] edgeflow_dsp::Error),
    /// The host could not allocate the arena.
    #[error("cannot allocate the arena ({bytes} bytes)")]
    Arena {
        /// The arena size the model asks for.
        bytes: usize,
    },
    /// The pipeline's feature tensor is not the model input's size.
    #[error("the feature pipeline gives {got} bytes, the model input needs {need}")]
    FeatureBytes {
        /// Bytes the pipeline gave.
        got: usize,
        /// Bytes the model input takes.
        need: usize,
    },
}

/// `edgeflow serve ARTIFACT …` (also the `edgeflow-serve` binary).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The edgeflow artifact to serve (convert a .tflite first: `edgeflow convert`).
    pub artifact: PathBuf,
    /// Address to listen on. Keep it on loopback unless a proxy or firewall guards it:
    /// `/admin/reload` has no authentication.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Line mode: read one JSON request per stdin line, write one JSON answer per stdout
    /// line (no HTTP).
    #[arg(long)]
    pub stdin: bool,
    /// Top classes per result (unless `?top=K`).
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_body: usize,
    /// Requests handled at once; more wait for a slot.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Concurrent `/v1/stream` connections; more are refused with 503.
    #[arg(long, default_value_t = 16)]
    pub max_streams: usize,
    /// Largest arena a model may need, in bytes (default 256 MiB).
    #[arg(long, default_value_t = model::DEFAULT_MAX_ARENA)]
    pub max_arena: usize,
    /// Reload the artifact when its file changes (checked every second); a bad file is
    /// refused and the old model keeps serving. SIGHUP and `POST /admin/reload` reload too.
    #[arg(long)]
    pub watch: bool,
    /// Write telemetry frames (as a device sends them) here: a file (appended), or
    /// `tcp://HOST:PORT` (e.g. `edgeflow monitor ingest --listen`).
    #[arg(long)]
    pub telemetry: Option<String>,
    /// Device id written into telemetry frames.
    #[arg(long, default_value_t = 1)]
    pub device_id: u64,
    /// Board name in the telemetry hello.
    #[arg(long, default_value = "linux")]
    pub board: String,
    /// Send a telemetry summary every this many inferences (0: only at reload and exit).
    #[arg(long, default_value_t = 100)]
    pub summary_every: u32,
    /// Worker threads for the HTTP runtime (default: the number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Threads one inference may use for its large ops (CONV_2D split by output pixels;
    /// results identical to one thread). Default 1: concurrent requests already use the
    /// cores.
    #[arg(long, default_value_t = 1)]
    pub op_threads: usize,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Loads the artifact named by `args`.
pub fn load(path: &std::path::Path, max_arena: usize) -> Result<Served, ServeError> {
    let bytes = std::fs::read(path).map_err(|e| ServeError::Artifact {
        origin: path.display().to_string(),
        what: format!("cannot read: {e}"),
    })?;
    if bytes.get(4..7) == Some(b"TFL") {
        return Err(ServeError::Artifact {
            origin: path.display().to_string(),
            what: "is a .tflite model; convert it first: edgeflow convert MODEL.tflite -o MODEL.edgeflow"
                .into(),
        });
    }
    Served::load(bytes, &http::origin(path), max_arena)
}

fn open_telemetry(
    args: &ServeArgs,
) -> Result<(telemetry::Telemetry, Option<std::thread::JoinHandle<()>>), ServeError> {
    let Some(t) = &args.telemetry else {
        return Ok((telemetry::Telemetry::off(), None));
    };
    let sink: Box<dyn std::io::Write + Send> = match t.strip_prefix("tcp://") {
        Some(addr) => Box::new(
            std::net::TcpStream::connect(addr)
                .map_err(io(format!("telemetry: cannot connect to {addr}")))?,
        ),
        None => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(t)
                .map_err(io(format!("telemetry: cannot open {t}")))?,
        ),
    };
    let (tx, h) =
        telemetry::Telemetry::start(sink, args.device_id, args.board.clone(), args.summary_every);
    Ok((tx, Some(h)))
}

/// Runs `edgeflow serve`: the line mode with `--stdin`, else the HTTP server until SIGINT
/// or SIGTERM (in-flight requests are finished first). Returns an error (for a non-zero
/// exit) when the artifact cannot be served, the address cannot be bound, or in line mode
/// when any line failed.
pub fn run(args: ServeArgs) -> Result<(), ServeError> {
    let model = load(&args.artifact, args.max_arena)?.with_op_threads(args.op_threads);
    let (tel, tel_thread) = open_telemetry(&args)?;
    let limits = Limits {
        max_body: args.max_body,
        max_in_flight: args.max_in_flight.max(1),
        max_streams: args.max_streams.max(1),
        top: args.top.max(1),
        max_arena: args.max_arena,
        op_threads: args.op_threads.max(1),
    };
    let state = AppState::new(model, Some(args.artifact.clone()), limits, tel);
    let r = if args.stdin {
        lines::run(&state, std::io::stdin().lock(), std::io::stdout().lock())
    } else {
        let mut rt = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = args.threads {
            rt.worker_threads(n.max(1));
        }
        let rt = rt
            .enable_all()
            .build()
            .map_err(io("cannot start the runtime"))?;
        rt.block_on(serve(state.clone(), args.listen, args.watch))
    };
    drop(state);
    if let Some(h) = tel_thread {
        // The last summary is written once every sender is gone.
        let _ = h.join();
    }
    r
}

/// Binds `addr`, prints `listening on http://ADDR` on stdout, and serves until SIGINT or
/// SIGTERM; then stops accepting, finishes the requests in flight and returns.
pub async fn serve(state: Arc<AppState>, addr: SocketAddr, watch: bool) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(io(format!("cannot listen on {addr}")))?;
    let local = listener.local_addr().map_err(io("local address"))?;
    {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "listening on http://{local}");
        let _ = o.flush();
    }
    let m = state.model();
    eprintln!(
        "serving {} (model {:08x}, input {:?} {}{})",
        m.origin,
        m.hash,
        m.input.shape,
        m.input.dtype,
        if m.pipeline.is_some() {
            ", with its feature pipeline"
        } else {
            ""
        }
    );
    drop(m);
    serve_on(state, listener, watch, shutdown_signal()).await
}

/// Serves on an already bound `listener` until `shutdown` completes; then stops accepting,
/// finishes the requests in flight and returns. `watch`: reload when the file changes.
pub async fn serve_on(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    watch: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let reloader = tokio::spawn(reload_triggers(state.clone(), watch));
    let app = http::router(state);
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io("serving"));
    reloader.abort();
    eprintln!("shut down");
    r
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("shutting down: finishing requests in flight");
}

/// SIGHUP and (with `watch`) a changed artifact file trigger a reload.
async fn reload_triggers(state: Arc<AppState>, watch: bool) {
    let stamp = |s: &AppState| {
        s.path()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut last = stamp(&state);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        #[cfg(unix)]
        let hup_fired = async {
            match hup.as_mut() {
                Some(h) => h.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fired = std::future::pending::<bool>();
        let why = tokio::select! {
            _ = tick.tick(), if watch => {
                let now = stamp(&state);
                if now == last { continue; }
                last = now;
                "file changed"
            }
            true = hup_fired => "SIGHUP",
        };
        let s = state.clone();
        match tokio::task::spawn_blocking(move || s.reload()).await {
            Ok(Ok(m)) => eprintln!("reloaded ({why}): now serving model {:08x}", m.hash),
            Ok(Err(e)) => eprintln!("reload ({why}) refused, the old model keeps serving: {e}"),
            Err(e) => eprintln!("reload ({why}) failed: {e}"),
        }
    }
}
