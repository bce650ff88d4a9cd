//! What a run computes before its first epoch, for training and for evaluation alike: the
//! data read and split, the features of each split (the device's pipeline), and the model
//! plan checked against the pipeline's output.

use std::path::PathBuf;

use edgeflow_dsp::Pipeline;

use crate::config::TrainConfig;
use crate::data::{self, Features, Splits};
use crate::error::TrainError;
use crate::model::{self, Plan};

/// Everything computed before the first epoch.
pub struct Prepared {
    /// The pipeline description.
    pub spec: edgeflow_dsp::host::Spec,
    /// Class names.
    pub classes: Vec<String>,
    /// Data files and their SHA-256.
    pub files: Vec<(PathBuf, String)>,
    /// Recordings per split.
    pub splits: Splits,
    /// Features of the training split (without augmentation).
    pub train: Features,
    /// Features of the validation split.
    pub validation: Features,
    /// Features of the test split.
    pub test: Features,
    /// The model plan.
    pub plan: Plan,
}

/// Reads the data, splits it and computes features with the pipeline; checks the model
/// against the pipeline's output.
pub fn prepare(cfg: &TrainConfig) -> Result<Prepared, TrainError> {
    let spec = data::load_pipeline(&cfg.features.pipeline)?;
    let pipeline = Pipeline::new(spec.clone()).map_err(|e| TrainError::Pipeline {
        path: cfg.features.pipeline.clone(),
        message: e.to_string(),
    })?;
    let raw = data::read_sources(cfg, &pipeline)?;
    let classes = raw.classes.clone();
    let mut splits = data::split(classes.len(), raw.train, raw.test, &cfg.split)?;
    if cfg.model.task == crate::config::Task::Autoencoder {
        // An autoencoder learns what normal data looks like: it trains (and the int8
        // calibration and the monitoring baseline are computed) on class 0 only.
        // Validation (threshold, early stopping) and test keep every class.
        splits.train.retain(|r| r.label == 0);
        if splits.train.is_empty() {
            return Err(TrainError::NoNormalClass {
                class: classes.first().cloned().unwrap_or_default(),
            });
        }
    }
    let pp = &cfg.features.pipeline;
    let train = data::features(&pipeline, pp, &splits.train)?;
    let validation = data::features(&pipeline, pp, &splits.validation)?;
    let test = data::features(&pipeline, pp, &splits.test)?;
    let plan = model::plan(&cfg.model, model::input_shape(&pipeline), classes.len())?;
    Ok(Prepared {
        spec,
        classes,
        files: raw.files,
        splits,
        train,
        validation,
        test,
        plan,
    })
}
