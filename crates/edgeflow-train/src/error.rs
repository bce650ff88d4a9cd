//! Errors of training and evaluation.

use std::path::PathBuf;

use edgeflow_format::graph::DType;

/// Everything that can go wrong in `edgeflow train` / `edgeflow evaluate`.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config file is invalid (unknown key, wrong type, impossible value).
    #[error("{origin}: {message}")]
    Config {
        /// The file (or other origin) of the config.
        origin: String,
        /// What is wrong, with key and line where known.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A data source could not be read.
    #[error("reading {what}: {source}")]
    Data {
        /// What was being read.
        what: String,
        /// The reader's error (names file and record).
        source: edgeflow_data::Error,
    },
    /// A file or record is unusable for training (NaN, a label outside the classes …).
    #[error("{at}: {reason}")]
    BadData {
        /// The file, and the record in it where there is one (`path row 12`, `path case 3`).
        at: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The training data holds fewer than two classes.
    #[error(
        "the training data has {present} class{} ({}); a classifier needs at least 2",
        if *present == 1 { "" } else { "es" },
        counts.iter().map(|(c, n)| format!("{c}: {n} examples")).collect::<Vec<_>>().join(", ")
    )]
    TooFewClasses {
        /// Classes with at least one example.
        present: usize,
        /// Those classes, each with its number of examples.
        counts: Vec<(String, usize)>,
    },
    /// A split ended up with no recording.
    #[error("the {split} split is empty (too few recordings for the split fractions)")]
    EmptySplit {
        /// "train", "validation" or "test".
        split: String,
    },
    /// An autoencoder's training split holds no example of the normal class (class 0).
    #[error(
        "model.task = \"autoencoder\" trains on class 0 ({class:?}, the normal class), but the training split has none of it"
    )]
    NoNormalClass {
        /// The name of class 0.
        class: String,
    },
    /// The training loss stopped being finite.
    #[error(
        "the training loss became {loss} in epoch {epoch} (learning rate too high, or unscaled features)"
    )]
    Diverged {
        /// The loss value (NaN or infinite).
        loss: f64,
        /// The epoch, counted from 1.
        epoch: usize,
    },
    /// The feature pipeline is invalid or failed on an input.
    #[error("feature pipeline {}: {message}", path.display())]
    Pipeline {
        /// The pipeline file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A source's kind does not fit the pipeline's input (a WAV folder for an image pipeline …).
    #[error("model: {} {holds}, but the pipeline takes {input} input", path.display())]
    SourceKind {
        /// The source.
        path: PathBuf,
        /// What the source holds ("holds time series", "is a folder of WAV files").
        holds: String,
        /// The pipeline's input description.
        input: String,
    },
    /// A file or record has a shape the pipeline's input does not take.
    #[error("model: {at}: {reason}")]
    Input {
        /// The file, and the record in it where there is one.
        at: String,
        /// How its shape differs from the pipeline's input.
        reason: String,
    },
    /// A layer of the configured model cannot be built.
    #[error("model: layers[{index}] ({kind}): {reason}")]
    Layer {
        /// Position in `model.layers`.
        index: usize,
        /// The layer kind (`conv2d`, `dense` …).
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The model's last layer does not give what the task needs.
    #[error("model: {0}")]
    Head(#[from] HeadError),
    /// A model or pipeline the build cannot train or export.
    #[error("model: {0}")]
    Unsupported(&'static str),
    /// The tensor backend failed (a bug or an unsupported operation).
    #[error("training backend: {doing}: {message}")]
    Backend {
        /// What was being done ("saving model.bpk", "reading a tensor" …).
        doing: String,
        /// The backend's error, as it prints it.
        message: String,
    },
    /// A section of the artifact could not be encoded.
    #[error("{what}: {source}")]
    Encode {
        /// The section or file ("class labels", "monitoring baseline", "metadata" …).
        what: &'static str,
        /// The encoder's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing the artifact failed.
    #[error("writing the artifact: {0}")]
    Compile(#[from] edgeflow_compile::CompileError),
    /// The artifact could not be run.
    #[error("running the artifact: {0}")]
    Run(#[from] RunError),
}

/// Why the model's last layer does not fit the task (see [`TrainError::Head`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The last layer gives a feature map, not a vector.
    #[error(
        "the last layer gives a {h}x{w}x{c} feature map; end with dense (after flatten or global_avg_pool)"
    )]
    FeatureMap {
        /// Height.
        h: usize,
        /// Width.
        w: usize,
        /// Channels.
        c: usize,
    },
    /// A classifier's last layer has another width than the number of classes.
    #[error("the last layer gives {values} values but the data has {classes} classes")]
    Classes {
        /// Values the last layer gives.
        values: usize,
        /// Classes in the data.
        classes: usize,
    },
    /// An autoencoder's output has another size than its input.
    #[error(
        "an autoencoder must reconstruct its input: the last layer gives {values} values, the pipeline {input}"
    )]
    Reconstruct {
        /// Values the last layer gives.
        values: usize,
        /// Values the pipeline gives.
        input: usize,
    },
}

/// Why a trained artifact could not be run on the host (see [`TrainError::Run`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The artifact does not parse, or the run-time rejected an input or step.
    #[error("{0}")]
    Nn(#[from] edgeflow_nn::Error),
    /// The stored (or fallback) feature pipeline is invalid.
    #[error("{0}")]
    Pipeline(#[from] edgeflow_dsp::Error),
    /// Computing features failed.
    #[error("{0}")]
    Features(#[from] edgeflow_dsp::host::HostError),
    /// The graph has no input or no output.
    #[error("the model has no input or output")]
    NoInputOutput,
    /// The model input's type is not the pipeline's output type.
    #[error("the model input is {model:?} but the feature pipeline produces {pipeline:?}")]
    InputType {
        /// The model input's type.
        model: DType,
        /// The pipeline's output type.
        pipeline: edgeflow_dsp::OutputType,
    },
    /// The model input's size is not the pipeline's output size.
    #[error("the feature pipeline produces {pipeline} values, the model input takes {model}")]
    InputLen {
        /// Values the pipeline gives.
        pipeline: usize,
        /// Values the model input takes.
        model: usize,
    },
    /// The host could not allocate the arena.
    #[error("cannot allocate the model's arena ({bytes} bytes)")]
    Arena {
        /// The arena size the model asks for.
        bytes: usize,
    },
}
