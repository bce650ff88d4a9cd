//! The HTTP API (axum on tokio).
//!
//! | method, path | what |
//! |---|---|
//! | `POST /v1/predict[?top=K]` | one request (JSON or `.npy`, see [`crate::decode`]) → `{"results": [...]}`, each result as in `edgeflow run --json` |
//! | `POST /v1/stream` | continuous classification: the request body is a stream of little-endian `f32` samples (interleaved axes, any chunking); the response streams one JSON line per window the pipeline completes (its framing: `window` time steps every `stride`): `window` (1, 2, …), `class`, `label`, `score` (the device's top-1) |
//! | `GET /v1/model` | labels, input and output specs, pipeline, metadata, model hash |
//! | `GET /healthz` | `ok` and the model hash |
//! | `GET /metrics` | Prometheus text ([`crate::metrics`]) |
//! | `POST /admin/reload` | re-reads the artifact file; a valid one is swapped in atomically, an invalid one is refused (422) and the old model keeps serving |
//!
//! A stream is not bounded by `--max-body` (it is continuous by design); at most
//! `--max-streams` run at once, and each ends when its client ends the body.
//!
//! Errors are JSON `{"error": "..."}` with 400 (malformed or wrongly shaped input, naming
//! what is wrong), 413 (body over `--max-body`), 415 (content type), 422 (refused reload),
//! 503 (too many streams) or 500 (the engine failed). Requests wait for one of
//! `--max-in-flight` slots (tower's concurrency limit) before they are handled.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::model::{PipelineInput, Request, Served};
use crate::telemetry::{Event, Telemetry};
use crate::{decode, metrics::Metrics, ServeError};

/// Limits and defaults of the HTTP server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body, bytes (`/v1/predict`).
    pub max_body: usize,
    /// Requests handled at once; more wait.
    pub max_in_flight: usize,
    /// Concurrent `/v1/stream` connections; more get 503.
    pub max_streams: usize,
    /// Top classes per result unless `?top=K`.
    pub top: usize,
    /// Largest arena a (re)loaded model may need.
    pub max_arena: usize,
    /// Threads one inference may use for its large ops (`--op-threads`; 1: none).
    pub op_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4 << 20,
            max_in_flight: 64,
            max_streams: 16,
            top: 3,
            max_arena: crate::model::DEFAULT_MAX_ARENA,
            op_threads: 1,
        }
    }
}

/// What every handler shares: the model (swapped whole on reload), where it came from,
/// limits, metrics and the telemetry link.
pub struct AppState {
    model: RwLock<Arc<Served>>,
    path: Option<PathBuf>,
    limits: Limits,
    streams: Arc<Semaphore>,
    /// Request counters for `/metrics`.
    pub metrics: Metrics,
    telemetry: Telemetry,
}

impl AppState {
    /// State serving `model`, loaded from `path` (the file `/admin/reload` re-reads).
    pub fn new(
        model: Served,
        path: Option<PathBuf>,
        limits: Limits,
        telemetry: Telemetry,
    ) -> Arc<Self> {
        let model = Arc::new(model);
        let metrics = Metrics::default();
        metrics.set_model(model.hash);
        telemetry.send(Event::Model(model.clone()));
        Arc::new(AppState {
            model: RwLock::new(model),
            path,
            streams: Arc::new(Semaphore::new(limits.max_streams)),
            limits,
            metrics,
            telemetry,
        })
    }

    /// The server's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The artifact file reloads read.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The model serving now.
    pub fn model(&self) -> Arc<Served> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the artifact file and swaps it in if it validates; otherwise the current
    /// model keeps serving and the error says why the new one was refused.
    pub fn reload(&self) -> Result<Arc<Served>, ServeError> {
        let r = (|| {
            let path = self.path.as_ref().ok_or_else(|| {
                ServeError::BadRequest("the server was not started from a file".into())
            })?;
            let bytes = std::fs::read(path).map_err(|e| ServeError::Artifact {
                origin: path.display().to_string(),
                what: format!("cannot read: {e}"),
            })?;
            Ok(Served::load(bytes, &origin(path), self.limits.max_arena)?
                .with_op_threads(self.limits.op_threads))
        })();
        match r {
            Ok(m) => {
                let m = Arc::new(m);
                *self.model.write().unwrap_or_else(|p| p.into_inner()) = m.clone();
                self.metrics.set_model(m.hash);
                self.metrics.reload(true);
                self.telemetry.send(Event::Model(m.clone()));
                Ok(m)
            }
            Err(e) => {
                self.metrics.reload(false);
                Err(e)
            }
        }
    }

    /// Counts one inference and sends it to telemetry: the model input bytes, the output
    /// bytes (top-1 is taken from them as the device does), the latency, and how many of
    /// the input's frames are new ([`crate::model::Outcome::new_frames`]).
    pub fn observe(
        &self,
        m: &Served,
        features: &[u8],
        output: &[u8],
        latency_us: u32,
        new_frames: u32,
    ) {
        self.metrics.inferences(1);
        if !self.telemetry.is_on() {
            return;
        }
        let values = m.dequantize(output);
        let (class, score) =
            values
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                });
        self.observe_top1(
            m,
            features,
            (class, score as f32),
            latency_us,
            new_frames,
            false,
        );
    }

    /// As [`AppState::observe`] with the top-1 already known.
    pub fn observe_top1(
        &self,
        m: &Served,
        features: &[u8],
        (class, score): (usize, f32),
        latency_us: u32,
        new_frames: u32,
        count: bool,
    ) {
        if count {
            self.metrics.inferences(1);
        }
        if !self.telemetry.is_on() {
            return;
        }
        self.telemetry.send(Event::Inference {
            features: m.features_f32(features),
            new_frames,
            class,
            score,
            latency_us,
        });
    }
}

/// The name a model file is known by (its file name).
pub fn origin(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A JSON error answer.
fn error(code: StatusCode, msg: impl std::fmt::Display) -> Response {
    (code, Json(json!({ "error": msg.to_string() }))).into_response()
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let code = match &self {
            ServeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServeError::Artifact { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        error(code, self)
    }
}

/// The router with every route, the body limit, the in-flight limit and the metrics layer.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = state.limits.clone();
    Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/stream", post(stream))
        .route("/v1/model", get(model_info))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/admin/reload", post(reload))
        .fallback(|uri: Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                format!(
                    "no route {}: the API is POST /v1/predict, POST /v1/stream, GET /v1/model, \
                     GET /healthz, GET /metrics, POST /admin/reload",
                    uri.path()
                ),
            )
        })
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            limits.max_in_flight,
        ))
        .with_state(state)
}

/// Counts every request for `/metrics`: route, status, time to the response head.
async fn count(State(s): State<Arc<AppState>>, req: HttpRequest, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let t = Instant::now();
    s.metrics.in_flight(1);
    let r = next.run(req).await;
    s.metrics.in_flight(-1);
    s.metrics.request(&route, r.status().as_u16(), t.elapsed());
    r
}

fn top_param(uri: &Uri, default: usize) -> Result<usize, ServeError> {
    for kv in uri.query().unwrap_or("").split('&') {
        if let Some(v) = kv.strip_prefix("top=") {
            return v.parse::<usize>().ok().filter(|&k| k >= 1).ok_or_else(|| {
                ServeError::BadRequest(format!("top={v:?}: expected a whole number >= 1"))
            });
        }
    }
    Ok(default)
}

fn body_error(e: BytesRejection, limit: usize) -> Response {
    let code = e.status();
    if code == StatusCode::PAYLOAD_TOO_LARGE {
        error(
            code,
            format!(
                "the request body is larger than the server's limit of {limit} bytes (--max-body)"
            ),
        )
    } else {
        error(
            code,
            format!("cannot read the request body: {}", e.body_text()),
        )
    }
}

async fn predict(
    State(s): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let t = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e, s.limits.max_body),
    };
    let top = match top_param(&uri, s.limits.top) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let npy = match ctype.as_str() {
        "application/x-npy" | "application/octet-stream" => true,
        "application/json" | "" => decode::is_npy(&body),
        other => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                "content type {other:?}: send application/json or application/x-npy (a .npy array)"
            ),
            )
        }
    };
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "empty request body: send a JSON object or a .npy array",
        );
    }
    let m = s.model();
    let s2 = s.clone();
    let r = tokio::task::spawn_blocking(move || {
        let req = if npy {
            decode::npy_request(&m, &body)?
        } else {
            decode::json_request(&m, &body)?
        };
        let outs = m.predict(&req)?;
        let us = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        for o in &outs {
            s2.observe(&m, &o.features, &o.output, us, o.new_frames);
        }
        let results: Vec<_> = outs.iter().map(|o| m.result_json(o, top)).collect();
        Ok::<_, ServeError>(json!({
            "model_hash": format!("{:08x}", m.hash),
            "input_kind": match req { Request::Features(_) => "features", Request::Samples(_) => "samples" },
            "output_shape": m.output.shape,
            "output_dtype": m.output.dtype,
            "results": results,
        }))
    })
    .await;
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("inference task failed: {e}"),
        ),
    }
}

async fn stream(State(s): State<Arc<AppState>>, body: Body) -> Response {
    let m = s.model();
    let Some(PipelineInput::Signal { axes, .. }) = m.pipeline else {
        return error(
            StatusCode::BAD_REQUEST,
            "streaming needs an artifact whose feature pipeline takes a signal; use POST /v1/predict",
        );
    };
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many streams (--max-streams {}); retry later",
                s.limits.max_streams
            ),
        );
    };
    let (tx_in, mut rx_in) = tokio::sync::mpsc::channel::<Bytes>(16);
    let (tx_out, mut rx_out) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let fail = |tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, msg: String| {
            let line = json!({ "error": msg }).to_string() + "\n";
            let _ = tx.blocking_send(Ok(Bytes::from(line)));
        };
        let model = match edgeflow::Model::parse(m.bytes()) {
            Ok(x) => x,
            Err(e) => return fail(&tx_out, e.to_string()),
        };
        let mut ws = vec![0f32; model.workspace_len()];
        // Aligned as the plan asks on every host (u128 words are only 8-byte aligned on
        // 32-bit ARM Linux, which the armv7 test run caught).
        let mut arena = match edgeflow_nn::HostArena::for_model(model.nn()) {
            Ok(a) => a,
            Err(_) => return fail(&tx_out, "cannot allocate the arena".to_string()),
        };
        let mut engine = match edgeflow::Engine::new(&model, &mut ws, arena.as_mut_bytes()) {
            Ok(e) => e,
            Err(e) => return fail(&tx_out, e.to_string()),
        };
        let mut carry: Vec<u8> = Vec::new();
        let mut window = 0u64;
        let mut since = Instant::now();
        while let Some(chunk) = rx_in.blocking_recv() {
            carry.extend_from_slice(&chunk);
            let whole = carry.len() / 4 * 4;
            let samples: Vec<f32> = carry[..whole]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            carry.drain(..whole);
            let mut feats: Vec<(Vec<u8>, u32)> = Vec::new();
            let mut preds = Vec::new();
            let r = engine.push_observed_frames(
                &samples,
                |f, n| feats.push((f.to_vec(), n)),
                |p| {
                    window += 1;
                    let us = since.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    since = Instant::now();
                    preds.push((window, p, us));
                },
            );
            for ((w, p, us), (f, n)) in preds.into_iter().zip(feats) {
                s2.observe_top1(&m, &f, (p.class, p.score), us, n, true);
                let line = json!({
                    "window": w,
                    "class": p.class,
                    "label": m.label(p.class),
                    "score": p.score,
                })
                .to_string()
                    + "\n";
                if tx_out.blocking_send(Ok(Bytes::from(line))).is_err() {
                    return;
                }
            }
            if let Err(e) = r {
                return fail(&tx_out, format!("stream: {e}"));
            }
        }
        if !carry.is_empty() {
            fail(
                &tx_out,
                format!(
                    "the stream ended with {} stray bytes: samples are little-endian f32, {axes} per time step",
                    carry.len()
                ),
            );
        }
    });
    tokio::spawn(async move {
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            match chunk {
                Ok(b) => {
                    if tx_in.send(b).await.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let out = futures_util::stream::poll_fn(move |cx| rx_out.poll_recv(cx));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(out))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn model_info(State(s): State<Arc<AppState>>) -> Response {
    Json(s.model().describe()).into_response()
}

async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    Json(json!({ "status": "ok", "model_hash": format!("{:08x}", s.model().hash) })).into_response()
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

async fn reload(State(s): State<Arc<AppState>>) -> Response {
    let s2 = s.clone();
    let old = s.model().hash;
    match tokio::task::spawn_blocking(move || s2.reload()).await {
        Ok(Ok(m)) => Json(json!({
            "status": "reloaded",
            "model_hash": format!("{:08x}", m.hash),
            "previous_model_hash": format!("{old:08x}"),
        }))
        .into_response(),
        Ok(Err(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": format!("new model refused: {e}"),
                "serving": format!("{old:08x}"),
            })),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
