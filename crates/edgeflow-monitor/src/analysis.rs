//! Checks one window against the baseline: data drift per feature, prediction drift (class
//! mix and score), estimated and realised performance, data quality and device health. The
//! thresholds come from a TOML file ([`Thresholds`]); every crossed threshold becomes an
//! [`Alert`] that names the feature, the test, the value and the threshold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, FeatureKind};
use crate::stats;
use crate::window::WindowSummary;

/// A drift test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Choose by reference size and feature kind, as Evidently does ([`Method::choose`]).
    Auto,
    /// Population Stability Index (drift when `>= threshold`).
    Psi,
    /// Kolmogorov–Smirnov on the binned CDFs (drift when `p < threshold`).
    Ks,
    /// Jensen–Shannon distance (drift when `>= threshold`).
    JensenShannon,
    /// Normed Wasserstein distance (drift when `>= threshold`).
    Wasserstein,
    /// Chi-squared against the reference shares (drift when `p < threshold`).
    ChiSquared,
    /// Two-proportion Z-test, binary features (drift when `p < threshold`).
    ZTest,
}

impl Method {
    /// Evidently's default test: with at most 1000 reference observations, KS for
    /// numerical features, chi-squared for categorical, the Z-test for binary; with more,
    /// Wasserstein (normed) for numerical and Jensen–Shannon for the others.
    pub fn choose(reference_size: u64, kind: FeatureKind) -> Method {
        match (reference_size <= 1000, kind) {
            (true, FeatureKind::Numerical) => Method::Ks,
            (true, FeatureKind::Categorical) => Method::ChiSquared,
            (true, FeatureKind::Binary) => Method::ZTest,
            (false, FeatureKind::Numerical) => Method::Wasserstein,
            (false, _) => Method::JensenShannon,
        }
    }

    /// Whether the method reports a p-value (drift when below the threshold) rather than a
    /// distance (drift when at or above it).
    pub fn is_p_value(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquared | Method::ZTest)
    }

    /// The short name used in reports and alerts.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Psi => "psi",
            Method::Ks => "ks",
            Method::JensenShannon => "jensen_shannon",
            Method::Wasserstein => "wasserstein",
            Method::ChiSquared => "chi_squared",
            Method::ZTest => "z_test",
        }
    }
}

/// Default thresholds per test, Evidently's: 0.05 for p-values, 0.1 for the distances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestThresholds {
    /// PSI at or above which a feature drifted.
    pub psi: f64,
    /// KS p-value below which a feature drifted.
    pub ks: f64,
    /// Jensen–Shannon distance at or above which a feature drifted.
    pub jensen_shannon: f64,
    /// Normed Wasserstein distance at or above which a feature drifted.
    pub wasserstein: f64,
    /// Chi-squared p-value below which a feature drifted.
    pub chi_squared: f64,
    /// Z-test p-value below which a feature drifted.
    pub z_test: f64,
}

impl Default for TestThresholds {
    fn default() -> Self {
        Self {
            psi: 0.1,
            ks: 0.05,
            jensen_shannon: 0.1,
            wasserstein: 0.1,
            chi_squared: 0.05,
            z_test: 0.05,
        }
    }
}

impl TestThresholds {
    /// The threshold of `m` (`Auto` has none; it resolves first).
    pub fn get(&self, m: Method) -> f64 {
        match m {
            Method::Auto => f64::NAN,
            Method::Psi => self.psi,
            Method::Ks => self.ks,
            Method::JensenShannon => self.jensen_shannon,
            Method::Wasserstein => self.wasserstein,
            Method::ChiSquared => self.chi_squared,
            Method::ZTest => self.z_test,
        }
    }
}

/// A per-feature override.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureOverride {
    /// Test for this feature.
    pub method: Option<Method>,
    /// Threshold for this feature (in the method's own unit).
    pub threshold: Option<f64>,
}

/// Data-drift settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Test for every feature unless overridden.
    pub method: Method,
    /// Thresholds per test.
    pub thresholds: TestThresholds,
    /// Per-feature overrides, keyed by monitored-feature number (`"0"`, `"1"`, …).
    pub feature: BTreeMap<String, FeatureOverride>,
    /// Windows with fewer inferences than this are not tested (too few to say anything).
    pub min_inferences: u64,
    /// Divide p-value thresholds by the number of monitored features (Bonferroni), so the
    /// chance of any false alarm in a clean window stays at the threshold instead of growing
    /// with the feature count. Distance thresholds are unchanged.
    pub bonferroni: bool,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            method: Method::Auto,
            thresholds: TestThresholds::default(),
            feature: BTreeMap::new(),
            min_inferences: 30,
            bonferroni: false,
        }
    }
}

/// Prediction-drift settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictionConfig {
    /// Chi-squared p-value (class mix vs training prior) below which predictions drifted.
    pub class_p_value: f64,
    /// Test for the score histogram against the validation scores.
    pub score_method: Method,
    /// Threshold of that test (NaN: the test's default from `[drift.thresholds]`).
    pub score_threshold: Option<f64>,
}

impl Default for PredictionConfig {
    fn default() -> Self {
        Self {
            class_p_value: 0.05,
            score_method: Method::Auto,
            score_threshold: None,
        }
    }
}

/// Performance settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceConfig {
    /// Alert when estimated (or realised) accuracy falls more than this below the reference.
    pub max_drop: f64,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        Self { max_drop: 0.05 }
    }
}

/// Data-quality settings (rates are per monitored value or per raw sample).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Largest tolerated share of NaN feature values.
    pub max_nan_rate: f64,
    /// Largest tolerated share of feature values outside the training range.
    pub max_out_of_range_rate: f64,
    /// Largest tolerated saturated samples per inference.
    pub max_saturated_per_inference: f64,
    /// Largest tolerated dropped samples per inference.
    pub max_dropped_per_inference: f64,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            max_nan_rate: 0.0,
            max_out_of_range_rate: 0.05,
            max_saturated_per_inference: 0.0,
            max_dropped_per_inference: 0.0,
        }
    }
}

/// Device-health settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Largest tolerated inference latency, microseconds (0: not checked).
    pub max_latency_us: u32,
    /// Largest tolerated resets per window.
    pub max_resets: u32,
    /// Largest tolerated share of lost frames (gaps / (frames + gaps)).
    pub max_gap_rate: f64,
    /// Stack bytes available (0: not checked); alert above `stack_limit`.
    pub stack_limit: u32,
    /// Arena bytes available (0: not checked).
    pub arena_limit: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            max_latency_us: 0,
            max_resets: 0,
            max_gap_rate: 0.01,
            stack_limit: 0,
            arena_limit: 0,
        }
    }
}

/// All thresholds, as read from the monitoring TOML.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Data drift.
    pub drift: DriftConfig,
    /// Prediction drift.
    pub prediction: PredictionConfig,
    /// Performance.
    pub performance: PerformanceConfig,
    /// Data quality.
    pub quality: QualityConfig,
    /// Device health.
    pub health: HealthConfig,
}

/// A thresholds file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not valid TOML for [`Thresholds`].
    #[error("thresholds TOML is invalid: {0}")]
    Toml(#[from] toml::de::Error),
    /// A per-feature override names something that is not a feature number.
    #[error("[drift.feature.\"{0}\"]: not a monitored feature number")]
    BadFeature(String),
    /// A threshold is not finite or not in its range.
    #[error("threshold {what} = {value} is out of range")]
    BadThreshold {
        /// Which setting.
        what: String,
        /// Its value.
        value: f64,
    },
}

impl Thresholds {
    /// Parses and validates a thresholds TOML (unknown keys are errors).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let t: Thresholds = toml::from_str(text)?;
        t.validate()?;
        Ok(t)
    }

    /// Checks that thresholds are finite and non-negative and overrides name numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let th = &self.drift.thresholds;
        let checks = [
            ("drift.thresholds.psi", th.psi),
            ("drift.thresholds.ks", th.ks),
            ("drift.thresholds.jensen_shannon", th.jensen_shannon),
            ("drift.thresholds.wasserstein", th.wasserstein),
            ("drift.thresholds.chi_squared", th.chi_squared),
            ("drift.thresholds.z_test", th.z_test),
            ("prediction.class_p_value", self.prediction.class_p_value),
            ("performance.max_drop", self.performance.max_drop),
            ("quality.max_nan_rate", self.quality.max_nan_rate),
            (
                "quality.max_out_of_range_rate",
                self.quality.max_out_of_range_rate,
            ),
            ("health.max_gap_rate", self.health.max_gap_rate),
        ];
        for (what, value) in checks {
            if !value.is_finite() || value < 0.0 {
                return Err(ConfigError::BadThreshold {
                    what: what.into(),
                    value,
                });
            }
        }
        for (k, o) in &self.drift.feature {
            if k.parse::<usize>().is_err() {
                return Err(ConfigError::BadFeature(k.clone()));
            }
            if let Some(v) = o.threshold {
                if !v.is_finite() || v < 0.0 {
                    return Err(ConfigError::BadThreshold {
                        what: format!("drift.feature.{k}.threshold"),
                        value: v,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The drift result for one histogram.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftResult {
    /// The test that ran.
    pub method: Method,
    /// Distance, or p-value for p-value tests.
    pub value: f64,
    /// The threshold compared with.
    pub threshold: f64,
    /// Whether the threshold was crossed.
    pub drifted: bool,
    /// PSI, reported beside the chosen test for every feature (the field's common number).
    pub psi: f64,
}

/// Runs `method` (already resolved, not `Auto`) on two histograms.
pub fn run_test(
    method: Method,
    reference: &[u64],
    current: &[u64],
    centres: &[f64],
    threshold: f64,
) -> Result<DriftResult, stats::StatError> {
    let value = match method {
        Method::Psi => stats::psi(reference, current)?,
        Method::Ks => stats::ks_binned(reference, current)?.p_value,
        Method::JensenShannon => stats::jensen_shannon(reference, current)?,
        Method::Wasserstein => stats::wasserstein_normed(reference, current, centres)?,
        Method::ChiSquared | Method::Auto => stats::chi_squared_drift(reference, current)?.p_value,
        Method::ZTest => {
            // Evidently: the first category seen (smallest value) against all others.
            let k0 = (0..reference.len())
                .find(|&k| reference[k] > 0 || current.get(k).is_some_and(|&c| c > 0))
                .unwrap_or(0);
            let (n, m): (u64, u64) = (reference.iter().sum(), current.iter().sum());
            let (r0, c0) = (
                reference.get(k0).copied().unwrap_or(0),
                current.get(k0).copied().unwrap_or(0),
            );
            stats::z_test_binary(&[r0, n - r0], &[c0, m - c0])?.p_value
        }
    };
    let drifted = if method.is_p_value() {
        value < threshold
    } else {
        value >= threshold
    };
    Ok(DriftResult {
        method,
        value,
        threshold,
        drifted,
        psi: stats::psi(reference, current)?,
    })
}

/// One crossed threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    /// What was checked: `feature`, `class_mix`, `score`, `performance`, `quality`, `health`.
    pub area: &'static str,
    /// The feature number for data drift.
    pub feature: Option<usize>,
    /// The test or counter.
    pub test: String,
    /// The value seen.
    pub value: f64,
    /// The threshold crossed.
    pub threshold: f64,
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.feature {
            Some(i) => format!("feature {i}"),
            None => self.area.to_string(),
        };
        write!(
            f,
            "{what}: {} = {:.6} crossed threshold {}",
            self.test, self.value, self.threshold
        )
    }
}

/// Performance of one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Performance {
    /// Accuracy on the validation split at its own score distribution.
    pub reference_accuracy: f64,
    /// Confidence-based estimate for this window (CBPE with a histogram-binning
    /// calibration: `Σ_k n_k · acc_k / Σ_k n_k`).
    pub estimated_accuracy: f64,
    /// Standard error of the realised accuracy given the estimate (`sqrt(Σ n_k acc_k (1 −
    /// acc_k)) / n`): each prediction is correct with its bin's probability.
    pub estimate_std: f64,
    /// Accuracy against labels that arrived later, with the number of labelled predictions.
    pub realised: Option<(f64, u64)>,
}

/// Everything the analysis says about one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowReport {
    /// Inferences in the window.
    pub inferences: u64,
    /// Per monitored feature, its drift result (`None` when the window is too small).
    pub features: Vec<Option<DriftResult>>,
    /// Class mix against the prior: chi-squared statistic and p-value.
    pub class_mix: Option<stats::TestResult>,
    /// Score histogram against the validation scores.
    pub score: Option<DriftResult>,
    /// Performance, when the baseline carries a reliability table.
    pub performance: Option<Performance>,
    /// Crossed thresholds.
    pub alerts: Vec<Alert>,
}

/// The window does not have the baseline's shape.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("window {what} has {got} counts, the baseline needs {expected}")]
pub struct ShapeError {
    /// Which part.
    pub what: &'static str,
    /// Counts expected.
    pub expected: usize,
    /// Counts found.
    pub got: usize,
}

/// Analyses `w` against `b` with thresholds `t`; `realised` is `(correct, labelled)` from
/// late labels, if any.
pub fn analyze(
    b: &Baseline,
    w: &WindowSummary,
    t: &Thresholds,
    realised: Option<(u64, u64)>,
) -> Result<WindowReport, ShapeError> {
    let shape = |what, expected: usize, got: usize| {
        if expected == got {
            Ok(())
        } else {
            Err(ShapeError {
                what,
                expected,
                got,
            })
        }
    };
    shape(
        "feature_counts",
        b.features() * b.bins,
        w.feature_counts.len(),
    )?;
    shape("class_counts", b.class_prior.len(), w.class_counts.len())?;
    shape("score_counts", b.score_counts.len(), w.score_counts.len())?;

    let mut alerts = Vec::new();
    let enough = w.inferences >= t.drift.min_inferences;
    let mut features = Vec::with_capacity(b.features());
    for f in 0..b.features() {
        let o = t.drift.feature.get(&f.to_string());
        let mut method = o.and_then(|o| o.method).unwrap_or(t.drift.method);
        if method == Method::Auto {
            // The reference's size is the values its histogram counts: the training
            // windows, or with a framed baseline (frame-layout trailer) every frame of them.
            method = Method::choose(
                b.feature_counts(f).iter().sum(),
                kind_of_feature(
                    b.feature_edges(f),
                    b.feature_counts(f),
                    w.feature(f, b.bins),
                ),
            );
        }
        let mut threshold = o
            .and_then(|o| o.threshold)
            .unwrap_or_else(|| t.drift.thresholds.get(method));
        if t.drift.bonferroni && method.is_p_value() {
            threshold /= b.features().max(1) as f64;
        }
        let res = if enough {
            run_test(
                method,
                b.feature_counts(f),
                w.feature(f, b.bins),
                &b.feature_centres(f),
                threshold,
            )
            .ok()
        } else {
            None
        };
        if let Some(r) = &res {
            if r.drifted {
                alerts.push(Alert {
                    area: "feature",
                    feature: Some(f),
                    test: method.name().into(),
                    value: r.value,
                    threshold,
                });
            }
        }
        features.push(res);
    }

    let class_mix = if enough && !b.class_prior.is_empty() {
        stats::chi_squared_gof(&w.class_counts, &b.class_prior).ok()
    } else {
        None
    };
    if let Some(r) = class_mix {
        if r.p_value < t.prediction.class_p_value {
            alerts.push(Alert {
                area: "class_mix",
                feature: None,
                test: "chi_squared".into(),
                value: r.p_value,
                threshold: t.prediction.class_p_value,
            });
        }
    }

    let score = if enough {
        let n_ref: u64 = b.score_counts.iter().sum();
        let mut m = t.prediction.score_method;
        if m == Method::Auto {
            m = Method::choose(n_ref, FeatureKind::Numerical);
        }
        let th = t
            .prediction
            .score_threshold
            .unwrap_or_else(|| t.drift.thresholds.get(m));
        run_test(m, &b.score_counts, &w.score_counts, &b.score_centres(), th).ok()
    } else {
        None
    };
    if let Some(r) = &score {
        if r.drifted {
            alerts.push(Alert {
                area: "score",
                feature: None,
                test: r.method.name().into(),
                value: r.value,
                threshold: r.threshold,
            });
        }
    }

    let performance = estimate_performance(b, w, realised);
    if let (Some(p), true) = (&performance, enough) {
        let floor = p.reference_accuracy - t.performance.max_drop;
        if p.estimated_accuracy < floor {
            alerts.push(Alert {
                area: "performance",
                feature: None,
                test: "estimated_accuracy".into(),
                value: p.estimated_accuracy,
                threshold: floor,
            });
        }
        if let Some((acc, _)) = p.realised {
            if acc < floor {
                alerts.push(Alert {
                    area: "performance",
                    feature: None,
                    test: "realised_accuracy".into(),
                    value: acc,
                    threshold: floor,
                });
            }
        }
    }

    quality_and_health(b, w, t, &mut alerts);
    Ok(WindowReport {
        inferences: w.inferences,
        features,
        class_mix,
        score,
        performance,
        alerts,
    })
}

/// Evidently's kind of a column: the number of distinct values seen in reference and
/// current together (here: bins non-empty in either) — binary up to 2, categorical up to
/// 5, numerical above.
pub fn kind_of(reference: &[u64], current: &[u64]) -> FeatureKind {
    let distinct = (0..reference.len().max(current.len()))
        .filter(|&k| {
            reference.get(k).is_some_and(|&c| c > 0) || current.get(k).is_some_and(|&c| c > 0)
        })
        .count();
    match distinct {
        0..=2 => FeatureKind::Binary,
        3..=5 => FeatureKind::Categorical,
        _ => FeatureKind::Numerical,
    }
}

/// The kind of a monitored feature. A feature whose training quantile edges are strictly
/// increasing (at least 5 edges: no single value holds a bin's share of the training data)
/// took many distinct training values: numerical, whatever the counts. Otherwise
/// [`kind_of`] counts the non-empty bins.
///
/// Why the edges first: the baseline's bins merge values, and on an int8 model the counts
/// are taken on the device's quantization grid (`edgeflow quantize --baseline-data`), so a
/// continuous feature that spans few int8 steps fills only some of the float edges' bins
/// (measured on the anomaly example: a gyroscope standard deviation spanning 7 int8 levels
/// filled 5 of 10 bins). Counted as distinct values that would make it "categorical" and
/// put a chi-squared test on an ordered quantity, which Evidently would test with KS (more
/// than 5 distinct values). Discrete features (one-hot, pixel intensities with many equal
/// values) have repeated edges and keep the count rule.
pub fn kind_of_feature(edges: &[f32], reference: &[u64], current: &[u64]) -> FeatureKind {
    if edges.len() >= 5 && edges.windows(2).all(|p| p[0] < p[1]) {
        FeatureKind::Numerical
    } else {
        kind_of(reference, current)
    }
}

/// Confidence-based performance estimation (the idea of NannyML's CBPE): the baseline's
/// reliability table gives, per score bin, the probability that a prediction with that
/// score is correct; the expected accuracy of a window is the count-weighted mean of it.
pub fn estimate_performance(
    b: &Baseline,
    w: &WindowSummary,
    realised: Option<(u64, u64)>,
) -> Option<Performance> {
    let reference_accuracy = b.reference_accuracy()?;
    let n: u64 = w.score_counts.iter().sum();
    if n == 0 || w.score_counts.len() != b.score_accuracy.len() {
        return None;
    }
    let (mut e, mut v) = (0.0, 0.0);
    for (&c, &a) in w.score_counts.iter().zip(&b.score_accuracy) {
        e += c as f64 * a;
        v += c as f64 * a * (1.0 - a);
    }
    Some(Performance {
        reference_accuracy,
        estimated_accuracy: e / n as f64,
        estimate_std: v.sqrt() / n as f64,
        realised: realised
            .filter(|&(_, l)| l > 0)
            .map(|(c, l)| (c as f64 / l as f64, l)),
    })
}

fn quality_and_health(b: &Baseline, w: &WindowSummary, t: &Thresholds, alerts: &mut Vec<Alert>) {
    // Feature values counted: one per feature per inference, or, with a framed baseline
    // (frame-layout trailer), one per feature per new frame; each went to a bin or was NaN.
    let binned: u64 = w.feature_counts.iter().sum();
    let values = (binned + w.quality.nan)
        .max(w.inferences * b.features() as u64)
        .max(1) as f64;
    let inf = w.inferences.max(1) as f64;
    let q = &w.quality;
    let mut push = |area, test: &str, value: f64, threshold: f64| {
        if value > threshold {
            alerts.push(Alert {
                area,
                feature: None,
                test: test.into(),
                value,
                threshold,
            });
        }
    };
    let qc = &t.quality;
    push(
        "quality",
        "nan_rate",
        q.nan as f64 / values,
        qc.max_nan_rate,
    );
    push(
        "quality",
        "out_of_range_rate",
        q.out_of_range as f64 / values,
        qc.max_out_of_range_rate,
    );
    push(
        "quality",
        "saturated_per_inference",
        q.saturated as f64 / inf,
        qc.max_saturated_per_inference,
    );
    push(
        "quality",
        "dropped_per_inference",
        q.dropped as f64 / inf,
        qc.max_dropped_per_inference,
    );
    let h = &w.health;
    let hc = &t.health;
    if hc.max_latency_us > 0 {
        push(
            "health",
            "latency_max_us",
            f64::from(h.latency_max_us),
            f64::from(hc.max_latency_us),
        );
    }
    push(
        "health",
        "resets",
        f64::from(h.resets),
        f64::from(hc.max_resets),
    );
    let frames = w.inferences + h.gaps;
    if frames > 0 {
        push(
            "health",
            "gap_rate",
            h.gaps as f64 / frames as f64,
            hc.max_gap_rate,
        );
    }
    if hc.stack_limit > 0 {
        push(
            "health",
            "stack_high_water",
            f64::from(h.stack_high_water),
            f64::from(hc.stack_limit),
        );
    }
    if hc.arena_limit > 0 {
        push(
            "health",
            "arena_high_water",
            f64::from(h.arena_high_water),
            f64::from(hc.arena_limit),
        );
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn strictly_increasing_edges_make_a_feature_numerical() {
        // The anomaly example's feature 21 as the device bins it (int8 grid), training and
        // clean-replay counts as measured: 5 non-empty bins; its 9 float quantile edges are
        // distinct (the values here stand in for them).
        let edges = [0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12];
        let reference = [7, 0, 0, 69, 0, 0, 38, 0, 16, 22];
        let current = [24, 0, 0, 77, 0, 0, 43, 0, 28, 18];
        assert_eq!(kind_of(&reference, &current), FeatureKind::Categorical);
        assert_eq!(
            kind_of_feature(&edges, &reference, &current),
            FeatureKind::Numerical
        );
        // Repeated edges (a value holding several bins' share): the count rule decides.
        let tied = [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 1.0];
        let two = [0, 0, 0, 0, 50, 0, 0, 0, 0, 50];
        assert_eq!(kind_of_feature(&tied, &two, &two), FeatureKind::Binary);
        assert_eq!(
            kind_of_feature(&tied, &reference, &current),
            FeatureKind::Categorical
        );
    }
}
