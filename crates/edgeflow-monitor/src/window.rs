//! What one device reports about one window of inferences: the counts the analysis compares
//! against the baseline. Summary frames from the telemetry decoder are converted into this
//! type, and windows add up (per device over time, or over a fleet).

use serde::{Deserialize, Serialize};

/// Data-quality counters over a window (all counts of input values or samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataQuality {
    /// Monitored feature values that were NaN (they have no bin).
    pub nan: u64,
    /// Monitored feature values outside the training `[min, max]`.
    pub out_of_range: u64,
    /// Raw sensor samples at the ADC's full-scale limits.
    pub saturated: u64,
    /// Raw sensor samples the device dropped (buffer overrun).
    pub dropped: u64,
}

/// Device health over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Largest inference latency seen, microseconds.
    pub latency_max_us: u32,
    /// Sum of inference latencies, microseconds (mean = sum / inferences).
    pub latency_sum_us: u64,
    /// Highest stack use seen, bytes.
    pub stack_high_water: u32,
    /// Highest arena use seen, bytes.
    pub arena_high_water: u32,
    /// Resets (boots) seen in the window.
    pub resets: u32,
    /// Telemetry frames lost (sequence-number gaps).
    pub gaps: u64,
    /// Frames rejected as corrupt (CRC or decoding).
    pub corrupt: u64,
}

/// Counts of one window, shaped by the baseline: `F × B` feature bins, `C` classes, `S`
/// score bins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Inferences summarised.
    pub inferences: u64,
    /// `F × B` counts of monitored feature values per baseline bin, feature-major.
    pub feature_counts: Vec<u64>,
    /// Predictions per class (`C`).
    pub class_counts: Vec<u64>,
    /// Top-1 scores per baseline score bin (`S`).
    pub score_counts: Vec<u64>,
    /// Data quality.
    pub quality: DataQuality,
    /// Device health.
    pub health: Health,
}

impl WindowSummary {
    /// An all-zero window for a baseline of `features × bins`, `classes`, `score_bins`.
    pub fn zeros(features: usize, bins: usize, classes: usize, score_bins: usize) -> Self {
        Self {
            feature_counts: vec![0; features * bins],
            class_counts: vec![0; classes],
            score_counts: vec![0; score_bins],
            ..Self::default()
        }
    }

    /// Adds another window of the same shape (counts add, maxima take the max). Shapes that
    /// differ are added element-wise over the common prefix and the longer one wins, so a
    /// merge never panics; the analysis checks shapes against the baseline.
    pub fn merge(&mut self, other: &WindowSummary) {
        fn add(a: &mut Vec<u64>, b: &[u64]) {
            if a.len() < b.len() {
                a.resize(b.len(), 0);
            }
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.inferences += other.inferences;
        add(&mut self.feature_counts, &other.feature_counts);
        add(&mut self.class_counts, &other.class_counts);
        add(&mut self.score_counts, &other.score_counts);
        let (q, o) = (&mut self.quality, &other.quality);
        q.nan += o.nan;
        q.out_of_range += o.out_of_range;
        q.saturated += o.saturated;
        q.dropped += o.dropped;
        let (h, o) = (&mut self.health, &other.health);
        h.latency_max_us = h.latency_max_us.max(o.latency_max_us);
        h.latency_sum_us += o.latency_sum_us;
        h.stack_high_water = h.stack_high_water.max(o.stack_high_water);
        h.arena_high_water = h.arena_high_water.max(o.arena_high_water);
        h.resets += o.resets;
        h.gaps += o.gaps;
        h.corrupt += o.corrupt;
    }

    /// Counts of feature `f` (empty if out of range).
    pub fn feature(&self, f: usize, bins: usize) -> &[u64] {
        self.feature_counts
            .get(f * bins..(f + 1) * bins)
            .unwrap_or(&[])
    }
}
