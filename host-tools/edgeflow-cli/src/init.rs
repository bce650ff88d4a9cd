//! `edgeflow init --template imu|audio|image|anomaly DIR`: writes a commented, working
//! `edgeflow.toml` (and the feature pipeline it names) for `edgeflow pipeline run`.
//!
//! Templates that work today: `imu` (BasicMotions: smart-watch accelerometer + gyroscope,
//! 4 activities, a 1-D CNN on window statistics) and `image` (scikit-learn's 8x8
//! handwritten digits, a 2-D CNN), `anomaly` (a dense autoencoder trained on
//! BasicMotions' "Standing" recordings, the other activities as anomalies) and `audio`
//! (keyword spotting on 1 s WAV clips: MFCC + a 1-D CNN). No registry ships labelled
//! keyword audio, so the audio template also writes its data: generated keyword-like
//! clips (`examples/keywords/synth.rs`) under `DIR/data`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

/// The project templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// Motion classification from a 6-axis IMU (BasicMotions).
    Imu,
    /// Keyword spotting on WAV files (generated keyword-like clips, written with it).
    Audio,
    /// Image classification (8x8 handwritten digits).
    Image,
    /// Anomaly detection with a dense autoencoder (BasicMotions, one normal class).
    Anomaly,
}

/// `edgeflow init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The kind of project.
    #[arg(long, value_enum)]
    pub template: Template,
    /// Where to write the project (created if missing).
    pub dir: PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Write only the template's data, not the project files (`audio`: the generated
    /// clips under DIR/data, e.g. for examples/keywords).
    #[arg(long)]
    pub data_only: bool,
}

#[path = "../../../examples/keywords/synth.rs"]
#[allow(dead_code)]
pub mod synth;

/// Clips per class the audio template generates.
pub const AUDIO_CLIPS_PER_CLASS: usize = 60;
/// The generator's seed for the audio template's clips.
pub const AUDIO_SEED: u64 = 2026;

/// The audio project: `examples/keywords` (its paths are already relative to the project).
fn audio_project() -> String {
    include_str!("../../../examples/keywords/edgeflow.toml").replace(
        "#   edgeflow init --template audio --data-only examples/keywords   # the clips -> examples/keywords/data\n#   edgeflow pipeline run examples/keywords                         # outputs go to examples/keywords/out",
        "#   edgeflow pipeline run            # in this directory; outputs go to ./out",
    )
}

/// The audio feature pipeline (49 x 10 MFCC per 1 s clip).
const AUDIO_FEATURES: &str = include_str!("../../../examples/keywords/features.toml");

/// Writes the audio template's generated clips to `dir/data` (refused when it exists,
/// unless `force`).
fn write_audio_data(dir: &Path, force: bool) -> Result<()> {
    let data = dir.join("data");
    if data.exists() && !force {
        bail!("{} exists (give --force to overwrite)", data.display());
    }
    let files = synth::generate(&data, AUDIO_CLIPS_PER_CLASS, AUDIO_SEED)
        .context("cannot write the generated clips")?;
    println!(
        "wrote {} generated clips ({} classes x {AUDIO_CLIPS_PER_CLASS}, 1 s, {} Hz, 16-bit) under {}",
        files.len(),
        synth::CLASSES.len(),
        synth::RATE_HZ,
        data.display()
    );
    Ok(())
}

/// The IMU project file. Paths are relative to the project directory.
pub const IMU_PROJECT: &str = r#"# edgeflow project: motion classification from a 6-axis IMU (BasicMotions).
#
#   edgeflow pipeline run            # in this directory; outputs go to ./out
#
# Stages: extract -> analyse -> prepare -> train -> evaluate -> quantize -> validate ->
# deploy -> monitor. Each stage is cached by the hash of its config tables below, its
# input files and the edgeflow version; change a value and only the stages that depend
# on it run again. Unknown keys are errors naming the key and line.

[project]
name = "basicmotions"
# Seed of weight initialisation, shuffling, dropout and augmentation.
seed = 42

[data]
# UEA/UCR .ts files: one case per recording (6 axes x 100 samples at 10 Hz). Get them with
# crates/edgeflow-data/scripts/fetch_basicmotions.sh DIR/data   (from the edgeflow repository)
train = { ts = "data/BasicMotions_TRAIN.ts" }
test = { ts = "data/BasicMotions_TEST.ts" }

[split]
# Validation recordings held out of the training file, stratified by class.
validation = 0.2
seed = 1

[schema]
# Data validation (analyse stage): a schema (types, ranges, missing rates, series shape) is
# inferred from the training file and the test file is checked against it, skew included.
# Anomalies are reported; set this to stop the pipeline on any.
fail_on_anomalies = false

[features]
# The edgeflow-dsp pipeline: the same description runs on the host and on the device.
pipeline = "features.toml"

[model]
# A 1-D CNN over the stacked feature frames (edgeflow train's layer vocabulary).
layers = [
  { conv1d = { filters = 16, kernel = 3, padding = "same" } },
  { batch_norm = {} },
  { relu = {} },
  { conv1d = { filters = 16, kernel = 3, padding = "same" } },
  { batch_norm = {} },
  { relu = {} },
  { global_avg_pool = {} },
  { dropout = { rate = 0.2 } },
  { dense = { units = 4 } },
  { softmax = {} },
]

[train]
epochs = 60
batch_size = 8
optimizer = "adam"
learning_rate = 0.005
schedule = "cosine"
augment = { noise = 0.05, scale = 0.1 }

[quantize]
# Post-training int8 quantization, calibrated on the training split's features.
method = "mse"          # mse | minmax | kl | percentile | percentile:P
per_channel = true

[validate]
# Run test samples on the emulated board (QEMU) and require bit-equal outputs.
hil = true
hil_samples = 8

[validate.gates]
# A failed gate stops the pipeline before deployment, naming the gate.
min_accuracy = 0.85
min_class_accuracy = 0.6
min_agreement = 0.95

[board]
# A name from `edgeflow boards`. Deployment needs an emulated board: mps2-an386.
name = "mps2-an386"

[deploy]
enabled = true
# Ask the device for a telemetry summary after every this many recordings.
summary_every = 4

[monitor]
# Summary frames per analysis window.
window_summaries = 10
# The sensor fault replayed after the clean test split: axis 0 (accelerometer x) + 1.0.
fault = { axis = 0, offset = 1.0, gain = 1.0 }

[monitor.thresholds]
# edgeflow monitor's thresholds (defaults: Evidently's). Bonferroni correction over the
# 30 monitored features keeps a clean window quiet.
drift = { bonferroni = true }
# The training range comes from 32 recordings; 8-12 % of the clean test split's feature
# values lie outside it, so the default 5 % out-of-range limit alerts on clean data.
quality = { max_out_of_range_rate = 0.2 }
# Frame losses use the default limit (1 % of a window's frames missing by sequence number).
"#;

/// The IMU feature pipeline.
pub const IMU_FEATURES: &str = r#"# BasicMotions: a smart watch's 3-axis accelerometer + 3-axis gyroscope (6 axes) sampled
# at 10 Hz for 10 s (100 time steps per recording).
#
# 1 s windows every 0.5 s -> 19 windows per recording; per window and axis: mean,
# standard deviation, minimum, maximum, RMS -> 30 features per frame, 19 frames stacked
# into one [19, 30] model input.

[input.signal]
axes = 6
rate_hz = 10.0
window = 10
stride = 5

[[blocks]]
stats = { stats = ["mean", "std", "min", "max", "rms"] }

[output]
frames = 19
"#;

/// The image project file (scikit-learn's digits). Paths are relative to the project.
pub const IMAGE_PROJECT: &str = r#"# edgeflow project: image classification (8x8 grayscale handwritten digits, 10 classes).
#
#   edgeflow pipeline run            # in this directory; outputs go to ./out
#
# Stages: extract -> analyse -> prepare -> train -> evaluate -> quantize -> validate ->
# deploy -> monitor, each cached by the hash of its config tables, input files and the
# edgeflow version. Unknown keys are errors naming the key and line. The emulated board
# receives each test image as its pixel values (row-major, channels interleaved), runs the
# artifact's image pipeline and the int8 model, and every prediction is compared with the
# host's.

[project]
name = "digits"
seed = 42

[data]
# A .npz with x uint8 [N, height, width, channels] and y int64 [N] (class per image).
# The 1797 digits of the scikit-learn wheel (intensities 0..16): get them with
# examples/digits/fetch_digits.sh DIR/data   (from the edgeflow repository)
train = { npz = { path = "data/digits.npz" } }
# A separate test file, if you have one (then [split].test is not used):
# test = { npz = { path = "data/test.npz" } }

[split]
# Held out of the training file, stratified by class.
validation = 0.15
test = 0.2
seed = 1

[schema]
# Data validation (analyse stage): a schema inferred from the training file; a separate
# test file is checked against it. Any anomaly stops the pipeline (set false to only
# report them).
fail_on_anomalies = true

[features]
# The edgeflow-dsp image pipeline (crop, resize, grayscale, scale, zscore, min_max, clip):
# the same description runs on the host and on the device.
pipeline = "features.toml"

[model]
# A small 2-D CNN (edgeflow train's layer vocabulary).
layers = [
  { conv2d = { filters = 16, kernel = [3, 3], padding = "same" } },
  { batch_norm = {} },
  { relu = {} },
  { max_pool2d = { size = [2, 2] } },
  { conv2d = { filters = 32, kernel = [3, 3], padding = "same" } },
  { batch_norm = {} },
  { relu = {} },
  { global_avg_pool = {} },
  { dense = { units = 10 } },
  { softmax = {} },
]

[train]
epochs = 30
batch_size = 32
learning_rate = 0.003
schedule = "cosine"

[quantize]
# Post-training int8 quantization, calibrated on the training split's features.
method = "mse"          # mse | minmax | kl | percentile | percentile:P
per_channel = true

[validate]
# Run test samples on the emulated board (QEMU) and require bit-equal outputs.
hil = true
hil_samples = 8

[validate.gates]
# A failed gate stops the pipeline before deployment, naming the gate.
min_accuracy = 0.9
min_class_accuracy = 0.7
min_agreement = 0.95

[board]
# A name from `edgeflow boards`. Deployment needs an emulated board: mps2-an386.
name = "mps2-an386"

[deploy]
enabled = true
# Ask the device for a telemetry summary after every this many images.
summary_every = 36

[monitor]
# Summary frames per analysis window. The test split is replayed class by class (as the
# stratified split lists it), so a window must span all of it (10 x 36 >= 359 images) or
# it sees a few classes only and flags their class mix and pixels as drift.
window_summaries = 10
# The fault replayed after the clean test split: channel 0 of every pixel + 4 (a quarter
# of the digits' 0..16 range: a raised black level). Pixels are rounded and clamped to
# 0..255 by the device, as 8-bit images.
fault = { axis = 0, offset = 4.0, gain = 1.0 }

[monitor.thresholds]
# Kolmogorov-Smirnov per pixel, its p-value limit divided over the 64 monitored pixels
# (Bonferroni). Evidently's automatic choice for a reference this large is the normed
# Wasserstein distance with a fixed 0.1 limit, which the sampling noise of a window of
# ~180 clean images on these near-binary pixels already exceeds (0.10-0.24 measured).
drift = { method = "ks", bonferroni = true }
# The device's log frames are not stored by the monitor, and their sequence numbers count
# as gaps (about 6 % of frames in this replay); a real link loss shows far above that.
health = { max_gap_rate = 0.3 }
"#;

/// The image feature pipeline.
pub const IMAGE_FEATURES: &str = r#"# 8x8 grayscale digits with intensities 0..16 -> float in [0, 1].
[input.image]
width = 8
height = 8
channels = 1

[[blocks]]
scale = { scale = 0.0625 }
"#;

/// The anomaly project: `examples/anomaly` with the data beside the project.
fn anomaly_project() -> String {
    include_str!("../../../examples/anomaly/edgeflow.toml")
        .replace("../../target/data/BasicMotions/", "data/")
        .replace(
            "#   crates/edgeflow-data/scripts/fetch_basicmotions.sh      # the data (from the repository root)\n#   edgeflow pipeline run examples/anomaly                  # outputs go to examples/anomaly/out",
            "#   edgeflow pipeline run            # in this directory; outputs go to ./out\n#\n# The data: crates/edgeflow-data/scripts/fetch_basicmotions.sh DIR/data (from the\n# edgeflow repository).",
        )
}

/// The anomaly feature pipeline (one 30-feature vector per window).
const ANOMALY_FEATURES: &str = include_str!("../../../examples/anomaly/features.toml");

fn write(path: &Path, text: &str, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists (give --force to overwrite)", path.display());
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Runs `edgeflow init`.
pub fn run(a: InitArgs) -> Result<()> {
    if a.template == Template::Audio {
        std::fs::create_dir_all(&a.dir)
            .with_context(|| format!("cannot create {}", a.dir.display()))?;
        if !a.data_only {
            write(&a.dir.join("edgeflow.toml"), &audio_project(), a.force)?;
            write(&a.dir.join("features.toml"), AUDIO_FEATURES, a.force)?;
        }
        write_audio_data(&a.dir, a.force)?;
        println!(
            "next: edgeflow pipeline run {}",
            a.dir.join("edgeflow.toml").display()
        );
        return Ok(());
    }
    if a.data_only {
        bail!("--data-only: only the audio template writes data (the others name a script that fetches theirs)");
    }
    let anomaly = anomaly_project();
    let (project, features, fetch) = match a.template {
        Template::Imu => (
            IMU_PROJECT,
            IMU_FEATURES,
            "crates/edgeflow-data/scripts/fetch_basicmotions.sh",
        ),
        Template::Image => (
            IMAGE_PROJECT,
            IMAGE_FEATURES,
            "examples/digits/fetch_digits.sh",
        ),
        Template::Anomaly => (
            anomaly.as_str(),
            ANOMALY_FEATURES,
            "crates/edgeflow-data/scripts/fetch_basicmotions.sh",
        ),
        Template::Audio => bail!("internal: the audio template is written above"),
    };
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    write(&a.dir.join("edgeflow.toml"), project, a.force)?;
    write(&a.dir.join("features.toml"), features, a.force)?;
    println!(
        "next: put the data in {} ({fetch} {}, from the edgeflow repository), then: edgeflow pipeline run {}",
        a.dir.join("data").display(),
        a.dir.join("data").display(),
        a.dir.join("edgeflow.toml").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_imu_template_is_a_valid_project() {
        let (p, _) = crate::project::parse(super::IMU_PROJECT, "imu").unwrap();
        assert_eq!(p.board.name, "mps2-an386");
        edgeflow_dsp::host::from_toml(super::IMU_FEATURES, "features").unwrap();
    }

    #[test]
    fn the_anomaly_template_is_a_valid_project() {
        let t = super::anomaly_project();
        assert!(t.contains("ts = \"data/BasicMotions_TRAIN.ts\""), "{t}");
        assert!(t.contains("DIR/data"), "{t}");
        let (p, _) = crate::project::parse(&t, "anomaly").unwrap();
        assert_eq!(p.model.task, edgeflow_train::config::Task::Autoencoder);
        edgeflow_dsp::host::from_toml(super::ANOMALY_FEATURES, "features").unwrap();
    }

    #[test]
    fn the_audio_template_is_a_valid_project_with_its_classes() {
        let t = super::audio_project();
        assert!(
            t.contains("edgeflow pipeline run            # in this directory"),
            "{t}"
        );
        let (p, _) = crate::project::parse(&t, "audio").unwrap();
        assert_eq!(p.board.name, "mps2-an386");
        let spec = edgeflow_dsp::host::from_toml(super::AUDIO_FEATURES, "features").unwrap();
        let edgeflow_dsp::Input::Signal { axes, rate_hz, .. } = spec.input else {
            panic!("not a signal pipeline");
        };
        assert_eq!((axes, rate_hz), (1, super::synth::RATE_HZ as f32));
        // The labels in the project are the generator's classes, in order.
        let labels = super::synth::CLASSES.map(|c| format!("\"{c}\"")).join(", ");
        assert!(t.contains(&format!("labels = [{labels}]")), "{t}");
    }

    #[test]
    fn the_generated_clips_are_deterministic_and_differ_by_class() {
        let clips = |seed| {
            let mut r = super::synth::Rng::new(seed);
            (0..4)
                .map(|c| super::synth::clip(c, &mut r))
                .collect::<Vec<_>>()
        };
        let (a, b) = (clips(1), clips(1));
        assert_eq!(a, b);
        assert_ne!(a, clips(2));
        for c in &a {
            assert_eq!(c.len(), super::synth::CLIP_LEN);
            // An event well above the background: the peak is at least 5x the median level.
            let mut m: Vec<u16> = c.iter().map(|v| v.unsigned_abs()).collect();
            m.sort_unstable();
            assert!(
                m[m.len() - 1] > 5 * m[m.len() / 2].max(1),
                "{:?}",
                &m[m.len() - 3..]
            );
        }
    }

    #[test]
    fn the_image_template_is_a_valid_project() {
        let (p, _) = crate::project::parse(super::IMAGE_PROJECT, "image").unwrap();
        assert_eq!(p.board.name, "mps2-an386");
        let spec = edgeflow_dsp::host::from_toml(super::IMAGE_FEATURES, "features").unwrap();
        assert!(matches!(spec.input, edgeflow_dsp::Input::Image { .. }));
        // The example project is the template with the repository's data path.
        let example = include_str!("../../../examples/digits/edgeflow.toml");
        let (e, _) = crate::project::parse(example, "examples/digits").unwrap();
        assert_eq!(e.model, p.model);
    }
}
