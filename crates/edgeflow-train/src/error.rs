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
    #[error("{at}: {problem}")]
    BadData {
        /// The file, and the record in it where there is one (`path row 12`, `path case 3`).
        at: String,
        /// What is wrong with it.
        problem: DataProblem,
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
    #[error("model: {at}: {mismatch}")]
    Input {
        /// The file, and the record in it where there is one.
        at: String,
        /// How its shape differs from the pipeline's input.
        mismatch: InputMismatch,
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

/// How a file or record's shape differs from the pipeline's input (see
/// [`TrainError::Input`], which names the file and record).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputMismatch {
    /// A time series case with another number of dimensions than the pipeline's axes.
    #[error("{found} dimensions, the pipeline takes {axes} axes")]
    Dimensions {
        /// Dimensions of the case.
        found: usize,
        /// The pipeline's axes.
        axes: u32,
    },
    /// A WAV file with another number of channels than the pipeline's axes.
    #[error("{found} channels, the pipeline takes {axes} axes")]
    AudioChannels {
        /// Channels of the file.
        found: u16,
        /// The pipeline's axes.
        axes: u32,
    },
    /// An image of another size than the pipeline's.
    #[error("{width}x{height} pixels, the pipeline takes {want_width}x{want_height}")]
    ImageSize {
        /// The image's width.
        width: usize,
        /// The image's height.
        height: usize,
        /// The pipeline's width.
        want_width: u32,
        /// The pipeline's height.
        want_height: u32,
    },
    /// An image whose channels cannot be converted to the pipeline's.
    #[error("{found} channels, the pipeline takes {want}")]
    ImageChannels {
        /// The image's channels.
        found: usize,
        /// The pipeline's channels.
        want: u32,
    },
    /// A folder of files whose kind the pipeline's input does not take.
    #[error("the pipeline takes {0:?} input")]
    Kind(edgeflow_dsp::Input),
    /// A table with another number of input columns than the pipeline's axes.
    #[error("{found} input columns, the pipeline takes {axes} axes")]
    Columns {
        /// Input columns of the table.
        found: usize,
        /// The pipeline's axes.
        axes: u32,
    },
    /// An `.npz` row that is not one image of the pipeline's shape.
    #[error("shape {shape:?}, the pipeline takes {height}x{width}x{channels} images")]
    ImageShape {
        /// The row's shape.
        shape: Vec<usize>,
        /// The pipeline's height.
        height: u32,
        /// The pipeline's width.
        width: u32,
        /// The pipeline's channels.
        channels: u32,
    },
    /// An `.npz` or table row of another length than the pipeline's vectors.
    #[error("{found} values, the pipeline takes vectors of {len}")]
    VectorLen {
        /// Values in the row.
        found: usize,
        /// The pipeline's vector length.
        len: u32,
    },
    /// An `.npz` row that is not a signal of the pipeline's axes.
    #[error("shape {shape:?}, a signal row is (time steps, {axes})")]
    SignalShape {
        /// The row's shape.
        shape: Vec<usize>,
        /// The pipeline's axes.
        axes: u32,
    },
}

/// What makes a file or record unusable for training (see [`TrainError::BadData`], which
/// names the file and record).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataProblem {
    /// A source's class labels are not the training source's.
    #[error("class labels {found:?} differ from the training source's {training:?}")]
    ClassesDiffer {
        /// This source's classes.
        found: Vec<String>,
        /// The training source's classes.
        training: Vec<String>,
    },
    /// A `.ts` file without `@classLabel`.
    #[error("no @classLabel in the header; training needs class labels")]
    NoClassLabels,
    /// A time series case without a class.
    #[error("no class label")]
    NoLabel,
    /// A time series value is missing or not finite.
    #[error("value {value} at time step {step} (missing or not finite); clean or drop the case")]
    NotFiniteStep {
        /// The value read.
        value: f64,
        /// Its time step, from 0.
        step: usize,
    },
    /// An input value (an `.npz` array's, a table row's inputs) is not finite.
    #[error("value {value} at index {index} is not finite")]
    NotFinite {
        /// The value read.
        value: f64,
        /// Its position in the input, from 0.
        index: usize,
    },
    /// An `.npz` file's input and label arrays have different numbers of rows.
    #[error("{x} has {x_rows} rows but {y} has {y_rows}")]
    RowCounts {
        /// The input array's name.
        x: String,
        /// Its rows.
        x_rows: usize,
        /// The label array's name.
        y: String,
        /// Its rows.
        y_rows: usize,
    },
    /// An `.npz` label is not one non-negative integer.
    #[error("{array} row {row} is {value:?}, not one non-negative integer class")]
    NotAClass {
        /// The label array's name.
        array: String,
        /// The row, from 0.
        row: usize,
        /// The values found there.
        value: Vec<f64>,
    },
    /// `.npz` labels beyond the class names given.
    #[error("labels go up to {max_label}, but data.labels names only {names} classes")]
    TooFewNames {
        /// The largest label.
        max_label: usize,
        /// Class names given.
        names: usize,
    },
    /// A class folder holds no file of the kind read.
    #[error("no {kind} file ({}) in its class sub-folders ({})", extensions.join(", "), classes.join(", "))]
    NoFiles {
        /// `WAV` or `image`.
        kind: &'static str,
        /// The extensions read.
        extensions: Vec<&'static str>,
        /// The class sub-folders found.
        classes: Vec<String>,
    },
    /// A class sub-folder that is not one of the classes.
    #[error("class folder {folder:?} is not among the classes {classes:?}")]
    UnknownFolder {
        /// The sub-folder's name.
        folder: String,
        /// The classes.
        classes: Vec<String>,
    },
    /// A WAV file at another rate than the pipeline's.
    #[error("sampled at {file_hz} Hz, the pipeline at {pipeline_hz} Hz; training does not resample (resample the files, or describe the pipeline at their rate)")]
    SampleRate {
        /// The file's rate.
        file_hz: u32,
        /// The pipeline's rate.
        pipeline_hz: f32,
    },
    /// A table source that is neither `.csv` nor `.parquet`.
    #[error("a table source is a .csv or .parquet file (by its extension)")]
    TableExtension,
    /// A column named in the config is not in the table.
    #[error("no {role} column {name:?} (the columns are {columns:?})")]
    NoColumn {
        /// `label`, `recording` or `input`.
        role: &'static str,
        /// The name given.
        name: String,
        /// The table's columns.
        columns: Vec<String>,
    },
    /// A table read by a signal pipeline without a recording column.
    #[error("a signal pipeline reads recordings: name the column that tells them apart with `recording = \"COLUMN\"` (rows of one recording share its value)")]
    NoRecordingColumn,
    /// A table with no input column.
    #[error("no input columns besides the label")]
    NoInputColumns,
    /// An input column that does not hold numbers.
    #[error("input column {column:?} holds {ty:?} values, not numbers (name the input columns with `columns = [...]`)")]
    NotNumericColumn {
        /// The column.
        column: String,
        /// Its type.
        ty: edgeflow_data::ColumnType,
    },
    /// A label or recording cell that is not text, an integer or a boolean.
    #[error("the {role} is {value:?}")]
    BadKey {
        /// `label` or `recording`.
        role: &'static str,
        /// The cell.
        value: edgeflow_data::Value,
    },
    /// An input cell that is not a finite number.
    #[error("column {column:?} is {value:?}, not a finite number")]
    NotANumber {
        /// The column.
        column: String,
        /// The cell.
        value: edgeflow_data::Value,
    },
    /// A label that is not one of the classes.
    #[error("label {label:?} is not one of the classes {classes:?}")]
    UnknownLabel {
        /// The label.
        label: String,
        /// The classes.
        classes: Vec<String>,
    },
    /// Rows of one recording with different labels.
    #[error("label {label:?} in recording {recording:?}, whose first row ({first_row}) has {first_label:?}; a recording has one label")]
    MixedLabels {
        /// This row's label.
        label: String,
        /// The recording.
        recording: String,
        /// The recording's first row, from 1.
        first_row: usize,
        /// Its label.
        first_label: String,
    },
    /// An image value that is not a byte.
    #[error("pixel value {0} is not an integer in 0..=255")]
    Pixel(f64),
    /// A recording too short for the pipeline to give one output.
    #[error("too short for one output of the feature pipeline")]
    TooShort,
    /// The pipeline gave a non-finite feature.
    #[error("feature {index} is {value} (not finite) — check the input or the pipeline (e.g. a log without floor)")]
    NotFiniteFeature {
        /// The feature's position in the output.
        index: usize,
        /// Its value.
        value: f32,
    },
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
