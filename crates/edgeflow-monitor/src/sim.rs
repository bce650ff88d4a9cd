//! A simulated device for tests, demos and benchmarks: runs feature vectors through the
//! same `edgeflow-telemetry` summary accumulator and emitter a device runs, and returns the
//! byte stream it would write on its UART.

use edgeflow_format::baseline::MonitoringBaseline;
use edgeflow_telemetry::{truncated, Emitter, Hello, Level, Log, Prediction, SummaryAccumulator};

/// One inference the simulated device makes.
#[derive(Clone, Debug, PartialEq)]
pub struct Inference {
    /// The model-input feature vector.
    pub features: Vec<f32>,
    /// Frames of a framed model input that are new since the previous inference (the
    /// device's `Engine::push_observed_frames`); only a baseline with a frame-layout trailer (a frame
    /// layout) looks at it, and 0 or 1 counts the newest frame only.
    pub new_frames: u32,
    /// Predicted class.
    pub class: u16,
    /// Top-1 score.
    pub score: f32,
}

/// Errors of the simulation (a baseline the device would reject, a frame that cannot fit).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The baseline bytes do not validate.
    #[error("baseline: {0}")]
    Baseline(#[from] edgeflow_format::baseline::BaselineError),
    /// Accumulator storage.
    #[error("accumulator: {0:?}")]
    Accumulator(edgeflow_telemetry::AccumulatorError),
    /// Encoding a frame.
    #[error("encoding a frame: {0:?}")]
    Encode(edgeflow_telemetry::EncodeError),
}

/// How a simulated device sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// A summary frame every this many inferences (and one for the last, partial window).
    pub window: usize,
    /// One prediction frame per inference.
    pub predictions: bool,
    /// Timestamp step per inference, microseconds.
    pub period_us: u64,
    /// An info log frame every this many inferences (0: none). Logs take sequence numbers
    /// from the same counter as every other frame, as on the device.
    pub log_every: usize,
}

/// Streams `inferences` as device `device_id`: a hello frame, then (optionally) one
/// prediction frame per inference, and a summary frame every `window` inferences (the last,
/// partial window too). Timestamps advance `period_us` per inference.
pub fn device_stream(
    baseline: &[u8],
    device_id: u64,
    model_hash: u32,
    inferences: &[Inference],
    window: usize,
    predictions: bool,
    period_us: u64,
) -> Result<Vec<u8>, SimError> {
    stream(
        baseline,
        device_id,
        model_hash,
        inferences,
        &StreamOptions {
            window,
            predictions,
            period_us,
            log_every: 0,
        },
    )
}

/// [`device_stream`] with every option, log frames included.
pub fn stream(
    baseline: &[u8],
    device_id: u64,
    model_hash: u32,
    inferences: &[Inference],
    o: &StreamOptions,
) -> Result<Vec<u8>, SimError> {
    let base = MonitoringBaseline::parse(baseline)?;
    let mut store = vec![0u32; SummaryAccumulator::words_needed(&base)];
    let mut acc = SummaryAccumulator::new(base, &mut store, 0).map_err(SimError::Accumulator)?;
    let mut em = Emitter::new(device_id, model_hash);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let hello = Hello {
        firmware: truncated("edgeflow-sim"),
        board: truncated("host"),
        model: truncated("sim"),
        artifact_version: (1, 0),
        slot: 255,
        slot_sequence: 0,
        arena_bytes: 0,
    };
    let n = em.frame(0, &hello, &mut buf).map_err(SimError::Encode)?;
    out.extend_from_slice(&buf[..n]);
    let window = o.window.max(1);
    for (i, inf) in inferences.iter().enumerate() {
        let t = (i as u64 + 1) * o.period_us;
        acc.record_frames(
            &inf.features,
            inf.new_frames,
            usize::from(inf.class),
            inf.score,
        );
        if o.predictions {
            let p = Prediction {
                class: inf.class,
                score: inf.score,
                latency_us: 1000,
            };
            let n = em.frame(t, &p, &mut buf).map_err(SimError::Encode)?;
            out.extend_from_slice(&buf[..n]);
        }
        if o.log_every > 0 && (i + 1) % o.log_every == 0 {
            let log = Log {
                level: Level::Info,
                message: truncated("sim: still running"),
            };
            let n = em.frame(t, &log, &mut buf).map_err(SimError::Encode)?;
            out.extend_from_slice(&buf[..n]);
        }
        if acc.inferences() as usize >= window || i + 1 == inferences.len() {
            let n = em.summary(t, &acc, &mut buf).map_err(SimError::Encode)?;
            out.extend_from_slice(&buf[..n]);
            acc.reset(t);
        }
    }
    Ok(out)
}
