//! Host helpers (`std` feature): putting a feature pipeline into an artifact.

use edgeflow_format::graph::DType;
use edgeflow_format::Artifact;

use crate::dsp::host::{self as dsp_host, Spec};
use crate::dsp::Quantize;

/// Why attaching a pipeline failed, by step.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The artifact given does not parse as a model.
    #[error("the model does not parse: {0}")]
    Model(edgeflow_nn::Error),
    /// The artifact given does not parse as an artifact (sections, CRC).
    #[error("the artifact does not parse: {0}")]
    Artifact(edgeflow_format::FormatError),
    /// The pipeline cannot be encoded or its coefficient tables cannot be designed.
    #[error("the feature pipeline: {0}")]
    Pipeline(#[from] dsp_host::HostError),
    /// The encoded pipeline is refused by the run-time's decoder.
    #[error("the encoded feature pipeline does not decode: {0}")]
    Decode(edgeflow_dsp::Error),
    /// The artifact with the pipeline cannot be written (its body would exceed 4 GiB).
    #[error("cannot write the artifact: {0}")]
    Write(postcard::Error),
    /// The written artifact is refused by the facade (the pipeline's output does not fit
    /// the model input: shape, dtype or quantization).
    #[error("the pipeline does not fit the model: {0}")]
    Fit(crate::Error),
}

/// The two artifact sections that carry `spec` in front of `model`: the encoded pipeline
/// (`FeaturePipeline`) and its coefficient tables (`PipelineTables`, designed here once so
/// the device does not at every start). Nothing is assembled: a caller that writes other
/// sections too puts these in the same [`edgeflow_format::write::Parts`] and assembles
/// once.
///
/// For an int8 model input the pipeline's final quantization is set to the input's scale
/// and zero point (float input: none). Errors: [`AttachError::Pipeline`],
/// [`AttachError::Decode`]; whether the pipeline fits the model is checked only by
/// parsing the assembled artifact ([`attach_pipeline`] does).
pub fn pipeline_sections(
    model: &edgeflow_nn::Model<'_>,
    spec: &Spec,
) -> Result<(Vec<u8>, Vec<u8>), AttachError> {
    let mut spec = spec.clone();
    if let Some(input) = model.header().inputs.first() {
        match (input.dtype, input.quant) {
            (DType::I8, Some(q)) => {
                spec.output.quantize = Some(Quantize {
                    scale: q.scale,
                    zero_point: q.zero_point,
                })
            }
            (DType::F32, _) => spec.output.quantize = None,
            _ => {}
        }
    }
    let pipeline = dsp_host::to_bytes(&spec)?;
    let tables = {
        let decoded = edgeflow_dsp::Pipeline::from_bytes(&pipeline).map_err(AttachError::Decode)?;
        let designed = dsp_host::tables(&decoded)?;
        edgeflow_format::tables::encode(&pipeline, &designed)
    };
    Ok((pipeline, tables))
}

/// Returns `artifact` with `spec` stored in its `FeaturePipeline` section (replacing any),
/// with [`pipeline_sections`]; the result is checked with [`crate::Model::parse`].
pub fn attach_pipeline(artifact: &[u8], spec: &Spec) -> Result<Vec<u8>, AttachError> {
    let model = edgeflow_nn::Model::parse(artifact).map_err(AttachError::Model)?;
    let (pipeline, tables) = pipeline_sections(&model, spec)?;
    let a = Artifact::parse(artifact).map_err(AttachError::Artifact)?;
    let parts = edgeflow_format::write::Parts {
        feature_pipeline: Some(&pipeline),
        pipeline_tables: Some(&tables),
        ..edgeflow_format::write::Parts::of(&a)
    };
    let out = parts.assemble().map_err(AttachError::Write)?;
    crate::Model::parse(&out).map_err(AttachError::Fit)?;
    Ok(out)
}
