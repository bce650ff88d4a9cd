//! `edgeflow monitor serve`: the report as a live page. `/` renders the report from the
//! database on every request and polls `/api/version` (the newest frame id) every second,
//! reloading when new frames have arrived; `/api/status` gives devices and alerts as JSON.

use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use axum::Router;

use super::{analyse_store, load_baselines, load_thresholds, open_existing, ServeArgs, WindowArgs};

const LIVE_SCRIPT: &str = r#"<script>
let seen = null;
async function poll() {
  try {
    const r = await fetch('/api/version');
    const v = await r.json();
    if (seen !== null && v.newest !== seen) { location.reload(); return; }
    seen = v.newest;
  } catch (e) {}
  setTimeout(poll, 1000);
}
poll();
</script>"#;

#[derive(Clone)]
struct AppState {
    w: WindowArgs,
}

fn page(w: &WindowArgs) -> Result<String> {
    let baselines = load_baselines(&w.baseline)?;
    let thresholds = load_thresholds(w.thresholds.as_deref())?;
    let store = open_existing(&w.db)?;
    let (windows, reports, devices) = analyse_store(&store, &baselines, &thresholds, w)?;
    super::report::render_models(
        &w.db,
        &windows,
        &reports,
        &devices,
        &baselines,
        Some(LIVE_SCRIPT),
    )
}

async fn index(State(s): State<AppState>) -> impl IntoResponse {
    let w = s.w.clone();
    match tokio::task::spawn_blocking(move || page(&w)).await {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(e)) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e:#}"),
        )
            .into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn version(State(s): State<AppState>) -> impl IntoResponse {
    let db = s.w.db.clone();
    let newest = tokio::task::spawn_blocking(move || {
        open_existing(&db)
            .ok()
            .and_then(|st| st.newest_frame_id().ok().flatten())
    })
    .await
    .ok()
    .flatten();
    Json(serde_json::json!({ "newest": newest }))
}

async fn status(State(s): State<AppState>) -> impl IntoResponse {
    let w = s.w.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
        let baselines = load_baselines(&w.baseline)?;
        let thresholds = load_thresholds(w.thresholds.as_deref())?;
        let store = open_existing(&w.db)?;
        let (windows, reports, devices) = analyse_store(&store, &baselines, &thresholds, &w)?;
        let alerts: Vec<_> = windows
            .iter()
            .zip(&reports)
            .flat_map(|(win, r)| r.iter().flat_map(|r| r.alerts.iter()).map(move |a| serde_json::json!({"device": win.group, "model": win.model, "start_us": win.start_us, "alert": a})))
            .collect();
        // Windows of a model without a baseline, not analysed.
        let unchecked: Vec<_> = windows
            .iter()
            .zip(&reports)
            .filter(|(_, r)| r.is_none())
            .map(|(win, _)| serde_json::json!({"device": win.group, "model": win.model, "start_us": win.start_us}))
            .collect();
        Ok(serde_json::json!({ "devices": devices, "windows": windows.len(), "alerts": alerts, "not_checked": unchecked }))
    })
    .await;
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e:#}"),
        )
            .into_response(),
        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Runs the server until `--max-seconds` (or forever).
pub fn run(a: ServeArgs) -> Result<()> {
    // Fail early on a bad baseline or thresholds file rather than on the first request.
    load_baselines(&a.w.baseline)?;
    load_thresholds(a.w.thresholds.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        println!("serving on http://{}", listener.local_addr()?);
        let app = Router::new()
            .route("/", get(index))
            .route("/api/version", get(version))
            .route("/api/status", get(status))
            .with_state(AppState { w: a.w.clone() });
        let server = axum::serve(listener, app);
        match a.max_seconds {
            Some(s) => {
                let _ = tokio::time::timeout(Duration::from_secs_f64(s.max(0.0)), server).await;
                Ok(())
            }
            None => server.await.context("serving"),
        }
    })
}
