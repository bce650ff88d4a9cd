//! `edgeflow init --template imu|audio|image|anomaly DIR`: writes a commented, working
//! `edgeflow.toml` (and the feature pipeline it names) for `edgeflow pipeline run`.
//!
//! Templates that work today: `imu` (BasicMotions: smart-watch accelerometer + gyroscope,
//! 4 activities, a 1-D CNN on window statistics). `audio`, `image` and `anomaly` are not
//! written yet and are refused by name.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

/// The project templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// Motion classification from a 6-axis IMU (BasicMotions).
    Imu,
    /// Keyword spotting on WAV files (not yet available).
    Audio,
    /// Image classification (not yet available).
    Image,
    /// Anomaly detection with an autoencoder (not yet available).
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
method = "mse"          # mse | minmax | percentile | percentile:P
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
    let (project, features) = match a.template {
        Template::Imu => (IMU_PROJECT, IMU_FEATURES),
        t => bail!(
            "template {:?} is not available yet (available: imu)",
            format!("{t:?}").to_lowercase()
        ),
    };
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    write(&a.dir.join("edgeflow.toml"), project, a.force)?;
    write(&a.dir.join("features.toml"), features, a.force)?;
    println!(
        "next: put the data in {} (crates/edgeflow-data/scripts/fetch_basicmotions.sh {}), then: edgeflow pipeline run {}",
        a.dir.join("data").display(),
        a.dir.join("data").display(),
        a.dir.join("edgeflow.toml").display()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn the_imu_template_is_a_valid_project() {
        let (p, _) = crate::project::parse(super::IMU_PROJECT, "imu").unwrap();
        assert_eq!(p.board.name, "mps2-an386");
        edgeflow_dsp::host::from_toml(super::IMU_FEATURES, "features").unwrap();
    }
}
