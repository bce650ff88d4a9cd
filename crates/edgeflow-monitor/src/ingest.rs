//! Telemetry bytes in, stored frames out: decodes an `edgeflow-telemetry` stream (any byte
//! source: serial port, an emulated board's UART over TCP, a file, stdin, MQTT payloads) and
//! appends every frame to the [`Store`] in batched transactions.

use std::io::Read;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgeflow_telemetry::{Body, Decoder, Event};

use crate::store::{Frame, Record, Store, StoreError};
use crate::window::{DataQuality, Health, WindowSummary};

/// When a batch is committed (and its frames acknowledged).
#[derive(Clone, Copy, Debug)]
pub struct BatchPolicy {
    /// Commit after this many frames.
    pub frames: u64,
    /// … or when the oldest uncommitted frame is this old.
    pub max_delay: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            frames: 4096,
            max_delay: Duration::from_millis(200),
        }
    }
}

/// Device name used in the store for a telemetry device id.
pub fn device_name(device_id: u64) -> String {
    format!("{device_id:016x}")
}

/// Model hash as stored (hex of the artifact body CRC).
pub fn model_hash_hex(h: u32) -> String {
    format!("{h:08x}")
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Converts a decoded telemetry summary into the monitor's window counts. Telemetry has no
/// saturation counter (0 here) and no latency (that comes from prediction frames).
pub fn window_from_summary(s: &edgeflow_telemetry::Summary) -> WindowSummary {
    let widen = |v: &[u32]| v.iter().map(|&x| u64::from(x)).collect::<Vec<u64>>();
    WindowSummary {
        inferences: u64::from(s.inferences),
        feature_counts: widen(&s.hist),
        class_counts: widen(&s.classes),
        score_counts: widen(&s.scores),
        quality: DataQuality {
            nan: s.nan.iter().map(|&x| u64::from(x)).sum(),
            out_of_range: s.out_of_range.iter().map(|&x| u64::from(x)).sum(),
            saturated: 0,
            dropped: u64::from(s.dropped_samples),
        },
        health: Health {
            stack_high_water: s.stack_high_water,
            arena_high_water: s.arena_high_water,
            ..Health::default()
        },
    }
}

/// Converts a decoded telemetry frame into a store record (`None` for log and unknown
/// frames, which the monitor does not keep).
pub fn record_from_frame(f: &edgeflow_telemetry::Frame, recv_us: i64) -> Option<Record> {
    let frame = match &f.body {
        Body::Hello(_) => Frame::Hello {
            model_hash: model_hash_hex(f.header.model_hash),
        },
        Body::Prediction(p) => Frame::Prediction {
            class: p.class,
            score: p.score,
            latency_us: p.latency_us,
        },
        Body::Summary(s) => Frame::Summary(window_from_summary(s)),
        Body::Log(_) | Body::Defmt(_) | Body::Samples(_) | Body::Unknown(_) => return None,
    };
    Some(Record {
        device: device_name(f.header.device_id),
        model_hash: Some(model_hash_hex(f.header.model_hash)),
        seq: f.header.seq,
        recv_us,
        frame,
    })
}

/// Totals of one ingest run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Frames stored and acknowledged.
    pub stored: u64,
    /// Frames decoded but not kept (logs, unknown kinds).
    pub skipped: u64,
    /// Corrupt stretches of the stream (COBS, CRC, version, malformed).
    pub corrupt: u64,
}

/// One decoding link (a byte stream): feeds decoded frames into a store, committing by a
/// [`BatchPolicy`]. Corrupt stretches are counted against the last device seen on the link
/// (a corrupt frame's device id cannot be trusted), or `"unknown"` before any.
pub struct Link {
    decoder: Decoder,
    policy: BatchPolicy,
    oldest: Option<Instant>,
    last_device: Option<String>,
    stats: IngestStats,
}

impl Link {
    /// A link; every call that stores takes the store.
    pub fn new(policy: BatchPolicy) -> Self {
        Self {
            decoder: Decoder::new(),
            policy,
            oldest: None,
            last_device: None,
            stats: IngestStats::default(),
        }
    }

    /// Decodes `bytes` and appends what they hold; commits when the policy says so and then
    /// calls `on_ack` with the total acknowledged frames of the store.
    pub fn push(
        &mut self,
        store: &mut Store,
        bytes: &[u8],
        on_ack: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        self.push_no_commit(store, bytes)?;
        self.maybe_commit(store, on_ack)
    }

    /// Decodes `bytes` and appends what they hold, without committing (the caller commits,
    /// e.g. once for several links sharing a store).
    pub fn push_no_commit(&mut self, store: &mut Store, bytes: &[u8]) -> Result<(), StoreError> {
        let recv = now_us();
        for ev in self.decoder.push(bytes) {
            self.handle(store, ev, recv)?;
        }
        Ok(())
    }

    fn handle(&mut self, store: &mut Store, ev: Event, recv: i64) -> Result<(), StoreError> {
        match ev {
            Event::Frame(f) => match record_from_frame(&f, recv) {
                Some(rec) => {
                    self.last_device = Some(rec.device.clone());
                    store.append(&rec)?;
                    self.oldest.get_or_insert_with(Instant::now);
                    self.stats.stored += 1;
                }
                None => {
                    // Not kept, but numbered by the device like every frame it sends: its
                    // number must reach the store, or it would count as a lost frame.
                    let dev = device_name(f.header.device_id);
                    store.skip(&dev, f.header.seq)?;
                    self.last_device = Some(dev);
                    self.oldest.get_or_insert_with(Instant::now);
                    self.stats.skipped += 1;
                }
            },
            Event::Error(_) => {
                let dev = self.last_device.clone().unwrap_or_else(|| "unknown".into());
                store.count_corrupt(&dev, 1)?;
                self.oldest.get_or_insert_with(Instant::now);
                self.stats.corrupt += 1;
            }
        }
        Ok(())
    }

    /// Commits if the batch is full or old enough.
    pub fn maybe_commit(
        &mut self,
        store: &mut Store,
        on_ack: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        let due = store.pending() >= self.policy.frames
            || self
                .oldest
                .is_some_and(|t| t.elapsed() >= self.policy.max_delay);
        if due {
            self.commit(store, on_ack)?;
        }
        Ok(())
    }

    /// Ends the stream (a frame cut off at the end counts as corrupt) and commits.
    pub fn finish(
        &mut self,
        store: &mut Store,
        on_ack: &mut dyn FnMut(u64),
    ) -> Result<IngestStats, StoreError> {
        if let Some(ev) = self.decoder.finish() {
            self.handle(store, ev, now_us())?;
        }
        self.commit(store, on_ack)?;
        Ok(self.stats)
    }

    /// Commits now.
    pub fn commit(
        &mut self,
        store: &mut Store,
        on_ack: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        let acked = store.commit()?;
        self.oldest = None;
        on_ack(acked);
        Ok(())
    }

    /// Totals so far.
    pub fn stats(&self) -> IngestStats {
        self.stats
    }
}

/// Reads `reader` to its end through a [`Link`]. Reads block; a source that can pause (a
/// socket, a serial port) should set a read timeout so batches are committed on time — a
/// timed-out read (`WouldBlock`/`TimedOut`) is not an error here.
pub fn ingest_reader(
    store: &mut Store,
    reader: &mut dyn Read,
    policy: BatchPolicy,
    on_ack: &mut dyn FnMut(u64),
) -> Result<IngestStats, IngestError> {
    let mut link = Link::new(policy);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => link.push(store, &buf[..n], on_ack)?,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                link.maybe_commit(store, on_ack)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IngestError::Read(e)),
        }
    }
    Ok(link.finish(store, on_ack)?)
}

/// Ingest failures.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the source failed.
    #[error("reading telemetry: {0}")]
    Read(#[from] std::io::Error),
    /// Storing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
