//! Telemetry frames for `edgeflow monitor`, the same a microcontroller running the
//! edgeflow firmware sends: a hello when a model starts serving (at start and after every
//! reload), a prediction frame per inference, and — when the artifact carries a monitoring
//! baseline — a summary frame (the device's [`SummaryAccumulator`] over the dequantized
//! model input) every `summary_every` inferences, at every reload and at shutdown.
//!
//! Frames go to a file (appended; `edgeflow monitor ingest --file`) or to a TCP peer
//! (`edgeflow monitor ingest --listen`), written by one thread so request handlers never
//! block on the link. A failed write is reported once on stderr and telemetry stops; the
//! server keeps serving.

use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use edgeflow_format::baseline::MonitoringBaseline;
use edgeflow_telemetry::{truncated, Emitter, Hello, Prediction, SummaryAccumulator};

use crate::model::Served;

/// What the request handlers tell the telemetry thread.
pub enum Event {
    /// A model started serving.
    Model(Arc<Served>),
    /// One inference: the model input as real numbers, the top-1 class and score, and the
    /// time from request to prediction.
    Inference {
        /// Dequantized model input.
        features: Vec<f32>,
        /// Frames of the input new since the previous inference (`record_frames`).
        new_frames: u32,
        /// Top-1 class.
        class: usize,
        /// Its score.
        score: f32,
        /// Microseconds from the request to the prediction.
        latency_us: u32,
    },
}

/// The sending side; cheap to clone. Dropping every clone ends the thread after a final
/// summary.
#[derive(Clone)]
pub struct Telemetry {
    tx: Option<mpsc::SyncSender<Event>>,
}

impl Telemetry {
    /// No telemetry.
    pub fn off() -> Self {
        Telemetry { tx: None }
    }

    /// Starts the writer thread on `sink`. Returns the sender and the thread handle (join
    /// it after dropping every sender to be sure the last summary is written).
    pub fn start(
        sink: Box<dyn Write + Send>,
        device_id: u64,
        board: String,
        summary_every: u32,
    ) -> (Self, std::thread::JoinHandle<()>) {
        // Bounded: if the link is slower than the server, inferences are dropped from
        // telemetry (counted as sequence gaps would be on a device), never queued forever.
        let (tx, rx) = mpsc::sync_channel(4096);
        let h = std::thread::spawn(move || writer(rx, sink, device_id, board, summary_every));
        (Telemetry { tx: Some(tx) }, h)
    }

    /// Queues an event; drops it if the queue is full or telemetry is off.
    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(e);
        }
    }

    /// Whether telemetry is on.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }
}

fn writer(
    rx: mpsc::Receiver<Event>,
    sink: Box<dyn Write + Send>,
    device_id: u64,
    board: String,
    summary_every: u32,
) {
    let t0 = Instant::now();
    let now = || t0.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
    let mut emitter = Emitter::new(device_id, 0);
    let mut link = Link {
        sink,
        failed: false,
    };
    let mut next = match rx.recv() {
        Ok(Event::Model(m)) => Some(m),
        _ => None,
    };
    while let Some(served) = next.take() {
        emitter.model_hash = served.hash;
        let hello = Hello {
            firmware: truncated(concat!("edgeflow-serve ", env!("CARGO_PKG_VERSION"))),
            board: truncated(&board),
            model: truncated(&served.origin),
            artifact_version: served.version,
            slot: 255,
            slot_sequence: 0,
            arena_bytes: served.arena_bytes.min(u32::MAX as usize) as u32,
        };
        let mut buf = vec![0u8; 512];
        if let Ok(n) = emitter.frame(now(), &hello, &mut buf) {
            link.put(&buf[..n]);
        }
        let baseline = edgeflow_format::Artifact::parse(served.bytes())
            .ok()
            .and_then(|a| a.monitoring_baseline)
            .and_then(|b| MonitoringBaseline::parse(b).ok());
        let words = baseline
            .as_ref()
            .map_or(0, SummaryAccumulator::words_needed);
        let mut store = vec![0u32; words];
        let mut acc = baseline.and_then(|b| SummaryAccumulator::new(b, &mut store, now()).ok());
        // A summary body is at most `words` varints of 5 bytes plus a few fixed fields.
        let mut big = vec![0u8; edgeflow_telemetry::max_encoded_len(96 + 5 * words)];
        let summary = |acc: &mut SummaryAccumulator<'_, '_>,
                       emitter: &mut Emitter,
                       link: &mut Link,
                       big: &mut [u8]| {
            let t = now();
            if let Ok(n) = emitter.summary(t, acc, big) {
                link.put(&big[..n]);
            }
            acc.reset(t);
        };
        loop {
            match rx.recv() {
                Ok(Event::Inference {
                    features,
                    new_frames,
                    class,
                    score,
                    latency_us,
                }) => {
                    let p = Prediction {
                        class: class.min(usize::from(u16::MAX)) as u16,
                        score,
                        latency_us,
                    };
                    if let Ok(n) = emitter.frame(now(), &p, &mut buf) {
                        link.put(&buf[..n]);
                    }
                    if let Some(a) = acc.as_mut() {
                        a.record_frames(&features, new_frames, class, score);
                        if summary_every > 0 && a.inferences() >= summary_every {
                            summary(a, &mut emitter, &mut link, &mut big);
                        }
                    }
                }
                Ok(Event::Model(m)) => {
                    if let Some(a) = acc.as_mut() {
                        if a.inferences() > 0 {
                            summary(a, &mut emitter, &mut link, &mut big);
                        }
                    }
                    next = Some(m);
                    break;
                }
                Err(_) => {
                    // Every sender is gone: the server is shutting down.
                    if let Some(a) = acc.as_mut() {
                        if a.inferences() > 0 {
                            summary(a, &mut emitter, &mut link, &mut big);
                        }
                    }
                    break;
                }
            }
        }
    }
    let _ = link.sink.flush();
}

/// The byte link; after the first failed write it stays silent.
struct Link {
    sink: Box<dyn Write + Send>,
    failed: bool,
}

impl Link {
    fn put(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if let Err(e) = self.sink.write_all(bytes).and_then(|()| self.sink.flush()) {
            eprintln!("telemetry: write failed ({e}); telemetry stops, serving goes on");
            self.failed = true;
        }
    }
}
