//! The reference side of every comparison: the artifact's monitoring baseline, copied out of
//! its validated view into owned vectors the analysis indexes directly.

use edgeflow_format::baseline::{MonitoringBaseline, OwnedBaseline};

/// How a feature's values are distributed, which decides the drift test (Evidently's rule,
/// see [`crate::analysis::kind_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// More than 5 distinct training values.
    Numerical,
    /// 3 to 5 distinct training values.
    Categorical,
    /// At most 2 distinct training values.
    Binary,
}

/// An owned copy of a validated baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// Bins per feature `B`.
    pub bins: usize,
    /// Model-input index of each monitored feature (`F`).
    pub feature_index: Vec<u32>,
    /// `F × (B−1)` interior edges.
    pub edges: Vec<f32>,
    /// `F × B` training counts.
    pub counts: Vec<u64>,
    /// `F × 2` training `(min, max)`.
    pub ranges: Vec<f32>,
    /// Training examples.
    pub train_count: u64,
    /// Class prior (`C`; empty for anomaly models).
    pub class_prior: Vec<f64>,
    /// `S − 1` score edges.
    pub score_edges: Vec<f32>,
    /// `S` validation score counts.
    pub score_counts: Vec<u64>,
    /// `S` validation accuracies per score bin, or empty.
    pub score_accuracy: Vec<f64>,
}

impl Baseline {
    /// Copies a validated view.
    pub fn from_view(b: &MonitoringBaseline<'_>) -> Self {
        let (f, bins, s) = (b.feature_count(), b.bins(), b.score_bins());
        let mut out = Self {
            bins,
            feature_index: (0..f).filter_map(|i| b.feature_index(i)).collect(),
            edges: Vec::with_capacity(f * (bins - 1)),
            counts: Vec::with_capacity(f * bins),
            ranges: Vec::with_capacity(2 * f),
            train_count: u64::from(b.train_count()),
            class_prior: (0..b.class_count())
                .filter_map(|c| b.class_prior(c))
                .map(f64::from)
                .collect(),
            score_edges: (0..s - 1).filter_map(|k| b.score_edge(k)).collect(),
            score_counts: (0..s)
                .filter_map(|k| b.score_count(k))
                .map(u64::from)
                .collect(),
            score_accuracy: (0..s)
                .filter_map(|k| b.score_accuracy(k))
                .map(f64::from)
                .collect(),
        };
        for i in 0..f {
            out.edges.extend((0..bins - 1).filter_map(|k| b.edge(i, k)));
            out.counts
                .extend((0..bins).filter_map(|k| b.count(i, k)).map(u64::from));
            let (lo, hi) = b.range(i).unwrap_or((0.0, 0.0));
            out.ranges.extend([lo, hi]);
        }
        out
    }

    /// Parses and copies a baseline section.
    pub fn parse(bytes: &[u8]) -> Result<Self, edgeflow_format::baseline::BaselineError> {
        MonitoringBaseline::parse(bytes).map(|v| Self::from_view(&v))
    }

    /// Validates an owned (host-built) baseline the way a device would, then copies it.
    pub fn from_owned(b: &OwnedBaseline) -> Result<Self, edgeflow_format::baseline::BaselineError> {
        let bytes = b.to_bytes()?;
        Self::parse(&bytes)
    }

    /// Number of monitored features.
    pub fn features(&self) -> usize {
        self.feature_index.len()
    }

    /// Training histogram of feature `f` (empty slice for an unknown feature).
    pub fn feature_counts(&self, f: usize) -> &[u64] {
        self.counts
            .get(f * self.bins..(f + 1) * self.bins)
            .unwrap_or(&[])
    }

    /// Interior edges of feature `f`.
    pub fn feature_edges(&self, f: usize) -> &[f32] {
        let w = self.bins - 1;
        self.edges.get(f * w..(f + 1) * w).unwrap_or(&[])
    }

    /// Training `(min, max)` of feature `f`.
    pub fn range(&self, f: usize) -> (f32, f32) {
        (
            self.ranges.get(2 * f).copied().unwrap_or(0.0),
            self.ranges.get(2 * f + 1).copied().unwrap_or(0.0),
        )
    }

    /// Bin centres of feature `f` for distances: midpoints of interior bins; the two open
    /// outer bins are closed with the training minimum and maximum.
    pub fn feature_centres(&self, f: usize) -> Vec<f64> {
        let (lo, hi) = self.range(f);
        centres(self.feature_edges(f), f64::from(lo), f64::from(hi))
    }

    /// Bin centres of the score histogram (outer bins closed at the first/last edge minus/
    /// plus one bin width of the neighbouring bin, or at 0 and 1 for scores in `[0, 1]`).
    pub fn score_centres(&self) -> Vec<f64> {
        let e = &self.score_edges;
        let lo = e.first().map_or(0.0, |&x| f64::from(x).min(0.0));
        let hi = e.last().map_or(1.0, |&x| f64::from(x).max(1.0));
        centres(e, lo, hi)
    }

    /// Validation accuracy expected at the baseline's own score distribution (the reference
    /// performance of confidence-based estimation), or `None` without a reliability table.
    pub fn reference_accuracy(&self) -> Option<f64> {
        if self.score_accuracy.len() != self.score_counts.len() {
            return None;
        }
        let n: u64 = self.score_counts.iter().sum();
        (n > 0).then(|| {
            self.score_counts
                .iter()
                .zip(&self.score_accuracy)
                .map(|(&c, a)| c as f64 * a)
                .sum::<f64>()
                / n as f64
        })
    }
}

fn centres(edges: &[f32], lo: f64, hi: f64) -> Vec<f64> {
    let e: Vec<f64> = edges.iter().map(|&x| f64::from(x)).collect();
    let mut out = Vec::with_capacity(e.len() + 1);
    let first = e.first().copied().unwrap_or(lo);
    let last = e.last().copied().unwrap_or(hi);
    out.push(0.5 * (lo.min(first) + first));
    for w in e.windows(2) {
        out.push(0.5 * (w[0] + w[1]));
    }
    out.push(0.5 * (last + hi.max(last)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_close_outer_bins_with_the_range() {
        assert_eq!(centres(&[0.0, 1.0], -1.0, 3.0), vec![-0.5, 0.5, 2.0]);
        // a minimum above the first edge cannot push the centre past the edge
        assert_eq!(centres(&[0.0], 0.5, 2.0), vec![0.0, 1.0]);
    }
}

/// Why a baseline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No training rows.
    #[error("no training rows to build a baseline from")]
    NoRows,
    /// Row `row` has `got` values, the first row had `expected`.
    #[error("training row {row} has {got} features, expected {expected}")]
    Ragged {
        /// Row number.
        row: usize,
        /// Features expected.
        expected: usize,
        /// Features found.
        got: usize,
    },
    /// The result does not validate.
    #[error("built baseline is invalid: {0}")]
    Invalid(#[from] edgeflow_format::baseline::BaselineError),
}

/// numpy's default (`linear`) quantile of sorted data.
fn quantile_sorted(v: &[f32], q: f64) -> f32 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let frac = pos - lo as f64;
    (f64::from(v[lo]) + frac * (f64::from(v[hi]) - f64::from(v[lo]))) as f32
}

/// Builds a monitoring baseline on the host from training feature rows (every value of a
/// row is monitored, `feature_index = 0..F`): `bins` quantile bins per feature (interior
/// edges at the `k/bins` quantiles, numpy's `linear` rule; NaNs ignored), the training
/// histogram, min and max; the class prior from `labels` (`classes` classes); and the score
/// histogram with per-bin accuracy from validation `(score, correct)` pairs over
/// `score_edges`.
pub fn build(
    rows: &[Vec<f32>],
    bins: u16,
    labels: &[usize],
    classes: usize,
    score_edges: &[f32],
    validation: &[(f32, bool)],
) -> Result<OwnedBaseline, BuildError> {
    let f = rows.first().ok_or(BuildError::NoRows)?.len();
    for (i, r) in rows.iter().enumerate() {
        if r.len() != f {
            return Err(BuildError::Ragged {
                row: i,
                expected: f,
                got: r.len(),
            });
        }
    }
    let b = usize::from(bins);
    let mut out = OwnedBaseline {
        bins,
        feature_index: (0..f as u32).collect(),
        train_count: rows.len() as u32,
        score_edges: score_edges.to_vec(),
        ..OwnedBaseline::default()
    };
    for j in 0..f {
        let mut col: Vec<f32> = rows
            .iter()
            .map(|r| r[j])
            .filter(|x| x.is_finite())
            .collect();
        col.sort_by(f32::total_cmp);
        let edges: Vec<f32> = if col.is_empty() {
            (1..b).map(|k| k as f32).collect()
        } else {
            (1..b)
                .map(|k| quantile_sorted(&col, k as f64 / b as f64))
                .collect()
        };
        let mut counts = vec![0u32; b];
        for &x in &col {
            counts[edges.partition_point(|&e| e <= x)] += 1;
        }
        out.ranges.extend([
            col.first().copied().unwrap_or(0.0),
            col.last().copied().unwrap_or(0.0),
        ]);
        out.edges.extend(edges);
        out.counts.extend(counts);
    }
    if classes > 0 {
        let mut c = vec![0u32; classes];
        for &l in labels.iter().filter(|&&l| l < classes) {
            c[l] += 1;
        }
        let n = c.iter().sum::<u32>().max(1) as f32;
        out.class_prior = c.iter().map(|&x| x as f32 / n).collect();
    }
    let s = score_edges.len() + 1;
    let (mut sc, mut ok) = (vec![0u32; s], vec![0u32; s]);
    for &(score, correct) in validation.iter().filter(|(s, _)| !s.is_nan()) {
        let k = score_edges.partition_point(|&e| e <= score);
        sc[k] += 1;
        ok[k] += u32::from(correct);
    }
    if !validation.is_empty() {
        // An empty bin gets the accuracy of its nearest non-empty neighbour below (or 0).
        let mut last = 0.0;
        out.score_accuracy = sc
            .iter()
            .zip(&ok)
            .map(|(&n, &k)| {
                if n > 0 {
                    last = k as f32 / n as f32;
                }
                last
            })
            .collect();
    }
    out.score_counts = sc;
    out.to_bytes()?;
    Ok(out)
}
