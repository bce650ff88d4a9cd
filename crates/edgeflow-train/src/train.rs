//! The training loop: burn's autodiff and optimisers on features from the edgeflow-dsp
//! pipeline, deterministic for a given config, seed and thread count.
//!
//! Determinism: burn's generator is seeded with the config's seed right before the
//! weights are drawn; batches are shuffled and inputs augmented with edgeflow-data's
//! generators keyed by `(seed, epoch, index)`; the CPU backend runs on a fixed number of
//! threads. Burn's generator may be process-global, so training holds a process-wide lock:
//! two trainings in one process run one after the other.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use edgeflow_data::Rng;
use edgeflow_dsp::{Input, Pipeline};
use serde::{Deserialize, Serialize};

use crate::config::{ClassWeights, NamedWeights, OptimizerKind, Schedule, Task, TrainConfig};
use crate::data::{self, Features};
use crate::error::TrainError;
use crate::export::values;
use crate::model::{Net, Plan};
pub use crate::output::{write_atomic, EpochLog};
pub use crate::prepare::{prepare, Prepared};

static TRAINING: Mutex<()> = Mutex::new(());

/// Options of one run.
#[derive(Default)]
pub struct TrainOptions<'a> {
    /// Continue from the checkpoint in the output directory.
    pub resume: bool,
    /// Called after every epoch (progress display).
    /// (Runs on a training-pool thread, hence `Send`.)
    pub on_epoch: Option<&'a mut (dyn FnMut(&EpochLog, usize) + Send)>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Trained {
    /// The float32 artifact.
    pub artifact: PathBuf,
    /// Per-epoch log.
    pub history: Vec<EpochLog>,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// The trained parameters (inference form), for tests and tools.
    pub parameters: Vec<f32>,
    /// Class names.
    pub classes: Vec<String>,
}

fn class_weights(cfg: &TrainConfig, y: &[usize], classes: usize) -> Result<Vec<f32>, TrainError> {
    Ok(match &cfg.train.class_weights {
        ClassWeights::Named(NamedWeights::None) => vec![1.0; classes],
        ClassWeights::Named(NamedWeights::Balanced) => {
            let mut n = vec![0usize; classes];
            for &c in y {
                n[c] += 1;
            }
            n.iter()
                .map(|&k| {
                    if k == 0 {
                        0.0
                    } else {
                        (y.len() as f64 / (classes as f64 * k as f64)) as f32
                    }
                })
                .collect()
        }
        ClassWeights::Explicit(w) => {
            if w.len() != classes {
                return Err(TrainError::Config {
                    origin: "train.class_weights".into(),
                    message: format!("{} weights for {classes} classes", w.len()),
                });
            }
            w.iter().map(|&v| v as f32).collect()
        }
    })
}

fn lr_at(cfg: &TrainConfig, epoch: usize) -> f64 {
    let t = &cfg.train;
    match t.schedule {
        Schedule::Constant => t.learning_rate,
        Schedule::Cosine => {
            let p = epoch as f64 / t.epochs as f64;
            t.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        Schedule::Step { every, gamma } => t.learning_rate * gamma.powi((epoch / every) as i32),
    }
}

fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    match cfg.train.optimizer {
        OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-7).init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(cfg.train.momentum)
                    .with_dampening(0.0),
            ))
            .init(),
    }
}

/// Loss of a batch and, for classifiers, the number of correct predictions.
fn batch_loss(
    plan: &Plan,
    out: Tensor<2>,
    x: &[f32],
    y: &[usize],
    w: &[f32],
    device: &Device,
) -> Result<(Tensor<1>, f64, Option<usize>), TrainError> {
    let b = y.len();
    match plan.task {
        Task::Classification => {
            let c = plan.outputs;
            let mut t = vec![0f32; b * c];
            let mut wsum = 0.0f32;
            for (i, &k) in y.iter().enumerate() {
                t[i * c + k] = w[k];
                wsum += w[k];
            }
            let target = Tensor::<2>::from_data(TensorData::new(t, [b, c]), device);
            let logits = values(out.clone().detach())?;
            let correct = (0..b)
                .filter(|&i| crate::metrics::argmax(&logits[i * c..(i + 1) * c]) == y[i])
                .count();
            let loss = (log_softmax(out, 1) * target)
                .sum()
                .mul_scalar(-1.0 / wsum.max(f32::MIN_POSITIVE));
            Ok((loss, wsum as f64, Some(correct)))
        }
        Task::Autoencoder => {
            let n = plan.outputs;
            let target = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [b, n]), device);
            let d = out - target;
            Ok(((d.clone() * d).mean(), b as f64, None))
        }
    }
}

/// Loss and accuracy of the model (inference form) on features.
pub fn evaluate_loss(
    plan: &Plan,
    net: &Net,
    f: &Features,
    w: &[f32],
    device: &Device,
) -> Result<(f64, Option<f64>), TrainError> {
    let mut total = 0.0;
    let mut weight = 0.0;
    let mut correct = 0usize;
    let chunk = 256;
    let idx: Vec<usize> = (0..f.len()).collect();
    for part in idx.chunks(chunk) {
        let (x, y) = gather(f, part);
        let out = net.forward(plan, x.clone(), part.len(), device);
        let (loss, wsum, ok) = batch_loss(plan, out, &x, &y, w, device)?;
        let l = values(loss)?.first().copied().unwrap_or(f32::NAN) as f64;
        total += l * wsum;
        weight += wsum;
        correct += ok.unwrap_or(0);
    }
    let acc = (plan.task == Task::Classification).then(|| correct as f64 / f.len().max(1) as f64);
    Ok((total / weight.max(f64::MIN_POSITIVE), acc))
}

fn gather(f: &Features, idx: &[usize]) -> (Vec<f32>, Vec<usize>) {
    let mut x = Vec::with_capacity(idx.len() * f.dim);
    let mut y = Vec::with_capacity(idx.len());
    for &i in idx {
        x.extend_from_slice(f.row(i));
        y.push(f.y[i]);
    }
    (x, y)
}

/// All parameter values of a module in a fixed order (for determinism checks).
pub fn parameters(net: &Net) -> Result<Vec<f32>, TrainError> {
    let mut v = Vec::new();
    for l in &net.dense {
        v.extend(values(l.weight.val())?);
        if let Some(b) = &l.bias {
            v.extend(values(b.val())?);
        }
    }
    for c in &net.conv {
        v.extend(values(c.weight.val())?);
        if let Some(b) = &c.bias {
            v.extend(values(b.val())?);
        }
    }
    for b in &net.bn {
        v.extend(values(b.gamma.val())?);
        v.extend(values(b.beta.val())?);
        v.extend(values(b.running_mean.value())?);
        v.extend(values(b.running_var.value())?);
    }
    Ok(v)
}

/// Checkpoint state beside the burn records.
#[derive(Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    best_epoch: usize,
    best_loss: f64,
    since_best: usize,
    history: Vec<EpochLog>,
    config: TrainConfig,
}

fn save_module(net: &Net, path: &Path) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp.bpk");
    net.clone()
        .save_file(&tmp)
        .map_err(|e| TrainError::Backend {
            doing: format!("saving {}", path.display()),
            message: format!("{e:?}"),
        })?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Trains the model of `cfg` and writes the results to `cfg.output.dir`:
/// `model.edgeflow` (the float32 artifact: graph, weights, feature pipeline, labels,
/// monitoring baseline, metadata), `model.bpk` (burn's record of the kept weights),
/// `train.toml` (the config as run), `train_log.jsonl` (one [`EpochLog`] per line) and
/// `checkpoint/` (the last epoch's model, optimiser and state, for `resume`).
///
/// Nothing is left half-written: each file is written to a temporary name and renamed.
pub fn train(cfg: &TrainConfig, opts: TrainOptions<'_>) -> Result<Trained, TrainError> {
    let _guard = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    // The CPU backend (burn flex with rayon) computes on the threads of the pool it runs
    // in: a private pool of exactly `cfg.threads`, so that neither the machine's core
    // count nor other rayon users change the result.
    let threads = cfg.threads;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("edgeflow-train-{i}"))
        .build()
        .map_err(|e| TrainError::Config {
            origin: "threads".into(),
            message: format!("cannot start {threads} training threads: {e}"),
        })?;
    pool.install(|| train_on_pool(cfg, opts, threads))
}

/// The autodiff device training runs on and the plain device of inference, for
/// [`TrainConfig::device`](crate::config::TrainConfig::device).
///
/// Errors: `wgpu` asked of a build without the `wgpu` feature.
fn devices(d: crate::config::TrainDevice) -> Result<(Device, Device), TrainError> {
    match d {
        crate::config::TrainDevice::Cpu => Ok((Device::flex().autodiff(), Device::flex())),
        #[cfg(feature = "wgpu")]
        crate::config::TrainDevice::Wgpu => {
            let g = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
            Ok((g.clone().autodiff(), g))
        }
        #[cfg(not(feature = "wgpu"))]
        crate::config::TrainDevice::Wgpu => Err(TrainError::Unsupported(
            "device = \"wgpu\" needs edgeflow built with the GPU backend: \
             cargo build --release -p edgeflow-cli --features edgeflow-train/wgpu",
        )),
    }
}

fn train_on_pool(
    cfg: &TrainConfig,
    mut opts: TrainOptions<'_>,
    threads: usize,
) -> Result<Trained, TrainError> {
    let prep = prepare(cfg)?;
    let plan = &prep.plan;
    let classes = prep.classes.len();
    let weights = class_weights(cfg, &prep.train.y, classes)?;
    let (device, plain) = devices(cfg.device)?;
    device.seed(cfg.seed);
    let mut net = Net::init(plan, &device);
    let mut optim = optimizer(cfg);

    let dir = cfg.output.dir.clone();
    let ckpt = dir.join("checkpoint");
    let mut history: Vec<EpochLog> = Vec::new();
    let mut start = 0usize;
    let mut best = (f64::INFINITY, 0usize, 0usize); // (loss, epoch, epochs since best)
    let mut best_net: Option<Net> = None;
    if opts.resume {
        let state_path = ckpt.join("state.json");
        let text = std::fs::read_to_string(&state_path).map_err(|e| TrainError::Io {
            path: state_path.clone(),
            source: e,
        })?;
        let st: CheckpointState = serde_json::from_str(&text).map_err(|e| TrainError::Config {
            origin: state_path.display().to_string(),
            message: format!("not a checkpoint state: {e}"),
        })?;
        if st.config.model != cfg.model || st.config.features != cfg.features {
            return Err(TrainError::Config {
                origin: state_path.display().to_string(),
                message: "the checkpoint was made with a different model or pipeline".into(),
            });
        }
        net = net
            .try_load_file(ckpt.join("model.bpk"))
            .map_err(|e| TrainError::Backend {
                doing: "loading the checkpoint".into(),
                message: format!("{e:?}"),
            })?;
        optim = optim
            .load(ckpt.join("optimizer.bpk"))
            .map_err(|e| TrainError::Backend {
                doing: "loading the optimiser state".into(),
                message: format!("{e:?}"),
            })?;
        if ckpt.join("best.bpk").exists() {
            best_net = Some(
                Net::init(plan, &device)
                    .try_load_file(ckpt.join("best.bpk"))
                    .map_err(|e| TrainError::Backend {
                        doing: "loading the best weights".into(),
                        message: format!("{e:?}"),
                    })?,
            );
        }
        start = st.epoch;
        best = (st.best_loss, st.best_epoch, st.since_best);
        history = st.history;
    }
    let pipeline = Pipeline::new(prep.spec.clone()).map_err(|e| TrainError::Pipeline {
        path: cfg.features.pipeline.clone(),
        message: e.to_string(),
    })?;
    let axes = match pipeline.desc().input {
        Input::Signal { axes, .. } => axes as usize,
        _ => 1,
    };
    let augmenting = cfg.train.augment.noise > 0.0 || cfg.train.augment.scale > 0.0;
    let mut log_lines = String::new();
    for h in &history {
        log_lines.push_str(&serde_json::to_string(h).unwrap_or_default());
        log_lines.push('\n');
    }
    let bs = cfg.train.batch_size;
    for epoch in start..cfg.train.epochs {
        if cfg.train.early_stopping > 0 && best.2 >= cfg.train.early_stopping {
            break;
        }
        let t0 = Instant::now();
        let lr = lr_at(cfg, epoch);
        let feats = if augmenting {
            let recs: Vec<data::Recording> = prep
                .splits
                .train
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut rng = Rng::for_element(cfg.seed ^ 0x6175_676d, epoch as u64, i as u64);
                    data::Recording {
                        input: data::augment(&r.input, &cfg.train.augment, axes, &mut rng),
                        ..r.clone()
                    }
                })
                .collect();
            data::features(&pipeline, &cfg.features.pipeline, &recs)?
        } else {
            prep.train.clone()
        };
        let mut order: Vec<usize> = (0..feats.len()).collect();
        Rng::keyed(cfg.seed, &[0x7368_7566, epoch as u64]).shuffle(&mut order);
        let (mut loss_sum, mut wsum, mut correct) = (0.0, 0.0, 0usize);
        for part in order.chunks(bs) {
            let (x, y) = gather(&feats, part);
            let out = net.forward(plan, x.clone(), part.len(), &device);
            let (loss, w, ok) = batch_loss(plan, out, &x, &y, &weights, &device)?;
            let l = values(loss.clone().detach())?
                .first()
                .copied()
                .unwrap_or(f32::NAN) as f64;
            if !l.is_finite() {
                return Err(TrainError::Diverged {
                    loss: l,
                    epoch: epoch + 1,
                });
            }
            loss_sum += l * w;
            wsum += w;
            correct += ok.unwrap_or(0);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, net, grads);
        }
        let valid = net.valid();
        let (val_loss, val_acc) = evaluate_loss(plan, &valid, &prep.validation, &weights, &plain)?;
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / wsum.max(f64::MIN_POSITIVE),
            train_accuracy: (plan.task == Task::Classification)
                .then(|| correct as f64 / feats.len().max(1) as f64),
            val_loss,
            val_accuracy: val_acc,
            seconds: t0.elapsed().as_secs_f64(),
        };
        if val_loss < best.0 {
            best = (val_loss, epoch + 1, 0);
            best_net = Some(valid);
        } else {
            best.2 += 1;
        }
        log_lines.push_str(&serde_json::to_string(&log).unwrap_or_default());
        log_lines.push('\n');
        history.push(log);
        // Checkpoint: model, optimiser, best weights, then the state that names them.
        std::fs::create_dir_all(&ckpt).map_err(|e| TrainError::Io {
            path: ckpt.clone(),
            source: e,
        })?;
        save_module(&net, &ckpt.join("model.bpk"))?;
        let otmp = ckpt.join("optimizer.tmp.bpk");
        optim.save(&otmp).map_err(|e| TrainError::Backend {
            doing: "saving the optimiser state".into(),
            message: format!("{e:?}"),
        })?;
        std::fs::rename(&otmp, ckpt.join("optimizer.bpk")).map_err(|e| TrainError::Io {
            path: ckpt.join("optimizer.bpk"),
            source: e,
        })?;
        if let Some(b) = &best_net {
            save_module(b, &ckpt.join("best.bpk"))?;
        }
        let st = CheckpointState {
            epoch: epoch + 1,
            best_epoch: best.1,
            best_loss: best.0,
            since_best: best.2,
            history: history.clone(),
            config: cfg.clone(),
        };
        write_atomic(
            &ckpt.join("state.json"),
            serde_json::to_string_pretty(&st)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        write_atomic(&dir.join("train_log.jsonl"), log_lines.as_bytes())?;
        if let (Some(cb), Some(h)) = (opts.on_epoch.as_deref_mut(), history.last()) {
            cb(h, cfg.train.epochs);
        }
    }
    // Keep the best epoch's weights when early stopping is on, else the last epoch's.
    let (kept, kept_epoch) = match (cfg.train.early_stopping > 0, best_net) {
        (true, Some(b)) => (b, best.1),
        _ => (net.valid(), history.last().map_or(0, |h| h.epoch)),
    };
    let parameters = parameters(&kept)?;
    let artifact = crate::output::write_outputs(cfg, &prep, &kept, &history, kept_epoch, threads)?;
    Ok(Trained {
        artifact,
        history,
        best_epoch: kept_epoch,
        parameters,
        classes: prep.classes.clone(),
    })
}
