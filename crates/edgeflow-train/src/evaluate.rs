//! Evaluation through edgeflow-nn — the device's arithmetic — of a float or int8
//! artifact on the splits a training config defines.
//!
//! Features come from the artifact's own feature-pipeline section (for an int8 artifact
//! that pipeline quantizes with the model input's scale and zero point, exactly as the
//! device does); an artifact without one uses the config's pipeline.

use edgeflow_dsp::host::{self, Spec};
use edgeflow_dsp::{OutputType, Pipeline};
use edgeflow_format::graph::DType;
use serde::{Deserialize, Serialize};

use crate::config::{Task, TrainConfig};
use crate::data::Recording;
use crate::error::{RunError, TrainError};
use crate::metrics::{self, Report};
use crate::prepare::{prepare, Prepared};

/// Model outputs (dequantized to f32) and, for autoencoders, the inputs it saw.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// One output row per example.
    pub scores: Vec<Vec<f32>>,
    /// The (dequantized) model input of each example.
    pub inputs: Vec<Vec<f32>>,
    /// Class of each example.
    pub labels: Vec<usize>,
}

fn run_err(e: impl Into<RunError>) -> TrainError {
    TrainError::Run(e.into())
}

/// Runs `artifact` on every complete pipeline output of `recs`.
pub fn run_artifact(
    artifact: &[u8],
    recs: &[Recording],
    fallback: &Spec,
) -> Result<Outputs, TrainError> {
    let m = edgeflow_nn::Model::parse(artifact).map_err(run_err)?;
    let owned;
    let pipeline = match m.artifact().feature_pipeline {
        Some(s) => Pipeline::from_bytes(s).map_err(run_err)?,
        None => {
            owned = fallback.clone();
            Pipeline::new(owned).map_err(run_err)?
        }
    };
    let h = m.header();
    let (Some(in_def), Some(out_def)) = (h.inputs.first().copied(), h.outputs.first().copied())
    else {
        return Err(RunError::NoInputOutput.into());
    };
    let in_len = in_def.shape.num_elements().unwrap_or(0);
    let need = in_len * in_def.dtype.size();
    let pipeline_type = pipeline.output_type();
    match (in_def.dtype, pipeline_type) {
        (DType::F32, OutputType::F32) | (DType::I8, OutputType::I8) => {}
        (d, t) => {
            return Err(RunError::InputType {
                model: d,
                pipeline: t,
            }
            .into())
        }
    }
    if pipeline.output_bytes() != need {
        return Err(RunError::InputLen {
            pipeline: pipeline.output_len(),
            model: in_len,
        }
        .into());
    }
    let samples: Vec<_> = recs.iter().map(|r| r.input.clone()).collect();
    let feats = host::run_many(&pipeline, &samples).map_err(run_err)?;
    let mut arena = edgeflow_nn::HostArena::for_model(&m).map_err(|_| RunError::Arena {
        bytes: m.arena_bytes(),
    })?;
    let mut rt = edgeflow_nn::Runtime::new(&m, arena.as_mut_bytes()).map_err(run_err)?;
    let deq_in = |b: &[u8]| -> Vec<f32> {
        match in_def.dtype {
            DType::I8 => {
                let q = in_def.quant.map_or((1.0, 0), |q| (q.scale, q.zero_point));
                b.iter()
                    .map(|&v| q.0 * (v as i8 as i32 - q.1) as f32)
                    .collect()
            }
            _ => host::as_f32(b),
        }
    };
    let mut out = Outputs::default();
    for (r, fs) in recs.iter().zip(feats) {
        for f in fs {
            rt.input_mut(0).map_err(run_err)?.copy_from_slice(&f);
            rt.invoke().map_err(run_err)?;
            let o = rt.output(0).map_err(run_err)?;
            let row = match out_def.dtype {
                DType::F32 => host::as_f32(o),
                DType::I8 => {
                    let q = out_def.quant.map_or((1.0, 0), |q| (q.scale, q.zero_point));
                    o.iter()
                        .map(|&v| q.0 * (v as i8 as i32 - q.1) as f32)
                        .collect()
                }
                DType::I32 => o
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                    .collect(),
            };
            out.scores.push(row);
            out.inputs.push(deq_in(&f));
            out.labels.push(r.label);
        }
    }
    Ok(out)
}

/// Whether the artifact's output is probabilities: its last op is a softmax, or a
/// DEQUANTIZE / QUANTIZE after one (an int8 model with float input and output ends with
/// DEQUANTIZE; its scores must not be put through a second softmax).
pub fn ends_with_softmax(artifact: &[u8]) -> bool {
    let Ok(m) = edgeflow_nn::Model::parse(artifact) else {
        return false;
    };
    let names: Vec<&str> = m.ops().map(|o| o.op.name()).collect();
    names
        .iter()
        .rev()
        .find(|&&n| n != "DEQUANTIZE" && n != "QUANTIZE")
        .is_some_and(|&n| n == "SOFTMAX")
}

/// Scores a classifier can be judged on: probabilities (softmax applied on the host to
/// logits), or the anomaly score `[1 - s, s]` of an autoencoder.
fn class_scores(task: Task, o: &Outputs, softmaxed: bool) -> Vec<Vec<f32>> {
    match task {
        Task::Classification => o
            .scores
            .iter()
            .map(|s| {
                if softmaxed {
                    s.clone()
                } else {
                    metrics::softmax(s)
                }
            })
            .collect(),
        Task::Autoencoder => o
            .scores
            .iter()
            .zip(&o.inputs)
            .map(|(r, x)| {
                let e = reconstruction_error(r, x);
                vec![-e, e]
            })
            .collect(),
    }
}

/// Mean squared error between a reconstruction and its input (the anomaly score).
pub fn reconstruction_error(r: &[f32], x: &[f32]) -> f32 {
    let n = r.len().max(1) as f32;
    r.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / n
}

/// Float-vs-int8 agreement on the same examples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Examples compared.
    pub n: usize,
    /// Fraction with the same top-1 class.
    pub top1: f64,
    /// Largest absolute difference of any output score.
    pub max_score_diff: f64,
}

/// One model's evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelEval {
    /// Artifact path.
    pub artifact: String,
    /// Its input type (`f32` or `i8`).
    pub input_type: String,
    /// Metrics on the test split.
    pub test: Report,
    /// Metrics on the validation split.
    pub validation: Report,
}

/// `edgeflow evaluate`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Class names.
    pub classes: Vec<String>,
    /// The float model.
    pub float: ModelEval,
    /// The int8 model, if given.
    pub int8: Option<ModelEval>,
    /// Agreement of float and int8 on the test split.
    pub agreement: Option<Agreement>,
}

fn eval_one(
    cfg: &TrainConfig,
    prep: &Prepared,
    path: &str,
    bytes: &[u8],
) -> Result<(ModelEval, Vec<Vec<f32>>), TrainError> {
    let softmaxed = ends_with_softmax(bytes);
    let val = run_artifact(bytes, &prep.splits.validation, &prep.spec)?;
    let test = run_artifact(bytes, &prep.splits.test, &prep.spec)?;
    let task = cfg.model.task;
    let (classes, vl, tl) = match task {
        Task::Classification => (prep.classes.len(), val.labels.clone(), test.labels.clone()),
        // Anomaly: class 0 is normal, every other class an anomaly.
        Task::Autoencoder => (
            2,
            val.labels.iter().map(|&l| (l != 0) as usize).collect(),
            test.labels.iter().map(|&l| (l != 0) as usize).collect(),
        ),
    };
    let vs = class_scores(task, &val, softmaxed);
    let ts = class_scores(task, &test, softmaxed);
    let threshold = if classes == 2 {
        let y: Vec<bool> = vl.iter().map(|&l| l == 1).collect();
        let s: Vec<f64> = vs.iter().map(|s| s[1] as f64).collect();
        metrics::best_f1_threshold(&y, &s)
    } else {
        None
    };
    let probs = task == Task::Classification;
    let input_type = edgeflow_nn::Model::parse(bytes)
        .ok()
        .and_then(|m| m.header().inputs.first().map(|d| d.dtype))
        .map_or("?".into(), |d| match d {
            DType::I8 => "int8".to_string(),
            DType::F32 => "float32".to_string(),
            DType::I32 => "int32".to_string(),
        });
    Ok((
        ModelEval {
            artifact: path.to_string(),
            input_type,
            validation: metrics::report(&vl, &vs, classes, probs, threshold),
            test: metrics::report(&tl, &ts, classes, probs, threshold),
        },
        ts,
    ))
}

/// Evaluates the float artifact (and optionally an int8 one) on the config's splits.
pub fn evaluate(
    cfg: &TrainConfig,
    float: (&str, &[u8]),
    int8: Option<(&str, &[u8])>,
) -> Result<Evaluation, TrainError> {
    let prep = prepare(cfg)?;
    let (f, fs) = eval_one(cfg, &prep, float.0, float.1)?;
    let (q, agreement) = match int8 {
        Some((p, b)) => {
            let (q, qs) = eval_one(cfg, &prep, p, b)?;
            let n = fs.len().min(qs.len());
            let same = (0..n)
                .filter(|&i| metrics::argmax(&fs[i]) == metrics::argmax(&qs[i]))
                .count();
            let diff = (0..n)
                .flat_map(|i| fs[i].iter().zip(&qs[i]).map(|(a, b)| (a - b).abs() as f64))
                .fold(0.0, f64::max);
            (
                Some(q),
                Some(Agreement {
                    n,
                    top1: same as f64 / n.max(1) as f64,
                    max_score_diff: diff,
                }),
            )
        }
        None => (None, None),
    };
    Ok(Evaluation {
        classes: match cfg.model.task {
            Task::Classification => prep.classes.clone(),
            Task::Autoencoder => vec!["normal".into(), "anomaly".into()],
        },
        float: f,
        int8: q,
        agreement,
    })
}

impl Evaluation {
    /// An aligned terminal table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let models: Vec<(&str, &ModelEval)> = std::iter::once(("float", &self.float))
            .chain(self.int8.as_ref().map(|q| ("int8", q)))
            .collect();
        for (name, m) in &models {
            let r = &m.test;
            let _ = writeln!(
                s,
                "{name} model {} ({} input), test split: {} examples",
                m.artifact, m.input_type, r.n
            );
            let _ = writeln!(s, "  accuracy            {:.4}", r.accuracy);
            let _ = writeln!(s, "  balanced accuracy   {:.4}", r.balanced_accuracy);
            if let Some(e) = r.ece {
                let _ = writeln!(s, "  ECE (10 bins)       {e:.4}");
            }
            if let Some(a) = r.roc_auc {
                let _ = writeln!(s, "  ROC-AUC             {a:.4}");
            }
            if let Some(a) = r.pr_auc {
                let _ = writeln!(s, "  PR-AUC (avg. prec.) {a:.4}");
            }
            if let Some(t) = r.threshold {
                let _ = writeln!(s, "  threshold (valid.)  {t:.6}");
            }
            let w = self
                .classes
                .iter()
                .map(|c| c.len())
                .max()
                .unwrap_or(5)
                .max(5);
            let _ = writeln!(
                s,
                "  {:<w$}  {:>9}  {:>6}  {:>6}  {:>7}",
                "class", "precision", "recall", "F1", "support"
            );
            for (i, c) in self.classes.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  {:<w$}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
                    c,
                    r.precision.get(i).copied().unwrap_or(0.0),
                    r.recall.get(i).copied().unwrap_or(0.0),
                    r.f1.get(i).copied().unwrap_or(0.0),
                    r.support.get(i).copied().unwrap_or(0)
                );
            }
            let _ = writeln!(s, "  confusion matrix (rows: true, columns: predicted)");
            let cw = r
                .confusion
                .iter()
                .flatten()
                .map(|v| v.to_string().len())
                .max()
                .unwrap_or(1)
                .max(3);
            let _ = write!(s, "  {:<w$} ", "");
            for i in 0..self.classes.len() {
                let _ = write!(s, " {:>cw$}", i);
            }
            let _ = writeln!(s);
            for (i, row) in r.confusion.iter().enumerate() {
                let _ = write!(
                    s,
                    "  {:<w$} ",
                    format!("{i} {}", self.classes.get(i).map_or("", |c| c.as_str()))
                );
                for v in row {
                    let _ = write!(s, " {:>cw$}", v);
                }
                let _ = writeln!(s);
            }
            let _ = writeln!(s);
        }
        if let Some(a) = &self.agreement {
            let _ = writeln!(
                s,
                "float vs int8 on {} test examples: top-1 agreement {:.4}, largest score difference {:.4}",
                a.n, a.top1, a.max_score_diff
            );
        }
        s
    }
}
