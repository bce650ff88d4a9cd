//! `edgeflow.toml`: one project file for the whole flow (`edgeflow pipeline run`).
//!
//! Every table rejects unknown keys; a parse error names the key and its line and column
//! (the `toml` crate's spans). The data, split, feature, model and training tables are
//! edgeflow-train's own config types ([`edgeflow_train::config`]), so a project and a
//! `train.toml` accept exactly the same settings; the validation gates are `edgeflow
//! validate`'s [`Gates`]; the monitoring thresholds are edgeflow-monitor's
//! [`Thresholds`]. Relative paths are resolved against the project file's directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgeflow_monitor::analysis::Thresholds;
use edgeflow_train::config::{
    DataConfig, FeaturesConfig, ModelConfig, OutputConfig, SplitConfig, TrainParams,
};
use edgeflow_train::TrainConfig;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::validate::Gates;

/// A whole `edgeflow.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Name and seed.
    pub project: ProjectInfo,
    /// Data sources (edgeflow-train's `[data]`).
    pub data: DataConfig,
    /// Split fractions and seed (edgeflow-train's `[split]`).
    #[serde(default)]
    pub split: SplitConfig,
    /// The feature pipeline: a pipeline TOML file, or the pipeline inline.
    pub features: ProjectFeatures,
    /// The model as data (edgeflow-train's `[model]`).
    pub model: ModelConfig,
    /// Optimisation (edgeflow-train's `[train]`).
    #[serde(default)]
    pub train: TrainParams,
    /// Data validation in the analyse stage: the schema inferred from the training data,
    /// the test data checked against it.
    #[serde(default)]
    pub schema: SchemaSettings,
    /// Post-training quantization.
    #[serde(default)]
    pub quantize: QuantizeSettings,
    /// Validation gates and the emulated-board check.
    #[serde(default)]
    pub validate: ValidateSettings,
    /// The target board.
    pub board: BoardSettings,
    /// Deployment: flash and replay.
    #[serde(default)]
    pub deploy: DeploySettings,
    /// Monitoring: thresholds and the injected sensor fault.
    #[serde(default)]
    pub monitor: MonitorSettings,
}

/// `[features]`: exactly one of `pipeline` (a file) and `inline` (the pipeline's own tables).
///
/// ```toml
/// [features]
/// pipeline = "features.toml"          # an edgeflow-dsp pipeline file, relative to this file
/// ```
/// or
/// ```toml
/// [features.inline.input.signal]
/// axes = 6
/// rate_hz = 10.0
/// window = 10
/// stride = 5
/// [[features.inline.blocks]]
/// stats = { stats = ["mean", "std"] }
/// ```
/// An inline pipeline is checked when the project loads (errors name `features.inline`)
/// and written, content-addressed, to `.edgeflow/features-HASH.toml` beside the project
/// file: the file the stages, their cache keys and lineage read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFeatures {
    /// An edgeflow-dsp pipeline TOML file.
    pub pipeline: Option<PathBuf>,
    /// The pipeline's tables (`input`, `blocks`, `output`, as in a pipeline file).
    pub inline: Option<toml::Table>,
}

/// `[project]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectInfo {
    /// Project (and model) name.
    pub name: String,
    /// Seed of weight initialisation, shuffling, dropout and augmentation.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_seed() -> u64 {
    42
}

/// `[schema]`: data validation (edgeflow-data's schema inference and example validator).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaSettings {
    /// Stop the pipeline (at the analyse stage, exit non-zero, naming the first anomaly)
    /// when the test data has anomalies against the training schema, as `edgeflow data
    /// validate` exits non-zero. Default `true`; `false` only reports them (analyse
    /// stage's page and `summary.json`).
    pub fail_on_anomalies: bool,
    /// Range tolerance, missing-rate tolerance and skew thresholds.
    pub thresholds: edgeflow_data::schema::ValidateOptions,
}

impl Default for SchemaSettings {
    fn default() -> Self {
        Self {
            fail_on_anomalies: true,
            thresholds: Default::default(),
        }
    }
}

/// `[quantize]`: as `edgeflow quantize`. Calibration uses the training split's features.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantizeSettings {
    /// Activation range method: `mse`, `minmax`, `kl`, `percentile` or `percentile:P`.
    pub method: String,
    /// One weight scale per output channel (else per tensor).
    pub per_channel: bool,
    /// Keep float32 input and output. The emulated device app feeds int8 features, so a
    /// deployable model keeps this `false`.
    pub float_io: bool,
    /// Use at most this many calibration rows (0: all).
    pub calib_limit: usize,
    /// Bias correction (`edgeflow quantize`'s default; `false` passes
    /// `--no-bias-correction`).
    pub bias_correction: bool,
}

impl Default for QuantizeSettings {
    fn default() -> Self {
        Self {
            method: "mse".into(),
            per_channel: true,
            float_io: false,
            calib_limit: 0,
            bias_correction: true,
        }
    }
}

/// `[validate]`: the gates `edgeflow validate` applies before deployment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ValidateSettings {
    /// Run test samples on the emulated board and require bit-equal outputs (`--hil`).
    pub hil: bool,
    /// Test samples the emulated-board check runs.
    pub hil_samples: usize,
    /// Gate limits (`edgeflow validate --gates`; unknown keys are errors).
    pub gates: Gates,
    /// A gate on the int8 model's test ROC-AUC (as the quantize stage measured it): for
    /// anomaly detection (`model.task = "autoencoder"`: normal vs anomaly, the
    /// reconstruction error as score) and binary classifiers. Off when absent.
    pub min_roc_auc: Option<f64>,
}

impl Default for ValidateSettings {
    fn default() -> Self {
        Self {
            hil: true,
            hil_samples: 8,
            min_roc_auc: None,
            gates: Gates::default(),
        }
    }
}

/// `[board]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSettings {
    /// A name from `edgeflow boards` (emulated deployment: `mps2-an386`).
    pub name: String,
}

/// `[deploy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploySettings {
    /// Flash the int8 artifact to the emulated board and replay the test split into it.
    pub enabled: bool,
    /// Ask the device for a telemetry summary after every this many recordings.
    pub summary_every: usize,
    /// A prebuilt device application (the ELF of `firmware/app-<board>`, relative to the
    /// project file). Without it the pipeline builds the application from the edgeflow
    /// source tree it finds: `EDGEFLOW_SOURCE_DIR`, or the first ancestor of the project
    /// directory or of the working directory holding `firmware/app-<board>`.
    pub firmware: Option<PathBuf>,
}

impl Default for DeploySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            summary_every: 4,
            firmware: None,
        }
    }
}

/// `[monitor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    /// Summary frames per analysis window (`monitor check --window-summaries`).
    pub window_summaries: u64,
    /// Drift, quality and health thresholds (`monitor check --thresholds`).
    pub thresholds: Thresholds,
    /// The sensor fault injected into a second replay of the test split; `monitor check`
    /// must flag it, and must not flag the clean replay.
    pub fault: Fault,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            window_summaries: 10,
            thresholds: Thresholds::default(),
            fault: Fault::default(),
        }
    }
}

/// A sensor fault on one axis: `x' = x * gain + offset`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Fault {
    /// The faulty axis (0-based, in the recording's axis order).
    pub axis: usize,
    /// Added to every sample of the axis (in the data's units).
    pub offset: f32,
    /// Multiplies every sample of the axis.
    pub gain: f32,
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            axis: 0,
            offset: 1.0,
            gain: 1.0,
        }
    }
}

/// A loaded project: the typed settings, the raw TOML (the source of each stage's config
/// slice for the cache keys) and the file's directory.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The settings, with paths resolved.
    pub project: Project,
    /// The parsed TOML document.
    pub raw: toml::Table,
    /// The project file.
    pub path: PathBuf,
    /// Its directory.
    pub dir: PathBuf,
}

/// Parses a project; `origin` names it in errors (with the line of the offending key).
pub fn parse(text: &str, origin: &str) -> Result<(Project, toml::Table)> {
    let p: Project = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let raw: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    match (&p.features.pipeline, &p.features.inline) {
        (Some(_), Some(_)) => bail!("{origin}: [features] has both pipeline and inline: give one"),
        (None, None) => {
            bail!("{origin}: [features] needs pipeline = \"FILE\" or a [features.inline] table")
        }
        (None, Some(t)) => {
            edgeflow_dsp::host::from_toml(&toml::to_string(t)?, "features.inline")
                .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        }
        (Some(_), None) => {}
    }
    if p.project.name.trim().is_empty() {
        bail!("{origin}: project.name is empty");
    }
    if p.monitor.window_summaries == 0 {
        bail!("{origin}: monitor.window_summaries must be at least 1");
    }
    if p.deploy.summary_every == 0 {
        bail!("{origin}: deploy.summary_every must be at least 1");
    }
    if !(p.monitor.fault.offset.is_finite() && p.monitor.fault.gain.is_finite()) {
        bail!("{origin}: monitor.fault offset and gain must be finite");
    }
    if p.monitor.fault.offset == 0.0 && p.monitor.fault.gain == 1.0 {
        bail!("{origin}: monitor.fault changes nothing (offset 0, gain 1)");
    }
    p.quantize
        .method
        .parse::<edgeflow_compile::quantize::RangeMethod>()
        .map_err(|e| anyhow::anyhow!("{origin}: quantize.method: {e}"))?;
    p.monitor
        .thresholds
        .validate()
        .map_err(|e| anyhow::anyhow!("{origin}: monitor.thresholds: {e}"))?;
    if let Some(v) = p.validate.min_roc_auc {
        if !(0.0..=1.0).contains(&v) {
            bail!("{origin}: validate.min_roc_auc = {v} is not in [0, 1]");
        }
    }
    let g = &p.validate.gates;
    for (k, v) in [
        ("min_accuracy", g.min_accuracy),
        ("min_class_accuracy", g.min_class_accuracy),
        ("min_agreement", g.min_agreement),
        ("max_accuracy_drop", g.max_accuracy_drop),
        ("deadline_fraction", g.deadline_fraction),
    ] {
        if !(0.0..=1.0).contains(&v) {
            bail!("{origin}: validate.gates.{k} = {v} is not a fraction in [0, 1]");
        }
    }
    Ok((p, raw))
}

/// Reads a project file (a directory means its `edgeflow.toml`).
pub fn load(path: &Path) -> Result<Loaded> {
    let path = if path.is_dir() {
        path.join("edgeflow.toml")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read project file {}", path.display()))?;
    let (project, raw) = parse(&text, &path.display().to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let mut project = project;
    if let Some(t) = project.features.inline.take() {
        let text = format!(
            "# Written by edgeflow from [features.inline] of {}; do not edit.\n{}",
            path.display(),
            toml::to_string(&t)?
        );
        let hash = edgeflow_train::data::hex(&Sha256::digest(text.as_bytes()));
        let file = dir
            .join(".edgeflow")
            .join(format!("features-{}.toml", &hash[..16]));
        if !file.is_file() {
            std::fs::create_dir_all(dir.join(".edgeflow"))
                .with_context(|| format!("cannot create {}", dir.join(".edgeflow").display()))?;
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        project.features.pipeline = Some(file);
    }
    let loaded = Loaded {
        project,
        raw,
        path,
        dir,
    };
    // The training config must pass edgeflow-train's own checks too.
    loaded
        .train_config(Path::new("out"))
        .with_context(|| format!("{}", loaded.path.display()))?;
    Ok(loaded)
}

impl Loaded {
    /// The edgeflow-train config this project describes, writing to `out`; paths resolved.
    pub fn train_config(&self, out: &Path) -> Result<TrainConfig> {
        let p = &self.project;
        let mut c = TrainConfig {
            name: p.project.name.clone(),
            seed: p.project.seed,
            threads: 1,
            device: Default::default(),
            data: p.data.clone(),
            split: p.split.clone(),
            features: FeaturesConfig {
                pipeline: p
                    .features
                    .pipeline
                    .clone()
                    .context("[features] has no pipeline")?,
            },
            model: p.model.clone(),
            train: p.train.clone(),
            output: OutputConfig {
                dir: out.to_path_buf(),
            },
        };
        c.validate().map_err(anyhow::Error::msg)?;
        c.resolve_paths(&self.dir);
        Ok(c)
    }

    /// The named top-level tables of the raw document, as canonical JSON (missing tables
    /// are `null`): a stage's config slice for its cache key.
    pub fn slice(&self, tables: &[&str]) -> String {
        let v: serde_json::Map<String, serde_json::Value> = tables
            .iter()
            .map(|t| {
                let j = self
                    .raw
                    .get(*t)
                    .and_then(|v| serde_json::to_value(v).ok())
                    .unwrap_or(serde_json::Value::Null);
                (t.to_string(), j)
            })
            .collect();
        serde_json::Value::Object(v).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[project]
name = "t"
[data]
train = { ts = "a.ts" }
[features]
pipeline = "f.toml"
[model]
layers = [{ dense = { units = 2 } }, { softmax = {} }]
[board]
name = "mps2-an386"
"#;

    #[test]
    fn minimal_project_parses_with_defaults() {
        let (p, _) = parse(MIN, "x").unwrap();
        assert_eq!(p.project.seed, 42);
        assert_eq!(p.quantize.method, "mse");
        assert!(p.quantize.bias_correction);
        let (p, _) = parse(&format!("{MIN}[quantize]\nbias_correction = false\n"), "x").unwrap();
        assert!(!p.quantize.bias_correction);
        assert!(p.validate.hil);
        assert_eq!(p.monitor.fault.axis, 0);
        assert!(
            p.schema.fail_on_anomalies,
            "anomalies fail the run by default"
        );
        assert_eq!(p.deploy.firmware, None);
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let text = MIN.replace("[board]\n", "[board]\nnmae = 1\n");
        let e = parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("nmae") && e.contains("line 11"), "{e}");
        let text = format!("{MIN}[monitor.fault]\naxis = 1\nofset = 2.0\n");
        let e = parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("ofset") && e.contains("line 14"), "{e}");
        let text = format!("{MIN}[validate.gates]\nmin_acuracy = 0.5\n");
        let e = parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("min_acuracy") && e.contains("line 13"), "{e}");
    }

    #[test]
    fn inline_features_are_checked_and_exclusive() {
        let inline = MIN.replace(
            "[features]\npipeline = \"f.toml\"\n",
            "[features.inline.input.signal]\naxes = 2\nrate_hz = 10.0\nwindow = 4\nstride = 2\n[[features.inline.blocks]]\nstats = { stats = [\"mean\"] }\n",
        );
        let (p, _) = parse(&inline, "x").unwrap();
        assert!(p.features.inline.is_some() && p.features.pipeline.is_none());
        let bad = inline.replace("window = 4", "window = 0");
        let e = parse(&bad, "x.toml").unwrap_err().to_string();
        assert!(e.contains("features.inline"), "{e}");
        let both = inline.replace(
            "[features.inline.input.signal]",
            "[features]\npipeline = \"f.toml\"\n[features.inline.input.signal]",
        );
        let e = parse(&both, "x.toml").unwrap_err().to_string();
        assert!(e.contains("both"), "{e}");
        let none = MIN.replace("[features]\npipeline = \"f.toml\"\n", "[features]\n");
        let e = parse(&none, "x.toml").unwrap_err().to_string();
        assert!(e.contains("[features] needs"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let text = format!("{MIN}[quantize]\nmethod = \"median\"\n");
        let e = parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("quantize.method"), "{e}");
        let text = format!("{MIN}[validate.gates]\nmin_accuracy = 95\n");
        let e = parse(&text, "x.toml").unwrap_err().to_string();
        assert!(e.contains("min_accuracy = 95"), "{e}");
    }
}
