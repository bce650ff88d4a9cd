//! Host helpers (`std` feature): putting a feature pipeline into an artifact.

use edgeflow_format::graph::DType;
use edgeflow_format::Artifact;

use crate::dsp::host::{self as dsp_host, Spec};
use crate::dsp::Quantize;

/// Why attaching a pipeline failed.
#[derive(Debug)]
pub struct AttachError(pub String);

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AttachError {}

/// Returns `artifact` with `spec` stored in its `FeaturePipeline` section (replacing any).
///
/// For an int8 model input the pipeline's final quantization is set to the input's scale
/// and zero point; the result is checked with [`crate::Model::parse`].
pub fn attach_pipeline(artifact: &[u8], spec: &Spec) -> Result<Vec<u8>, AttachError> {
    let err = |e: &dyn std::fmt::Display| AttachError(e.to_string());
    let model = edgeflow_nn::Model::parse(artifact).map_err(|e| err(&e))?;
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
    let pipeline = dsp_host::to_bytes(&spec).map_err(|e| err(&e))?;
    // The coefficient tables, designed here once so the device does not at every start.
    let decoded = edgeflow_dsp::Pipeline::from_bytes(&pipeline).map_err(|e| err(&e))?;
    let tables = dsp_host::tables(&decoded).map_err(|e| err(&e))?;
    let tables = edgeflow_format::tables::encode(&pipeline, &tables);
    let a = Artifact::parse(artifact).map_err(|e| err(&e))?;
    let parts = edgeflow_format::write::Parts {
        feature_pipeline: Some(&pipeline),
        pipeline_tables: Some(&tables),
        ..edgeflow_format::write::Parts::of(&a)
    };
    let out = parts.assemble().map_err(|e| err(&e))?;
    crate::Model::parse(&out).map_err(|e| err(&e))?;
    Ok(out)
}
