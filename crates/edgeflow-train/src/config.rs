//! The training configuration: one TOML file, the model described as data.
//!
//! Every table rejects unknown keys; a parse error names the key and its line (the
//! `toml` crate's span). [`TrainConfig::validate`] then checks what serde cannot: that
//! the layers form a model edgeflow-nn can run after export, and that the numbers make
//! sense. Paths are relative to the config file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// A whole `train.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// A name for the model (stored in the artifact).
    #[serde(default = "default_name")]
    pub name: String,
    /// The seed of weight initialisation, shuffling, dropout and augmentation.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// CPU threads for the tensor backend (a private rayon pool of exactly this many;
    /// recorded in the provenance). Weights are bit-identical for the same config, seed
    /// and thread count (tested for 1 and 2 threads).
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Where the tensors live: `"cpu"` (default; burn's pure-Rust `flex` backend, the
    /// configuration the determinism guarantee is about) or `"wgpu"` (a GPU through burn's
    /// wgpu backend; needs edgeflow built with the `edgeflow-train/wgpu` cargo feature;
    /// results are not promised bit-identical across GPUs or with the CPU).
    #[serde(default)]
    pub device: TrainDevice,
    /// Where the data comes from.
    pub data: DataConfig,
    /// How the data is split.
    #[serde(default)]
    pub split: SplitConfig,
    /// The feature pipeline (edgeflow-dsp) that turns raw inputs into the model input.
    pub features: FeaturesConfig,
    /// The model.
    pub model: ModelConfig,
    /// The optimisation.
    #[serde(default)]
    pub train: TrainParams,
    /// Where the results go.
    #[serde(default)]
    pub output: OutputConfig,
}

/// The compute device of training (see [`TrainConfig::device`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainDevice {
    /// burn's `flex` CPU backend (default).
    #[default]
    Cpu,
    /// burn's `wgpu` backend on the default adapter (`CUBECL_WGPU_DEFAULT_DEVICE` picks
    /// another); only in builds with the `wgpu` feature.
    Wgpu,
}

fn default_name() -> String {
    "model".into()
}
fn default_seed() -> u64 {
    42
}
fn default_threads() -> usize {
    1
}

/// Data sources: a training source and optionally a separate test source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The training data (validation, and test when no `test` source is given, are split
    /// from it).
    pub train: Source,
    /// A separate test set (for example the archive's official test file).
    #[serde(default)]
    pub test: Option<Source>,
}

/// One data source, read through edgeflow-data's readers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A UCR/UEA `.ts` file: each case is one recording (a signal, dimensions = axes),
    /// labelled by its class.
    Ts(PathBuf),
    /// A `.npz` archive with an input array and a label array.
    Npz(NpzSource),
    /// A table (CSV or Parquet, by the file's extension) with a label column: one example
    /// per row for vector and image pipelines, recordings of rows for signal pipelines.
    Table(TableSource),
    /// A folder of WAV files, one sub-folder per class (`DIR/yes/*.wav`, `DIR/no/*.wav`,
    /// as Speech Commands and Keras' `audio_dataset_from_directory` lay them out): each
    /// file is one recording of a signal pipeline.
    WavFolder(FolderSource),
    /// A folder of PNG/JPEG images, one sub-folder per class (Keras'
    /// `image_dataset_from_directory` layout): each file is one example of an image
    /// pipeline.
    ImageFolder(FolderSource),
}

/// A class-folder source: `path/CLASS/FILE`, the sub-folder names being the class names.
///
/// WAV files are decoded by edgeflow-data's reader (any PCM or float format) and given to
/// the pipeline in 16-bit units ([`edgeflow_data::sources::wav::Audio::to_i16_units`]),
/// exactly as `edgeflow features` and `edgeflow run` give a WAV file; the channel count
/// must equal the pipeline's axes and the sample rate its `rate_hz` (training never
/// resamples: resample the files first, or describe the pipeline at their rate). Images
/// must have the pipeline's width and height; grey is repeated to RGB and RGBA loses its
/// alpha, as `edgeflow features` does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSource {
    /// The folder holding one sub-folder per class.
    pub path: PathBuf,
    /// Class names in class-index order (default: the sub-folder names sorted). Every
    /// sub-folder must be listed; a listed class may have no folder.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

/// A table source: `.csv` (header row required) or `.parquet`.
///
/// For a **signal** pipeline each row is one time step whose input columns are the axes, in
/// pipeline order, and the `recording` column (required) tells recordings apart: rows with
/// the same value form one recording (they need not be adjacent; their order in the file is
/// the time order; recordings keep the order of their first rows). For a **vector** or
/// **image** pipeline each row is one example (pixels as integers 0..=255, row-major HWC).
/// The label must be the same on every row of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSource {
    /// The file (`.csv` or `.parquet`).
    pub path: PathBuf,
    /// The label column (text, integer or boolean values).
    #[serde(default = "default_label")]
    pub label: String,
    /// The input columns in order (numbers; a missing cell is an error). Default: every
    /// column but `label` and `recording`, in file order.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// The column that names each row's recording (required by signal pipelines, unused
    /// by the others).
    #[serde(default)]
    pub recording: Option<String>,
    /// Class names in class-index order (default: the labels sorted — numerically when
    /// every label is an integer). A row whose label is not in the list is an error.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

fn default_label() -> String {
    "label".into()
}

/// A `.npz` source: `x` holds one input per row, `y` the integer class of each row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpzSource {
    /// The archive.
    pub path: PathBuf,
    /// Name of the input array (rows first).
    #[serde(default = "default_x")]
    pub x: String,
    /// Name of the label array (integers).
    #[serde(default = "default_y")]
    pub y: String,
    /// Class names, index = label value (default: the label values as text).
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

fn default_x() -> String {
    "x".into()
}
fn default_y() -> String {
    "y".into()
}

/// Fractions and seed of the stratified split. Windows cut from one recording (one `.ts`
/// case, one `.npz` row) share a group and never straddle two splits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Fraction of the training source held out for validation.
    #[serde(default = "default_validation")]
    pub validation: f64,
    /// Fraction held out for test when no test source is given.
    #[serde(default = "default_test")]
    pub test: f64,
    /// Seed of the split.
    #[serde(default = "default_split_seed")]
    pub seed: u64,
}

fn default_validation() -> f64 {
    0.2
}
fn default_test() -> f64 {
    0.2
}
fn default_split_seed() -> u64 {
    1
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            validation: default_validation(),
            test: default_test(),
            seed: default_split_seed(),
        }
    }
}

/// The feature pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// An edgeflow-dsp pipeline TOML file: the description stored in the artifact.
    pub pipeline: PathBuf,
}

/// What the model learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Class probabilities, cross-entropy loss.
    #[default]
    Classification,
    /// A dense autoencoder (the MLPerf Tiny AD shape): reconstructs its input, mean
    /// squared error loss; the anomaly score is the reconstruction error.
    Autoencoder,
}

/// The model as data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Classification (default) or autoencoder.
    #[serde(default)]
    pub task: Task,
    /// The layers, input first.
    pub layers: Vec<Layer>,
}

/// Padding of convolutions, as TFLite: `valid` (none) or `same` (output = ceil(in / stride),
/// the extra row/column at the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding.
    #[default]
    Valid,
    /// TFLite SAME.
    Same,
}

/// One layer. Every layer maps to ops edgeflow-nn runs in int8 after export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    /// Fully connected: FULLY_CONNECTED. Needs a flat input (`flatten` or
    /// `global_avg_pool` after convolutions).
    Dense {
        /// Output units.
        units: usize,
    },
    /// 1-D convolution over the frames of a signal pipeline (CONV_2D with height 1).
    Conv1d {
        /// Output channels.
        filters: usize,
        /// Frames per kernel.
        kernel: usize,
        /// Stride in frames.
        #[serde(default = "one")]
        stride: usize,
        /// Padding.
        #[serde(default)]
        padding: Padding,
    },
    /// 2-D convolution (CONV_2D).
    Conv2d {
        /// Output channels.
        filters: usize,
        /// Kernel (height, width).
        kernel: [usize; 2],
        /// Stride (height, width).
        #[serde(default = "ones")]
        stride: [usize; 2],
        /// Padding.
        #[serde(default)]
        padding: Padding,
    },
    /// Depthwise convolution (DEPTHWISE_CONV_2D); with a following 1x1 `conv2d`/`conv1d`
    /// it is the depthwise-separable block of the DS-CNN.
    DepthwiseConv1d {
        /// Frames per kernel.
        kernel: usize,
        /// Stride in frames.
        #[serde(default = "one")]
        stride: usize,
        /// Padding.
        #[serde(default)]
        padding: Padding,
        /// Output channels per input channel.
        #[serde(default = "one")]
        multiplier: usize,
    },
    /// Depthwise 2-D convolution (DEPTHWISE_CONV_2D).
    DepthwiseConv2d {
        /// Kernel (height, width).
        kernel: [usize; 2],
        /// Stride (height, width).
        #[serde(default = "ones")]
        stride: [usize; 2],
        /// Padding.
        #[serde(default)]
        padding: Padding,
        /// Output channels per input channel.
        #[serde(default = "one")]
        multiplier: usize,
    },
    /// Max pooling over frames (MAX_POOL_2D, height 1), valid padding.
    MaxPool1d {
        /// Frames per window.
        size: usize,
        /// Stride (default: `size`).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Max pooling (MAX_POOL_2D), valid padding.
    MaxPool2d {
        /// Window (height, width).
        size: [usize; 2],
        /// Stride (default: `size`).
        #[serde(default)]
        stride: Option<[usize; 2]>,
    },
    /// Average pooling over frames (AVERAGE_POOL_2D, height 1), valid padding.
    AvgPool1d {
        /// Frames per window.
        size: usize,
        /// Stride (default: `size`).
        #[serde(default)]
        stride: Option<usize>,
    },
    /// Average pooling (AVERAGE_POOL_2D), valid padding.
    AvgPool2d {
        /// Window (height, width).
        size: [usize; 2],
        /// Stride (default: `size`).
        #[serde(default)]
        stride: Option<[usize; 2]>,
    },
    /// Average over all positions (AVERAGE_POOL_2D over the whole map + RESHAPE).
    GlobalAvgPool {},
    /// Flattens a feature map to a vector in NHWC order (RESHAPE).
    Flatten {},
    /// Batch normalisation; folded into the preceding conv/dense at export, so it must
    /// follow one directly.
    BatchNorm {
        /// Added to the variance.
        #[serde(default = "default_eps")]
        epsilon: f64,
        /// Weight of the batch statistics in the running averages (Keras' 0.99 is 0.01).
        #[serde(default = "default_bn_momentum")]
        momentum: f64,
    },
    /// ReLU, fused into the preceding conv/dense/pool at export.
    Relu {},
    /// ReLU6, fused like ReLU.
    Relu6 {},
    /// Dropout (training only).
    Dropout {
        /// Probability of zeroing a value, in `[0, 1)`.
        rate: f64,
    },
    /// Softmax over classes; only as the last layer of a classifier.
    Softmax {},
}

fn one() -> usize {
    1
}
fn ones() -> [usize; 2] {
    [1, 1]
}
fn default_eps() -> f64 {
    1e-3
}
fn default_bn_momentum() -> f64 {
    0.01
}

impl Layer {
    /// The layer's name as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv1d { .. } => "conv1d",
            Layer::Conv2d { .. } => "conv2d",
            Layer::DepthwiseConv1d { .. } => "depthwise_conv1d",
            Layer::DepthwiseConv2d { .. } => "depthwise_conv2d",
            Layer::MaxPool1d { .. } => "max_pool1d",
            Layer::MaxPool2d { .. } => "max_pool2d",
            Layer::AvgPool1d { .. } => "avg_pool1d",
            Layer::AvgPool2d { .. } => "avg_pool2d",
            Layer::GlobalAvgPool {} => "global_avg_pool",
            Layer::Flatten {} => "flatten",
            Layer::BatchNorm { .. } => "batch_norm",
            Layer::Relu {} => "relu",
            Layer::Relu6 {} => "relu6",
            Layer::Dropout { .. } => "dropout",
            Layer::Softmax {} => "softmax",
        }
    }
}

/// The optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam (beta1 0.9, beta2 0.999, epsilon 1e-7 as Keras).
    #[default]
    Adam,
    /// SGD with momentum.
    Sgd,
}

/// Learning-rate schedule over epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate every epoch.
    #[default]
    Constant,
    /// Cosine decay from the rate to 0 over the epochs.
    Cosine,
    /// Multiply the rate by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Factor, in `(0, 1]`.
        gamma: f64,
    },
}

/// Class weights of the loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassWeights {
    /// `"none"` or `"balanced"` (weight `n / (classes * count)`, as scikit-learn).
    Named(NamedWeights),
    /// One weight per class.
    Explicit(Vec<f64>),
}

impl Default for ClassWeights {
    fn default() -> Self {
        ClassWeights::Named(NamedWeights::None)
    }
}

/// Named class-weight rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedWeights {
    /// All 1.
    None,
    /// `n / (classes * count_c)`.
    Balanced,
}

/// Augmentation of raw inputs (before the feature pipeline), drawn from edgeflow-data's
/// seeded per-element generators: the same seed, epoch and element give the same draw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Standard deviation of additive Gaussian noise, relative to each axis' standard
    /// deviation over the recording.
    #[serde(default)]
    pub noise: f32,
    /// Random amplitude scaling by a factor uniform in `[1 - scale, 1 + scale]`.
    #[serde(default)]
    pub scale: f32,
}

/// Optimisation settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Passes over the training split.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Examples per step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Adam or SGD.
    #[serde(default)]
    pub optimizer: OptimizerKind,
    /// Initial learning rate.
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// The schedule.
    #[serde(default)]
    pub schedule: Schedule,
    /// Class weights.
    #[serde(default)]
    pub class_weights: ClassWeights,
    /// Stop when the validation loss has not improved for this many epochs (0: never);
    /// the weights of the best epoch are kept.
    #[serde(default)]
    pub early_stopping: usize,
    /// Augmentation of raw training inputs.
    #[serde(default)]
    pub augment: Augment,
}

fn default_epochs() -> usize {
    30
}
fn default_batch() -> usize {
    32
}
fn default_lr() -> f64 {
    1e-3
}
fn default_momentum() -> f64 {
    0.9
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            epochs: default_epochs(),
            batch_size: default_batch(),
            optimizer: OptimizerKind::default(),
            learning_rate: default_lr(),
            momentum: default_momentum(),
            schedule: Schedule::default(),
            class_weights: ClassWeights::default(),
            early_stopping: 0,
            augment: Augment::default(),
        }
    }
}

/// Output location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Directory for the model, checkpoints, log and curves.
    #[serde(default = "default_out")]
    pub dir: PathBuf,
}

fn default_out() -> PathBuf {
    PathBuf::from("out")
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { dir: default_out() }
    }
}

impl TrainConfig {
    /// Parses a config; `origin` names it in errors. Unknown keys and wrong types are
    /// errors naming the key and line.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, TrainError> {
        let c: TrainConfig = toml::from_str(text).map_err(|e| TrainError::Config {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        c.validate().map_err(|message| TrainError::Config {
            origin: origin.to_string(),
            message,
        })?;
        Ok(c)
    }

    /// Reads and parses a config file; relative paths inside it are resolved against its
    /// directory.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let mut c = Self::from_toml(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        c.resolve_paths(&base);
        Ok(c)
    }

    /// Makes relative paths absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for s in std::iter::once(&mut self.data.train).chain(self.data.test.as_mut()) {
            match s {
                Source::Ts(p) => fix(p),
                Source::Npz(n) => fix(&mut n.path),
                Source::Table(t) => fix(&mut t.path),
                Source::WavFolder(f) | Source::ImageFolder(f) => fix(&mut f.path),
            }
        }
        fix(&mut self.features.pipeline);
        fix(&mut self.output.dir);
    }

    /// Checks numbers and the layer sequence (shapes are checked later against the
    /// pipeline's output, see [`crate::model::plan`]).
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.train;
        if t.epochs == 0 {
            return Err("train.epochs must be at least 1".into());
        }
        if t.batch_size == 0 {
            return Err("train.batch_size must be at least 1".into());
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return Err(format!(
                "train.learning_rate must be positive, not {}",
                t.learning_rate
            ));
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return Err(format!(
                "train.momentum must be in [0, 1), not {}",
                t.momentum
            ));
        }
        if let Schedule::Step { every, gamma } = t.schedule {
            if every == 0 || !(gamma > 0.0 && gamma <= 1.0) {
                return Err("train.schedule.step needs every >= 1 and gamma in (0, 1]".into());
            }
        }
        if let ClassWeights::Explicit(w) = &t.class_weights {
            if w.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err("train.class_weights must all be positive".into());
            }
        }
        if !(t.augment.noise >= 0.0 && t.augment.scale >= 0.0 && t.augment.scale < 1.0) {
            return Err("train.augment: noise must be >= 0 and scale in [0, 1)".into());
        }
        let s = &self.split;
        let test = if self.data.test.is_some() {
            0.0
        } else {
            s.test
        };
        if !(s.validation > 0.0 && test >= 0.0 && s.validation + test < 1.0) {
            return Err(format!(
                "split: validation ({}) and test ({test}) fractions must be positive and sum below 1",
                s.validation
            ));
        }
        if self.threads == 0 {
            return Err("threads must be at least 1".into());
        }
        let layers = &self.model.layers;
        if layers.is_empty() {
            return Err("model.layers is empty".into());
        }
        for (i, l) in layers.iter().enumerate() {
            let at = |m: &str| format!("model.layers[{i}] ({}): {m}", l.kind());
            let prev = i.checked_sub(1).map(|j| &layers[j]);
            match l {
                Layer::Dense { units: 0 }
                | Layer::Conv1d { filters: 0, .. }
                | Layer::Conv2d { filters: 0, .. } => {
                    return Err(at("needs at least 1 unit/filter"))
                }
                Layer::Conv1d { kernel, stride, .. }
                | Layer::DepthwiseConv1d { kernel, stride, .. }
                    if *kernel == 0 || *stride == 0 =>
                {
                    return Err(at("kernel and stride must be at least 1"))
                }
                Layer::Conv2d { kernel, stride, .. }
                | Layer::DepthwiseConv2d { kernel, stride, .. }
                    if kernel.contains(&0) || stride.contains(&0) =>
                {
                    return Err(at("kernel and stride must be at least 1"))
                }
                Layer::DepthwiseConv1d { multiplier: 0, .. }
                | Layer::DepthwiseConv2d { multiplier: 0, .. } => {
                    return Err(at("multiplier must be at least 1"))
                }
                Layer::MaxPool1d { size: 0, .. } | Layer::AvgPool1d { size: 0, .. } => {
                    return Err(at("size must be at least 1"))
                }
                Layer::MaxPool2d { size, .. } | Layer::AvgPool2d { size, .. }
                    if size.contains(&0) =>
                {
                    return Err(at("size must be at least 1"))
                }
                Layer::BatchNorm { epsilon, momentum } => {
                    if !matches!(
                        prev,
                        Some(
                            Layer::Dense { .. }
                                | Layer::Conv1d { .. }
                                | Layer::Conv2d { .. }
                                | Layer::DepthwiseConv1d { .. }
                                | Layer::DepthwiseConv2d { .. }
                        )
                    ) {
                        return Err(at("must follow a dense or convolution layer directly: it is folded into that layer's weights at export, and edgeflow-nn has no stand-alone batch-norm op"));
                    }
                    if !(*epsilon > 0.0 && (0.0..=1.0).contains(momentum)) {
                        return Err(at("epsilon must be > 0 and momentum in [0, 1]"));
                    }
                }
                Layer::Relu {} | Layer::Relu6 {} => {
                    // Fused into the op before it (after batch-norm folding).
                    let fusable = match prev {
                        Some(Layer::BatchNorm { .. }) => true,
                        Some(p) => matches!(
                            p,
                            Layer::Dense { .. }
                                | Layer::Conv1d { .. }
                                | Layer::Conv2d { .. }
                                | Layer::DepthwiseConv1d { .. }
                                | Layer::DepthwiseConv2d { .. }
                                | Layer::MaxPool1d { .. }
                                | Layer::MaxPool2d { .. }
                                | Layer::AvgPool1d { .. }
                                | Layer::AvgPool2d { .. }
                        ),
                        None => false,
                    };
                    if !fusable {
                        return Err(at("must follow a dense, convolution, batch_norm or pooling layer: edgeflow-nn runs ReLU only as the fused activation of that op"));
                    }
                }
                Layer::Dropout { rate } if !(0.0..1.0).contains(rate) => {
                    return Err(at("rate must be in [0, 1)"));
                }
                Layer::Softmax {} => {
                    if i + 1 != layers.len() {
                        return Err(at("must be the last layer"));
                    }
                    if self.model.task == Task::Autoencoder {
                        return Err(at(
                            "an autoencoder reconstructs its input; it has no softmax",
                        ));
                    }
                }
                _ => {}
            }
        }
        if self.model.task == Task::Autoencoder {
            for (i, l) in layers.iter().enumerate() {
                if !matches!(
                    l,
                    Layer::Dense { .. }
                        | Layer::BatchNorm { .. }
                        | Layer::Relu {}
                        | Layer::Relu6 {}
                        | Layer::Dropout { .. }
                ) {
                    return Err(format!(
                        "model.layers[{i}] ({}): a dense autoencoder has dense, batch_norm, relu and dropout layers only",
                        l.kind()
                    ));
                }
            }
        }
        Ok(())
    }
}
