//! The device-side summary: what the model saw during one window, against the artifact's
//! monitoring baseline.

use core::fmt;

use edgeflow_format::baseline::MonitoringBaseline;
use serde::ser::{Serialize, SerializeTuple, Serializer};

/// Why a [`SummaryAccumulator`] could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AccumulatorError {
    /// The counter storage is smaller than [`SummaryAccumulator::words_needed`].
    StorageTooSmall {
        /// `u32` words needed.
        needed: usize,
        /// `u32` words given.
        got: usize,
    },
}

impl fmt::Display for AccumulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AccumulatorError::StorageTooSmall { needed, got } => write!(
                f,
                "summary accumulator needs {needed} u32 words of storage, got {got}"
            ),
        }
    }
}

impl core::error::Error for AccumulatorError {}

/// Counts, over one window, what a deployed model saw and said, binned exactly as the
/// artifact's [`MonitoringBaseline`] binned the training data; [`crate::Emitter::summary`]
/// writes it as a [`crate::FrameKind::Summary`] frame.
///
/// The caller owns the counters (`&mut [u32]` of at least
/// [`SummaryAccumulator::words_needed`] words). No allocation, no panics: every counter
/// saturates at `u32::MAX`.
///
/// What one [`record`](SummaryAccumulator::record) counts, for each monitored feature `f`
/// (value `x = features[baseline.feature_index(f)]`):
/// - NaN, or an index past the end of `features`: `nan[f] += 1` (no bin);
/// - otherwise `hist[f][baseline.feature_bin(f, x)] += 1`, and if `x` is outside the
///   training range `[min, max]` of the baseline, also `out_of_range[f] += 1`;
///
/// With a baseline that has a frame layout (a [`FrameLayout`](edgeflow_format::baseline::FrameLayout):
/// the monitored features are one frame of a framed input),
/// [`record_frames`](SummaryAccumulator::record_frames) counts the features of every frame
/// that is new since the previous inference — `new_frames` frames, the newest first, at
/// [`MonitoringBaseline::frame_index`] — so that a stream with one inference per new frame
/// counts each frame once, and the first inference after a reset counts the whole window
/// (the baseline counted every frame of every training window the same way). The
/// histogram then sums to more than `inferences`.
///
/// and for the prediction: `classes[class] += 1` when `class < classes` (a class outside the
/// baseline's class count is not counted there, so `sum(classes) < inferences` shows it);
/// `scores[baseline.score_bin(score)] += 1`, or `score_nan += 1` for a NaN score.
///
/// # Body encoding (postcard, in this order; all counts `u32` varints)
///
/// ```text
/// window_us            u64   microseconds since the window started           since 1.0
/// inferences           u32   record() calls in the window                     since 1.0
/// dropped_samples      u32   samples the device lost (buffer overrun)         since 1.0
/// stack_high_water     u32   peak stack bytes seen (0 = not measured)         since 1.0
/// arena_high_water     u32   peak arena bytes in use (0 = not measured)       since 1.0
/// bins                 u16   bins per feature (B)                             since 1.0
/// hist                 seq   F × B counts, feature-major                      since 1.0
/// nan                  seq   F counts                                         since 1.0
/// out_of_range         seq   F counts                                         since 1.0
/// classes              seq   C counts                                         since 1.0
/// scores               seq   S counts (score bins of the baseline)            since 1.0
/// score_nan            u32                                                    since 1.0
/// link_errors          u32   input-link frames the device rejected            since 1.1
/// ```
pub struct SummaryAccumulator<'b, 's> {
    baseline: MonitoringBaseline<'b>,
    store: &'s mut [u32],
    features: usize,
    bins: usize,
    classes: usize,
    score_bins: usize,
    window_start_us: u64,
    inferences: u32,
    dropped_samples: u32,
    stack_high_water: u32,
    arena_high_water: u32,
    score_nan: u32,
    link_errors: u32,
}

impl<'b, 's> SummaryAccumulator<'b, 's> {
    /// `u32` words of storage for `baseline`: `F × B + 2F + C + S`.
    pub fn words_needed(baseline: &MonitoringBaseline<'_>) -> usize {
        // F <= 256, B <= 64, C <= 1024, S <= 64 (checked by MonitoringBaseline::parse).
        let f = baseline.feature_count();
        f * baseline.bins() + 2 * f + baseline.class_count() + baseline.score_bins()
    }

    /// An empty accumulator whose window starts at `now_us`. Errors:
    /// [`AccumulatorError::StorageTooSmall`].
    pub fn new(
        baseline: MonitoringBaseline<'b>,
        store: &'s mut [u32],
        now_us: u64,
    ) -> Result<Self, AccumulatorError> {
        let needed = Self::words_needed(&baseline);
        if store.len() < needed {
            return Err(AccumulatorError::StorageTooSmall {
                needed,
                got: store.len(),
            });
        }
        let mut acc = SummaryAccumulator {
            features: baseline.feature_count(),
            bins: baseline.bins(),
            classes: baseline.class_count(),
            score_bins: baseline.score_bins(),
            baseline,
            store,
            window_start_us: now_us,
            inferences: 0,
            dropped_samples: 0,
            stack_high_water: 0,
            arena_high_water: 0,
            score_nan: 0,
            link_errors: 0,
        };
        acc.reset(now_us);
        Ok(acc)
    }

    /// Clears every counter and starts a new window at `now_us` (call after sending a summary).
    pub fn reset(&mut self, now_us: u64) {
        self.store.iter_mut().for_each(|w| *w = 0);
        self.window_start_us = now_us;
        self.inferences = 0;
        self.dropped_samples = 0;
        self.stack_high_water = 0;
        self.arena_high_water = 0;
        self.score_nan = 0;
        self.link_errors = 0;
    }

    fn bump(&mut self, i: usize) {
        if let Some(w) = self.store.get_mut(i) {
            *w = w.saturating_add(1);
        }
    }

    /// Counts one inference: its full model-input feature vector (flattened, as the
    /// baseline's feature indices address it), its top-1 class and score; the features of
    /// the newest frame only (an unframed input's features, or a framed input in a
    /// steady stream of one inference per frame). Never panics.
    pub fn record(&mut self, features: &[f32], class: usize, score: f32) {
        self.record_frames(features, 1, class, score);
    }

    /// As [`record`](SummaryAccumulator::record), counting the features of the
    /// `new_frames` newest frames of the model input (the frames new since the previous
    /// inference, as the `edgeflow` facade's `Engine` reports them), clamped to `1..=frames` of the
    /// baseline's frame layout; without a layout (baseline versions 1 and 2) exactly as
    /// `record`. Never panics.
    pub fn record_frames(&mut self, features: &[f32], new_frames: u32, class: usize, score: f32) {
        self.inferences = self.inferences.saturating_add(1);
        let frames = self
            .baseline
            .frame_layout()
            .map_or(1, |l| new_frames.clamp(1, l.frames));
        for back in 0..frames {
            self.record_frame(features, back);
        }
        let c0 = self.features * (self.bins + 2);
        if class < self.classes {
            self.bump(c0 + class);
        }
        match self.baseline.score_bin(score) {
            Some(b) => self.bump(c0 + self.classes + b),
            None => self.score_nan = self.score_nan.saturating_add(1),
        }
    }

    /// Counts the monitored features of the frame `back` frames before the newest.
    fn record_frame(&mut self, features: &[f32], back: u32) {
        let (nan0, oor0) = (self.features * self.bins, self.features * (self.bins + 1));
        for f in 0..self.features {
            let x = self
                .baseline
                .frame_index(f, back)
                .and_then(|i| features.get(i as usize).copied())
                .unwrap_or(f32::NAN);
            match self.baseline.feature_bin(f, x) {
                Some(b) => {
                    self.bump(f * self.bins + b);
                    if let Some((lo, hi)) = self.baseline.range(f) {
                        if x < lo || x > hi {
                            self.bump(oor0 + f);
                        }
                    }
                }
                None => self.bump(nan0 + f),
            }
        }
    }

    /// Counts `n` input samples the device lost.
    pub fn record_dropped(&mut self, n: u32) {
        self.dropped_samples = self.dropped_samples.saturating_add(n);
    }

    /// Counts `n` frames rejected on the device's input link (bad COBS, CRC or length).
    pub fn record_link_errors(&mut self, n: u32) {
        self.link_errors = self.link_errors.saturating_add(n);
    }

    /// Raises the stack and arena high-water marks (bytes) to at least these values.
    pub fn note_high_water(&mut self, stack_bytes: u32, arena_bytes: u32) {
        self.stack_high_water = self.stack_high_water.max(stack_bytes);
        self.arena_high_water = self.arena_high_water.max(arena_bytes);
    }

    /// Inferences counted in this window.
    pub fn inferences(&self) -> u32 {
        self.inferences
    }

    /// Start of the current window (microseconds since boot).
    pub fn window_start_us(&self) -> u64 {
        self.window_start_us
    }

    /// Histogram count of feature `f`, bin `b`, or `None` out of range.
    pub fn feature_count(&self, f: usize, b: usize) -> Option<u32> {
        if f >= self.features || b >= self.bins {
            return None;
        }
        self.store.get(f * self.bins + b).copied()
    }

    /// The postcard body for a frame emitted at `now_us`.
    pub(crate) fn wire(&self, now_us: u64) -> SummaryWire<'_> {
        SummaryWire { acc: self, now_us }
    }

    fn section(&self, start: usize, len: usize) -> &[u32] {
        self.store.get(start..start + len).unwrap_or(&[])
    }
}

/// The summary as it goes on the wire (see [`SummaryAccumulator`] for the field order).
pub(crate) struct SummaryWire<'x> {
    acc: &'x SummaryAccumulator<'x, 'x>,
    now_us: u64,
}

impl Serialize for SummaryWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.acc;
        let (f, b) = (a.features, a.bins);
        let mut t = s.serialize_tuple(13)?;
        t.serialize_element(&self.now_us.saturating_sub(a.window_start_us))?;
        t.serialize_element(&a.inferences)?;
        t.serialize_element(&a.dropped_samples)?;
        t.serialize_element(&a.stack_high_water)?;
        t.serialize_element(&a.arena_high_water)?;
        t.serialize_element(&(b as u16))?;
        t.serialize_element(a.section(0, f * b))?;
        t.serialize_element(a.section(f * b, f))?;
        t.serialize_element(a.section(f * (b + 1), f))?;
        t.serialize_element(a.section(f * (b + 2), a.classes))?;
        t.serialize_element(a.section(f * (b + 2) + a.classes, a.score_bins))?;
        t.serialize_element(&a.score_nan)?;
        t.serialize_element(&a.link_errors)?;
        t.end()
    }
}
