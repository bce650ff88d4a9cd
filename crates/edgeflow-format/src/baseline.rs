//! The monitoring baseline section ([`SectionKind::MonitoringBaseline`](crate::SectionKind)).
//!
//! What the training data looked like, in the compact form a device can compare against and
//! a host can test drift with: for each monitored feature, quantile bin edges and the
//! training-set histogram over those bins; the training class prior; and the histogram of
//! the model's top-1 score on the validation split, with the accuracy observed in each score
//! bin (what confidence-based performance estimation needs).
//!
//! # Wire form
//!
//! One postcard-encoded [`BaselineRecord`]. All arrays are little-endian and stored as
//! [`Bytes`], so the device borrows them from flash. Version 1 ends there; version 2
//! (written only for models whose score is not the top output, so that classifier
//! artifacts stay readable by version-1 devices) is followed by one byte, the
//! [`ScoreKind`]: what the score in predictions, summaries and the score histogram is.
//! When the monitored features are one frame of a framed signal (see [`FrameLayout`]),
//! a **frame-layout trailer** follows (after the kind byte of a version-2 record): the tag
//! byte [`FRAME_LAYOUT_TAG`] and two postcard varint `u32`s, `frames` (the frames in one
//! model input, `2..=MAX_FRAMES`) and `frame_stride` (model-input values from one frame to
//! the next, `>= 1`):
//!
//! ```text
//! record (version 1) | 0x01 | frames varint u32 | frame_stride varint u32
//! record (version 2) | score kind u8 | 0x01 | frames varint u32 | frame_stride varint u32
//! ```
//!
//! The trailer does not change the record version: readers written before it (which
//! ignore bytes after what their version defines) still run the artifact and count the
//! newest frame only. A reader of this version ignores a trailer with another tag.
//!
//! A baseline with a frame layout has `feature_index` addressing the newest (last) frame; the same
//! feature `k` frames earlier is at `feature_index - k * frame_stride` (the writer checks
//! every index to be at least `(frames - 1) * frame_stride`; a reader treats an earlier
//! frame that would fall before index 0 as missing). Its histograms count every frame
//! of every training window, and a device counts every frame that is new since its
//! previous inference ([`MonitoringBaseline::frame_index`]).
//!
//! # Bins
//!
//! A feature with `B` bins has `B - 1` interior edges `e_0 <= e_1 <= … <= e_{B-2}`, all finite.
//! Bin `k` holds the values `x` with `e_{k-1} <= x < e_k`, taking `e_{-1} = -inf` and
//! `e_{B-1} = +inf`: the bin index of `x` is the number of edges `<= x`. NaN has no bin
//! ([`MonitoringBaseline::feature_bin`] returns `None`); a device counts it as a data-quality
//! event instead. The same rule applies to the score histogram.
//!
//! # Contract
//!
//! [`MonitoringBaseline::parse`] checks the version, every array length against the counts
//! it announces, and that edges are finite and non-decreasing. After it returns `Ok`, no
//! accessor panics; accessors given an out-of-range index return `None`.

// Index arithmetic in this module multiplies and adds counts that `from_record` bounds
// before any accessor exists (features <= MAX_FEATURES = 256, bins and score bins <=
// MAX_BINS = 64, classes <= MAX_CLASSES = 1024), so no product or sum can overflow `usize`;
// every array access goes through `Bytes::i32_at`/`f32_at`, which are checked.
#![allow(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

use crate::graph::Bytes;

/// The newest baseline record version this crate reads and writes (it reads 1 and 2; see
/// the module docs).
pub const BASELINE_VERSION: u16 = 2;

/// The tag byte of the frame-layout trailer (module docs, Wire form).
pub const FRAME_LAYOUT_TAG: u8 = 1;

/// Most frames a [`FrameLayout`] may announce.
pub const MAX_FRAMES: u32 = 1024;

/// Where the earlier frames of a framed model input are (the baseline's frame-layout
/// trailer): the model
/// input holds `frames` frames, `frame_stride` values apart, oldest first; the monitored
/// feature indices address the newest frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FrameLayout {
    /// Frames in one model input, `2..=MAX_FRAMES`.
    pub frames: u32,
    /// Model-input values from one frame to the next, `>= 1`.
    pub frame_stride: u32,
}

/// What a model's score is: the quantity a device reports with every prediction, bins in
/// its summaries, and the baseline's score histogram counts (the "task" the device must
/// know to compute it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ScoreKind {
    /// The largest element of output 0 (a classifier's top-1 probability). Version 1.
    #[default]
    TopOutput,
    /// Anomaly detection with an autoencoder: the reconstruction error, the mean squared
    /// difference between model input 0 and output 0 (same element count), both as real
    /// numbers (int8 dequantized with their scale and zero point), summed in `f32` in
    /// element order and divided by the element count. Version 2, byte 1.
    ReconstructionMse,
}

impl ScoreKind {
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    fn byte(self) -> u8 {
        match self {
            Self::TopOutput => 0,
            Self::ReconstructionMse => 1,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::TopOutput),
            1 => Some(Self::ReconstructionMse),
            _ => None,
        }
    }
}
/// Most monitored features a baseline may describe (bounds device summary RAM).
pub const MAX_FEATURES: usize = 256;
/// Most bins per histogram (feature or score).
pub const MAX_BINS: usize = 64;
/// Most classes in the class prior.
pub const MAX_CLASSES: usize = 1024;

/// The encoded record. Build one with `OwnedBaseline` (feature `std`); read one with
/// [`MonitoringBaseline::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
pub struct BaselineRecord<'a> {
    /// [`BASELINE_VERSION`].
    pub version: u16,
    /// Bins per monitored feature, `2..=MAX_BINS`.
    pub bins: u16,
    /// `u32` × F: the index, in the flattened (row-major) model input, of each monitored feature.
    pub feature_index: Bytes<'a>,
    /// `f32` × F × (bins − 1): interior bin edges, feature-major.
    pub edges: Bytes<'a>,
    /// `u32` × F × bins: training-set histogram, feature-major.
    pub counts: Bytes<'a>,
    /// `f32` × F × 2: training minimum and maximum of each feature.
    pub ranges: Bytes<'a>,
    /// Number of training examples (windows) the histograms were computed from.
    pub train_count: u32,
    /// `f32` × C: the training class distribution (sums to 1 within rounding); empty for
    /// models without classes (anomaly detection).
    pub class_prior: Bytes<'a>,
    /// `f32` × (S − 1): interior edges of the score histogram (top-1 score for classifiers,
    /// the anomaly score for anomaly models).
    pub score_edges: Bytes<'a>,
    /// `u32` × S: validation-split score histogram.
    pub score_counts: Bytes<'a>,
    /// `f32` × S, or empty: the fraction of correct top-1 predictions in each score bin on the
    /// validation split (a reliability table for confidence-based performance estimation).
    pub score_accuracy: Bytes<'a>,
}

/// Why a baseline section was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BaselineError {
    /// The section is not a postcard [`BaselineRecord`].
    Malformed,
    /// The record version is not 1 or [`BASELINE_VERSION`].
    UnsupportedVersion(u16),
    /// A version-2 record's score kind byte is missing or unknown (`None`: missing).
    UnknownScoreKind(Option<u8>),
    /// A frame-layout trailer is malformed or out of range, or (when
    /// writing) does not fit the feature indices (an index below `(frames - 1) * frame_stride`).
    BadFrameLayout,
    /// A count is outside its allowed range (`what` names it).
    OutOfRange {
        /// Which count.
        what: &'static str,
        /// The value found.
        value: usize,
    },
    /// An array's byte length does not match the counts (`what` names the array).
    BadLength {
        /// Which array.
        what: &'static str,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// An edge is NaN/infinite or smaller than the edge before it.
    BadEdges {
        /// Feature index (`u32::MAX` for the score edges).
        feature: u32,
    },
}

impl core::fmt::Display for BaselineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Malformed => write!(f, "monitoring baseline section is malformed"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "monitoring baseline version {v} is not supported (this reader reads 1 to {BASELINE_VERSION})"
            ),
            Self::UnknownScoreKind(None) => {
                write!(f, "monitoring baseline: no score kind byte")
            }
            Self::BadFrameLayout => write!(f, "monitoring baseline: bad frame layout"),
            Self::UnknownScoreKind(Some(b)) => write!(
                f,
                "monitoring baseline: score kind {b} is unknown (0 top output, 1 reconstruction MSE)"
            ),
            Self::OutOfRange { what, value } => {
                write!(f, "monitoring baseline: {what} = {value} is out of range")
            }
            Self::BadLength {
                what,
                expected,
                got,
            } => write!(
                f,
                "monitoring baseline: {what} has {got} bytes, expected {expected}"
            ),
            Self::BadEdges { feature: u32::MAX } => write!(
                f,
                "monitoring baseline: score bin edges are not finite and non-decreasing"
            ),
            Self::BadEdges { feature } => write!(
                f,
                "monitoring baseline: bin edges of feature {feature} are not finite and non-decreasing"
            ),
        }
    }
}

impl core::error::Error for BaselineError {}

/// A validated, borrowed view of a monitoring baseline.
#[derive(Clone, Copy, Debug)]
pub struct MonitoringBaseline<'a> {
    rec: BaselineRecord<'a>,
    features: usize,
    bins: usize,
    score_bins: usize,
    classes: usize,
    score_kind: ScoreKind,
    frames: Option<FrameLayout>,
}

fn u32_at(b: &Bytes<'_>, i: usize) -> Option<u32> {
    b.i32_at(i).map(|v| v as u32)
}

fn check_len(what: &'static str, b: &Bytes<'_>, words: usize) -> Result<(), BaselineError> {
    let expected = words
        .checked_mul(4)
        .ok_or(BaselineError::OutOfRange { what, value: words })?;
    if b.0.len() != expected {
        return Err(BaselineError::BadLength {
            what,
            expected,
            got: b.0.len(),
        });
    }
    Ok(())
}

fn check_edges(b: &Bytes<'_>, start: usize, n: usize, feature: u32) -> Result<(), BaselineError> {
    let mut prev = f32::NEG_INFINITY;
    for k in 0..n {
        let e = start
            .checked_add(k)
            .and_then(|i| b.f32_at(i))
            .ok_or(BaselineError::BadEdges { feature })?;
        if !e.is_finite() || e < prev {
            return Err(BaselineError::BadEdges { feature });
        }
        prev = e;
    }
    Ok(())
}

/// Number of edges `<= x` among `n` sorted edges starting at word `start` (binary search).
fn bin_index(b: &Bytes<'_>, start: usize, n: usize, x: f32) -> Option<usize> {
    if x.is_nan() {
        return None;
    }
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let e = b.f32_at(start.checked_add(mid)?)?;
        if e <= x {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

impl<'a> MonitoringBaseline<'a> {
    /// Decodes and validates a baseline section. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BaselineError> {
        let (rec, rest): (BaselineRecord<'a>, _) =
            postcard::take_from_bytes(bytes).map_err(|_| BaselineError::Malformed)?;
        let (kind, rest) = match rec.version {
            2 => {
                let b = rest.first().copied();
                let k = b
                    .and_then(ScoreKind::from_byte)
                    .ok_or(BaselineError::UnknownScoreKind(b))?;
                (k, rest.get(1..).unwrap_or(&[]))
            }
            _ => (ScoreKind::TopOutput, rest),
        };
        let mut b = Self::from_record(rec)?;
        b.score_kind = kind;
        if rest.first() == Some(&FRAME_LAYOUT_TAG) {
            let (layout, _): ((u32, u32), _) =
                postcard::take_from_bytes(rest.get(1..).unwrap_or(&[]))
                    .map_err(|_| BaselineError::BadFrameLayout)?;
            let layout = FrameLayout {
                frames: layout.0,
                frame_stride: layout.1,
            };
            b.check_frames(layout)?;
            b.frames = Some(layout);
        }
        Ok(b)
    }

    /// The layout's counts. (Whether every feature index leaves room for the earlier
    /// frames is checked by the writer, [`OwnedBaseline::to_bytes`]: a reader that met an
    /// index that does not gets `None` from [`MonitoringBaseline::frame_index`] and counts
    /// a NaN — this keeps the device's parser small.)
    fn check_frames(&self, l: FrameLayout) -> Result<(), BaselineError> {
        if !(2..=MAX_FRAMES).contains(&l.frames) || l.frame_stride == 0 {
            return Err(BaselineError::BadFrameLayout);
        }
        Ok(())
    }

    /// The frame layout of the model input (`None` without a frame-layout trailer: the
    /// features are counted once per inference).
    pub fn frame_layout(&self) -> Option<FrameLayout> {
        self.frames
    }

    /// The model-input index of monitored feature `f` in the frame `back` frames before
    /// the newest (`back = 0`: [`MonitoringBaseline::feature_index`]); `None` for an
    /// unknown feature, or `back > 0` past the layout's frames (or without a layout).
    pub fn frame_index(&self, f: usize, back: u32) -> Option<u32> {
        let i = self.feature_index(f)?;
        if back == 0 {
            return Some(i);
        }
        let l = self.frames?;
        if back >= l.frames {
            return None;
        }
        i.checked_sub(back.checked_mul(l.frame_stride)?)
    }

    /// Validates an already decoded record (its score kind is [`ScoreKind::TopOutput`] and
    /// it has no frame layout: a version-2 record's kind byte and the frame-layout trailer
    /// follow the record, see
    /// [`MonitoringBaseline::parse`]).
    pub fn from_record(rec: BaselineRecord<'a>) -> Result<Self, BaselineError> {
        if !(1..=BASELINE_VERSION).contains(&rec.version) {
            return Err(BaselineError::UnsupportedVersion(rec.version));
        }
        let bins = usize::from(rec.bins);
        if !(2..=MAX_BINS).contains(&bins) {
            return Err(BaselineError::OutOfRange {
                what: "bins",
                value: bins,
            });
        }
        if rec.feature_index.0.len() % 4 != 0 {
            return Err(BaselineError::BadLength {
                what: "feature_index",
                expected: rec.feature_index.0.len() / 4 * 4,
                got: rec.feature_index.0.len(),
            });
        }
        let features = rec.feature_index.0.len() / 4;
        if features > MAX_FEATURES {
            return Err(BaselineError::OutOfRange {
                what: "features",
                value: features,
            });
        }
        // features <= 256 and bins <= 64: these products cannot overflow.
        check_len("edges", &rec.edges, features * (bins - 1))?;
        check_len("counts", &rec.counts, features * bins)?;
        check_len("ranges", &rec.ranges, features * 2)?;
        if rec.class_prior.0.len() % 4 != 0 {
            return Err(BaselineError::BadLength {
                what: "class_prior",
                expected: rec.class_prior.0.len() / 4 * 4,
                got: rec.class_prior.0.len(),
            });
        }
        let classes = rec.class_prior.0.len() / 4;
        if classes > MAX_CLASSES {
            return Err(BaselineError::OutOfRange {
                what: "classes",
                value: classes,
            });
        }
        if rec.score_counts.0.len() % 4 != 0 {
            return Err(BaselineError::BadLength {
                what: "score_counts",
                expected: rec.score_counts.0.len() / 4 * 4,
                got: rec.score_counts.0.len(),
            });
        }
        let score_bins = rec.score_counts.0.len() / 4;
        if !(2..=MAX_BINS).contains(&score_bins) {
            return Err(BaselineError::OutOfRange {
                what: "score bins",
                value: score_bins,
            });
        }
        check_len("score_edges", &rec.score_edges, score_bins - 1)?;
        if !rec.score_accuracy.0.is_empty() {
            check_len("score_accuracy", &rec.score_accuracy, score_bins)?;
        }
        for f in 0..features {
            check_edges(&rec.edges, f * (bins - 1), bins - 1, f as u32)?;
        }
        check_edges(&rec.score_edges, 0, score_bins - 1, u32::MAX)?;
        Ok(Self {
            rec,
            features,
            bins,
            score_bins,
            classes,
            score_kind: ScoreKind::TopOutput,
            frames: None,
        })
    }

    /// What the score is (version 1: always [`ScoreKind::TopOutput`]).
    pub fn score_kind(&self) -> ScoreKind {
        self.score_kind
    }

    /// The underlying record.
    pub fn record(&self) -> &BaselineRecord<'a> {
        &self.rec
    }
    /// Number of monitored features F.
    pub fn feature_count(&self) -> usize {
        self.features
    }
    /// Bins per feature B.
    pub fn bins(&self) -> usize {
        self.bins
    }
    /// Bins of the score histogram S.
    pub fn score_bins(&self) -> usize {
        self.score_bins
    }
    /// Number of classes C in the prior (0 for anomaly models).
    pub fn class_count(&self) -> usize {
        self.classes
    }
    /// Training examples behind the histograms.
    pub fn train_count(&self) -> u32 {
        self.rec.train_count
    }
    /// Index in the flattened model input of monitored feature `f`.
    pub fn feature_index(&self, f: usize) -> Option<u32> {
        (f < self.features).then(|| u32_at(&self.rec.feature_index, f))?
    }
    /// Interior edge `k` (`0..B-1`) of feature `f`.
    pub fn edge(&self, f: usize, k: usize) -> Option<f32> {
        if f >= self.features || k + 1 >= self.bins {
            return None;
        }
        self.rec.edges.f32_at(f * (self.bins - 1) + k)
    }
    /// Training count of bin `k` of feature `f`.
    pub fn count(&self, f: usize, k: usize) -> Option<u32> {
        if f >= self.features || k >= self.bins {
            return None;
        }
        u32_at(&self.rec.counts, f * self.bins + k)
    }
    /// Training `(min, max)` of feature `f`.
    pub fn range(&self, f: usize) -> Option<(f32, f32)> {
        if f >= self.features {
            return None;
        }
        Some((
            self.rec.ranges.f32_at(2 * f)?,
            self.rec.ranges.f32_at(2 * f + 1)?,
        ))
    }
    /// The bin (see the module docs) that value `x` of feature `f` falls in; `None` for NaN
    /// or an unknown feature.
    pub fn feature_bin(&self, f: usize, x: f32) -> Option<usize> {
        if f >= self.features {
            return None;
        }
        bin_index(&self.rec.edges, f * (self.bins - 1), self.bins - 1, x)
    }
    /// Training prior of class `c`.
    pub fn class_prior(&self, c: usize) -> Option<f32> {
        (c < self.classes).then(|| self.rec.class_prior.f32_at(c))?
    }
    /// The score bin that score `s` falls in; `None` for NaN.
    pub fn score_bin(&self, s: f32) -> Option<usize> {
        bin_index(&self.rec.score_edges, 0, self.score_bins - 1, s)
    }
    /// Interior score edge `k` (`0..S-1`).
    pub fn score_edge(&self, k: usize) -> Option<f32> {
        (k + 1 < self.score_bins).then(|| self.rec.score_edges.f32_at(k))?
    }
    /// Validation count of score bin `k`.
    pub fn score_count(&self, k: usize) -> Option<u32> {
        (k < self.score_bins).then(|| u32_at(&self.rec.score_counts, k))?
    }
    /// Validation accuracy in score bin `k`, if the baseline carries a reliability table.
    pub fn score_accuracy(&self, k: usize) -> Option<f32> {
        if self.rec.score_accuracy.0.is_empty() || k >= self.score_bins {
            return None;
        }
        self.rec.score_accuracy.f32_at(k)
    }
}

/// An owned baseline for the host: fill it, then [`OwnedBaseline::to_bytes`] gives the
/// section bytes.
#[cfg(feature = "std")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedBaseline {
    /// Bins per feature.
    pub bins: u16,
    /// Flattened model-input index of each monitored feature (F).
    pub feature_index: Vec<u32>,
    /// F × (bins − 1) interior edges, feature-major.
    pub edges: Vec<f32>,
    /// F × bins training counts, feature-major.
    pub counts: Vec<u32>,
    /// F × 2 training (min, max).
    pub ranges: Vec<f32>,
    /// Training examples.
    pub train_count: u32,
    /// C class priors (empty for anomaly models).
    pub class_prior: Vec<f32>,
    /// S − 1 score edges.
    pub score_edges: Vec<f32>,
    /// S validation score counts.
    pub score_counts: Vec<u32>,
    /// S validation accuracies per score bin, or empty.
    pub score_accuracy: Vec<f32>,
    /// What the score is; anything but [`ScoreKind::TopOutput`] is written as version 2
    /// (or 3).
    pub score_kind: ScoreKind,
    /// The frame layout of a framed model input; `Some` is written as the frame-layout trailer, and then
    /// `counts`, `ranges` (and `edges`, when built by training) cover every frame.
    pub frame_layout: Option<FrameLayout>,
}

#[cfg(feature = "std")]
impl OwnedBaseline {
    /// An owned copy of a parsed baseline.
    pub fn from_parsed(b: &MonitoringBaseline<'_>) -> Self {
        let f32s =
            |x: Bytes<'_>| -> Vec<f32> { (0..x.0.len() / 4).filter_map(|i| x.f32_at(i)).collect() };
        let u32s = |x: Bytes<'_>| -> Vec<u32> {
            (0..x.0.len() / 4)
                .filter_map(|i| x.i32_at(i).map(|v| v as u32))
                .collect()
        };
        let r = b.record();
        OwnedBaseline {
            bins: r.bins,
            feature_index: u32s(r.feature_index),
            edges: f32s(r.edges),
            counts: u32s(r.counts),
            ranges: f32s(r.ranges),
            train_count: r.train_count,
            class_prior: f32s(r.class_prior),
            score_edges: f32s(r.score_edges),
            score_counts: u32s(r.score_counts),
            score_accuracy: f32s(r.score_accuracy),
            score_kind: b.score_kind(),
            frame_layout: b.frame_layout(),
        }
    }

    /// Recounts the feature histograms and ranges over `rows` (flattened model inputs,
    /// each `row_len` values; with a [`FrameLayout`], every frame of every row, as the
    /// training baseline counts them), keeping the bin edges, after passing every value through
    /// `map` — for example the int8 quantize-dequantize of a quantized model's input, so
    /// that the baseline counts what the device will bin. `train_count` becomes the number
    /// of rows. A NaN (after `map`) has no bin and is left out of counts and ranges.
    /// Errors: [`BaselineError::Malformed`] when a feature index is not below `row_len`.
    pub fn recount(
        &mut self,
        rows: &[f32],
        row_len: usize,
        map: impl Fn(f32) -> f32,
    ) -> Result<(), BaselineError> {
        let bins = usize::from(self.bins);
        let inner = bins.saturating_sub(1);
        if row_len == 0 || self.feature_index.iter().any(|&i| i as usize >= row_len) {
            return Err(BaselineError::Malformed);
        }
        let (frames, stride) = self
            .frame_layout
            .map_or((1, 0), |l| (l.frames as usize, l.frame_stride as usize));
        let n = rows.len() / row_len;
        self.counts = vec![0; self.feature_index.len() * bins];
        self.ranges = Vec::with_capacity(self.feature_index.len() * 2);
        for (f, &idx) in self.feature_index.iter().enumerate() {
            let edges = self.edges.get(f * inner..(f + 1) * inner).unwrap_or(&[]);
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for row in rows.chunks_exact(row_len) {
                for back in 0..frames {
                    let at = (idx as usize).checked_sub(back * stride);
                    let x = map(at.and_then(|i| row.get(i)).copied().unwrap_or(f32::NAN));
                    if x.is_nan() {
                        continue;
                    }
                    // The bin is the number of edges <= x (see the module docs).
                    let k = edges.iter().filter(|&&e| e <= x).count();
                    if let Some(c) = self.counts.get_mut(f * bins + k) {
                        *c = c.saturating_add(1);
                    }
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            if lo > hi {
                (lo, hi) = (0.0, 0.0);
            }
            self.ranges.extend([lo, hi]);
        }
        self.train_count = u32::try_from(n).unwrap_or(u32::MAX);
        Ok(())
    }

    /// Encodes the section, then validates it with [`MonitoringBaseline::parse`] so that a
    /// baseline that a device would reject is never written.
    pub fn to_bytes(&self) -> Result<Vec<u8>, BaselineError> {
        fn le<T: Copy>(v: &[T], f: impl Fn(T) -> [u8; 4]) -> Vec<u8> {
            v.iter().flat_map(|&x| f(x)).collect()
        }
        let fi = le(&self.feature_index, u32::to_le_bytes);
        let edges = le(&self.edges, f32::to_le_bytes);
        let counts = le(&self.counts, u32::to_le_bytes);
        let ranges = le(&self.ranges, f32::to_le_bytes);
        let prior = le(&self.class_prior, f32::to_le_bytes);
        let se = le(&self.score_edges, f32::to_le_bytes);
        let sc = le(&self.score_counts, u32::to_le_bytes);
        let sa = le(&self.score_accuracy, f32::to_le_bytes);
        let rec = BaselineRecord {
            version: match self.score_kind {
                ScoreKind::TopOutput => 1,
                _ => 2,
            },
            bins: self.bins,
            feature_index: Bytes(&fi),
            edges: Bytes(&edges),
            counts: Bytes(&counts),
            ranges: Bytes(&ranges),
            train_count: self.train_count,
            class_prior: Bytes(&prior),
            score_edges: Bytes(&se),
            score_counts: Bytes(&sc),
            score_accuracy: Bytes(&sa),
        };
        let mut bytes = postcard::to_stdvec(&rec).map_err(|_| BaselineError::Malformed)?;
        if rec.version != 1 {
            bytes.push(self.score_kind.byte());
        }
        if let Some(l) = self.frame_layout {
            // Every monitored index must leave room for the earlier frames.
            let span = u64::from(l.frames.saturating_sub(1)) * u64::from(l.frame_stride);
            if self.feature_index.iter().any(|&i| u64::from(i) < span) {
                return Err(BaselineError::BadFrameLayout);
            }
            let tail = postcard::to_stdvec(&(l.frames, l.frame_stride))
                .map_err(|_| BaselineError::Malformed)?;
            bytes.push(FRAME_LAYOUT_TAG);
            bytes.extend_from_slice(&tail);
        }
        MonitoringBaseline::parse(&bytes)?;
        Ok(bytes)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn sample() -> OwnedBaseline {
        OwnedBaseline {
            bins: 4,
            feature_index: vec![0, 5],
            edges: vec![-1.0, 0.0, 1.0, 10.0, 10.0, 20.0],
            counts: vec![1, 2, 3, 4, 5, 6, 7, 8],
            ranges: vec![-2.0, 2.0, 0.0, 30.0],
            train_count: 10,
            class_prior: vec![0.25, 0.75],
            score_edges: vec![0.5],
            score_counts: vec![3, 7],
            score_accuracy: vec![0.4, 0.9],
            score_kind: ScoreKind::TopOutput,
            frame_layout: None,
        }
    }

    #[test]
    fn the_frame_layout_is_a_trailer_that_older_readers_skip() {
        // Feature indices 5 and 7 in the newest of 3 frames of 3 values: 5 - 2*3 < 0 is
        // rejected, so use indices 6 and 8 (frames at 0..3, 3..6, 6..9).
        let mut s = sample();
        s.feature_index = vec![6, 8];
        s.frame_layout = Some(FrameLayout {
            frames: 3,
            frame_stride: 3,
        });
        let v3 = s.to_bytes().expect("valid");
        // Still a version-1 record (a reader from before the trailer runs it).
        assert_eq!(v3[0], 1);
        let mut plain_fi = sample();
        plain_fi.feature_index = vec![6, 8];
        let plain = plain_fi.to_bytes().expect("plain");
        assert_eq!(&v3[..plain.len()], &plain[..], "the record is unchanged");
        assert_eq!(v3[plain.len()], FRAME_LAYOUT_TAG);
        let b = MonitoringBaseline::parse(&v3).expect("with layout");
        assert_eq!(b.frame_layout(), s.frame_layout);
        assert_eq!(b.score_kind(), ScoreKind::TopOutput);
        assert_eq!(
            (
                b.frame_index(0, 0),
                b.frame_index(0, 1),
                b.frame_index(1, 2)
            ),
            (Some(6), Some(3), Some(2))
        );
        assert_eq!(b.frame_index(0, 3), None, "only 3 frames");
        assert_eq!(b.frame_index(2, 0), None, "only 2 features");
        assert_eq!(OwnedBaseline::from_parsed(&b), s, "owned round trip");
        // A reconstruction score: version 2, the kind byte, then the trailer.
        s.score_kind = ScoreKind::ReconstructionMse;
        let bytes = s.to_bytes().expect("valid");
        assert_eq!(bytes[0], 2);
        let b = MonitoringBaseline::parse(&bytes).expect("v2 with layout");
        assert_eq!(b.score_kind(), ScoreKind::ReconstructionMse);
        assert_eq!(b.frame_layout(), s.frame_layout);
        // A trailer with an unknown tag is ignored (room for later trailers).
        let mut other = plain.clone();
        other.extend_from_slice(&[7, 3, 3]);
        assert_eq!(
            MonitoringBaseline::parse(&other)
                .expect("unknown trailer")
                .frame_layout(),
            None
        );
        // A v1 and a v2 record (no layout) still parse, and have none.
        let v1 = sample().to_bytes().expect("v1");
        assert_eq!(v1[0], 1);
        let b1 = MonitoringBaseline::parse(&v1).expect("v1 parses");
        assert_eq!((b1.frame_layout(), b1.frame_index(0, 1)), (None, None));
        let mut s2 = sample();
        s2.score_kind = ScoreKind::ReconstructionMse;
        let v2 = s2.to_bytes().expect("v2");
        assert_eq!(v2[0], 2);
        assert_eq!(
            MonitoringBaseline::parse(&v2).expect("v2").frame_layout(),
            None
        );
        // A missing layout, one frame, a zero stride, or a layout reaching before index 0.
        let b3 = s.to_bytes().expect("valid");
        for bad in [
            FrameLayout {
                frames: 1,
                frame_stride: 3,
            },
            FrameLayout {
                frames: 3,
                frame_stride: 0,
            },
            FrameLayout {
                frames: 4,
                frame_stride: 3,
            },
        ] {
            let mut t = s.clone();
            t.frame_layout = Some(bad);
            assert_eq!(t.to_bytes(), Err(BaselineError::BadFrameLayout), "{bad:?}");
        }
        assert_eq!(
            MonitoringBaseline::parse(&b3[..b3.len() - 2]).err(),
            Some(BaselineError::BadFrameLayout)
        );
        for cut in 0..b3.len() {
            let _ = MonitoringBaseline::parse(&b3[..cut]); // never panics
        }
    }

    #[test]
    fn recount_with_a_frame_layout_counts_every_frame() {
        let mut b = sample();
        b.feature_index = vec![3, 5];
        b.frame_layout = Some(FrameLayout {
            frames: 2,
            frame_stride: 3,
        });
        // One row of 2 frames of 3 values: feature 0 at 0 and 3, feature 1 at 2 and 5.
        let rows = [-1.5, 0.0, 10.0, 0.4, 0.0, 25.0];
        b.recount(&rows, 6, |x| x).expect("recount");
        assert_eq!(&b.counts[..4], &[1, 0, 1, 0]);
        assert_eq!(&b.counts[4..], &[0, 0, 1, 1]);
        assert_eq!(b.ranges, vec![-1.5, 0.4, 10.0, 25.0]);
        assert_eq!(b.train_count, 1, "windows, not frames");
    }

    #[test]
    fn the_score_kind_is_version_2_and_version_1_still_reads() {
        let v1 = sample().to_bytes().expect("valid");
        assert_eq!(v1[0], 1, "a top-output baseline stays version 1");
        let b = MonitoringBaseline::parse(&v1).expect("v1");
        assert_eq!(b.score_kind(), ScoreKind::TopOutput);
        let mut s = sample();
        s.score_kind = ScoreKind::ReconstructionMse;
        let v2 = s.to_bytes().expect("valid");
        assert_eq!((v2[0], v2.len(), v2[v2.len() - 1]), (2, v1.len() + 1, 1));
        let b = MonitoringBaseline::parse(&v2).expect("v2");
        assert_eq!(b.score_kind(), ScoreKind::ReconstructionMse);
        assert_eq!(OwnedBaseline::from_parsed(&b), s, "owned round trip");
        // Version 2 without its byte, or with an unknown one, is rejected by name.
        assert_eq!(
            MonitoringBaseline::parse(&v2[..v2.len() - 1]).err(),
            Some(BaselineError::UnknownScoreKind(None))
        );
        let mut bad = v2.clone();
        *bad.last_mut().expect("byte") = 9;
        assert_eq!(
            MonitoringBaseline::parse(&bad).err(),
            Some(BaselineError::UnknownScoreKind(Some(9)))
        );
        let mut v4 = v1.clone();
        v4[0] = 4;
        assert_eq!(
            MonitoringBaseline::parse(&v4).err(),
            Some(BaselineError::UnsupportedVersion(4))
        );
    }

    #[test]
    fn recount_bins_the_mapped_values_with_the_same_edges() {
        let mut b = sample();
        let original = b.to_bytes().expect("valid");
        let parsed = MonitoringBaseline::parse(&original).expect("parse");
        assert_eq!(OwnedBaseline::from_parsed(&parsed), b, "owned round trip");
        // Two features at row positions 0 and 5 of 6-value rows.
        let rows = [
            -1.5,
            0.0,
            0.0,
            0.0,
            0.0,
            10.0, //
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            25.0, //
            0.4,
            0.0,
            0.0,
            0.0,
            0.0,
            f32::NAN,
        ];
        b.recount(&rows, 6, |x| x).expect("recount");
        // Feature 0, edges -1, 0, 1: -1.5 -> bin 0, 0.0 -> bin 2 (edges <= x), 0.4 -> bin 2.
        assert_eq!(&b.counts[..4], &[1, 0, 2, 0]);
        // Feature 1, edges 10, 10, 20: 10 -> bin 2, 25 -> bin 3, NaN left out.
        assert_eq!(&b.counts[4..], &[0, 0, 1, 1]);
        assert_eq!(b.ranges, vec![-1.5, 0.4, 10.0, 25.0]);
        assert_eq!(b.train_count, 3);
        // The map applies before binning and ranges: rounded, 0.4 -> 0.0 (bin 2), -1.5 -> -2.0.
        b.recount(&rows, 6, |x| x.round()).expect("recount");
        assert_eq!(&b.counts[..4], &[1, 0, 2, 0]);
        assert_eq!(b.ranges[..2], [-2.0, 0.0]);
        b.to_bytes().expect("still a valid baseline");
        assert!(
            b.recount(&rows, 5, |x| x).is_err(),
            "index 5 needs rows of 6"
        );
    }

    #[test]
    fn roundtrip_and_bins() {
        let bytes = sample().to_bytes().expect("valid");
        let b = MonitoringBaseline::parse(&bytes).expect("parse");
        assert_eq!(
            (b.feature_count(), b.bins(), b.score_bins(), b.class_count()),
            (2, 4, 2, 2)
        );
        assert_eq!(b.feature_index(1), Some(5));
        assert_eq!(b.count(1, 3), Some(8));
        assert_eq!(b.range(1), Some((0.0, 30.0)));
        // bin = number of edges <= x
        assert_eq!(b.feature_bin(0, -5.0), Some(0));
        assert_eq!(b.feature_bin(0, -1.0), Some(1));
        assert_eq!(b.feature_bin(0, 0.5), Some(2));
        assert_eq!(b.feature_bin(0, 1.0), Some(3));
        assert_eq!(b.feature_bin(1, 10.0), Some(2)); // tied edges: both <= 10
        assert_eq!(b.feature_bin(0, f32::NAN), None);
        assert_eq!(b.feature_bin(0, f32::INFINITY), Some(3));
        assert_eq!(b.feature_bin(2, 0.0), None);
        assert_eq!(b.score_bin(0.49), Some(0));
        assert_eq!(b.score_bin(0.5), Some(1));
        assert_eq!(b.score_accuracy(1), Some(0.9));
        assert_eq!(b.edge(0, 3), None);
        assert_eq!(b.class_prior(2), None);
    }

    #[test]
    fn rejects_bad_baselines() {
        let mut s = sample();
        s.edges[1] = -3.0;
        assert_eq!(s.to_bytes(), Err(BaselineError::BadEdges { feature: 0 }));
        let mut s = sample();
        s.counts.pop();
        assert!(matches!(
            s.to_bytes(),
            Err(BaselineError::BadLength { what: "counts", .. })
        ));
        let mut s = sample();
        s.bins = 1;
        assert!(matches!(
            s.to_bytes(),
            Err(BaselineError::OutOfRange { what: "bins", .. })
        ));
        let mut s = sample();
        s.score_edges[0] = f32::NAN;
        assert_eq!(
            s.to_bytes(),
            Err(BaselineError::BadEdges { feature: u32::MAX })
        );
        assert_eq!(
            MonitoringBaseline::parse(&[]).err(),
            Some(BaselineError::Malformed)
        );
        let bytes = sample().to_bytes().expect("valid");
        for cut in 0..bytes.len() {
            let _ = MonitoringBaseline::parse(&bytes[..cut]); // never panics
        }
    }
}
