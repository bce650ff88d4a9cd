//! A simulated device for tests, demos and benchmarks: runs feature vectors through the
//! same `edgeflow-telemetry` summary accumulator and emitter a device runs, and returns the
//! byte stream it would write on its UART.

use edgeflow_format::baseline::MonitoringBaseline;
use edgeflow_telemetry::{truncated, Emitter, Hello, Prediction, SummaryAccumulator};

/// One inference the simulated device makes.
#[derive(Clone, Debug, PartialEq)]
pub struct Inference {
    /// The model-input feature vector.
    pub features: Vec<f32>,
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
    let window = window.max(1);
    for (i, inf) in inferences.iter().enumerate() {
        let t = (i as u64 + 1) * period_us;
        acc.record(&inf.features, usize::from(inf.class), inf.score);
        if predictions {
            let p = Prediction {
                class: inf.class,
                score: inf.score,
                latency_us: 1000,
            };
            let n = em.frame(t, &p, &mut buf).map_err(SimError::Encode)?;
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
