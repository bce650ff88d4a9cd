//! What a training run leaves behind: the float32 artifact with its feature pipeline,
//! labels, monitoring baseline and provenance, plus burn's record and the config as run;
//! the training log's line ([`EpochLog`]) and the atomic writes every file goes through.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use edgeflow_format::baseline::{FrameLayout, OwnedBaseline, ScoreKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{Task, TrainConfig};
use crate::data::{hex, Features};
use crate::error::TrainError;
use crate::evaluate::{ends_with_softmax, run_artifact};
use crate::metrics;
use crate::model::{Net, Plan, Shape};
use crate::prepare::Prepared;

/// One line of the training log (`train_log.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss (weighted as the loss).
    pub train_loss: f64,
    /// Training accuracy (classifiers; computed during the epoch, dropout active).
    pub train_accuracy: Option<f64>,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation accuracy (classifiers).
    pub val_accuracy: Option<f64>,
    /// Wall time of the epoch (training + validation), seconds.
    pub seconds: f64,
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io = |e| TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// Bins per monitored feature in the baseline.
pub const FEATURE_BINS: usize = 10;
/// Bins of the validation score histogram.
pub const SCORE_BINS: usize = 10;

/// Quantile `q` of sorted values, linear interpolation (numpy's default method).
pub fn quantile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let f = pos - lo as f64;
    (sorted[lo] as f64 * (1.0 - f) + sorted[hi] as f64 * f) as f32
}

/// The model-input indices the baseline monitors: a signal's last frame (what a device
/// computes newest; [`frame_layout`] says where the earlier frames are), otherwise up to
/// 256 indices spread evenly over the input.
pub fn monitored(plan: &Plan) -> Vec<u32> {
    let max = edgeflow_format::baseline::MAX_FEATURES;
    match plan.input {
        Shape::Map { h: 1, w, c } if c <= max => ((w - 1) * c..w * c).map(|i| i as u32).collect(),
        s => {
            let n = s.len();
            if n <= max {
                (0..n as u32).collect()
            } else {
                (0..max).map(|k| (k * n / max) as u32).collect()
            }
        }
    }
}

/// The frame layout of a framed signal input (`w` frames of `c` values, the monitored
/// features being the last frame, see [`monitored`]); `None` for other inputs, for a
/// single frame and for more than [`MAX_FRAMES`](edgeflow_format::baseline::MAX_FRAMES)
/// frames (then the newest frame alone is monitored, as before frame layouts existed).
pub fn frame_layout(plan: &Plan) -> Option<FrameLayout> {
    match plan.input {
        Shape::Map { h: 1, w, c }
            if c <= edgeflow_format::baseline::MAX_FEATURES
                && w > 1
                && w <= edgeflow_format::baseline::MAX_FRAMES as usize =>
        {
            Some(FrameLayout {
                frames: u32::try_from(w).ok()?,
                frame_stride: u32::try_from(c).ok()?,
            })
        }
        _ => None,
    }
}

/// Per-feature quantile edges, training histograms and ranges (for a framed signal, over
/// every frame of every training window, as a device counts every new frame; the baseline
/// then carries the [`frame_layout`] as the baseline's frame-layout trailer); the training class prior;
/// the histogram of validation scores (the score a device reports: the top-1 probability
/// of a classifier on validation windows; the reconstruction error (MSE) of an
/// autoencoder on the normal training and validation windows, with the baseline's score
/// kind set to [`ScoreKind::ReconstructionMse`] so that the device computes the same)
/// with the accuracy in each score bin.
pub fn baseline(
    plan: &Plan,
    train: &Features,
    classes: usize,
    val_scores: &[f32],
    val_correct: Option<&[bool]>,
) -> Result<OwnedBaseline, TrainError> {
    let idx = monitored(plan);
    let layout = frame_layout(plan);
    let mut b = OwnedBaseline {
        bins: FEATURE_BINS as u16,
        feature_index: idx.clone(),
        train_count: train.len() as u32,
        frame_layout: layout,
        ..Default::default()
    };
    let (frames, stride) = layout.map_or((1, 0), |l| (l.frames as usize, l.frame_stride as usize));
    for &fi in &idx {
        let mut v: Vec<f32> = (0..train.len())
            .flat_map(|r| {
                let row = train.row(r);
                (0..frames).map(move |k| row[fi as usize - k * stride])
            })
            .collect();
        v.sort_by(f32::total_cmp);
        let edges: Vec<f32> = (1..FEATURE_BINS)
            .map(|k| quantile(&v, k as f64 / FEATURE_BINS as f64))
            .collect();
        let mut counts = vec![0u32; FEATURE_BINS];
        for &x in &v {
            counts[edges.iter().filter(|&&e| e <= x).count()] += 1;
        }
        b.edges.extend(&edges);
        b.counts.extend(counts);
        b.ranges.push(v.first().copied().unwrap_or(0.0));
        b.ranges.push(v.last().copied().unwrap_or(0.0));
    }
    if plan.task == Task::Classification {
        let mut prior = vec![0f32; classes];
        for &y in &train.y {
            prior[y] += 1.0;
        }
        let n = train.len().max(1) as f32;
        b.class_prior = prior.iter().map(|c| c / n).collect();
        b.score_edges = (1..SCORE_BINS)
            .map(|k| k as f32 / SCORE_BINS as f32)
            .collect();
    } else {
        b.score_kind = ScoreKind::ReconstructionMse;
        let mut v = val_scores.to_vec();
        v.sort_by(f32::total_cmp);
        b.score_edges = (1..SCORE_BINS)
            .map(|k| quantile(&v, k as f64 / SCORE_BINS as f64))
            .collect();
    }
    let mut counts = vec![0u32; SCORE_BINS];
    let mut right = vec![0u32; SCORE_BINS];
    for (i, &s) in val_scores.iter().enumerate() {
        let k = b.score_edges.iter().filter(|&&e| e <= s).count();
        counts[k] += 1;
        if val_correct.is_some_and(|c| c[i]) {
            right[k] += 1;
        }
    }
    if val_correct.is_some() {
        b.score_accuracy = counts
            .iter()
            .zip(&right)
            .map(|(&n, &r)| if n == 0 { 0.0 } else { r as f32 / n as f32 })
            .collect();
    }
    b.score_counts = counts;
    Ok(b)
}

/// Writes `model.edgeflow`, `model.bpk` and `train.toml` into the output directory and
/// returns the artifact's path.
pub fn write_outputs(
    cfg: &TrainConfig,
    prep: &Prepared,
    net: &Net,
    history: &[EpochLog],
    kept_epoch: usize,
    threads: usize,
) -> Result<PathBuf, TrainError> {
    let dir = &cfg.output.dir;
    let graph = crate::export::to_graph(&prep.plan, net, &cfg.name)?;
    let pipeline = edgeflow_dsp::host::to_bytes(&prep.spec).map_err(|e| TrainError::Pipeline {
        path: cfg.features.pipeline.clone(),
        message: e.to_string(),
    })?;
    let labels = match cfg.model.task {
        Task::Classification => {
            Some(edgeflow_format::labels::encode(&prep.classes).map_err(|e| {
                TrainError::Encode {
                    what: "class labels",
                    source: e.into(),
                }
            })?)
        }
        Task::Autoencoder => None,
    };
    // The graph alone first: validation scores come from the device's arithmetic.
    let bare = edgeflow_compile::emit_with(
        &graph,
        &cfg.name,
        &edgeflow_compile::Sections {
            feature_pipeline: Some(&pipeline),
            ..Default::default()
        },
    )?;
    let val = run_artifact(&bare.artifact, &prep.splits.validation, &prep.spec)?;
    let softmaxed = ends_with_softmax(&bare.artifact);
    let (scores, correct): (Vec<f32>, Option<Vec<bool>>) = match cfg.model.task {
        Task::Classification => {
            let probs: Vec<Vec<f32>> = val
                .scores
                .iter()
                .map(|s| {
                    if softmaxed {
                        s.clone()
                    } else {
                        metrics::softmax(s)
                    }
                })
                .collect();
            (
                probs.iter().map(|p| p[metrics::argmax(p)]).collect(),
                Some(
                    probs
                        .iter()
                        .zip(&val.labels)
                        .map(|(p, &y)| metrics::argmax(p) == y)
                        .collect(),
                ),
            )
        }
        // The score histogram is compared with what the device counts in its summaries:
        // the score of its prediction frame. For an autoencoder the baseline's score kind
        // (ReconstructionMse) makes the device's facade report the reconstruction error,
        // the anomaly score `evaluate` uses (`edgeflow::Prediction`). It is counted on
        // normal (class 0) windows only — the detector's output under normal operation,
        // what a deployed anomaly detector's stream is compared against; the validation
        // split also holds the anomalies, which choose the threshold in `evaluate`. The
        // normal windows of both the training and the validation split enter: windows of
        // one recording are strongly correlated, so the validation split's few normal
        // recordings alone (2 in examples/anomaly) do not describe normal operation
        // (examples/anomaly/README.md gives the measurement).
        Task::Autoencoder => {
            let train_out = run_artifact(&bare.artifact, &prep.splits.train, &prep.spec)?;
            let normal = |o: &'_ crate::evaluate::Outputs| {
                o.scores
                    .iter()
                    .zip(&o.inputs)
                    .zip(&o.labels)
                    .filter(|(_, y)| **y == 0)
                    .map(|((r, x), _)| crate::evaluate::reconstruction_error(r, x))
                    .collect::<Vec<f32>>()
            };
            let mut s = normal(&train_out);
            s.extend(normal(&val));
            (s, None)
        }
    };
    let val_accuracy = correct
        .as_ref()
        .map(|c| c.iter().filter(|&&b| b).count() as f64 / c.len().max(1) as f64);
    let base = baseline(
        &prep.plan,
        &prep.train,
        prep.classes.len(),
        &scores,
        correct.as_deref(),
    )?
    .to_bytes()
    .map_err(|e| TrainError::Encode {
        what: "monitoring baseline",
        source: e.into(),
    })?;
    // The metadata is a function of the config, seed, thread count and data, so that the
    // same training gives the same artifact bytes: wall times (`EpochLog::seconds`, in
    // `train_log.jsonl`) and the output directory (where this copy was written, not how the
    // model was made) are left out.
    let epoch = |h: Option<&EpochLog>| -> serde_json::Value {
        let mut v = serde_json::to_value(h).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("seconds");
        }
        v
    };
    let mut config = serde_json::to_value(cfg).unwrap_or_default();
    if let Some(o) = config.as_object_mut() {
        o.remove("output");
    }
    let last = history.last();
    let metadata = json!({
        "created_by": "edgeflow train",
        "edgeflow_version": env!("CARGO_PKG_VERSION"),
        "trainer": match cfg.device {
            crate::config::TrainDevice::Cpu => "burn 0.22 (flex CPU backend)",
            crate::config::TrainDevice::Wgpu => "burn 0.22 (wgpu backend)",
        },
        "device": cfg.device,
        "name": cfg.name,
        "task": cfg.model.task,
        "seed": cfg.seed,
        "threads": threads,
        "config": config,
        "data_files": prep.files.iter().map(|(p, h)| json!({"path": p.display().to_string(), "sha256": h})).collect::<Vec<_>>(),
        "feature_pipeline_sha256": hex(&Sha256::digest(&pipeline)),
        "classes": prep.classes,
        "split": {
            "train": {"recordings": prep.splits.train.len(), "examples": prep.train.len()},
            "validation": {"recordings": prep.splits.validation.len(), "examples": prep.validation.len()},
            "test": {"recordings": prep.splits.test.len(), "examples": prep.test.len()},
        },
        "training": {
            "epochs_run": history.len(),
            "kept_epoch": kept_epoch,
            "final": epoch(last),
            "kept": epoch(history.iter().find(|h| h.epoch == kept_epoch)),
        },
        "validation_accuracy_edgeflow_nn": val_accuracy,
    });
    let metadata = serde_json::to_vec(&metadata).map_err(|e| TrainError::Encode {
        what: "metadata",
        source: e.into(),
    })?;
    let full = edgeflow_compile::emit_with(
        &graph,
        &cfg.name,
        &edgeflow_compile::Sections {
            feature_pipeline: Some(&pipeline),
            labels: labels.as_deref(),
            monitoring_baseline: Some(&base),
            metadata: Some(&metadata),
        },
    )?;
    let toml_text = toml::to_string(cfg).map_err(|e| TrainError::Encode {
        what: "serialising the config",
        source: e.into(),
    })?;
    write_atomic(&dir.join("train.toml"), toml_text.as_bytes())?;
    let bpk = dir.join("model.bpk");
    let tmp = dir.join("model.tmp.bpk");
    net.clone()
        .save_file(&tmp)
        .map_err(|e| TrainError::Backend {
            doing: format!("saving {}", bpk.display()),
            message: format!("{e:?}"),
        })?;
    std::fs::rename(&tmp, &bpk).map_err(|e| TrainError::Io {
        path: bpk.clone(),
        source: e,
    })?;
    let path = dir.join("model.edgeflow");
    write_atomic(&path, &full.artifact)?;
    Ok(path)
}
